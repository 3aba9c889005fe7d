"""The experiments of notebook 05 (detection metrics), as functions the notebook calls and the seed test
(``tests/test_lessons_05.py``) reruns: a simulated detector, the IoU family on chosen box pairs, the IoU of
a sliding box, the four AP conventions on the same detections, and pycocotools' annotation-id-0 quirk.

NMS and its experiment live in :mod:`labkit.nms`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import types

import numpy as np

from labkit import boxes as B

__all__ = ["simulate_detections", "IOU_PAIRS", "iou_family_table", "slide_curve", "conventions_experiment",
           "shapes_gts", "id_quirk_gt", "id_quirk_experiment", "quiet_training"]


def simulate_detections(gts, n_classes, seed=0, miss=0.15, jitter=0.07, dup=0.25, wrong_class=0.1,
                        false_alarms=1.5, imgsz=128):
    """A fake detector (after NMS): per object maybe a miss, else 1-2 jittered boxes (the second one a
    duplicate that NMS let through), sometimes with a wrong class; plus background false alarms. Real
    objects get confidences from Beta(5, 2) (mostly high), false alarms from Beta(2, 4) (mostly low).

    ``gts``: one dict per image with ``boxes`` (xyxy) and ``labels``. Returns one dict per image with
    ``boxes``, ``labels`` and ``scores`` (rounded to 4 decimals).
    """
    rng = np.random.default_rng(seed)
    dets = []
    for g in gts:
        boxes, labels, scores = [], [], []
        for b, c in zip(g["boxes"], g["labels"]):
            if rng.random() < miss:
                continue                                          # missed object -> lowers recall
            w, h = b[2] - b[0], b[3] - b[1]
            for _ in range(2 if rng.random() < dup else 1):       # duplicate -> an FP after matching
                boxes.append(b + rng.normal(0, jitter, 4) * [w, h, w, h])
                labels.append(c if rng.random() > wrong_class else rng.integers(n_classes))
                scores.append(rng.beta(5, 2))                     # real objects: mostly confident
        for _ in range(rng.poisson(false_alarms)):                # background -> FP
            x, y = rng.uniform(0, imgsz * 0.8, 2)
            s = rng.uniform(0.1, 0.4, 2) * imgsz
            boxes.append([x, y, x + s[0], y + s[1]]); labels.append(rng.integers(n_classes))
            scores.append(rng.beta(2, 4))                         # ... usually less confident
        bx = np.array(boxes, float).reshape(-1, 4).clip(0, imgsz)
        bx[:, 2:] = np.maximum(bx[:, 2:], bx[:, :2] + 1)          # keep every box at least 1 px wide
        dets.append({"boxes": bx, "labels": np.array(labels, int), "scores": np.round(np.array(scores), 4)})
    return dets


# --------------------------------------------------------------------------------------------------
# IoU family
# --------------------------------------------------------------------------------------------------
#: Box pairs (xyxy) chosen so that each term of the IoU family matters: name -> (A, B).
IOU_PAIRS = {
    "wide A, tall B, off-centre": ((10, 10, 70, 40), (45, 5, 65, 75)),
    "disjoint, near": ((0, 0, 20, 20), (25, 0, 45, 20)),
    "disjoint, far": ((0, 0, 20, 20), (60, 0, 80, 20)),
    "inside, centred": ((0, 0, 40, 40), (10, 10, 30, 30)),
    "inside, in a corner": ((0, 0, 40, 40), (0, 0, 20, 20)),
    "inside, centred, flat": ((0, 0, 40, 40), (0, 15, 40, 25)),
}


def iou_family_table(pairs=None) -> dict:
    """IoU, GIoU, DIoU and CIoU (``labkit.boxes.pairwise_iou``) of each pair: name -> {kind: value}."""
    pairs = IOU_PAIRS if pairs is None else pairs
    return {name: {k: float(B.pairwise_iou(np.array([a], float), np.array([b], float), kind=k)[0, 0])
                   for k in ("iou", "giou", "diou", "ciou")} for name, (a, b) in pairs.items()}


def slide_curve(box=(10.0, 10.0, 60.0, 50.0), max_shift=60.0, n=241) -> dict:
    """IoU and GIoU between ``box`` and a copy of it shifted horizontally by ``s`` in [-max_shift, max_shift].

    For a copy of a box of width w shifted by s, the overlap is (w - |s|)·h and the union (w + |s|)·h, so
    IoU = (w - |s|) / (w + |s|) while |s| < w: a corner at s = 0 (slopes +2/w on the left, -2/w on the
    right, from the |s|), IoU = 0.5 at |s| = w/3, and IoU = 0 from |s| = w on. Returns the curves and
    the one-sided slopes at 0 measured by finite differences.
    """
    a = np.array([box], float)
    shifts = np.linspace(-max_shift, max_shift, n)
    moved = a + np.stack([shifts, 0 * shifts, shifts, 0 * shifts], 1)
    iou = B.pairwise_iou(a, moved)[0]
    giou = B.pairwise_iou(a, moved, kind="giou")[0]
    w = box[2] - box[0]
    h = 1e-3
    f = lambda s: float(B.pairwise_iou(a, a + np.array([[s, 0, s, 0]]))[0, 0])  # noqa: E731
    g = lambda s: float(B.pairwise_iou(a, a + np.array([[s, 0, s, 0]]), kind="giou")[0, 0])  # noqa: E731
    return {"shifts": shifts, "iou": iou, "giou": giou, "width": w,
            "slope_left": (f(0) - f(-h)) / h, "slope_right": (f(h) - f(0)) / h,
            "shift_at_half": float(np.abs(shifts[iou >= 0.5]).max()),
            "iou_slope_beyond": (f(1.5 * w + h) - f(1.5 * w)) / h,
            "giou_slope_beyond": (g(1.5 * w + h) - g(1.5 * w)) / h}


# --------------------------------------------------------------------------------------------------
# AP conventions on simulated detections
# --------------------------------------------------------------------------------------------------
def conventions_experiment(seed: int = 0, n_val: int = 32, imgsz: int = 128, n_train: int = 64) -> dict:
    """Simulated detections on the shapes validation split, scored under the four conventions.

    Returns ``{"map50": {conv: value}, "ap50": {conv: {class: value}}, "max_recall": {class: value}}``
    where ``max_recall`` is the highest recall the class's detections reach at IoU 0.5.
    """
    from labkit.data.synthetic import make_shapes
    from labkit.metrics import CONVENTIONS, class_matches, evaluate

    ds = make_shapes(n_train=n_train, n_val=n_val, imgsz=imgsz, seed=seed)
    gts = shapes_gts(ds)
    dets = simulate_detections(gts, len(ds.classes), seed=seed, imgsz=imgsz)
    names = list(ds.classes)
    res = {c: evaluate(gts, dets, convention=c, class_names=names, curves=False) for c in CONVENTIONS}
    max_rec = {}
    for k, n in enumerate(names):
        m = class_matches(gts, dets, k, 0.5)
        max_rec[n] = float(m["tp"].sum() / max(m["n_gt"], 1))
    return {"map50": {c: r.map50 for c, r in res.items()},
            "ap50": {c: {n: r.ap_per_class[n]["ap50"] for n in r.class_names} for c, r in res.items()},
            "max_recall": max_rec}


def shapes_gts(ds, split: str = "val") -> list:
    """Ground truth of a shapes dataset's COCO file as one dict per image (xyxy ``boxes``, 0-based
    ``labels``), images sorted by id."""
    coco = json.loads(ds.coco_json(split).read_text())
    out = []
    for im in sorted(coco["images"], key=lambda im: im["id"]):
        anns = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
        xywh = np.array([a["bbox"] for a in anns], float).reshape(-1, 4)
        out.append({"boxes": B.xywh_to_xyxy(xywh), "labels": np.array([a["category_id"] - 1 for a in anns], int)})
    return out


# --------------------------------------------------------------------------------------------------
# pycocotools' annotation-id-0 quirk
# --------------------------------------------------------------------------------------------------
def id_quirk_gt(ids=(0, 1)) -> dict:
    """A COCO ground truth of one 100x100 image with two objects of one class, annotation ids ``ids``."""
    return {"images": [{"id": 1, "width": 100, "height": 100, "file_name": "one.jpg"}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": int(ids[0]), "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30],
                             "area": 900, "iscrowd": 0},
                            {"id": int(ids[1]), "image_id": 1, "category_id": 1, "bbox": [50, 50, 30, 30],
                             "area": 900, "iscrowd": 0}]}


#: Two perfect detections of the two objects of :func:`id_quirk_gt`.
ID_QUIRK_DETS = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "score": 0.9},
                 {"image_id": 1, "category_id": 1, "bbox": [50, 50, 30, 30], "score": 0.8}]


def _pycocotools_map50(gt: dict, dets: list) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints a lot
        cg = COCO()
        cg.dataset = json.loads(json.dumps(gt))
        cg.createIndex()
        E = COCOeval(cg, cg.loadRes(json.loads(json.dumps(dets))), "bbox")
        E.evaluate(); E.accumulate(); E.summarize()
    return float(E.stats[1])


def _by_hand_map50(gt: dict, dets: list) -> float:
    """COCO AP50 of one class computed from the boxes alone (ids never looked at)."""
    from labkit.metrics import ap_from_pr, match_image, pr_curve

    g = B.xywh_to_xyxy(np.array([a["bbox"] for a in gt["annotations"]], float))
    d = B.xywh_to_xyxy(np.array([x["bbox"] for x in dets], float))
    m = match_image(g, d, np.array([x["score"] for x in dets], float), 0.5)
    precision, recall = pr_curve(m["tp"], len(g))
    return float(ap_from_pr(recall, precision, "coco"))


def id_quirk_experiment(id_sets=((0, 1), (1, 2))) -> dict:
    """mAP50 of two perfect detections under each set of annotation ids, by pycocotools, labkit and by hand.

    Returns ``{ids: {"pycocotools": v, "labkit": v, "by_hand": v}}``.
    """
    from labkit.metrics import evaluate_coco_json

    out = {}
    for ids in id_sets:
        gt = id_quirk_gt(ids)
        out[tuple(ids)] = {"pycocotools": _pycocotools_map50(gt, ID_QUIRK_DETS),
                           "labkit": float(evaluate_coco_json(gt, ID_QUIRK_DETS).map50),
                           "by_hand": _by_hand_map50(gt, ID_QUIRK_DETS)}
    return out


# --------------------------------------------------------------------------------------------------
# A quiet Ultralytics training run (section 8 of the notebook)
# --------------------------------------------------------------------------------------------------
def _drop_tensorboard(trainer) -> None:
    """Remove Ultralytics' TensorBoard callbacks from one trainer (its global setting stays as it is): they
    trace the model for the graph view, about 3 s on a CPU, for a run nobody opens in TensorBoard."""
    for event, fns in trainer.callbacks.items():
        trainer.callbacks[event] = [f for f in fns if "tensorboard" not in getattr(f, "__module__", "")]


@contextlib.contextmanager
def quiet_training(model, epochs: int, desc: str = "epochs"):
    """Within the block, ``model.train(...)`` shows one tqdm bar over epochs instead of Ultralytics' epoch
    tables (its LOGGER is raised to WARNING, see :func:`labkit.finetune.quiet_ultralytics`) and skips the
    TensorBoard callbacks. Unless TensorFlow is already loaded, it also tells TensorBoard to use its TensorFlow
    stub for the rest of the session (no TensorFlow import, no C++ log lines)."""
    from tqdm.auto import tqdm

    from labkit.finetune import quiet_ultralytics

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and "tensorboard.compat.notf" not in sys.modules:
        # Ultralytics imports torch's SummaryWriter when it sets up its TensorBoard callback, and TensorBoard then
        # imports all of TensorFlow (seconds of CPU and C++ log lines that TF_CPP_MIN_LOG_LEVEL does not silence)
        # just to use tf.io.gfile. TensorBoard's own switch for "no TensorFlow here" is a module named
        # tensorboard.compat.notf: with it, TensorBoard uses its bundled stub. The callbacks are dropped anyway.
        sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    bar = tqdm(total=int(epochs), desc=desc)
    model.add_callback("on_pretrain_routine_start", _drop_tensorboard)
    model.add_callback("on_train_epoch_end", lambda trainer: bar.update(1))
    try:
        with quiet_ultralytics():
            yield bar
    finally:
        bar.close()
