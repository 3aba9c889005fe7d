"""Internal: the vectorised evaluation engine behind :func:`labkit.metrics.evaluate` (speed engineering).

Not for reading first. It applies the rules of :mod:`labkit.metrics.ap` (one image, one class, one IoU
threshold at a time) to every image, class, IoU threshold, area range and ``maxDets`` at once: detections are
grouped per image and class, matched greedily in one pass over all lanes (a lane = one IoU threshold × area
range), then accumulated per class with segmented cumulative sums. The exact rules of each convention are in
the docstring of :mod:`labkit.metrics`; the tests check this engine against pycocotools, the VOC devkit,
Ultralytics and the readable functions of :mod:`labkit.metrics.ap`. The per-curve AP formulas themselves
(VOC, Ultralytics) are imported from :mod:`labkit.metrics.ap`, so each rule is written once.

Public names are re-exported by :mod:`labkit.metrics`; import them from there.
"""

from __future__ import annotations

import json
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labkit.metrics.ap import (CONVENTIONS, IOU_THRESHOLDS, REC_THRESHOLDS, _to_numpy)
from labkit.metrics.ap import ultralytics_ap as _ul_ap
from labkit.metrics.ap import voc_ap as _voc_ap

MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
AREA_LABELS = ("all", "small", "medium", "large")
COCO_STAT_NAMES = (
    "AP@[.50:.95]", "AP@.50", "AP@.75", "AP_small", "AP_medium", "AP_large",
    "AR@1", "AR@10", "AR@100", "AR_small", "AR_medium", "AR_large",
)


class MetricsInputError(ValueError):
    """Bad ground truth or predictions; the message names the offending record."""


# ==================================================================================================
# Internal flat representation
# ==================================================================================================
@dataclass
class _Data:
    """Flat arrays for one evaluation. Boxes are float64 ``(x, y, w, h)`` (COCO ``bbox``)."""

    n_images: int
    classes: np.ndarray  # (C,) class label / category id, sorted
    names: list
    g_img: np.ndarray
    g_cls: np.ndarray  # index into classes
    g_box: np.ndarray
    g_area: np.ndarray
    g_crowd: np.ndarray
    g_difficult: np.ndarray
    g_id: np.ndarray
    d_img: np.ndarray
    d_cls: np.ndarray
    d_box: np.ndarray
    d_score: np.ndarray
    image_ids: list = field(default_factory=list)


def _check_boxes_xywh(box: np.ndarray, what: str, names):
    """Raise MetricsInputError for NaN/inf, negative or zero width/height. ``names(i)`` names record i."""
    bad_nan = ~np.isfinite(box).all(1)
    bad_size = (box[:, 2] <= 0) | (box[:, 3] <= 0)
    bad = bad_nan | bad_size
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = "NaN/inf coordinates" if bad_nan[i] else ("zero size" if (box[i, 2] == 0 or box[i, 3] == 0)
                                                            else "negative size")
        who = names(i)
        who = who if who.startswith(what) else f"{what} {who}"  # no "prediction prediction 3"
        raise MetricsInputError(f"{who} has {kind}: box {box[i].tolist()} "
                                f"({int(bad.sum())} bad boxes in total)")


# ==================================================================================================
# In-memory input
# ==================================================================================================
def _prepare_lists(gts, dets, class_names=None) -> _Data:
    if not isinstance(gts, (list, tuple)) or not isinstance(dets, (list, tuple)):
        raise MetricsInputError("gts and dets must be lists with one dict per image")
    if len(gts) != len(dets):
        raise MetricsInputError(f"gts has {len(gts)} images but dets has {len(dets)}; give one dict per image "
                                "(an image without predictions gets an empty dict of (0, 4) boxes)")
    n = len(gts)

    def field_of(rec, key, i, what, required=True):
        if not isinstance(rec, dict):
            raise MetricsInputError(f"{what}[{i}] must be a dict, got {type(rec).__name__}")
        if key not in rec:
            if required:
                raise MetricsInputError(f"{what}[{i}] is missing the field {key!r} (has {sorted(rec)})")
            return None
        return rec[key]

    gb, gl, gc, gd, ga, gi = [], [], [], [], [], []
    db, dl, ds, di = [], [], [], []
    for i in range(n):
        g, d = gts[i], dets[i]
        b = _to_numpy(field_of(g, "boxes", i, "gts"), np.float64).reshape(-1, 4) if \
            np.size(_to_numpy(field_of(g, "boxes", i, "gts"))) else np.zeros((0, 4))
        lab = _to_numpy(field_of(g, "labels", i, "gts")).reshape(-1)
        if len(lab) != len(b):
            raise MetricsInputError(f"gts[{i}]: {len(b)} boxes but {len(lab)} labels")
        cr = field_of(g, "iscrowd", i, "gts", required=False)
        cr = np.zeros(len(b), bool) if cr is None else _to_numpy(cr).astype(bool).reshape(-1)
        df = field_of(g, "difficult", i, "gts", required=False)
        df = np.zeros(len(b), bool) if df is None else _to_numpy(df).astype(bool).reshape(-1)
        ar = field_of(g, "area", i, "gts", required=False)
        for nm, arr in (("iscrowd", cr), ("difficult", df)):
            if len(arr) != len(b):
                raise MetricsInputError(f"gts[{i}]: {len(b)} boxes but {len(arr)} {nm!r} flags")
        gb.append(b); gl.append(lab); gc.append(cr); gd.append(df); gi.append(np.full(len(b), i))
        ga.append(None if ar is None else _to_numpy(ar, np.float64).reshape(-1))
        b = _to_numpy(field_of(d, "boxes", i, "dets"), np.float64)
        b = b.reshape(-1, 4) if b.size else np.zeros((0, 4))
        lab = _to_numpy(field_of(d, "labels", i, "dets")).reshape(-1)
        sc = _to_numpy(field_of(d, "scores", i, "dets"), np.float64).reshape(-1)
        if not (len(lab) == len(b) == len(sc)):
            raise MetricsInputError(f"dets[{i}]: {len(b)} boxes, {len(lab)} labels, {len(sc)} scores")
        db.append(b); dl.append(lab); ds.append(sc); di.append(np.full(len(b), i))

    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    g_xyxy = np.concatenate(gb) if gb else np.zeros((0, 4))
    d_xyxy = np.concatenate(db) if db else np.zeros((0, 4))
    g_img, d_img = cat(gi, np.int64), cat(di, np.int64)
    g_lab, d_lab = cat(gl, np.int64), cat(dl, np.int64)
    g_off = np.cumsum([0] + [len(x) for x in gb])
    d_off = np.cumsum([0] + [len(x) for x in db])
    g_name = lambda j: f"gts[{g_img[j]}] box {j - g_off[g_img[j]]}"  # noqa: E731
    d_name = lambda j: f"dets[{d_img[j]}] box {j - d_off[d_img[j]]}"  # noqa: E731
    g_box = np.stack([g_xyxy[:, 0], g_xyxy[:, 1], g_xyxy[:, 2] - g_xyxy[:, 0], g_xyxy[:, 3] - g_xyxy[:, 1]], 1)
    d_box = np.stack([d_xyxy[:, 0], d_xyxy[:, 1], d_xyxy[:, 2] - d_xyxy[:, 0], d_xyxy[:, 3] - d_xyxy[:, 1]], 1)
    _check_boxes_xywh(g_box, "ground-truth", g_name)
    _check_boxes_xywh(d_box, "prediction", d_name)
    d_score = cat(ds, np.float64)
    if len(d_score) and not np.isfinite(d_score).all():
        j = int(np.flatnonzero(~np.isfinite(d_score))[0])
        raise MetricsInputError(f"prediction {d_name(j)} has score {d_score[j]}; scores must be finite numbers")

    if class_names is not None:
        classes = np.arange(len(class_names))
        names = [str(c) for c in class_names]
        for lab, nm, what in ((g_lab, g_name, "ground-truth"), (d_lab, d_name, "prediction")):
            bad = (lab < 0) | (lab >= len(classes))
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise MetricsInputError(f"{what} {nm(j)} has label {lab[j]} outside 0..{len(classes) - 1} "
                                        f"(class_names has {len(classes)} entries)")
    else:
        classes = np.unique(np.concatenate([g_lab, d_lab]))
        names = [str(c) for c in classes]
    g_cls = np.searchsorted(classes, g_lab)
    d_cls = np.searchsorted(classes, d_lab)
    g_area = np.concatenate([a if a is not None else b[:, 2] * b[:, 3] for a, b in
                             zip(ga, np.split(g_box, g_off[1:-1]))]) if ga else np.zeros(0)
    return _Data(n, classes, names, g_img, g_cls, g_box, g_area, cat(gc, bool), cat(gd, bool),
                 np.arange(1, len(g_box) + 1), d_img, d_cls, d_box, d_score, list(range(n)))


