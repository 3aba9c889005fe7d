"""YOLOv1 model, LR schedule, training with checkpoints + resume, and evaluation through labkit.metrics."""
import json

import numpy as np
import pytest

import keras  # hard dependencies: a broken install fails, never skips
import tensorflow as tf

from labkit.yolov1.encode import encode_targets  # noqa: E402
from labkit.yolov1.model import YoloOutput, build_yolov1  # noqa: E402
from labkit.yolov1.train import WarmupStepSchedule, compile_model, fit, paper_schedule  # noqa: E402
from labkit.yolov1.voc import read_voc  # noqa: E402
from yolov1_helpers import make_voc  # noqa: E402


@pytest.mark.parametrize("head", ["conv", "dense"])
def test_model_shapes_and_output_ranges(head):
    m = build_yolov1(S=7, B=2, C=3, imgsz=56, head=head, width=4, head_units=32)
    y = m(np.random.default_rng(0).uniform(0, 1, (2, 56, 56, 3)).astype(np.float32), training=False).numpy()
    assert y.shape == (2, 7, 7, 13)
    box = y[..., :10].reshape(2, 7, 7, 2, 5)
    assert ((box >= 0) & (box <= 1)).all()  # sigmoid x, y, conf; sigmoid^2 w, h
    np.testing.assert_allclose(y[..., 10:].sum(-1), 1.0, atol=1e-5)  # softmax over classes
    acts = [l for l in m.layers if isinstance(l, keras.layers.LeakyReLU)]
    assert acts and all(abs(a.negative_slope - 0.1) < 1e-9 for a in acts)
    assert any(isinstance(l, keras.layers.Dropout) for l in m.layers)


def test_yolo_output_matches_manual_activation():
    S, B, C = 2, 2, 3
    raw = np.random.default_rng(1).normal(size=(1, S, S, B * 5 + C)).astype(np.float32)
    out = YoloOutput(S, B, C)(raw).numpy()
    sig = 1 / (1 + np.exp(-raw))
    for b in range(B):
        np.testing.assert_allclose(out[..., 5 * b:5 * b + 2], sig[..., 5 * b:5 * b + 2], rtol=1e-5)
        np.testing.assert_allclose(out[..., 5 * b + 2:5 * b + 4], sig[..., 5 * b + 2:5 * b + 4] ** 2, rtol=1e-5)
        np.testing.assert_allclose(out[..., 5 * b + 4], sig[..., 5 * b + 4], rtol=1e-5)
    e = np.exp(raw[..., 10:] - raw[..., 10:].max(-1, keepdims=True))
    np.testing.assert_allclose(out[..., 10:], e / e.sum(-1, keepdims=True), rtol=1e-5)


