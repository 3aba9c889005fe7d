"""Parameters and FLOPs of the YOLOv8 scales, computed offline (no weights, no data).

The model is built on PyTorch's ``meta`` device (tensors with shapes but no storage), one forward pass
records the input/output shape of every convolution and batch norm, and the counts follow from the
shapes. The counting rules are THOP's (the library Ultralytics uses for its "GFLOPs" column):

* a convolution costs ``out_elements * (c_in / groups) * k_h * k_w`` multiply-accumulates (MACs),
  bias not counted;
* a batch norm costs ``4 * elements`` (unfused models only; fusing folds it into the convolution);
* SiLU, max-pool, nearest upsampling, concatenation, softmax and the box arithmetic of the head
  cost nothing (the DFL's frozen 1x1 convolution is counted, as THOP does in eval mode);
* Ultralytics reports ``GFLOPs = 2 * MACs / 1e9`` at 640x640.

"Fused" is the deployed form (``model.fuse()``): every Conv+BN pair becomes one convolution with a
bias, so each BN's ``2c`` parameters turn into ``c`` bias parameters. Ultralytics' published table
(3.2M / 8.7 GFLOPs for YOLOv8n ...) is for the fused model; the parameter counts printed when a
model is built from yaml (3,157,200 for YOLOv8n) are unfused.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from .model import YOLOv8, scale_spec

__all__ = ["count_params", "model_flops", "FlopCount", "scale_table", "scale_summary",
           "PUBLISHED_FUSED"]

#: Ultralytics' published YOLOv8 table (nc=80, 640 px, fused): (params in millions, GFLOPs).
PUBLISHED_FUSED = {"n": (3.2, 8.7), "s": (11.2, 28.6), "m": (25.9, 78.9), "l": (43.7, 165.2), "x": (68.2, 257.8)}


def count_params(model: nn.Module, fused: bool = False) -> int:
    """Number of parameters (all of them, trainable or not, as Ultralytics counts).

    ``fused=True`` gives the count after folding each BatchNorm into the preceding convolution
    (the BN's weight and bias, ``2c``, become a conv bias, ``c``).
    """
    n = sum(p.numel() for p in model.parameters())
    if fused:
        n -= sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return n


@dataclass
class FlopCount:
    """Multiply-accumulates of the convolutions and element count of the batch norms, for one image."""

    conv_macs: int
    bn_elements: int

    def gflops(self, fused: bool = True) -> float:
        """THOP/Ultralytics GFLOPs (``2 * MACs / 1e9``); unfused adds ``4 * bn_elements`` MACs."""
        macs = self.conv_macs + (0 if fused else 4 * self.bn_elements)
        return 2 * macs / 1e9


def model_flops(model_or_scale: nn.Module | str = "n", imgsz: int | tuple[int, int] = 640, nc: int = 80) -> FlopCount:
    """Count the FLOPs of a model (or of a scale name, built on the meta device) for one image.

    Args:
        model_or_scale: a :class:`~labkit.yolov8.model.YOLOv8` (any device, its weights are not used)
            or ``'n'``/``'s'``/``'m'``/``'l'``/``'x'``.
        imgsz: input size, an int or ``(H, W)``; multiples of 32.
        nc: classes, when a scale name is given.
    """
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    if isinstance(model_or_scale, str):
        with torch.device("meta"):
            model = YOLOv8(model_or_scale, nc=nc)
        device = torch.device("meta")
    else:
        model = model_or_scale
        device = next(model.parameters()).device
    counts = {"conv": 0, "bn": 0}

    def conv_hook(m: nn.Conv2d, inputs, out):
        k_h, k_w = m.kernel_size
        counts["conv"] += out.numel() * (m.in_channels // m.groups) * k_h * k_w

    def bn_hook(m, inputs, out):
        counts["bn"] += inputs[0].numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not getattr(m, "_labkit_skip_flops", False):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    was_training = model.training
    try:
        model.eval()  # as THOP profiles Ultralytics models: the head's DFL 1x1 conv (16 MACs/side) counts
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device))
    finally:
        for hk in hooks:
            hk.remove()
        model.train(was_training)
    return FlopCount(counts["conv"], counts["bn"])


def scale_table(nc: int = 80, imgsz: int = 640, scales: str = "nsmlx") -> list[dict]:
    """Rows ``{scale, params, params_fused, gflops, gflops_fused, depth, width, max_channels}`` per scale."""
    rows = []
    for s in scales:
        with torch.device("meta"):
            model = YOLOv8(s, nc=nc)
        f = model_flops(model, imgsz)
        spec = scale_spec(s)
        rows.append({"scale": s, "depth": spec.depth, "width": spec.width, "max_channels": spec.max_channels,
                     "params": count_params(model), "params_fused": count_params(model, fused=True),
                     "gflops": f.gflops(fused=False), "gflops_fused": f.gflops(fused=True)})
    return rows


def measure_latency(model: nn.Module, imgsz: int = 320, runs: int = 3, warmup: int = 1) -> float:
    """Median CPU forward time in milliseconds of ``model`` (eval mode, batch 1, no grad)."""
    model = model.eval()
    x = torch.rand(1, 3, imgsz, imgsz)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    return float(sorted(times)[len(times) // 2])


def scale_summary(scale: str, nc: int = 80, imgsz: int = 640, latency: bool = True, latency_imgsz: int = 320,
                  runs: int = 3) -> dict:
    """Everything the notebook's scale picker shows for one scale.

    Returns ``{scale, depth, width, max_channels, params, params_fused, gflops, gflops_fused, widths,
    repeats, latency_ms, latency_imgsz}``; ``latency_ms`` is ``None`` when ``latency=False``
    (the latency is measured on the CPU with random weights at ``latency_imgsz``).
    """
    spec = scale_spec(scale)
    with torch.device("meta"):
        meta_model = YOLOv8(scale, nc=nc)
    f = model_flops(meta_model, imgsz)
    out = {"scale": scale, "depth": spec.depth, "width": spec.width, "max_channels": spec.max_channels,
           "params": count_params(meta_model), "params_fused": count_params(meta_model, fused=True),
           "gflops": f.gflops(fused=False), "gflops_fused": f.gflops(fused=True), "imgsz": imgsz,
           "widths": spec.widths(), "repeats": spec.repeats(), "latency_ms": None, "latency_imgsz": latency_imgsz}
    if latency:
        out["latency_ms"] = measure_latency(YOLOv8(scale, nc=nc), latency_imgsz, runs=runs)
    return out


def format_summary(summary: dict) -> str:
    """Plain-text rendering of :func:`scale_summary` (what the widget prints)."""
    lines = [f"YOLOv8{summary['scale']}  depth={summary['depth']}  width={summary['width']}  "
             f"max_channels={summary['max_channels']}",
             f"  parameters: {summary['params']:,} unfused / {summary['params_fused']:,} fused",
             f"  GFLOPs @{summary['imgsz']}: {summary['gflops']:.1f} unfused / {summary['gflops_fused']:.1f} fused"]
    if summary.get("latency_ms") is not None:
        lines.append(f"  CPU latency @{summary['latency_imgsz']} (batch 1, {torch.get_num_threads()} threads): "
                     f"{summary['latency_ms']:.1f} ms")
    lines.append("  channels: " + ", ".join(f"{k} {v}" for k, v in summary["widths"].items()))
    lines.append("  C2f repeats: " + ", ".join(f"{k} {v}" for k, v in summary["repeats"].items()))
    return "\n".join(lines)
