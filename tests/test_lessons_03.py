"""Notebook 03's lessons hold on every seed: its experiments rerun through ``labkit.yolov1.lessons`` on seeds 0, 1, 2,
asserting each verdict the notebook prints.

Settings: the tiny-set probes (paper's loss vs the source's loss) run exactly as in the notebook (16 images,
80 steps each). The notebook's training (1400 images, 10 epochs: ~880 steps, ~150 s) is too slow for three
seeds here, so the training lessons run on a reduced setting: 400 images, 5 epochs (125 steps). The loss-curve
verdicts keep the notebook's thresholds; at 1/7 of the steps the held-out mAP50 is far lower (about 0.04-0.09
measured on seeds 0 and 1, against a baseline of at most 0.001), so the detector verdict is asserted with a
margin of 0.02 instead of the notebook's 0.3: the test checks that the detector has learned *something* the
baseline cannot, the notebook that it has learned a lot.
"""
import numpy as np
import pytest

import keras  # noqa: E402  (hard dependencies: a broken install fails, never skips)
import tensorflow as tf  # noqa: E402

from labkit import metrics  # noqa: E402
from labkit.data.synthetic import make_shapes  # noqa: E402
from labkit.yolov1 import infer as yinfer  # noqa: E402
from labkit.yolov1 import lessons as L  # noqa: E402
from labkit.yolov1 import model as ymodel  # noqa: E402
from labkit.yolov1 import train as ytrain  # noqa: E402
from labkit.yolov1.data import make_dataset  # noqa: E402
from labkit.yolov1.voc import read_voc  # noqa: E402

SEEDS = (0, 1, 2)
SHAPES = dict(n_classes=3, max_objects=2, min_size=0.25, max_size=0.6, imgsz=112)  # the notebook's data


def _shapes(seed, n_train, n_val, n_test):
    sh = make_shapes(n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, **SHAPES)
    tr = read_voc(sh.voc_root, "train", verbose=False)
    return (tr, read_voc(sh.voc_root, "val", classes=tr.classes, verbose=False),
            read_voc(sh.voc_root, "test", classes=tr.classes, verbose=False))


def _failed(verdicts):
    return [(c, d) for c, ok, d in verdicts if not ok]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_tiny_set_paper_loss_memorizes_source_loss_does_not(seed, labkit_home):
    """Catches: a loss that ignores a term or the responsible predictor (the paper probe stops memorizing), and
    a 'fixed' source loss (e.g. training box 2 or the class slice: its verdicts flip)."""
    tr, _, _ = _shapes(seed, 64, 4, 4)
    kw = dict(n_images=16, steps=80, seed=seed, width=12, head="conv", dropout=0.0)
    paper, source = L.overfit_tiny(tr, loss="paper", **kw), L.overfit_tiny(tr, loss="source", **kw)
    verdicts = L.probe_verdicts(paper, source)
    assert len(verdicts) == 5 and not _failed(verdicts), _failed(verdicts)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_training_lessons_short_run(seed, labkit_home):
    """Loss curves per term, and the trained detector against the prior-box baseline (reduced run, see above)."""
    tr, va, te = _shapes(seed, 400, 50, 50)
    C = len(tr.classes)
    train_ds = make_dataset(tr, 112, 7, 2, C, batch_size=16, training=True, augment=True, seed=seed)
    val_ds = make_dataset(va, 112, 7, 2, C, batch_size=16, training=False)
    keras.utils.set_random_seed(seed)
    m = ymodel.build_yolov1(7, 2, C, 112, width=12, head="conv", dropout=0.0)
    ytrain.compile_model(m, 7, 2, C, ytrain.paper_schedule(len(train_ds), 5, base_lr=4e-3, warmup_start=4e-4),
                         "adam", jit_compile=False)
    m, hist = ytrain.fit(m, train_ds, val_ds, epochs=5, run_dir=labkit_home / "y1", resume=False, progress=False)
    verdicts = L.loss_curve_verdicts(hist)
    dets = yinfer.predict(m, te, S=7, B=2, conf_thresh=0.01)
    res = metrics.evaluate(te.ground_truth(), dets, convention="voc07", class_names=list(tr.classes))
    base = metrics.evaluate(te.ground_truth(), L.prior_box_baseline(tr, te), convention="voc07",
                            class_names=list(tr.classes))
    verdicts.append(L.detector_verdict(res.map50, base.map50, margin=0.02))
    assert len(verdicts) == 4 and not _failed(verdicts), _failed(verdicts)


def test_prior_box_baseline_is_weak_and_well_formed(labkit_home):
    """The baseline predicts each class's mean box on every image; an oracle gets 1.0, the baseline far less.
    Catches a baseline that leaks the test boxes (it would score like the oracle)."""
    tr, _, te = _shapes(0, 64, 4, 16)
    dets = L.prior_box_baseline(tr, te)
    assert len(dets) == len(te.records)
    assert all(len(d["boxes"]) == len(tr.classes) == len(d["scores"]) for d in dets)
    np.testing.assert_allclose(dets[0]["scores"].sum(), 1.0, rtol=1e-6)
    gts = te.ground_truth()
    base = metrics.evaluate(gts, dets, convention="voc07", class_names=list(tr.classes)).map50
    oracle = [{"boxes": g["boxes"], "scores": np.ones(len(g["boxes"])), "labels": g["labels"]} for g in gts]
    assert metrics.evaluate(gts, oracle, convention="voc07", class_names=list(tr.classes)).map50 == pytest.approx(1.0)
    assert base < 0.2


def test_grid_diagnostics_on_hand_made_grids():
    """A perfect prediction: class accuracy 1, confidence - IoU = 0; an untrained second box shows in empty cells.
    Catches a diagnostic that reads the wrong slot or the wrong class slice."""
    from labkit.yolov1.encode import encode_targets

    S, B, C = 7, 2, 3
    t = encode_targets(np.array([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.8]]), [2, 0], S, B, C)[None]
    p = t.copy()
    p[..., 9] = np.where(t[..., 4] > 0, 1.0, 0.7)  # box 2's confidence: 0.7 in every empty cell
    p[..., 4] = np.where(t[..., 4] > 0, 1.0, 0.0)
    d = L.grid_diagnostics(p, t, S, B, C)
    assert d["class_acc"] == 1.0 and d["conf_minus_iou"] == pytest.approx(0.0, abs=1e-6)
    assert d["box_conf_empty"] == pytest.approx([0.0, 0.7])
    p[..., B * 5:] = np.roll(t[..., B * 5:], 1, axis=-1)  # every class wrong
    assert L.grid_diagnostics(p, t, S, B, C)["class_acc"] == 0.0
