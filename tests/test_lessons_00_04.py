"""Seed tests for notebooks 00 and 04: their lesson experiments, rerun through labkit's functions on seeds 0, 1 and 2
with the notebooks' default parameters (read from their ``parameters`` cells), must give every verdict the notebooks
print as True.

The YOLOv5 matching rule is also checked by hand (not slow). Mutations each test was checked against (mutate, run,
revert):

* ``test_yolov5_match_by_hand``: the ratio without its reciprocal (``torch.max(r, 1 / r)`` -> ``r``) lets an 8x8 box
  match the 62x45 anchor; ``< anchor_t`` -> ``<= 3`` drops the 16x30 anchor.
* ``test_yolov5_positives_by_hand``: no neighbour cells (``cells = 1``) gives 6 instead of 18; dropping the
  ``gxy > 1`` edge test gives the corner box 2 cells instead of 1.
* ``test_c2f_gradient_verdicts``: C2f concatenating only its last bottleneck output (like C3) fails on every seed;
  comparing C3 with shortcuts against C2f without and vice versa (the first notebook's plot) fails on seeds 1 and 2.
* ``test_anchor_verdict``: ``yolov5_match`` with ``anchor_t = 8`` lets a box match every anchor: fails on every seed.
* ``test_overfit_verdict``: ``opt.step()`` removed from ``overfit_batch`` -> the terms do not fall.
* ``test_smoke_training_learns``: not a code mutation but the step count it guards: the first version's parameters
  (64 images at 128 px, 5 epochs: 5 optimizer steps) gave mAP50 = 0 (issue 13), and the default runs' own
  per-epoch mAP50 after 5 of their 15 epochs was below 0.5 on all three seeds (0.48, 0.04, 0.27 in results.csv), so a
  ``smoke_train`` that stopped early would fail. Ultralytics' nbs/warm-up/mosaic defaults do *not* fail it at these
  settings (seed 0: mAP50 0.76 with nbs 64, warm-up 3 and mosaic 1; 0.60 with nbs 64 alone).
  It trains YOLOv8n three times at the notebook's defaults: the whole slow part of this file took 11 min on the
  shared machine under load (load average about 15); idle, expect a few minutes, more than the other lesson files (each run is the notebook's whole <= 60 s training budget; smaller settings would no longer
  test the notebook's claim).
"""
from pathlib import Path

import pytest
import torch

from labkit.data.synthetic import make_shapes
from labkit.runner import notebook_parameters
from labkit.yolov8 import lessons as L

SEEDS = (0, 1, 2)
NB = Path(__file__).resolve().parent.parent / "notebooks"


def _defaults(stem: str) -> dict:
    """The default values of a notebook's parameters cell (Python literals)."""
    import ast

    return {k: ast.literal_eval(v["default"]) for k, v in notebook_parameters(NB / f"{stem}.ipynb").items()}


def test_yolov5_match_by_hand():
    m = L.yolov5_match(torch.tensor([[8.0, 8.0], [16.0, 30.0]]))
    # 8x8: 10x13 (ratios 1.25, 1.63) and 16x30 (2, 3.75) pass; 33x23 (4.1) and every larger anchor fail
    assert m[0].tolist() == [[True, True, False], [False] * 3, [False] * 3]
    # 16x30: all of P3 and P4 (59x119: 3.69, 3.97 < 4), none of P5 (116/16 = 7.25)
    assert m[1].tolist() == [[True] * 3, [True] * 3, [False] * 3]


def test_yolov5_positives_by_hand():
    # a 16x30 box centred at (19, 21) in a 64-px image:
    # P3 (grid 8): x 2.375 -> left neighbour, y 2.625 -> lower neighbour (8 - 2.625 = 5.375): 3 cells x 3 anchors
    # P4 (grid 4): x 1.19, y 1.31 -> left and upper neighbours: 3 cells x 3 anchors; P5: no anchor fits -> 0
    box = torch.tensor([[19.0, 21.0, 16.0, 30.0]])
    assert L.yolov5_positives(box, 64).tolist() == [18]
    # at a corner, (3, 3): P3 x = y = 0.375 but no cell on the left/top -> 1 cell x 2 anchors (8x8: 10x13, 16x30)
    assert L.yolov5_positives(torch.tensor([[3.0, 3.0, 8.0, 8.0]]), 64).tolist() == [2]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_c2f_gradient_verdicts(seed):
    les = L.c2f_gradient_lesson(seed=seed)
    assert les["fades_in_c3_not_c2f"], les["first_over_last"]
    assert les["c2f_early_gets_more"], les["first_over_last"]


def test_c2f_heavier_than_c3():
    from labkit.yolov8 import C2f, C3, count_params

    # the notebook's verdict (c = 64, n = 2): the source's "C2f is lighter" is wrong at the same depth
    assert count_params(C2f(64, 64, 2, shortcut=True)) > count_params(C3(64, 64, 2, shortcut=True))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_anchor_verdict(seed):
    p = _defaults("04_yolov8_architecture")
    imgsz, bs = p["IMGSZ"], p["BATCH"]
    ds = make_shapes(n_train=max(bs, 8), n_val=4, imgsz=imgsz, seed=seed)
    al = L.anchor_lesson(ds.images("train")[:bs], imgsz, len(ds.classes), seed=seed)
    assert al["unused_anchors"], al["anchor_matches"]
    assert int(al["tal_positives"].min()) >= 1
    assert al["v5_predictions"] == 3 * al["v8_predictions"]
    assert len(al["tal_positives"]) == len(al["v5_positives"]) == al["boxes"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_overfit_verdict(seed):
    from ultralytics.nn.tasks import DetectionModel

    import labkit.yolov8 as Y
    from labkit.yolov8.viz import load_yolo_batch

    p = _defaults("04_yolov8_architecture")
    ds = make_shapes(n_train=max(p["BATCH"], 8), n_val=4, imgsz=p["IMGSZ"], seed=seed)
    x, batch = load_yolo_batch(ds.images("train")[:p["BATCH"]], imgsz=p["IMGSZ"])
    torch.manual_seed(seed)
    umodel = DetectionModel("yolov8n.yaml", nc=len(ds.classes), verbose=False)
    torch.manual_seed(seed)
    net = Y.from_ultralytics(umodel).train()
    net.init_biases(p["IMGSZ"])
    hist = L.overfit_batch(net, Y.DetectionLoss.for_model(net), x, batch, p["TRAIN_STEPS"], p["LR"], progress=False)
    assert all(b < a for a, b in zip(hist[0], hist[-1])), (hist[0], hist[-1])


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_smoke_training_learns(seed, tmp_path):
    from labkit.yolov8.smoke import smoke_train

    p = _defaults("00_setup_and_tour")
    ds = make_shapes(n_train=p["N_TRAIN"], n_val=p["N_VAL"], imgsz=p["IMGSZ"], seed=seed)
    _, metrics = smoke_train(ds.yolo_yaml, p["EPOCHS"], p["IMGSZ"], p["BATCH"], seed=seed, device="cpu",
                             project=tmp_path, name="smoke", model=p["MODEL"], plots=False, progress=False,
                             lr0=p["LR0"])
    assert metrics.box.map50 >= 0.5, metrics.box.map50
