"""Checkers for notebook 04 (YOLOv8), against :mod:`labkit.yolov8` (itself verified against Ultralytics).

Blocks written out in the notebook are checked as *classes* with labkit's constructor arguments and parameter
names, so labkit's weights load into them with ``strict=True``::

    conv_block(Conv)      Conv(c_in, c_out, k, s)
    c2f_block(C2f)        C2f(c_in, c_out, n, shortcut)
    sppf_block(SPPF)      SPPF(c_in, c_out, k)
    dfl_block(DFL)        DFL(reg_max)                        (built as is: its weights are the constants 0..R-1)
    detect_head(Detect)   Detect(nc, ch, reg_max, strides)    (train mode: raw dict; eval mode: (decoded, raw))

Each case builds labkit's block from a fresh seed (random conv weights, random BatchNorm statistics and affine
parameters, so eval mode is not an identity), copies its state_dict into yours, and compares the outputs on a
fresh random input, in eval or train mode (batch statistics). Functions::

    tal_assign(pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, mask_gt, topk)
        -> (target_scores, fg_mask, gt_idx)
    dfl_decode: decode_boxes(box_logits, anchor_points, stride_tensor, reg_max) -> (B, A, 4) xyxy pixels
    align_metric(pd_scores, pd_bboxes, gt_labels, gt_bboxes, alpha, beta)   -> (B, M, A)

All randomness is local (a seeded generator, and torch's global RNG forked and restored), so running a checker
does not change the random numbers of the notebook's later cells; the checks run on one thread (restored after).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable

import numpy as np
import torch

from labkit.check import Report, compare_arrays, fresh_seed, run_cases

__all__ = ["conv_block", "c2f_block", "sppf_block", "dfl_block", "detect_head", "tal_assign", "dfl_decode",
           "align_metric"]

REF = "labkit.yolov8 (verified against Ultralytics)"
RTOL, ATOL = 1e-5, 1e-5  # float32 on both sides; only the order of operations may differ


def _close(expected, got) -> str | None:
    return compare_arrays(expected, got, rtol=RTOL, atol=ATOL)


@contextmanager
def _isolated():
    """Torch's global RNG forked and restored, and one thread: the cases are tiny, and on a busy 2-core machine
    two threads per op wait on each other (a test of these checkers ran 7x slower with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)


def randomise_batchnorm(module: torch.nn.Module, g: torch.Generator) -> torch.nn.Module:
    """Give every ``BatchNorm2d`` of ``module`` random running statistics and affine parameters drawn from ``g``
    (in place; returns ``module``), so that eval mode is not an identity and a copied state_dict is really tested.
    The checkers here and ``tests/test_yolov8_modules.py`` use it."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module


def _reference_module(ref_cls, args, weights: int):
    torch.manual_seed(weights)  # inside the checker's forked RNG: the notebook's own stream is untouched
    return randomise_batchnorm(ref_cls(*args), torch.Generator().manual_seed(weights))


def _check_module(name: str, cls, ref_cls, cases: list[dict], *, load: bool, hint: str, seed: int, show: bool,
                  output: Callable[[Any, bool], Any] = lambda out, train: out,
                  compare: Callable[[Any, Any], str | None] = _close) -> Report:
    """Build labkit's block and yours with the same arguments, copy its weights into yours, compare outputs."""

    def forward(module, x, train):
        module.train(train)
        with torch.no_grad():
            return output(module([t.clone() for t in x] if isinstance(x, list) else x.clone()), train)

    def reference(args, x, train, weights):
        return forward(_reference_module(ref_cls, args, weights), x, train)

    def yours(args, x, train, weights):
        mine = cls(*args)
        if load:
            mine.load_state_dict(_reference_module(ref_cls, args, weights).state_dict(), strict=True)
        return forward(mine, x, train)

    yours.__name__ = getattr(cls, "__name__", "your block")
    with _isolated():
        return run_cases(name, yours, cases, reference, compare=compare, reference_name=REF, hint=hint, seed=seed,
                         show=show)


def _weights_hint(extra: str) -> str:
    return ("keep labkit.yolov8.modules' constructor arguments and parameter names (conv, bn; cv1, cv2, m ...) so "
            "its weights load into yours; " + extra)