# ==================================================================================================
# COCO JSON input
# ==================================================================================================
def _short(v, n: int = 40) -> str:
    """``repr`` of a JSON value cut to ``n`` characters (error messages stay one short line)."""
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _read_json_file(p: Path, what: str, error=None):
    """Parse a JSON file; every way it can fail (missing, a folder, unreadable, not UTF-8, not JSON, nested too
    deeply) raises ``error`` (default :class:`MetricsInputError`) with one line naming the file."""
    error = error or MetricsInputError
    if not p.exists():
        raise error(f"{what} file not found: {p}")
    if not p.is_file():
        raise error(f"{what} {p} is not a file (a folder?); give a JSON file")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{what} file {p} is not valid JSON: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise error(f"{what} file {p} cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} file {p} is not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{what} file {p} is nested too deeply to be a COCO file") from None


def _load_json(obj, what, name=None):
    if isinstance(obj, (str, Path)):
        p = Path(obj)
        return _read_json_file(p, what), str(name or p)
    return obj, str(name or f"the {what} data passed in")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and -2 ** 63 <= int(v) < 2 ** 63


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_box(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 4 and all(_is_num(x) for x in v)


_EXPECT = {_is_int: "an integer", _is_num: "a number", _is_box: "4 numbers [x, y, w, h]"}


def _fields(recs, keys, checks, src, name):
    """Columns ``{key: list}`` of a list of JSON objects, each value checked; the first bad record raises
    :class:`MetricsInputError` naming it (``name(j, rec)``) and the field."""
    cols = {k: [] for k in keys}
    for j, r in enumerate(recs):
        if not isinstance(r, dict):
            raise MetricsInputError(f"{src}: {name(j, None)} must be a JSON object, got {_short(r)}")
        for k, ok in zip(keys, checks):
            if k not in r:
                raise MetricsInputError(f"{name(j, r)} is missing the field {k!r}")
            if not ok(r[k]):
                raise MetricsInputError(f"{name(j, r)}: field {k!r} must be {_EXPECT[ok]}, got {_short(r[k])}")
            cols[k].append(r[k])
    return cols


def load_coco_json(gt, preds, gt_name: str | None = None, pred_name: str | None = None) -> _Data:
    """Parse a COCO ground-truth dict/path and a results list/path into labkit's flat arrays.

    GT needs ``images`` (``id``), ``categories`` (``id``, ``name``) and ``annotations`` (``id``,
    ``image_id``, ``category_id``, ``bbox`` = x, y, w, h; optional ``area`` (defaults to w*h),
    ``iscrowd``, ``difficult``). Predictions: a list of ``{"image_id", "category_id", "bbox", "score"}``
    (or a dict with an ``annotations`` list). Images are ordered by id, as pycocotools does.
    Annotation ids are only labels: they are checked to be integers, never used for matching.

    ``gt_name``/``pred_name`` name the inputs in error messages (default: the path, or "the ... data passed in"
    for in-memory objects). Every malformed input raises :class:`MetricsInputError` naming the record.
    """
    gtd, gsrc = _load_json(gt, "ground-truth", gt_name)
    pr, psrc = _load_json(preds, "prediction", pred_name)
    if not isinstance(gtd, dict):
        raise MetricsInputError(f"{gsrc}: ground truth must be a COCO dict with images/annotations/categories, "
                                f"got {type(gtd).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in gtd:
            raise MetricsInputError(f"{gsrc}: ground truth is missing the top-level field {key!r}")
        if not isinstance(gtd[key], list):
            raise MetricsInputError(f"{gsrc}: ground-truth field {key!r} must be a list, got {_short(gtd[key])}")
    if isinstance(pr, dict):
        if not isinstance(pr.get("annotations"), list):
            raise MetricsInputError(f"{psrc}: predictions must be a list of results or a dict with an "
                                    "'annotations' list")
        pr = pr["annotations"]
    if not isinstance(pr, list):
        raise MetricsInputError(f"{psrc}: predictions must be a list of result dicts, got {type(pr).__name__}")

    img_ids = np.unique(np.asarray(_fields(gtd["images"], ("id",), (_is_int,), gsrc,
                                           lambda j, r: f"{gsrc}: images[{j}]")["id"], dtype=np.int64))
    cats = gtd["categories"]
    cat_ids_raw = _fields(cats, ("id",), (_is_int,), gsrc, lambda j, r: f"{gsrc}: categories[{j}]")["id"]
    order = np.argsort(np.asarray(cat_ids_raw, dtype=np.int64), kind="stable")
    classes = np.asarray(cat_ids_raw, dtype=np.int64)[order]
    if len(np.unique(classes)) != len(classes):
        dup = classes[np.flatnonzero(np.diff(classes) == 0)[0]]
        raise MetricsInputError(f"{gsrc}: category id {dup} is listed twice in 'categories'")
    names = [str(cats[j].get("name", cats[j]["id"])) for j in order]

    anns = gtd["annotations"]

    def ann_name(j, a):
        if a is None:
            return f"annotations[{j}]"
        return f"{gsrc}: annotation {j} (id {_short(a.get('id'), 20)})"

    g = _fields(anns, ("id", "image_id", "category_id", "bbox"), (_is_int, _is_int, _is_int, _is_box), gsrc,
                ann_name)
    for j, a in enumerate(anns):
        for k in ("area",):
            if k in a and not _is_num(a[k]):
                raise MetricsInputError(f"{ann_name(j, a)}: field {k!r} must be a number, got {_short(a[k])}")
    g_id = np.asarray(g["id"], dtype=np.int64)
    g_imgid = np.asarray(g["image_id"], dtype=np.int64)
    g_cat = np.asarray(g["category_id"], dtype=np.int64)
    g_box = np.asarray(g["bbox"], dtype=np.float64).reshape(len(anns), 4)
    g_area = np.asarray([a.get("area", b[2] * b[3]) for a, b in zip(anns, g_box)], dtype=np.float64)
    g_crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    g_diff = np.asarray([bool(a.get("difficult", 0)) for a in anns], dtype=bool)
    g_name = lambda j: f"annotation {j} (id {anns[j]['id']}, image {anns[j]['image_id']}) in {gsrc}"  # noqa: E731
    _check_boxes_xywh(g_box, "ground-truth", g_name)
    if len(g_area) and not np.isfinite(g_area).all():
        j = int(np.flatnonzero(~np.isfinite(g_area))[0])
        raise MetricsInputError(f"ground-truth {g_name(j)} has a non-finite area {g_area[j]}")

    n = len(pr)

    def pred_name_of(j, p):
        if p is None:
            return f"predictions[{j}]"
        return f"{psrc}: prediction {j} (image {_short(p.get('image_id'), 20)})"

    d = _fields(pr, ("image_id", "category_id", "bbox", "score"), (_is_int, _is_int, _is_box, _is_num), psrc,
                pred_name_of)
    d_imgid = np.asarray(d["image_id"], dtype=np.int64)
    d_cat = np.asarray(d["category_id"], dtype=np.int64)
    d_score = np.asarray(d["score"], dtype=np.float64)
    d_box = np.asarray(d["bbox"], dtype=np.float64).reshape(n, 4)
    d_name = lambda j: f"prediction {j} (image {pr[j]['image_id']}) in {psrc}"  # noqa: E731
    _check_boxes_xywh(d_box, "prediction", d_name)
    if n and not np.isfinite(d_score).all():
        j = int(np.flatnonzero(~np.isfinite(d_score))[0])
        raise MetricsInputError(f"{d_name(j)} has score {d_score[j]}; scores must be finite numbers")

    def index(vals, table, what, name):
        pos = np.searchsorted(table, vals)
        pos_c = np.minimum(pos, max(len(table) - 1, 0))
        bad = (pos >= len(table)) | (table[pos_c] != vals) if len(table) else np.ones(len(vals), bool)
        if len(vals) and bad.any():
            j = int(np.flatnonzero(bad)[0])
            nb = int(bad.sum())
            raise MetricsInputError(f"{name(j)} refers to {what} {vals[j]}, which is not in the ground truth "
                                    f"({nb} such record{'s' if nb != 1 else ''})")
        return pos

    g_img = index(g_imgid, img_ids, "image id", g_name)
    g_cls = index(g_cat, classes, "category id", g_name)
    d_img = index(d_imgid, img_ids, "image id", d_name)
    d_cls = index(d_cat, classes, "category id", d_name)
    return _Data(len(img_ids), classes, names, g_img, g_cls, g_box, g_area, g_crowd, g_diff, g_id,
                 d_img, d_cls, d_box, d_score, img_ids.tolist())


# ==================================================================================================
# Matching engine
# ==================================================================================================
def _pair_iou(db, gb, crowd):
    """pycocotools' bbIou for (det, gt) pairs of xywh boxes; crowd GT → inter / det area."""
    w = np.minimum(db[:, 2] + db[:, 0], gb[:, 2] + gb[:, 0]) - np.maximum(db[:, 0], gb[:, 0])
    h = np.minimum(db[:, 3] + db[:, 1], gb[:, 3] + gb[:, 1]) - np.maximum(db[:, 1], gb[:, 1])
    da = db[:, 2] * db[:, 3]
    ga = gb[:, 2] * gb[:, 3]
    i = w * h
    u = np.where(crowd, da, da + ga - i)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = i / u
    return np.where((w > 0) & (h > 0), o, 0.0)


def _ul_pair_iou(db, gb, eps=1e-7):
    """Ultralytics' box_iou (xyxy, eps in the denominator) for pairs of xywh boxes."""
    a1x, a1y, a2x, a2y = gb[:, 0], gb[:, 1], gb[:, 0] + gb[:, 2], gb[:, 1] + gb[:, 3]
    b1x, b1y, b2x, b2y = db[:, 0], db[:, 1], db[:, 0] + db[:, 2], db[:, 1] + db[:, 3]
    iw = np.clip(np.minimum(a2x, b2x) - np.maximum(a1x, b1x), 0, None)
    ih = np.clip(np.minimum(a2y, b2y) - np.maximum(a1y, b1y), 0, None)
    inter = iw * ih
    return inter / ((a2x - a1x) * (a2y - a1y) + (b2x - b1x) * (b2y - b1y) - inter + eps)


@dataclass
class _Groups:
    order: np.ndarray  # det indices, sorted by (image, class, -score, input order), truncated to max_det
    rank: np.ndarray  # rank within its (image, class) group
    pair_det: np.ndarray  # index into order
    pair_gt: np.ndarray  # gt index
    pair_iou: np.ndarray


def _groups(data: _Data, gt_mask: np.ndarray, max_det, iou_kind: str) -> _Groups:
    C = max(len(data.classes), 1)
    nd = len(data.d_score)
    dkey = data.d_img * C + data.d_cls
    order = np.lexsort((np.arange(nd), -data.d_score, dkey))
    dks = dkey[order]
    first = np.ones(nd, bool)
    first[1:] = dks[1:] != dks[:-1]
    rank = np.arange(nd) - np.maximum.accumulate(np.where(first, np.arange(nd), 0)) if nd else np.zeros(0, np.int64)
    if max_det is not None:
        keep = rank < max_det
        order, rank, dks = order[keep], rank[keep], dks[keep]
    gidx = np.flatnonzero(gt_mask)
    gkey = data.g_img[gidx] * C + data.g_cls[gidx]
    go = np.argsort(gkey, kind="stable")
    gks, gidx = gkey[go], gidx[go]
    lo = np.searchsorted(gks, dks, "left")
    cnt = np.searchsorted(gks, dks, "right") - lo
    P = int(cnt.sum())
    pair_det = np.repeat(np.arange(len(order)), cnt)
    offs = np.arange(P) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pair_gt = gidx[np.repeat(lo, cnt) + offs]
    db = data.d_box[order[pair_det]]
    gb = data.g_box[pair_gt]
    if iou_kind == "coco":
        piou = _pair_iou(db, gb, data.g_crowd[pair_gt])
    elif iou_kind == "plain":
        piou = _pair_iou(db, gb, np.zeros(len(gb), bool))
    else:
        piou = _ul_pair_iou(db, gb)
    return _Groups(order, rank, pair_det, pair_gt, piou)


def _greedy_match(grp: _Groups, n_gt: int, thr: np.ndarray, g_ign=None, g_crowd=None, tie_last=True):
    """Greedy matching in score order within each (image, class) group, for L lanes at once.

    Each detection (in rank order) takes, among GTs with IoU ≥ thr[lane] that are not yet matched
    (crowds always available), a non-ignored GT if any, else an ignored one; the one of highest IoU,
    ties → the last (``tie_last``, pycocotools) or first GT (Ultralytics). Lanes are independent
    (e.g. IoU threshold × area range). ``g_ign``: (L, n_gt) bool or None. Returns ``match``
    (L, n_det) int64 gt index or -1, indexed like ``grp.order``.
    """
    L = len(thr)
    nd = len(grp.order)
    match = np.full((L, nd), -1, np.int32)
    if len(grp.pair_det) == 0:
        return match
    gtm = np.zeros((L, n_gt), bool)
    prank = grp.rank[grp.pair_det]
    po = np.argsort(prank, kind="stable")
    p_det, p_gt, p_iou, p_rank = grp.pair_det[po], grp.pair_gt[po], grp.pair_iou[po], prank[po]
    bounds = np.searchsorted(p_rank, np.arange(int(p_rank[-1]) + 2))
    ign8 = None if g_ign is None else (2 - g_ign.astype(np.int8))  # 2 = normal GT, 1 = ignored GT
    crowd_any = g_crowd is not None and bool(g_crowd.any())
    thr_col = thr[:, None]
    for r in range(len(bounds) - 1):
        a, b = bounds[r], bounds[r + 1]
        if a == b:
            continue
        pd, pg, pi = p_det[a:b], p_gt[a:b], p_iou[a:b]
        n = b - a
        first = np.ones(n, bool)
        first[1:] = pd[1:] != pd[:-1]
        starts = np.flatnonzero(first)
        seglen = np.diff(np.append(starts, n))
        ok = pi[None, :] >= thr_col
        taken = gtm[:, pg]
        if crowd_any:
            taken &= ~g_crowd[pg][None, :]
        ok &= ~taken
        if ign8 is not None:
            catv = np.where(ok, ign8[:, pg], 0).astype(np.int8)
            best = np.maximum.reduceat(catv, starts, axis=1)
            ok &= catv == np.repeat(best, seglen, axis=1)
        iv = np.where(ok, pi[None, :], -1.0)
        bi = np.maximum.reduceat(iv, starts, axis=1)
        ok &= iv == np.repeat(bi, seglen, axis=1)
        loc = np.arange(n)
        if tie_last:
            pos = np.maximum.reduceat(np.where(ok, loc, -1), starts, axis=1)
        else:
            pos = np.minimum.reduceat(np.where(ok, loc, n), starts, axis=1)
            pos[pos == n] = -1
        ln, sg = np.nonzero(pos >= 0)
        g = pg[pos[ln, sg]]
        gtm[ln, g] = True
        match[ln, pd[starts[sg]]] = g
    return match


# ==================================================================================================
# Accumulation helpers
# ==================================================================================================
def _acc_order(data: _Data, grp: _Groups):
    """Positions into grp.order sorted by (class, -score, image, rank) = pycocotools' concatenation order."""
    o = grp.order
    return np.lexsort((grp.rank, data.d_img[o], -data.d_score[o], data.d_cls[o]))


def _segments(cls_sorted, C):
    starts = np.searchsorted(cls_sorted, np.arange(C), "left")
    ends = np.searchsorted(cls_sorted, np.arange(C), "right")
    return starts, ends


def _seg_cumsum(x, seg_id, starts):
    """Cumulative sums restarting at each class segment. x: (R, N) bool → int64."""
    cs = np.cumsum(x, axis=1, dtype=np.int32)
    if cs.shape[1] == 0:
        return cs
    base = np.concatenate([np.zeros((cs.shape[0], 1), np.int32), cs], axis=1)[:, starts]  # (R, C)
    cs -= base[:, seg_id]
    return cs


def _coco_sample_precision(tp_cum, fp_cum, seg_id, starts, ends, npig):
    """101-point precision samples for rows (R, N) with C class segments → q (R, C, 101), recall (R, C).

    Exactly pycocotools: pr = tp/(tp+fp+eps), envelope = reverse cumulative max, sample index =
    searchsorted(rc, recThr, 'left') with rc = tp/npig, samples past the end are 0.
    """
    Rr, N = tp_cum.shape
    C = len(starts)
    nk = ends - starts
    npf = npig.astype(np.float64)
    q = np.zeros((Rr, C, len(REC_THRESHOLDS)))
    rec = np.zeros((Rr, C))
    valid_c = npig > 0
    if N == 0:
        return q, rec
    # recall at the last detection of each class
    last = np.maximum(ends - 1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec = np.where((nk > 0)[None, :] & valid_c[None, :], tp_cum[:, last] / np.where(valid_c, npf, 1)[None, :], 0.0)
    # minimal integer tp count c_r with float(c_r / npig) >= recThr_r (exact float semantics)
    safe = np.where(valid_c, npf, 1.0)[:, None]
    c = np.maximum(np.floor(REC_THRESHOLDS[None, :] * safe) - 2, 0)
    for _ in range(8):
        inc = (c / safe) < REC_THRESHOLDS[None, :]
        if not inc.any():
            break
        c = c + inc
    c = c.astype(np.int64)  # (C, 101)
    big = np.int64(N + 2)
    row = np.arange(Rr)[:, None]
    key = (row * C + seg_id[None, :]) * big + tp_cum.astype(np.int64)  # (R, N) nondecreasing, row-major
    qk = ((row[:, :, None] * C + np.arange(C)[None, :, None]) * big + c[None, :, :])  # (R, C, 101)
    pos = np.searchsorted(key.ravel(), qk.ravel(), "left").reshape(Rr, C, -1)
    rowbase = (np.arange(Rr) * N)[:, None, None]
    gstart = rowbase + starts[None, :, None]
    gend = rowbase + ends[None, :, None]
    valid = (pos < gend) & (pos >= gstart)
    pos = np.minimum(pos, gend)
    pr = tp_cum / (fp_cum + tp_cum + np.spacing(1))
    flat = np.append(pr.ravel(), 0.0)
    bnd = np.concatenate([pos, np.broadcast_to(gend, (Rr, C, 1))], axis=2).ravel()
    mx = np.maximum.reduceat(flat, bnd).reshape(Rr, C, -1)[:, :, :-1]
    mx = np.where(valid, mx, 0.0)
    q = np.flip(np.maximum.accumulate(np.flip(mx, 2), axis=2), 2)
    return q, rec


# ==================================================================================================
# Result object
# ==================================================================================================
@dataclass
class DetectionMetrics:
    """Result of :func:`evaluate`. Arrays follow ``class_ids`` (the evaluated classes, i.e. with GT).

    Attributes:
        convention: "coco", "voc07", "voc" or "ultralytics".
        class_ids: labels (in-memory API) or COCO category ids of the evaluated classes.
        class_names: their names.
        iou_thresholds: (T,) = 0.50, 0.55, …, 0.95.
        ap: (K, T) AP per evaluated class and IoU threshold (COCO: area all, maxDets 100).
        map50, map75, map50_95: means over evaluated classes (of ``ap[:, 0]``, ``ap[:, 5]``, ``ap``).
        ap_per_class: {name: {"ap50", "ap75", "ap50_95"}}.
        stats: the 12 COCO numbers (``COCO_STAT_NAMES``) for convention "coco", else None.
        conf: confidence threshold used for ``precision``/``recall``/``f1``.
        precision, recall, f1: per class at IoU 0.5 counting detections with score ≥ conf;
        p, r, f1_mean: their means over evaluated classes.
        num_gt: non-ignored GT count per evaluated class; num_images.
        pr_curves: {name: {"recall", "precision", "scores"}} raw P-R curve at IoU 0.5 (score order).
        coco_eval: convention "coco": {"precision": (T,101,K,A,M), "recall": (T,K,A,M)} like
            pycocotools' ``COCOeval.eval`` (-1 where a class has no GT); None otherwise.
    """

    convention: str
    class_ids: list
    class_names: list
    iou_thresholds: np.ndarray
    ap: np.ndarray
    map50: float
    map75: float
    map50_95: float
    ap_per_class: dict
    stats: np.ndarray | None
    conf: float
    precision: dict
    recall: dict
    f1: dict
    p: float
    r: float
    f1_mean: float
    num_gt: dict
    num_images: int
    pr_curves: dict = field(repr=False, default_factory=dict)
    coco_eval: dict | None = field(repr=False, default=None)

    def __getitem__(self, key):  # dict-style access: res["map50"]
        return getattr(self, key)

    def to_dict(self, curves: bool = False) -> dict:
        """JSON-serialisable summary (without the big arrays unless ``curves``)."""
        d = {
            "convention": self.convention, "num_images": self.num_images,
            "map50": self.map50, "map75": self.map75, "map50_95": self.map50_95,
            "precision": self.p, "recall": self.r, "f1": self.f1_mean, "conf": self.conf,
            "ap_per_class": self.ap_per_class,
            "per_class": {n: {"num_gt": int(self.num_gt[n]), "precision": self.precision[n],
                              "recall": self.recall[n], "f1": self.f1[n]} for n in self.class_names},
        }
        if self.stats is not None:
            d["stats"] = dict(zip(COCO_STAT_NAMES, [float(x) for x in self.stats]))
        if curves:
            d["pr_curves"] = {n: {k: np.asarray(v).tolist() for k, v in c.items()} for n, c in self.pr_curves.items()}
        return d

    def summary(self) -> str:
        """A printable table: headline numbers, the COCO stats if any, AP per class."""
        lines = [f"convention={self.convention}  images={self.num_images}  classes={len(self.class_names)}",
                 f"mAP50={self.map50:.4f}  mAP75={self.map75:.4f}  mAP50-95={self.map50_95:.4f}  "
                 f"P={self.p:.4f} R={self.r:.4f} F1={self.f1_mean:.4f} @conf>={self.conf}"]
        if self.stats is not None:
            lines += [f"  {n:<14s} {v:.4f}" for n, v in zip(COCO_STAT_NAMES, self.stats)]
        lines.append(f"  {'class':<16s} {'nGT':>6s} {'AP50':>7s} {'AP75':>7s} {'AP50-95':>8s}")
        for n in self.class_names:
            a = self.ap_per_class[n]
            lines.append(f"  {n:<16s} {self.num_gt[n]:>6d} {a['ap50']:>7.4f} {a['ap75']:>7.4f} {a['ap50_95']:>8.4f}")
        return "\n".join(lines)


# ==================================================================================================
# Conventions
# ==================================================================================================
def _coco(data: _Data, want_curves: bool):
    T, R, A, M = len(IOU_THRESHOLDS), len(REC_THRESHOLDS), len(AREA_RANGES), len(MAX_DETS)
    C = len(data.classes)
    grp = _groups(data, np.ones(len(data.g_img), bool), MAX_DETS[-1], "coco")
    o = grp.order
    g_ign_a = np.stack([data.g_crowd | (data.g_area < lo) | (data.g_area > hi) for lo, hi in AREA_RANGES])  # (A, G)
    thr = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
    lanes_thr = np.tile(thr, A)
    lanes_ign = np.repeat(g_ign_a, T, axis=0)
    match = _greedy_match(grp, len(data.g_img), lanes_thr, lanes_ign, data.g_crowd, tie_last=True)
    matched = match >= 0
    d_area = (data.d_box[o, 2] * data.d_box[o, 3])
    d_out = np.stack([(d_area < lo) | (d_area > hi) for lo, hi in AREA_RANGES])  # (A, nd)
    if len(data.g_img):
        mg = np.where(matched, match, 0)
        dtm = matched  # matches are positions, not annotation ids: no id-0 quirk (see the module docstring)
        dt_ig = matched & lanes_ign[np.arange(A * T)[:, None], mg]
    else:
        dtm = dt_ig = matched
    dt_ig = dt_ig | (~dtm & np.repeat(d_out, T, axis=0))
    tp = dtm & ~dt_ig
    fp = ~dtm & ~dt_ig
    npig = np.stack([np.bincount(data.g_cls[~g_ign_a[a]], minlength=C) for a in range(A)])  # (A, C)

    acc = _acc_order(data, grp)
    precision = -np.ones((T, R, C, A, M))
    recall = -np.ones((T, C, A, M))
    curves = None
    # Everything in accumulation order once; per (area, maxDets) keep only the detections that are not
    # ignored in every lane of that area. Dropping them is exact: they change no TP/FP count, and the
    # envelope sampled at the first detection reaching each recall never lands on them.
    tp_acc, fp_acc, ig_acc = tp[:, acc], fp[:, acc], dt_ig[:, acc]
    rank_acc, cls_acc = grp.rank[acc], data.d_cls[o[acc]]
    for mi, md in enumerate(MAX_DETS):
        in_m = rank_acc < md
        for a in range(A):
            rows = slice(a * T, (a + 1) * T)
            cols = np.flatnonzero(in_m & ~ig_acc[rows].all(0))
            cls_s = cls_acc[cols]
            starts, ends = _segments(cls_s, C)
            seg_id = np.repeat(np.arange(C), ends - starts)
            tpc = _seg_cumsum(tp_acc[rows][:, cols], seg_id, starts)
            fpc = _seg_cumsum(fp_acc[rows][:, cols], seg_id, starts)
            q, rc = _coco_sample_precision(tpc, fpc, seg_id, starts, ends, npig[a])
            valid = npig[a] > 0
            precision[:, :, valid, a, mi] = np.transpose(q, (0, 2, 1))[:, :, valid]
            recall[:, valid, a, mi] = rc[:, valid]
            if want_curves and a == 0 and md == MAX_DETS[-1]:
                keep = ~ig_acc[0, cols]
                curves = _curves_from(tpc[0], fpc[0], keep, data.d_score[o[acc[cols]]], starts, ends, npig[0], data,
                                      "coco")
    stats = _coco_stats(precision, recall)
    ap = np.transpose(precision[:, :, :, 0, -1], (2, 0, 1))  # (C, T, R)
    ap = np.where((ap > -1).all(2), ap.mean(2), np.nan)  # (C, T)
    valid = npig[0] > 0
    # P/R/F1 at conf use all-area, maxDets 100, IoU 0.5 (lane 0)
    lane0 = dict(tp=tp[0], fp=fp[0], order=o)
    return ap, valid, npig[0], stats, {"precision": precision, "recall": recall}, lane0, curves


def _coco_stats(precision, recall):
    def summ(ap, t=None, a=0, m=2):
        s = precision if ap else recall
        if t is not None:
            s = s[[t]]
        s = s[:, :, :, a, m] if ap else s[:, :, a, m]
        v = s[s > -1]
        return float(np.mean(v)) if v.size else -1.0

    t50 = int(np.where(0.5 == IOU_THRESHOLDS)[0][0])
    t75 = int(np.where(0.75 == IOU_THRESHOLDS)[0][0])
    return np.array([summ(1), summ(1, t50), summ(1, t75), summ(1, a=1), summ(1, a=2), summ(1, a=3),
                     summ(0, m=0), summ(0, m=1), summ(0, m=2), summ(0, a=1), summ(0, a=2), summ(0, a=3)])


def _curves_from(tp_cum, fp_cum, keep, scores, starts, ends, npos, data, conv):
    """Raw P-R curves at IoU 0.5 per class (only classes with GT)."""
    out = {}
    for k in range(len(starts)):
        if npos[k] <= 0:
            continue
        s, e = starts[k], ends[k]
        kk = keep[s:e]
        tpk, fpk = tp_cum[s:e][kk].astype(np.float64), fp_cum[s:e][kk].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(tpk + fpk > 0, tpk / (tpk + fpk), 0.0)
        out[data.names[k]] = {"recall": tpk / npos[k], "precision": prec, "scores": scores[s:e][kk]}
    return out


def _voc_match(data: _Data, use_crowd_as_difficult=True):
    """VOC devkit matching: each det → argmax-IoU GT of its image/class (first on ties); TP if IoU ≥ t,
    not difficult, first det on that GT (in score order). Returns grp, tp, fp (T, nd), ignored (T, nd)."""
    grp = _groups(data, np.ones(len(data.g_img), bool), None, "plain")
    nd = len(grp.order)
    T = len(IOU_THRESHOLDS)
    iou = grp.pair_iou
    best_iou = np.full(nd, -1.0)
    best_gt = np.full(nd, -1, np.int64)
    if len(iou):
        first = np.ones(len(iou), bool)
        first[1:] = grp.pair_det[1:] != grp.pair_det[:-1]
        starts = np.flatnonzero(first)
        seglen = np.diff(np.append(starts, len(iou)))
        mx = np.maximum.reduceat(iou, starts)
        is_max = iou == np.repeat(mx, seglen)
        pos = np.minimum.reduceat(np.where(is_max, np.arange(len(iou)), len(iou)), starts)
        dets = grp.pair_det[starts]
        best_iou[dets] = mx
        best_gt[dets] = grp.pair_gt[pos]
    diff = data.g_difficult | (data.g_crowd if use_crowd_as_difficult else False)
    bg = np.maximum(best_gt, 0)
    is_diff = (best_gt >= 0) & diff[bg]
    tp = np.zeros((T, nd), bool)
    ign = np.zeros((T, nd), bool)
    for t, thr in enumerate(IOU_THRESHOLDS):
        elig = best_iou >= thr
        ign[t] = elig & is_diff
        cand = np.flatnonzero(elig & ~is_diff)
        # first det (lowest rank) per GT wins; grp.order is (image, class, rank)-sorted so position order = rank order
        gts_c = best_gt[cand]
        oo = np.argsort(gts_c, kind="stable")
        firsts = np.ones(len(oo), bool)
        firsts[1:] = gts_c[oo][1:] != gts_c[oo][:-1]
        tp[t, cand[oo[firsts]]] = True
    fp = ~tp & ~ign
    npos = np.bincount(data.g_cls[~diff], minlength=len(data.classes))
    return grp, tp, fp, ign, npos


def _ranked_ap(data, grp, tp, fp, ign, npos, ap_fn, want_curves):
    """Sort dets per class by (-score, image, rank) and compute AP per class and threshold."""
    C = len(data.classes)
    T = tp.shape[0]
    acc = _acc_order(data, grp)
    o = grp.order
    cls_s = data.d_cls[o[acc]]
    starts, ends = _segments(cls_s, C)
    seg_id = np.repeat(np.arange(C), ends - starts)
    tpc = _seg_cumsum(tp[:, acc], seg_id, starts)
    fpc = _seg_cumsum(fp[:, acc], seg_id, starts)
    keep = ~ign[0, acc]
    ap = np.full((C, T), np.nan)
    for k in range(C):
        if npos[k] <= 0:
            continue
        s, e = starts[k], ends[k]
        for t in range(T):
            kk = ~ign[t, acc[s:e]]
            ap[k, t] = ap_fn(tpc[t, s:e][kk].astype(np.float64), fpc[t, s:e][kk].astype(np.float64), npos[k])
    curves = _curves_from(tpc[0], fpc[0], keep, data.d_score[o[acc]], starts, ends, npos, data, "") \
        if want_curves else None
    return ap, curves


def _voc(data, use_07, want_curves):
    grp, tp, fp, ign, npos = _voc_match(data)

    def ap_fn(tpc, fpc, n):
        rec = tpc / n
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        return _voc_ap(rec, prec, use_07)

    ap, curves = _ranked_ap(data, grp, tp, fp, ign, npos, ap_fn, want_curves)
    return ap, npos > 0, npos, dict(tp=tp[0], fp=fp[0], order=grp.order), curves


def _ultralytics(data, want_curves):
    keep_gt = ~data.g_crowd
    grp = _groups(data, keep_gt, None, "ultralytics")
    thr = np.linspace(0.5, 0.95, 10).astype(np.float32).astype(np.float64)  # torch.linspace float32 as in val
    match = _greedy_match(grp, len(data.g_img), thr, None, None, tie_last=False)
    tp = match >= 0
    fp = ~tp
    ign = np.zeros_like(tp)
    npos = np.bincount(data.g_cls[keep_gt], minlength=len(data.classes))

    def ap_fn(tpc, fpc, n):
        if len(tpc) == 0:
            return 0.0
        recall = tpc / (n + 1e-16)
        precision = tpc / (tpc + fpc)
        return _ul_ap(recall, precision)

    ap, curves = _ranked_ap(data, grp, tp, fp, ign, npos, ap_fn, want_curves)
    return ap, npos > 0, npos, dict(tp=tp[0], fp=fp[0], order=grp.order), curves


def _finish(data: _Data, convention, ap, valid, npos, stats, coco_eval, lane0, curves, conf):
    ids = np.flatnonzero(valid)
    names = [data.names[k] for k in ids]
    apv = ap[ids] if len(ids) else np.zeros((0, len(IOU_THRESHOLDS)))
    t75 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75)))
    if len(ids) == 0:
        warnings.warn("no class has ground truth: every AP is undefined (nan)", stacklevel=3)
        m50 = m75 = m = float("nan")
    else:
        m50, m75, m = float(apv[:, 0].mean()), float(apv[:, t75].mean()), float(apv.mean())
    apc = {n: {"ap50": float(apv[i, 0]), "ap75": float(apv[i, t75]), "ap50_95": float(apv[i].mean())}
           for i, n in enumerate(names)}
    # P / R / F1 at the confidence threshold, IoU 0.5
    o = lane0["order"]
    sel = data.d_score[o] >= conf
    C = len(data.classes)
    ntp = np.bincount(data.d_cls[o][sel & lane0["tp"]], minlength=C)
    nfp = np.bincount(data.d_cls[o][sel & lane0["fp"]], minlength=C)
    prec, rec, f1 = {}, {}, {}
    for k, n in zip(ids, names):
        p = ntp[k] / (ntp[k] + nfp[k]) if ntp[k] + nfp[k] else 0.0
        r = ntp[k] / npos[k]
        prec[n], rec[n] = float(p), float(r)
        f1[n] = float(2 * p * r / (p + r)) if p + r > 0 else 0.0
    mean = lambda d: float(np.mean(list(d.values()))) if d else float("nan")  # noqa: E731
    return DetectionMetrics(
        convention=convention, class_ids=[int(data.classes[k]) for k in ids], class_names=names,
        iou_thresholds=IOU_THRESHOLDS.copy(), ap=apv, map50=m50, map75=m75, map50_95=m, ap_per_class=apc,
        stats=stats, conf=float(conf), precision=prec, recall=rec, f1=f1, p=mean(prec), r=mean(rec),
        f1_mean=mean(f1), num_gt={n: int(npos[k]) for k, n in zip(ids, names)}, num_images=data.n_images,
        pr_curves=curves or {}, coco_eval=coco_eval)


