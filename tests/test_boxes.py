"""labkit.boxes against the references: Ultralytics' bbox_iou and torchvision.ops (IoU, GIoU, DIoU, CIoU, NMS)."""

import numpy as np
import pytest
import torch
import torchvision.ops as tvo

from labkit import boxes as B

import ultralytics.utils.metrics as ul_metrics  # a hard dependency: a broken install fails, never skips


def _rand_xyxy(rng, n, scale=100.0):
    xy = rng.uniform(0, scale, size=(n, 2))
    wh = rng.uniform(1, scale / 2, size=(n, 2))
    return np.concatenate([xy, xy + wh], 1)


@pytest.mark.parametrize("flags", [{}, {"GIoU": True}, {"DIoU": True}, {"CIoU": True}])
@pytest.mark.parametrize("xywh", [True, False])
def test_bbox_iou_matches_ultralytics(flags, xywh):
    rng = np.random.default_rng(0)
    a = _rand_xyxy(rng, 200)
    b = _rand_xyxy(rng, 200)
    b[:20] = a[:20]  # identical boxes
    b[20:40, :2] += 200  # disjoint boxes
    b[20:40, 2:] += 200
    if xywh:
        a, b = B.xyxy_to_cxcywh(a), B.xyxy_to_cxcywh(b)
    ta, tb = torch.tensor(a), torch.tensor(b)
    ref = ul_metrics.bbox_iou(ta, tb, xywh=xywh, **flags).numpy()
    # torch path, same shape (N, 1)
    got_t = B.bbox_iou(ta, tb, xywh=xywh, **flags)
    assert isinstance(got_t, torch.Tensor) and got_t.shape == ref.shape
    np.testing.assert_allclose(got_t.numpy(), ref, atol=1e-6, rtol=0)
    # numpy path
    got_n = B.bbox_iou(a, b, xywh=xywh, **flags)
    assert isinstance(got_n, np.ndarray) and got_n.shape == ref.shape
    np.testing.assert_allclose(got_n, ref, atol=1e-6, rtol=0)
    # broadcasting (1 box vs N, and B x N x 1 x 4 vs B x 1 x M x 4 as in the TAL assigner)
    ref_b = ul_metrics.bbox_iou(ta[0], tb, xywh=xywh, **flags).numpy()
    np.testing.assert_allclose(B.bbox_iou(a[0], b, xywh=xywh, **flags), ref_b, atol=1e-6)
    ta4, tb4 = ta[:30].view(2, 15, 1, 4), tb[:24].view(2, 1, 12, 4)
    ref4 = ul_metrics.bbox_iou(ta4, tb4, xywh=xywh, **flags).numpy()
    np.testing.assert_allclose(B.bbox_iou(ta4, tb4, xywh=xywh, **flags).numpy(), ref4, atol=1e-6)


def test_bbox_iou_gradient_matches_ultralytics():
    rng = np.random.default_rng(1)
    a = B.xyxy_to_cxcywh(_rand_xyxy(rng, 50))
    b = B.xyxy_to_cxcywh(_rand_xyxy(rng, 50))
    b[:25] = a[:25] + rng.normal(0, 2, size=(25, 4))
    grads = []
    for fn in (ul_metrics.bbox_iou, B.bbox_iou):
        ta = torch.tensor(a, requires_grad=True)
        (1 - fn(ta, torch.tensor(b), xywh=True, CIoU=True)).sum().backward()
        grads.append(ta.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-6)


def test_bbox_iou_float32_tensor():
    rng = np.random.default_rng(2)
    a = torch.tensor(_rand_xyxy(rng, 64), dtype=torch.float32)
    b = torch.tensor(_rand_xyxy(rng, 64), dtype=torch.float32)
    got = B.bbox_iou(a, b, xywh=False, CIoU=True)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ul_metrics.bbox_iou(a, b, xywh=False, CIoU=True).numpy(), atol=1e-6)


