"""labkit.finetune: devices, results.csv parsing, comparisons, BKAI submission export, and a tiny two-stage run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit import finetune

CSV = """                  epoch,         train/box_loss,  metrics/mAP50(B),  metrics/mAP50-95(B),  metrics/precision(B),  metrics/recall(B),  val/box_loss,  lr/pg0,  time
                      1,                    3.5,              0.10,                 0.05,                   0.3,                0.2,           3.9,    0.01,   5.0
                      2,                    3.0,              0.30,                 0.12,                   0.5,                0.4,           3.1,    0.01,   9.5
                      3,                    2.8,              0.25,                 0.15,                   0.6,                0.5,           3.0,   0.005,  14.0
"""


def test_read_results_tidy(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "results.csv").write_text(CSV)
    df = finetune.read_results(d, run="a")
    assert list(df.columns) == ["run", "epoch", "metric", "value"] and len(df) == 3 * 8
    wide = df.pivot_table(index="epoch", columns="metric", values="value")
    assert wide["mAP50"].tolist() == [0.10, 0.30, 0.25] and wide["train_box_loss"].tolist() == [3.5, 3.0, 2.8]
    assert set(wide.columns) >= {"mAP50", "mAP50-95", "precision", "recall", "val_box_loss", "lr_pg0", "time"}
    with pytest.raises(FileNotFoundError, match="results.csv"):
        finetune.read_results(tmp_path / "nowhere")


def test_summary_uses_ultralytics_fitness_and_compare(tmp_path):
    d = tmp_path / "r1"
    d.mkdir()
    (d / "results.csv").write_text(CSV)
    run = finetune.Run(name="A", dir=d, params={"optimizer": "AdamW", "lr0": 5e-4})
    s = run.summary()
    # Ultralytics 8.4's fitness is mAP50-95 alone: epoch 3 (0.15) wins despite a lower mAP50 than epoch 2
    assert s["best_epoch"] == 3 and s["best_mAP50"] == 0.25 and s["epochs"] == 3 and s["time_s"] == 14.0
    assert run.epochs_run == 3
    d2 = tmp_path / "r2"
    d2.mkdir()
    (d2 / "results.csv").write_text(CSV.replace("0.15,", "0.11,"))
    table = finetune.compare([run, finetune.Run(name="B", dir=d2, params={"optimizer": "SGD"})])
    assert list(table.index) == ["A", "B"] and table.loc["B", "best_epoch"] == 2
    import matplotlib
    matplotlib.use("Agg")
    fig = finetune.plot_curves([run, finetune.Run(name="B", dir=d2)], offsets={"B": 3})
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["A", "B"] and list(ax.lines[1].get_xdata()) == [4, 5, 6]


def test_best_epoch_is_ultralytics_fitness(tmp_path):
    """The recorded best epoch is the one Ultralytics saves as best.pt: its own fitness decides, not a copy."""
    from ultralytics.utils.metrics import DetMetrics

    # epoch 2: high mAP50, mAP50-95 0.14; epoch 3: low mAP50, mAP50-95 0.15. The old 0.1/0.9 weighting
    # would pick epoch 2 (0.216 vs 0.16); Ultralytics 8.4 picks epoch 3.
    d = tmp_path / "r"
    d.mkdir()
    (d / "results.csv").write_text(CSV.replace("0.30,                 0.12", "0.90,                 0.14"))
    rows = {1: (0.3, 0.2, 0.10, 0.05), 2: (0.5, 0.4, 0.90, 0.14), 3: (0.6, 0.5, 0.25, 0.15)}

    def ultra_fitness(p, r, m50, m):
        dm = DetMetrics()
        dm.box.all_ap = np.array([[m50] + [(10 * m - m50) / 9] * 9])  # AP at IoU 0.5 … 0.95: mean = m
        dm.box.p, dm.box.r = np.array([p]), np.array([r])
        return dm.fitness

    best = max(rows, key=lambda e: (ultra_fitness(*rows[e]), -e))
    s = finetune.Run(name="R", dir=d).summary()
    assert best == 3 and s["best_epoch"] == best and s["best_mAP50"] == 0.25 and s["best_mAP50-95"] == 0.15


def test_parse_device_multi_gpu_falls_back(capsys):
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    got = finetune.parse_device("0,1")
    if n >= 2:
        assert got == "0,1"
    else:
        assert got == ("0" if n == 1 else "cpu")
        assert "asked for GPUs [0, 1]" in capsys.readouterr().out
    assert finetune.parse_device([0, 1], verbose=False) == got
    assert finetune.parse_device("cpu") == "cpu"
    assert finetune.parse_device("auto") == ("0" if n else finetune.parse_device("cpu"))


def test_export_bkai_round_trip(tmp_path):
    preds = {"/x/im1501.jpg": {"quads": np.array([[[1, 2], [30, 2], [30, 12], [1, 12]]]), "scores": np.array([0.9])},
             "/x/im1502.jpg": {"quads": np.zeros((0, 4, 2), int), "scores": np.zeros(0)}}
    files = finetune.export_bkai(preds, tmp_path / "sub")
    assert [f.name for f in files] == ["im1501.txt", "im1502.txt"]
    assert files[0].read_text() == "1,2,30,2,30,12,1,12\n" and files[1].read_text() == ""
    assert finetune.read_bkai_submission(files[0]).tolist() == [[[1, 2], [30, 2], [30, 12], [1, 12]]]
    (tmp_path / "bad.txt").write_text("1,2,3,4,5,6,7,8.5\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected 8 integer"):
        finetune.read_bkai_submission(tmp_path / "bad.txt")


def test_enable_tensorboard_reflects_package():
    import importlib.util

    from ultralytics.utils import SETTINGS

    before = SETTINGS.get("tensorboard")
    try:
        assert finetune.enable_tensorboard(True) == (importlib.util.find_spec("tensorboard") is not None)
        assert SETTINGS["tensorboard"] is finetune.enable_tensorboard(True)
        assert finetune.enable_tensorboard(False) is False and SETTINGS["tensorboard"] is False
    finally:
        SETTINGS.update({"tensorboard": before})


def test_two_stage_training_unique_dirs_and_predictions(labkit_home, tmp_path):
    """Stage 1 from yaml, stage 2 from stage 1's best.pt; runs get their own folders; predictions export."""
    from labkit.data.bkai import convert_vintext
    from labkit.data.synthetic_text import make_vintext

    ds = make_vintext(n_train=4, n_val=2, n_test=2, size=(64, 48), font_px=(10, 14), max_words=2, seed=1)
    rep = convert_vintext(ds.root, tmp_path / "yolo")
    data = tmp_path / "yolo" / "data.yaml"
    kw = dict(epochs=1, imgsz=64, batch=2, device="cpu", workers=0, mosaic=0.0, tensorboard=False)
    r1 = finetune.train(data, model="yolov8n.yaml", name="stage1", optimizer="SGD", lr0=0.01, **kw)
    r2 = finetune.train(data, model=r1.best, name="stage2", optimizer="AdamW", lr0=5e-4, **kw)
    assert r1.dir.parent != r2.dir.parent and r1.dir.parent.parent == r2.dir.parent.parent == labkit_home / "runs" / "06_bkai"
    assert (r1.dir.name, r2.dir.name) == ("stage1", "stage2") and (r1.dir / "results.csv").is_file()
    assert r1.best.is_file() and r2.best.is_file() and r2.params["model"] == str(r1.best)
    # stage 2 really starts from stage 1: its checkpoint records the same architecture, and training args differ
    import torch
    ck1 = torch.load(r1.best, map_location="cpu", weights_only=False)
    ck2 = torch.load(r2.best, map_location="cpu", weights_only=False)
    assert ck1["train_args"]["optimizer"] == "SGD" and ck2["train_args"]["optimizer"] == "AdamW"
    assert ck2["train_args"]["model"] == str(r1.best)
    curves = r2.curves()
    assert set(curves.metric) >= {"mAP50", "mAP50-95", "train_box_loss"} and curves.epoch.max() == 1
    assert list(finetune.compare([r1, r2]).index) == ["stage1", "stage2"]
    preds = finetune.predict_quads(r2.best, sorted(ds.images_dir("test").glob("*.jpg")), conf=0.0, imgsz=64, device="cpu")
    assert len(preds) == 2
    for p in preds.values():
        q = p["quads"]
        assert q.dtype.kind == "i" and q.shape[1:] == (4, 2) and len(q) == len(p["scores"])
        assert (q[..., 0] >= 0).all() and (q[..., 0] <= 63).all() and (q[..., 1] <= 47).all()
    files = finetune.export_bkai(preds, tmp_path / "sub")
    assert all(finetune.read_bkai_submission(f).shape == (len(preds[str(k)]["quads"]), 4, 2)
               for f, k in zip(files, preds))


