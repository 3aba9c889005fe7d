"""Batched pool scoring against Ultralytics' own predict, and one tiny real loop end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit.active import pool as P
from labkit.active.loop import LoopConfig, run_loop, train_full_pool
from labkit.active.scoring import predict_pool, subset_indices


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from labkit.data.synthetic import make_shapes

    return make_shapes(root=tmp_path_factory.mktemp("al") / "shapes", n_train=14, n_val=4, imgsz=64, n_classes=3,
                       seed=5)


@pytest.fixture(scope="module")
def model():
    import labkit

    labkit.env.configure_offline()
    from ultralytics import YOLO

    torch.manual_seed(0)
    m = YOLO("yolov8n.yaml")
    m.model.nc = 3
    from ultralytics.nn.tasks import DetectionModel

    m.model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.model.names = {0: "circle", 1: "square", 2: "triangle"}
    head = m.model.model[-1]
    with torch.no_grad():
        # random init predicts ~nothing: spread the class logits so there are boxes to keep, and make every
        # box 2 strides wide (DFL mass on bin 1) so boxes overlap little and NMS is not decided by rounding
        for seq in head.cv3:
            seq[-1].bias.normal_(0.0, 1.0)
            seq[-1].weight.normal_(0.0, 0.05)  # scores vary by location
        for seq in head.cv2:
            seq[-1].weight.zero_()
            seq[-1].bias.zero_()
            seq[-1].bias[1::head.reg_max] = 20.0
    return m


def test_predict_pool_matches_ultralytics_predict(shapes, model):
    paths = [str(p) for p in shapes.images("train")[:6]]
    preds = predict_pool(model, paths, imgsz=64, batch=4, conf=0.25, iou=0.7, max_det=300, progress=False)
    assert len(preds) == 6 and preds.embeddings.shape == (6, 64 + 128 + 256)
    for i, p in enumerate(paths):
        r = model.predict(p, imgsz=64, conf=0.25, iou=0.7, max_det=300, verbose=False, device="cpu")[0]
        b = r.boxes
        assert len(b) == len(preds.boxes[i]) > 0
        # same kept boxes, and Results' conf/cls are the max / argmax of our full class vectors
        ours = np.clip(preds.boxes[i], 0, 64)  # predict clips boxes to the image
        theirs = b.xyxy.numpy()
        # compare as sets (equal scores may come out in either order): sort by rounded coordinates
        o = np.lexsort(np.round(ours, 2).T[::-1])
        t = np.lexsort(np.round(theirs, 2).T[::-1])
        np.testing.assert_allclose(ours[o], theirs[t], atol=1e-3)
        # Results' conf/cls are the max / argmax of our full class vectors
        np.testing.assert_allclose(preds.probs[i].max(1)[o], b.conf.numpy()[t], atol=1e-5)
        np.testing.assert_array_equal(preds.probs[i].argmax(1)[o], b.cls.numpy().astype(int)[t])
        assert preds.probs[i].shape[1] == 3  # the other two sigmoids, which Results drops


def test_cpu_scoring_starts_no_reading_thread_by_default(shapes, model, monkeypatch):
    """On the CPU no reading thread is started unless asked for (one competes with torch's threads for the cores:
    bench_active_scoring, --workers 0 vs 2). Catches: a default of 2 reading threads on the CPU."""
    import labkit.active.scoring as scoring

    started = []

    class Spy(scoring.ThreadPoolExecutor):
        def __init__(self, *a, **k):
            started.append(a or k)
            super().__init__(*a, **k)

    monkeypatch.setattr(scoring, "ThreadPoolExecutor", Spy)
    paths = [str(p) for p in shapes.images("train")[:4]]
    predict_pool(model, paths, imgsz=64, batch=2, conf=0.25, progress=False, device="cpu")
    assert started == []
    predict_pool(model, paths, imgsz=64, batch=2, conf=0.25, progress=False, device="cpu", workers=2)
    assert len(started) == 1


def test_batching_does_not_change_scores_and_model_is_untouched(shapes, model):
    paths = [str(p) for p in shapes.images("train")[:5]]
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    a = predict_pool(model, paths, imgsz=64, batch=5, conf=0.25, progress=False, workers=0)
    b = predict_pool(model, paths, imgsz=64, batch=2, conf=0.25, progress=False, workers=2)
    np.testing.assert_allclose(a.embeddings, b.embeddings, rtol=1e-4, atol=1e-5)
    for x, y in zip(a.probs, b.probs):
        np.testing.assert_allclose(x, y, atol=1e-5)
    after = model.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # scored a fused copy, not the model
    # the source's per-image predict sees only each image's max confidence
    src = []
    for p in paths[:2]:
        c = model.predict(source=p, imgsz=64, conf=0.25, verbose=False, save=False)[0].boxes.conf
        src.append(1.0 - float(c.max()) if c.numel() else 1.0)
    np.testing.assert_allclose(src, [1 - p.max() if p.size else 1.0 for p in a.probs[:2]], atol=1e-5)


def test_subset_indices():
    assert subset_indices(10, None).tolist() == list(range(10))
    s = subset_indices(100, 0.2, seed=3)
    assert len(s) == 20 and len(set(s.tolist())) == 20 and (np.diff(s) > 0).all()
    assert subset_indices(100, 0.2, seed=3).tolist() == s.tolist()
    assert len(subset_indices(5, 50)) == 5


def test_real_loop_end_to_end_on_a_tiny_pool(shapes, tmp_path):
    """Ultralytics training on a 14-image pool: 2 rounds, the fixed val split, sources untouched.

    The whole source tree is compared (names and bytes), not just the files the loop reads: Ultralytics writes its
    ``labels/train.cache`` beside the labels unless the loop redirects it (issue 14 #12; the mutation of
    dropping ``caches_in`` from ``UltralyticsTrainer`` fails here). Round 1 warm-starts from round 0's ``last.pt``,
    so a checkpoint Ultralytics wrote loads under labkit's safe loading."""
    pool = [str(p) for p in shapes.images("train")]
    val = [str(p) for p in shapes.images("val")]
    labels = [str(P.label_path(p)) for p in pool + val]
    before = P.checksums(pool + val + labels)

    def tree():
        return {str(f.relative_to(shapes.root)): f.read_bytes() for f in sorted(shapes.root.rglob("*")) if f.is_file()}

    for c in shapes.root.rglob("*.cache"):  # from earlier tests in this module that train on the shapes' yaml
        c.unlink()
    src_tree = tree()
    cfg = LoopConfig(strategy="least_confidence", rounds=1, budget=3, initial=4, epochs=1, imgsz=64, batch=8,
                     model="yolov8n.yaml", train_kwargs={"mosaic": 0.0, "warmup_epochs": 0})
    m = run_loop(tmp_path / "loop", pool, val, list(shapes.classes), cfg, progress=False, log=None)
    assert [len(r["labelled"]) for r in m.rounds] == [4, 7]
    assert all(r["metrics"] is not None and 0 <= r["metrics"]["map50"] <= 1 for r in m.rounds)
    assert m.rounds[1]["n_boxes"] == P.count_boxes(m.rounds[1]["labelled"])
    sel = m.rounds[0]["selected"]
    scores = m.rounds[0]["scores"]
    assert len(scores) == 10 and min(scores[s] for s in sel) >= max(v for k, v in scores.items() if k not in sel)
    # training used exactly the labelled list and validated on the fixed val list
    assert sorted((tmp_path / "loop" / "round01" / "data" / "train.txt").read_text().split()) == \
        sorted(m.rounds[1]["labelled"])
    assert (tmp_path / "loop" / "round01" / "data" / "val.txt").read_text().split() == m.val
    assert P.checksums(pool + val + labels) == before
    assert tree() == src_tree  # nothing added (no labels/*.cache), nothing changed
    assert list((tmp_path / "loop").rglob("label_cache/*.cache"))  # the caches live in the work folder
    full = train_full_pool(tmp_path / "full", pool, val, list(shapes.classes),
                           LoopConfig(**{**cfg.__dict__, "warm_start": False}))
    assert full["images"] == 14 and 0 <= full["map50"] <= 1
    assert train_full_pool(tmp_path / "full", pool, val, list(shapes.classes), cfg) == full  # cached