def _run(data: _Data, convention: str, conf: float, curves: bool) -> DetectionMetrics:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    if convention == "coco":
        ap, valid, npos, stats, ce, lane0, cv = _coco(data, curves)
        return _finish(data, convention, ap, valid, npos, stats, ce, lane0, cv, conf)
    if convention in ("voc07", "voc"):
        ap, valid, npos, lane0, cv = _voc(data, convention == "voc07", curves)
    else:
        ap, valid, npos, lane0, cv = _ultralytics(data, curves)
    return _finish(data, convention, ap, valid, npos, None, None, lane0, cv, conf)


def evaluate(gts, dets, convention: str = "coco", class_names=None, conf: float = 0.25,
             curves: bool = True) -> DetectionMetrics:
    """Evaluate detections against ground truth, in memory.

    Args:
        gts: one dict per image: ``{"boxes": (N, 4) xyxy pixels, "labels": (N,) int}``, optional
            ``"iscrowd"`` / ``"difficult"`` (N,) bool and ``"area"`` (N,) (COCO area ranges use it;
            default box area). numpy arrays, lists or torch tensors. ``iscrowd`` is used by "coco"
            (ignored region), "voc07"/"voc" (treated as difficult) and dropped by "ultralytics";
            ``difficult`` is used by the VOC conventions only (COCO and Ultralytics have no such flag).
        dets: one dict per image (same order): ``{"boxes": (M, 4) xyxy, "scores": (M,), "labels": (M,)}``.
        convention: ``"coco"`` (pycocotools), ``"voc07"`` (11-point), ``"voc"`` (all-point, VOC2010+)
            or ``"ultralytics"`` (YOLO val). See the module docstring for the exact rules.
        class_names: optional list; then labels must be in ``0..len(class_names)-1``. Without it,
            classes are the labels that occur.
        conf: confidence threshold for the reported precision/recall/F1 (AP uses every detection).
        curves: also return the raw P-R curves at IoU 0.5.

    Returns:
        :class:`DetectionMetrics` (``res.map50``, ``res.map50_95``, ``res.ap_per_class``,
        ``res.stats`` for COCO, … also ``res["map50"]``). Classes without GT are excluded.

    Raises:
        MetricsInputError: missing fields, NaN/negative/zero-size boxes, label out of range,
        mismatched lengths — the message names the image and box.
    """
    data = _prepare_lists(gts, dets, class_names)
    return _run(data, convention, conf, curves)


