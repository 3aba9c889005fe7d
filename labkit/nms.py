"""Non-maximum suppression for teaching, and the NMS experiments of notebook 05.

A detector's head fires many boxes around each object; NMS keeps the most confident one and drops the
others that overlap it by more than an IoU threshold. This module holds

* :func:`greedy_nms` — the textbook greedy loop, written to be read (class-wise when ``classes`` is
  given, class-agnostic otherwise); it keeps the same boxes as ``torchvision.ops.nms`` /
  ``batched_nms`` (``tests/test_nms.py``);
* :func:`is_greedy_nms_result` — checks that a list of kept indices is *a* valid greedy NMS result, which
  is what one can honestly ask of an implementation when scores tie (the order among tied boxes is a free
  choice: labkit takes the lower index first, as ``torchvision.ops.nms`` does on the CPU, but
  ``torchvision.ops.batched_nms`` re-sorts the survivors with a non-stable sort when it has more than 1,000
  boxes, so tied survivors may come out in another order);
* :func:`compare_with_torchvision` — random cases (with and without tied scores) against torchvision;
* :func:`crowded_scenes`, :func:`raw_detections`, :func:`apply_nms`, :func:`nms_experiment` — a
  simulated "raw detector output" on crowded scenes (several jittered boxes per object, wrong-class copies,
  overlapping objects of the same and of different classes) and the effect of NMS and its IoU threshold
  on mAP50, class-wise versus class-agnostic.

The fast, vectorised NMS used elsewhere is :func:`labkit.boxes.nms` / :func:`labkit.boxes.batched_nms`.
"""

from __future__ import annotations

import numpy as np

from labkit.boxes import pairwise_iou

__all__ = ["greedy_nms", "is_greedy_nms_result", "compare_with_torchvision", "crowded_scenes", "raw_detections",
           "apply_nms", "recall_at", "nms_experiment", "overlap_stats", "NMS_THRESHOLDS"]

#: IoU thresholds swept by :func:`nms_experiment` (``None`` = no NMS at all).
NMS_THRESHOLDS = (None, 0.1, 0.3, 0.5, 0.7, 0.9)


def greedy_nms(boxes, scores, iou_threshold: float, classes=None) -> np.ndarray:
    """Greedy NMS on ``(N, 4)`` xyxy boxes; returns the kept indices, most confident first.

    Repeat: keep the most confident remaining box, drop every remaining box whose IoU with it is
    **strictly greater** than ``iou_threshold`` (torchvision's rule). Ties in score: lower index first.
    With ``classes`` (``(N,)`` labels) a box only suppresses boxes of its own class (class-wise NMS, as
    ``torchvision.ops.batched_nms``); without, every box competes with every other (class-agnostic).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    same = np.ones((len(boxes), len(boxes)), bool) if classes is None else \
        np.asarray(classes)[:, None] == np.asarray(classes)[None, :]
    order = np.argsort(-scores, kind="stable")  # most confident first
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        overlap = pairwise_iou(boxes[i:i + 1], boxes[rest])[0] > iou_threshold
        order = rest[~(overlap & same[i, rest])]  # drop what box i suppresses
    return np.asarray(keep, dtype=np.int64)


def is_greedy_nms_result(boxes, scores, keep, iou_threshold: float, classes=None) -> bool:
    """True if ``keep`` is the result of greedy NMS for *some* order of the tied scores.

    Conditions: ``keep`` is in non-increasing score order; no kept box overlaps (IoU > threshold, same
    class if ``classes``) a kept box listed before it; every dropped box overlaps a kept box whose score is
    at least its own.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    keep = np.asarray(keep, np.int64).reshape(-1)
    if len(np.unique(keep)) != len(keep) or np.any(np.diff(scores[keep]) > 0):
        return False
    iou = pairwise_iou(boxes, boxes)
    if classes is not None:
        c = np.asarray(classes)
        iou = np.where(c[:, None] == c[None, :], iou, 0.0)
    sup = iou > iou_threshold
    if np.tril(sup[np.ix_(keep, keep)], -1).any():  # a kept box suppressed by a kept box before it
        return False
    dropped = np.setdiff1d(np.arange(len(boxes)), keep)
    reason = sup[np.ix_(dropped, keep)] & (scores[keep][None, :] >= scores[dropped][:, None])
    return bool(reason.any(1).all())  # every dropped box has a kept, at-least-as-confident suppressor


