"""The Task-Aligned Assigner (TAL, from TOOD, Feng et al. 2021) as YOLOv8 uses it.

Which anchor points should learn to predict which ground-truth box? YOLOv8 has no anchor boxes and no
IoU thresholds; for every ground-truth box ``g`` and every anchor point ``a`` it computes the
*alignment metric*

    t(a, g) = s(a, c_g) ** alpha  *  CIoU(pred_box(a), g) ** beta        (alpha = 0.5, beta = 6)

where ``s(a, c_g)`` is the predicted probability of g's class at anchor a. Then, per ground truth:

1. **candidates**: anchor points whose centre lies inside g (boxes with a side smaller than the
   middle stride, 16 px, are first enlarged to 16 px about their centre — Ultralytics 8.4 behaviour);
2. **top-k**: keep the ``topk = 10`` candidates with the largest t(a, g);
3. **conflicts**: an anchor chosen by several ground truths keeps the one with the largest CIoU;
4. **soft targets**: the class target of a positive anchor is not 1 but
   ``t(a, g) / max_a' t(a', g) * max_a' CIoU(a', g)``, i.e. the metric rescaled so the best anchor of
   each ground truth gets that ground truth's best IoU. Negative anchors get all-zero targets.

The computation follows ``ultralytics.utils.tal.TaskAlignedAssigner`` step by step (same tensor
operations in the same order, so even ties in ``topk`` break the same way); it is checked against it
in ``tests/test_yolov8_loss.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from labkit.boxes import bbox_iou

__all__ = ["TaskAlignedAssigner", "Assignment"]


@dataclass
class Assignment:
    """Result of :class:`TaskAlignedAssigner` (``A`` anchors, ``M`` padded ground truths per image)."""

    labels: torch.Tensor       # (B, A) long: class of the assigned ground truth (0 for negatives)
    bboxes: torch.Tensor       # (B, A, 4) xyxy pixels of the assigned ground truth
    scores: torch.Tensor       # (B, A, nc) soft class targets (0 for negatives)
    fg_mask: torch.Tensor      # (B, A) bool: positive anchors
    gt_idx: torch.Tensor       # (B, A) long: index of the assigned ground truth within its image
    # for inspection / drawing
    candidates: torch.Tensor   # (B, M, A) bool: anchor centre inside the (enlarged) ground-truth box
    align_metric: torch.Tensor  # (B, M, A) t(a, g) on the candidates (0 elsewhere)
    overlaps: torch.Tensor     # (B, M, A) CIoU(pred, g) clamped at 0 on the candidates
    mask_pos: torch.Tensor     # (B, M, A) final positives per ground truth

    def as_tuple(self):
        """``(labels, bboxes, scores, fg_mask, gt_idx)`` in Ultralytics' return order."""
        return self.labels, self.bboxes, self.scores, self.fg_mask, self.gt_idx


