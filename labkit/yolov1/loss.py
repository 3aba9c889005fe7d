"""The YOLOv1 loss, exactly as in Redmon et al. (2016), eq. (3).

For every image (``1obj_i``: cell *i* holds an object; ``1obj_ij``: predictor *j* of cell *i* is
*responsible* for it)::

    coord    = λcoord Σ_i Σ_j 1obj_ij [(x - x̂)² + (y - ŷ)² + (√w - √ŵ)² + (√h - √ĥ)²]
    obj      =        Σ_i Σ_j 1obj_ij (C - Ĉ)²
    noobj    = λnoobj Σ_i Σ_j 1noobj_ij C²          with 1noobj_ij = 1 - 1obj_ij
    class    =        Σ_i 1obj_i Σ_c (p(c) - p̂(c))²

* λcoord = 5, λnoobj = 0.5.
* The responsible predictor is the one of the B boxes whose current prediction has the highest
  IoU with the ground-truth box (ties -> the first).
* The confidence target Ĉ of the responsible predictor is that IoU (the paper: "we want the
  confidence score to equal the IoU between the predicted box and the ground truth"); it is
  treated as a constant (``stop_gradient``).  ``conf_target="one"`` uses 1 instead (what many
  reimplementations do, and what the source notebook did).
* The no-object term covers every predictor that is not responsible, including the B-1
  non-responsible predictors of object cells.
* The class term applies only to cells that hold an object.
* √w, √h: the predicted w, h are ≥ 0 by construction (see :class:`labkit.yolov1.model.YoloOutput`);
  we take ``sqrt(max(w, 0) + eps)`` so neither the value nor the gradient can be NaN.

The loss is summed over the grid and averaged over the batch.
"""
from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["yolo_loss_terms", "YoloLoss", "cell_iou", "source_loss", "TERMS"]

TERMS = ("coord", "obj", "noobj", "class")


def cell_iou(a, b, S: int):
    """IoU of boxes given as (x, y) cell offsets and (w, h) image fractions, ``(..., 4)``.

    Both boxes must live in the same cell (true for a predictor and the GT of its cell), so the
    cell's own position cancels out."""
    ax, ay = a[..., 0] / S, a[..., 1] / S
    bx, by = b[..., 0] / S, b[..., 1] / S
    aw, ah = tf.maximum(a[..., 2], 0.0), tf.maximum(a[..., 3], 0.0)
    bw, bh = tf.maximum(b[..., 2], 0.0), tf.maximum(b[..., 3], 0.0)
    iw = tf.maximum(tf.minimum(ax + aw / 2, bx + bw / 2) - tf.maximum(ax - aw / 2, bx - bw / 2), 0.0)
    ih = tf.maximum(tf.minimum(ay + ah / 2, by + bh / 2) - tf.maximum(ay - ah / 2, by - bh / 2), 0.0)
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return tf.math.divide_no_nan(inter, union)


def _safe_sqrt(v, eps):
    return tf.sqrt(tf.maximum(v, 0.0) + eps)


def yolo_loss_terms(y_true, y_pred, S: int = 7, B: int = 2, C: int = 20, lambda_coord: float = 5.0,
                    lambda_noobj: float = 0.5, conf_target: str = "iou", eps: float = 1e-9) -> dict:
    """Per-image loss terms ``{"coord", "obj", "noobj", "class", "total"}``, each of shape (batch,).

    ``y_true``: encoded targets (see :mod:`labkit.yolov1.encode`); ``y_pred``: the model's
    *activated* output in the same layout."""
    if conf_target not in ("iou", "one"):
        raise ValueError(f"conf_target must be 'iou' or 'one', got {conf_target!r}")
    yt = tf.reshape(tf.cast(y_true, tf.float32), [-1, S, S, B * 5 + C])
    yp = tf.reshape(tf.cast(y_pred, tf.float32), [-1, S, S, B * 5 + C])
    tb = tf.reshape(yt[..., :B * 5], [-1, S, S, B, 5])
    pb = tf.reshape(yp[..., :B * 5], [-1, S, S, B, 5])
    obj = tb[..., 0, 4]  # (n,S,S)   1obj_i
    gt = tb[..., 0:1, :4]  # (n,S,S,1,4) the cell's GT box (same in every slot)
    iou = cell_iou(pb[..., :4], gt, S)  # (n,S,S,B)
    resp = tf.one_hot(tf.argmax(iou, axis=-1), B, dtype=tf.float32) * obj[..., None]  # 1obj_ij
    noresp = 1.0 - resp  # 1noobj_ij

    d_xy = tf.reduce_sum(tf.square(pb[..., 0:2] - gt[..., 0:2]), axis=-1)
    d_wh = tf.reduce_sum(tf.square(_safe_sqrt(pb[..., 2:4], eps) - _safe_sqrt(gt[..., 2:4], eps)), axis=-1)
    coord = lambda_coord * tf.reduce_sum(resp * (d_xy + d_wh), axis=[1, 2, 3])

    target_c = tf.stop_gradient(iou) if conf_target == "iou" else tf.ones_like(iou)
    conf = pb[..., 4]
    obj_term = tf.reduce_sum(resp * tf.square(conf - target_c), axis=[1, 2, 3])
    noobj_term = lambda_noobj * tf.reduce_sum(noresp * tf.square(conf), axis=[1, 2, 3])

    cls_term = tf.reduce_sum(obj[..., None] * tf.square(yp[..., B * 5:] - yt[..., B * 5:]), axis=[1, 2, 3])
    total = coord + obj_term + noobj_term + cls_term
    return {"coord": coord, "obj": obj_term, "noobj": noobj_term, "class": cls_term, "total": total}