def evaluate_coco_json(gt, pred, convention: str = "coco", conf: float = 0.25, curves: bool = True,
                       gt_name: str | None = None, pred_name: str | None = None) -> DetectionMetrics:
    """Evaluate COCO-format ground truth (path or dict) against COCO results (path or list).

    ``convention="coco"`` reproduces pycocotools' ``COCOeval(gt, dt, "bbox")`` 12 stats exactly.
    For the VOC conventions an annotation's ``difficult`` flag (non-standard field) and ``iscrowd``
    both mark "difficult"; for "ultralytics" crowd annotations are dropped.

    Annotation ids are labels: renumbering them never changes a metric (pycocotools' id-0 bug is not copied;
    :func:`pycocotools_stats` runs the reference for comparison). ``gt_name``/``pred_name`` name in-memory
    inputs in error messages (e.g. the file they were read from).

    Raises:
        MetricsInputError: a file is missing or not JSON, a field is missing or of the wrong type, a box is
        bad, a prediction refers to an image id or category id that is not in the ground truth.
    """
    return _run(load_coco_json(gt, pred, gt_name=gt_name, pred_name=pred_name), convention, conf, curves)


def pycocotools_stats(gt, pred) -> np.ndarray:
    """The 12 ``COCOeval.summarize()`` stats from pycocotools itself (its printout silenced), for comparison.

    pycocotools records a match as the GT's annotation id and tests it for truthiness, so a detection matched to
    the annotation with ``id`` 0 counts as a false positive. For example, one image with two GT boxes and two
    perfect detections::

        gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}], "annotations": [
              {"id": 0, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20]}]}
        dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
                {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.8}]
        pycocotools_stats(gt, dets)[1]          # 0.2525 (AP50): the id-0 match is lost
        evaluate_coco_json(gt, dets).map50      # 1.0, as pycocotools gives with ids 1, 2

    ``gt`` and ``pred`` are dicts/lists (or paths) as for :func:`evaluate_coco_json`; they are not modified.
    """
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gtd, _ = _load_json(gt, "ground-truth")
    pr, _ = _load_json(pred, "prediction")
    if isinstance(pr, dict):
        pr = pr.get("annotations", [])
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gtd)
        for a in cg.dataset.get("annotations", []):
            a.setdefault("area", float(a["bbox"][2] * a["bbox"][3]))
            a.setdefault("iscrowd", 0)
        cg.createIndex()
        if pr:
            cd = cg.loadRes(copy.deepcopy(pr))
        else:
            cd = COCO()
            cd.dataset = {"images": cg.dataset["images"], "categories": cg.dataset["categories"], "annotations": []}
            cd.createIndex()
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats, dtype=np.float64)


