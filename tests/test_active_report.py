"""Protocol presets, budget-curve results as papers report them, the verdict, PPAL-style selection (issue 18)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from labkit.active import loop as L
from labkit.active import strategies as S
from labkit.errors import UserError


# ------------------------------------------------------------------------------------------------------------------
# Presets
# ------------------------------------------------------------------------------------------------------------------
def test_presets_follow_the_published_protocols():
    voc = L.protocol_plan("ppal-voc", 16551)
    assert (voc["initial"], voc["budget"], voc["rounds"], voc["seeds"]) == (827, 414, 6, [0, 1, 2])
    assert [round(p, 1) for p in voc["percent"]] == [5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0]  # MI-AOD/PPAL columns
    assert "ChenhongyiYang/PPAL" in voc["source"] and "yuantn/MI-AOD" in voc["source"]
    coco = L.protocol_plan("coco", 118287)
    assert (coco["initial"], coco["budget"], coco["rounds"]) == (2365, 2365, 4)
    assert [round(p) for p in coco["percent"]] == [2, 4, 6, 8, 10]
    # on another pool size the fractions apply
    small = L.protocol_plan("ppal-voc", 1000)
    assert (small["initial"], small["budget"]) == (50, 25)
    demo = L.protocol_plan("cpu-demo", 72)
    assert (demo["initial"], demo["budget"], demo["rounds"], len(demo["seeds"])) == (8, 8, 3, 3)
    # explicit settings override the preset
    o = L.protocol_plan("cpu-demo", 72, initial=4, budget=4, rounds=1, seeds="0")
    assert (o["initial"], o["budget"], o["rounds"], o["seeds"]) == (4, 4, 1, [0])
    with pytest.raises(UserError, match="unknown protocol"):
        L.protocol_plan("voc", 100)
    with pytest.raises(UserError, match="exceed the pool"):
        L.protocol_plan("cpu-demo", 20)


def test_load_yolo_data_reads_your_copy_and_never_downloads(tmp_path):
    from labkit.data.synthetic import make_shapes

    sh = make_shapes(root=tmp_path / "s", n_train=6, n_val=3, imgsz=32, n_classes=2, seed=0)
    y = tmp_path / "mine.yaml"
    (tmp_path / "val.txt").write_text("".join(f"{p}\n" for p in sh.images("val")))
    y.write_text(f"path: {sh.root / 'yolo'}\ntrain: images/train\nval: {tmp_path / 'val.txt'}\nnames: {{0: a, 1: b}}\n"
                 "download: https://example.invalid/never.zip\n")
    pool, val, names = L.load_yolo_data(y)
    assert len(pool) == 6 and len(val) == 3 and names == ["a", "b"] and not set(pool) & set(val)
    y.write_text(f"path: {tmp_path / 'absent'}\ntrain: images/train\nval: images/val\nnames: [a]\n")
    with pytest.raises(UserError, match="nothing is downloaded"):
        L.load_yolo_data(y)
    with pytest.raises(UserError, match="no such file"):
        L.load_yolo_data(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------------------------------
def _rows(gains: dict, seeds=(0, 1, 2), n_rounds=4, step=10, noise=None):
    """Long rows: random's curve rises 0.1 per round from a seed offset; each strategy adds its per-seed gain after
    round 0 (round 0 is shared)."""
    rows = []
    for s, gain in {"random": [0.0] * len(seeds), **gains}.items():
        for i, seed in enumerate(seeds):
            for r in range(n_rounds):
                y = 0.2 + 0.1 * r + 0.02 * seed + (gain[i] if r else 0.0)
                rows.append({"strategy": s, "SEED": seed, "round": r, "images": step * (r + 1),
                             "boxes": 3 * step * (r + 1) + (5 * r if s != "random" else 0), "map50": y,
                             "map50_95": y / 2})
    return rows


def test_budget_report_numbers_against_a_hand_computation():
    rows = _rows({"good": [0.05, 0.06, 0.04], "flat": [0.03, -0.03, 0.0]})
    rep = L.budget_report(rows, n_pool=100, full=[{"map50": 0.6, "map50_95": 0.3}], plot=False)
    # area: trapezoids over 10..40 % divided by the width; a gain g after round 0 adds g * (1 - 0.5/3)
    base0 = np.mean([0.2, 0.3, 0.4, 0.5])  # linear curve: trapezoid mean == mean of the end points
    assert rep["auc"]["random"][0]["map50"] == pytest.approx(0.35)
    assert rep["auc"]["good"][0]["map50"] == pytest.approx(base0 + 0.05 * (1 - 1 / 6))
    g = rep["paired"]["good"]["map50"]
    d = np.array([0.05, 0.06, 0.04]) * (5 / 6)
    assert g["mean"] == pytest.approx(d.mean()) and g["std"] == pytest.approx(d.std(ddof=1))
    h = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert (g["lo"], g["hi"]) == (pytest.approx(d.mean() - h), pytest.approx(d.mean() + h))
    assert g["lo"] > 0 and rep["paired"]["flat"]["map50"]["lo"] < 0 < rep["paired"]["flat"]["map50"]["hi"]
    # labels to 90% of full (0.54): random crosses between 40% (0.5)... never: > 40%; "good" reaches at 0.54
    assert rep["reach"]["random"][("map50", 0.9)] == (None, None)
    x, b = rep["reach"]["good"][("map50", 0.9)]  # good's mean curve: 0.2, 0.35, 0.45, 0.55 (+0.02 seed mean)
    ys = [0.22, 0.37, 0.47, 0.57]
    assert x == pytest.approx(30 + 10 * (0.54 - ys[2]) / (ys[3] - ys[2]))
    # the table: the papers' columns
    t = rep["table"]
    assert list(t.index) == ["random", "good", "flat"]
    assert [c for c in t.columns if c.startswith("mAP50 @")] == ["mAP50 @ 10.0%", "mAP50 @ 20.0%", "mAP50 @ 30.0%",
                                                                  "mAP50 @ 40.0%"]
    for c in ("AUC mAP50", "AUC mAP50-95", "Δ AUC mAP50 vs random [95% CI]", "labels to 90% of full mAP50",
              "labels to 95% of full mAP50"):
        assert c in t.columns
    assert t.loc["good", "mAP50 @ 20.0%"] == "0.370 ± 0.017"
    assert t.loc["random", "labels to 90% of full mAP50"] == "> 40.0%"


def test_report_curves_use_the_sweep_aggregation():
    """mean, std (ddof=1) and n over seeds, in labkit.sweep.aggregate's format and numbers."""
    from labkit.sweep import aggregate

    rows = _rows({"good": [0.05, 0.06, 0.04]})
    rep = L.budget_report(rows, n_pool=100, plot=False)
    ref = aggregate(rows, by=["strategy", "round"], values=["images", "boxes", "map50", "map50_95"])
    ours = {(c["strategy"], c["round"]): c for c in rep["curves"]}
    for r in ref:
        c = ours[(r["strategy"], r["round"])]
        assert c["n"] == r["n"]
        for k in ("map50_mean", "map50_std", "map50_n", "boxes_mean", "map50_95_std"):
            assert c[k] == pytest.approx(r[k])


