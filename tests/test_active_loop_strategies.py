"""Every strategy in the real loop (issue 18): Ultralytics training and batched scoring on a tiny synthetic pool, and
the simulated annotator: no step of the loop reads the labels of an image that was never selected.

One module fixture runs all strategies (one seed, one selection round, round 0 trained once and shared) while an
audit hook records every file Python opens; the tests then check each loop against a recomputation of its pick.
About 60 s on an idle 2-core machine (marked slow)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit.active import pool as P
from labkit.active.loop import LoopConfig, UltralyticsScorer, run_experiment
from labkit.active.strategies import make_strategy

STRATEGIES = ["random", "least_confidence", "least_confidence-min", "margin", "binary_entropy", "entropy",
              "gaussian-sum", "coreset", "qbc", "hybrid", "ppal", "ppal-max"]

_OPENED: list[str] = []
_RECORDING = [False]


def _audit(event, args):
    if _RECORDING[0] and event == "open" and args and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(str(args[0]) if not isinstance(args[0], bytes) else args[0].decode(errors="replace"))


sys.addaudithook(_audit)  # cannot be removed; records only while _RECORDING[0]


def _start_model(path: Path):
    """A YOLOv8n whose head fires everywhere (random init detects nothing at conf 0.01: every strategy would tie)."""
    import labkit
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    labkit.env.configure_offline()
    torch.manual_seed(0)
    m = YOLO("yolov8n.yaml")
    m.model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    m.model.names = {0: "circle", 1: "square", 2: "triangle"}
    head = m.model.model[-1]
    with torch.no_grad():
        for seq in head.cv3:
            seq[-1].bias.normal_(0.0, 1.0)
            seq[-1].weight.normal_(0.0, 0.05)
    m.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def loops(tmp_path_factory):
    from labkit.data.synthetic import make_shapes

    root = tmp_path_factory.mktemp("al_all")
    shapes = make_shapes(root=root / "shapes", n_train=16, n_val=4, imgsz=64, n_classes=3, max_objects=3, seed=11)
    pool = [str(Path(p).resolve()) for p in shapes.images("train")]
    val = [str(Path(p).resolve()) for p in shapes.images("val")]
    cfg = LoopConfig(rounds=1, budget=3, initial=4, epochs=1, imgsz=64, batch=8, model=_start_model(root / "start.pt"),
                     committee=1, train_kwargs={"mosaic": 0.0, "warmup_epochs": 0, "lr0": 1e-4, "nbs": 8})
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        res = run_experiment(root / "exp", pool, val, list(shapes.classes), STRATEGIES, [0], cfg, full_pool=False,
                             progress=False, log=None)
    finally:
        _RECORDING[0] = False
    return {"res": res, "root": root, "pool": pool, "val": val, "cfg": cfg, "opened": list(_OPENED)}


def _manifest(loops, s):
    return P.PoolManifest.load(loops["root"] / "exp" / f"{s}-s0" / "manifest.json")


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_picks_in_the_real_loop_what_it_scores(loops, name):
    """The loop trained twice, and round 0's pick is exactly what the strategy selects from the predictions of round 0's
    model (recomputed here): the loop really ran this strategy, with its aggregation, on real predictions."""
    m = _manifest(loops, name)
    cfg = loops["cfg"]
    assert [len(r["labelled"]) for r in m.rounds] == [4, 7]
    assert all(r["metrics"] is not None and 0 <= r["metrics"]["map50"] <= 1 for r in m.rounds)
    r0 = m.rounds[0]
    cand = list(r0["unlabelled"])
    st = make_strategy(name, how=cfg.how)
    rng = np.random.default_rng([0, 0, 1])
    if name == "random":
        from labkit.active.strategies import Predictions

        preds, lab = Predictions(cand, [np.zeros((0, 4))] * len(cand), [np.zeros((0, 1))] * len(cand)), None
    else:
        extra = r0["labelled"] if st.needs_embeddings else []
        committee = [(r0["weights"], True)] if st.needs_committee else []
        allp = UltralyticsScorer(cfg, progress=False)(r0["weights"], cand + list(extra), committee)
        preds = allp.subset(range(len(cand)))
        lab = allp.embeddings[len(cand):] if st.needs_embeddings else None
        assert sum(len(b) for b in preds.boxes) > len(cand)  # the model does detect boxes: scores are not all ties
    picked, scores = st.select(preds, cfg.budget, labelled_embeddings=lab, rng=rng)
    assert r0["selected"] == [cand[i] for i in picked]
    np.testing.assert_allclose([r0["scores"][c] for c in cand], scores, rtol=1e-6, atol=1e-9)
    assert m.rounds[1]["n_boxes"] == P.count_boxes(m.rounds[1]["labelled"])  # cost in boxes as well as images


@pytest.mark.slow
def test_strategies_disagree_on_real_predictions(loops):
    """Same start, same candidates: the strategies' picks differ (they are not all random draws among ties), and the
    aggregation changes the scores."""
    picks = {s: frozenset(_manifest(loops, s).rounds[0]["selected"]) for s in STRATEGIES}
    assert len(set(picks.values())) >= 4, picks  # 4 distinct picks of 3 among 12 candidates (measured)
    sc = {s: _manifest(loops, s).rounds[0]["scores"] for s in ("least_confidence", "least_confidence-min")}
    assert not np.allclose(list(sc["least_confidence"].values()), list(sc["least_confidence-min"].values()))
    assert picks["random"] != picks["least_confidence-min"] and picks["coreset"] != picks["least_confidence-min"]


@pytest.mark.slow
def test_unselected_labels_are_never_read(loops):
    """Every pool label file opened during the whole experiment (the annotator, Ultralytics' training and validation)
    belongs to an image that was labelled (initial set or selected); most of the pool's labels stay unread."""
    pool_labels = {str(P.label_path(p)): p for p in loops["pool"]}
    read = {f for f in loops["opened"] if f in pool_labels}
    labelled = {p for s in STRATEGIES for p in _manifest(loops, s).labelled}
    assert read, "the audit hook saw no label read at all: the check would be empty"
    assert {pool_labels[f] for f in read} <= labelled
    assert {pool_labels[f] for f in read} == labelled  # each labelled image's labels were revealed and trained on
    assert len(labelled) < len(loops["pool"])  # some images were never selected by any strategy
    val_labels = {str(P.label_path(p)) for p in loops["val"]}
    assert val_labels & set(loops["opened"])  # the hook does see the validator's reads


def test_annotator_reveals_only_what_it_is_asked_and_counts_boxes(tmp_path):
    from labkit.data.synthetic import make_shapes

    sh = make_shapes(root=tmp_path / "s", n_train=10, n_val=2, imgsz=64, n_classes=2, max_objects=4, seed=3)
    pool = [str(p) for p in sh.images("train")]
    val = [str(p) for p in sh.images("val")]
    a = P.SimulatedAnnotator()
    m = P.PoolManifest.create(tmp_path / "m.json", pool, val, ["a", "b"], initial=3, seed=1, annotator=a)
    assert sorted(a.reads) == sorted(str(P.label_path(p)) for p in m.labelled)
    assert m.current["n_boxes"] == P.count_boxes(m.labelled) == a.cost["boxes"]
    sel = m.unlabelled[:2]
    m.add_round(sel, annotator=a)
    assert len(a.reads) == 5 and a.ledger[-1] == {"images": 2, "boxes": P.count_boxes(sel)}
    assert m.current["n_boxes"] == P.count_boxes(m.labelled) == a.cost["boxes"]
    assert a.cost["images"] == 5
    with pytest.raises(P.ManifestError, match="never labelled"):
        a.boxes(m.unlabelled[:1])
    assert a.boxes(m.labelled) == m.current["n_boxes"]