def conv_block(cls, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check a ``Conv(c_in, c_out, k, s)`` class (Conv2d without bias -> BatchNorm2d -> SiLU) against labkit's."""
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        c_in, c_out = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        k, s = (1, 1) if i == 0 else (int(rng.choice([1, 3, 5])), int(rng.choice([1, 2])))
        h, w = int(rng.integers(5, 13)), int(rng.integers(5, 13))
        cases.append({"args": (c_in, c_out, k, s), "x": torch.randn(int(rng.integers(1, 4)), c_in, h, w, generator=g),
                      "train": bool(i % 3 == 2), "weights": int(rng.integers(2**31))})
    return _check_module("conv_block", cls, _ref("Conv"), cases, load=True, seed=seed, show=show, hint=_weights_hint(
        "padding k // 2 keeps the size at stride 1; the conv has no bias; BatchNorm2d(c_out, eps=1e-3, "
        "momentum=0.03) as Ultralytics sets it; SiLU after the batch norm"))


def c2f_block(cls, *, n: int = 12, seed: int | None = None, show: bool = True) -> Report:
    """Check a ``C2f(c_in, c_out, n, shortcut)`` class against labkit's."""
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        c_in, c_out = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        reps, shortcut = int(rng.integers(1, 4)), bool(i % 2)
        h, w = int(rng.integers(4, 11)), int(rng.integers(4, 11))
        cases.append({"args": (c_in, c_out, reps, shortcut),
                      "x": torch.randn(int(rng.integers(1, 3)), c_in, h, w, generator=g),
                      "train": bool(i % 4 == 3), "weights": int(rng.integers(2**31))})
    return _check_module("c2f_block", cls, _ref("C2f"), cases, load=True, seed=seed, show=show, hint=_weights_hint(
        "cv1 is a 1x1 Conv to 2 halves of c_out // 2 channels; each bottleneck (two 3x3 Convs, + input if shortcut) "
        "works on the latest output; cv2 reads the concatenation of all n + 2 tensors"))


def sppf_block(cls, *, n: int = 16, seed: int | None = None, show: bool = True) -> Report:
    """Check an ``SPPF(c_in, c_out, k)`` class against labkit's (YOLOv8's SPPF: SiLU after cv1)."""
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        c_in, c_out, k = int(rng.integers(2, 9)), int(rng.integers(1, 9)), (5, 3)[i % 4 == 3]
        h, w = int(rng.integers(3, 15)), int(rng.integers(3, 15))
        cases.append({"args": (c_in, c_out, k), "x": torch.randn(int(rng.integers(1, 3)), c_in, h, w, generator=g),
                      "train": bool(i % 3 == 2), "weights": int(rng.integers(2**31))})
    return _check_module("sppf_block", cls, _ref("SPPF"), cases, load=True, seed=seed, show=show, hint=_weights_hint(
        "cv1 is a 1x1 Conv to c_in // 2 channels; the same k x k max-pool (stride 1, padding k // 2) three times in "
        "series; cv2 reads the concatenation of the 4 maps"))


def dfl_block(cls, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check a ``DFL(reg_max)`` class as constructed (its weights are the constants 0 .. reg_max-1)."""
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        reg_max = (16, 16, 8, 4)[i % 4]
        x = torch.randn(int(rng.integers(1, 4)), 4 * reg_max, int(rng.integers(1, 30)), generator=g)
        x = x * float(rng.choice([0.0, 1.0, 3.0, 10.0])) if i else torch.zeros_like(x)  # all-equal logits first
        cases.append({"args": (reg_max,), "x": x, "train": False, "weights": 0})
    return _check_module("dfl_block", cls, _ref("DFL"), cases, load=False, seed=seed, show=show, hint=(
        "(B, 4*R, A) -> (B, 4, A): softmax over each side's R bins (not over the 4 sides or the anchors), then the "
        "expectation sum_i i * p_i with the weights [0, 1, ..., R-1] set in __init__ (all-equal logits give (R-1)/2)"))


def _detect_output(out, train: bool):
    """Labkit's Detect output as one dict; a wrongly structured result raises a readable error."""
    if train:
        if not isinstance(out, dict) or not {"boxes", "scores"} <= set(out):
            raise TypeError(f"in train mode Detect must return the raw dict {{'boxes', 'scores', 'feats'}}, "
                            f"got {type(out).__name__}")
        return {"boxes": out["boxes"], "scores": out["scores"]}
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], dict)):
        raise TypeError(f"in eval mode Detect must return (decoded, raw dict), got {type(out).__name__}")
    return {"decoded": out[0], "boxes": out[1]["boxes"], "scores": out[1]["scores"]}


def _compare_dict(expected: dict, got) -> str | None:
    for key, value in expected.items():
        diff = compare_arrays(value, got[key], rtol=RTOL, atol=ATOL)
        if diff:
            return f"{key}: {diff}"
    return None


