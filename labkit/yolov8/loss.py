"""The YOLOv8 detection loss, re-implemented for reading and checked against Ultralytics.

``loss = 7.5 * L_box + 0.5 * L_cls + 1.5 * L_dfl`` (times the batch size, as Ultralytics returns it),
all three normalised by the *sum of the soft class targets* ``S = max(1, sum target_scores)``:

* ``L_cls`` — **binary cross-entropy with logits** between the class logits of *every* anchor and its
  soft target from the :class:`~labkit.yolov8.assigner.TaskAlignedAssigner` (0 for background). This
  is what ``ultralytics.utils.loss.v8DetectionLoss`` does (``nn.BCEWithLogitsLoss``). Blog posts often
  say YOLOv8 uses Varifocal Loss: Ultralytics ships a ``VarifocalLoss`` class, but the detection loss
  never calls it (only a commented-out "VFL way" line is left, in the OBB loss of 8.4).
* ``L_box`` — ``sum_pos (1 - CIoU(pred, target)) * w / S`` with ``w`` the anchor's soft target.
  CIoU comes from :func:`labkit.boxes.bbox_iou` (same signature and maths as Ultralytics').
* ``L_dfl`` — Distribution Focal Loss: the target distance ``d`` (in stride units, clamped to
  ``[0, reg_max - 1 - 0.01]`` so it falls between two existing bins) is split between its two
  neighbouring bins ``floor(d)`` and ``floor(d) + 1`` with linear weights, and the loss is the
  cross-entropy of the 16-bin softmax against that two-hot target, averaged over the 4 sides and
  weighted by ``w``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from labkit.boxes import bbox_iou

from .assigner import Assignment, TaskAlignedAssigner
from .modules import bbox2dist, dist2bbox, make_anchors

__all__ = ["LossGains", "dfl_loss", "decode_distribution", "targets_to_padded", "DetectionLoss", "LossResult"]


@dataclass(frozen=True)
class LossGains:
    """Weights of the three terms (Ultralytics defaults ``box=7.5, cls=0.5, dfl=1.5``)."""

    box: float = 7.5
    cls: float = 0.5
    dfl: float = 1.5


def dfl_loss(pred_dist: torch.Tensor, target: torch.Tensor, reg_max: int = 16) -> torch.Tensor:
    """Distribution Focal Loss per box side, averaged over the 4 sides.

    Args:
        pred_dist: ``(N * 4, reg_max)`` logits of the bins.
        target: ``(N, 4)`` target distances in stride units.

    Returns ``(N, 1)``.
    """
    target = target.clamp(0, reg_max - 1 - 0.01)  # the last bin is reg_max-1: stay strictly below it
    left = target.long()                          # bin just below the target
    right = left + 1                              # bin just above
    w_left = right - target                       # linear interpolation weights, sum to 1
    w_right = 1 - w_left
    logp = F.log_softmax(pred_dist, dim=1)
    ce_left = -logp.gather(1, left.view(-1, 1)).view(left.shape)
    ce_right = -logp.gather(1, right.view(-1, 1)).view(left.shape)
    return (ce_left * w_left + ce_right * w_right).mean(-1, keepdim=True)


def decode_distribution(pred_dist: torch.Tensor, reg_max: int = 16) -> torch.Tensor:
    """``(B, A, 4 * reg_max)`` bin logits -> ``(B, A, 4)`` expected distances (softmax · [0..reg_max-1])."""
    b, a, _ = pred_dist.shape
    bins = torch.arange(reg_max, dtype=pred_dist.dtype, device=pred_dist.device)
    return pred_dist.view(b, a, 4, reg_max).softmax(3).matmul(bins)


def targets_to_padded(batch_idx: torch.Tensor, cls: torch.Tensor, bboxes: torch.Tensor, batch_size: int,
                      imgsz_hw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ultralytics' flat batch targets -> per-image padded tensors.

    Args:
        batch_idx: ``(N,)`` image index of each box; cls: ``(N,)`` or ``(N, 1)``;
        bboxes: ``(N, 4)`` normalised centre-xywh (YOLO label format).
        imgsz_hw: ``(H, W)`` of the network input in pixels.

    Returns ``labels (B, M, 1)``, ``boxes (B, M, 4)`` xyxy pixels, ``mask (B, M, 1)`` with ``M`` the
    largest number of boxes in one image (rows beyond an image's own boxes are zeros).
    """
    device = bboxes.device
    batch_idx = batch_idx.view(-1).long()
    n_per = torch.bincount(batch_idx, minlength=batch_size) if batch_idx.numel() else torch.zeros(batch_size, dtype=torch.long)
    m = int(n_per.max()) if batch_idx.numel() else 0
    out = torch.zeros(batch_size, m, 5, device=device)
    if m:
        # position of each box within its image, in the order the boxes appear
        start = torch.cumsum(n_per, 0) - n_per
        within = torch.arange(batch_idx.numel(), device=device) - start.to(device)[batch_idx]
        out[batch_idx, within] = torch.cat((cls.view(-1, 1).to(out.dtype), bboxes.to(out.dtype)), 1)
        h, w = float(imgsz_hw[0]), float(imgsz_hw[1])
        xywh = out[..., 1:5] * torch.tensor([w, h, w, h], device=device)
        out[..., 1:5] = torch.cat((xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2), -1)
    labels, boxes = out[..., :1], out[..., 1:]
    mask = (boxes.sum(-1, keepdim=True) > 0).to(boxes.dtype)
    return labels, boxes, mask