def test_verdict_flips_only_when_an_interval_clears_zero():
    rep = L.budget_report(_rows({"flat": [0.03, -0.03, 0.0], "noisy": [0.2, -0.1, 0.05]}), 100, plot=False)
    claim, ok, detail = L.budget_verdict(rep)
    assert ok and "beats random" in claim and not any(ch.isdigit() for ch in claim)
    assert "flat" in detail and "noisy" in detail
    claim2, ok2, detail2 = L.budget_verdict(L.budget_report(_rows({"good": [0.05, 0.06, 0.04]}), 100, plot=False))
    assert claim2 == claim and not ok2  # same words, flipped by the data
    # one seed: no interval, no claim of an advantage
    rep1 = L.budget_report(_rows({"good": [0.3]}, seeds=(0,)), 100, plot=False)
    assert L.budget_verdict(rep1)[1] and "no interval" in L.budget_verdict(rep1)[2]
    assert rep1["table"].loc["good", "Δ AUC mAP50 vs random [95% CI]"].endswith("no interval]")


def test_budget_plot_has_error_bars_and_a_boxes_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = L.budget_report(_rows({"good": [0.05, 0.06, 0.04]}), 100, full=[{"map50": 0.6, "map50_95": 0.3}])
    fig = rep["fig"]
    axes = fig.axes
    assert len(axes) == 4  # two metrics, each with its boxes axis on top
    assert axes[0].get_xlabel().startswith("% of pool images") and "mAP50 " in axes[0].get_ylabel() + " "
    tops = [a for a in axes if "boxes" in a.get_xlabel()]
    assert len(tops) == 2 and [t.get_text() for t in tops[0].get_xticklabels()] == ["30", "62", "95", "128"]
    assert any(len(c.lines) for c in axes[0].containers)  # errorbar containers
    plt.close(fig)


