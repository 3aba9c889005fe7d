"""Bounding-box utilities: format conversions, the IoU family and non-maximum suppression.

Every function accepts **numpy arrays or torch tensors** and answers in the same type (the array
"namespace" is picked from the input), so the same code serves the metrics (numpy) and the losses
(torch, differentiable).

Box formats (all in the last axis, length 4):

* ``xyxy``   — ``(x1, y1, x2, y2)`` corners (COCO results after conversion, VOC, torchvision);
* ``xywh``   — ``(x1, y1, w, h)`` top-left corner + size (the COCO JSON ``bbox`` field);
* ``cxcywh`` — ``(cx, cy, w, h)`` centre + size (YOLO labels, Ultralytics' ``xywh``);
* *normalized* — any of the above divided by the image width/height (YOLO txt files are normalized
  ``cxcywh``).

Area convention: ``(x2 - x1) * (y2 - y1)`` with no "+1" (COCO, torchvision, Ultralytics). The
old VOC devkit added 1 pixel to widths and heights; labkit does not.
"""

from __future__ import annotations

import math

import numpy as np

import torch

__all__ = [
    "xyxy_to_xywh", "xywh_to_xyxy", "xyxy_to_cxcywh", "cxcywh_to_xyxy", "xywh_to_cxcywh", "cxcywh_to_xywh",
    "convert", "normalize", "denormalize", "box_area", "bbox_iou", "box_iou", "pairwise_iou", "elementwise_iou",
    "nms", "batched_nms",
]


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


def _asarray(x):
    """Return ``x`` unchanged if it is a tensor/ndarray, else as a float64 ndarray."""
    if _is_torch(x) or isinstance(x, np.ndarray):
        return x
    return np.asarray(x, dtype=np.float64)


def _stack(parts, like):
    if _is_torch(like):
        return torch.stack(parts, -1)
    return np.stack(parts, -1)


def _unbind(b):
    return b[..., 0], b[..., 1], b[..., 2], b[..., 3]


# --------------------------------------------------------------------------------------------------
# Format conversions
# --------------------------------------------------------------------------------------------------
def xyxy_to_xywh(b):
    """``(x1, y1, x2, y2)`` → ``(x1, y1, w, h)`` (COCO ``bbox``)."""
    b = _asarray(b)
    x1, y1, x2, y2 = _unbind(b)
    return _stack([x1, y1, x2 - x1, y2 - y1], b)


def xywh_to_xyxy(b):
    """``(x1, y1, w, h)`` (COCO ``bbox``) → ``(x1, y1, x2, y2)``."""
    b = _asarray(b)
    x, y, w, h = _unbind(b)
    return _stack([x, y, x + w, y + h], b)


def xyxy_to_cxcywh(b):
    """``(x1, y1, x2, y2)`` → ``(cx, cy, w, h)`` (YOLO)."""
    b = _asarray(b)
    x1, y1, x2, y2 = _unbind(b)
    return _stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], b)


def cxcywh_to_xyxy(b):
    """``(cx, cy, w, h)`` (YOLO) → ``(x1, y1, x2, y2)``."""
    b = _asarray(b)
    cx, cy, w, h = _unbind(b)
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], b)


def xywh_to_cxcywh(b):
    """``(x1, y1, w, h)`` → ``(cx, cy, w, h)``."""
    b = _asarray(b)
    x, y, w, h = _unbind(b)
    return _stack([x + w / 2, y + h / 2, w, h], b)


def cxcywh_to_xywh(b):
    """``(cx, cy, w, h)`` → ``(x1, y1, w, h)``."""
    b = _asarray(b)
    cx, cy, w, h = _unbind(b)
    return _stack([cx - w / 2, cy - h / 2, w, h], b)


_TO_XYXY = {"xyxy": lambda b: _asarray(b), "xywh": xywh_to_xyxy, "cxcywh": cxcywh_to_xyxy}
_FROM_XYXY = {"xyxy": lambda b: b, "xywh": xyxy_to_xywh, "cxcywh": xyxy_to_cxcywh}


