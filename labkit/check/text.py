"""Checkers for label text: BKAI/VinText label lines and quads (notebook 06), YOLO label lines (notebook 00).

The references are labkit's tested converters: :func:`labkit.data.bkai.parse_line` and the row conversion inside
:func:`labkit.data.bkai.convert` (box and polygon formats), and :mod:`labkit.boxes` for YOLO rows.
"""
from __future__ import annotations

import numpy as np

from labkit.check import compare_arrays, describe, fresh_seed, Report, run_cases

__all__ = ["bkai_parse_line", "quad_to_yolo", "quad_to_yolo_polygon", "yolo_line_to_xyxy"]


# ----------------------------------------------------------------------------------------------
# Random BKAI-like data
# ----------------------------------------------------------------------------------------------
def _quad(rng: np.random.Generator, w: int, h: int, border: bool = False, angle: float | None = None) -> np.ndarray:
    """A word-like quad, clockwise from the top-left corner: a rotated rectangle with each corner moved a little.

    Its centre lies inside the image; with ``border`` it sits near an edge so part of it falls outside."""
    tw, th = rng.uniform(0.15, 0.6) * w, rng.uniform(0.08, 0.25) * h
    if border:
        edge = int(rng.integers(4))
        cx = [rng.uniform(0.0, 0.08) * w, rng.uniform(0.92, 1.0) * w, rng.uniform(0.2, 0.8) * w,
              rng.uniform(0.2, 0.8) * w][edge]
        cy = [rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * h, rng.uniform(0.0, 0.05) * h,
              rng.uniform(0.95, 1.0) * h][edge]
    else:
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    a = np.radians(rng.uniform(-30, 30) if angle is None else angle)
    rect = np.array([[-tw / 2, -th / 2], [tw / 2, -th / 2], [tw / 2, th / 2], [-tw / 2, th / 2]])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = rect @ rot.T + [cx, cy] + rng.uniform(-0.1, 0.1, (4, 2)) * th
    return q.ravel()


def _quad_cases(rng, n: int) -> list[dict]:
    cases = []
    for k in range(n):
        w, h = int(rng.integers(64, 1281)), int(rng.integers(64, 961))
        if k == 0:  # an axis-aligned word inside the image
            xy = np.array([0.2 * w, 0.3 * h, 0.7 * w, 0.3 * h, 0.7 * w, 0.5 * h, 0.2 * w, 0.5 * h])
        elif k == 1:  # a tilted word: its first and third corners do not span its box
            xy = _quad(rng, w, h, angle=25.0)
        elif k == 2:  # a word running off the left edge (negative x)
            xy = _quad(rng, w, h, angle=0.0)
            xy[0::2] -= xy[0::2].min() + 0.1 * w
        elif k == 3:  # a quad larger than the image on every side
            xy = np.array([-10.0, -5.5, w + 7.0, -3.0, w + 12.0, h + 4.0, -8.0, h + 9.25])
        else:
            xy = _quad(rng, w, h, border=rng.random() < 0.4)
        if rng.random() < 0.5:
            xy = np.rint(xy)  # real labels hold integers, sometimes floats
        cases.append({"xy": xy.astype(np.float64), "width": w, "height": h})
    return cases


def _bkai_rows(xy, width, height, fmt):
    """labkit's own conversion of one label row (``labkit.data.bkai.convert``), read back as floats."""
    from labkit.data import bkai

    lines, _ = bkai._convert_rows([(1, np.asarray(xy, dtype=np.float64), "text")], width, height, fmt, "keep", 0.0)
    return np.array([float(v) for v in lines[0].split()[1:]])


