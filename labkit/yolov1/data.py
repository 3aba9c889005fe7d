"""``tf.data`` input pipeline for YOLOv1: decode -> resize -> cache -> augment -> encode -> batch -> prefetch.

Augmentation follows the paper (Sec. 2.2): random scaling and translation of up to 20% of the image
size, and random exposure and saturation changes of up to a factor 1.5 in HSV space. Boxes go
through the *same* affine map as the pixels (:func:`affine_boxes` and :func:`affine_image` share
one parametrization), are clipped to the image, and are dropped when too little of them stays
visible.

Images are cached *after* decoding and resizing, as ``uint8`` (4x smaller than float32), so from
the second epoch on no JPEG is decoded again; augmentation runs after the cache, so it differs in
every epoch. The images were already checked by :func:`labkit.yolov1.voc.read_voc`, so a bad file
cannot stop an epoch.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from labkit.yolov1.encode import encode_targets_tf

__all__ = ["records_to_arrays", "load_image", "affine_boxes", "affine_image", "random_affine",
           "random_hsv", "make_dataset", "python_generator_batches"]


def records_to_arrays(voc, use_difficult: bool = False):
    """Paths, padded normalized ``xyxy`` boxes ``(N, M, 4)`` and labels ``(N, M)`` (``-1`` = padding).

    ``difficult`` objects are left out of the training targets unless ``use_difficult`` (as in the
    original darknet VOC conversion); evaluation still sees them (and ignores them, VOC rules)."""
    recs = voc.records if hasattr(voc, "records") else voc
    M = max([1] + [len(r.labels) for r in recs])
    paths = np.array([r.image_path for r in recs])
    boxes = np.zeros((len(recs), M, 4), np.float32)
    labels = -np.ones((len(recs), M), np.int32)
    for k, r in enumerate(recs):
        keep = np.ones(len(r.labels), bool) if use_difficult else ~r.difficult
        b = r.boxes[keep] / np.array([r.width, r.height, r.width, r.height], np.float32)
        boxes[k, :len(b)] = np.clip(b, 0.0, 1.0)
        labels[k, :len(b)] = r.labels[keep]
    return paths, boxes, labels


def load_image(path, imgsz: int):
    """Read, decode (JPEG/PNG/BMP/GIF) and resize to ``imgsz x imgsz``; returns uint8 RGB."""
    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    img = tf.image.resize(img, (imgsz, imgsz), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)


def affine_boxes(boxes, scale, tx, ty):
    """Map normalized ``xyxy`` boxes through ``p' = scale * (p - 0.5) + 0.5 + t`` (scale about the centre,
    then translate by ``t`` image sizes) -- the same map :func:`affine_image` applies to pixels."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scale = tf.cast(scale, tf.float32)
    t = tf.stack([tf.cast(tx, tf.float32), tf.cast(ty, tf.float32)] * 2)
    return scale * (boxes - 0.5) + 0.5 + t