def convert(b, src: str, dst: str):
    """Convert boxes between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"`` formats."""
    for f in (src, dst):
        if f not in _TO_XYXY:
            raise ValueError(f"unknown box format {f!r}; expected one of {sorted(_TO_XYXY)}")
    if src == dst:
        return _asarray(b)
    return _FROM_XYXY[dst](_TO_XYXY[src](b))


def _scale(width, height, like):
    s = [width, height, width, height]
    if _is_torch(like):
        return torch.tensor(s, dtype=like.dtype, device=like.device)
    return np.asarray(s, dtype=np.float64)


def normalize(b, width: float, height: float):
    """Divide x-coordinates/widths by ``width`` and y-coordinates/heights by ``height`` (any format)."""
    b = _asarray(b)
    return b / _scale(width, height, b)


def denormalize(b, width: float, height: float):
    """Inverse of :func:`normalize`: normalized boxes → pixels."""
    b = _asarray(b)
    return b * _scale(width, height, b)


def box_area(b):
    """Area of ``xyxy`` boxes, ``(x2 - x1) * (y2 - y1)``."""
    b = _asarray(b)
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


# --------------------------------------------------------------------------------------------------
# IoU family, Ultralytics-compatible signature
# --------------------------------------------------------------------------------------------------
def bbox_iou(box1, box2, xywh: bool = True, GIoU: bool = False, DIoU: bool = False, CIoU: bool = False,
             eps: float = 1e-7):
    """IoU / GIoU / DIoU / CIoU with the signature and semantics of ``ultralytics.utils.metrics.bbox_iou``.

    Works on numpy arrays and torch tensors (differentiable in torch). Shapes broadcast like Ultralytics:
    any shapes whose last dimension is 4, e.g. ``(4,)`` vs ``(N, 4)``, or ``(B, N, 1, 4)`` vs ``(B, 1, M, 4)``.
    The result keeps a trailing dimension of size 1 (exactly like Ultralytics).

    Args:
        box1, box2: boxes, last dimension 4.
        xywh: if True, boxes are ``(cx, cy, w, h)`` (Ultralytics' "xywh" is centre-based!); else ``xyxy``.
        GIoU, DIoU, CIoU: which generalisation to return (CIoU > DIoU > GIoU precedence, as Ultralytics).
        eps: small constant against division by zero (added where Ultralytics adds it).

    Formulas (IoU = inter / union, C = smallest enclosing box):
        GIoU = IoU − (|C| − union) / |C|;  DIoU = IoU − ρ²/c²  (ρ: centre distance, c: diagonal of C);
        CIoU = DIoU − α v, v = 4/π² (atan(w2/h2) − atan(w1/h1))², α = v / (1 − IoU + v)  (α gets no gradient).
    """
    tt = _is_torch(box1) or _is_torch(box2)
    if tt:
        box1 = box1 if _is_torch(box1) else torch.as_tensor(box1, dtype=box2.dtype, device=box2.device)
        box2 = box2 if _is_torch(box2) else torch.as_tensor(box2, dtype=box1.dtype, device=box1.device)
        split = lambda b: b.chunk(4, -1)  # noqa: E731
        minimum, maximum = torch.minimum, torch.maximum
        clamp0 = lambda x: x.clamp(min=0)  # noqa: E731
        atan = torch.atan
    else:
        box1, box2 = np.asarray(box1, dtype=np.float64) if not isinstance(box1, np.ndarray) else box1, \
            np.asarray(box2, dtype=np.float64) if not isinstance(box2, np.ndarray) else box2
        split = lambda b: np.split(b, 4, axis=-1)  # noqa: E731
        minimum, maximum = np.minimum, np.maximum
        clamp0 = lambda x: np.clip(x, 0, None)  # noqa: E731
        atan = np.arctan

    if xywh:  # centre format -> corners
        (x1, y1, w1, h1), (x2, y2, w2, h2) = split(box1), split(box2)
        w1_, h1_, w2_, h2_ = w1 / 2, h1 / 2, w2 / 2, h2 / 2
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1_, x1 + w1_, y1 - h1_, y1 + h1_
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2_, x2 + w2_, y2 - h2_, y2 + h2_
    else:
        b1_x1, b1_y1, b1_x2, b1_y2 = split(box1)
        b2_x1, b2_y1, b2_x2, b2_y2 = split(box2)
        w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
        w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps

    inter = clamp0(minimum(b1_x2, b2_x2) - maximum(b1_x1, b2_x1)) * \
        clamp0(minimum(b1_y2, b2_y2) - maximum(b1_y1, b2_y1))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if CIoU or DIoU or GIoU:
        cw = maximum(b1_x2, b2_x2) - minimum(b1_x1, b2_x1)  # enclosing box width
        ch = maximum(b1_y2, b2_y2) - minimum(b1_y1, b2_y1)  # enclosing box height
        if CIoU or DIoU:
            c2 = cw ** 2 + ch ** 2 + eps  # enclosing diagonal squared
            rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
            if CIoU:
                v = (4 / math.pi ** 2) * (atan(w2 / h2) - atan(w1 / h1)) ** 2
                if tt:
                    with torch.no_grad():
                        alpha = v / (1 - iou + v + eps)
                else:
                    alpha = v / (1 - iou + v + eps)
                return iou - (rho2 / c2 + v * alpha)
            return iou - rho2 / c2
        c_area = cw * ch + eps
        return iou - (c_area - union) / c_area
    return iou


