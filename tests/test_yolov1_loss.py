"""YOLOv1 loss: hand-computed cases (B=1, B=2, several C) and a loop-by-loop reference of eq. (3)."""
import itertools

import numpy as np
import pytest

import tensorflow as tf  # a hard dependency: a broken install fails, never skips

from labkit.yolov1.loss import YoloLoss, YoloLossTerm, source_loss, yolo_loss_terms  # noqa: E402


def _terms(yt, yp, **kw):
    out = yolo_loss_terms(np.asarray(yt, np.float32)[None], np.asarray(yp, np.float32)[None], **kw)
    return {k: float(v.numpy()[0]) for k, v in out.items()}


def test_hand_computed_B1_C1_single_cell():
    # S=1, B=1, C=1.  GT: centre (0.5, 0.5), w=0.25, h=0.36 -> x in [0.375, 0.625], y in [0.32, 0.68]
    # prediction: centre (0.4, 0.7), w=0.16, h=0.49 -> x in [0.32, 0.48], y in [0.455, 0.945], conf 0.8
    yt = np.array([[[0.5, 0.5, 0.25, 0.36, 1.0, 1.0]]])
    yp = np.array([[[0.4, 0.7, 0.16, 0.49, 0.8, 1.0]]])
    inter = (0.48 - 0.375) * (0.68 - 0.455)  # 0.105 * 0.225
    iou = inter / (0.25 * 0.36 + 0.16 * 0.49 - inter)
    t = _terms(yt, yp, S=1, B=1, C=1)
    # coord: 5 * [(0.4-0.5)^2 + (0.7-0.5)^2 + (sqrt(.16)-sqrt(.25))^2 + (sqrt(.49)-sqrt(.36))^2]
    assert t["coord"] == pytest.approx(5 * (0.01 + 0.04 + 0.01 + 0.01), abs=1e-5)
    assert t["obj"] == pytest.approx((0.8 - iou) ** 2, abs=1e-6)  # confidence target = IoU
    assert t["noobj"] == pytest.approx(0.0, abs=1e-7)
    assert t["class"] == pytest.approx(0.0, abs=1e-7)
    assert t["total"] == pytest.approx(0.35 + (0.8 - iou) ** 2, abs=1e-5)
    t1 = _terms(yt, yp, S=1, B=1, C=1, conf_target="one")
    assert t1["obj"] == pytest.approx((0.8 - 1.0) ** 2, abs=1e-6)


def test_hand_computed_B2_C3_responsible_is_highest_iou():
    # S=2, B=2, C=3; one object in cell (row 0, col 1), class 2, box x=.5,y=.5 (cell units), w=h=.4
    S, B, C = 2, 2, 3
    yt = np.zeros((S, S, B * 5 + C))
    yt[0, 1, :10] = [0.5, 0.5, 0.4, 0.4, 1.0] * 2
    yt[0, 1, 10 + 2] = 1.0
    yp = np.zeros((S, S, B * 5 + C))
    # predictor 0: far off (IoU 0); predictor 1: same centre, w=h=0.04 -> IoU = 0.04^2/0.4^2 = 0.01
    yp[0, 1, 0:5] = [0.0, 0.0, 0.01, 0.01, 0.9]
    yp[0, 1, 5:10] = [0.5, 0.5, 0.04, 0.04, 0.6]
    yp[0, 1, 10:] = [0.2, 0.3, 0.5]
    yp[1, 0, 4] = 0.3   # empty cell, predictor 0
    yp[1, 1, 9] = 0.2   # empty cell, predictor 1
    yp[1, 1, 10:] = [1.0, 0.0, 0.0]  # class output of an empty cell: no class loss
    t = _terms(yt, yp, S=S, B=B, C=C)
    # responsible = predictor 1: coord = 5 * [0 + 0 + 2 * (sqrt(.04) - sqrt(.4))^2]
    assert t["coord"] == pytest.approx(5 * 2 * (0.2 - np.sqrt(0.4)) ** 2, abs=1e-5)
    assert t["obj"] == pytest.approx((0.6 - 0.01) ** 2, abs=1e-6)
    # no-object: the non-responsible predictor of the object cell (0.9) + both empty-cell predictors
    assert t["noobj"] == pytest.approx(0.5 * (0.9 ** 2 + 0.3 ** 2 + 0.2 ** 2), abs=1e-6)
    assert t["class"] == pytest.approx(0.2 ** 2 + 0.3 ** 2 + 0.5 ** 2, abs=1e-6)

    # swap the predictors: now predictor 0 is responsible and the penalties move with it
    yp2 = yp.copy()
    yp2[0, 1, 0:5], yp2[0, 1, 5:10] = yp[0, 1, 5:10], yp[0, 1, 0:5]
    t2 = _terms(yt, yp2, S=S, B=B, C=C)
    for k in ("coord", "obj", "noobj", "class"):
        assert t2[k] == pytest.approx(t[k], abs=1e-6)


