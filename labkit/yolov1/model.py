"""YOLOv1 network in Keras 3: a configurable backbone and a dense (paper) or convolutional head.

* ``backbone="small"``: a small conv net trained from scratch (conv 3x3 + BatchNorm + leaky ReLU
  0.1, max-pool), the CPU-friendly default;
* ``backbone="resnet50"``: ``keras.applications.ResNet50`` with ImageNet weights when they can be
  loaded (already in the Keras cache, or online); offline it prints one notice and starts from a
  random init -- it never waits on the network;
* ``head="dense"``: as in the paper, flatten -> Dense -> dropout -> Dense(S*S*(B*5+C));
  ``head="conv"``: 3x3 conv -> dropout -> 1x1 conv to ``B*5+C`` channels per cell;
* :class:`YoloOutput` turns raw numbers into the encoding of :mod:`labkit.yolov1.encode`
  (sigmoid for x, y and the confidence, sigmoid² for w, h -- so √w is just the sigmoid and the
  loss's square root is smooth -- and a softmax over classes). The paper used a linear output
  layer; bounding the outputs makes from-scratch training much more stable.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import keras
from keras import layers

__all__ = ["YoloOutput", "CaffePreprocess", "build_yolov1", "resnet50_weights_available"]

_RESNET_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


@keras.saving.register_keras_serializable(package="labkit.yolov1")
class YoloOutput(layers.Layer):
    """Activation of the YOLOv1 output ``(..., S, S, B*5+C)`` (always float32, also under mixed precision)."""

    def __init__(self, S=7, B=2, C=20, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.S, self.B, self.C = int(S), int(B), int(C)

    def call(self, x):
        x = keras.ops.cast(x, "float32")
        x = keras.ops.reshape(x, (-1, self.S, self.S, self.B * 5 + self.C))
        box = keras.ops.reshape(x[..., :self.B * 5], (-1, self.S, self.S, self.B, 5))
        xy = keras.ops.sigmoid(box[..., 0:2])
        wh = keras.ops.square(keras.ops.sigmoid(box[..., 2:4]))
        conf = keras.ops.sigmoid(box[..., 4:5])
        box = keras.ops.concatenate([xy, wh, conf], axis=-1)
        box = keras.ops.reshape(box, (-1, self.S, self.S, self.B * 5))
        cls = keras.ops.softmax(x[..., self.B * 5:], axis=-1)
        return keras.ops.concatenate([box, cls], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.S, self.S, self.B * 5 + self.C)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(S=self.S, B=self.B, C=self.C)
        return cfg


@keras.saving.register_keras_serializable(package="labkit.yolov1")
class CaffePreprocess(layers.Layer):
    """``[0,1]`` RGB -> the BGR, mean-subtracted 0-255 input that Keras' ResNet50 weights expect."""

    def call(self, x):
        x = keras.ops.cast(x, self.compute_dtype) * 255.0
        x = keras.ops.flip(x, axis=-1)
        mean = keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=self.compute_dtype)
        return x - mean


def resnet50_weights_available(verbose: bool = True) -> bool:
    """True if the ImageNet ResNet50 (no top) weights are in the Keras cache or can be downloaded now.

    Never blocks for long: asks :func:`labkit.env.is_online` (a ~2 s probe, cached)."""
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    if (cache / "models" / _RESNET_NOTOP).is_file():
        return True
    try:
        from labkit.env import is_online
        online = is_online()
    except Exception:  # pragma: no cover - foundation missing
        online = False
    if not online and verbose:
        print("Notice: ImageNet weights for ResNet50 are not available offline; "
              "the backbone starts from a random init (expect much lower mAP).")
    return online


def _conv(x, filters, k=3, stride=1, name=None):
    x = layers.Conv2D(filters, k, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=None if name is None else name + "_bn")(x)
    return layers.LeakyReLU(negative_slope=0.1, name=None if name is None else name + "_act")(x)