def detect_head(cls, *, n: int = 8, seed: int | None = None, show: bool = True) -> Report:
    """Check a ``Detect(nc, ch, reg_max, strides)`` class (raw outputs in train mode, decoded boxes in eval)."""
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        nc, reg_max = int(rng.integers(1, 6)), (16, 8)[i % 2]
        ch = tuple(int(c) for c in rng.integers(4, 17, size=3))
        h5, w5 = int(rng.integers(1, 3)), int(rng.integers(1, 3))  # P5 grid; P4 and P3 are 2x and 4x finer
        train = i % 3 == 2
        b = 2 if train else int(rng.integers(1, 3))  # train-mode batch norm needs more than one value per channel
        feats = [torch.randn(b, c, h5 * f, w5 * f, generator=g) for c, f in zip(ch, (4, 2, 1))]
        cases.append({"args": (nc, ch, reg_max, (8.0, 16.0, 32.0)), "x": feats, "train": train,
                      "weights": int(rng.integers(2**31))})
    return _check_module("detect_head", cls, _ref("Detect"), cases, load=True, seed=seed, show=show,
                         output=_detect_output, compare=_compare_dict, hint=_weights_hint(
        "box branch cv2[i] -> 4*reg_max channels, class branch cv3[i] -> nc, every level's grid flattened row by "
        "row and the levels concatenated; eval mode decodes: DFL distances around make_anchors' points, times the "
        "stride, as centre xywh, then sigmoid class scores"))


def _ref(name: str):
    from labkit.yolov8 import modules

    return getattr(modules, name)


# -- the Task-Aligned Assigner and the exercises ------------------------------------------------------------