def test_tie_goes_to_first_predictor_and_lambdas_scale():
    S, B, C = 1, 2, 2
    yt = np.array([[[0.5, 0.5, 0.2, 0.2, 1, 0.5, 0.5, 0.2, 0.2, 1, 1, 0]]], float)
    yp = np.array([[[0.0, 0.0, 0.0, 0.0, 0.7, 1.0, 1.0, 0.0, 0.0, 0.4, 0.5, 0.5]]], float)  # both IoU 0
    t = _terms(yt, yp, S=S, B=B, C=C, lambda_coord=2.0, lambda_noobj=0.25)
    # predictor 0 responsible; its IoU is 0 -> conf target 0.  (sqrt(w + 1e-9) at w = 0: ~3e-5 off)
    assert t["coord"] == pytest.approx(2.0 * (0.25 + 0.25 + 0.2 + 0.2), abs=5e-4)
    assert t["obj"] == pytest.approx(0.7 ** 2, abs=1e-6)
    assert t["noobj"] == pytest.approx(0.25 * 0.4 ** 2, abs=1e-6)
    assert t["class"] == pytest.approx(0.25 + 0.25, abs=1e-6)


def _reference_loss(yt, yp, S, B, C, lc=5.0, ln=0.5):
    """Eq. (3) of the paper written with plain Python loops (independent of the TF code)."""
    tot = {"coord": 0.0, "obj": 0.0, "noobj": 0.0, "class": 0.0}
    for i, j in itertools.product(range(S), range(S)):
        cell_t, cell_p = yt[i, j], yp[i, j]
        has = cell_t[4] > 0.5
        gx, gy, gw, gh = cell_t[0:4]
        ious = []
        for b in range(B):
            px, py, pw, ph = cell_p[5 * b:5 * b + 4]
            ax1, ax2 = (j + px) / S - pw / 2, (j + px) / S + pw / 2
            ay1, ay2 = (i + py) / S - ph / 2, (i + py) / S + ph / 2
            bx1, bx2 = (j + gx) / S - gw / 2, (j + gx) / S + gw / 2
            by1, by2 = (i + gy) / S - gh / 2, (i + gy) / S + gh / 2
            inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
            union = pw * ph + gw * gh - inter
            ious.append(inter / union if union > 0 else 0.0)
        r = int(np.argmax(ious)) if has else -1
        for b in range(B):
            px, py, pw, ph, pc = cell_p[5 * b:5 * b + 5]
            if b == r:
                tot["coord"] += lc * ((px - gx) ** 2 + (py - gy) ** 2 + (np.sqrt(pw) - np.sqrt(gw)) ** 2
                                      + (np.sqrt(ph) - np.sqrt(gh)) ** 2)
                tot["obj"] += (pc - ious[b]) ** 2
            else:
                tot["noobj"] += ln * pc ** 2
        if has:
            tot["class"] += float(np.sum((cell_p[B * 5:] - cell_t[B * 5:]) ** 2))
    return tot


