"""Seed test for notebook 05: its lesson experiments, rerun through labkit's functions on seeds 0, 1 and 2, must
give every verdict the notebook prints as True (the notebook's default settings; the YOLOv8 training of section 8
is not rerun here: it is the slow part, and its verdicts compare two computations on the same boxes).

Mutations each test was checked against (mutated in a scratch copy of labkit, run, reverted):
* ``test_iou_family_verdicts``: CIoU without its aspect term (``labkit.boxes._iou_core`` returning DIoU for
  "ciou"); GIoU with the union in place of the enclosing area — one verdict turns False each.
* ``test_slide_curve_corner``: VOC's "+1 pixel" in widths and heights (areas) — the slopes leave ±2/w.
* ``test_conventions_verdict``: COCO sampling the envelope at 11 recall points instead of 101
  (``REC_THRESHOLDS`` in ``labkit/metrics/ap.py``, which the engine imports, set to 11 points; rerun after the
  metrics package split: seeds 0, 1 and 2 fail).
* ``test_nms_verdicts``: ``labkit.nms.apply_nms`` ignoring ``class_agnostic``, or returning its input unchanged.
* ``test_nms_by_hand_vs_torchvision``: see ``tests/test_nms.py`` (">" -> ">=", reversed tie order, classes ignored).
* ``test_id_quirk``: labkit before commit 72717e3, which copied pycocotools' id-0 behaviour (0.2525).
"""

import numpy as np
import pytest

from labkit import metrics_lessons as L
from labkit import nms as N

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)


def test_iou_family_verdicts():
    f = L.iou_family_table()
    near, far = f["disjoint, near"], f["disjoint, far"]
    assert near["iou"] == far["iou"] == 0 and near["giou"] > far["giou"]
    cen, cor, flat = f["inside, centred"], f["inside, in a corner"], f["inside, centred, flat"]
    assert abs(cen["iou"] - cor["iou"]) < 1e-9 and abs(cen["giou"] - cor["giou"]) < 1e-9 and cen["diou"] > cor["diou"]
    assert all(abs(cen[k] - flat[k]) < 1e-9 for k in ("iou", "giou", "diou")) and cen["ciou"] > flat["ciou"]
    main = f["wide A, tall B, off-centre"]  # all four visibly different (at 2 decimals)
    assert len({round(v, 2) for v in main.values()}) == 4


def test_slide_curve_corner():
    sc = L.slide_curve(box=(10.0, 10.0, 60.0, 50.0))
    w = sc["width"]
    assert sc["slope_left"] > 0 > sc["slope_right"]
    assert abs(sc["slope_left"] - 2 / w) < 1e-5 and abs(sc["slope_right"] + 2 / w) < 1e-5
    assert sc["iou_slope_beyond"] == 0 and sc["giou_slope_beyond"] < 0
    assert abs(sc["shift_at_half"] - w / 3) <= 0.5  # IoU = 0.5 at |s| = w/3, on the 0.5-px grid


@pytest.mark.parametrize("seed", SEEDS)
def test_conventions_verdict(seed):
    r = L.conventions_experiment(seed)
    ap = r["ap50"]
    dev_coco = np.mean([abs(ap["coco"][c] - ap["voc"][c]) for c in ap["voc"]])
    dev_07 = np.mean([abs(ap["voc07"][c] - ap["voc"][c]) for c in ap["voc"]])
    assert dev_coco + 1e-9 < dev_07, (seed, dev_coco, dev_07)  # margin: float noise when both sample alike


@pytest.mark.parametrize("seed", SEEDS)
def test_nms_verdicts(seed):
    nx = N.nms_experiment(seed)
    m, rec = nx["map50"], nx["recall"]
    assert m[0.5] > m[None]                                  # NMS raises mAP50
    assert rec[0.1] < rec[0.5] and m[0.1] < m[0.5]          # too low: crowded neighbours suppressed
    assert m[0.9] < m[0.5]                                   # too high: duplicates let through
    cw, ag = nx["classwise"], nx["agnostic"]
    assert ag["wrong_class_kept"] < cw["wrong_class_kept"]   # agnostic removes wrong-class copies
    assert ag["cross_pairs_found"] < cw["cross_pairs_found"]  # ... and loses overlapping objects of other classes
    st = N.overlap_stats(nx)                                 # the design the reading relies on
    assert st["same"][1] < 0.5 < st["dup_q"][0] and st["cross"][0] > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_nms_by_hand_vs_torchvision(seed):
    for ties in (False, True):
        r = N.compare_with_torchvision(N.greedy_nms, n_cases=30, seed=seed, ties=ties, sizes=(1, 120))
        assert r["agnostic_equal"] == r["classwise_equal"] == r["valid"] == r["cases"] == 30


def test_id_quirk():
    q = L.id_quirk_experiment(((0, 1), (1, 2)))
    assert q[(0, 1)]["pycocotools"] < q[(1, 2)]["pycocotools"] == 1.0
    assert abs(q[(0, 1)]["pycocotools"] - 51 * 0.5 / 101) < 1e-12
    assert q[(0, 1)]["labkit"] == q[(1, 2)]["labkit"] == q[(0, 1)]["by_hand"] == 1.0