def test_conversions_roundtrip_and_values():
    rng = np.random.default_rng(3)
    xyxy = _rand_xyxy(rng, 30)
    for f in ("xywh", "cxcywh"):
        np.testing.assert_allclose(B.convert(B.convert(xyxy, "xyxy", f), f, "xyxy"), xyxy, atol=1e-9)
    np.testing.assert_allclose(B.xyxy_to_xywh(np.array([10, 20, 30, 60.])), [10, 20, 20, 40])
    np.testing.assert_allclose(B.xyxy_to_cxcywh(np.array([10, 20, 30, 60.])), [20, 40, 20, 40])
    np.testing.assert_allclose(B.xywh_to_cxcywh(np.array([10, 20, 20, 40.])), [20, 40, 20, 40])
    np.testing.assert_allclose(B.cxcywh_to_xywh(np.array([20, 40, 20, 40.])), [10, 20, 20, 40])
    # against torchvision.ops.box_convert
    t = torch.tensor(xyxy)
    np.testing.assert_allclose(B.convert(t, "xyxy", "cxcywh").numpy(), tvo.box_convert(t, "xyxy", "cxcywh").numpy())
    np.testing.assert_allclose(B.convert(t, "xyxy", "xywh").numpy(), tvo.box_convert(t, "xyxy", "xywh").numpy())
    n = B.normalize(xyxy, 200, 100)
    np.testing.assert_allclose(n[:, 0], xyxy[:, 0] / 200)
    np.testing.assert_allclose(n[:, 3], xyxy[:, 3] / 100)
    np.testing.assert_allclose(B.denormalize(n, 200, 100), xyxy)
    with pytest.raises(ValueError, match="unknown box format"):
        B.convert(xyxy, "xyxy", "yolo")


@pytest.mark.parametrize("kind,ref", [("iou", tvo.box_iou), ("giou", tvo.generalized_box_iou),
                                      ("diou", tvo.distance_box_iou), ("ciou", tvo.complete_box_iou)])
def test_pairwise_matches_torchvision(kind, ref):
    rng = np.random.default_rng(4)
    a, b = _rand_xyxy(rng, 40), _rand_xyxy(rng, 30)
    b[:5] = a[:5]
    expect = ref(torch.tensor(a), torch.tensor(b)).numpy()
    got = B.pairwise_iou(a, b, kind=kind)
    assert got.shape == (40, 30)
    np.testing.assert_allclose(got, expect, atol=1e-6)
    np.testing.assert_allclose(B.pairwise_iou(torch.tensor(a), torch.tensor(b), kind=kind).numpy(), expect, atol=1e-6)
    # elementwise = diagonal of pairwise
    np.testing.assert_allclose(B.elementwise_iou(a[:30], b, kind=kind), np.diag(ref(torch.tensor(a[:30]), torch.tensor(b)).numpy()),
                               atol=1e-6)


def test_iou_degenerate_boxes_give_zero():
    z = np.array([[5, 5, 5, 5.]])
    assert B.pairwise_iou(z, z)[0, 0] == 0.0
    assert B.pairwise_iou(z, np.array([[0, 0, 10, 10.]]))[0, 0] == 0.0


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_torchvision(thr):
    rng = np.random.default_rng(5)
    for trial in range(5):
        n = 300
        centres = rng.uniform(0, 200, size=(20, 2))  # clustered boxes so NMS has work to do
        c = centres[rng.integers(0, 20, n)] + rng.normal(0, 5, size=(n, 2))
        wh = rng.uniform(10, 40, size=(n, 2))
        boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
        scores = rng.permutation(n) / n + 0.001  # distinct scores
        cls = rng.integers(0, 4, n)
        tb, ts, tc = torch.tensor(boxes), torch.tensor(scores), torch.tensor(cls)
        ref = tvo.nms(tb, ts, thr).numpy()
        np.testing.assert_array_equal(B.nms(boxes, scores, thr), ref)
        np.testing.assert_array_equal(B.nms(tb, ts, thr).numpy(), ref)
        refb = tvo.batched_nms(tb, ts, tc, thr).numpy()
        np.testing.assert_array_equal(B.batched_nms(boxes, scores, cls, thr), refb)
        np.testing.assert_array_equal(B.batched_nms(tb, ts, tc, thr).numpy(), refb)
    assert len(B.nms(np.zeros((0, 4)), np.zeros(0), 0.5)) == 0
    assert len(B.batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5)) == 0