@pytest.mark.parametrize("S,B,C", [(3, 2, 4), (2, 1, 1), (4, 3, 2), (7, 2, 20)])
def test_matches_loop_reference_on_random_batches(S, B, C):
    from labkit.yolov1.encode import encode_targets

    rng = np.random.default_rng(S * 100 + B * 10 + C)
    yts, yps = [], []
    for _ in range(3):
        n = int(rng.integers(0, 4))
        c = rng.uniform(0.15, 0.85, (n, 2))
        wh = rng.uniform(0.05, 0.3, (n, 2))
        boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
        yts.append(encode_targets(boxes, rng.integers(0, C, n), S, B, C))
        yp = rng.uniform(0, 1, (S, S, B * 5 + C)).astype(np.float32)
        yp[..., B * 5:] /= yp[..., B * 5:].sum(-1, keepdims=True)
        yps.append(yp)
    yt, yp = np.stack(yts), np.stack(yps)
    got = yolo_loss_terms(yt, yp, S, B, C)
    for k in range(3):
        ref = _reference_loss(yt[k].astype(np.float64), yp[k].astype(np.float64), S, B, C)
        for term, v in ref.items():
            assert float(got[term][k]) == pytest.approx(v, rel=1e-4, abs=1e-5), (term, k)
    # the Keras loss averages the per-image totals over the batch
    keras_loss = float(YoloLoss(S=S, B=B, C=C)(yt, yp))
    assert keras_loss == pytest.approx(float(np.mean(got["total"])), rel=1e-5)
    m = YoloLossTerm("class", S=S, B=B, C=C)
    m.update_state(yt, yp)
    assert float(m.result()) == pytest.approx(float(np.mean(got["class"])), rel=1e-5)


def test_sqrt_has_no_nan_values_or_gradients():
    S, B, C = 2, 2, 3
    yt = np.zeros((1, S, S, B * 5 + C), np.float32)
    yt[0, 0, 0, :10] = [0.5, 0.5, 0.3, 0.2, 1] * 2
    yt[0, 0, 0, 10] = 1
    yp = tf.Variable(np.zeros((1, S, S, B * 5 + C), np.float32))  # w = h = 0 exactly
    with tf.GradientTape() as tape:
        loss = yolo_loss_terms(yt, yp, S, B, C)["total"]
    g = tape.gradient(loss, yp)
    assert np.isfinite(loss.numpy()).all() and np.isfinite(g.numpy()).all()
    # negative w (the source's sign*sqrt hack case) is clamped, not NaN
    neg = np.full((1, S, S, B * 5 + C), -0.3, np.float32)
    assert np.isfinite(yolo_loss_terms(yt, neg, S, B, C)["total"].numpy()).all()


def test_perfect_prediction_has_zero_loss_but_source_loss_does_not_care_about_box_two():
    from labkit.yolov1.encode import encode_targets

    S, B, C = 7, 2, 20
    yt = encode_targets(np.array([[0.1, 0.2, 0.5, 0.6], [0.6, 0.6, 0.9, 0.95]]), [3, 7], S, B, C)[None]
    t = yolo_loss_terms(yt, yt, S, B, C)  # IoU 1 with conf 1 everywhere an object is
    # both predictors of an object cell have IoU 1; predictor 1 is not responsible -> its conf 1 is
    # penalized by the no-object term, exactly as in the paper
    assert float(t["coord"][0]) == pytest.approx(0.0, abs=1e-6)
    assert float(t["obj"][0]) == pytest.approx(0.0, abs=1e-6)
    assert float(t["noobj"][0]) == pytest.approx(0.5 * 2, abs=1e-6)
    # the source loss runs (on its own class-first layout) and is finite
    assert np.isfinite(float(source_loss(np.roll(yt, C, -1), np.roll(yt, C, -1), C)))


def test_bad_conf_target_raises():
    with pytest.raises(ValueError, match="conf_target"):
        yolo_loss_terms(np.zeros((1, 1, 1, 6)), np.zeros((1, 1, 1, 6)), 1, 1, 1, conf_target="x")
