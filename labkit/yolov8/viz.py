"""Plumbing for notebook 04: loading a YOLO-format batch and drawing anchors, DFL bins and TAL assignments."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["load_yolo_batch", "plot_anchor_points", "plot_dfl_bins", "draw_assignment", "bottleneck_grad_norms"]

LEVEL_STYLE = {8.0: ("P3 / stride 8", 4), 16.0: ("P4 / stride 16", 14), 32.0: ("P5 / stride 32", 40)}


def load_yolo_batch(images: Sequence[str | Path], imgsz: int | None = None):
    """Read images of a YOLO-layout dataset and their ``labels/*.txt`` into a training batch.

    Returns ``x`` ``(B, 3, H, W)`` float in [0, 1] and the batch dict Ultralytics' loss expects:
    ``batch_idx (N,)``, ``cls (N, 1)``, ``bboxes (N, 4)`` normalised centre-xywh. Images are resized
    to ``imgsz`` (square) when given; normalised labels do not change with the resize.
    Raises ``FileNotFoundError`` naming the image whose label file is missing.
    """
    from PIL import Image

    xs, idx, cls, boxes = [], [], [], []
    for i, p in enumerate(images):
        p = Path(p)
        img = Image.open(p).convert("RGB")
        if imgsz is not None and img.size != (imgsz, imgsz):
            img = img.resize((imgsz, imgsz), Image.BILINEAR)
        xs.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1))
        label = p.parent.parent.parent / "labels" / p.parent.name / (p.stem + ".txt")
        if not label.exists():
            raise FileNotFoundError(f"no label file {label} for image {p}")
        for line_no, line in enumerate(label.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 5:
                raise ValueError(f"{label}:{line_no}: expected 'class xc yc w h', got {line!r}")
            idx.append(i)
            cls.append(float(parts[0]))
            boxes.append([float(v) for v in parts[1:]])
    batch = {"batch_idx": torch.tensor(idx, dtype=torch.float32),
             "cls": torch.tensor(cls, dtype=torch.float32).view(-1, 1),
             "bboxes": torch.tensor(boxes, dtype=torch.float32).view(-1, 4)}
    return torch.stack(xs), batch


def plot_anchor_points(ax, image: torch.Tensor, strides=(8, 16, 32)):
    """Show ``image`` (3, H, W) with the anchor points (cell centres) of every level."""
    from .modules import make_anchors

    _, h, w = image.shape
    ax.imshow(image.permute(1, 2, 0).numpy())
    feats = [torch.zeros(1, 1, h // s, w // s) for s in strides]
    pts, st = make_anchors(feats, strides)
    pts = pts * st
    colours = ["#e6194b", "#3cb44b", "#4363d8"]
    for k, s in enumerate(strides):
        sel = st[:, 0] == s
        name, size = LEVEL_STYLE.get(float(s), (f"stride {s}", 10))
        ax.scatter(pts[sel, 0], pts[sel, 1], s=size, c=colours[k % 3], label=f"{name}: {int(sel.sum())} points",
                   alpha=0.8, edgecolors="white", linewidths=0.3)
    ax.legend(loc="upper right", fontsize=7)
    ax.set_axis_off()


def plot_dfl_bins(axes, logits: torch.Tensor, names=("left", "top", "right", "bottom")):
    """Bar charts of the softmax over the bins of each side, with the expected distance marked.

    ``logits`` is ``(4, reg_max)``. Returns the expected distances ``(4,)``.
    """
    probs = logits.softmax(-1)
    bins = torch.arange(logits.shape[-1], dtype=probs.dtype)
    expect = (probs * bins).sum(-1)
    for ax, p, e, name in zip(axes, probs, expect, names):
        ax.bar(bins.numpy(), p.numpy(), color="#4363d8")
        ax.axvline(float(e), color="#e6194b", lw=2, label=f"E[d] = {float(e):.2f}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("distance (strides)", fontsize=8)
        ax.legend(fontsize=7)
    return expect


def draw_assignment(ax, image: torch.Tensor, result, batch: dict, index: int = 0,
                    class_names: Sequence[str] | None = None):
    """Draw the Task-Aligned Assignment of image ``index`` of a :class:`~labkit.yolov8.loss.LossResult`.

    Ground-truth boxes (dashed), the candidate anchor points inside each box (small grey dots) and the
    positive anchors (large, coloured by the ground truth they were assigned to, sized by level).
    Tensors may live on any device (a GPU training run): what is drawn is copied to the CPU here.
    """
    from matplotlib.patches import Rectangle

    from labkit.viz import colour

    image = image.detach().cpu()
    _, h, w = image.shape
    ax.imshow(image.permute(1, 2, 0).numpy())
    batch_idx, bcls, bboxes = (batch[k].detach().cpu() for k in ("batch_idx", "cls", "bboxes"))
    sel = batch_idx == index
    cls = bcls.view(-1)[sel].long()
    xywh = bboxes[sel] * torch.tensor([w, h, w, h])
    a = result.assignment
    pts, st = result.anchor_points.detach().cpu(), result.stride[:, 0].detach().cpu()
    cand = a.candidates[index].any(0).cpu()
    fg, gt_idx = a.fg_mask[index].cpu(), a.gt_idx[index].cpu()
    ax.scatter(pts[cand, 0], pts[cand, 1], s=3, c="lightgrey", label="candidate (centre in box)")
    for g, ((cx, cy, bw, bh), c) in enumerate(zip(xywh.tolist(), cls.tolist())):
        col = colour(g)
        ax.add_patch(Rectangle((cx - bw / 2, cy - bh / 2), bw, bh, fill=False, ec=col, lw=1.5, ls="--"))
        if class_names is not None:
            ax.text(cx - bw / 2, cy - bh / 2, class_names[c], fontsize=7, color="white", va="bottom",
                    bbox=dict(facecolor=col, edgecolor="none", pad=1, alpha=0.8))
        pos = fg & (gt_idx == g)
        sizes = torch.tensor([LEVEL_STYLE.get(float(s), ("", 10))[1] for s in st[pos]]) * 3
        ax.scatter(pts[pos, 0], pts[pos, 1], s=sizes.numpy(), c=col, edgecolors="black", linewidths=0.5)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()


def bottleneck_grad_norms(block: torch.nn.Module, x: torch.Tensor) -> list[float]:
    """Gradient norm of ``block(x).sum()`` w.r.t. the *input* of each bottleneck in ``block.m``.

    Shows how strongly each bottleneck is connected to the block output (C2f: every bottleneck output
    is concatenated; C3: only the last one is).
    """
    inputs: list[torch.Tensor] = []

    def grab(module, args):
        args[0].retain_grad()
        inputs.append(args[0])

    hooks = [m.register_forward_pre_hook(grab) for m in block.m]
    try:
        x = x.clone().requires_grad_()
        block(x).sum().backward()
    finally:
        for hk in hooks:
            hk.remove()
    return [float(t.grad.norm()) for t in inputs]
