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

from labkit.yolov1.encode import encode_targets_batch_tf

__all__ = ["records_to_arrays", "load_image", "affine_boxes", "affine_image", "affine_images", "random_affine",
           "random_affine_batch", "random_hsv", "xla_available", "make_dataset", "python_generator_batches"]


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
    then translate by ``t`` image sizes) -- the same map :func:`affine_image` applies to pixels.

    ``boxes``: ``(..., 4)``; ``scale``, ``tx``, ``ty``: scalars, or ``(n,)`` for boxes ``(n, M, 4)``."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scale = tf.cast(scale, tf.float32)
    t = tf.stack([tf.cast(tx, tf.float32), tf.cast(ty, tf.float32)] * 2, axis=-1)
    if scale.shape.rank == 1:  # one transform per image of a batch
        scale, t = scale[:, None, None], t[:, None, :]
    return scale * (boxes - 0.5) + 0.5 + t


def affine_images(images, scale, tx, ty, fill_value: float = 127.0, out_dtype=None):
    """Batched :func:`affine_image`: ``images`` (n, H, W, C), ``scale``/``tx``/``ty`` (n,).

    Scale-about-the-centre plus translation is axis-aligned, so the whole batch is one
    ``tf.image.crop_and_resize``: output pixel index ``u`` samples input index ``u / scale + offset``.
    The result has ``out_dtype`` (default: the input's; ``tf.float32`` skips rounding back to uint8)."""
    images = tf.convert_to_tensor(images)
    dtype = tf.as_dtype(out_dtype) if out_dtype is not None else images.dtype
    img = images if images.dtype in (tf.uint8, tf.float32) else tf.cast(images, tf.float32)  # crop_and_resize reads both
    H = tf.cast(tf.shape(img)[1], tf.float32)
    W = tf.cast(tf.shape(img)[2], tf.float32)
    s = tf.cast(scale, tf.float32)
    tx, ty = tf.cast(tx, tf.float32), tf.cast(ty, tf.float32)
    # output pixel index u (centre at continuous u + 0.5) -> input index u / s + off
    offx = (0.5 - W / 2 - tx * W) / s + W / 2 - 0.5
    offy = (0.5 - H / 2 - ty * H) / s + H / 2 - 0.5
    # crop_and_resize samples input index y1*(H-1) + i*(y2-y1)*(H-1)/(H_out-1) for output row i
    y1, x1 = offy / (H - 1.0), offx / (W - 1.0)
    y2, x2 = y1 + 1.0 / s, x1 + 1.0 / s
    box = tf.stack([y1, x1, y2, x2], axis=-1)
    out = tf.image.crop_and_resize(img, box, tf.range(tf.shape(img)[0]), tf.cast(tf.stack([H, W]), tf.int32),
                                   method="bilinear", extrapolation_value=fill_value)
    if dtype.is_integer:
        out = tf.cast(tf.clip_by_value(tf.round(out), 0, 255), dtype)
    elif dtype != tf.float32:
        out = tf.cast(out, dtype)
    return out


def affine_image(image, scale, tx, ty, fill_value: float = 127.0):
    """Warp one ``(H, W, C)`` image with the map of :func:`affine_boxes` (bilinear, constant fill)."""
    one = lambda v: tf.reshape(tf.cast(v, tf.float32), [1])
    return affine_images(tf.convert_to_tensor(image)[None], one(scale), one(tx), one(ty), fill_value)[0]


def random_affine_batch(images, boxes, labels, max_scale: float = 0.2, max_translate: float = 0.2,
                        min_visible: float = 0.3, seed=None, out_dtype=None, stateless_seed=None):
    """Batched random scale in ``[1-max_scale, 1+max_scale]`` and translation in ``±max_translate``, one
    draw per image; boxes ``(n, M, 4)`` are moved with the pixels, clipped, and dropped (label -> -1)
    when less than ``min_visible`` of their area stays in the image. ``out_dtype``: see :func:`affine_images`.
    ``stateless_seed`` (shape ``[2]`` ints): draw with ``tf.random.stateless_uniform`` -- the same seed
    gives the same transform, whatever the thread order (``seed`` is the op seed of the stateful draw)."""
    n = tf.shape(images)[0]
    if stateless_seed is not None:
        rnd = tf.random.stateless_uniform(tf.stack([n, 3]), stateless_seed, -1.0, 1.0)
    else:
        rnd = tf.random.uniform(tf.stack([n, 3]), -1.0, 1.0, seed=seed)
    s = 1.0 + max_scale * rnd[:, 0]
    tx, ty = max_translate * rnd[:, 1], max_translate * rnd[:, 2]
    images = affine_images(images, s, tx, ty, out_dtype=out_dtype)
    nb = affine_boxes(boxes, s, tx, ty)
    area = (nb[..., 2] - nb[..., 0]) * (nb[..., 3] - nb[..., 1])
    cb = tf.clip_by_value(nb, 0.0, 1.0)
    cw, ch = cb[..., 2] - cb[..., 0], cb[..., 3] - cb[..., 1]
    ok = (labels >= 0) & (cw * ch >= min_visible * area) & (cw > 1e-3) & (ch > 1e-3)
    labels = tf.where(ok, labels, -tf.ones_like(labels))
    return images, cb, labels