def test_resnet50_offline_gives_one_notice_and_random_init(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights there
    m = build_yolov1(S=2, B=1, C=2, imgsz=64, backbone="resnet50", head="conv")
    out = capsys.readouterr().out
    assert out.count("Notice") == 1 and "random init" in out
    assert m.output_shape == (None, 2, 2, 7)


def test_warmup_step_schedule():
    s = WarmupStepSchedule(base_lr=1e-2, warmup_steps=10, warmup_start=1e-3, boundaries=[20, 30], factors=[0.1, 0.01])
    lr = [float(s(i)) for i in (0, 5, 10, 19, 20, 29, 30, 100)]
    np.testing.assert_allclose(lr, [1e-3, 5.5e-3, 1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-4], rtol=1e-5)
    # the paper: 1e-2 for 75 epochs, 1e-3 for 30, 1e-4 for 30 (135 in all); catches the old 105/135, 120/135
    p = paper_schedule(steps_per_epoch=10, epochs=135)
    assert p.boundaries == [750, 1050] and p.warmup_steps == 10
    lr = [float(p(i)) for i in (749, 750, 1049, 1050)]
    np.testing.assert_allclose(lr, [1e-2, 1e-3, 1e-3, 1e-4], rtol=1e-5)
    # scaled to 27 epochs: the same proportions (15 + 6 + 6 epochs)
    assert paper_schedule(steps_per_epoch=4, epochs=27).boundaries == [60, 84]
    assert WarmupStepSchedule.from_config(s.get_config()).get_config() == s.get_config()


def _tiny(tmp_path):
    root, _ = make_voc(tmp_path / "VOC", n=8, size=(56, 56))
    tr = read_voc(root, "trainval", verbose=False)
    from labkit.yolov1.data import make_dataset
    ds = make_dataset(tr, imgsz=56, S=7, B=2, batch_size=4, training=False)
    return tr, ds


def test_fit_checkpoint_and_resume(tmp_path):
    keras.utils.set_random_seed(0)
    tr, ds = _tiny(tmp_path)
    C = len(tr.classes)
    run = tmp_path / "run"

    def new():
        m = build_yolov1(S=7, B=2, C=C, imgsz=56, width=4)
        return compile_model(m, 7, 2, C, WarmupStepSchedule(1e-3, 2, 1e-4, [4], [0.1]), jit_compile=False)

    m, h = fit(new(), ds, ds, epochs=2, run_dir=run, resume=False, progress=False)
    assert len(h["loss"]) == 2 and {"coord_loss", "obj_loss", "noobj_loss", "class_loss", "val_loss"} <= set(h)
    assert json.loads((run / "state.json").read_text()) == {"epoch": 2}
    assert (run / "last.keras").is_file() and (run / "best.keras").is_file()
    # the checkpoint holds the weights and the optimizer state
    saved = keras.models.load_model(run / "last.keras")
    for a, b in zip(saved.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(saved.optimizer.iterations) == int(m.optimizer.iterations) == 4
    # resume: a fresh model object is replaced by the checkpoint and training goes on at epoch 3
    m2, h2 = fit(new(), ds, ds, epochs=3, run_dir=run, resume=True, progress=False)
    assert len(h2["loss"]) == 3 and h2["epoch"].tolist() == [0, 1, 2]
    assert int(m2.optimizer.iterations) == 6
    assert float(m2.optimizer.learning_rate) == pytest.approx(1e-4)  # the schedule continued past step 4
    # asking for no more epochs than done is a no-op
    _, h3 = fit(new(), ds, ds, epochs=3, run_dir=run, resume=True, progress=False)
    assert len(h3["loss"]) == 3


def test_overfits_a_tiny_set(tmp_path):
    """The classic sanity check: on 8 images the loss must fall far below where it starts."""
    keras.utils.set_random_seed(0)
    tr, ds = _tiny(tmp_path)
    C = len(tr.classes)
    m = compile_model(build_yolov1(S=7, B=2, C=C, imgsz=56, width=8, dropout=0.0), 7, 2, C,
                      WarmupStepSchedule(3e-3), jit_compile=False)
    first = m.evaluate(ds, verbose=0, return_dict=True)["loss"]
    m.fit(ds.repeat(15), epochs=1, verbose=0, shuffle=False)
    last = m.evaluate(ds, verbose=0, return_dict=True)["loss"]
    assert last < 0.4 * first, (first, last)


def test_evaluate_with_an_oracle_gives_perfect_map(tmp_path):
    from labkit import metrics
    from labkit.yolov1.infer import evaluate, predict

    tr, _ = _tiny(tmp_path)
    C = len(tr.classes)
    targets = []
    for r in tr.records:  # only non-difficult objects; VOC evaluation ignores difficult ones
        keep = ~r.difficult
        targets.append(encode_targets(r.boxes[keep] / np.array([r.width, r.height] * 2, np.float32),
                                      r.labels[keep], 7, 2, C))
    targets = np.stack(targets)

    class Oracle:
        input_shape = (None, 56, 56, 3)
        i = 0

        def __call__(self, x, training=False):
            n = int(x.shape[0])
            out = targets[self.i:self.i + n]
            self.i += n
            return out

    dets = predict(Oracle(), tr, conf_thresh=0.5)
    assert sum(len(d["boxes"]) for d in dets) == int(targets[..., 4].sum())
    res, _ = evaluate(Oracle(), tr)
    assert res.map50 == pytest.approx(1.0)
    # the same detections scored by labkit.metrics directly
    direct = metrics.evaluate(tr.ground_truth(), dets, convention="voc07")
    assert direct.map50 == pytest.approx(1.0)
