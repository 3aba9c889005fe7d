"""The lesson experiments of notebook 03, as functions the notebook and ``tests/test_lessons_03.py`` share.

* :func:`overfit_tiny` -- the "overfit a tiny set first" sanity check, with the paper's loss or with the
  source notebook's loss (:func:`labkit.yolov1.loss.source_loss`, bugs included), and what each bug does to
  the trained network, measured on the same images (:func:`grid_diagnostics`);
* :func:`prior_box_baseline` -- a trivial detector (no image is looked at) whose mAP a trained detector
  must beat;
* :func:`loss_curve_verdicts`, :func:`probe_verdicts`, :func:`detector_verdict` -- each lesson as
  ``(claim, ok, detail)`` for :func:`labkit.verdict`, computed from the experiment's own results.
"""
from __future__ import annotations

import numpy as np

__all__ = ["source_loss_keras", "grid_diagnostics", "overfit_tiny", "prior_box_baseline", "loss_curve_verdicts",
           "probe_verdicts", "detector_verdict"]


def source_loss_keras(C: int):
    """The source notebook's loss (:func:`labkit.yolov1.loss.source_loss`, every bug kept) as a Keras loss for
    *our* layout ``[boxes..., classes]``: the classes are rolled to the front, where the source kept them."""
    import tensorflow as tf

    from labkit.yolov1.loss import source_loss

    def loss(y_true, y_pred):
        roll = lambda t: tf.roll(tf.cast(t, tf.float32), shift=C, axis=-1)  # noqa: E731
        return source_loss(roll(y_true), roll(y_pred), C=C)

    loss.__name__ = "source_loss"
    return loss


def grid_diagnostics(pred, target, S: int, B: int, C: int) -> dict:
    """What a trained network outputs, cell by cell, against the encoded targets (numpy, ``(n, S, S, B*5+C)``).

    * ``class_acc``: in the cells that hold an object, how often the arg-max class is the true one;
    * ``box_conf_empty``: per predictor ``b``, its mean confidence in the cells that hold no object (the paper's
      no-object term pushes every predictor there towards 0; a predictor the loss never sees stays wherever it is);
    * ``conf_minus_iou``: in object cells, for the most confident predictor (the one inference keeps),
      the mean of confidence minus its IoU with the ground truth (0 when the score measures the fit;
      > 0 when the score claims a better fit than the box has).
    """
    from labkit.yolov1.loss import cell_iou

    pred, target = np.asarray(pred, np.float32), np.asarray(target, np.float32)
    pb = pred[..., :B * 5].reshape(pred.shape[:3] + (B, 5))
    gt = target[..., :4]
    obj = target[..., 4] > 0.5
    iou = np.asarray(cell_iou(pb[..., :4], gt[..., None, :], S))  # (n, S, S, B)
    conf = pb[..., 4]
    best = conf.argmax(-1)
    conf_best = np.take_along_axis(conf, best[..., None], -1)[..., 0]
    iou_best = np.take_along_axis(iou, best[..., None], -1)[..., 0]
    cls_ok = pred[..., B * 5:].argmax(-1) == target[..., B * 5:].argmax(-1)
    return {"class_acc": float(cls_ok[obj].mean()) if obj.any() else float("nan"),
            "box_conf_empty": [float(conf[..., b][~obj].mean()) for b in range(B)],
            "conf_minus_iou": float((conf_best - iou_best)[obj].mean()) if obj.any() else float("nan"),
            "iou_best": float(iou_best[obj].mean()) if obj.any() else float("nan")}


