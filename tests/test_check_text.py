"""labkit.check's text checkers (notebooks 00 and 06): they pass on labkit's reference and on the notebooks' own
code, report a stub as not implemented, and name the case, expected and got for plausible wrong answers."""
from __future__ import annotations

import numpy as np
import pytest

from labkit import check
from labkit.data import bkai


# --- the notebooks' code (06: code in view and exercise 4's solution; 00: exercise 3's solution) --------------
def parse_line(line):
    line = line.rstrip("\r\n")  # the line end is not part of the text
    parts = line.split(",", 8)  # at most 8 splits: commas after the 8th number stay in the transcription
    xy = np.array([float(v) for v in parts[:8]])  # x1, y1, ..., x4, y4: integers or floats
    text = parts[8].strip() if len(parts) == 9 else ""  # "###" = unreadable; no 9th field = no text
    return xy, text


def quad_to_yolo(xy, width, height):
    xs, ys = xy[0::2], xy[1::2]  # the four corners' x and y
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max(), ys.max()  # the axis-aligned box around all four
    x1, x2 = min(max(x1, 0), width), min(max(x2, 0), width)  # clipped to the image
    y1, y2 = min(max(y1, 0), height), min(max(y2, 0), height)
    return ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def quad_to_yolo_polygon(xy, width, height):
    q = np.asarray(xy, dtype=float).reshape(4, 2)  # the four corners, in their order
    x = np.clip(q[:, 0], 0, width) / width
    y = np.clip(q[:, 1], 0, height) / height
    return np.stack([x, y], axis=1).ravel()  # x1, y1, x2, y2, ..., x4, y4


def yolo_line_to_xyxy(line, width, height):
    cls, cx, cy, w, h = line.split()
    cx, w = float(cx) * width, float(w) * width
    cy, h = float(cy) * height, float(h) * height
    return int(cls), np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def stub(*args, **kwargs):
    raise NotImplementedError("implement this: ...")


# --- plausible wrong answers -----------------------------------------------------------------------------------
def parse_split_all(line):  # the source notebook's parser
    parts = line.strip().split(",")
    return np.array([float(v) for v in parts[:8]]), parts[8]


def parse_keeps_newline(line):
    parts = line.split(",", 8)
    return np.array([float(v) for v in parts[:8]]), parts[8] if len(parts) == 9 else ""


def box_unclipped(xy, width, height):
    x1, y1, x2, y2 = bkai.quad_to_box(xy)
    return ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def box_two_corners(xy, width, height):  # first and third corner (top-left, bottom-right) as the box
    x1, y1, x2, y2 = xy[0], xy[1], xy[4], xy[5]
    x1, x2 = np.clip([x1, x2], 0, width)
    y1, y2 = np.clip([y1, y2], 0, height)
    return ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def box_first_two_points(xy, width, height):  # xy[:4] read as x1, y1, x2, y2
    x1, y1, x2, y2 = np.clip(xy[:4], 0, [width, height, width, height])
    return ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height)


def polygon_unclipped(xy, width, height):
    return (np.asarray(xy, dtype=float).reshape(4, 2) / [width, height]).ravel()


def yolo_corner_as_centre(line, width, height):  # reads cx, cy as the top-left corner
    cls, x, y, w, h = (float(v) for v in line.split())
    return int(cls), np.array([x * width, y * height, (x + w) * width, (y + h) * height])


def yolo_swapped_size(line, width, height):  # scales x by the height and y by the width
    cls, cx, cy, w, h = (float(v) for v in line.split())
    return int(cls), np.array([(cx - w / 2) * height, (cy - h / 2) * width, (cx + w / 2) * height,
                               (cy + h / 2) * width])


def _reference_box(xy, width, height):
    return check.text._bkai_rows(xy, width, height, "box")


GOOD = [
    (check.bkai_parse_line, parse_line),
    (check.bkai_parse_line, lambda line: bkai.parse_line(line)),
    (check.quad_to_yolo, quad_to_yolo),
    (check.quad_to_yolo, _reference_box),
    (check.quad_to_yolo_polygon, quad_to_yolo_polygon),
    (check.yolo_line_to_xyxy, yolo_line_to_xyxy),
]


@pytest.mark.parametrize("checker, fn", GOOD, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("seed", [0, 1, None])
def test_passes_on_reference_and_notebook_code(checker, fn, seed, capsys):
    report = checker(fn, seed=seed)
    assert report and report.passed == report.total == 20
    out = capsys.readouterr().out
    assert out.startswith(f"check {report.name}: ✓ 20/20 random cases match") and "seed" not in out  # deterministic


@pytest.mark.parametrize("checker", [c for c, _ in GOOD[::2]] + [check.yolo_line_to_xyxy], ids=lambda c: c.__name__)
def test_stub_is_not_implemented(checker):
    report = checker(stub, show=False)
    assert not report and "not implemented yet" in report.message and "NotImplementedError" in report.message


@pytest.mark.parametrize("checker, wrong, words", [
    (check.bkai_parse_line, parse_split_all, ["split at most 8 times", "expected 'Phở bò, gà, heo'"]),
    (check.bkai_parse_line, parse_keeps_newline, ["strip it"]),
    (check.quad_to_yolo, box_unclipped, ["clip the coordinates"]),
    (check.quad_to_yolo, box_two_corners, ["all four corners"]),
    (check.quad_to_yolo, box_first_two_points, ["all four corners"]),
    (check.quad_to_yolo_polygon, polygon_unclipped, ["clip the coordinates"]),
    (check.yolo_line_to_xyxy, yolo_corner_as_centre, ["x1 = (cx - w/2) * width"]),
    (check.yolo_line_to_xyxy, yolo_swapped_size, ["x1 = (cx - w/2) * width"]),
], ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("seed", [0, 7])
def test_fails_on_plausible_wrong_answers(checker, wrong, words, seed):
    report = checker(wrong, seed=seed, show=False)
    assert not report and report.failures
    msg = report.message
    assert f"seed {seed}" in msg and "case " in msg and "expected:" in msg and "got:" in msg and "hint:" in msg
    assert wrong.__name__ + "(" in msg  # the failing call, with its inputs
    for w in words:
        if w.startswith("expected '"):
            assert any(w in f for f in report.failures), w
        else:
            assert w in msg, w


def test_parse_failure_names_case_expected_and_got():
    msg = check.bkai_parse_line(parse_split_all, seed=3, show=False).message
    line = next(l for l in msg.splitlines() if "text " in l)
    assert "expected '" in line  # text 'Phở bò', expected 'Phở bò, gà'


def test_fresh_cases_each_call():
    a = check.text._quad_cases(np.random.default_rng(1), 20)
    b = check.text._quad_cases(np.random.default_rng(2), 20)
    assert not np.allclose(a[5]["xy"], b[5]["xy"])
    r1, r2 = check.quad_to_yolo(quad_to_yolo, show=False), check.quad_to_yolo(quad_to_yolo, show=False)
    assert r1.seed != r2.seed


def test_checkers_are_found():
    names = set(check.checkers())
    assert {"bkai_parse_line", "quad_to_yolo", "quad_to_yolo_polygon", "yolo_line_to_xyxy"} <= names
