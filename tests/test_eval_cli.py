"""labkit eval handler: COCO files and YOLO folders, all conventions, errors as exit code 2."""

import argparse
import json

import numpy as np
import pytest

from coco_random import pycocotools_eval, random_coco
from labkit import eval_cli
from labkit.data import convert as C


def _parse(argv):
    parser = argparse.ArgumentParser(prog="labkit")
    sub = parser.add_subparsers(dest="command")
    eval_cli.register(sub)
    return parser.parse_args(["eval", *argv])


@pytest.fixture
def coco_files(tmp_path):
    gt, dets = random_coco(13, n_images=25)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(dets))
    return tmp_path, gt, dets


def test_eval_coco_json_writes_pycocotools_stats(coco_files, capsys):
    d, gt, dets = coco_files
    args = _parse(["--gt", str(d / "gt.json"), "--pred", str(d / "pred.json"), "--out", str(d / "m.json")])
    assert args.func is eval_cli.run_eval
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "mAP50=" in out and "AP@.50" in out
    m = json.loads((d / "m.json").read_text())
    ref, _ = pycocotools_eval(gt, dets)
    np.testing.assert_allclose(list(m["stats"].values()), ref, atol=1e-6)
    assert m["map50"] == pytest.approx(ref[1], abs=1e-6)


@pytest.mark.parametrize("conv", ["voc07", "voc", "ultralytics"])
def test_eval_other_conventions(coco_files, conv):
    from labkit.metrics import evaluate_coco_json

    d, gt, dets = coco_files
    args = _parse(["--gt", str(d / "gt.json"), "--pred", str(d / "pred.json"), "--convention", conv,
                   "--out", str(d / f"{conv}.json")])
    assert eval_cli.run_eval(args) == 0
    m = json.loads((d / f"{conv}.json").read_text())
    assert m["convention"] == conv and "stats" not in m
    assert m["map50"] == pytest.approx(evaluate_coco_json(gt, dets, convention=conv).map50)


def test_eval_yolo_dataset_and_txt_predictions(tmp_path, capsys):
    from labkit.data.synthetic import make_shapes

    ds = make_shapes(root=tmp_path / "shapes", n_train=2, n_val=8, imgsz=96, seed=1)
    pred = tmp_path / "pred"
    pred.mkdir()
    rng = np.random.default_rng(0)
    for f in sorted((ds.yolo_root / "labels" / "val").glob("*.txt")):
        rows = C.read_yolo_txt(f)
        rows[:, 1:] += rng.normal(0, 0.01, rows[:, 1:].shape) * (rng.random((len(rows), 1)) < 0.5)
        np.savetxt(pred / f.name, np.hstack([rows, rng.uniform(0.3, 1, (len(rows), 1))]), fmt="%.6f")
    out = tmp_path / "m.json"
    assert eval_cli.run_eval(_parse(["--gt", str(ds.yolo_yaml), "--pred", str(pred), "--out", str(out)])) == 0
    m = json.loads(out.read_text())
    # the same numbers as converting by hand and running pycocotools
    gt = C.yolo_to_coco(ds.yolo_root / "images" / "val", names=list(ds.classes))
    res = C.yolo_preds_to_coco(pred, gt)
    ref, _ = pycocotools_eval(gt, res)
    np.testing.assert_allclose(list(m["stats"].values()), ref, atol=1e-6)
    assert set(m["ap_per_class"]) <= set(ds.classes)
    # a dataset folder works as well as its data.yaml
    assert eval_cli.run_eval(_parse(["--gt", str(ds.yolo_root), "--pred", str(pred)])) == 0


def test_eval_errors_exit_2(coco_files, capsys):
    d, gt, dets = coco_files
    bad = [dict(x) for x in dets]
    bad[0]["image_id"] = 424242
    (d / "bad.json").write_text(json.dumps(bad))
    assert eval_cli.run_eval(_parse(["--gt", str(d / "gt.json"), "--pred", str(d / "bad.json")])) == 2
    err = capsys.readouterr().err
    assert "prediction 0" in err and "424242" in err
    assert eval_cli.run_eval(_parse(["--gt", str(d / "missing.json"), "--pred", str(d / "pred.json")])) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["--gt", "a", "--pred", "b", "--convention", "pascal"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engine_hotcoco_gives_labkits_12_stats(tmp_path, capsys, seed):
    """``--engine hotcoco`` and labkit's engine agree on the 12 stats of a random COCO set (crowds, id 0, ties).

    Mutation caught: ``_hotcoco_stats`` returning ``E.stats[1:13]`` (stats shifted by one) or the hotcoco branch
    evaluating the predictions without their lowest-score half; the ``engine`` checks catch a silent fallback to
    labkit's engine."""
    import hotcoco  # noqa: F401  a [dev] dependency: a broken install must fail here, not skip

    gt, dets = random_coco(seed, n_images=40)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(dets))
    got = {}
    for engine in ("labkit", "hotcoco"):
        out = tmp_path / f"{engine}.json"
        args = _parse(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                       "--engine", engine, "--out", str(out)])
        assert eval_cli.run_eval(args) == 0
        got[engine] = json.loads(out.read_text())
    assert "engine=hotcoco" in capsys.readouterr().out and got["hotcoco"]["engine"] == "hotcoco"
    assert list(got["hotcoco"]["stats"]) == list(got["labkit"]["stats"])
    np.testing.assert_allclose(list(got["hotcoco"]["stats"].values()), list(got["labkit"]["stats"].values()),
                               rtol=0, atol=1e-12)


def test_engine_hotcoco_refused_in_one_line(coco_files, capsys, monkeypatch):
    """Exit 2 and one line for a convention hotcoco lacks, and for hotcoco missing (find_spec patched).
    Mutation caught: the convention check removed (hotcoco would silently compute COCO AP for --convention voc)."""
    d, _, _ = coco_files
    base = ["--gt", str(d / "gt.json"), "--pred", str(d / "pred.json"), "--engine", "hotcoco"]
    assert eval_cli.run_eval(_parse([*base, "--convention", "voc"])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "coco convention only" in err[0] and "'voc'" in err[0]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "hotcoco" else real(n, *a))
    assert eval_cli.run_eval(_parse(base)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hotcoco is not installed" in err[0]