@keras.saving.register_keras_serializable(package="labkit.yolov1")
class YoloLoss(keras.losses.Loss):
    """Keras loss wrapping :func:`yolo_loss_terms` (per-image total; Keras averages over the batch)."""

    def __init__(self, S=7, B=2, C=20, lambda_coord=5.0, lambda_noobj=0.5, conf_target="iou",
                 name="yolo_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.S, self.B, self.C = int(S), int(B), int(C)
        self.lambda_coord, self.lambda_noobj, self.conf_target = float(lambda_coord), float(lambda_noobj), conf_target

    def terms(self, y_true, y_pred):
        """All loss terms, per image."""
        return yolo_loss_terms(y_true, y_pred, self.S, self.B, self.C, self.lambda_coord,
                               self.lambda_noobj, self.conf_target)

    def call(self, y_true, y_pred):
        return self.terms(y_true, y_pred)["total"]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(S=self.S, B=self.B, C=self.C, lambda_coord=self.lambda_coord,
                   lambda_noobj=self.lambda_noobj, conf_target=self.conf_target)
        return cfg


@keras.saving.register_keras_serializable(package="labkit.yolov1")
class YoloLossTerm(keras.metrics.Mean):
    """Metric: running mean (per image) of one loss term, so ``fit`` logs a curve per term."""

    def __init__(self, term="coord", S=7, B=2, C=20, lambda_coord=5.0, lambda_noobj=0.5,
                 conf_target="iou", name=None, dtype=None):
        super().__init__(name=name or f"{term}_loss", dtype=dtype)
        if term not in TERMS:
            raise ValueError(f"term must be one of {TERMS}")
        self.term, self.S, self.B, self.C = term, int(S), int(B), int(C)
        self.lambda_coord, self.lambda_noobj, self.conf_target = float(lambda_coord), float(lambda_noobj), conf_target

    def update_state(self, y_true, y_pred, sample_weight=None):
        v = yolo_loss_terms(y_true, y_pred, self.S, self.B, self.C, self.lambda_coord,
                            self.lambda_noobj, self.conf_target)[self.term]
        return super().update_state(v, sample_weight=sample_weight)

    def get_config(self):
        return {"term": self.term, "S": self.S, "B": self.B, "C": self.C, "lambda_coord": self.lambda_coord,
                "lambda_noobj": self.lambda_noobj, "conf_target": self.conf_target,
                "name": self.name, "dtype": self.dtype}


def source_loss(y_true, y_pred, C: int = 20):
    """The source notebook's loss, reproduced *with its bugs* for the comparison in notebook 03.

    Layout assumed by the source: ``[p_1..p_C, x, y, w, h, c, ...]`` (classes first).  Bugs:
    only the first of the B boxes is ever used; ``sign(w)*sqrt(|w|)`` instead of a valid w;
    no IoU-based responsible predictor; confidence target 1; the class term indexes
    ``y[:, C]`` -- a *row of the grid* (axis 1), not the class slice ``y[..., :C]``; for S=7
    row 20 does not even exist (TensorFlow raises out-of-bounds), so we clamp to the last row
    to show what kind of quantity it compares; weights 5/2/0.5 instead of 5/1/0.5/1.
    Returns the scalar the source optimized."""
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    exists = tf.expand_dims(y_true[..., C + 4], -1)
    n = tf.maximum(tf.cast(tf.math.count_nonzero(exists), tf.float32), 1.0)
    xy_p, xy_t = exists * y_pred[..., C:C + 2], exists * y_true[..., C:C + 2]
    wh_p = exists * tf.sign(y_pred[..., C + 2:C + 4]) * tf.sqrt(tf.abs(y_pred[..., C + 2:C + 4]))
    wh_t = exists * tf.sqrt(y_true[..., C + 2:C + 4])
    coord = (tf.reduce_sum(tf.square(wh_p - wh_t)) + tf.reduce_sum(tf.square(xy_p - xy_t))) / n
    d = y_true[..., C + 4:C + 5] - y_pred[..., C + 4:C + 5]
    conf = (tf.reduce_sum(tf.square(exists * d)) + 0.5 * tf.reduce_sum(tf.square((1 - exists) * d))) / n
    # y[:, C] on a (batch, S, S, D) tensor selects grid row C along axis 1 -- not the classes
    S = y_true.shape[1]
    row = min(C, S - 1) if S is not None else C
    cls = tf.reduce_sum(tf.square(exists[:, row] * (y_true[:, row] - y_pred[:, row]))) / n
    return 5 * coord + 2 * conf + 0.5 * cls