def random_affine(image, boxes, labels, max_scale: float = 0.2, max_translate: float = 0.2,
                  min_visible: float = 0.3, seed=None):
    """One-image version of :func:`random_affine_batch` (``boxes`` (M, 4), ``labels`` (M,))."""
    im, b, l = random_affine_batch(tf.convert_to_tensor(image)[None], tf.convert_to_tensor(boxes, tf.float32)[None],
                                   tf.convert_to_tensor(labels)[None], max_scale, max_translate, min_visible, seed)
    return im[0], b[0], l[0]


def _hsv_scale(img, fsat, fval):
    """The per-pixel part of :func:`random_hsv`: ``img`` float in [0, 255], factors broadcastable per image."""
    img = tf.cast(img, tf.float32)  # [0, 255]; the /255 is folded into a, b
    v = tf.reduce_max(img, axis=-1, keepdims=True) / 255.0
    mn = tf.reduce_min(img, axis=-1, keepdims=True) / 255.0
    fs = tf.where(v - mn > 0, tf.minimum(fsat, tf.math.divide_no_nan(v, v - mn)), 1.0)  # new S <= 1
    fv = tf.where(v > 0, tf.minimum(fval, tf.math.divide_no_nan(1.0, v)), 1.0)  # new V <= 1
    a = fv * fs / 255.0
    b = fv * v * (1.0 - fs)
    return tf.clip_by_value(img * a + b, 0.0, 1.0)


_hsv_scale_xla = tf.function(_hsv_scale, jit_compile=True)
_XLA_OK = None


def xla_available() -> bool:
    """True if XLA can compile on this machine's CPU/GPU (probed once with a tiny input)."""
    global _XLA_OK
    if _XLA_OK is None:
        try:
            x = tf.zeros((1, 2, 2, 3))
            _XLA_OK = bool(np.isfinite(_hsv_scale_xla(x, tf.ones((1, 1, 1, 1)), tf.ones((1, 1, 1, 1))).numpy()).all())
        except Exception:  # no XLA in this TensorFlow build
            _XLA_OK = False
    return _XLA_OK


def random_hsv(images, max_factor: float = 1.5, seed=None, jit: bool | None = None, stateless_seed=None):
    """Multiply saturation and value (exposure) in HSV space by independent factors in
    ``[1/max_factor, max_factor]`` (log-uniform, one pair per image), clipping S and V to 1 as an HSV
    round trip would.

    Computed directly in RGB (the same result as ``rgb_to_hsv`` -> scale -> ``hsv_to_rgb``, a test checks
    it, and much cheaper): with ``V = max(r,g,b)``, scaling S by ``f`` is ``c' = V + f (c - V)`` and scaling
    V by ``g`` is ``c'' = g c'``, i.e. one per-pixel affine map ``c'' = a c + b`` with ``a = g f`` and
    ``b = g V (1 - f)``. With ``jit`` (default: when :func:`xla_available`) XLA fuses these element-wise
    steps into one pass over the image, about 3x faster on CPU. ``images``: (H, W, 3) or (n, H, W, 3),
    uint8 or float in [0, 255]; returns float32 in [0, 1]. ``stateless_seed``: as in
    :func:`random_affine_batch`."""
    images = tf.convert_to_tensor(images)
    lo = -math.log(max_factor)
    shape = tf.concat([tf.shape(images)[:-3], [1, 1, 1]], 0)
    if stateless_seed is not None:
        s1, s2 = tf.unstack(tf.random.experimental.stateless_split(stateless_seed, 2))
        fsat = tf.exp(tf.random.stateless_uniform(shape, s1, lo, -lo))
        fval = tf.exp(tf.random.stateless_uniform(shape, s2, lo, -lo))
    else:
        fsat = tf.exp(tf.random.uniform(shape, lo, -lo, seed=seed))
        fval = tf.exp(tf.random.uniform(shape, lo, -lo, seed=seed))
    if jit is None:
        jit = xla_available()
    return (_hsv_scale_xla if jit else _hsv_scale)(images, fsat, fval)


