"""Checkers for notebook 05 (detection metrics): IoU, GIoU, class-wise NMS, the precision envelope and AP.

Each checker runs your function on fresh random cases (plus a few fixed edge cases: empty input, identical boxes,
boxes that only touch, tied scores, an IoU exactly at the threshold, boxes of different classes that overlap)
against a verified reference, and prints one line: ``check <name>: ✓ n/n random cases match <reference>``, or
the first case that differs, expected vs got, and a hint. Pass ``seed=`` to replay a failure.

========================  ================================================  ==========================================
checker                   your function                                     reference
========================  ================================================  ==========================================
``box_iou``               ``fn(boxes1, boxes2) -> (N, M)`` IoU              ``torchvision.ops.box_iou``
``giou``                  ``fn(boxes1, boxes2) -> (N, M)`` GIoU             ``torchvision.ops.generalized_box_iou``
``nms``                   ``fn(boxes, scores, iou_threshold, classes)``     ``torchvision.ops.batched_nms``
                          ``-> kept indices``, class-wise
``envelope``              ``fn(precision) -> envelope``                     ``labkit.metrics.envelope``
``ap_area``               ``fn(recall, precision) -> AP``, exact area       ``labkit.metrics.ap_from_pr(.., "voc")``
                          under the envelope (VOC2010+)
``ap_coco``               ``fn(recall, precision) -> AP``, envelope         ``labkit.metrics.ap_from_pr(.., "coco")``
                          sampled at 101 recalls (pycocotools)              (= pycocotools, tests/test_metrics.py)
========================  ================================================  ==========================================

Boxes are ``(N, 4)`` float64 NumPy arrays of ``(x1, y1, x2, y2)`` corners with positive width and height; a
function may answer with a NumPy array, a list or a torch tensor.
"""
from __future__ import annotations

import numpy as np

from labkit.check import compare_arrays, fresh_seed, run_cases

__all__ = ["box_iou", "giou", "nms", "envelope", "ap_area", "ap_coco"]