def test_kaggle_bundle_with_gpu_profile(tmp_path, monkeypatch):
    """`labkit bundle kaggle 06_bkai_finetuning --profile gpu --dataset OWNER/SLUG` injects the seed's settings."""
    import json
    from pathlib import Path

    import nbformat
    import yaml

    from labkit import runner

    nbdir = Path(__file__).resolve().parents[1] / "notebooks"
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(nbdir))
    from labkit import kaggle

    out = kaggle.bundle_kaggle("06_bkai_finetuning", profile="gpu", datasets=["someone/vintext"], out=tmp_path / "b")
    meta = json.loads((out / "kernel-metadata.json").read_text())
    assert meta["dataset_sources"] == ["someone/vintext"] and meta["enable_gpu"] is True
    nb = nbformat.read(str(out / "06_bkai_finetuning.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    ns: dict = {}
    exec(injected[0].source, ns)
    profile = yaml.safe_load((nbdir / "profiles" / "gpu.yaml").read_text())["06_bkai_finetuning"]
    assert {k: ns[k] for k in profile} == profile
    assert (ns["MODEL"], ns["EPOCHS"], ns["IMGSZ"], ns["BATCH"], ns["OPTIMIZER"], ns["LR0"], ns["DEVICE"]) == \
        ("yolov8x.pt", 150, 640, 32, "AdamW", 0.0005, "0,1")
    # every profile key is a real notebook parameter (a typo would be rejected)
    assert set(profile) <= set(runner.notebook_parameters(nbdir / "06_bkai_finetuning.ipynb"))


def test_conf_widget_filters_and_redraws(tmp_path):
    """The notebook's confidence slider: it filters the stored predictions and redraws (no browser needed)."""
    import numpy as np
    from PIL import Image

    from labkit import finetune
    from labkit.widgets.finetune import conf_widget

    img = tmp_path / "a.jpg"
    Image.new("RGB", (64, 48)).save(img)
    quads = np.array([[[1, 1], [10, 1], [10, 10], [1, 10]], [[20, 20], [30, 20], [30, 30], [20, 30]]])
    preds = {str(img): {"quads": quads, "scores": np.array([0.9, 0.3])}}
    kept = finetune.filter_predictions(preds, 0.5)[str(img)]
    assert kept["scores"].tolist() == [0.9] and kept["quads"].tolist() == quads[:1].tolist()
    box = conf_widget(preds, conf=0.2)
    assert box.kept == 2
    box.slider.value = 0.5  # what moving the slider does: the observer redraws
    assert box.kept == 1
    box.slider.value = 0.95
    assert box.kept == 0


def _run_from_rows(tmp_path, name, rows, optimizer=None):
    """A Run whose results.csv has the given (mAP50, mAP50-95, val_box_loss) rows, epochs 1..n."""
    d = tmp_path / name
    d.mkdir()
    lines = ["epoch,metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss"]
    lines += [f"{i},{a},{b},{c}" for i, (a, b, c) in enumerate(rows, 1)]
    (d / "results.csv").write_text("\n".join(lines) + "\n")
    return finetune.Run(name=name, dir=d, params={"optimizer": optimizer} if optimizer else {})


def test_repeated_epochs_and_nbs_verdict(tmp_path):
    """An epoch equal to the previous one in mAP50-95 *and* val loss counts as repeated; the first never does.

    Mutations caught: comparing mAP50-95 alone (epoch 3 below has equal mAP but another loss), counting epoch 1
    (diff NaN treated as 0), and an nbs verdict that is True when *every* epoch repeats (no step ever happened)."""
    run = _run_from_rows(tmp_path, "a", [(0.5, 0.2, 1.0), (0.6, 0.3, 0.9), (0.6, 0.3, 0.8), (0.6, 0.3, 0.8)])
    assert finetune.repeated_epochs(run) == [4]
    claim, ok, detail = finetune.nbs_verdict(run)
    assert ok and "[4]" in detail and "|" not in claim
    frozen = _run_from_rows(tmp_path, "b", [(0.5, 0.2, 1.0)] * 3)
    assert finetune.repeated_epochs(frozen) == [2, 3] and not finetune.nbs_verdict(frozen)[1]
    moving = _run_from_rows(tmp_path, "c", [(0.5, 0.2, 1.0), (0.6, 0.3, 0.9), (0.7, 0.35, 0.8)])
    assert not finetune.nbs_verdict(moving)[1]


def test_stage_verdicts(tmp_path):
    """Stage 2 beats stage 1's best epoch; SGD wrecks the checkpoint (worst < 1/4) while AdamW keeps > 1/2; AdamW's
    best beats SGD's. Mutations caught: comparing stage 2 with stage 1's *last* epoch instead of its best (0.30 vs
    0.25 below), using the final instead of the worst epoch for the wreck test, swapped runs."""
    s1 = _run_from_rows(tmp_path, "stage1", [(0.1, 0.0, 3), (0.7, 0.30, 2), (0.6, 0.25, 2)])
    adamw = _run_from_rows(tmp_path, "stage2-AdamW", [(0.8, 0.28, 2), (0.85, 0.33, 2)], "AdamW")
    sgd = _run_from_rows(tmp_path, "stage2-SGD", [(0.1, 0.01, 4), (0.8, 0.31, 2)], "SGD")
    v = finetune.stage_verdicts(s1, adamw, sgd)
    assert [ok for _, ok, _ in v] == [True, True, True]
    assert "SGD" in v[1][0] and "AdamW" in v[1][0] and all("|" not in c for c, _, _ in v)
    late = _run_from_rows(tmp_path, "late", [(0.8, 0.26, 2), (0.8, 0.29, 2)], "AdamW")  # above the last, below the best
    assert finetune.stage_verdicts(s1, late)[0][1] is False and len(finetune.stage_verdicts(s1, late)) == 1
    v = finetune.stage_verdicts(s1, sgd, adamw)  # swapped: SGD as "the recipe" never keeps the checkpoint
    assert v[1][1] is False and v[2][1] is False


def test_border_report_counts_what_each_conversion_loses(labkit_home):
    """On synthetic VinText with words crossing the border: the inside-only check loses boxes, no check makes
    Ultralytics reject whole images, clipping loses nothing. Mutation caught: no clipping in the third conversion
    (then dropped_clipped == dropped > 0), or an inside check that keeps boxes touching the border."""
    from labkit.data.synthetic_text import make_vintext

    src = make_vintext(n_train=24, n_val=1, n_test=1, size=(128, 96), p_border=0.3, seed=3).root
    rep = finetune.border_report(src)
    assert rep["images"] == 24 and rep["boxes"] > 24
    assert rep["lost_inside"] > 0 and rep["dropped"] > 0 and rep["lost_unclipped"] >= rep["dropped"]
    assert rep["dropped_clipped"] == 0 and rep["lost_clipped"] == 0
    claim, ok, _ = finetune.border_verdict(rep)
    assert ok and not finetune.border_verdict({**rep, "dropped_clipped": 1})[1]


def test_quiet_ultralytics_silences_and_restores():
    """Inside the block Ultralytics' LOGGER drops INFO (epoch tables; its TQDM bars check the same level) and keeps
    warnings; the old level comes back, also after an exception. Mutation caught: not restoring the level."""
    import logging

    from ultralytics.utils import LOGGER
    from ultralytics.utils.tqdm import TQDM

    before = LOGGER.level
    with finetune.quiet_ultralytics():
        assert not LOGGER.isEnabledFor(logging.INFO) and LOGGER.isEnabledFor(logging.WARNING)
        assert TQDM(range(3)).disable
    assert LOGGER.level == before
    with pytest.raises(RuntimeError):
        with finetune.quiet_ultralytics():
            raise RuntimeError
    assert LOGGER.level == before
    with finetune.quiet_ultralytics(False):
        assert LOGGER.level == before


def test_tensorboard_stopped_at_exit_only_stops_new_servers(monkeypatch):
    """Servers that appear inside the block get SIGTERM at exit; one that was running before is left alone.
    Mutation caught: stopping every server listed at exit (the pre-existing one would die too)."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from tensorboard import manager  # a hard dependency: a broken install fails, never skips

    old = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    new = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    listed = [SimpleNamespace(pid=old.pid)]
    monkeypatch.setattr(manager, "get_all", lambda: list(listed))
    registered = []
    monkeypatch.setattr("atexit.register", lambda fn, *a, **k: registered.append(fn))
    try:
        with finetune.tensorboard_stopped_at_exit(verbose=False):
            listed.append(SimpleNamespace(pid=new.pid))  # what %tensorboard does: a server appears
        assert len(registered) == 1
        registered[0]()  # what happens when the kernel exits
        assert new.wait(timeout=10) != 0 and old.poll() is None
    finally:
        for p in (old, new):
            p.kill()
            p.wait()
