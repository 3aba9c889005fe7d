"""Checkers for notebook 03 (YOLOv1): the target encoder and decoder, the IoU of two boxes of one cell, the loss.

The references are :mod:`labkit.yolov1`'s tested functions (``tests/test_yolov1_encode.py``,
``tests/test_yolov1_loss.py``: hand-computed cases, a loop-by-loop version of the paper's eq. (3), the
TensorFlow encoder against the NumPy one). The functions they check are called as::

    encode(boxes, labels, S, B, C)  -> target (S, S, B*5 + C)        (boxes: (N, 4) normalized x1 y1 x2 y2)
    decode(target, S, B, C)         -> (boxes (K, 4), labels (K,))    (row-major cell order)
    cell_iou(a, b, S)               -> IoU (N,)                       (a, b: (N, 4) cell-offset x, y and image w, h)
    yolo_loss(y_true, y_pred, S, B, C) -> {"coord", "obj", "noobj", "class"}: each (batch,)

Layout of the last axis: ``[x1 y1 w1 h1 c1, ..., xB yB wB hB cB, p1 ... pC]`` (see :mod:`labkit.yolov1.encode`).
Every checker draws fresh random cases (grid sizes S, B predictors and C classes of several sizes); on a mismatch
it names the case, the cell and channel (or the loss term) that differs, expected against got, and a hint that
names the mistake when the answer matches a known wrong one (rounding instead of floor, offsets not relative to
the cell, no square roots on w and h, confidence target 1 ...). TensorFlow is imported only by the checkers
that need it (the IoU and the loss).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from labkit.check import Report, describe, fresh_seed, run_cases
from labkit.yolov1 import encode as _enc

__all__ = ["yolo_encode", "yolo_decode", "yolo_cell_iou", "yolo_loss"]

TERMS = ("coord", "obj", "noobj", "class")


class _Failed:
    """What the student's function did instead of returning a usable result (run_cases never sees a raise)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _call(fn: Callable, *args):
    """``fn(*args)``, with any exception but NotImplementedError (a stub) turned into a :class:`_Failed`."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - the student's code may raise anything; report it
        return _Failed(f"raised {type(err).__name__}: {err}")


def _numbers(x, what: str):
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        return _Failed(f"{what} is not an array of numbers ({err})")


def _channel_name(ch: int, B: int) -> str:
    if ch < 5 * B:
        return f"{('x', 'y', 'w', 'h', 'confidence')[ch % 5]} of box slot {ch // 5 + 1}"
    return f"probability of class {ch - 5 * B}"


# --- random boxes ------------------------------------------------------------------------------------------

def _random_boxes(rng: np.random.Generator, S: int, n: int, *, collide: bool = False, round_trap: bool = True,
                  corners: bool = False):
    """``n`` normalized xyxy boxes inside the image whose centres are at least 3 % of a cell away from every cell
    border (so float32 and float64 code put them in the same cell). With ``round_trap`` the first centre lies in
    the upper half of its cell along x or y, where rounding and floor disagree; with ``collide`` the second centre
    falls in the first one's cell (one object per cell: the first wins); with ``corners`` the first two objects
    sit in the top-right and bottom-left cells (row-major and column-major order then differ)."""
    cells = rng.integers(0, S, size=(n, 2))
    if corners and n >= 2:
        cells[0], cells[1] = (S - 1, 0), (0, S - 1)                        # (col, row)
    frac = rng.uniform(0.03, 0.97, size=(n, 2))
    if n and round_trap:
        frac[0, int(rng.integers(0, 2))] = rng.uniform(0.55, 0.97)
    if collide and n >= 2:
        cells[1] = cells[0]
    centre = (cells + frac) / S                                           # (col, row) order: x, y
    half_max = np.minimum(centre, 1 - centre)
    wh = rng.uniform(0.05, 1.0, size=(n, 2)) * np.minimum(2 * half_max, 0.9)
    wh = np.maximum(wh, 0.02)
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    return np.clip(boxes, 0.0, 1.0).astype(np.float32).astype(np.float64)  # values exact in float32


def _encode_cases(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        S = int(rng.choice([2, 3, 5, 7]))
        B = int(rng.choice([1, 2, 3]))
        C = int(rng.choice([1, 3, 5, 20]))
        n_obj = 0 if k == n - 1 and n > 3 else int(rng.integers(1, 5))
        boxes = _random_boxes(rng, S, n_obj, collide=(k % 3 == 2))
        out.append({"boxes": boxes, "labels": rng.integers(0, C, n_obj), "S": S, "B": B, "C": C})
    return out


# --- the encoder -------------------------------------------------------------------------------------------

def _encode_variant(boxes, labels, S, B, C, *, cell="floor", xy="cell", wh="image", first_wins=True, slots="all"):
    """The encoder with one of the usual mistakes (for the hints only; the reference is labkit's)."""
    t = np.zeros((S, S, B * 5 + C), np.float64)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    pick = np.round if cell == "round" else np.floor
    col = np.clip(pick(cx * S), 0, S - 1).astype(int)
    row = np.clip(pick(cy * S), 0, S - 1).astype(int)
    if xy == "image":
        x, y = cx, cy
    elif xy == "image_offset":
        x, y = cx - col / S, cy - row / S
    else:
        x, y = cx * S - col, cy * S - row
    if wh == "cell":
        w, h = w * S, h * S
    order = range(len(b)) if first_wins else reversed(range(len(b)))
    for k in order:
        i, j = row[k], col[k]
        if t[i, j, 4] == 1:
            continue
        for s in (range(B) if slots == "all" else range(1)):
            t[i, j, 5 * s:5 * s + 5] = (x[k], y[k], w[k], h[k], 1.0)
        t[i, j, B * 5 + int(labels[k])] = 1.0
    return t


_ENCODE_WRONG = [
    (dict(cell="round"), "the responsible cell is the one that *contains* the centre: col = floor(cx·S), "
                         "row = floor(cy·S); rounding moves every centre in the right or lower half of a cell "
                         "into the next cell"),
    (dict(xy="image"), "x, y must be the centre's offset *inside its cell*, in cell units: x = cx·S − col "
                       "(in [0, 1]); you stored the centre in image coordinates"),
    (dict(xy="image_offset"), "x, y are offsets inside the cell in *cell* units, x = cx·S − col (in [0, 1]); "
                              "cx − col/S is the same offset in image units (S times too small)"),
    (dict(wh="cell"), "w, h are fractions of the *whole image* (x2 − x1), not of a cell"),
    (dict(first_wins=False), "when two centres fall in the same cell the *first* object (in the given order) "
                             "keeps the cell; later ones are dropped"),
    (dict(slots="one"), "every one of the B box slots of an object cell holds the same box and confidence 1 "
                        "(the loss decides which predictor is responsible)"),
]


def _first_cell_difference(e, g, B: int) -> str | None:
    """None when the targets agree; else the cells that hold objects, or the first cell and channel that differ."""
    close = np.isclose(g, e, rtol=1e-5, atol=1e-5)
    if close.all():
        return None
    want = {tuple(int(v) for v in rc) for rc in np.argwhere(e[..., 4] > 0.5)}
    have = {tuple(int(v) for v in rc) for rc in np.argwhere(np.abs(g[..., 4]) > 0.5)}
    if want != have:
        fmt = lambda cells: ", ".join(f"(row {r}, col {c})" for r, c in sorted(cells)) or "none"  # noqa: E731
        return f"objects (confidence 1 in slot 1) in cells {fmt(have)}; expected in cells {fmt(want)}"
    r, c, ch = (int(v) for v in np.argwhere(~close)[0])
    return f"cell (row {r}, col {c}), {_channel_name(ch, B)}: got {g[r, c, ch]:.6g}, expected {e[r, c, ch]:.6g}"


def yolo_encode(fn: Callable, *, seed: int | None = None, cases: int = 8, show: bool = True) -> Report:
    """Check ``fn(boxes, labels, S, B, C) -> target (S, S, B*5 + C)`` against
    :func:`labkit.yolov1.encode.encode_targets`: the cell containing an object's centre (floor) is responsible;
    x, y are the centre's offset inside that cell (cell units), w, h fractions of the image; every box slot holds
    the box with confidence 1; one-hot class; first object wins a shared cell."""
    seed = fresh_seed(seed)

    def runner(boxes, labels, S, B, C):
        got = _call(fn, boxes.copy(), labels.copy(), S, B, C)
        return got if isinstance(got, _Failed) else _numbers(got, "the target")

    current = {}

    def reference(boxes, labels, S, B, C):
        current["B"] = B  # compare() sees only the two targets; it names the channel with this B
        return _enc.encode_targets(boxes, labels, S, B, C)

    def compare(expected, got):
        if isinstance(got, _Failed):
            return got.text
        if got.shape != expected.shape:
            return f"the target has shape {got.shape}, expected {expected.shape} = (S, S, B*5 + C)"
        return _first_cell_difference(np.asarray(expected, np.float64), got, current["B"])

    def hint(case, expected, got):
        if isinstance(got, _Failed) or got.shape != expected.shape:
            return "return a NumPy array of shape (S, S, B*5 + C), zeros except in the cells that hold a centre"
        for kw, text in _ENCODE_WRONG:
            alt = _encode_variant(case["boxes"], case["labels"], case["S"], case["B"], case["C"], **kw)
            if np.allclose(alt, got, rtol=1e-5, atol=1e-5):
                return text
        return ("col = floor(cx·S), row = floor(cy·S); slot b of that cell = (cx·S − col, cy·S − row, w, h, 1) "
                "for every b; class one-hot after the B·5 box values; the first object keeps a shared cell")

    runner.__name__ = getattr(fn, "__name__", "your function")
    return run_cases("yolo_encode", runner, _encode_cases(seed, cases), reference, compare=compare,
                     reference_name="labkit.yolov1.encode.encode_targets", hint=hint, seed=seed, show=show)


# --- the decoder -------------------------------------------------------------------------------------------

def _decode_cases(seed: int, n: int) -> list[dict]:
    """Targets encoded by labkit from random boxes; in most cases one object in the top-right cell comes before
    one in the bottom-left cell, so the row-major order is visible."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        S, B, C = int(rng.choice([3, 5, 7])), int(rng.choice([1, 2, 3])), int(rng.choice([1, 3, 5, 20]))
        n_obj = 0 if k == n - 1 and n > 3 else int(rng.integers(2, 6))
        boxes = _random_boxes(rng, S, n_obj, corners=True)
        target = _enc.encode_targets(boxes, rng.integers(0, C, n_obj), S, B, C)
        out.append({"target": target, "S": S, "B": B, "C": C})
    return out


def yolo_decode(fn: Callable, *, seed: int | None = None, cases: int = 8, show: bool = True) -> Report:
    """Check ``fn(target, S, B, C) -> (boxes (K, 4) normalized xyxy, labels (K,))`` against
    :func:`labkit.yolov1.encode.decode_targets`: one box per object cell (confidence > 0.5), in row-major cell
    order, its centre at ((col + x)/S, (row + y)/S)."""
    seed = fresh_seed(seed)

    def runner(target, S, B, C):
        got = _call(fn, target.copy(), S, B, C)
        if isinstance(got, _Failed):
            return got
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return _Failed(f"returned {type(got).__name__}; return the pair (boxes, labels)")
        boxes, labels = _numbers(got[0], "boxes"), _numbers(got[1], "labels")
        for v in (boxes, labels):
            if isinstance(v, _Failed):
                return v
        return boxes.reshape(-1, 4) if boxes.size == 0 else boxes, labels.reshape(-1)

    def compare(expected, got):
        if isinstance(got, _Failed):
            return got.text
        (eb, el), (gb, gl) = expected, got
        if gb.shape != eb.shape:
            return f"boxes of shape {gb.shape}, expected {eb.shape} (one row x1 y1 x2 y2 per object cell)"
        if gl.shape != el.shape:
            return f"labels of shape {gl.shape}, expected {el.shape}"
        bad = ~np.isclose(gb, eb, rtol=1e-5, atol=1e-5).all(axis=1) | (gl != el)
        if not bad.any():
            return None
        k = int(np.argwhere(bad)[0][0])
        return (f"object {k + 1} of {len(el)}: got box {np.round(gb[k], 4).tolist()} label {gl[k]:g}, "
                f"expected box {np.round(eb[k].astype(np.float64), 4).tolist()} label {int(el[k])}")

    def hint(case, expected, got):
        if isinstance(got, _Failed):
            return "return (boxes, labels): boxes (K, 4) normalized x1 y1 x2 y2, labels (K,) integers"
        (eb, el), (gb, gl) = expected, got
        if gb.shape != eb.shape:
            return "one box per cell whose confidence (slot 1, channel 4) is above 0.5, not one per box slot"
        rows = lambda b, l: np.column_stack([b, l])[np.lexsort(np.column_stack([b, l]).T[::-1])]  # noqa: E731
        if len(eb) and np.allclose(rows(gb, gl), rows(eb.astype(np.float64), el), atol=1e-5):
            return "list the objects in row-major cell order (row by row, left to right within a row)"
        if len(eb):
            cx, cy = (eb[:, 0] + eb[:, 2]) / 2, (eb[:, 1] + eb[:, 3]) / 2
            w, h = eb[:, 2] - eb[:, 0], eb[:, 3] - eb[:, 1]
            if np.allclose(gb, np.stack([cx, cy, w, h], 1), atol=1e-5):
                return "return corners x1 y1 x2 y2 (centre ∓ half the size), not centre and size"
            if not np.allclose(gb, eb, atol=1e-5):
                return (f"the centre is at ((col + x)/S, (row + y)/S): x, y are offsets inside the cell in cell "
                        f"units (here S = {case['S']}); w, h are already fractions of the image")
        return "the label is the argmax of the C class values that follow the B·5 box values"

    runner.__name__ = getattr(fn, "__name__", "your function")
    return run_cases("yolo_decode", runner, _decode_cases(seed, cases), lambda **c: _enc.decode_targets(**c),
                     compare=compare, reference_name="labkit.yolov1.encode.decode_targets", hint=hint, seed=seed,
                     show=show)


# --- IoU of two boxes of one cell --------------------------------------------------------------------------

def _np_cell_iou(a, b, S, *, divide=True, subtract_inter=True, clamp=True, centre=True):
    """IoU in float64 (the default), or with one of the usual mistakes (for the hints and the case design)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    k = S if divide else 1.0
    ax, ay, bx, by = a[..., 0] / k, a[..., 1] / k, b[..., 0] / k, b[..., 1] / k
    aw, ah, bw, bh = a[..., 2], a[..., 3], b[..., 2], b[..., 3]
    if centre:
        a1x, a2x, a1y, a2y = ax - aw / 2, ax + aw / 2, ay - ah / 2, ay + ah / 2
        b1x, b2x, b1y, b2y = bx - bw / 2, bx + bw / 2, by - bh / 2, by + bh / 2
    else:
        a1x, a2x, a1y, a2y = ax, ax + aw, ay, ay + ah
        b1x, b2x, b1y, b2y = bx, bx + bw, by, by + bh
    iw = np.minimum(a2x, b2x) - np.maximum(a1x, b1x)
    ih = np.minimum(a2y, b2y) - np.maximum(a1y, b1y)
    if clamp:
        iw, ih = np.maximum(iw, 0), np.maximum(ih, 0)
    inter = iw * ih
    union = aw * ah + bw * bh - (inter if subtract_inter else 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _iou_cases(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        S = int(rng.choice([2, 3, 7]))
        m = int(rng.integers(4, 9))
        a = np.column_stack([rng.uniform(0, 1, (m, 2)), rng.uniform(0.02, 0.8, (m, 2))])
        b = a.copy()
        b[:, :2] = np.clip(a[:, :2] + rng.normal(0, 0.4, (m, 2)), 0, 1)      # nearby centres, other sizes
        b[:, 2:] = np.clip(a[:, 2:] * np.exp(rng.normal(0, 0.6, (m, 2))), 0.02, 1.0)
        b[0] = a[0]                                                           # identical: IoU 1
        b[1, 2:] = a[1, 2:] / 2                                               # nested, same centre
        b[1, :2] = a[1, :2]
        if S > 1:                                                             # disjoint boxes: IoU 0
            a[2] = [0.0, 0.0, 0.5 / S, 0.5 / S]
            b[2] = [1.0, 1.0, 0.5 / S, 0.5 / S]
        out.append({"a": a.astype(np.float32), "b": b.astype(np.float32), "S": S})
    return out


def yolo_cell_iou(fn: Callable, *, seed: int | None = None, cases: int = 6, show: bool = True) -> Report:
    """Check ``fn(a, b, S) -> IoU (N,)`` against :func:`labkit.yolov1.loss.cell_iou`: a[k] and b[k] are boxes
    of the same grid cell given as (x, y, w, h), x, y the centre's offset inside the cell (cell units, [0, 1]),
    w, h fractions of the image."""
    seed = fresh_seed(seed)

    def reference(a, b, S):
        from labkit.yolov1.loss import cell_iou

        return np.asarray(cell_iou(a, b, S), np.float64)

    def runner(a, b, S):
        got = _call(fn, a.copy(), b.copy(), S)
        return got if isinstance(got, _Failed) else _numbers(got, "the IoU")

    def compare(expected, got):
        if isinstance(got, _Failed):
            return got.text
        if got.shape != expected.shape:
            return f"IoU of shape {got.shape}, expected {expected.shape} (one value per pair a[k], b[k])"
        close = np.isclose(got, expected, rtol=1e-4, atol=1e-6)
        if close.all():
            return None
        k = int(np.argwhere(~close)[0][0])
        a, b = (np.round(_last[v][k].astype(np.float64), 4).tolist() for v in "ab")
        return f"pair a[{k}] = {a}, b[{k}] = {b}: IoU got {got[k]:.6g}, expected {expected[k]:.6g}"

    _last: dict = {}

    def reference_and_remember(a, b, S):
        _last.update(a=a, b=b)
        return reference(a, b, S)

    wrong = [
        (dict(divide=False), "x, y are in cell units while w, h are fractions of the image: divide x and y by S "
                             "before you combine them with w and h"),
        (dict(centre=False), "x, y are the box's *centre*: its corners are x ∓ w/2 and y ∓ h/2"),
        (dict(clamp=False), "boxes that do not overlap have intersection 0: clamp the overlap widths at 0 "
                            "(max(·, 0)) before multiplying"),
        (dict(subtract_inter=False), "union = area(a) + area(b) − intersection (the overlap is counted twice "
                                     "otherwise)"),
    ]

    def hint(case, expected, got):
        if isinstance(got, _Failed) or got.shape != expected.shape:
            return "return one IoU per pair: an array of shape (N,)"
        for kw, text in wrong:
            if np.allclose(_np_cell_iou(case["a"], case["b"], case["S"], **kw), got, rtol=1e-4, atol=1e-6):
                return text
        return "corners x/S ∓ w/2, y/S ∓ h/2; intersection = overlap width × overlap height (each ≥ 0); IoU = " \
               "intersection / (area a + area b − intersection)"

    runner.__name__ = getattr(fn, "__name__", "your function")
    return run_cases("yolo_cell_iou", runner, _iou_cases(seed, cases), reference_and_remember, compare=compare,
                     reference_name="labkit.yolov1.loss.cell_iou", hint=hint, seed=seed, show=show)


# --- the loss ----------------------------------------------------------------------------------------------

def _loss_cases(seed: int, n: int) -> list[dict]:
    """Random batches: targets from labkit's encoder; predictions near each ground-truth box (so IoUs are varied
    and the B predictors' IoUs differ by at least 1e-3: float32 and float64 code pick the same responsible
    predictor), w, h ≥ 0.01, confidences in [0, 1], class probabilities that sum to 1."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        S = int(rng.choice([2, 3, 7]))
        B = int(rng.choice([1, 2, 3])) if k else 2
        C = int(rng.choice([1, 3, 20]))
        batch = int(rng.integers(2, 4))
        yt = np.stack([_target(rng, S, B, C, first=(i == 0)) for i in range(batch)])
        yp = np.zeros_like(yt)
        tb = yt[..., :5 * B].reshape(batch, S, S, B, 5)
        for idx in np.ndindex(batch, S, S):
            gt = tb[idx][0]
            for _ in range(100):
                if gt[4] > 0.5:   # an object cell: predictors scattered around the ground truth
                    xy = np.clip(gt[:2] + rng.normal(0, 0.2, (B, 2)), 0, 1)
                    wh = np.clip(gt[2:4] * np.exp(rng.normal(0, 0.5, (B, 2))), 0.01, 1)
                else:
                    xy, wh = rng.uniform(0, 1, (B, 2)), rng.uniform(0.01, 1, (B, 2))
                box = np.column_stack([xy, wh])
                if gt[4] < 0.5 or B == 1:
                    break
                ious = np.sort(_np_cell_iou(box, gt[None, :4], S))
                if np.all(np.diff(ious) > 1e-3):
                    break
            conf = rng.uniform(0, 1, B)
            yp[idx][:5 * B] = np.column_stack([box, conf]).reshape(-1)
            p = rng.uniform(0.05, 1, C)
            yp[idx][5 * B:] = p / p.sum()
        out.append({"y_true": yt.astype(np.float32), "y_pred": yp.astype(np.float32), "S": S, "B": B, "C": C})
    return out


def _target(rng, S, B, C, first):
    n_obj = int(rng.integers(1 if first else 0, 4))
    return _enc.encode_targets(_random_boxes(rng, S, n_obj, round_trap=False), rng.integers(0, C, n_obj), S, B, C)


def _loss_parts(y_true, y_pred, S, B, C):
    """NumPy pieces of the loss (float64) for the hints: responsibility from labkit's rule, and the variants."""
    n = y_true.shape[0]
    tb = y_true.reshape(n, S, S, B * 5 + C)[..., :5 * B].reshape(n, S, S, B, 5).astype(np.float64)
    pb = y_pred.reshape(n, S, S, B * 5 + C)[..., :5 * B].reshape(n, S, S, B, 5).astype(np.float64)
    obj = tb[..., 0, 4]
    gt = tb[..., 0:1, :4]
    iou = _np_cell_iou(pb[..., :4], gt, S)
    resp = np.eye(B)[iou.argmax(-1)] * obj[..., None]
    first = np.eye(B)[np.zeros_like(obj, dtype=int)] * obj[..., None]
    d_xy = ((pb[..., :2] - gt[..., :2]) ** 2).sum(-1)
    d_wh_root = ((np.sqrt(pb[..., 2:4]) - np.sqrt(gt[..., 2:4])) ** 2).sum(-1)
    d_wh_plain = ((pb[..., 2:4] - gt[..., 2:4]) ** 2).sum(-1)
    conf = pb[..., 4]
    cls_t = y_true.reshape(n, S, S, -1)[..., 5 * B:].astype(np.float64)
    cls_p = y_pred.reshape(n, S, S, -1)[..., 5 * B:].astype(np.float64)
    axes = (1, 2, 3)
    return {
        "coord": [
            (5 * (resp * (d_xy + d_wh_plain)).sum(axes),
             "no square roots: the paper compares √w and √h, (√w − √ŵ)² + (√h − √ĥ)², so that the same error "
             "costs more on a small box than on a large one"),
            ((resp * (d_xy + d_wh_root)).sum(axes), "the coordinate term is weighted by λcoord = 5"),
            (5 * (first * (d_xy + d_wh_root)).sum(axes),
             "only the *responsible* predictor is trained on the box: the one of the B with the highest IoU "
             "with the ground truth (not always the first)"),
            (5 * (obj[..., None] * (d_xy + d_wh_root)).sum(axes),
             "only the *responsible* predictor (highest IoU) gets the coordinate term, not all B predictors of "
             "the cell"),
        ],
        "obj": [
            ((resp * (conf - 1) ** 2).sum(axes),
             "the responsible predictor's confidence target is its IoU with the ground truth (a constant), "
             "not 1: confidence = Pr(object)·IoU"),
            ((first * (conf - _np_cell_iou(pb[..., :4], gt, S)) ** 2).sum(axes),
             "the object term belongs to the *responsible* predictor (highest IoU), not always the first"),
        ],
        "noobj": [
            (0.5 * ((1 - obj)[..., None] * conf ** 2).sum(axes),
             "the no-object term covers every predictor that is not responsible, including the B − 1 other "
             "predictors of an object cell, not only the empty cells"),
            (((1 - resp) * conf ** 2).sum(axes), "the no-object term is weighted by λnoobj = 0.5"),
        ],
        "class": [
            (((cls_p - cls_t) ** 2).sum(axes), "the class term counts only cells that hold an object (𝟙obj_i)"),
        ],
    }


def yolo_loss(fn: Callable, *, seed: int | None = None, cases: int = 6, show: bool = True) -> Report:
    """Check ``fn(y_true, y_pred, S, B, C) -> {"coord", "obj", "noobj", "class": (batch,)}`` against
    :func:`labkit.yolov1.loss.yolo_loss_terms` (the paper's eq. (3), λcoord = 5, λnoobj = 0.5, responsible
    predictor = highest IoU, confidence target = that IoU). Inputs are float32 NumPy arrays of shape
    (batch, S, S, B*5 + C); the function may use NumPy or TensorFlow."""
    seed = fresh_seed(seed)

    def reference(y_true, y_pred, S, B, C):
        from labkit.yolov1.loss import yolo_loss_terms

        terms = yolo_loss_terms(y_true, y_pred, S, B, C)
        return {k: np.asarray(terms[k], np.float64) for k in TERMS}

    def runner(y_true, y_pred, S, B, C):
        got = _call(fn, y_true.copy(), y_pred.copy(), S, B, C)
        if isinstance(got, _Failed):
            return got
        if not hasattr(got, "keys") or not all(k in got for k in TERMS):
            return _Failed(f"returned {describe(got, 60)}; return a dict with the four terms "
                           f"{', '.join(repr(t) for t in TERMS)}, each of shape (batch,)")
        out = {}
        for k in TERMS + (("total",) if "total" in got else ()):
            v = _numbers(got[k], f"term {k!r}")
            if isinstance(v, _Failed):
                return v
            out[k] = v
        return out

    def compare(expected, got):
        if isinstance(got, _Failed):
            return got.text
        for k in TERMS:
            e, g = expected[k], got[k]
            if g.shape != e.shape:
                return f"term {k!r} has shape {g.shape}, expected {e.shape}: one value per image (sum over the grid)"
            close = np.isclose(g, e, rtol=1e-4, atol=1e-5)
            if not close.all():
                i = int(np.argwhere(~close)[0][0])
                return f"term {k!r}, image {i}: got {g[i]:.6g}, expected {e[i]:.6g}"
        if "total" in got:
            total = sum(expected[k] for k in TERMS)
            if got["total"].shape != total.shape or not np.allclose(got["total"], total, rtol=1e-4, atol=1e-5):
                return f"'total' is not the sum of the four terms: got {describe(got['total'])}, expected " \
                       f"{describe(total)}"
        return None

    def hint(case, expected, got):
        if isinstance(got, _Failed):
            return "return {'coord': ..., 'obj': ..., 'noobj': ..., 'class': ...}, each summed over the grid, " \
                   "one value per image"
        parts = _loss_parts(case["y_true"], case["y_pred"], case["S"], case["B"], case["C"])
        for k in TERMS:
            if got[k].shape == expected[k].shape and np.allclose(got[k], expected[k], rtol=1e-4, atol=1e-5):
                continue
            for alt, text in parts[k]:
                if got[k].shape == alt.shape and np.allclose(got[k], alt, rtol=1e-4, atol=1e-5):
                    return text
            return {
                "coord": "λcoord·Σ over responsible predictors of (x − x̂)² + (y − ŷ)² + (√w − √ŵ)² + (√h − √ĥ)²",
                "obj": "Σ over responsible predictors of (C − IoU)², the IoU with the ground truth taken as a "
                       "constant",
                "noobj": "λnoobj·Σ over every predictor that is not responsible of C²",
                "class": "Σ over object cells of Σ_c (p(c) − p̂(c))²",
            }[k]
        return "the four terms are right; 'total' must be their sum"

    runner.__name__ = getattr(fn, "__name__", "your function")
    return run_cases("yolo_loss", runner, _loss_cases(seed, cases), reference, compare=compare,
                     reference_name="labkit.yolov1.loss.yolo_loss_terms", hint=hint, seed=seed, show=show)
