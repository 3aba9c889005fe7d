"""The measured lessons of notebook 04 (C2f vs C3 gradients, anchor-based vs anchor-free assignment).

Each function runs one small experiment and returns its numbers, so the notebook shows them and
``tests/test_lessons_00_04.py`` reruns them over several seeds and asserts the same verdicts.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .modules import C2f, C3, make_anchors
from .viz import bottleneck_grad_norms

__all__ = ["block_gradients", "c2f_gradient_lesson", "YOLOV5_ANCHORS", "yolov5_match", "yolov5_positives",
           "anchor_lesson", "overfit_batch"]

#: YOLOv5's default anchors (k-means on COCO at 640 px), width x height in pixels, per level P3, P4, P5
#: (``models/yolov5s.yaml`` of ultralytics/yolov5).
YOLOV5_ANCHORS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))


def block_gradients(c: int = 64, n: int = 4, shortcut: bool = False, seed: int = 0, hw: int = 16) -> dict:
    """Gradient norm of ``block(x).sum()`` at the input of each bottleneck of a C3 and a C2f block.

    Both blocks get the *same* ``shortcut`` setting (YOLOv8 uses C2f with residual shortcuts in the backbone
    and without them in the neck), ``n`` bottlenecks, ``c`` channels in and out, a random input of 2 images.
    BatchNorm is in eval mode (running statistics: identity at initialisation), so the numbers show the wiring.
    Returns ``{"C3": [n floats], "C2f": [n floats]}``, bottleneck 1 first.
    """
    torch.manual_seed(seed)
    x = torch.randn(2, c, hw, hw)
    return {"C3": bottleneck_grad_norms(C3(c, c, n, shortcut=shortcut).eval(), x),
            "C2f": bottleneck_grad_norms(C2f(c, c, n, shortcut=shortcut).eval(), x)}


def c2f_gradient_lesson(seed: int = 0, c: int = 64, n: int = 4) -> dict:
    """The C2f-vs-C3 gradient lesson on one seed.

    * without shortcuts (the neck): the gradient reaching C3's first bottleneck passes through every later one
      and fades; C2f concatenates each bottleneck's output, so its first bottleneck keeps a gradient of the
      same order as its last. Measured: ``first / last`` per block.
    * with shortcuts (the backbone): C3's residuals carry the gradient unchanged along the chain (flat);
      C2f's first bottleneck gets its own direct path *plus* the chain, so it gets more than its last.

    Returns the norms of both settings and the booleans the notebook's verdicts print.
    """
    plain = block_gradients(c, n, shortcut=False, seed=seed)
    res = block_gradients(c, n, shortcut=True, seed=seed)
    ratio = {f"{k}_{tag}": g[k][0] / g[k][-1] for tag, g in (("plain", plain), ("res", res)) for k in ("C3", "C2f")}
    return {
        "plain": plain, "residual": res, "first_over_last": ratio,
        # without residuals: C3's first bottleneck gets < 10% of its last one's gradient, C2f's more than half
        "fades_in_c3_not_c2f": ratio["C3_plain"] < 0.1 and ratio["C2f_plain"] > 0.5,
        # with residuals: C2f's first bottleneck gets more than its last (direct path + chain), C3 stays flat
        "c2f_early_gets_more": ratio["C2f_res"] > 1.1 and abs(ratio["C3_res"] - 1) < 0.1,
    }


def yolov5_match(wh: torch.Tensor, anchors=YOLOV5_ANCHORS, anchor_t: float = 4.0) -> torch.Tensor:
    """YOLOv5's shape rule: ground truth ``g`` may be learnt by anchor ``a`` when
    ``max(w_g / w_a, w_a / w_g, h_g / h_a, h_a / h_g) < anchor_t`` (``hyp.anchor_t = 4``).

    ``wh`` is ``(G, 2)`` box sizes in pixels; returns ``(G, levels, anchors per level)`` bool.
    (The ratio does not depend on the stride: YOLOv5 divides both sizes by it.)
    """
    a = torch.tensor(anchors, dtype=torch.float32).view(len(anchors), -1, 2)  # (L, k, 2)
    r = wh.float()[:, None, None, :] / a[None]                                 # (G, L, k, 2)
    return torch.max(r, 1 / r).amax(-1) < anchor_t


def yolov5_positives(xywh: torch.Tensor, imgsz: int, anchors=YOLOV5_ANCHORS, strides=(8, 16, 32),
                     anchor_t: float = 4.0, g: float = 0.5) -> torch.Tensor:
    """How many (cell, anchor) predictions learn each ground truth in YOLOv5's ``build_targets``.

    For every level and every anchor that passes :func:`yolov5_match`, the ground truth is given to the cell
    holding its centre and to the neighbouring cells whose centre is within half a cell (``g = 0.5``): the left
    or right one and the upper or lower one, when they exist (up to 3 cells). ``xywh`` is ``(G, 4)`` centre-xywh
    in pixels. Returns ``(G,)`` counts.
    """
    match = yolov5_match(xywh[:, 2:], anchors, anchor_t)  # (G, L, k)
    out = torch.zeros(len(xywh), dtype=torch.long)
    for lvl, s in enumerate(strides):
        grid = imgsz / s
        gxy = xywh[:, :2] / s                        # centre in grid units
        gxi = grid - gxy                             # distance to the right/bottom edge
        near_lo = (gxy % 1 < g) & (gxy > 1)          # left / upper neighbour
        near_hi = (gxi % 1 < g) & (gxi > 1)          # right / lower neighbour
        cells = 1 + near_lo.sum(1) + near_hi.sum(1)  # (G,)
        out += cells * match[:, lvl].sum(1)
    return out


def anchor_lesson(images: Sequence, imgsz: int, nc: int, seed: int = 0, reg_max: int = 16) -> dict:
    """Anchor-based (YOLOv5 anchors and matching) vs anchor-free (YOLOv8 head, TAL) on the same images.

    Counts predictions per location and per image, how many of YOLOv5's nine COCO anchors any ground truth of
    these images can match (an anchor no box matches is an output that never learns), and the positives per
    ground truth under both assignments. The TAL side uses an untrained labkit YOLOv8n (seeded) on the images.
    """
    from .loss import DetectionLoss
    from .model import YOLOv8
    from .viz import load_yolo_batch

    x, batch = load_yolo_batch(images, imgsz=imgsz)
    xywh = batch["bboxes"] * imgsz
    match = yolov5_match(xywh[:, 2:])                       # (G, 3, 3)
    used = match.any(0)                                     # (3, 3): anchor matched by at least one box
    v5_pos = yolov5_positives(xywh, imgsz)
    torch.manual_seed(seed)
    model = YOLOv8("n", nc=nc).train()
    model.init_biases(imgsz)
    with torch.no_grad():
        res = DetectionLoss.for_model(model)(model(x), batch)
    a = res.assignment
    # positives per ground truth: padded rows follow each image's boxes in order
    tal_pos = torch.cat([a.mask_pos[i, :int((batch["batch_idx"] == i).sum())].sum(-1) for i in range(len(x))])
    points = sum((imgsz // s) ** 2 for s in (8, 16, 32))
    anchor_names = [f"{w}x{h}" for lvl in YOLOV5_ANCHORS for w, h in zip(lvl[::2], lvl[1::2])]
    return {
        "images": len(x), "boxes": len(xywh), "points": points,
        "v5_per_location": 3, "v8_per_location": 1,
        "v5_predictions": 3 * points, "v8_predictions": points,
        "v5_channels": 3 * (5 + nc), "v8_channels": 4 * reg_max + nc,
        "anchors": anchor_names, "anchor_matches": match.sum(0).view(-1).tolist(),
        "unused_anchors": [n for n, u in zip(anchor_names, used.view(-1).tolist()) if not u],
        "v5_positives": v5_pos, "tal_positives": tal_pos,
        "box_sizes": (float(xywh[:, 2:].min()), float(xywh[:, 2:].max())),
    }


def overfit_batch(net, crit, x: torch.Tensor, batch: dict, steps: int, lr: float, progress: bool = True) -> list:
    """``steps`` Adam steps of ``net`` on one batch with the labkit loss ``crit``; returns per-step
    ``[box, cls, dfl]`` (the gained terms, as Ultralytics logs them). ``x`` and ``batch`` must be on the
    device of ``net``."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    for _ in tqdm(range(steps), desc="steps", disable=not progress):
        out = crit(net(x), batch)
        opt.zero_grad()
        out.loss.sum().backward()
        opt.step()
        history.append([float(out.box), float(out.cls), float(out.dfl)])
    return history
