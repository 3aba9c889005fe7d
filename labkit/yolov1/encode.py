"""YOLOv1 target encoding ``S x S x (B*5 + C)`` and its inverse.

Layout of the last axis (the same for targets and for the model's activated output)::

    [x_1, y_1, w_1, h_1, c_1,  ...,  x_B, y_B, w_B, h_B, c_B,  p_1 ... p_C]

* ``x, y``: box centre as an offset inside its grid cell, in ``[0, 1]``;
* ``w, h``: box size as a fraction of the whole image, in ``[0, 1]``;
* ``c``: confidence (target: 1 in a cell that holds an object, else 0);
* ``p``: class probabilities (target: one-hot of the object in the cell).

In a target every one of the B slots of an object cell holds the same box: which predictor is
*responsible* is decided by the loss (highest IoU with this box), not by the encoder.
As in the paper, a cell holds at most one object: when two object centres fall in the same cell
the first one (in annotation order) is kept.
"""
from __future__ import annotations

import numpy as np

__all__ = ["encode_targets", "encode_targets_tf", "encode_targets_batch_tf", "decode_targets", "decode_predictions", "cell_to_image_xyxy"]


def _centre_cells(boxes, S):
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    col = np.clip(np.floor(cx * S), 0, S - 1).astype(np.int64)
    row = np.clip(np.floor(cy * S), 0, S - 1).astype(np.int64)
    return cx * S - col, cy * S - row, w, h, row, col