def make_dataset(voc, imgsz: int = 112, S: int = 7, B: int = 2, C: int | None = None, batch_size: int = 32,
                 training: bool = True, augment: bool | None = None, cache=True, shuffle: bool | None = None,
                 seed: int = 0, use_difficult: bool = False, max_scale: float = 0.2,
                 max_translate: float = 0.2, hsv_factor: float = 1.5, drop_remainder: bool = False,
                 num_parallel_calls=tf.data.AUTOTUNE, with_targets: bool = True):
    """Build the ``tf.data.Dataset`` of batches ``(images float32 [0,1] (n,imgsz,imgsz,3), targets (n,S,S,B*5+C))``.

    Per image: read + decode + resize (in parallel), then cache. Per *batch* (vectorized, one op for
    the whole batch): augmentation and target encoding.

    Args:
        voc: a :class:`labkit.yolov1.voc.VOCDataset` (or a list of records).
        C: number of classes (default: ``len(voc.classes)``).
        training: shuffle and augment (each overridable with ``shuffle``/``augment``).
        cache: ``True`` (memory), a file path prefix (disk), or ``False``.
        with_targets: yield ``(images, targets)``; otherwise ``(images, boxes, labels)`` (padded, -1 = none).
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
        ds = ds.shuffle(min(len(paths), 4096), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment:
        # one stateless seed pair per batch, from a seeded stream that changes every epoch: the augmentation is
        # reproducible (batches are prepared in parallel, so stateful random ops would depend on thread order)
        try:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        except TypeError:  # TensorFlow < 2.13: the same stream every epoch
            seeds = tf.data.Dataset.random(seed=seed)
        ds = tf.data.Dataset.zip((ds, seeds.batch(2)))

    def prep(img, b, l, sd=None):
        if augment:  # the warped batch stays float32 (no rounding back to uint8) on its way to the HSV step
            s1, s2 = tf.unstack(tf.random.experimental.stateless_split(sd, 2))
            img, b, l = random_affine_batch(img, b, l, max_scale, max_translate, out_dtype=tf.float32,
                                            stateless_seed=s1)
            img = random_hsv(img, hsv_factor, stateless_seed=s2)
        else:
            img = tf.cast(img, tf.float32) / 255.0
        if not with_targets:
            return img, b, l
        return img, encode_targets_batch_tf(b, l, S, B, C)

    fn = (lambda batch, sd: prep(*batch, sd)) if augment else prep
    ds = ds.map(fn, num_parallel_calls=num_parallel_calls, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def python_generator_batches(voc, imgsz: int = 112, S: int = 7, B: int = 2, C: int | None = None,
                             batch_size: int = 32, augment: bool = False, max_scale: float = 0.2,
                             max_translate: float = 0.2, hsv_factor: float = 1.5):
    """The source notebook's way, for comparison: a per-item Python generator that reads each image
    eagerly with TensorFlow, resizes it, and fills the label matrix in a Python loop, every epoch.

    With ``augment`` each image also goes through the same augmentation as :func:`make_dataset`
    (the same functions, called eagerly one image at a time), so the two produce the same kind of batch.
    (Kept for the benchmark; unlike the source it skips the images ``read_voc`` rejected, so it
    does not crash.)"""
    from labkit.yolov1.encode import encode_targets

    C = C if C is not None else len(voc.classes)
    paths, boxes, labels = records_to_arrays(voc)
    xs, ys = [], []
    for p, b, l in zip(paths, boxes, labels):
        img = tf.io.decode_image(tf.io.read_file(p), channels=3, expand_animations=False)
        img = tf.image.resize(img, (imgsz, imgsz))
        keep = l >= 0
        b, l = b[keep], l[keep]
        if augment:
            img, b, l = random_affine(tf.cast(tf.round(img), tf.uint8), b, l, max_scale, max_translate)
            img = random_hsv(img, hsv_factor)
            b, l = b.numpy(), l.numpy()
            b, l = b[l >= 0], l[l >= 0]
        else:
            img = img / 255.0
        xs.append(img.numpy())
        ys.append(encode_targets(b, l, S, B, C))
        if len(xs) == batch_size:
            yield np.stack(xs), np.stack(ys)
            xs, ys = [], []
    if xs:
        yield np.stack(xs), np.stack(ys)