def _small_backbone(x, imgsz, S, width):
    """Darknet-flavoured small CNN: a stride-2 stem, then stages of 3x3 (+ 1x1 bottleneck + 3x3 from
    the third stage on) each followed by a 2x2 max-pool, until the feature map is about S x S."""
    n_down = max(1, int(math.floor(math.log2(imgsz / S))))
    cap = 16 * width
    x = _conv(x, width, stride=2, name="stem")
    f = width
    for i in range(1, n_down):
        f = min(2 * f, cap)
        x = _conv(x, f, name=f"s{i}_conv1")
        if i >= 2:
            x = _conv(x, f // 2, k=1, name=f"s{i}_conv2")
            x = _conv(x, f, name=f"s{i}_conv3")
        x = layers.MaxPooling2D(2, name=f"s{i}_pool")(x)
    f = min(2 * f, cap)
    x = _conv(x, f, name="top_conv1")
    x = _conv(x, f // 2, k=1, name="top_conv2")
    x = _conv(x, f, name="top_conv3")
    return x


def build_yolov1(S: int = 7, B: int = 2, C: int = 20, imgsz: int = 112, backbone: str = "small",
                 head: str = "conv", width: int = 16, head_units: int = 512, dropout: float = 0.5,
                 pretrained: bool = True, freeze_backbone: bool = False, name: str = "yolov1") -> keras.Model:
    """Build a YOLOv1 model ``(imgsz, imgsz, 3) in [0,1] -> (S, S, B*5+C)`` (activated).

    Args:
        S, B, C: grid size, boxes per cell, classes.
        imgsz: square input side. The small backbone halves the resolution until about ``S``
            (e.g. 112 -> 7 with four max-pools); other feature sizes are brought to ``S x S``.
        backbone: ``"small"`` (from scratch) or ``"resnet50"``.
        head: ``"dense"`` (paper) or ``"conv"`` (fully convolutional).
        width: channels of the first small-backbone stage (doubles per stage, capped at 16x).
        head_units: hidden units of the dense head (the paper: 4096).
        dropout: dropout rate in the head (the paper: 0.5).
        pretrained, freeze_backbone: for ResNet50: try ImageNet weights; freeze the backbone.
    """
    if backbone not in ("small", "resnet50"):
        raise ValueError(f"backbone must be 'small' or 'resnet50', got {backbone!r}")
    if head not in ("dense", "conv"):
        raise ValueError(f"head must be 'dense' or 'conv', got {head!r}")
    inp = keras.Input((imgsz, imgsz, 3), name="image")
    if backbone == "small":
        x = _small_backbone(inp, imgsz, S, width)
    else:
        weights = "imagenet" if (pretrained and resnet50_weights_available()) else None
        try:
            base = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(imgsz, imgsz, 3))
        except Exception as e:  # download failed half way, proxy, ...
            print(f"Notice: could not load ResNet50 ImageNet weights ({type(e).__name__}); random init.")
            base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(imgsz, imgsz, 3))
        base.trainable = not freeze_backbone
        x = base(CaffePreprocess(name="caffe_preprocess")(inp))
        x = _conv(x, 512, k=1, name="neck")
    fs = x.shape[1]
    if fs == 2 * S:  # as in the paper: a stride-2 conv brings 14x14 to 7x7
        x = _conv(x, x.shape[-1], stride=2, name="to_grid")
    elif fs != S:
        x = layers.Resizing(S, S, interpolation="bilinear", name="to_grid")(x)
    D = B * 5 + C
    if head == "dense":
        x = _conv(x, 64, k=1, name="head_reduce")
        x = layers.Flatten(name="head_flatten")(x)
        x = layers.Dense(head_units, name="head_fc")(x)
        x = layers.LeakyReLU(negative_slope=0.1, name="head_fc_act")(x)
        x = layers.Dropout(dropout, name="head_dropout")(x)
        x = layers.Dense(S * S * D, name="head_out")(x)
    else:
        x = _conv(x, max(64, x.shape[-1] // 2), name="head_conv")
        x = layers.Dropout(dropout, name="head_dropout")(x)
        x = layers.Conv2D(D, 1, name="head_out")(x)
    out = YoloOutput(S, B, C, name="yolo_output")(x)
    return keras.Model(inp, out, name=name)
