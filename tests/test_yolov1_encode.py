"""YOLOv1 target encoding S x S x (B*5+C): known cells, round trip, NumPy vs TensorFlow, decoding."""
import numpy as np
import pytest

import tensorflow as tf  # a hard dependency: a broken install fails, never skips

from labkit.yolov1.encode import (decode_predictions, decode_targets, encode_targets,  # noqa: E402
                                  encode_targets_tf)


def _boxes_in_distinct_cells(rng, S, n):
    cells = rng.choice(S * S, size=n, replace=False)
    rows, cols = cells // S, cells % S
    off = rng.uniform(0.05, 0.95, (n, 2))
    cx, cy = (cols + off[:, 0]) / S, (rows + off[:, 1]) / S
    w, h = rng.uniform(0.02, 0.6, n), rng.uniform(0.02, 0.6, n)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


def test_known_cell_and_layout():
    t = encode_targets(np.array([[0.4, 0.3, 0.6, 0.7]]), [4], S=7, B=2, C=20)
    assert t.shape == (7, 7, 30)
    # centre (0.5, 0.5) -> cell row 3, col 3, offset 0.5 in both; w = 0.2, h = 0.4
    np.testing.assert_allclose(t[3, 3, 0:5], [0.5, 0.5, 0.2, 0.4, 1.0], atol=1e-6)
    np.testing.assert_allclose(t[3, 3, 5:10], [0.5, 0.5, 0.2, 0.4, 1.0], atol=1e-6)  # same box in slot 2
    assert t[3, 3, 10 + 4] == 1 and t[3, 3, 10:].sum() == 1
    assert t.sum() == pytest.approx(t[3, 3].sum())  # nothing elsewhere
    # a centre exactly on the right/bottom border stays in the last cell
    t2 = encode_targets(np.array([[0.8, 0.8, 1.2, 1.2]]), [0], S=7, B=1, C=1)
    assert t2[6, 6, 4] == 1 and t2[6, 6, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("S,B,C", [(7, 2, 20), (5, 1, 3), (4, 3, 1)])
def test_round_trip_encode_decode(S, B, C):
    rng = np.random.default_rng(S + B + C)
    boxes = _boxes_in_distinct_cells(rng, S, min(6, S * S))
    labels = rng.integers(0, C, len(boxes))
    t = encode_targets(boxes, labels, S, B, C)
    dec_boxes, dec_labels = decode_targets(t, S, B, C)
    # decode returns row-major cell order; sort both by cell to compare
    order = np.lexsort((np.floor((boxes[:, 0] + boxes[:, 2]) / 2 * S), np.floor((boxes[:, 1] + boxes[:, 3]) / 2 * S)))
    np.testing.assert_allclose(dec_boxes, boxes[order], atol=1e-5)
    np.testing.assert_array_equal(dec_labels, labels[order])
    # decode_predictions on a target: every box back, score 1, the B duplicates removed by NMS
    det = decode_predictions(t, S, B, C, conf_thresh=0.5, nms_iou=0.5)
    assert len(det["boxes"]) == len(boxes)
    np.testing.assert_allclose(det["scores"], 1.0)
    got = sorted(zip(det["labels"].tolist(), np.round(det["boxes"], 4).tolist()))
    want = sorted(zip(labels.tolist(), np.round(np.clip(boxes, 0, 1), 4).tolist()))
    for (gl, gb), (wl, wb) in zip(got, want):
        assert gl == wl
        np.testing.assert_allclose(gb, wb, atol=2e-4)


def test_tensorflow_encoder_matches_numpy_including_collisions():
    rng = np.random.default_rng(0)
    S, B, C = 7, 2, 5
    for trial in range(5):
        n = int(rng.integers(0, 12))
        c = rng.uniform(0, 1, (n, 2))
        wh = rng.uniform(0.05, 0.5, (n, 2))
        boxes = np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)
        if n >= 2:  # force a collision: object 1 in the same cell as object 0
            boxes[1] = boxes[0] + 0.001
        labels = rng.integers(0, C, n)
        ref = encode_targets(boxes, labels, S, B, C)
        got = encode_targets_tf(tf.constant(boxes), tf.constant(labels), S, B, C).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-6)
        assert ref[..., 4].sum() == len({(int(min(max((b[1] + b[3]) / 2 * S, 0), S - 1)), int(min(max((b[0] + b[2]) / 2 * S, 0), S - 1))) for b in boxes})


def test_batched_tensorflow_encoder_with_padding_matches_numpy():
    from labkit.yolov1.encode import encode_targets_batch_tf

    rng = np.random.default_rng(4)
    S, B, C, n, M = 7, 2, 3, 4, 6
    boxes = np.zeros((n, M, 4), np.float32)
    labels = -np.ones((n, M), np.int32)
    refs = []
    for k in range(n):
        m = k + 1 if k < 3 else 0  # image 3 has no objects
        c = rng.uniform(0, 1, (m, 2))
        wh = rng.uniform(0.05, 0.4, (m, 2))
        b = np.concatenate([c - wh / 2, c + wh / 2], 1).astype(np.float32)
        if m >= 2:
            b[1] = b[0]  # a collision
        l = rng.integers(0, C, m)
        boxes[k, :m], labels[k, :m] = b, l
        boxes[k, m:] = rng.uniform(0, 1, (M - m, 4))  # garbage in the padding must be ignored
        refs.append(encode_targets(b, l, S, B, C))
    got = encode_targets_batch_tf(boxes, labels, S, B, C).numpy()
    np.testing.assert_allclose(got, np.stack(refs), atol=1e-6)


def test_first_object_wins_a_shared_cell():
    b = np.array([[0.40, 0.40, 0.60, 0.60], [0.41, 0.41, 0.59, 0.70]], np.float32)
    t = encode_targets(b, [1, 2], S=7, B=2, C=3)
    assert t[..., 4].sum() == 1 and t[3, 3, 10 + 1] == 1 and t[3, 3, 10 + 2] == 0


def test_decode_predictions_threshold_and_class_specific_score():
    S, B, C = 2, 2, 2
    p = np.zeros((S, S, B * 5 + C), np.float32)
    p[0, 0, 0:5] = [0.5, 0.5, 0.2, 0.2, 0.9]
    p[0, 0, 5:10] = [0.5, 0.5, 0.8, 0.8, 0.3]
    p[0, 0, 10:] = [0.25, 0.75]
    det = decode_predictions(p, S, B, C, conf_thresh=0.2)
    # scores are conf * P(class): 0.9*0.75 kept, 0.3*0.75=0.225 kept (IoU .0625 < .5 so NMS keeps it)
    np.testing.assert_allclose(det["scores"], [0.675, 0.225], atol=1e-6)
    np.testing.assert_array_equal(det["labels"], [1, 1])
    np.testing.assert_allclose(det["boxes"][0], [0.15, 0.15, 0.35, 0.35], atol=1e-6)
    assert len(decode_predictions(p, S, B, C, conf_thresh=0.5)["scores"]) == 1


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="labels"):
        encode_targets(np.array([[0, 0, 0.5, 0.5]]), [3], S=7, B=2, C=3)
    with pytest.raises(ValueError, match="boxes"):
        encode_targets(np.array([[0, 0, 0.5, 0.5]]), [0, 1], S=7, B=2, C=3)
