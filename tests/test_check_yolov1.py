"""labkit.check.yolov1: the YOLOv1 checkers of notebook 03 (encoder, decoder, IoU of one cell, loss).

Each checker must pass a right answer (written here independently of labkit), report a stub as "not implemented",
and fail on the plausible wrong answers named in each test, with the hint for that mistake. The notebook's own
encoder, loss and solutions are run through their checkers, and its student version must keep the code in view
working and report the stubs. The loss and IoU checks need TensorFlow (labkit's references are TensorFlow code).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from labkit import check, student

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_yolov1_from_scratch.ipynb"
SEEDS = (0, 1, 2)


# --- the encoder --------------------------------------------------------------------------------------------

def encode_ok(boxes, labels, S, B, C, *, cell=np.floor, offsets=True, first_wins=True):
    t = np.zeros((S, S, B * 5 + C))
    objects = list(zip(boxes, labels))
    for (x1, y1, x2, y2), lab in (objects if first_wins else objects[::-1]):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        col, row = min(int(cell(cx * S)), S - 1), min(int(cell(cy * S)), S - 1)
        if t[row, col, 4]:
            continue
        x, y = (cx * S - col, cy * S - row) if offsets else (cx, cy)
        t[row, col, :5 * B] = np.tile([x, y, x2 - x1, y2 - y1, 1.0], B)
        t[row, col, 5 * B + lab] = 1
    return t


def encode_round(boxes, labels, S, B, C):
    return encode_ok(boxes, labels, S, B, C, cell=np.round)


def encode_no_offsets(boxes, labels, S, B, C):
    return encode_ok(boxes, labels, S, B, C, offsets=False)


def encode_last_wins(boxes, labels, S, B, C):
    return encode_ok(boxes, labels, S, B, C, first_wins=False)


def encode_one_slot(boxes, labels, S, B, C):
    t = encode_ok(boxes, labels, S, B, C)
    t[..., 5:5 * B] = 0
    return t


@pytest.mark.parametrize("seed", SEEDS)
def test_encoder_right_answer_passes(seed):
    r = check.yolo_encode(encode_ok, seed=seed, show=False)
    assert r and r.passed == r.total == 8, r.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn,hint", [
    (encode_round, "floor(cx·S)"),                # the wrong cell: rounding instead of floor
    (encode_no_offsets, "offset *inside its cell*"),  # centre in image coordinates, not relative to the cell
    (encode_last_wins, "the *first* object"),     # a shared cell goes to the last object
    (encode_one_slot, "every one of the B box slots"),
])
def test_encoder_wrong_answers_fail_with_their_hint(fn, hint, seed):
    r = check.yolo_encode(fn, seed=seed, show=False)
    assert not r, f"{fn.__name__} passed"
    assert hint in r.message, r.message
    assert "expected" in r.message and "got" in r.message and f"seed={seed}" in r.message


def test_encoder_failure_names_the_cells():
    r = check.yolo_encode(encode_round, seed=0, show=False)
    assert re.search(r"objects \(confidence 1 in slot 1\) in cells .*\(row \d, col \d\).*; expected in cells", r.message)
    r = check.yolo_encode(encode_no_offsets, seed=0, show=False)
    assert re.search(r"cell \(row \d, col \d\), [xy] of box slot 1: got", r.message), r.message


# --- the decoder --------------------------------------------------------------------------------------------

def decode_ok(target, S, B, C, *, order="row"):
    boxes, labels = [], []
    cells = [(r, c) for r in range(S) for c in range(S)]
    if order == "column":
        cells = [(r, c) for c in range(S) for r in range(S)]
    for r, c in cells:
        if target[r, c, 4] > 0.5:
            x, y, w, h = target[r, c, :4]
            cx, cy = (c + x) / S, (r + y) / S
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            labels.append(np.argmax(target[r, c, 5 * B:]))
    return np.reshape(boxes, (-1, 4)), np.array(labels)


def decode_column_major(target, S, B, C):
    return decode_ok(target, S, B, C, order="column")


def decode_centre_size(target, S, B, C):
    b, lab = decode_ok(target, S, B, C)
    return np.column_stack([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]]), lab


def decode_no_cell(target, S, B, C):  # forgets to add the cell's position
    b, lab = decode_ok(target, S, B, C)
    rows, cols = np.nonzero(target[..., 4] > 0.5)
    shift = np.column_stack([cols, rows, cols, rows]) / S
    return b - shift, lab


@pytest.mark.parametrize("seed", SEEDS)
def test_decoder_right_answer_passes(seed):
    r = check.yolo_decode(decode_ok, seed=seed, show=False)
    assert r and r.passed == r.total, r.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn,hint", [
    (decode_column_major, "row-major cell order"),
    (decode_centre_size, "not centre and size"),
    (decode_no_cell, "((col + x)/S, (row + y)/S)"),
])
def test_decoder_wrong_answers_fail_with_their_hint(fn, hint, seed):
    r = check.yolo_decode(fn, seed=seed, show=False)
    assert not r, f"{fn.__name__} passed"
    assert hint in r.message, r.message


# --- the IoU of two boxes of one cell -----------------------------------------------------------------------

def iou_ok(a, b, S, *, scale=True, corners_at_centre=True):
    k = S if scale else 1
    (ax, ay, aw, ah), (bx, by, bw, bh) = (np.asarray(v, float).T for v in (a, b))
    ax, ay, bx, by = ax / k, ay / k, bx / k, by / k
    if not corners_at_centre:  # (x, y) read as the top-left corner
        ax, ay, bx, by = ax + aw / 2, ay + ah / 2, bx + bw / 2, by + bh / 2
    iw = np.clip(np.minimum(ax + aw / 2, bx + bw / 2) - np.maximum(ax - aw / 2, bx - bw / 2), 0, None)
    ih = np.clip(np.minimum(ay + ah / 2, by + bh / 2) - np.maximum(ay - ah / 2, by - bh / 2), 0, None)
    return iw * ih / (aw * ah + bw * bh - iw * ih)


@pytest.mark.parametrize("seed", SEEDS)
def test_iou_right_answer_passes(seed):
    pytest.importorskip("tensorflow")
    r = check.yolo_cell_iou(iou_ok, seed=seed, show=False)
    assert r and r.passed == r.total, r.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn,hint", [
    (lambda a, b, S: iou_ok(a, b, S, scale=False), "divide x and y by S"),  # cell units mixed with image units
    (lambda a, b, S: iou_ok(a, b, S, corners_at_centre=False), "*centre*"),
])
def test_iou_wrong_answers_fail_with_their_hint(fn, hint, seed):
    pytest.importorskip("tensorflow")
    r = check.yolo_cell_iou(fn, seed=seed, show=False)
    assert not r and hint in r.message, r.message
    assert re.search(r"pair a\[\d\] = \[.*\], b\[\d\] = \[.*\]: IoU got", r.message)


# --- the loss -----------------------------------------------------------------------------------------------

def loss_ok(y_true, y_pred, S, B, C, *, roots=True, conf_one=False, noobj_empty_only=False, class_everywhere=False):
    """The paper's eq. (3), written with loops over the cells (independent of labkit's TensorFlow code)."""
    n = y_true.shape[0]
    out = {k: np.zeros(n) for k in ("coord", "obj", "noobj", "class")}
    f = np.sqrt if roots else (lambda v: v)
    for i in range(n):
        for r in range(S):
            for c in range(S):
                t, p = y_true[i, r, c].astype(float), y_pred[i, r, c].astype(float)
                has = t[4] > 0.5
                boxes = p[:5 * B].reshape(B, 5)
                ious = iou_ok(boxes[:, :4], np.tile(t[:4], (B, 1)), S)
                resp = int(np.argmax(ious)) if has else -1
                for b, (x, y, w, h, conf) in enumerate(boxes):
                    if b == resp:
                        out["coord"][i] += 5 * ((x - t[0]) ** 2 + (y - t[1]) ** 2 + (f(w) - f(t[2])) ** 2
                                                + (f(h) - f(t[3])) ** 2)
                        out["obj"][i] += (conf - (1.0 if conf_one else ious[b])) ** 2
                    elif not (noobj_empty_only and has):
                        out["noobj"][i] += 0.5 * conf ** 2
                if has or class_everywhere:
                    out["class"][i] += np.sum((p[5 * B:] - t[5 * B:]) ** 2)
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_loss_right_answer_passes(seed):
    pytest.importorskip("tensorflow")
    r = check.yolo_loss(loss_ok, seed=seed, show=False)
    assert r and r.passed == r.total == 6, r.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kw,term,hint", [
    (dict(roots=False), "coord", "no square roots"),                      # the named wrong answer
    (dict(conf_one=True), "obj", "not 1"),                                # confidence target 1 instead of the IoU
    (dict(noobj_empty_only=True), "noobj", "including the B − 1 other"),  # forgets non-responsible predictors
    (dict(class_everywhere=True), "class", "only cells that hold an object"),
])
def test_loss_wrong_answers_fail_with_their_hint(kw, term, hint, seed):
    pytest.importorskip("tensorflow")

    def wrong_loss(y_true, y_pred, S, B, C):
        return loss_ok(y_true, y_pred, S, B, C, **kw)

    r = check.yolo_loss(wrong_loss, seed=seed, show=False)
    assert not r, f"{kw} passed"
    assert f"term {term!r}, image" in r.message and hint in r.message, r.message


def test_loss_that_returns_a_total_only_is_told_the_format():
    pytest.importorskip("tensorflow")
    r = check.yolo_loss(lambda yt, yp, S, B, C: sum(loss_ok(yt, yp, S, B, C).values()), seed=0, show=False)
    assert not r and "return a dict with the four terms" in r.message


def test_the_loss_cases_separate_the_predictors():
    """The B predictors of an object cell differ in IoU by more than float32 noise, so float32 (TF) and float64
    (NumPy) code pick the same responsible predictor; and the responsible one is not always the first."""
    from labkit.check import yolov1 as Y

    not_first = 0
    for case in Y._loss_cases(0, 12):
        S, B = case["S"], case["B"]
        yt, yp = case["y_true"], case["y_pred"]
        tb = yt[..., :5 * B].reshape(*yt.shape[:3], B, 5)
        pb = yp[..., :5 * B].reshape(*yp.shape[:3], B, 5)
        for idx in zip(*np.nonzero(tb[..., 0, 4] > 0.5)):
            ious = np.sort(Y._np_cell_iou(pb[idx][:, :4], tb[idx][0:1, :4], S))
            assert B == 1 or np.diff(ious).min() > 1e-3
            not_first += int(np.argmax(Y._np_cell_iou(pb[idx][:, :4], tb[idx][0:1, :4], S)) > 0)
        assert pb[..., 2:4].min() >= 0.01  # √w is defined and smooth
    assert not_first > 0


@pytest.mark.parametrize("checker", ["yolo_encode", "yolo_decode", "yolo_cell_iou", "yolo_loss"])
def test_a_stub_is_reported_not_raised(checker):
    def stub(*args):
        raise NotImplementedError("implement this: the body of stub(), then run the check below")

    r = getattr(check, checker)(stub, seed=0, show=False)
    assert not r and "not implemented yet" in r.message


def test_a_crash_is_reported_not_raised():
    def crashes(boxes, labels, S, B, C):
        raise IndexError("index 7 is out of bounds")

    r = check.yolo_encode(crashes, seed=0, show=False)
    assert not r and "raised IndexError: index 7 is out of bounds" in r.message


# --- the notebook ------------------------------------------------------------------------------------------

def _definition_cells(nb) -> list[str]:
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "def " in cell.source:
            tree = ast.parse(cell.source)
            if all(isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom)) for node in tree.body):
                out.append(cell.source)
    return out


def _run(nb) -> dict[str, bool]:
    tf = pytest.importorskip("tensorflow")
    from labkit.yolov1 import loss as yloss

    ns = {"np": np, "tf": tf, "yloss": yloss}
    for src in _definition_cells(nb):
        exec(compile(src, "<notebook 03>", "exec"), ns)  # noqa: S102 - the project's own notebook
    calls = [m for c in nb.cells if c.cell_type == "code" for m in re.findall(r"labkit\.check\.(\w+)\((\w+)", c.source)]
    return {fn: bool(getattr(check, name)(ns[fn], seed=0, show=False)) for name, fn in calls}


def test_the_notebook_code_and_solutions_pass_their_checks():
    results = _run(nbformat.read(NOTEBOOK, as_version=4))
    assert set(results) == {"encode", "yolo_loss", "decode", "cell_iou"}
    assert all(results.values()), results


def test_the_student_version_keeps_the_code_in_view_and_stubs_the_exercises():
    stu, n = student.student_version(nbformat.read(NOTEBOOK, as_version=4), name=NOTEBOOK.name)
    assert n == 4  # two implementations, two written predictions
    results = _run(stu)
    assert results == {"encode": True, "yolo_loss": True, "decode": False, "cell_iou": False}
    for name in ("decode", "cell_iou"):  # used only by their own check: the student version runs top to bottom
        users = [c for c in stu.cells if c.cell_type == "code" and re.search(rf"(?<![\w.]){name}\b", c.source)]
        assert len(users) == 2, [u.source[:60] for u in users]
