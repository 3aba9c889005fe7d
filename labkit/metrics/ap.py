"""Average precision, the readable way: one image, one class, one IoU threshold at a time.

This is the code notebook 05 teaches. Each step is a short function:

1. :func:`match_image` — greedy matching of one image's detections to its ground truth, in score order
   (COCO's rule: each detection takes the unmatched GT box of highest IoU ≥ the threshold).
2. :func:`class_matches` — the same over all images of one class, ranked by score: the table behind a P-R curve.
3. :func:`pr_curve` — precision and recall after each detection of that ranked list.
4. :func:`envelope` — the precision envelope: at each rank, the best precision at that recall or any higher one.
5. :func:`ap_from_pr` — AP of the curve in each of the four conventions (``CONVENTIONS``):

   * ``"coco"``: the envelope **sampled** at the 101 recalls 0, 0.01, …, 1, then averaged;
   * ``"voc07"``: the same with **11** recalls 0, 0.1, …, 1 (PASCAL VOC 2007);
   * ``"voc"``: the exact **area** under the envelope (VOC 2010+);
   * ``"ultralytics"``: the envelope interpolated at 101 recalls and integrated with the **trapezoid**
     rule, after extending the curve to (recall_max, 0) and (1, 0).

:func:`threshold_view` bundles all of it for one class, IoU threshold and confidence (the P-R widget draws it).

Full datasets (crowd regions, area ranges, 10 IoU thresholds, the 12 COCO stats) go through
:func:`labkit.metrics.evaluate`, a vectorised engine (``labkit/metrics/_engine.py``) that applies the same
rules to all images, classes and thresholds at once; the tests check it against pycocotools, the VOC devkit
and Ultralytics, and against these functions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CONVENTIONS", "IOU_THRESHOLDS", "REC_THRESHOLDS", "match_image", "class_matches", "pr_curve",
           "envelope", "voc_ap", "ultralytics_ap", "ap_from_pr", "threshold_view"]

CONVENTIONS = ("coco", "voc07", "voc", "ultralytics")
# Built exactly as pycocotools builds them (linspace with a computed count), so the floats are identical.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _to_numpy(x, dtype=None):
    """numpy array from a list, an array or a torch tensor."""
    try:  # torch tensors
        x = x.detach().cpu().numpy()
    except AttributeError:
        pass
    return np.asarray(x, dtype=dtype)


def match_image(gt_boxes, det_boxes, det_scores, iou_threshold: float = 0.5):
    """Greedy COCO-style matching of one image's detections (one class) to its GT, in score order.

    Returns a dict of arrays in **score order**: ``order`` (indices into the inputs), ``score``,
    ``iou`` (best IoU with any GT), ``gt`` (matched GT index or -1), ``tp`` (bool).
    """
    from labkit.boxes import pairwise_iou

    gb = _to_numpy(gt_boxes, np.float64).reshape(-1, 4)
    db = _to_numpy(det_boxes, np.float64).reshape(-1, 4)
    sc = _to_numpy(det_scores, np.float64).reshape(-1)
    order = np.argsort(-sc, kind="stable")  # highest score first; ties keep input order
    iou = pairwise_iou(db[order], gb) if len(gb) and len(db) else np.zeros((len(db), len(gb)))
    taken = np.zeros(len(gb), bool)
    gt = np.full(len(db), -1)
    for i in range(len(db)):
        cand = np.where(taken, -1.0, iou[i])  # a GT box can be matched only once
        if len(cand) and cand.max() >= iou_threshold:
            j = int(len(cand) - 1 - np.argmax(cand[::-1]))  # ties → last GT, as pycocotools
            gt[i], taken[j] = j, True
    best = iou.max(1) if iou.shape[1] else np.zeros(len(db))
    return {"order": order, "score": sc[order], "iou": best, "gt": gt, "tp": gt >= 0}


def class_matches(gts, dets, label, iou_threshold: float = 0.5) -> dict:
    """Match one class over all images with :func:`match_image` (COCO rules at one IoU threshold,
    without crowd/area handling) and rank all its detections by score.

    Returns ``{"score", "tp", "image", "index" (det index within its image), "n_gt"}``, arrays in
    global score order (ties: image order, then order within the image) — the table behind a P-R curve.
    """
    sc, tp, im, ix = [], [], [], []
    n_gt = 0
    for i, (g, d) in enumerate(zip(gts, dets)):
        gl = _to_numpy(g["labels"]).reshape(-1)
        dl = _to_numpy(d["labels"]).reshape(-1)
        gb = _to_numpy(g["boxes"], np.float64).reshape(-1, 4)[gl == label]
        sel = np.flatnonzero(dl == label)
        n_gt += len(gb)  # recall counts every GT box of the class, detected or not
        if len(sel) == 0:
            continue
        db = _to_numpy(d["boxes"], np.float64).reshape(-1, 4)[sel]
        m = match_image(gb, db, _to_numpy(d["scores"], np.float64).reshape(-1)[sel], iou_threshold)
        sc.append(m["score"]); tp.append(m["tp"]); im.append(np.full(len(sel), i)); ix.append(sel[m["order"]])
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    sc, tp, im, ix = cat(sc, np.float64), cat(tp, bool), cat(im, np.int64), cat(ix, np.int64)
    o = np.lexsort((np.arange(len(sc)), -sc))  # by score, stable: ties keep image order
    return {"score": sc[o], "tp": tp[o], "image": im[o], "index": ix[o], "n_gt": n_gt}


def pr_curve(tp, n_gt: int):
    """Precision and recall after each detection of a score-sorted TP/FP list."""
    tp = np.asarray(tp, dtype=bool)
    tpc = np.cumsum(tp)
    fpc = np.cumsum(~tp)
    precision = tpc / np.maximum(tpc + fpc, 1)
    recall = tpc / n_gt if n_gt else np.zeros(len(tp))
    return precision, recall


def envelope(precision):
    """Best precision at this rank or any later one (= at this recall or a higher one): a reverse running max."""
    precision = np.asarray(precision, np.float64)
    return np.flip(np.maximum.accumulate(np.flip(precision))) if len(precision) else precision


def voc_ap(recall, precision, eleven_point: bool) -> float:
    """PASCAL VOC AP: 11-point (VOC 2007) or the exact area under the envelope (VOC 2010+)."""
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if eleven_point:  # mean over r in {0, 0.1, ..., 1} of the best precision at recall >= r
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = np.max(precision[recall >= t]) if np.sum(recall >= t) else 0.0
            ap += p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], recall, [1.0]))  # sentinels: the curve starts at recall 0 ...
    mpre = np.concatenate(([0.0], precision, [0.0]))  # ... and ends at precision 0
    mpre = envelope(mpre)
    i = np.flatnonzero(mrec[1:] != mrec[:-1])  # the ranks where recall steps up
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))  # sum of rectangles under the envelope


def ultralytics_ap(recall, precision) -> float:
    """Ultralytics ``compute_ap``: envelope, interpolation at 101 recalls, trapezoid rule."""
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    x = np.linspace(0, 1, 101)
    # extend the curve: precision 1 at recall 0, then a drop to 0 after the last recall and at recall 1
    mrec = np.concatenate(([0.0], recall, [recall[-1] if len(recall) else 1.0], [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0], [0.0]))
    mpre = envelope(mpre)
    y = np.interp(x, mrec, mpre)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def ap_from_pr(recall, precision, method: str = "coco") -> float:
    """AP of one P-R curve (score order, no ignored detections) under a convention.

    ``"coco"``: mean of the envelope sampled at 101 recall points; ``"voc07"``: 11 points;
    ``"voc"``: exact area under the envelope; ``"ultralytics"``: 101-point interpolation + trapezoid.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if method == "voc07":
        return voc_ap(recall, precision, True)
    if method == "voc":
        return voc_ap(recall, precision, False)
    if method == "ultralytics":
        return ultralytics_ap(recall, precision) if len(recall) else 0.0
    if method != "coco":
        raise ValueError(f"unknown method {method!r}; expected one of {CONVENTIONS}")
    env = envelope(precision)
    # for each recall threshold, the first rank reaching it; thresholds never reached sample precision 0
    inds = np.searchsorted(recall, REC_THRESHOLDS, side="left")
    q = np.where(inds < len(recall), env[np.minimum(inds, max(len(env) - 1, 0))] if len(env) else 0.0, 0.0)
    return float(np.mean(q))


def threshold_view(gts, dets, label, iou_threshold: float = 0.5, conf: float = 0.25) -> dict:
    """Everything the P-R widget draws, for one class at one IoU threshold and one confidence:
    the ranked matches, the P-R curve and its envelope, the operating point at ``conf``
    (precision/recall counting detections with score ≥ conf) and AP under each rule
    (``ap_from_pr`` on the same COCO-style matches)."""
    m = class_matches(gts, dets, label, iou_threshold)
    prec, rec = pr_curve(m["tp"], m["n_gt"])
    env = envelope(prec)
    k = int(np.sum(m["score"] >= conf))
    p_at = float(prec[k - 1]) if k else 0.0
    r_at = float(rec[k - 1]) if k else 0.0
    aps = {c: (ap_from_pr(rec, prec, c) if m["n_gt"] else float("nan")) for c in CONVENTIONS}
    return {**m, "precision": prec, "recall": rec, "envelope": env, "n_above": k, "p_at_conf": p_at,
            "r_at_conf": r_at, "ap": aps}