def test_flip_member_maps_boxes_back(shapes, model, tmp_path):
    """Scoring with flip=True equals scoring the mirrored image, with boxes mirrored back (x -> W - x)."""
    import cv2

    src = cv2.imread(str(shapes.images("train")[0]))
    a, b = tmp_path / "images" / "a.png", tmp_path / "images" / "b.png"
    a.parent.mkdir()
    cv2.imwrite(str(a), src)
    cv2.imwrite(str(b), src[:, ::-1])  # lossless, so both see exactly the mirrored pixels
    pf = predict_pool(model, [str(a)], imgsz=64, conf=0.25, max_det=300, progress=False, flip=True)
    pm = predict_pool(model, [str(b)], imgsz=64, conf=0.25, max_det=300, progress=False)
    back = pm.boxes[0].copy()
    back[:, [0, 2]] = 64 - pm.boxes[0][:, [2, 0]]
    assert len(back) > 0
    o, t = np.lexsort(np.round(pf.boxes[0], 2).T[::-1]), np.lexsort(np.round(back, 2).T[::-1])
    np.testing.assert_allclose(pf.boxes[0][o], back[t], atol=1e-3)
    np.testing.assert_allclose(pf.probs[0][o], pm.probs[0][t], atol=1e-5)


def test_fused_copy_is_cached_until_the_weights_change(shapes, model, tmp_path):
    """The fused copy is reused between calls (as Ultralytics reuses its predictor), but never when stale."""
    from labkit.active import scoring

    # a private copy of the weights (the module's model holds a predictor with thread locks: no deepcopy)
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    m = YOLO("yolov8n.yaml")
    m.model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.model.names = dict(model.model.names)
    m.model.load_state_dict(model.model.state_dict())
    m.model.args = getattr(model.model, "args", {})
    paths = [str(p) for p in shapes.images("train")[:3]]
    kw = dict(imgsz=64, conf=0.25, progress=False, embed=False)
    a = predict_pool(m, paths, **kw)
    net = scoring._network(m, "cpu", channels_last=True)
    assert scoring._network(m, "cpu", channels_last=True) is net  # cached
    # an in-place change (what an optimizer step does) invalidates the cache
    head = m.model.model[-1]
    with torch.no_grad():
        for seq in head.cv3:
            seq[-1].bias.add_(1.0)
    assert scoring._network(m, "cpu", channels_last=True) is not net
    b = predict_pool(m, paths, **kw)
    assert np.mean([p.mean() for p in b.probs]) > np.mean([p.mean() for p in a.probs]) + 0.05  # higher logits
    # so does loading other weights
    m.model.load_state_dict(model.model.state_dict())
    c = predict_pool(m, paths, **kw)
    for x, y in zip(a.probs, c.probs):
        np.testing.assert_allclose(x, y, atol=1e-6)
    # weights files are keyed by path, size and modification time
    w = tmp_path / "w.pt"
    m.save(str(w))
    n1 = scoring._network(str(w), "cpu")
    assert scoring._network(str(w), "cpu") is n1
    import os

    os.utime(w, ns=(os.stat(w).st_atime_ns, os.stat(w).st_mtime_ns + 10**9))
    assert scoring._network(str(w), "cpu") is not n1


def test_cpu_batch_caps_pixels_per_pass_on_cpu_only():
    from labkit.active.scoring import CPU_BATCH_PIXELS, cpu_batch

    assert cpu_batch(32, 96) == 32 and cpu_batch(32, 128) == 32  # small inputs: the batch asked for
    assert cpu_batch(32, 320) == 5 and cpu_batch(32, 640) == 1  # big inputs: cache-sized passes
    assert cpu_batch(32, 640, "cuda:0") == 32 and cpu_batch(0, 96) == 1
    for s in (64, 96, 128, 224, 320, 640, 1280):  # within the budget, or one image when one alone exceeds it
        b = cpu_batch(64, s)
        assert b * s * s <= CPU_BATCH_PIXELS or b == 1