class TaskAlignedAssigner:
    """Assign ground truths to anchor points by the task-alignment metric (see the module docstring).

    Args:
        topk: candidates kept per ground truth (10 in YOLOv8's loss).
        num_classes: number of classes ``nc``.
        alpha, beta: exponents of the classification score and the IoU in the metric (0.5, 6.0).
        strides: strides of the levels; the middle one is the minimum box side (see step 1).
        eps: guards the divisions.
    """

    def __init__(self, topk: int = 10, num_classes: int = 80, alpha: float = 0.5, beta: float = 6.0,
                 strides=(8, 16, 32), eps: float = 1e-9):
        self.topk, self.num_classes, self.alpha, self.beta, self.eps = topk, num_classes, alpha, beta, eps
        strides = list(strides)
        self.min_side = float(strides[1] if len(strides) > 1 else strides[0])

    # -- step 1 -------------------------------------------------------------------------------
    def candidates_in_gts(self, anchor_points: torch.Tensor, gt_bboxes: torch.Tensor,
                          mask_gt: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
        """``(B, M, A)``: anchor centre strictly inside the ground truth (tiny boxes enlarged first)."""
        cxcy = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2
        wh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        too_small = (wh < self.min_side) & mask_gt.bool()
        wh = torch.where(too_small, torch.tensor(self.min_side, dtype=wh.dtype, device=wh.device), wh)
        x1y1 = (cxcy - wh / 2).unsqueeze(2)  # (B, M, 1, 2)
        x2y2 = (cxcy + wh / 2).unsqueeze(2)
        p = anchor_points  # (A, 2), broadcast to (B, M, A, 2)
        inside = torch.cat((p - x1y1, x2y2 - p), dim=-1)  # distances to the 4 sides
        return inside.amin(dim=-1) > eps

    # -- alignment metric ------------------------------------------------------------------------
    def box_metrics(self, pd_scores, pd_bboxes, gt_labels, gt_bboxes, mask):
        """``t = s^alpha * CIoU^beta`` and the CIoU on the candidate pairs ``mask`` (B, M, A)."""
        b, m, a = mask.shape
        bi, gi, ai = mask.bool().nonzero(as_tuple=True)
        cls_score = pd_scores[bi, ai, gt_labels[bi, gi, 0].long()]
        iou = bbox_iou(gt_bboxes[bi, gi], pd_bboxes[bi, ai], xywh=False, CIoU=True).squeeze(-1).clamp(min=0)
        overlaps = torch.zeros((b, m, a), dtype=pd_bboxes.dtype, device=pd_bboxes.device)
        metric = torch.zeros((b, m, a), dtype=pd_scores.dtype, device=pd_scores.device)
        overlaps[bi, gi, ai] = iou
        metric[bi, gi, ai] = cls_score.pow(self.alpha) * iou.pow(self.beta)
        return metric, overlaps

    # -- step 2 -------------------------------------------------------------------------------
    def topk_mask(self, metric: torch.Tensor, mask_gt: torch.Tensor) -> torch.Tensor:
        """``(B, M, A)`` int8: the ``topk`` anchors of each (valid) ground truth by metric."""
        _, idx = torch.topk(metric, self.topk, dim=-1, largest=True)  # (B, M, k)
        idx = idx.masked_fill(~mask_gt.expand(-1, -1, self.topk).bool(), 0)  # padded gts -> anchor 0
        count = torch.zeros(metric.shape, dtype=torch.int8, device=metric.device)
        count.scatter_add_(-1, idx, torch.ones_like(idx, dtype=torch.int8))
        return count.masked_fill(count > 1, 0)  # anchor 0 counted k times for a padded gt -> dropped

    # -- the whole thing --------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, mask_gt) -> Assignment:
        """Assign.

        Args:
            pd_scores: ``(B, A, nc)`` predicted class *probabilities* (after sigmoid).
            pd_bboxes: ``(B, A, 4)`` predicted boxes, xyxy in pixels.
            anchor_points: ``(A, 2)`` anchor centres in pixels.
            gt_labels: ``(B, M, 1)`` classes; gt_bboxes: ``(B, M, 4)`` xyxy pixels; padded to ``M``.
            mask_gt: ``(B, M, 1)`` 1 for real ground truths, 0 for padding.
        """
        bs, n_max, n_anchors = pd_scores.shape[0], gt_bboxes.shape[1], pd_scores.shape[1]
        if n_max == 0:  # no ground truth in the whole batch: everything is background
            z = torch.zeros((bs, 0, n_anchors), device=pd_scores.device)
            return Assignment(torch.full_like(pd_scores[..., 0], self.num_classes).long(),
                              torch.zeros_like(pd_bboxes), torch.zeros_like(pd_scores),
                              torch.zeros_like(pd_scores[..., 0], dtype=torch.bool),
                              torch.zeros_like(pd_scores[..., 0]).long(), z.bool(), z, z, z)

        # 1. candidates; metric on candidate pairs of real ground truths
        candidates = self.candidates_in_gts(anchor_points, gt_bboxes, mask_gt)
        metric, overlaps = self.box_metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes, candidates * mask_gt)
        # 2. top-k per ground truth, restricted to candidates of real ground truths
        mask_pos = self.topk_mask(metric, mask_gt) * candidates * mask_gt.bool()
        # 3. an anchor claimed by several ground truths keeps the one it overlaps most
        n_claims = mask_pos.sum(-2, keepdim=True)  # (B, 1, A)
        best_gt = torch.zeros_like(mask_pos).scatter_(1, overlaps.max(1).indices.unsqueeze(1), 1)
        mask_pos = torch.where(n_claims > 1, best_gt, mask_pos)
        fg, gt_idx = mask_pos.max(-2)  # (B, A): positive?, which ground truth

        # targets of each anchor, gathered from its ground truth
        flat_idx = gt_idx + torch.arange(bs, device=gt_idx.device).unsqueeze(-1) * n_max
        labels = gt_labels.long().flatten()[flat_idx].clamp(min=0)
        bboxes = gt_bboxes.view(-1, 4)[flat_idx]
        one_hot = torch.zeros((bs, n_anchors, self.num_classes), dtype=torch.int8, device=labels.device)
        one_hot.scatter_(2, labels.unsqueeze(-1), 1)
        one_hot = one_hot * (fg.unsqueeze(-1) > 0)

        # 4. soft targets: metric rescaled per ground truth so its best anchor gets its best IoU
        metric = metric * mask_pos
        overlaps = overlaps * mask_pos
        best_metric = metric.amax(-1, keepdim=True)   # (B, M, 1)
        best_iou = overlaps.amax(-1, keepdim=True)    # (B, M, 1)
        norm = (metric * best_iou / (best_metric + self.eps)).amax(-2).unsqueeze(-1)  # (B, A, 1)
        scores = one_hot * norm

        return Assignment(labels, bboxes, scores, fg.bool(), gt_idx, candidates, metric, overlaps,
                          mask_pos)
