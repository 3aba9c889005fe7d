"""The whole YOLOv8 detector (n/s/m/l/x), built from the scaling rules of ``yolov8.yaml``.

Ultralytics describes YOLOv8 as one yaml (``ultralytics/cfg/models/v8/yolov8.yaml``) with *base*
channels (64 ... 1024) and *base* repeats (3, 6, 6, 3) plus a table of ``[depth, width, max_channels]``
per scale. The rules, applied by ``ultralytics.nn.tasks.parse_model``, are:

* channels: ``c = ceil(min(c_base, max_channels) * width / 8) * 8``  (multiple of 8);
* repeats:  ``n = max(round(n_base * depth), 1)`` for ``n_base > 1`` (C2f blocks only).

Here the same network is written out as an explicit ``forward`` so the data flow (backbone ->
top-down FPN -> bottom-up PAN -> head) can be read directly. Layer ``i`` of the Ultralytics model is
the attribute ``LAYER_NAMES[i]`` of :class:`YOLOv8`; :func:`convert_ultralytics_state_dict` renames
``model.{i}.`` to ``{LAYER_NAMES[i]}.`` so released/yaml-built Ultralytics weights load with
``strict=True``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .modules import C2f, Concat, Conv, Detect, SPPF

__all__ = [
    "SCALES", "ScaleSpec", "scale_spec", "make_divisible", "YOLOv8", "LAYER_NAMES",
    "convert_ultralytics_state_dict", "from_ultralytics", "ultralytics_head_outputs",
]

# [depth, width, max_channels] — copied from yolov8.yaml (checked by tests/test_yolov8_model.py).
SCALES: dict[str, tuple[float, float, int]] = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}

# Ultralytics layer index -> attribute name here (None: a layer without parameters).
LAYER_NAMES: tuple[str | None, ...] = (
    "stem",        # 0  Conv 3x3/2        P1/2
    "down1",       # 1  Conv 3x3/2        P2/4
    "stage1",      # 2  C2f (shortcut)
    "down2",       # 3  Conv 3x3/2        P3/8
    "stage2",      # 4  C2f (shortcut)    -> backbone P3
    "down3",       # 5  Conv 3x3/2        P4/16
    "stage3",      # 6  C2f (shortcut)    -> backbone P4
    "down4",       # 7  Conv 3x3/2        P5/32
    "stage4",      # 8  C2f (shortcut)
    "sppf",        # 9  SPPF              -> backbone P5
    None,          # 10 Upsample x2
    None,          # 11 Concat with layer 6
    "td_p4",       # 12 C2f               top-down P4
    None,          # 13 Upsample x2
    None,          # 14 Concat with layer 4
    "out_p3",      # 15 C2f               -> head P3 (stride 8)
    "pan_down3",   # 16 Conv 3x3/2
    None,          # 17 Concat with layer 12
    "out_p4",      # 18 C2f               -> head P4 (stride 16)
    "pan_down4",   # 19 Conv 3x3/2
    None,          # 20 Concat with layer 9
    "out_p5",      # 21 C2f               -> head P5 (stride 32)
    "detect",      # 22 Detect
)


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x`` (Ultralytics' rounding of channel counts)."""
    return int(math.ceil(x / divisor) * divisor)


@dataclass(frozen=True)
class ScaleSpec:
    """Channel widths and block repeats of one YOLOv8 scale."""

    scale: str
    depth: float
    width: float
    max_channels: int

    def ch(self, base: int) -> int:
        """Scaled channel count for a base (yaml) channel count."""
        return make_divisible(min(base, self.max_channels) * self.width, 8)

    def n(self, base: int) -> int:
        """Scaled number of repeats for a base (yaml) repeat count."""
        return max(round(base * self.depth), 1) if base > 1 else base

    def widths(self) -> dict[str, int]:
        """Output channels of each named stage (what the notebook's widget shows)."""
        c64, c128, c256, c512, c1024 = (self.ch(c) for c in (64, 128, 256, 512, 1024))
        return {"P1/2 stem": c64, "P2/4": c128, "P3/8": c256, "P4/16": c512, "P5/32": c1024,
                "head P3": c256, "head P4": c512, "head P5": c1024}

    def repeats(self) -> dict[str, int]:
        """Bottlenecks inside each C2f stage."""
        return {"stage1": self.n(3), "stage2": self.n(6), "stage3": self.n(6), "stage4": self.n(3), "neck C2f": self.n(3)}


