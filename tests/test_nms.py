"""labkit.nms.greedy_nms (the readable NMS of notebook 05) and labkit.boxes.nms / batched_nms against
torchvision.ops.nms / batched_nms, with distinct scores, tied scores and IoUs exactly at the threshold.

Ties, honestly: when two boxes have the same score, greedy NMS may visit either first. labkit documents
"lower index first"; torchvision.ops.nms does the same on the CPU, but batched_nms on more than 1,000 boxes
re-sorts its survivors with a non-stable sort (``test_torchvision_batched_nms_tie_order``). So with ties we check (a) labkit equals torchvision run on the same
scores with ties broken by index, and (b) both results are valid greedy results (``is_greedy_nms_result``).
"""

import numpy as np
import pytest
import torch
import torchvision.ops as tvo

from labkit import boxes as B
from labkit import nms as N


def _case(rng, n, ties=False):
    centres = rng.uniform(0, 200, size=(max(n // 8, 1), 2))
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 6, size=(n, 2))
    wh = rng.uniform(8, 40, size=(n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    scores = rng.integers(0, 6, n) / 6 if ties else rng.permutation(n) / n + 1e-3
    return boxes, scores, rng.integers(0, 3, n)


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_greedy_nms_equals_torchvision_distinct_scores(thr):
    """Catches: "Fast NMS" (drop a box if ANY higher-scored box overlaps it, even a suppressed one: greedy_nms's
    loop replaced by an upper-triangular IoU test fails all three thresholds), and a class-wise NMS that ignores
    ``classes`` (the batched_nms comparison fails)."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        boxes, scores, cls = _case(rng, int(rng.integers(1, 250)))
        tb, ts, tc = torch.tensor(boxes), torch.tensor(scores), torch.tensor(cls)
        np.testing.assert_array_equal(N.greedy_nms(boxes, scores, thr), tvo.nms(tb, ts, thr).numpy())
        np.testing.assert_array_equal(N.greedy_nms(boxes, scores, thr, cls), tvo.batched_nms(tb, ts, tc, thr).numpy())


@pytest.mark.parametrize("fn", [N.greedy_nms, B.nms])
def test_ties_lower_index_first_and_valid(fn):
    """Catches: descending order built as ``np.argsort(scores)[::-1]`` (ties visited higher index first:
    labkit's result then differs from torchvision with ties broken by index, although it stays valid)."""
    rng = np.random.default_rng(1)
    for n in (5, 60, 300, 1500):  # 1,500 boxes: batched_nms takes its per-class path
        boxes, scores, cls = _case(rng, n, ties=True)
        thr = 0.5
        broken = torch.tensor(scores - np.arange(n) * 1e-9)  # far below the 1/6 score spacing
        tb, tc = torch.tensor(boxes), torch.tensor(cls)
        got_a = fn(boxes, scores, thr)
        got_c = N.greedy_nms(boxes, scores, thr, cls) if fn is N.greedy_nms else B.batched_nms(boxes, scores, cls, thr)
        np.testing.assert_array_equal(got_a, tvo.nms(tb, broken, thr).numpy())
        np.testing.assert_array_equal(got_c, tvo.batched_nms(tb, broken, tc, thr).numpy())
        assert N.is_greedy_nms_result(boxes, scores, got_a, thr)
        assert N.is_greedy_nms_result(boxes, scores, got_c, thr, cls)
        # torchvision on the raw tied scores: maybe another order among ties, but a valid greedy result
        ts = torch.tensor(scores)
        assert N.is_greedy_nms_result(boxes, scores, tvo.nms(tb, ts, thr).numpy(), thr)
        assert N.is_greedy_nms_result(boxes, scores, tvo.batched_nms(tb, ts, tc, thr).numpy(), thr, cls)


def test_torchvision_batched_nms_tie_order():
    """Why the tie tests break ties explicitly: on the CPU, torchvision.ops.nms visits tied scores in index
    order (a stable sort), but batched_nms with more than 1,000 boxes runs NMS per class and re-sorts the
    survivors with a non-stable sort: same kept set, another order among tied survivors."""
    rng = np.random.default_rng(2)
    boxes, scores, cls = _case(rng, 1500, ties=True)
    tb, ts, tc = torch.tensor(boxes), torch.tensor(scores), torch.tensor(cls)
    np.testing.assert_array_equal(tvo.nms(tb, ts, 0.5).numpy(), B.nms(boxes, scores, 0.5))
    ref, mine = tvo.batched_nms(tb, ts, tc, 0.5).numpy(), B.batched_nms(boxes, scores, cls, 0.5)
    np.testing.assert_array_equal(np.sort(ref), np.sort(mine))  # the same boxes survive
    if np.array_equal(ref, mine):
        pytest.skip("torchvision's sort happened to keep index order here")
    np.testing.assert_array_equal(scores[ref], scores[mine])  # only tied survivors are permuted


@pytest.mark.parametrize("fn", [N.greedy_nms, B.nms])
def test_iou_exactly_at_threshold_is_kept(fn):
    """IoU == threshold does not suppress (torchvision: IoU > threshold). Catches ``>`` -> ``>=``."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 5, 10, 10], [0, 0, 10, 10]], float)  # IoUs 0.5 and 1
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    ref = tvo.nms(torch.tensor(boxes), torch.tensor(scores), 0.5).numpy()
    np.testing.assert_array_equal(ref, [0, 1, 2])
    np.testing.assert_array_equal(fn(boxes, scores, 0.5), ref)


def test_class_wise_vs_agnostic():
    """Two strongly overlapping boxes of different classes: class-wise keeps both, agnostic keeps one.
    Catches a class-wise NMS that ignores the labels, or an agnostic one that uses them."""
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10]], float)
    scores, cls = np.array([0.9, 0.8]), np.array([0, 1])
    np.testing.assert_array_equal(N.greedy_nms(boxes, scores, 0.5), [0])
    np.testing.assert_array_equal(N.greedy_nms(boxes, scores, 0.5, cls), [0, 1])
    np.testing.assert_array_equal(B.batched_nms(boxes, scores, cls, 0.5), [0, 1])


def test_is_greedy_nms_result_rejects_wrong_results():
    """The validity check itself must fail on wrong answers: a box dropped without a reason, a suppressed box
    kept, a wrong order, and the result of Fast NMS (which drops boxes only suppressed boxes overlap)."""
    # a chain: 0 overlaps 1, 1 overlaps 2, 0 does not overlap 2 -> greedy keeps 0 and 2; Fast NMS keeps only 0
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert B.pairwise_iou(boxes[:1], boxes[2:])[0, 0] < 0.3 < B.pairwise_iou(boxes[:1], boxes[1:2])[0, 0]
    thr = 0.3
    np.testing.assert_array_equal(N.greedy_nms(boxes, scores, thr), [0, 2])
    assert N.is_greedy_nms_result(boxes, scores, [0, 2], thr)
    assert not N.is_greedy_nms_result(boxes, scores, [0], thr)        # Fast NMS / box 2 dropped for nothing
    assert not N.is_greedy_nms_result(boxes, scores, [0, 1, 2], thr)  # box 1 should be suppressed
    assert not N.is_greedy_nms_result(boxes, scores, [2, 0], thr)     # not in score order
    assert not N.is_greedy_nms_result(boxes, scores, [0, 0, 2], thr)  # duplicate index


def test_compare_with_torchvision_counts():
    """The notebook's check: every random case agrees, with and without ties."""
    for ties in (False, True):
        r = N.compare_with_torchvision(n_cases=20, seed=3, ties=ties, sizes=(1, 120))
        assert r == {"cases": 20, "agnostic_equal": 20, "classwise_equal": 20, "valid": 20}


def test_compare_with_torchvision_detects_a_wrong_nms():
    """The comparison is not vacuous: an NMS with ``>=`` and no class handling is caught."""
    def wrong(boxes, scores, thr, classes=None):
        return N.greedy_nms(boxes, scores, thr - 0.2)

    r = N.compare_with_torchvision(wrong, n_cases=10, seed=4)
    assert r["agnostic_equal"] < 10 and r["classwise_equal"] < 10


def test_apply_nms_keeps_fields_and_none_is_identity():
    gts = N.crowded_scenes(3, seed=0)
    raw = N.raw_detections(gts, seed=0)
    assert N.apply_nms(raw, None) is raw
    kept = N.apply_nms(raw, 0.5)
    for r, k in zip(raw, kept):
        assert set(k) == set(r) and len(k["scores"]) < len(r["scores"])
        assert all(len(v) == len(k["scores"]) for v in k.values())


def test_crowded_scenes_pair_ious():
    """Same-class pairs overlap with IoU in [0.2, 0.45], cross-class pairs in [0.55, 0.75] (the experiment's
    design: between them lies the NMS threshold that keeps both kinds of neighbours)."""
    for g in N.crowded_scenes(10, seed=5):
        iou = B.pairwise_iou(g["boxes"], g["boxes"])
        for kind, lo, hi in ((1, 0.2, 0.45), (2, 0.55, 0.75)):
            idx = np.flatnonzero(g["kind"] == kind)
            for a, b in zip(idx[::2], idx[1::2]):
                assert lo - 0.02 <= iou[a, b] <= hi  # clipping to the image can only lower the IoU a little