def test_experiment_rows_long_format():
    res = {"loops": {"random": [[{"round": 0, "images": 2, "boxes": 3, "map50": 0.1, "map50_95": 0.05}]] * 2},
           "seeds": [4, 7]}
    rows = L.experiment_rows(res)
    assert [r["SEED"] for r in rows] == [4, 7] and rows[0]["strategy"] == "random"


def test_sweep_rows_collect_points_for_the_same_report(tmp_path):
    """A sweep over strategies x seeds (one notebook run per point, each recording its rows) gives budget_report the
    same rows as one run of everything: random's loop, run by every point, counted once; failed points skipped."""
    import json

    rows = _rows({"good": [0.05, 0.06, 0.04], "flat": [0.03, -0.03, 0.0]})
    for i, (s, seed) in enumerate([(s, seed) for s in ("good", "flat") for seed in (0, 1, 2)]):
        point = [r for r in rows if r["SEED"] == seed and r["strategy"] in ("random", s)]
        d = tmp_path / f"{i:02d}_STRATEGIES={s},SEEDS={seed}"
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"status": "ok", "records": {"budget_rows": point}}))
    bad = tmp_path / "99_failed"
    bad.mkdir()
    (bad / "run.json").write_text(json.dumps({"status": "error", "records": {"budget_rows": [dict(rows[0], map50=9)]}}))
    got = L.sweep_rows(tmp_path)
    assert len(got) == len(rows)
    a = L.budget_report(got, 100, plot=False)
    b = L.budget_report(rows, 100, plot=False)
    assert a["table"].sort_index().equals(b["table"].sort_index())


# ------------------------------------------------------------------------------------------------------------------
# PPAL-style selection
# ------------------------------------------------------------------------------------------------------------------
def test_kmeans_pp_spreads_picks_and_is_seeded():
    x = np.array([[0, 0], [0.1, 0], [0, 0.1], [10, 10], [10.1, 10], [-10, 10.0]])
    a = S.kmeans_pp(x, 3, centres=[[0, 0]], rng=np.random.default_rng(0))
    assert len(set(a.tolist())) == 3
    # far clusters are picked: with the labelled centre at the origin, the three far points carry almost all weight
    picks = [S.kmeans_pp(x, 2, centres=[[0, 0]], rng=np.random.default_rng(s)).tolist() for s in range(20)]
    assert sum(set(p) <= {3, 4, 5} for p in picks) >= 18
    assert all(len({3, 4} & set(p)) < 2 for p in picks)  # two near-duplicates are (almost) never picked together
    assert S.kmeans_pp(x, 3, rng=np.random.default_rng(5)).tolist() == S.kmeans_pp(x, 3, rng=np.random.default_rng(5)).tolist()


def test_ppal_calibrates_by_class_difficulty_then_diversifies():
    # class 0 is easy (confident boxes everywhere), class 1 hard: the same box uncertainty weighs more on class 1
    probs = [np.array([[0.9, 0.1]]), np.array([[0.95, 0.0]]), np.array([[0.1, 0.3]]), np.array([[0.3, 0.1]]),
             np.array([[0.1, 0.3]])]
    w = S.class_difficulty(probs)
    assert w[1] > w[0] and w.mean() == pytest.approx(1.0)
    emb = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9], [0, 1.0]])
    preds = S.Predictions([f"i{i}" for i in range(5)], [np.zeros((1, 4))] * 5, probs, emb)
    st = S.make_strategy("ppal")
    s = st.score(preds)
    # images 2 and 3 have the same binary entropy (top sigmoid 0.3); image 2's box is of the harder class
    assert s[2] > s[3]
    # pre-pool 4 x k = 4 of 5, then diversity: images 2 and 4 are duplicates (same embedding, same class)
    for seed in range(10):
        pick, _ = st.select(preds, 2, rng=np.random.default_rng(seed))
        assert set(pick.tolist()) != {2, 4}
    assert S.make_strategy("ppal-max").name == "ppal-max" and S.make_strategy("ppal").how == "sum"
