"""labkit.check.detection (the checkers of notebook 05): each passes on the reference and on the notebook's code
(copied here), reports a stub as "not implemented yet", and fails, naming the case, expected and got, on plausible
wrong answers: class-agnostic NMS, AP without the precision envelope, plain IoU for GIoU, an unclamped overlap..."""
import numpy as np
import pytest
import torch
import torchvision.ops as tvo

from labkit import check
from labkit.check import detection as D
from labkit.metrics import ap_from_pr
from labkit.metrics import envelope as labkit_envelope
from labkit.nms import greedy_nms


# ---- the notebook's code (notebooks/05_detection_metrics.ipynb): in view, and the exercises' solutions ----------
def iou_matrix(boxes1, boxes2):
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def nms_by_hand(boxes, scores, iou_threshold, classes=None):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        drop = iou_matrix(boxes[[i]], boxes[rest])[0] > iou_threshold
        if classes is not None:
            drop &= classes[rest] == classes[i]
        order = rest[~drop]
    return np.array(keep, dtype=np.int64)


def precision_envelope(precision):
    env = np.array(precision, dtype=float)
    for k in range(len(env) - 2, -1, -1):
        env[k] = max(env[k], env[k + 1])
    return env


def ap_area(recall, precision):
    env = precision_envelope(precision)
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * env))


def giou_matrix(boxes1, boxes2):
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    inter_wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    c_wh = np.maximum(a[..., 2:], b[..., 2:]) - np.minimum(a[..., :2], b[..., :2])
    c_area = c_wh[..., 0] * c_wh[..., 1]
    return inter / union - (c_area - union) / c_area


def ap_coco(recall, precision):
    env = precision_envelope(precision)
    points = np.linspace(0, 1, 101)
    first = np.searchsorted(recall, points, side="left")
    reached = first < len(recall)
    return float(np.sum(env[first[reached]]) / 101)


def nms_offset(boxes, scores, iou_threshold, classes):
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    shift = (boxes.max() - boxes.min() + 1) * classes[:, None]
    return nms_by_hand(boxes + shift, scores, iou_threshold)


# ---- plausible wrong answers ---------------------------------------------------------------------------------------
def iou_unclamped(boxes1, boxes2):
    a, b = boxes1[:, None, :], boxes2[None, :, :]
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return w * h / (area_a + area_b - w * h)


def nms_agnostic(boxes, scores, iou_threshold, classes):
    return nms_by_hand(boxes, scores, iou_threshold)


def nms_greater_equal(boxes, scores, iou_threshold, classes):
    return nms_by_hand(boxes, scores, iou_threshold - 1e-12, classes)


def nms_index_order(boxes, scores, iou_threshold, classes):
    return np.sort(nms_by_hand(boxes, scores, iou_threshold, classes))


def envelope_from_left(precision):
    return np.maximum.accumulate(np.asarray(precision, float)) if len(precision) else np.zeros(0)


def ap_area_no_envelope(recall, precision):
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def ap_coco_no_envelope(recall, precision):
    first = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    reached = first < len(recall)
    return float(np.sum(np.asarray(precision)[first[reached]]) / 101)


def ap_coco_mean_of_reached(recall, precision):
    env = precision_envelope(precision)
    first = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    reached = first < len(recall)
    return float(env[first[reached]].mean()) if reached.any() else 0.0


def stub(*args, **kwargs):
    raise NotImplementedError("implement this: the body of stub(), then run the check below")


RIGHT = {
    "box_iou": [iou_matrix, lambda boxes1, boxes2: tvo.box_iou(torch.tensor(boxes1), torch.tensor(boxes2))],
    "giou": [giou_matrix, lambda boxes1, boxes2: tvo.generalized_box_iou(torch.tensor(boxes1), torch.tensor(boxes2))],
    "nms": [nms_by_hand, nms_offset, greedy_nms,
            lambda boxes, scores, iou_threshold, classes: tvo.batched_nms(
                torch.tensor(boxes), torch.tensor(scores), torch.tensor(classes), iou_threshold).tolist()],
    "envelope": [precision_envelope, labkit_envelope],
    "ap_area": [ap_area, lambda recall, precision: ap_from_pr(recall, precision, "voc")],
    "ap_coco": [ap_coco, lambda recall, precision: ap_from_pr(recall, precision, "coco")],
}

# (checker, wrong function, words the first failure must contain)
WRONG = [
    ("box_iou", iou_unclamped, "clamp the intersection"),
    ("box_iou", lambda boxes1, boxes2: iou_matrix(boxes2, boxes1), "expected: array"),
    ("giou", iou_matrix, "that is plain IoU"),
    ("nms", nms_agnostic, "must be class-wise"),
    ("nms", nms_greater_equal, "strictly greater"),
    ("nms", nms_index_order, "most confident first"),
    ("envelope", envelope_from_left, "from the *left*"),
    ("ap_area", ap_area_no_envelope, "take the envelope first"),
    ("ap_coco", ap_coco_no_envelope, "take the precision envelope first"),
    ("ap_coco", ap_coco_mean_of_reached, "divide by 101"),
    ("ap_coco", ap_area, "exact area under the envelope"),
]


def test_the_checkers_are_found_by_name():
    for name in RIGHT:
        assert getattr(check, name) is getattr(D, name)


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_checker_passes_right_answers_on_fresh_cases(name, capsys):
    for fn in RIGHT[name]:
        for seed in (0, 1, None):
            report = getattr(check, name)(fn, seed=seed)
            assert report, report.message
            assert report.passed == report.total == 20
    out = capsys.readouterr().out.splitlines()
    assert len(set(out)) == 1 and out[0].startswith(f"check {name}: ✓ 20/20 random cases match")  # deterministic


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_checker_reports_a_stub_as_not_implemented(name):
    report = getattr(check, name)(stub, show=False)
    assert not report and "not implemented" in report.message


@pytest.mark.parametrize("name,fn,words", WRONG, ids=[f"{n}-{getattr(f, '__name__', 'lambda')}" for n, f, _ in WRONG])
def test_checker_fails_on_a_plausible_wrong_answer(name, fn, words):
    for seed in (0, 1, 2):
        report = getattr(check, name)(fn, seed=seed, show=False)
        assert not report, f"seed {seed}: {report.message}"
        assert report.seed == seed and f"seed={seed}" in report.message
        first = report.failures[0]
        assert first.startswith("case ") and "expected" in first, first
    assert any(words in f for f in report.failures), report.message


def test_nms_checker_names_the_case_expected_and_got():
    report = check.nms(nms_agnostic, seed=0, show=False)
    first = report.failures[0]
    assert "case 4 of 20" in first  # identical boxes of different classes: both stay
    assert "kept [0], expected [0, 1]" in first and "box 1 (class 1) was dropped" in first


def test_nms_checker_accepts_any_valid_order_of_tied_boxes():
    """Tied scores: greedy NMS may visit either box first; a valid result with the higher index first passes."""
    def ties_higher_index_first(boxes, scores, iou_threshold, classes):
        order = np.lexsort((-np.arange(len(scores)), -scores))  # by score, ties: higher index first
        keep = greedy_nms(boxes[order], scores[order], iou_threshold, classes[order])
        return order[keep]

    assert check.nms(ties_higher_index_first, seed=0, show=False)


def test_checkers_are_fast():
    import time

    for name, fns in RIGHT.items():
        getattr(check, name)(fns[0], seed=0, show=False)  # warm up the imports
        t = time.perf_counter()
        getattr(check, name)(fns[0], show=False)
        assert time.perf_counter() - t < 2.0, name