def scale_spec(scale: str) -> ScaleSpec:
    """The :class:`ScaleSpec` of ``'n'``, ``'s'``, ``'m'``, ``'l'`` or ``'x'``."""
    if scale not in SCALES:
        raise ValueError(f"unknown YOLOv8 scale {scale!r}; expected one of {list(SCALES)}")
    return ScaleSpec(scale, *SCALES[scale])


class YOLOv8(nn.Module):
    """YOLOv8 detector: CSP-Darknet backbone with C2f + SPPF, PAN-FPN neck, decoupled anchor-free head.

    Args:
        scale: ``'n'``, ``'s'``, ``'m'``, ``'l'`` or ``'x'``.
        nc: number of classes.
        reg_max: DFL bins per box side (16 in YOLOv8).

    ``forward`` returns what :class:`~labkit.yolov8.modules.Detect` returns (a dict of raw outputs in
    train mode, ``(decoded, raw)`` in eval mode). ``forward_features`` returns the P3/P4/P5 maps.
    """

    strides = (8, 16, 32)

    def __init__(self, scale: str = "n", nc: int = 80, reg_max: int = 16):
        super().__init__()
        s = scale_spec(scale)
        self.scale, self.nc, self.spec = scale, nc, s
        c64, c128, c256, c512, c1024 = (s.ch(c) for c in (64, 128, 256, 512, 1024))

        # Backbone: five stride-2 convs, each followed by a C2f stage (with residual bottlenecks).
        self.stem = Conv(3, c64, 3, 2)
        self.down1 = Conv(c64, c128, 3, 2)
        self.stage1 = C2f(c128, c128, s.n(3), shortcut=True)
        self.down2 = Conv(c128, c256, 3, 2)
        self.stage2 = C2f(c256, c256, s.n(6), shortcut=True)
        self.down3 = Conv(c256, c512, 3, 2)
        self.stage3 = C2f(c512, c512, s.n(6), shortcut=True)
        self.down4 = Conv(c512, c1024, 3, 2)
        self.stage4 = C2f(c1024, c1024, s.n(3), shortcut=True)
        self.sppf = SPPF(c1024, c1024, 5)

        # Neck, top-down (FPN): upsample P5, concat with backbone P4, C2f; again down to P3.
        # No 1x1 conv before upsampling (YOLOv5's PAN had one).
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.cat = Concat()
        self.td_p4 = C2f(c1024 + c512, c512, s.n(3))
        self.out_p3 = C2f(c512 + c256, c256, s.n(3))
        # Neck, bottom-up (PAN): stride-2 conv, concat with the top-down map of that level, C2f.
        self.pan_down3 = Conv(c256, c256, 3, 2)
        self.out_p4 = C2f(c256 + c512, c512, s.n(3))
        self.pan_down4 = Conv(c512, c512, 3, 2)
        self.out_p5 = C2f(c512 + c1024, c1024, s.n(3))

        self.detect = Detect(nc, (c256, c512, c1024), reg_max, strides=tuple(float(x) for x in self.strides))

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image ``(B, 3, H, W)`` -> ``[P3, P4, P5]`` with strides 8, 16, 32 (H, W multiples of 32)."""
        x = self.stage1(self.down1(self.stem(x)))
        b_p3 = self.stage2(self.down2(x))          # stride 8
        b_p4 = self.stage3(self.down3(b_p3))       # stride 16
        b_p5 = self.sppf(self.stage4(self.down4(b_p4)))  # stride 32

        td_p4 = self.td_p4(self.cat([self.up(b_p5), b_p4]))
        p3 = self.out_p3(self.cat([self.up(td_p4), b_p3]))
        p4 = self.out_p4(self.cat([self.pan_down3(p3), td_p4]))
        p5 = self.out_p5(self.cat([self.pan_down4(p4), b_p5]))
        return [p3, p4, p5]

    def forward(self, x: torch.Tensor):
        return self.detect(self.forward_features(x))

    def stage_shapes(self, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
        """Shape of the output of every named layer for input ``x`` (runs a forward pass with hooks)."""
        shapes: dict[str, tuple[int, ...]] = {}
        hooks = [getattr(self, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
            for name in LAYER_NAMES if name and name != "detect"]
        try:
            with torch.no_grad():
                self.forward_features(x)
        finally:
            for h in hooks:
                h.remove()
        return shapes

    @torch.no_grad()
    def init_biases(self, imgsz: int = 640) -> None:
        """Ultralytics' head bias prior: box logits 2.0; class logits ``log(5 / nc / (imgsz/stride)^2)``

        (about 5 objects per image of ``imgsz`` spread over all cells and classes), so training starts
        with small class probabilities instead of 0.5 everywhere.
        """
        for box, cls, s in zip(self.detect.cv2, self.detect.cv3, self.strides):
            box[-1].bias.fill_(2.0)
            cls[-1].bias.fill_(math.log(5 / self.nc / (imgsz / s) ** 2))


def convert_ultralytics_state_dict(state_dict: dict) -> dict:
    """Rename Ultralytics keys ``model.{i}.rest`` to labkit keys ``{LAYER_NAMES[i]}.rest``.

    Raises ``KeyError`` naming the key when a parameter belongs to a layer that has none here (a sign
    that the checkpoint is not a YOLOv8 detection model).
    """
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] != "model" or not parts[1].isdigit():
            raise KeyError(f"unexpected Ultralytics key {key!r}: expected 'model.<index>.<...>'")
        i = int(parts[1])
        name = LAYER_NAMES[i] if i < len(LAYER_NAMES) else None
        if name is None:
            raise KeyError(f"Ultralytics key {key!r}: layer {i} has no parameters in YOLOv8")
        out[".".join([name] + parts[2:])] = value
    return out


def _unwrap(model):
    """Accept ``ultralytics.YOLO`` or its ``DetectionModel``; return the ``DetectionModel``."""
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module) and hasattr(inner, "yaml"):
        return inner
    return model


def from_ultralytics(model) -> YOLOv8:
    """Build the labkit :class:`YOLOv8` matching an Ultralytics YOLOv8 model and copy its weights.

    ``model`` is ``ultralytics.YOLO('yolov8n.yaml')`` (or any scale / a trained checkpoint) or its
    ``.model``. The weights load with ``strict=True``; the result is in eval mode.
    """
    det = _unwrap(model)
    yaml = getattr(det, "yaml", {})
    scale = yaml.get("scale")
    if scale not in SCALES:
        raise ValueError(f"cannot tell the YOLOv8 scale of this model (yaml scale={scale!r})")
    head = det.model[-1]
    ours = YOLOv8(scale, nc=head.nc, reg_max=head.reg_max)
    ours.load_state_dict(convert_ultralytics_state_dict(det.state_dict()), strict=True)
    return ours.eval()


def ultralytics_head_outputs(out, nc: int, reg_max: int = 16) -> dict:
    """Normalise what an Ultralytics YOLOv8 ``Detect`` head (or ``DetectionModel``) returned.

    The format changed across versions:

    * 8.4.x: train mode ``{"boxes": (B, 4R, A), "scores": (B, nc, A), "feats": [...]}``; eval mode
      ``(decoded, that dict)``; end-to-end heads (YOLO26/v10) nest it under ``"one2many"``/``"one2one"``.
    * 8.0-8.3.x: train mode a list of per-level maps ``(B, 4R + nc, H, W)``; eval mode
      ``(decoded, that list)``.

    Returns ``{"boxes", "scores", "decoded"}`` (``decoded`` is ``None`` in train mode) in the 8.4 layout,
    so tests and notebooks can compare against labkit's :class:`~labkit.yolov8.modules.Detect`.
    Raises ``TypeError`` for a layout it does not know (a newer Ultralytics changed it again).
    """
    decoded = None
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor):
        decoded, out = out
    if isinstance(out, dict) and "one2many" in out:
        out = out["one2many"]
    if isinstance(out, dict) and {"boxes", "scores"} <= set(out):
        return {"boxes": out["boxes"], "scores": out["scores"], "decoded": decoded}
    if isinstance(out, (list, tuple)) and all(isinstance(t, torch.Tensor) and t.ndim == 4 for t in out):
        b = out[0].shape[0]
        flat = torch.cat([t.view(b, 4 * reg_max + nc, -1) for t in out], dim=2)
        boxes, scores = flat.split((4 * reg_max, nc), dim=1)
        return {"boxes": boxes, "scores": scores, "decoded": decoded}
    raise TypeError(f"unknown Ultralytics Detect output layout: {type(out).__name__}; "
                    "labkit.yolov8 was verified against Ultralytics 8.4.x")