# ==================================================================================================
# Confusion matrix (Ultralytics' definition)
# ==================================================================================================
def confusion_matrix(gts, dets, num_classes: int, conf: float = 0.25, iou_thres: float = 0.45) -> np.ndarray:
    """Detection confusion matrix as Ultralytics computes it, shape ``(nc + 1, nc + 1)`` indexed
    ``[predicted, true]``; the last row/column is "background".

    Per image, detections with score > ``conf`` are visited in descending score; each claims the
    unclaimed GT (any class) with the highest IoU if it is > ``iou_thres``: counted at
    ``[pred class, true class]``. Unclaimed GTs → ``[background, true]`` (missed), unmatched
    detections → ``[pred, background]`` (false alarm).
    """
    from labkit.boxes import pairwise_iou

    if len(gts) != len(dets):
        raise MetricsInputError(f"gts has {len(gts)} images but dets has {len(dets)}")
    nc = int(num_classes)
    m = np.zeros((nc + 1, nc + 1), dtype=np.int64)
    for i, (g, d) in enumerate(zip(gts, dets)):
        gb = _to_numpy(g.get("boxes", np.zeros((0, 4))), np.float64).reshape(-1, 4)
        gl = _to_numpy(g.get("labels", np.zeros(0))).astype(np.int64).reshape(-1)
        db = _to_numpy(d.get("boxes", np.zeros((0, 4))), np.float64).reshape(-1, 4)
        dl = _to_numpy(d.get("labels", np.zeros(0))).astype(np.int64).reshape(-1)
        ds = _to_numpy(d.get("scores", np.zeros(0)), np.float64).reshape(-1)
        for lab, what in ((gl, "gts"), (dl, "dets")):
            if len(lab) and (lab.min() < 0 or lab.max() >= nc):
                raise MetricsInputError(f"{what}[{i}] has a label outside 0..{nc - 1}")
        if len(gl) == 0:
            np.add.at(m, (dl[ds > conf], nc), 1)
            continue
        if len(dl) == 0:
            np.add.at(m, (nc, gl), 1)
            continue
        keep = ds > conf
        db, dl, ds = db[keep], dl[keep], ds[keep]
        iou = pairwise_iou(gb, db)  # (G, D)
        gt_match = np.full(len(gl), -1)
        cand = np.flatnonzero((iou > iou_thres).any(0)) if iou.size else np.zeros(0, np.int64)
        for j in cand[np.argsort(-ds[cand], kind="stable")]:
            gi = int(iou[:, j].argmax())
            if iou[gi, j] > iou_thres:
                gt_match[gi] = j
                iou[gi] = 0
        matched = set(gt_match[gt_match >= 0].tolist())
        for gi, gc in enumerate(gl):
            m[dl[gt_match[gi]] if gt_match[gi] >= 0 else nc, gc] += 1
        for j, dc in enumerate(dl):
            if j not in matched:
                m[dc, nc] += 1
    return m