def affine_image(image, scale, tx, ty, fill_value: float = 127.0):
    """Warp an ``(H, W, C)`` image with the map of :func:`affine_boxes` (bilinear, constant fill)."""
    image = tf.convert_to_tensor(image)
    dtype = image.dtype
    img = tf.cast(image, tf.float32)
    H = tf.cast(tf.shape(img)[0], tf.float32)
    W = tf.cast(tf.shape(img)[1], tf.float32)
    s = tf.cast(scale, tf.float32)
    tx, ty = tf.cast(tx, tf.float32), tf.cast(ty, tf.float32)
    # output pixel index u (centre at continuous u + 0.5) -> input index; see affine_boxes for the map
    a2 = (0.5 - W / 2 - tx * W) / s + W / 2 - 0.5
    b2 = (0.5 - H / 2 - ty * H) / s + H / 2 - 0.5
    inv = tf.stack([1.0 / s, 0.0, a2, 0.0, 1.0 / s, b2, 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=img[None], transforms=inv, output_shape=tf.shape(img)[:2], fill_value=fill_value,
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    if dtype.is_integer:
        out = tf.cast(tf.clip_by_value(tf.round(out), 0, 255), dtype)
    return out


def random_affine(image, boxes, labels, max_scale: float = 0.2, max_translate: float = 0.2,
                  min_visible: float = 0.3, seed=None):
    """Random scale in ``[1-max_scale, 1+max_scale]`` and translation in ``±max_translate``; boxes are
    moved with the pixels, clipped, and dropped (label -> -1) when less than ``min_visible`` of their
    area stays in the image."""
    rnd = tf.random.uniform([3], -1.0, 1.0, seed=seed)
    s = 1.0 + max_scale * rnd[0]
    tx, ty = max_translate * rnd[1], max_translate * rnd[2]
    image = affine_image(image, s, tx, ty)
    nb = affine_boxes(boxes, s, tx, ty)
    area = (nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1])
    cb = tf.clip_by_value(nb, 0.0, 1.0)
    carea = (cb[:, 2] - cb[:, 0]) * (cb[:, 3] - cb[:, 1])
    ok = (labels >= 0) & (carea >= min_visible * area) & (cb[:, 2] - cb[:, 0] > 1e-3) & (cb[:, 3] - cb[:, 1] > 1e-3)
    labels = tf.where(ok, labels, -tf.ones_like(labels))
    return image, cb, labels


def random_hsv(image, max_factor: float = 1.5, seed=None):
    """Multiply saturation and value (exposure) by independent factors in ``[1/max_factor, max_factor]``
    (log-uniform). ``image``: uint8 or float in [0, 255]; returns float32 in [0, 1]."""
    img = tf.cast(image, tf.float32) / 255.0
    lo = -math.log(max_factor)
    f = tf.exp(tf.random.uniform([2], lo, -lo, seed=seed))
    hsv = tf.image.rgb_to_hsv(img)
    hsv = tf.stack([hsv[..., 0], tf.clip_by_value(hsv[..., 1] * f[0], 0, 1),
                    tf.clip_by_value(hsv[..., 2] * f[1], 0, 1)], axis=-1)
    return tf.image.hsv_to_rgb(hsv)


def make_dataset(voc, imgsz: int = 112, S: int = 7, B: int = 2, C: int | None = None, batch_size: int = 32,
                 training: bool = True, augment: bool | None = None, cache=True, shuffle: bool | None = None,
                 seed: int = 0, use_difficult: bool = False, max_scale: float = 0.2,
                 max_translate: float = 0.2, hsv_factor: float = 1.5, drop_remainder: bool = False,
                 num_parallel_calls=tf.data.AUTOTUNE, with_targets: bool = True):
    """Build the ``tf.data.Dataset`` of ``(image float32 [0,1] (imgsz,imgsz,3), target (S,S,B*5+C))``.

    Args:
        voc: a :class:`labkit.yolov1.voc.VOCDataset` (or a list of records).
        C: number of classes (default: ``len(voc.classes)``).
        training: shuffle and augment (each overridable with ``shuffle``/``augment``).
        cache: ``True`` (memory), a file path prefix (disk), or ``False``.
        with_targets: yield ``(image, target)``; otherwise ``(image, boxes, labels)`` (padded).
    """
    C = C if C is not None else len(voc.classes)
    augment = training if augment is None else augment
    shuffle = training if shuffle is None else shuffle
    paths, boxes, labels = records_to_arrays(voc, use_difficult)
    ds = tf.data.Dataset.from_tensor_slices((paths, boxes, labels))
    ds = ds.map(lambda p, b, l: (load_image(p, imgsz), b, l), num_parallel_calls=num_parallel_calls,
                deterministic=True)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(min(len(paths), 2048), seed=seed, reshuffle_each_iteration=True)

    def prep(img, b, l):
        if augment:
            img, b, l = random_affine(img, b, l, max_scale, max_translate)
            img = random_hsv(img, hsv_factor)
        else:
            img = tf.cast(img, tf.float32) / 255.0
        if not with_targets:
            return img, b, l
        keep = l >= 0
        return img, encode_targets_tf(tf.boolean_mask(b, keep), tf.boolean_mask(l, keep), S, B, C)

    ds = ds.map(prep, num_parallel_calls=num_parallel_calls, deterministic=not training)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def python_generator_batches(voc, imgsz: int = 112, S: int = 7, B: int = 2, C: int | None = None,
                             batch_size: int = 32):
    """The source notebook's way, for comparison: a per-item Python generator that reads each image
    eagerly with TensorFlow, resizes it, and fills the label matrix in a Python loop, every epoch.

    (Kept for the benchmark; unlike the source it skips the images ``read_voc`` rejected, so it
    does not crash.)"""
    from labkit.yolov1.encode import encode_targets

    C = C if C is not None else len(voc.classes)
    paths, boxes, labels = records_to_arrays(voc)
    xs, ys = [], []
    for p, b, l in zip(paths, boxes, labels):
        img = tf.io.decode_image(tf.io.read_file(p), channels=3, expand_animations=False)
        img = tf.image.resize(img, (imgsz, imgsz)) / 255.0
        keep = l >= 0
        xs.append(img.numpy())
        ys.append(encode_targets(b[keep], l[keep], S, B, C))
        if len(xs) == batch_size:
            yield np.stack(xs), np.stack(ys)
            xs, ys = [], []
    if xs:
        yield np.stack(xs), np.stack(ys)