def overfit_tiny(voc, n_images: int = 16, steps: int = 100, imgsz: int = 112, S: int = 7, B: int = 2,
                 loss: str = "paper", lr: float = 4e-3, optimizer: str = "adam", seed: int = 0, batch_size: int = 8,
                 strategy=None, jit_compile: bool = False, **model_kw) -> dict:
    """Train a fresh YOLOv1 on the first ``n_images`` of ``voc`` for about ``steps`` steps, without augmentation,
    and score it on *the same* images.

    ``loss="paper"``: :class:`labkit.yolov1.loss.YoloLoss`; ``loss="source"``: the source notebook's loss
    (:func:`source_loss_keras`). Both runs start from the same seeded initial weights, see the same batches and
    use the same optimizer. Returns ``{"loss_before", "loss_after"`` (of the loss being trained),
    ``"map50"`` (VOC07 11-point, same images), the entries of :func:`grid_diagnostics`, ``"model"}``."""
    import keras
    import tensorflow as tf

    from labkit.yolov1 import infer as yinfer
    from labkit.yolov1 import model as ymodel
    from labkit.yolov1 import train as ytrain
    from labkit.yolov1.data import make_dataset
    from labkit.yolov1.voc import VOCDataset

    if loss not in ("paper", "source"):
        raise ValueError(f"loss must be 'paper' or 'source', got {loss!r}")
    C = len(voc.classes)
    tiny = VOCDataset(voc.root, "tiny", list(voc.classes), list(voc.records[:n_images]), [])
    ds = make_dataset(tiny, imgsz, S, B, C, batch_size=batch_size, training=False)
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        m = ymodel.build_yolov1(S, B, C, imgsz, **model_kw)
        ytrain.compile_model(m, S, B, C, ytrain.WarmupStepSchedule(lr), optimizer, jit_compile=jit_compile)
        if loss == "source":  # same optimizer, the source's loss
            m.compile(optimizer=m.optimizer, loss=source_loss_keras(C), jit_compile=jit_compile)
    before = m.evaluate(ds, verbose=0, return_dict=True)["loss"]
    m.fit(ds.repeat(max(1, steps // len(ds))), epochs=1, verbose=0, shuffle=False)
    after = m.evaluate(ds, verbose=0, return_dict=True)["loss"]
    res, _ = yinfer.evaluate(m, tiny, "voc07", S=S, B=B)
    xs, ys = zip(*[(x, y) for x, y in ds])
    pred = np.concatenate([np.asarray(m(x, training=False)) for x in xs])
    out = {"loss_before": float(before), "loss_after": float(after), "map50": float(res.map50)}
    out.update(grid_diagnostics(pred, np.concatenate([np.asarray(y) for y in ys]), S, B, C))
    out["model"] = m
    return out


def prior_box_baseline(train_voc, test_voc) -> list:
    """A detector that never looks at the image: on every test image it predicts, for every class, that class's
    mean training box (in normalized coordinates, scaled to the image), scored by the class's share of the
    training objects. Returns detections in the format of :func:`labkit.metrics.evaluate`."""
    C = len(train_voc.classes)
    sums, counts = np.zeros((C, 4)), np.zeros(C)
    for r in train_voc.records:
        keep = ~r.difficult
        b = r.boxes[keep] / np.array([r.width, r.height] * 2, np.float32)
        np.add.at(sums, r.labels[keep], b)
        np.add.at(counts, r.labels[keep], 1)
    mean_box = sums / np.maximum(counts, 1)[:, None]
    score = counts / max(counts.sum(), 1)
    seen = counts > 0
    dets = []
    for r in test_voc.records:
        wh = np.array([r.width, r.height] * 2, np.float32)
        dets.append({"boxes": (mean_box[seen] * wh).astype(np.float32), "scores": score[seen].astype(np.float32),
                     "labels": np.flatnonzero(seen).astype(np.int64)})
    return dets


def loss_curve_verdicts(history: dict) -> list:
    """The lessons of the per-term loss curves of a :func:`labkit.yolov1.train.fit` history, as
    ``[(claim, ok, detail), ...]`` for :func:`labkit.verdict`:

    * the total loss ends below its first epoch, on the training and on the validation data;
    * the no-object term collapses in the first epoch (epoch 2 below a quarter of epoch 1, the largest drop
      of all terms) while the responsible predictors' confidence term *rises* (every confidence is pushed to 0
      first);
    * *where* is learned before *what*: the coordinate term falls further (last / first epoch) than the class
      term, on training and validation data.
    """
    h = {k: np.asarray(v, float) for k, v in history.items()}
    r = lambda k, a=-1: h[k][a] / h[k][0]  # noqa: E731
    out = []
    ok = h["loss"][-1] < h["loss"][0] and ("val_loss" not in h or h["val_loss"][-1] < h["val_loss"][0])
    det = f"train {h['loss'][0]:.3f} -> {h['loss'][-1]:.3f}"
    if "val_loss" in h:
        det += f", val {h['val_loss'][0]:.3f} -> {h['val_loss'][-1]:.3f}"
    out.append(("the total YOLOv1 loss falls on training and validation data", bool(ok), det))
    if len(h["loss"]) >= 2:
        drops = {t: r(t + "_loss", 1) for t in ("coord", "obj", "noobj", "class")}
        ok = drops["noobj"] < 0.25 and drops["noobj"] == min(drops.values()) and drops["obj"] > 1
        out.append(("the no-object term collapses in the first epoch while the object-confidence term rises",
                    bool(ok), "epoch 2 / epoch 1: " + ", ".join(f"{t} {v:.2f}" for t, v in drops.items())))
    pre = [p for p in ("", "val_") if p + "coord_loss" in h]
    ok = all(r(p + "coord_loss") < r(p + "class_loss") for p in pre)
    out.append(("the coordinate term falls further than the class term: where before what", bool(ok),
                "; ".join(f"{p[:-1] if p else 'train'} last/first coord {r(p + 'coord_loss'):.2f} class {r(p + 'class_loss'):.2f}"
                          for p in pre)))
    return out


def probe_verdicts(paper: dict, source: dict) -> list:
    """The lessons of the two :func:`overfit_tiny` runs (the paper's loss and the source's, same images, same
    initial weights, same steps), as ``[(claim, ok, detail), ...]`` for :func:`labkit.verdict`."""
    P, Q = paper, source
    return [
        ("the paper's loss memorizes the tiny set (the sanity check passes)",
         P["loss_after"] < 0.05 * P["loss_before"] and P["map50"] >= 0.8,
         f"loss {P['loss_before']:.3f} -> {P['loss_after']:.3f}, mAP50 on the same images {P['map50']:.3f}"),
        ("the source's loss falls just as far, yet its detector does not even memorize the tiny set",
         Q["loss_after"] < 0.05 * Q["loss_before"] and Q["map50"] <= 0.3 and Q["map50"] < P["map50"] - 0.5,
         f"source loss {Q['loss_before']:.3f} -> {Q['loss_after']:.3f}, mAP50 {Q['map50']:.3f} "
         f"vs paper {P['map50']:.3f}"),
        ("one box of B: the box the source never trains keeps firing in empty cells",
         Q["box_conf_empty"][-1] > 0.3 and max(P["box_conf_empty"]) < 0.1,
         "mean confidence in empty cells, per box: source " + ", ".join(f"{v:.3f}" for v in Q["box_conf_empty"])
         + "; paper " + ", ".join(f"{v:.3f}" for v in P["box_conf_empty"])),
        ("the wrong class slice: the source's network does not learn the classes",
         Q["class_acc"] < 0.6 and P["class_acc"] >= 0.9,
         f"class accuracy in object cells: source {Q['class_acc']:.3f}, paper {P['class_acc']:.3f}"),
        ("confidence target one: the source's score claims a better fit than its box has",
         Q["conf_minus_iou"] > P["conf_minus_iou"] + 0.2 and Q["conf_minus_iou"] > 0.2,
         f"mean confidence - IoU in object cells: source {Q['conf_minus_iou']:+.3f} (IoU {Q['iou_best']:.3f}), "
         f"paper {P['conf_minus_iou']:+.3f} (IoU {P['iou_best']:.3f})"),
    ]


def detector_verdict(map50: float, baseline_map50: float, margin: float = 0.3) -> tuple:
    """``(claim, ok, detail)``: the trained detector's held-out mAP50 beats the trivial
    :func:`prior_box_baseline` by at least ``margin``."""
    return ("the trained detector beats the trivial prior-box baseline on held-out images",
            bool(map50 >= baseline_map50 + margin),
            f"mAP50 (VOC07) {map50:.3f} vs baseline {baseline_map50:.3f}")