def _anchors(h: int, w: int, strides=(8, 16, 32)):
    from labkit.yolov8 import make_anchors

    feats = [torch.zeros(1, 1, h // s, w // s) for s in strides]
    return make_anchors(feats, strides, 0.5)  # (A, 2) grid units, (A, 1)


def _assign_inputs(rng: np.random.Generator, g: torch.Generator, *, tiny: bool, overlap: bool, pad: bool):
    """Random predictions and ground truths on a small image (the ones the loss feeds the assigner)."""
    h, w = int(rng.choice([64, 96])), int(rng.choice([64, 96]))
    anc, stride = _anchors(h, w)
    anc_px = anc * stride
    b, m, nc = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    a = anc.shape[0]
    pd_scores = torch.rand(b, a, nc, generator=g)
    ltrb = torch.rand(b, a, 4, generator=g) * 30 + 2
    pd_bboxes = torch.cat((anc_px - ltrb[..., :2], anc_px + ltrb[..., 2:]), -1)
    xy = torch.rand(b, m, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
    wh = torch.rand(b, m, 2, generator=g) * (12 if tiny else 50) + 4  # tiny: sides under 16 px (enlarged)
    gt_bboxes = torch.cat((xy, xy + wh), -1)
    gt_labels = torch.randint(0, nc, (b, m, 1), generator=g).float()
    mask_gt = torch.ones(b, m, 1)
    if overlap and m > 1:
        gt_bboxes[0, 1] = gt_bboxes[0, 0] + 2  # two ground truths claiming the same anchors
    if pad:
        last = b - 1
        keep = int(rng.integers(0, m))  # the last image has fewer boxes (possibly none): padding rows
        mask_gt[last, keep:] = 0
        gt_bboxes[last, keep:] = 0
        gt_labels[last, keep:] = 0
    return {"pd_scores": pd_scores, "pd_bboxes": pd_bboxes, "anchor_points": anc_px, "gt_labels": gt_labels,
            "gt_bboxes": gt_bboxes, "mask_gt": mask_gt}


def tal_assign(fn, *, n: int = 12, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, mask_gt, topk)``.

    It must return ``(target_scores (B, A, nc), fg_mask (B, A), gt_idx (B, A))`` as
    :class:`labkit.yolov8.TaskAlignedAssigner` (alpha 0.5, beta 6, boxes under 16 px enlarged); ``gt_idx`` is
    compared on the positive anchors only.
    """
    from labkit.yolov8 import TaskAlignedAssigner

    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        case = _assign_inputs(rng, g, tiny=i % 4 == 1, overlap=i % 3 == 0, pad=i % 2 == 1)
        case["topk"] = (10, 3, 13)[i % 3]
        cases.append(case)

    def reference(pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, mask_gt, topk):
        tal = TaskAlignedAssigner(topk=topk, num_classes=pd_scores.shape[-1], alpha=0.5, beta=6.0)
        out = tal(pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, mask_gt)
        return out.scores, out.fg_mask, out.gt_idx

    def compare(expected, got) -> str | None:
        if not (isinstance(got, (tuple, list)) and len(got) == 3):
            return f"expected a tuple (target_scores, fg_mask, gt_idx), got {type(got).__name__}"
        (e_scores, e_fg, e_idx), (scores, fg, idx) = expected, got
        diff = compare_arrays(e_fg.float(), torch.as_tensor(fg).float(), rtol=0, atol=0)
        if diff:
            return f"fg_mask (positive anchors): {diff}"
        diff = compare_arrays(e_idx[e_fg].float(), torch.as_tensor(idx)[e_fg].float(), rtol=0, atol=0)
        if diff:
            return f"gt_idx on the positive anchors: {diff}"
        diff = compare_arrays(e_scores, scores, rtol=RTOL, atol=ATOL)
        return f"target_scores: {diff}" if diff else None

    with _isolated():
        return run_cases("tal_assign", fn, cases, reference, compare=compare, reference_name=REF, seed=seed,
                         show=show, hint=(
            "candidates: anchor centre strictly inside the ground truth (sides under 16 px enlarged to 16 px about "
            "the centre), real ground truths only; metric s^0.5 * CIoU^6 (CIoU clamped at 0); the topk anchors per "
            "ground truth by metric; an anchor claimed twice keeps the ground truth of largest CIoU; the target of a "
            "positive is one-hot(class) * metric * (best CIoU / best metric of its ground truth)"))


#: dfl_decode's boxes are float32 pixels up to ~700: each side's distance (a sum of reg_max terms i·p_i, in grid
#: units) carries ~1e-6 of rounding, and the stride (up to 32) multiplies it; where the box edge lies near the
#: anchor, ``anchor - distance`` cancels, so a relative tolerance cannot absorb it. Two right float32 answers
#: differed by up to 1.2e-4 px over 1000 seeds (20 cases each; 1 seed in ~300 failed at atol 1e-5), and each of
#: them differs from the float64 truth by as much: 1e-3 px. Every plausible mistake moves a box by pixels.
DECODE_RTOL, DECODE_ATOL = 1e-5, 1e-3


def _decode_reference(box_logits, anchor_points, stride_tensor, reg_max=16):
    """labkit's DFL and dist2bbox, in float64 (the exact value; the student's float32 answer is within ATOL)."""
    from labkit.yolov8 import DFL, dist2bbox

    with torch.no_grad():
        dist = DFL(reg_max).double()(box_logits.double())  # (B, 4, A)
    return dist2bbox(dist.transpose(1, 2), anchor_points.double(), xywh=False) * stride_tensor.double()


def _close_decode(expected, got) -> str | None:
    return compare_arrays(expected, got, rtol=DECODE_RTOL, atol=DECODE_ATOL)


def dfl_decode(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(box_logits (B, 4*reg_max, A), anchor_points (A, 2), stride_tensor (A, 1), reg_max)``.

    It must return the boxes ``(B, A, 4)`` as xyxy pixels: for each side the expected distance
    ``sum_i i * softmax(logits)_i`` (in strides), the box ``(ax - l, ay - t, ax + r, ay + b)`` around the anchor
    point (grid units), times the stride.
    """
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        reg_max = (16, 16, 8)[i % 3]
        anc, stride = _anchors(32 * int(rng.integers(1, 3)), 32 * int(rng.integers(1, 3)))
        scale = 0.0 if i == 0 else float(rng.choice([1.0, 3.0, 8.0]))  # case 1: all-equal logits
        logits = torch.randn(int(rng.integers(1, 3)), 4 * reg_max, anc.shape[0], generator=g) * scale
        cases.append({"box_logits": logits, "anchor_points": anc, "stride_tensor": stride, "reg_max": reg_max})

    def hint(case, expected, got) -> str:
        logits, anc, stride, r = (case[k] for k in ("box_logits", "anchor_points", "stride_tensor", "reg_max"))
        b, _, a = logits.shape
        bins = torch.arange(r, dtype=logits.dtype)
        variants = {
            "the softmax runs over the 4 sides instead of the reg_max bins: view (B, 4, reg_max, A), softmax(dim=2)":
                (logits.view(b, 4, r, a).softmax(1) * bins.view(1, 1, r, 1)).sum(2),
            "no expectation: the distance is sum_i i * p_i, not the most likely bin (argmax)":
                logits.view(b, 4, r, a).argmax(2).to(logits.dtype),
            "the bins are not weighted: sum_i i * p_i, with i = 0, 1, ..., reg_max - 1":
                logits.view(b, 4, r, a).softmax(2).sum(2),
        }
        for text, dist in variants.items():
            if _same(_decode_from_dist(dist, anc, stride), got, DECODE_RTOL, DECODE_ATOL):
                return text
        if _same(_decode_from_dist(_dist(logits, r), anc, 1.0), got, DECODE_RTOL, DECODE_ATOL):
            return "the result is in grid units: multiply by stride_tensor to get pixels"
        return ("per side: softmax over its reg_max bins, expected bin sum_i i * p_i; box = (ax - l, ay - t, ax + r, "
                "ay + b) around the anchor point, times the stride; result (B, A, 4)")

    with _isolated():
        return run_cases("dfl_decode", fn, cases, _decode_reference, compare=_close_decode, reference_name=REF,
                         hint=hint,
                         seed=seed, show=show)


def _dist(logits, r):
    b, _, a = logits.shape
    return (logits.view(b, 4, r, a).softmax(2) * torch.arange(r, dtype=logits.dtype).view(1, 1, r, 1)).sum(2)


def _decode_from_dist(dist, anc, stride):
    d = dist.transpose(1, 2)
    return torch.cat((anc - d[..., :2], anc + d[..., 2:]), -1) * stride


def _same(a, b, rtol: float = RTOL, atol: float = ATOL) -> bool:
    if isinstance(b, Exception):  # what the student's function raised
        return False
    try:
        return compare_arrays(a, b, rtol=rtol, atol=atol) is None
    except Exception:  # noqa: BLE001 - only a guess for the hint
        return False


def _metric_reference(pd_scores, pd_bboxes, gt_labels, gt_bboxes, alpha=0.5, beta=6.0):
    from labkit.yolov8 import TaskAlignedAssigner

    tal = TaskAlignedAssigner(num_classes=pd_scores.shape[-1], alpha=alpha, beta=beta)
    every_pair = torch.ones(gt_bboxes.shape[0], gt_bboxes.shape[1], pd_scores.shape[1])
    return tal.box_metrics(pd_scores, pd_bboxes, gt_labels, gt_bboxes, every_pair)[0]


def align_metric(fn, *, n: int = 12, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(pd_scores (B, A, nc), pd_bboxes (B, A, 4), gt_labels (B, M, 1), gt_bboxes (B, M, 4), alpha, beta)``.

    It must return ``t = s^alpha * CIoU^beta`` of shape ``(B, M, A)`` for every (ground truth, anchor) pair, where
    ``s`` is the predicted probability of the ground truth's class and the CIoU is clamped at 0.
    """
    seed = fresh_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        c = _assign_inputs(rng, g, tiny=i % 4 == 1, overlap=i % 3 == 0, pad=False)
        alpha, beta = ((0.5, 6.0), (1.0, 6.0), (0.5, 2.0))[i % 3]  # YOLOv8's, TOOD's, and a milder one
        cases.append({"pd_scores": c["pd_scores"], "pd_bboxes": c["pd_bboxes"], "gt_labels": c["gt_labels"],
                      "gt_bboxes": c["gt_bboxes"], "alpha": alpha, "beta": beta})

    def hint(case, expected, got) -> str:
        from labkit.boxes import bbox_iou

        s = case["pd_scores"].transpose(1, 2).gather(
            1, case["gt_labels"].long().expand(-1, -1, case["pd_scores"].shape[1]))
        pair = (case["gt_bboxes"][:, :, None], case["pd_bboxes"][:, None])
        ciou = bbox_iou(*pair, xywh=False, CIoU=True).squeeze(-1).clamp(min=0)
        iou = bbox_iou(*pair, xywh=False).squeeze(-1).clamp(min=0)
        a, b = case["alpha"], case["beta"]
        variants = {
            f"alpha and beta are swapped: the class score takes alpha ({a}), the CIoU beta ({b})": s ** b * ciou ** a,
            "plain IoU instead of CIoU: use bbox_iou(..., xywh=False, CIoU=True)": s ** a * iou ** b,
            "the exponents are fixed at 0.5 and 6: use the alpha and beta arguments": s ** 0.5 * ciou ** 6.0,
            "the score must be that of the ground truth's class, not the best class":
                case["pd_scores"].amax(-1)[:, None] ** a * ciou ** b,
        }
        for text, value in variants.items():
            if _same(value, got):
                return text
        return ("s: pd_scores at the ground truth's class (gather along the class axis), shape (B, M, A); CIoU of "
                "every (ground truth, prediction) pair, clamped at 0; t = s**alpha * CIoU**beta")

    with _isolated():
        return run_cases("align_metric", fn, cases, _metric_reference, compare=_close, reference_name=REF, hint=hint,
                         seed=seed, show=show)