def _clip_hint(case, expected, got, fmt="box"):
    """The hint when ``got`` is the right conversion without the clipping (or lies outside [0, 1])."""
    from labkit.data import bkai

    if isinstance(got, Exception):
        return None
    try:
        g = np.asarray(got, dtype=float).ravel()
    except (TypeError, ValueError):
        return "return the values as a tuple, list or array of floats"
    w, h = case["width"], case["height"]
    if fmt == "box":
        x1, y1, x2, y2 = bkai.quad_to_box(case["xy"])
        unclipped = np.array([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
    else:
        unclipped = (np.asarray(case["xy"], dtype=float).reshape(4, 2) / [w, h]).ravel()
    outside = g.size and ((g < -1e-9).any() or (g > 1 + 1e-9).any())
    if outside or (g.shape == unclipped.shape and np.allclose(g, unclipped, atol=2e-6)):
        return ("this is the conversion without the clipping: clip the coordinates to the image (0..width, "
                "0..height) before normalising; Ultralytics drops a whole image when one label value is outside "
                "[0, 1]")
    return None


def quad_to_yolo(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(xy, width, height) -> (cx, cy, w, h)``: a BKAI quad (8 pixel coordinates) to a YOLO box.

    The box is the axis-aligned box around all four corners, clipped to the image, then normalised by the image
    size (centre x, centre y, width, height, each in [0, 1]). Reference: ``labkit.data.bkai.convert``'s rows."""
    seed = fresh_seed(seed)
    cases = _quad_cases(np.random.default_rng(seed), n)

    def hint(case, expected, got):
        return _clip_hint(case, expected, got) or (
            "the box spans the smallest to the largest x (and y) over all four corners, not two of them; "
            "centre = (x1 + x2) / 2 / width, width = (x2 - x1) / width")

    return run_cases("quad_to_yolo", fn, cases, lambda xy, width, height: _bkai_rows(xy, width, height, "box"),
                     compare=lambda e, g: compare_arrays(e, g, rtol=0, atol=2e-6),
                     reference_name="labkit.data.bkai", hint=hint, seed=seed, show=show)


def quad_to_yolo_polygon(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(xy, width, height) -> 8 values``: a BKAI quad to a YOLO polygon row (``fmt="polygon"``).

    Each corner is clipped to the image, then x is divided by the width and y by the height; the corners keep
    their order. Reference: ``labkit.data.bkai.convert(..., fmt="polygon")``'s rows."""
    seed = fresh_seed(seed)
    cases = _quad_cases(np.random.default_rng(seed), n)

    def hint(case, expected, got):
        return _clip_hint(case, expected, got, "polygon") or (
            "keep the corners in their order: x1/width, y1/height, x2/width, ..., y4/height, each clipped first")

    return run_cases("quad_to_yolo_polygon", fn, cases,
                     lambda xy, width, height: _bkai_rows(xy, width, height, "polygon"),
                     compare=lambda e, g: compare_arrays(e, g, rtol=0, atol=2e-6),
                     reference_name="labkit.data.bkai", hint=hint, seed=seed, show=show)


# ----------------------------------------------------------------------------------------------
# Label lines
# ----------------------------------------------------------------------------------------------
def _number(rng, v: float) -> str:
    r = rng.random()
    if r < 0.6:
        return str(int(round(v)))
    if r < 0.9:
        return f"{v:.1f}"
    return f"{v:.3f}"


def _line_cases(rng, n: int) -> list[dict]:
    from labkit.data.synthetic_text import COMMA_WORDS, WORDS

    cases = []
    for k in range(n):
        w, h = int(rng.integers(200, 1281)), int(rng.integers(150, 961))
        xy = _quad(rng, w, h, border=rng.random() < 0.3)
        if k == 0:
            text = str(rng.choice(COMMA_WORDS))  # a transcription with a comma
        elif k == 1:
            text = "###"  # don't care
        elif k == 2:
            text = None  # 8 numbers and no transcription
        elif k == 3:
            text = "Phở bò, gà, heo"  # two commas
        else:
            r = rng.random()
            text = str(rng.choice(COMMA_WORDS)) if r < 0.3 else "###" if r < 0.4 else str(rng.choice(WORDS))
        nums = ",".join(_number(rng, v) for v in xy)
        end = ["\n", "\r\n", ""][int(rng.integers(3))] if k > 0 else "\n"
        cases.append({"line": nums + ("" if text is None else "," + text) + end})
    return cases


def _compare_parsed(expected, got) -> str | None:
    try:
        xy, text = got
    except (TypeError, ValueError):
        return f"expected a pair (coordinates, text), got {describe(got, 60)}"
    diff = compare_arrays(expected[0], xy)
    if diff is not None:
        return "coordinates: " + diff
    if not isinstance(text, str):
        return f"the text should be a str, got {type(text).__name__}"
    if text != expected[1]:
        return f"text {text!r}, expected {expected[1]!r}"
    return None


def bkai_parse_line(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(line) -> (xy, text)``: a VinText/BKAI label line ``x1,y1,...,x4,y4,TEXT`` to its 8 coordinates
    (floats) and its transcription.

    The transcription may contain commas, ``###`` marks unreadable text, the line may end in ``\\n`` or ``\\r\\n``
    (not part of the text), and a line of only 8 numbers has the empty text. Reference:
    ``labkit.data.bkai.parse_line``."""
    from labkit.data import bkai

    seed = fresh_seed(seed)
    cases = _line_cases(np.random.default_rng(seed), n)

    def hint(case, expected, got):
        if not expected[1]:
            return "a line of only 8 numbers has no transcription: return the empty text ''"
        if isinstance(got, Exception):
            return "the line has 8 numbers, then the transcription (which may contain commas)"
        try:
            text = got[1]
        except Exception:  # noqa: BLE001 - got may be anything
            return "return a pair: (numpy array of the 8 coordinates as floats, the transcription)"
        if isinstance(text, str) and text.strip() == expected[1]:
            return "the line end (\\n or \\r\\n) is not part of the text: strip it"
        if isinstance(text, str) and expected[1].startswith(text.strip()):
            return ("the transcription may contain commas: split at most 8 times, line.split(',', 8), so the "
                    "commas after the 8th stay in the text")
        return None

    return run_cases("bkai_parse_line", fn, cases, lambda line: bkai.parse_line(line), compare=_compare_parsed,
                     reference_name="labkit.data.bkai.parse_line", hint=hint, seed=seed, show=show)


def _yolo_reference(line, width, height):
    from labkit import boxes

    parts = line.split()
    b = boxes.denormalize(boxes.cxcywh_to_xyxy(np.array([float(v) for v in parts[1:5]])), width, height)
    return int(parts[0]), b


def _compare_yolo(expected, got) -> str | None:
    try:
        cls, box = got
    except (TypeError, ValueError):
        return f"expected a pair (class, box), got {describe(got, 60)}"
    if not isinstance(cls, (int, np.integer)) or int(cls) != expected[0]:
        return f"class {cls!r}, expected {expected[0]} (an int)"
    diff = compare_arrays(expected[1], box, rtol=1e-9, atol=1e-6)
    return None if diff is None else "box: " + diff


def yolo_line_to_xyxy(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(line, width, height) -> (cls, [x1, y1, x2, y2])``: a YOLO label row ``cls cx cy w h``
    (normalised centre and size) to its class (int) and its box in pixel corners. Reference: ``labkit.boxes``
    (``cxcywh_to_xyxy`` then ``denormalize``)."""
    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        width, height = int(rng.integers(32, 1281)), int(rng.integers(32, 961))
        if k == 0:  # a wide, flat box: width and height scale differently
            width, height = 640, 320
        bw, bh = rng.uniform(0.05, 0.6, 2)
        cx, cy = rng.uniform(bw / 2, 1 - bw / 2), rng.uniform(bh / 2, 1 - bh / 2)
        cases.append({"line": f"{int(rng.integers(0, 5))} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}",
                      "width": width, "height": height})

    def hint(case, expected, got):
        return ("x1 = (cx - w/2) * width, y1 = (cy - h/2) * height, x2 = (cx + w/2) * width, "
                "y2 = (cy + h/2) * height; the class is the first number, as an int")

    return run_cases("yolo_line_to_xyxy", fn, cases, _yolo_reference, compare=_compare_yolo,
                     reference_name="labkit.boxes", hint=hint, seed=seed, show=show)