@dataclass
class LossResult:
    """What :class:`DetectionLoss` returns."""

    loss: torch.Tensor         # (3,) gained (box, cls, dfl) times batch size: backprop through .sum()
    box: torch.Tensor          # gained terms, *not* times batch size (what Ultralytics logs)
    cls: torch.Tensor
    dfl: torch.Tensor
    assignment: Assignment     # the TAL result, for plots
    pred_bboxes: torch.Tensor  # (B, A, 4) decoded xyxy in pixels
    anchor_points: torch.Tensor  # (A, 2) pixels
    stride: torch.Tensor       # (A, 1)

    @property
    def items(self) -> dict[str, float]:
        return {"box_loss": float(self.box), "cls_loss": float(self.cls), "dfl_loss": float(self.dfl)}


class DetectionLoss:
    """YOLOv8 detection loss (CIoU + DFL box loss, BCE class loss, TAL assignment).

    Args:
        nc: number of classes; reg_max: DFL bins; strides: level strides.
        gains: :class:`LossGains`; topk/alpha/beta: assigner settings (10, 0.5, 6.0 in YOLOv8).

    Call with the raw head output of :class:`~labkit.yolov8.modules.Detect` (train mode) and a batch
    dict in Ultralytics' format (``batch_idx``, ``cls``, ``bboxes`` normalised xywh).
    """

    def __init__(self, nc: int = 80, reg_max: int = 16, strides=(8, 16, 32), gains: LossGains = LossGains(),
                 topk: int = 10, alpha: float = 0.5, beta: float = 6.0):
        self.nc, self.reg_max, self.gains = nc, reg_max, gains
        self.strides = torch.tensor([float(s) for s in strides])
        self.assigner = TaskAlignedAssigner(topk=topk, num_classes=nc, alpha=alpha, beta=beta, strides=strides)

    @classmethod
    def for_model(cls, model, gains: LossGains = LossGains()) -> "DetectionLoss":
        """The loss for a labkit :class:`~labkit.yolov8.model.YOLOv8`."""
        return cls(model.detect.nc, model.detect.reg_max, tuple(model.strides), gains)

    def __call__(self, raw: dict, batch: dict) -> LossResult:
        feats = raw["feats"]
        pred_dist = raw["boxes"].permute(0, 2, 1).contiguous()     # (B, A, 4*reg_max)
        pred_logits = raw["scores"].permute(0, 2, 1).contiguous()  # (B, A, nc)
        bs, dtype = pred_logits.shape[0], pred_logits.dtype
        anchors, stride = make_anchors(feats, self.strides.tolist(), 0.5)  # grid units
        imgsz = (feats[0].shape[2] * self.strides[0].item(), feats[0].shape[3] * self.strides[0].item())

        gt_labels, gt_bboxes, mask_gt = targets_to_padded(batch["batch_idx"], batch["cls"], batch["bboxes"], bs, imgsz)
        gt_labels, gt_bboxes, mask_gt = (t.to(pred_logits.device) for t in (gt_labels, gt_bboxes, mask_gt))

        pred_bboxes = dist2bbox(decode_distribution(pred_dist, self.reg_max), anchors, xywh=False)  # grid units
        assignment = self.assigner(pred_logits.detach().sigmoid(), (pred_bboxes.detach() * stride).to(gt_bboxes.dtype),
                                   anchors * stride, gt_labels, gt_bboxes, mask_gt)
        target_scores = assignment.scores
        norm = target_scores.sum().clamp(min=1)  # S

        # classification: BCE on all anchors, soft targets
        loss_cls = F.binary_cross_entropy_with_logits(pred_logits, target_scores.to(dtype), reduction="none").sum() / norm

        # box terms on positive anchors, in grid units of each level
        fg = assignment.fg_mask
        target_bboxes = assignment.bboxes / stride
        weight = target_scores.sum(-1)[fg].unsqueeze(-1)  # (P, 1) soft target of each positive
        if fg.any():
            ciou = bbox_iou(pred_bboxes[fg], target_bboxes[fg], xywh=False, CIoU=True)
            loss_box = ((1.0 - ciou) * weight).sum() / norm
            target_ltrb = bbox2dist(anchors, target_bboxes, self.reg_max)  # clamped to 0 .. reg_max-1-0.01
            loss_dfl = (dfl_loss(pred_dist[fg].view(-1, self.reg_max), target_ltrb[fg], self.reg_max) * weight).sum() / norm
        else:  # keep the graph connected to pred_dist
            loss_box = loss_dfl = pred_dist.sum() * 0.0

        box, cls_, dfl = loss_box * self.gains.box, loss_cls * self.gains.cls, loss_dfl * self.gains.dfl
        loss = torch.stack((box, cls_, dfl)) * bs
        return LossResult(loss, box.detach(), cls_.detach(), dfl.detach(), assignment,
                          pred_bboxes.detach() * stride, anchors * stride, stride)