def encode_targets(boxes, labels, S: int = 7, B: int = 2, C: int = 20) -> np.ndarray:
    """Encode normalized ``xyxy`` boxes (N,4 in [0,1]) and integer labels (N,) into an
    ``(S, S, B*5 + C)`` float32 target (NumPy reference; see :func:`encode_targets_tf`)."""
    t = np.zeros((S, S, B * 5 + C), np.float32)
    labels = np.asarray(labels, np.int64).reshape(-1)
    x, y, w, h, row, col = _centre_cells(boxes, S)
    if len(labels) != len(x):
        raise ValueError(f"{len(x)} boxes but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= C):
        raise ValueError(f"labels must be in [0, {C}), got {labels.tolist()}")
    for k in range(len(labels)):
        i, j = row[k], col[k]
        if t[i, j, 4] == 1:  # cell already taken: first object wins (paper: one object per cell)
            continue
        for b in range(B):
            t[i, j, 5 * b:5 * b + 5] = (x[k], y[k], w[k], h[k], 1.0)
        t[i, j, B * 5 + labels[k]] = 1.0
    return t


def encode_targets_batch_tf(boxes, labels, S: int = 7, B: int = 2, C: int = 20):
    """Vectorized TensorFlow encoder for a batch: ``boxes`` (n, M, 4) normalized xyxy, ``labels`` (n, M)
    int with ``-1`` marking padding -> targets (n, S, S, B*5+C). Same first-wins rule as
    :func:`encode_targets` (graph-safe, for ``tf.data``)."""
    import tensorflow as tf

    boxes = tf.cast(boxes, tf.float32)
    labels = tf.cast(labels, tf.int32)
    n, M = tf.shape(labels)[0], tf.shape(labels)[1]
    Sf = float(S)
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    col = tf.clip_by_value(tf.cast(tf.floor(cx * Sf), tf.int32), 0, S - 1)
    row = tf.clip_by_value(tf.cast(tf.floor(cy * Sf), tf.int32), 0, S - 1)
    x, y = cx * Sf - tf.cast(col, tf.float32), cy * Sf - tf.cast(row, tf.float32)
    valid = labels >= 0
    # first-wins: drop object k if an earlier valid object k' < k of the same image has the same cell
    cell = row * S + col
    same = tf.equal(cell[:, :, None], cell[:, None, :]) & valid[:, None, :]
    ar = tf.range(M)
    earlier = (ar[None, :] < ar[:, None])[None]  # [k, k'] = k' < k
    keep = valid & ~tf.reduce_any(same & earlier, axis=2)
    img = tf.tile(tf.range(n)[:, None], tf.stack([1, M]))
    idx = tf.boolean_mask(tf.stack([img, row, col], axis=-1), keep)
    box5 = tf.boolean_mask(tf.stack([x, y, w, h, tf.ones_like(x)], axis=-1), keep)  # (K,5)
    cls = tf.one_hot(tf.boolean_mask(labels, keep), C, dtype=tf.float32)
    feat = tf.concat([tf.tile(box5, [1, B]), cls], axis=-1)
    return tf.scatter_nd(idx, feat, tf.stack([n, S, S, B * 5 + C]))


def encode_targets_tf(boxes, labels, S: int = 7, B: int = 2, C: int = 20):
    """TensorFlow version of :func:`encode_targets` for one image (``boxes`` (N,4), ``labels`` (N,))."""
    import tensorflow as tf

    b = tf.reshape(tf.cast(boxes, tf.float32), [1, -1, 4])
    l = tf.reshape(tf.cast(labels, tf.int32), [1, -1])
    return encode_targets_batch_tf(b, l, S, B, C)[0]


def cell_to_image_xyxy(grid_xywh, S: int):
    """Convert ``(..., S, S, [B,] 4)`` cell-relative ``x, y`` + image-relative ``w, h`` to
    normalized image ``xyxy`` (NumPy)."""
    g = np.asarray(grid_xywh, np.float32)
    extra = g.ndim - 3  # 1 if a B axis is present
    rows = np.arange(S, dtype=np.float32).reshape((S, 1) + (1,) * extra)
    cols = np.arange(S, dtype=np.float32).reshape((1, S) + (1,) * extra)
    cx = (g[..., 0] + cols) / S
    cy = (g[..., 1] + rows) / S
    w, h = g[..., 2], g[..., 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def decode_targets(target, S: int = 7, B: int = 2, C: int = 20):
    """Exact inverse of :func:`encode_targets`: ``(boxes (K,4) normalized xyxy, labels (K,))``
    in row-major cell order."""
    t = np.asarray(target, np.float32).reshape(S, S, B * 5 + C)
    obj = t[..., 4] > 0.5
    xyxy = cell_to_image_xyxy(t[..., 0:4], S)
    return xyxy[obj].astype(np.float32), t[..., B * 5:].argmax(-1)[obj].astype(np.int64)


def decode_predictions(pred, S: int = 7, B: int = 2, C: int = 20, conf_thresh: float = 0.2,
                       nms_iou: float = 0.5, max_det: int = 100, clip: bool = True):
    """Decode one activated model output ``(S, S, B*5+C)`` into detections.

    The score of a box is the paper's class-specific confidence ``Pr(class|object) * confidence``
    for its most likely class; boxes below ``conf_thresh`` are dropped, then class-wise NMS
    (:func:`labkit.boxes.batched_nms`) keeps at most ``max_det``.
    Returns ``{"boxes": (K,4) normalized xyxy, "scores": (K,), "labels": (K,)}``."""
    p = np.asarray(pred, np.float32).reshape(S, S, B * 5 + C)
    boxes = p[..., :B * 5].reshape(S, S, B, 5)
    xyxy = cell_to_image_xyxy(boxes[..., :4], S).reshape(-1, 4)
    cls = p[..., B * 5:]
    lab = np.repeat(cls.argmax(-1)[:, :, None], B, axis=2).reshape(-1)
    score = (boxes[..., 4] * cls.max(-1)[:, :, None]).reshape(-1)
    keep = score >= conf_thresh
    xyxy, score, lab = xyxy[keep], score[keep], lab[keep]
    if clip:
        xyxy = np.clip(xyxy, 0.0, 1.0)
    ok = (xyxy[:, 2] - xyxy[:, 0] > 1e-6) & (xyxy[:, 3] - xyxy[:, 1] > 1e-6)  # no empty boxes
    xyxy, score, lab = xyxy[ok], score[ok], lab[ok]
    if len(score):
        idx = _nms(xyxy, score, lab, nms_iou, max_det)
        xyxy, score, lab = xyxy[idx], score[idx], lab[idx]
    return {"boxes": xyxy.astype(np.float32), "scores": score.astype(np.float32), "labels": lab.astype(np.int64)}


def _nms(boxes, scores, labels, iou, max_det):
    """Class-wise NMS (:func:`labkit.boxes.batched_nms`); the kept indices by decreasing score, at most ``max_det``."""
    from labkit.boxes import batched_nms

    return np.asarray(batched_nms(boxes, scores, labels, iou), np.int64)[:max_det]