def _random_case(rng, n, ties: bool):
    centres = rng.uniform(0, 200, size=(max(n // 8, 1), 2))  # clustered, so NMS has work to do
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 6, size=(n, 2))
    wh = rng.uniform(8, 40, size=(n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    scores = rng.integers(0, 6, n) / 6 if ties else rng.permutation(n) / n + 1e-3
    return boxes, scores, rng.integers(0, 3, n)


def compare_with_torchvision(nms_fn=greedy_nms, n_cases: int = 50, seed: int = 0, ties: bool = False,
                             sizes=(1, 200)) -> dict:
    """Run ``nms_fn(boxes, scores, thr[, classes])`` and ``torchvision.ops.nms`` / ``batched_nms`` on random
    clustered cases (thresholds drawn from 0.1..0.9) and count agreements.

    With ``ties=False`` scores are distinct and the kept lists must be equal. With ``ties=True`` scores
    take 6 values: the kept list must equal torchvision's on the same scores with ties broken by index
    (a decrement far below the score spacing: the order labkit uses), and both ``nms_fn``'s and
    torchvision's own results must be valid greedy results (:func:`is_greedy_nms_result`).

    Returns ``{"cases", "agnostic_equal", "classwise_equal", "valid"}`` (counts).
    """
    import torch
    import torchvision.ops as tvo

    rng = np.random.default_rng(seed)
    out = {"cases": 0, "agnostic_equal": 0, "classwise_equal": 0, "valid": 0}
    for _ in range(n_cases):
        n = int(rng.integers(sizes[0], sizes[1] + 1))
        boxes, scores, cls = _random_case(rng, n, ties)
        thr = float(rng.uniform(0.1, 0.9))
        ref_scores = scores - np.arange(n) * 1e-9 if ties else scores  # ties broken by index
        tb, ts, tc = torch.tensor(boxes), torch.tensor(ref_scores), torch.tensor(cls)
        mine_a, mine_c = nms_fn(boxes, scores, thr), nms_fn(boxes, scores, thr, cls)
        out["cases"] += 1
        out["agnostic_equal"] += bool(np.array_equal(mine_a, tvo.nms(tb, ts, thr).numpy()))
        out["classwise_equal"] += bool(np.array_equal(mine_c, tvo.batched_nms(tb, ts, tc, thr).numpy()))
        t_raw = torch.tensor(scores)
        valid = (is_greedy_nms_result(boxes, scores, mine_a, thr)
                 and is_greedy_nms_result(boxes, scores, mine_c, thr, cls)
                 and is_greedy_nms_result(boxes, scores, tvo.nms(tb, t_raw, thr).numpy(), thr)
                 and is_greedy_nms_result(boxes, scores, tvo.batched_nms(tb, t_raw, tc, thr).numpy(), thr, cls))
        out["valid"] += bool(valid)
    return out


# --------------------------------------------------------------------------------------------------
# The NMS experiment: crowded scenes, raw detector output, AP with and without NMS
# --------------------------------------------------------------------------------------------------
def _box(rng, cx, cy):
    s = rng.uniform(20, 32)
    a = rng.uniform(0.7, 1.4)  # aspect ratio w/h
    w, h = s * np.sqrt(a), s / np.sqrt(a)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _partner(rng, a, lo, hi):
    """A box whose IoU with ``a`` lies in [lo, hi] (rejection sampling around ``a``)."""
    for _ in range(1000):
        d = rng.uniform(-0.6, 0.6, 2) * (a[2:] - a[:2])
        b = _box(rng, (a[0] + a[2]) / 2 + d[0], (a[1] + a[3]) / 2 + d[1])
        if lo <= pairwise_iou(a[None], b[None])[0, 0] <= hi:
            return b
    raise RuntimeError("could not place a partner box")  # pragma: no cover - never seen with these ranges


def crowded_scenes(n_images: int = 40, n_classes: int = 3, seed: int = 0, imgsz: int = 128,
                   same_iou=(0.2, 0.45), cross_iou=(0.55, 0.75)) -> list:
    """Ground truth of crowded scenes: each of the 4 quadrants of an image holds one object, or a
    same-class pair overlapping with IoU in ``same_iou`` (a crowd), or a pair of *different* classes
    overlapping with IoU in ``cross_iou`` (a rider on a horse, a cup on a saucer).

    Returns one dict per image: ``boxes`` (xyxy), ``labels``, ``kind`` (0 single, 1 same-class pair,
    2 cross-class pair).
    """
    rng = np.random.default_rng(seed)
    q = imgsz / 4
    out = []
    for _ in range(n_images):
        boxes, labels, kind = [], [], []
        for cx, cy in ((q, q), (3 * q, q), (q, 3 * q), (3 * q, 3 * q)):
            a = _box(rng, cx + rng.uniform(-4, 4), cy + rng.uniform(-4, 4))
            c = int(rng.integers(n_classes))
            k = int(rng.choice(3, p=[0.2, 0.4, 0.4]))
            boxes.append(a); labels.append(c); kind.append(k)
            if k == 1:
                boxes.append(_partner(rng, a, *same_iou)); labels.append(c); kind.append(k)
            elif k == 2:
                c2 = (c + int(rng.integers(1, n_classes))) % n_classes
                boxes.append(_partner(rng, a, *cross_iou)); labels.append(c2); kind.append(k)
        out.append({"boxes": np.clip(np.array(boxes), 0, imgsz), "labels": np.array(labels, np.int64),
                    "kind": np.array(kind, np.int64)})
    return out


def raw_detections(gts, n_classes: int = 3, seed: int = 0, n_dups: int = 4, jitter: float = 0.08,
                   wrong_class: float = 0.5, false_alarms: float = 1.0, imgsz: int = 128) -> list:
    """What a detector outputs *before* NMS: per object one well-placed box (confidence ``s``), ``n_dups``
    looser copies (jitter ``jitter`` of the size, confidence a little below ``s``), with probability
    ``wrong_class`` a copy of the best box labelled with another class (lower confidence), plus Poisson
    background false alarms (low confidence).

    Returns one dict per image: ``boxes``, ``scores``, ``labels``, ``origin`` (the GT index it came from, -1
    for background) and ``kind`` (0 best box, 1 duplicate, 2 wrong-class copy, 3 background).
    """
    rng = np.random.default_rng(seed + 1000)
    out = []
    for g in gts:
        bx, sc, lb, org, kd = [], [], [], [], []
        for j, (b, c) in enumerate(zip(g["boxes"], g["labels"])):
            wh = np.tile(b[2:] - b[:2], 2)
            s = rng.uniform(0.5, 0.95)
            best = b + rng.normal(0, 0.02, 4) * wh
            bx.append(best); sc.append(s); lb.append(c); org.append(j); kd.append(0)
            for _ in range(n_dups):
                bx.append(b + rng.normal(0, jitter, 4) * wh); sc.append(s - rng.uniform(0.02, 0.3))
                lb.append(c); org.append(j); kd.append(1)
            if rng.random() < wrong_class:
                bx.append(best + rng.normal(0, 0.02, 4) * wh); sc.append(s * rng.uniform(0.4, 0.8))
                lb.append((c + int(rng.integers(1, n_classes))) % n_classes); org.append(j); kd.append(2)
        for _ in range(rng.poisson(false_alarms)):
            xy = rng.uniform(0, imgsz * 0.8, 2)
            bx.append(np.r_[xy, xy + rng.uniform(10, 30, 2)]); sc.append(rng.uniform(0.05, 0.5))
            lb.append(int(rng.integers(n_classes))); org.append(-1); kd.append(3)
        b = np.clip(np.array(bx, np.float64).reshape(-1, 4), 0, imgsz)
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
        out.append({"boxes": b, "scores": np.array(sc), "labels": np.array(lb, np.int64),
                    "origin": np.array(org, np.int64), "kind": np.array(kd, np.int64)})
    return out


def apply_nms(dets, iou_threshold, class_agnostic: bool = False, nms_fn=greedy_nms) -> list:
    """NMS on every image of ``dets`` (``None`` threshold: unchanged). Keeps all per-box fields."""
    if iou_threshold is None:
        return dets
    out = []
    for d in dets:
        keep = nms_fn(d["boxes"], d["scores"], iou_threshold, None if class_agnostic else d["labels"])
        out.append({k: np.asarray(v)[keep] for k, v in d.items()})
    return out


def recall_at(gts, dets, n_classes: int, iou_threshold: float = 0.5) -> float:
    """Fraction of GT objects matched (COCO greedy matching, any confidence) at ``iou_threshold``."""
    from labkit.metrics import class_matches

    tp = n = 0
    for c in range(n_classes):
        m = class_matches(gts, dets, c, iou_threshold)
        tp += int(m["tp"].sum()); n += m["n_gt"]
    return tp / max(n, 1)


def nms_experiment(seed: int = 0, n_images: int = 40, n_classes: int = 3, thresholds=NMS_THRESHOLDS) -> dict:
    """NMS's effect on AP on :func:`crowded_scenes` with :func:`raw_detections`.

    Returns ``{"gts", "raw", "map50": {thr: mAP50 class-wise}, "recall": {thr: recall class-wise},
    "agnostic": {"map50", "recall", "cross_pairs_found", "wrong_class_kept"}, "classwise": {...same...},
    "n_raw"}`` where the two last dicts are at IoU threshold 0.5; ``cross_pairs_found`` is the recall on the
    objects of cross-class pairs, ``wrong_class_kept`` the number of wrong-class copies that survive NMS.
    mAP50 is COCO-style (``labkit.metrics.evaluate``).
    """
    from labkit.metrics import evaluate

    gts = crowded_scenes(n_images, n_classes, seed)
    raw = raw_detections(gts, n_classes, seed)
    names = [str(c) for c in range(n_classes)]
    res = {"gts": gts, "raw": raw, "map50": {}, "recall": {}, "n_raw": int(sum(len(d["scores"]) for d in raw))}
    for thr in thresholds:
        kept = apply_nms(raw, thr)
        res["map50"][thr] = evaluate(gts, kept, class_names=names, curves=False).map50
        res["recall"][thr] = recall_at(gts, kept, n_classes)
    cross = [{"boxes": g["boxes"][g["kind"] == 2], "labels": g["labels"][g["kind"] == 2]} for g in gts]
    for name, agn in (("classwise", False), ("agnostic", True)):
        kept = apply_nms(raw, 0.5, class_agnostic=agn)
        res[name] = {"map50": evaluate(gts, kept, class_names=names, curves=False).map50,
                     "recall": recall_at(gts, kept, n_classes),
                     "cross_pairs_found": recall_at(cross, kept, n_classes),
                     "wrong_class_kept": int(sum((d["kind"] == 2).sum() for d in kept))}
    return res


def overlap_stats(exp: dict) -> dict:
    """The overlaps that decide where a good NMS threshold lies, from an :func:`nms_experiment` result.

    Returns ``{"dup_q": 10/50/90 % quantiles of the IoU between each duplicate and its object's best box,
    "same": (min, max) IoU within same-class pairs, "cross": (min, max) IoU within cross-class pairs}``.
    """
    dup, pairs = [], {1: [], 2: []}
    for g, r in zip(exp["gts"], exp["raw"]):
        best = {int(o): b for o, b, k in zip(r["origin"], r["boxes"], r["kind"]) if k == 0}
        for o, b, k in zip(r["origin"], r["boxes"], r["kind"]):
            if k == 1:
                dup.append(pairwise_iou(best[int(o)][None], b[None])[0, 0])
        for kind in (1, 2):
            idx = np.flatnonzero(g["kind"] == kind)
            pairs[kind] += [pairwise_iou(g["boxes"][[a]], g["boxes"][[b]])[0, 0] for a, b in zip(idx[::2], idx[1::2])]
    rng = lambda x: (float(np.min(x)), float(np.max(x))) if len(x) else (float("nan"), float("nan"))  # noqa: E731
    return {"dup_q": tuple(float(q) for q in np.quantile(dup, [0.1, 0.5, 0.9])), "same": rng(pairs[1]),
            "cross": rng(pairs[2])}
