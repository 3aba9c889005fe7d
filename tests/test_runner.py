"""labkit run / sweep / course / bundle on tiny notebooks (fast), and on the real tour notebook (slow)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from labkit import runner
from labkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text,value", [("2", 2), ("0.01", 0.01), ("1e-3", 0.001), ("SGD", "SGD"),
                                        ("true", True), ("[1, 2]", [1, 2]), ("yolov8n.pt", "yolov8n.pt")])
def test_parse_value(text, value):
    assert runner.parse_value(text) == value


def test_unknown_parameter_lists_valid_names(tiny_notebooks):
    with pytest.raises(runner.ParameterError) as e:
        runner.resolve_parameters(runner.resolve_notebook("90"), {"NO_SUCH": 1})
    msg = str(e.value)
    assert "NO_SUCH" in msg and "X (default 1)" in msg and "NAME" in msg and "SEED" in msg


def test_cli_unknown_parameter_exit_code(tiny_notebooks, capsys):
    assert main(["run", "90_tiny", "-p", "NO_SUCH", "1"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) NO_SUCH" in err and "Valid parameters: X" in err


def test_resolve_notebook_errors_list_available(tiny_notebooks):
    with pytest.raises(FileNotFoundError, match="available: 90_tiny, 91_fails"):
        runner.resolve_notebook("42_nothing")


def test_profile_and_file_precedence(tiny_notebooks, tmp_path):
    nb = runner.resolve_notebook("90_tiny")
    assert runner.resolve_parameters(nb, profile="big") == {"SEED": 7, "X": 10}
    f = tmp_path / "p.yaml"
    f.write_text("X: 20\nNAME: from-file\n")
    got = runner.resolve_parameters(nb, {"NAME": "cli"}, param_file=str(f), profile="big")
    assert got == {"SEED": 7, "X": 20, "NAME": "cli"}  # profile < file < command line


def test_bad_yaml_names_file_and_line(tiny_notebooks, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("X: 1\nY: [unclosed\n")
    with pytest.raises(runner.ParameterError, match=r"bad.yaml:\d+"):
        runner.resolve_parameters(runner.resolve_notebook("90"), param_file=str(f))


def test_missing_profile_lists_available(tiny_notebooks):
    with pytest.raises(runner.ParameterError, match="available profiles: big"):
        runner.load_profile("gpu", runner.resolve_notebook("90"))


def test_new_run_dir_never_reuses(labkit_home):
    dirs = {runner.new_run_dir("x") for _ in range(5)}  # same second: suffixes -2, -3, ...
    assert len(dirs) == 5 and all(d.is_dir() and d.parent == labkit_home / "runs" / "x" for d in dirs)


def test_run_records_everything(tiny_notebooks):
    res = runner.run("90_tiny", {"X": 21}, progress=False)
    d = Path(res.run_dir)
    assert res.ok and res.records == {"double": 42, "name": "a"}
    assert (d / "90_tiny.ipynb").is_file()
    info = json.loads((d / "run.json").read_text())
    assert info["parameters"] == {"X": 21} and info["status"] == "ok"
    assert info["versions"]["python"] and info["device"] == ""  # it never called labkit.env.setup
    assert info["started"] <= info["ended"] and info["wall_s"] > 0
    assert yaml.safe_load((d / "params.yaml").read_text())["parameters"] == {"X": 21}
    # a second run never overwrites the first
    res2 = runner.run("90_tiny", {"X": 1}, progress=False)
    assert res2.run_dir != res.run_dir and json.loads((d / "run.json").read_text())["records"]["double"] == 42


def test_failed_run_keeps_notebook_and_records(tiny_notebooks):
    res = runner.run("91_fails", progress=False)
    assert res.status == "failed" and "ValueError" in res.error and "boom a" in res.error
    assert res.records == {"before": 1}  # recorded before the failure, via records.json and the notebook
    assert json.loads((Path(res.run_dir) / "run.json").read_text())["status"] == "failed"
    assert main(["run", "91_fails"]) == 1


def test_sweep_writes_table_and_plot(tiny_notebooks):
    root = runner.sweep("90_tiny", {"X": [1, 2], "NAME": ["a", "b"]})
    rows = list(csv.DictReader(open(root / "comparison.csv")))
    assert [(r["X"], r["NAME"], r["double"]) for r in rows] == [("1", "a", "2"), ("1", "b", "2"), ("2", "a", "4"), ("2", "b", "4")]
    assert all(r["status"] == "ok" for r in rows)
    assert (root / "comparison.png").stat().st_size > 1000
    assert len([p for p in root.iterdir() if p.is_dir()]) == 4


def test_sweep_cli_rejects_unknown_before_running(tiny_notebooks, labkit_home):
    assert main(["sweep", "90_tiny", "-p", "lr0", "0.1,0.01"]) == 2
    assert not (labkit_home / "runs" / "sweeps").exists() or not any((labkit_home / "runs" / "sweeps").rglob("*.ipynb"))


def test_course_summary(tiny_notebooks, capsys):
    root = runner.course(["90_tiny", "91_fails"])
    out = capsys.readouterr().out
    assert "90_tiny" in out and "failed" in out and "double=2" in out
    summary = json.loads((root / "summary.json").read_text())
    assert [s["status"] for s in summary] == ["ok", "failed"]
    assert root.parent.name == "course"


def test_bundle_kaggle_passes_schema(tiny_notebooks, tmp_path):
    import nbformat

    from labkit import kaggle

    out = kaggle.bundle_kaggle("90_tiny", {"X": 5}, datasets=["someone/vintext"], user="alice", out=tmp_path / "b")
    meta = json.loads((out / "kernel-metadata.json").read_text())
    jsonschema.validate(meta, kaggle.KAGGLE_METADATA_SCHEMA)
    assert meta["enable_gpu"] is True and meta["dataset_sources"] == ["someone/vintext"]
    assert meta["code_file"] == "90_tiny.ipynb" and meta["id"].startswith("alice/")
    nb = nbformat.read(str(out / "90_tiny.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "X = 5" in injected[0].source
    # the schema really checks: a malformed dataset or missing field fails
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**meta, "dataset_sources": ["no-slash"]}, kaggle.KAGGLE_METADATA_SCHEMA)
    with pytest.raises(runner.ParameterError, match="OWNER/SLUG"):
        kaggle.bundle_kaggle("90_tiny", datasets=["bad"], out=tmp_path / "c")


def test_shipped_profiles_name_valid_parameters(monkeypatch):
    """Every profile beside the notebooks only sets parameters that the notebooks declare."""
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(ROOT / "notebooks"))
    profiles = sorted((ROOT / "notebooks" / "profiles").glob("*.yaml"))
    assert profiles, "notebooks/profiles/ should ship at least the gpu profile"
    for prof in profiles:
        data = yaml.safe_load(prof.read_text()) or {}
        for key in data:
            if key != "_all":
                runner.resolve_parameters(runner.resolve_notebook(str(key)), profile=str(prof))  # raises on unknown names


@pytest.mark.slow
def test_cli_run_tour_twice_makes_two_run_dirs(labkit_home):
    """The issue's acceptance check: `labkit run 00_setup_and_tour -p EPOCHS 2` makes a new run folder each time."""
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(ROOT / "notebooks"), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "labkit.cli", "run", "00_setup_and_tour", "-p", "EPOCHS", "2",
           "-p", "N_TRAIN", "16", "-p", "N_VAL", "8"]
    dirs = []
    for _ in range(2):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        dirs.append(p.stdout.split("-> ")[1].split()[0])
    assert dirs[0] != dirs[1]
    for d in dirs:
        info = json.loads((Path(d) / "run.json").read_text())
        assert info["status"] == "ok" and info["records"]["epochs"] == 2 and "mAP50" in info["records"]
        assert info["parameters"]["EPOCHS"] == 2


def test_run_json_names_the_device_the_notebook_chose(tiny_notebooks):
    """run.json's device is what the notebook's ``labkit.env.setup`` chose (written into the run folder), not a
    guess made by the process that runs it. Catches: setup not writing the file (the device is then empty); with
    test_run_records_everything (a notebook without setup gets ""), the runner probing torch itself."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("DEVICE = 'auto'")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, v4.new_code_cell("import labkit\nDEV = labkit.env.setup(seed=0, device=DEVICE, quiet=True)")]
    nbformat.write(nb, str(tiny_notebooks / "92_device.ipynb"))
    res = runner.run("92_device", {"DEVICE": "cpu"}, progress=False)
    assert res.ok and json.loads((Path(res.run_dir) / "run.json").read_text())["device"] == "cpu"