# --------------------------------------------------------------------------------------------------
# IoU family on xyxy boxes, pairwise (N x M) and elementwise (N)
# --------------------------------------------------------------------------------------------------
_KINDS = ("iou", "giou", "diou", "ciou")


def _iou_core(a, b, kind: str, eps: float):
    """IoU family for broadcastable xyxy boxes ``a``, ``b`` (last dim 4). No eps in IoU itself:
    ``inter / union`` with union 0 → 0 (two degenerate boxes)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown IoU kind {kind!r}; expected one of {_KINDS}")
    tt = _is_torch(a)
    mn, mx = (torch.minimum, torch.maximum) if tt else (np.minimum, np.maximum)
    ax1, ay1, ax2, ay2 = _unbind(a)
    bx1, by1, bx2, by2 = _unbind(b)
    wa, ha, wb, hb = ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1
    iw = mn(ax2, bx2) - mx(ax1, bx1)
    ih = mn(ay2, by2) - mx(ay1, by1)
    iw = iw.clamp(min=0) if tt else np.clip(iw, 0, None)
    ih = ih.clamp(min=0) if tt else np.clip(ih, 0, None)
    inter = iw * ih
    union = wa * ha + wb * hb - inter
    if tt:
        iou = torch.where(union > 0, inter / union.clamp(min=eps), torch.zeros_like(union))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    if kind == "iou":
        return iou
    cw = mx(ax2, bx2) - mn(ax1, bx1)
    ch = mx(ay2, by2) - mn(ay1, by1)
    if kind == "giou":
        c_area = cw * ch
        return iou - (c_area - union) / (c_area + eps)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((bx1 + bx2 - ax1 - ax2) ** 2 + (by1 + by2 - ay1 - ay2) ** 2) / 4
    if kind == "diou":
        return iou - rho2 / c2
    atan = torch.atan if tt else np.arctan
    v = (4 / math.pi ** 2) * (atan(wb / (hb + eps)) - atan(wa / (ha + eps))) ** 2
    if tt:
        with torch.no_grad():
            alpha = v / (1 - iou + v + eps)
    else:
        alpha = v / (1 - iou + v + eps)
    return iou - (rho2 / c2 + v * alpha)


def pairwise_iou(boxes1, boxes2, kind: str = "iou", eps: float = 1e-7):
    """IoU-family matrix between ``(N, 4)`` and ``(M, 4)`` xyxy boxes → ``(N, M)``.

    ``kind`` is one of ``"iou"``, ``"giou"``, ``"diou"``, ``"ciou"``. Plain IoU equals
    ``torchvision.ops.box_iou`` (no eps; 0 where the union is empty).
    """
    a, b = _asarray(boxes1), _asarray(boxes2)
    if _is_torch(a) != _is_torch(b):
        a, b = (a, torch.as_tensor(b, dtype=a.dtype, device=a.device)) if _is_torch(a) else \
            (torch.as_tensor(a, dtype=b.dtype, device=b.device), b)
    return _iou_core(a[:, None, :], b[None, :, :], kind, eps)


box_iou = pairwise_iou


def elementwise_iou(boxes1, boxes2, kind: str = "iou", eps: float = 1e-7):
    """IoU family between matching rows of two ``(N, 4)`` xyxy arrays → ``(N,)``."""
    a, b = _asarray(boxes1), _asarray(boxes2)
    if a.shape != b.shape:
        raise ValueError(f"elementwise_iou needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    return _iou_core(a, b, kind, eps)


# --------------------------------------------------------------------------------------------------
# NMS
# --------------------------------------------------------------------------------------------------
def nms(boxes, scores, iou_threshold: float):
    """Greedy non-maximum suppression, same kept boxes as ``torchvision.ops.nms``.

    Boxes are visited by decreasing score; a box is dropped if its IoU with an already kept box is
    **strictly greater** than ``iou_threshold``. Returns the kept indices sorted by decreasing score
    (int64 ndarray, or a LongTensor for tensor input). Ties in score keep the lower index first.
    """
    as_t = _is_torch(boxes)
    b = boxes.detach().cpu().double().numpy() if as_t else np.asarray(boxes, dtype=np.float64)
    s = scores.detach().cpu().double().numpy() if _is_torch(scores) else np.asarray(scores, dtype=np.float64)
    keep = _nms_numpy(b, s, iou_threshold)
    return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device) if as_t else keep


def _nms_numpy(b: np.ndarray, s: np.ndarray, thr: float) -> np.ndarray:
    n = len(b)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-s, kind="stable")
    b = b[order]
    iou = _iou_core(b[:, None, :], b[None, :, :], "iou", 0.0) if n <= 4096 else None
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        row = iou[i, i + 1:] if iou is not None else _iou_core(b[i][None], b[i + 1:], "iou", 0.0)
        suppressed[i + 1:] |= row > thr
    return order[np.asarray(keep, dtype=np.int64)]


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """Class-aware NMS (same kept boxes as ``torchvision.ops.batched_nms``): boxes only suppress boxes
    with the same ``idxs`` value (class). Pass all-equal ``idxs`` (or use :func:`nms`) for
    class-agnostic NMS. Returns kept indices sorted by decreasing score."""
    as_t = _is_torch(boxes)
    b = boxes.detach().cpu().double().numpy() if as_t else np.asarray(boxes, dtype=np.float64)
    s = scores.detach().cpu().double().numpy() if _is_torch(scores) else np.asarray(scores, dtype=np.float64)
    c = idxs.detach().cpu().numpy() if _is_torch(idxs) else np.asarray(idxs)
    if len(b) == 0:
        keep = np.zeros(0, dtype=np.int64)
    else:
        # Per-class greedy NMS (equivalent to torchvision's coordinate-offset trick, without its
        # floating-point shift), then all survivors ordered by decreasing score.
        kept = []
        for k in np.unique(c):
            idx = np.flatnonzero(c == k)
            kept.append(idx[_nms_numpy(b[idx], s[idx], iou_threshold)])
        keep = np.concatenate(kept)
        keep = keep[np.lexsort((keep, -s[keep]))]
    return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device) if as_t else keep