# --------------------------------------------------------------------------------------------------
# Random inputs
# --------------------------------------------------------------------------------------------------
def _random_boxes(rng, n: int, spread: float = 60.0) -> np.ndarray:
    """``n`` xyxy boxes around a few centres (so that many pairs overlap); a third of the cases on integers."""
    centres = rng.uniform(20, 20 + spread, size=(max(n // 3, 1), 2))
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 8, size=(n, 2))
    wh = rng.uniform(6, 40, size=(n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    if rng.random() < 0.3:
        boxes = np.round(boxes)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes


# One box against boxes where simple mistakes show: identical, touching edges, inside, disjoint, a corner overlap.
_EDGE_A = np.array([[0., 0., 10., 10.]])
_EDGE_B = np.array([[0., 0., 10., 10.], [10., 0., 20., 10.], [2., 3., 5., 9.], [30., 40., 35., 50.],
                    [5., 5., 15., 25.]])


def _pair_cases(rng, n: int) -> list[dict]:
    cases = [{"boxes1": np.zeros((0, 4)), "boxes2": _random_boxes(rng, 3)},   # an empty set of boxes
             {"boxes1": _EDGE_A, "boxes2": _EDGE_B}]                           # the hand-made pairs
    while len(cases) < n:
        k, m = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        both = _random_boxes(rng, k + m)
        cases.append({"boxes1": both[:k], "boxes2": both[k:]})
    return cases[:n]


# --------------------------------------------------------------------------------------------------
# IoU and GIoU
# --------------------------------------------------------------------------------------------------
def _inter_union_enclosing(boxes1, boxes2):
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    cwh = np.maximum(a[..., 2:], b[..., 2:]) - np.minimum(a[..., :2], b[..., :2])
    return inter, area_a, area_b, cwh[..., 0] * cwh[..., 1]


def _matches(got, value) -> bool:
    return compare_arrays(value, got) is None


def _iou_hint(case, expected, got):
    inter, area_a, area_b, c = _inter_union_enclosing(case["boxes1"], case["boxes2"])
    a, b = case["boxes1"][:, None, :], case["boxes2"][None, :, :]
    raw_w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    raw_h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    if np.asarray(expected).ndim == 2 and _matches(got, np.asarray(expected).T):
        return "the result is transposed: row i, column j is the IoU of boxes1[i] with boxes2[j], shape (N, M)"
    if _matches(got, inter / (area_a + area_b)):
        return "the union is |A| + |B| - |A ∩ B|: subtract the intersection, or it is counted twice"
    if _matches(got, raw_w * raw_h / (area_a + area_b - raw_w * raw_h)):
        return ("clamp the intersection's width and height at 0 before multiplying: for boxes that do not overlap "
                "they are negative, and two negatives multiply to a positive 'overlap'")
    if _matches(got, inter / np.minimum(area_a, area_b)):
        return "divide by the union, not by the smaller box's area"
    return "per pair: intersection = max(0, min(x2) - max(x1)) * max(0, min(y2) - max(y1)); IoU = inter / union"


def _giou_hint(case, expected, got):
    inter, area_a, area_b, c = _inter_union_enclosing(case["boxes1"], case["boxes2"])
    union = area_a + area_b - inter
    if _matches(got, inter / union):
        return ("that is plain IoU: GIoU subtracts (|C| - |A ∪ B|) / |C|, C the smallest box enclosing both "
                "(it matters where boxes overlap little or not at all)")
    if _matches(got, inter / union - (c - inter) / c):
        return ("GIoU's penalty is the part of C outside the *union*: (|C| - |A ∪ B|) / |C|, "
                "not (|C| - |A ∩ B|) / |C|")
    if _matches(got, inter / union - c / union):
        return "the penalty is divided by |C| (the enclosing box), not by the union"
    if np.asarray(expected).ndim == 2 and _matches(got, np.asarray(expected).T):
        return "the result is transposed: row i, column j is GIoU(boxes1[i], boxes2[j]), shape (N, M)"
    return ("C = (min x1, min y1, max x2, max y2) of the two boxes; GIoU = IoU - (|C| - union) / |C|; "
            "check the intersection (clamped at 0) first")


def box_iou(fn, *, n: int = 20, seed: int | None = None, show: bool = True):
    """Check ``fn(boxes1, boxes2)`` -> the ``(N, M)`` IoU matrix of two sets of xyxy boxes."""
    import torch
    import torchvision.ops as tvo

    seed = fresh_seed(seed)
    cases = _pair_cases(np.random.default_rng(seed), n)

    def reference(boxes1, boxes2):
        return tvo.box_iou(torch.from_numpy(boxes1), torch.from_numpy(boxes2)).numpy()

    return run_cases("box_iou", fn, cases, reference, reference_name="torchvision.ops.box_iou", hint=_iou_hint,
                     seed=seed, show=show)


def giou(fn, *, n: int = 20, seed: int | None = None, show: bool = True):
    """Check ``fn(boxes1, boxes2)`` -> the ``(N, M)`` generalized IoU (GIoU) matrix of two sets of xyxy boxes."""
    import torch
    import torchvision.ops as tvo

    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = _pair_cases(rng, n)
    for case in cases[2:5]:  # a few sets spread wide, so that GIoU ranks many disjoint pairs
        both = _random_boxes(rng, len(case["boxes1"]) + len(case["boxes2"]), spread=200.0)
        case["boxes1"], case["boxes2"] = both[:len(case["boxes1"])], both[len(case["boxes1"]):]

    def reference(boxes1, boxes2):
        return tvo.generalized_box_iou(torch.from_numpy(boxes1), torch.from_numpy(boxes2)).numpy()

    return run_cases("giou", fn, cases, reference, reference_name="torchvision.ops.generalized_box_iou",
                     hint=_giou_hint, seed=seed, show=show)


# --------------------------------------------------------------------------------------------------
# Class-wise NMS
# --------------------------------------------------------------------------------------------------
def _nms_cases(rng, n: int) -> list[dict]:
    def case(boxes, scores, thr, classes):
        return {"boxes": np.asarray(boxes, np.float64).reshape(-1, 4), "scores": np.asarray(scores, np.float64),
                "iou_threshold": float(thr), "classes": np.asarray(classes, np.int64)}

    sq = [10., 10., 40., 40.]
    cases = [
        case(np.zeros((0, 4)), [], 0.5, []),                                             # nothing to suppress
        case([sq], [0.9], 0.5, [2]),                                                     # one box
        case([sq, sq, sq], [0.7, 0.7, 0.7], 0.5, [0, 0, 0]),                             # identical boxes, tied scores
        case([sq, sq], [0.9, 0.8], 0.5, [0, 1]),                                         # identical, different classes
        case([[0, 0, 3, 1], [1, 0, 4, 1]], [0.9, 0.8], 0.5, [1, 1]),                     # IoU exactly 0.5
        case([[0, 0, 30, 30], [2, 1, 31, 30], [1, 2, 30, 32], [20, 20, 50, 50]],          # two classes stacked
             [0.6, 0.9, 0.7, 0.8], 0.5, [0, 1, 0, 1]),
    ]
    while len(cases) < n:
        k = int(rng.integers(2, 31))
        n_cls = int(rng.integers(2, 4))
        boxes = _random_boxes(rng, k)
        classes = rng.integers(0, n_cls, k)
        # an object of another class right on top of some boxes (a rider on a horse): class-agnostic NMS loses it
        for j in rng.choice(k, size=max(1, k // 4), replace=False):
            boxes[j] = boxes[(j + 1) % k] + rng.normal(0, 1.5, 4)
            boxes[j, 2:] = np.maximum(boxes[j, 2:], boxes[j, :2] + 1)
            classes[j] = (classes[(j + 1) % k] + 1) % n_cls
        scores = rng.integers(1, 6, k) / 6 if rng.random() < 0.3 else rng.uniform(0.05, 1.0, k)  # ties sometimes
        cases.append(case(boxes, scores, rng.uniform(0.3, 0.7), classes))
    return cases[:n]


def _kept(got) -> np.ndarray:
    try:
        import torch

        if isinstance(got, torch.Tensor):
            got = got.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(got)
    if a.size == 0:
        return np.zeros(0, np.int64)
    if a.dtype == bool:
        raise TypeError("a boolean mask; return the kept indices instead (e.g. np.flatnonzero(mask)), "
                        "most confident first")
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(a == np.round(a)):
            raise TypeError(f"values that are not indices ({a.dtype}); return the indices of the kept boxes")
        a = a.astype(np.int64)
    return a.reshape(-1)


def _nms_diagnose(case, kept) -> str | None:
    """A precise reason why ``kept`` is not class-wise greedy NMS of ``case``; None when it is a valid result."""
    from labkit.boxes import pairwise_iou
    from labkit.nms import is_greedy_nms_result

    boxes, scores, thr, cls = case["boxes"], case["scores"], case["iou_threshold"], case["classes"]
    n = len(boxes)
    if len(kept) and (kept.min() < 0 or kept.max() >= n):
        return f"index {int(kept.max() if kept.max() >= n else kept.min())} is not a box index (0..{n - 1})"
    if len(np.unique(kept)) != len(kept):
        return "a box is kept twice"
    if is_greedy_nms_result(boxes, scores, kept, thr, cls):
        return None
    iou = pairwise_iou(boxes, boxes) if n else np.zeros((0, 0))
    same = cls[:, None] == cls[None, :]
    if np.any(np.diff(scores[kept]) > 0):
        if is_greedy_nms_result(boxes, scores, kept[np.argsort(-scores[kept], kind="stable")], thr, cls):
            return "the right boxes, in the wrong order: return the kept indices most confident first"
        return "the kept indices are not in order of decreasing score (most confident first)"
    for pos, j in enumerate(kept):  # a kept box that a more confident kept box of its class should have removed
        for i in kept[:pos]:
            if same[i, j] and iou[i, j] > thr:
                return (f"box {j} is kept although kept box {i} (same class {cls[i]}, score {scores[i]:.3g} >= "
                        f"{scores[j]:.3g}) overlaps it with IoU {iou[i, j]:.4f} > {thr:.4g}")
    for j in np.setdiff1d(np.arange(n), kept):  # a dropped box that no kept box of its class suppresses
        sup = [i for i in kept if same[i, j] and iou[i, j] > thr and scores[i] >= scores[j]]
        if sup:
            continue
        other = [i for i in kept if not same[i, j] and iou[i, j] > thr and scores[i] >= scores[j]]
        if other:
            i = other[0]
            return (f"box {j} (class {cls[j]}) was dropped, but the only kept box overlapping it is box {i} of class "
                    f"{cls[i]} (IoU {iou[i, j]:.4f}): NMS must be class-wise, a box only suppresses boxes of its own "
                    f"class")
        at = [i for i in kept if same[i, j] and np.isclose(iou[i, j], thr) and scores[i] >= scores[j]]
        if at:
            return (f"box {j} was dropped although its IoU with kept box {at[0]} is exactly the threshold "
                    f"{thr:.4g}: drop a box only when its IoU is strictly greater than the threshold")
        return (f"box {j} was dropped, but no kept box of its class with a higher score overlaps it by more than "
                f"{thr:.4g} (was it suppressed by a box that was itself suppressed? compare with the kept boxes only)")
    return "not a greedy NMS result"


def nms(fn, *, n: int = 20, seed: int | None = None, show: bool = True):
    """Check class-wise greedy NMS ``fn(boxes, scores, iou_threshold, classes)`` -> kept indices, most confident
    first. A box suppresses the boxes **of its own class** whose IoU with it is **greater than** the threshold.

    With distinct scores the result must equal ``torchvision.ops.batched_nms``. With tied scores either box may be
    visited first, so any valid greedy result is accepted (``labkit.nms.is_greedy_nms_result``); the one shown as
    expected takes the lower index first, as torchvision does on the CPU.
    """
    import torch
    import torchvision.ops as tvo

    seed = fresh_seed(seed)
    cases = _nms_cases(np.random.default_rng(seed), n)
    current = {}

    def reference(boxes, scores, iou_threshold, classes):
        current.update(boxes=boxes, scores=scores, iou_threshold=iou_threshold, classes=classes)
        broken = scores - np.arange(len(scores)) * 1e-9  # ties: lower index first, far below the score spacing
        return tvo.batched_nms(torch.from_numpy(boxes), torch.from_numpy(broken), torch.from_numpy(classes),
                               iou_threshold).numpy()

    def compare(expected, got):
        try:
            kept = _kept(got)
        except (TypeError, ValueError) as err:
            return f"could not read the result as kept indices: {err}"
        if np.array_equal(kept, expected):
            return None
        why = _nms_diagnose(current, kept)
        return None if why is None else f"kept {kept.tolist()}, expected {np.asarray(expected).tolist()}: {why}"

    return run_cases("nms", fn, cases, reference, compare=compare, reference_name="torchvision.ops.batched_nms",
                     hint="sort by score; keep the best remaining box; drop the remaining boxes of its class with "
                          "IoU > threshold; repeat", seed=seed, show=show)


# --------------------------------------------------------------------------------------------------
# The precision envelope and AP
# --------------------------------------------------------------------------------------------------
def _ranked_tp(rng, n_det: int, n_gt: int) -> np.ndarray:
    """A ranked TP/FP list: true positives get rarer down the ranking; never more TPs than objects."""
    tp = rng.random(n_det) < np.linspace(0.9, 0.2, n_det)
    tp &= np.cumsum(tp) <= n_gt
    return tp


def _pr_cases(rng, n: int) -> list[dict]:
    from labkit.metrics import pr_curve

    def case(tp, n_gt):
        precision, recall = pr_curve(np.asarray(tp, bool), n_gt)
        return {"recall": recall, "precision": precision}

    cases = [{"recall": np.zeros(0), "precision": np.zeros(0)},     # no detections at all
             case([False, False, False], 5),                        # only false positives
             case([True, True, True, True], 4),                     # a perfect detector
             case([True, False, True, True, False, False], 10),     # recall stops at exactly 0.3
             case([False, True, False, True], 2)]                   # the first detection is wrong; recall 0.5, 1
    while len(cases) < n:
        n_gt = int(rng.choice([3, 7, 10, 13, 20, 25, 37]))
        cases.append(case(_ranked_tp(rng, int(rng.integers(1, 41)), n_gt), n_gt))
    return cases[:n]


def _envelope_hint(case, expected, got):
    p = np.asarray(case["precision"], np.float64)
    if len(p) and _matches(got, np.maximum.accumulate(p)):
        return ("that is a running max from the *left* (best precision so far); the envelope looks to the right: "
                "the best precision at this recall or any higher one")
    if len(p) and _matches(got, p):
        return "unchanged precision: replace each value by the largest value at its rank or any later rank"
    if len(p) and _matches(got, np.full(len(p), p.max())):
        return "the overall maximum everywhere: take the maximum over this rank and the later ranks only"
    return "walk from the last rank to the first: envelope[k] = max(precision[k], envelope[k + 1])"


def envelope(fn, *, n: int = 20, seed: int | None = None, show: bool = True):
    """Check ``fn(precision)`` -> the precision envelope: at each rank, the best precision at that rank or later."""
    from labkit.metrics import envelope as reference_envelope

    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = [{"precision": c["precision"]} for c in _pr_cases(rng, n)]
    cases[2] = {"precision": np.array([0.2, 0.5, 0.4, 0.9, 0.1])}   # any sequence has an envelope

    def reference(precision):
        return reference_envelope(precision)

    return run_cases("envelope", fn, cases, reference, reference_name="labkit.metrics.envelope",
                     hint=_envelope_hint, seed=seed, show=show)


def _no_envelope_area(recall, precision):
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision)) if len(recall) else 0.0


def _coco_samples(recall, precision, thresholds, use_envelope=True):
    from labkit.metrics import envelope as env_fn

    env = env_fn(precision) if use_envelope else np.asarray(precision, np.float64)
    first = np.searchsorted(recall, thresholds, side="left")
    return np.where(first < len(recall), env[np.minimum(first, max(len(env) - 1, 0))] if len(env) else 0.0, 0.0)


def _ap_area_hint(case, expected, got):
    from labkit.metrics import ap_from_pr

    r, p = case["recall"], case["precision"]
    if _matches(got, _no_envelope_area(r, p)):
        return ("that is the area under the raw zig-zag precision: take the envelope first (the best precision at "
                "this recall or any higher one), then sum width x height per recall step")
    if len(r) and _matches(got, ap_from_pr(r, p, "coco")):
        return "that is COCO's 101-point sample mean; here the exact area under the envelope is asked for"
    if len(r) > 1 and _matches(got, float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))):
        return "the area under the envelope is a sum of rectangles (a step function), not of trapezoids"
    return ("AP = sum over the ranks of (recall[k] - recall[k - 1]) * envelope[k], with recall[-1] = 0; "
            "an FP row adds nothing (its recall step is 0)")


def _check_ap(name, fn, convention, reference_name, hint, n, seed, show):
    """An AP checker: ``fn(recall, precision)`` against ``labkit.metrics.ap_from_pr(recall, precision, convention)``
    on fresh P-R curves of ranked detection lists (recall non-decreasing)."""
    from labkit.metrics import ap_from_pr

    seed = fresh_seed(seed)
    cases = _pr_cases(np.random.default_rng(seed), n)

    def reference(recall, precision):
        return ap_from_pr(recall, precision, convention)

    return run_cases(name, fn, cases, reference, reference_name=reference_name, hint=hint, seed=seed, show=show,
                     compare=lambda e, g: compare_arrays(e, g, rtol=1e-9, atol=1e-12))


def ap_area(fn, *, n: int = 20, seed: int | None = None, show: bool = True):
    """Check ``fn(recall, precision)`` -> AP as the exact area under the precision envelope (VOC2010+ 'all
    points'), for the P-R curve of a ranked detection list (recall non-decreasing)."""
    return _check_ap("ap_area", fn, "voc", 'labkit.metrics.ap_from_pr(..., "voc")', _ap_area_hint, n, seed, show)


def _ap_coco_hint(case, expected, got):
    from labkit.metrics import REC_THRESHOLDS
    from labkit.metrics.ap import envelope as envelope_of

    r, p = case["recall"], case["precision"]
    if len(r) and _matches(got, float(np.mean(_coco_samples(r, p, REC_THRESHOLDS, use_envelope=False)))):
        return ("that samples the raw zig-zag precision: take the precision envelope first (the best precision at "
                "this recall or any higher one), then sample it")
    s = _coco_samples(r, p, REC_THRESHOLDS)
    reached = np.searchsorted(r, REC_THRESHOLDS, side="left") < len(r)
    if reached.any() and not reached.all() and _matches(got, float(s[reached].mean())):
        return "divide by 101: a recall the detections never reach samples precision 0 and still counts"
    if len(r) and _matches(got, _no_envelope_area(r, envelope_of(p))):
        return "that is the exact area under the envelope (VOC2010+); COCO averages 101 samples of the envelope"
    if len(r) and _matches(got, float(np.mean(_coco_samples(r, p, np.arange(0, 1.001, 0.01))))):
        return ("use pycocotools' recall points np.linspace(0, 1, 101): np.arange(0, 1.01, 0.01) drifts by a few "
                "ulp and changes which rank reaches a recall that lands exactly on a sample point")
    if len(r) and _matches(got, float(np.mean(_coco_samples(r, p, REC_THRESHOLDS[1:])))):
        return "the 101 recall points start at 0: 0, 0.01, ..., 1"
    return ("for each recall point t in 0, 0.01, ..., 1: the envelope at the first rank whose recall is >= t "
            "(0 if no rank reaches t); AP is the mean of the 101 values")


def ap_coco(fn, *, n: int = 20, seed: int | None = None, show: bool = True):
    """Check ``fn(recall, precision)`` -> COCO's AP (pycocotools): the precision envelope sampled at the 101
    recalls 0, 0.01, ..., 1 (the first rank reaching each; 0 where none does), averaged."""
    return _check_ap("ap_coco", fn, "coco", "pycocotools' AP (labkit.metrics.ap_from_pr)", _ap_coco_hint, n, seed,
                     show)
