"""Issue 14 (part A) regressions: bad input gets one clear line (exit 2), nothing is lost, the runner is quiet.

Every test here failed on the main before the fix (checked against a copy of the old labkit package); the
comment on each names the defect, i.e. the mutation of the code that it catches.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from labkit import runner
from labkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(err: str) -> str:
    """The single stderr line of a user error; fails when there is a traceback or several lines."""
    lines = [ln for ln in err.splitlines() if ln.strip() and "cells [" not in ln]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert ": error: " in lines[0], err
    return lines[0]


@pytest.fixture
def nbs(tiny_notebooks):
    """tiny_notebooks plus 92_typed: a parameters cell with the common names labkit knows ranges for."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("BATCH = 16\nEPOCHS = 5\nN_TRAIN = 64\nIMGSZ = 128\nSEED = 0\nFLAG = True\n"
                         "LR = 0.01\nNAME = 'a'\nN_ANY = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [v4.new_markdown_cell("# Typed\n## First section"), p,
                v4.new_code_cell("import labkit\nlabkit.record('seed', SEED)"),
                v4.new_markdown_cell("## Second section"), v4.new_code_cell("print('hello from the kernel')")]
    nbformat.write(nb, str(tiny_notebooks / "92_typed.ipynb"))
    return tiny_notebooks


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if papermill would start a kernel."""
    import papermill

    def boom(*a, **k):
        raise AssertionError("a kernel was started although the input was invalid")

    monkeypatch.setattr(papermill, "execute_notebook", boom)


# ---------------------------------------------------------------------------------------------- item 2: profiles
def test_profile_number_key_written_bare_applies(nbs, labkit_home):
    """`90:` is an int in YAML; the old loader looked up only the string '90' and silently ignored it."""
    (nbs / "profiles" / "num.yaml").write_text("90:\n  X: 5\n")
    assert runner.resolve_parameters(runner.resolve_notebook("90"), profile="num") == {"X": 5}


def test_profile_key_naming_no_notebook_is_an_error(nbs, capsys, no_kernel):
    """A key such as `99_typo` was ignored without a word."""
    (nbs / "profiles" / "typo.yaml").write_text("99_typo:\n  X: 5\n")
    assert main(["run", "90", "--profile", "typo"]) == 2
    assert "99_typo" in one_line_error(capsys.readouterr().err)


def test_profile_value_not_a_mapping_is_one_line(nbs, capsys, no_kernel):
    """`'90': [1, 2]` gave a TypeError traceback (dict.update of a list)."""
    (nbs / "profiles" / "list.yaml").write_text("'90': [1, 2]\n")
    assert main(["run", "90", "--profile", "list"]) == 2
    assert "must map NAME: value" in one_line_error(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------- item 3: no overwrites
def test_eval_out_over_an_input_is_refused(tmp_path, capsys):
    """`--out g.json` replaced the ground truth with the metrics."""
    from coco_random import random_coco

    gt, dets = random_coco(1, n_images=4)
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    g.write_text(json.dumps(gt))
    p.write_text(json.dumps(dets))
    before = g.read_bytes(), p.read_bytes()
    for out in (g, p):
        assert main(["eval", "--gt", str(g), "--pred", str(p), "--out", str(out)]) == 2
        assert "input" in one_line_error(capsys.readouterr().err)
    assert (g.read_bytes(), p.read_bytes()) == before


def test_eval_out_folder_is_one_line(tmp_path, capsys):
    """`--out DIR` raised IsADirectoryError after computing everything."""
    from coco_random import random_coco

    gt, dets = random_coco(2, n_images=3)
    (tmp_path / "g.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps(dets))
    (tmp_path / "outdir").mkdir()
    rc = main(["eval", "--gt", str(tmp_path / "g.json"), "--pred", str(tmp_path / "p.json"),
               "--out", str(tmp_path / "outdir")])
    assert rc == 2 and "is a folder" in one_line_error(capsys.readouterr().err)


def test_course_same_notebook_twice_keeps_both_runs(nbs, monkeypatch):
    """`course 90 90_tiny.ipynb` ran both into one folder: the second run overwrote the first's run.json."""
    import papermill

    def fake(inp, out, parameters=None, **kw):  # no kernel: the executed notebook is the input
        shutil.copy(inp, out)

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    root = runner.course(["90", "90_tiny.ipynb"], progress=False)
    dirs = sorted(d.name for d in root.iterdir() if d.is_dir())
    assert dirs == ["90_tiny", "90_tiny-2"]
    assert all((root / d / "run.json").is_file() for d in dirs)


# ---------------------------------------------------------------------------------------------- item 4: Ctrl-C
def _interrupt_on_call(monkeypatch, n_ok: int):
    """execute_notebook copies the notebook for the first n_ok calls, then raises KeyboardInterrupt."""
    import papermill

    calls = []

    def fake(inp, out, parameters=None, **kw):
        calls.append(parameters)
        if len(calls) > n_ok:
            raise KeyboardInterrupt
        shutil.copy(inp, out)

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return calls


def _main_no_escape(argv):
    try:
        return main(argv)
    except KeyboardInterrupt:  # must not escape (the old code let it through, with a traceback)
        pytest.fail("KeyboardInterrupt escaped labkit's main()")


def test_ctrl_c_in_run_records_interrupted(nbs, labkit_home, monkeypatch, capsys):
    """Ctrl-C printed a KeyboardInterrupt traceback and left the run folder without run.json."""
    _interrupt_on_call(monkeypatch, 0)
    assert _main_no_escape(["run", "90"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err
    (run_json,) = (labkit_home / "runs" / "90_tiny").glob("*/run.json")
    info = json.loads(run_json.read_text())
    assert info["status"] == "interrupted" and info["started"] <= info["ended"] and info["wall_s"] >= 0


def test_ctrl_c_in_sweep_writes_finished_points(nbs, labkit_home, monkeypatch, capsys):
    """An interrupted sweep wrote no comparison.csv: the finished points were lost."""
    _interrupt_on_call(monkeypatch, 1)
    assert _main_no_escape(["sweep", "90", "-p", "X", "1,2,3"]) == 130
    assert "Traceback" not in capsys.readouterr().err
    (table,) = (labkit_home / "runs" / "sweeps" / "90_tiny").glob("*/comparison.csv")
    rows = list(csv.DictReader(open(table)))
    assert [(r["X"], r["status"]) for r in rows] == [("1", "ok"), ("2", "interrupted")]


def test_ctrl_c_in_course_writes_summary(nbs, labkit_home, monkeypatch, capsys):
    """An interrupted course wrote no summary.json/summary.csv."""
    _interrupt_on_call(monkeypatch, 1)
    assert _main_no_escape(["course", "90", "91"]) == 130
    (summary,) = (labkit_home / "runs" / "course").glob("*/summary.json")
    assert [r["status"] for r in json.loads(summary.read_text())] == ["ok", "interrupted"]
    assert (summary.parent / "summary.csv").is_file()


# ---------------------------------------------------------------------------------------------- item 5: sweep failures
def test_sweep_every_point_failing_exits_1_with_reasons(nbs, labkit_home, capsys):
    """`labkit sweep` exited 0 when every point failed, and its table gave no reason."""
    assert main(["sweep", "91", "-p", "NAME", "x,y"]) == 1
    (table,) = (labkit_home / "runs" / "sweeps" / "91_fails").glob("*/comparison.csv")
    rows = list(csv.DictReader(open(table)))
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "boom x" in rows[0]["error"] and "boom y" in rows[1]["error"]
    assert "boom x" in capsys.readouterr().out  # the printed table shows the reason too


# ---------------------------------------------------------------------------------------------- item 6: folders
def test_labkit_home_does_not_move_the_notebooks(tmp_path, monkeypatch, capsys):
    """LABKIT_HOME=/elsewhere made `labkit params 00` fail with 'available: (none)' (notebooks looked up there)."""
    monkeypatch.delenv("LABKIT_NOTEBOOKS", raising=False)
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "datahome"))
    monkeypatch.chdir(tmp_path)  # outside the checkout, too
    assert runner.notebooks_dir() == ROOT / "notebooks"
    assert main(["params", "00"]) == 0
    assert "EPOCHS" in capsys.readouterr().out


def test_unwritable_labkit_home_is_one_line(nbs, tmp_path, monkeypatch, capsys, no_kernel):
    """A LABKIT_HOME that cannot be written gave an OSError traceback (root ignores modes: a file as parent)."""
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "afile" / "home"))
    assert main(["run", "90"]) == 2
    assert "LABKIT_HOME" in one_line_error(capsys.readouterr().err)


def test_doctor_with_unwritable_home(tmp_path, monkeypatch):
    """`labkit doctor` itself crashed on a read-only LABKIT_HOME."""
    from labkit import env

    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "afile" / "home"))
    monkeypatch.setattr(env, "is_online", lambda *a, **k: False)
    info = env.doctor(file=open(os.devnull, "w"))
    assert "not writable" in info["LABKIT_HOME"]


# ---------------------------------------------------------------------------------------------- item 7: tracebacks
@pytest.mark.parametrize("argv,needle", [
    (["links", "--repo", "bad name"], "bad name"),
    (["data", "shapes", "--imgsz", "0"], "--imgsz"),
    (["strip", str(ROOT / "README.md")], "not a Jupyter notebook"),
])
def test_one_line_errors(argv, needle, capsys, labkit_home):
    """Each of these raised a traceback (ValueError, ValueError from make_shapes, NotJSONError)."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    assert rc == 2
    assert needle in one_line_error(capsys.readouterr().err)


def test_strip_readme_leaves_it_untouched(capsys):
    before = (ROOT / "README.md").read_bytes()
    assert main(["strip", str(ROOT / "README.md")]) == 2
    assert (ROOT / "README.md").read_bytes() == before


def test_eval_deeply_nested_json(tmp_path, capsys):
    """json.loads raised RecursionError (a traceback)."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "g.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    for argv in (["--gt", str(deep), "--pred", str(deep)], ["--gt", str(tmp_path / "g.json"), "--pred", str(deep)]):
        assert main(["eval", *argv]) == 2
        assert "deep.json" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("kind", ["binary", "folder"])
def test_param_file_binary_or_folder(nbs, tmp_path, kind, capsys, no_kernel):
    """`-f` naming a binary file (UnicodeDecodeError) or a folder (IsADirectoryError) gave a traceback."""
    f = tmp_path / "params.bin"
    if kind == "binary":
        f.write_bytes(bytes(range(256)) * 4)
    else:
        f.mkdir()
    assert main(["run", "90", "-f", str(f)]) == 2
    assert "params.bin" in one_line_error(capsys.readouterr().err)


def test_broken_pipe_is_quiet(tmp_path):
    """`labkit links | head -c 1` ended with a BrokenPipeError traceback (output larger than the pipe buffer)."""
    for i in range(400):  # ~250 kB of table: far more than a 64 kB pipe holds
        (tmp_path / f"{i % 100:02d}_{'x' * 150}_{i}.ipynb").write_text("{}")
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(tmp_path)}
    code = "import sys; from labkit.cli import main; sys.exit(main(['links']))"
    p = subprocess.run(f"{sys.executable} -c \"{code}\" | head -c 1", shell=True, capture_output=True,
                       text=True, timeout=120, cwd=ROOT, env=env)
    assert p.stdout == "|"
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr


# ---------------------------------------------------------------------------------------------- item 8: parameters
@pytest.mark.parametrize("name,value,needle", [
    ("BATCH", "0", ">= 1"),        # Ultralytics silently fell back to 16; the run reported ok
    ("N_TRAIN", "0", ">= 1"),      # KeyError: 'train' inside the notebook
    ("EPOCHS", "abc", "integer"),  # failed only after the kernel started
    ("IMGSZ", "-5", ">= 32"),
    ("EPOCHS", "1:30", "integer"),  # YAML 1.1 read 1:30 as 90
    ("FLAG", "no", "true or false"),  # YAML 1.1 read no as False (a string now, refused for a bool)
    ("LR", ".nan", "finite"),
    ("SEED", "-1", "in [0,"),
])
def test_bad_values_refused_before_any_kernel(nbs, name, value, needle, capsys, no_kernel, labkit_home):
    assert main(["run", "92", "-p", name, value]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert name in line and needle in line
    assert not (labkit_home / "runs" / "92_typed").exists()  # nothing created either


def test_yaml_12_values(nbs):
    nb = runner.resolve_notebook("92")
    got = runner.resolve_parameters(nb, {"SEED": runner.CliText("012"), "NAME": runner.CliText("1:30"),
                                         "LR": runner.CliText("1e-3"), "EPOCHS": runner.CliText("0o17"),
                                         "N_ANY": runner.CliText("no")})
    assert got == {"SEED": 12, "NAME": "1:30", "LR": 0.001, "EPOCHS": 15, "N_ANY": "no"}  # 1.1: 10, 90, -, -, False
    assert type(got["LR"]) is float
    assert runner.resolve_parameters(nb, {"NAME": runner.CliText("007")}) == {"NAME": "007"}  # text stays as typed
    assert runner.parse_value("2002-12-14") == "2002-12-14" and runner.parse_value("on") == "on"
    assert runner.parse_value("true") is True and runner.parse_value("~") is None


def test_param_file_uses_yaml_12_and_types(nbs, tmp_path, capsys, no_kernel):
    f = tmp_path / "p.yaml"
    f.write_text("SEED: 012\nNAME: 1:30\n")
    assert runner.resolve_parameters(runner.resolve_notebook("92"), param_file=str(f)) == {"SEED": 12, "NAME": "1:30"}
    f.write_text("FLAG: no\n")
    assert main(["run", "92", "-f", str(f)]) == 2
    assert "FLAG" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("annotation,default,value,ok", [
    ("float", "1", 2.5, True),          # an annotation wins over the default's type (int)
    ("float", "1", "x", False),
    ("Optional[int]", "None", None, True),
    ("Optional[int]", "None", "x", False),
    ("int | None", "None", 3, True),
    ("None", "None", "anything", True),  # no annotation, default None: any value
])
def test_types_from_annotations(annotation, default, value, ok):
    """Papermill reports `X: float = 1` as inferred_type_name 'float'; ignoring it would refuse 2.5 / accept 'x'."""
    decl = {"default": default, "inferred_type_name": annotation}
    if ok:
        runner.check_value(Path("90_x.ipynb"), "X", value, decl)
    else:
        with pytest.raises(runner.ParameterError, match="X"):
            runner.check_value(Path("90_x.ipynb"), "X", value, decl)


def test_range_not_applied_where_the_default_is_outside(tiny_notebooks):
    """Notebook 01's N_TRAIN = 0 means 'all': a range is checked only where the default lies in it."""
    decl = {"default": "0", "inferred_type_name": "None"}
    assert runner.check_value(Path("01_x.ipynb"), "N_TRAIN", 0, decl) == 0
    with pytest.raises(runner.ParameterError):
        runner.check_value(Path("00_x.ipynb"), "N_TRAIN", 0, {"default": "64", "inferred_type_name": "None"})


def test_help_states_the_yaml_rules(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "YAML 1.2" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- item 13: terminal
def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("labkit ")


def test_run_is_quiet_shows_sections_and_streams_with_log_output(nbs, labkit_home):
    """The kernel's TCP warning reached the terminal; nothing showed progress; no --log-output."""
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(nbs), "LABKIT_HOME": str(labkit_home)}
    cmd = [sys.executable, "-m", "labkit.cli", "run", "92", "--log-output", "--timeout", "60"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "without encryption" not in p.stderr and "IPKernelApp" not in p.stderr
    assert "Second section" in p.stderr  # the progress bar names the current section
    assert "hello from the kernel" in p.stdout  # --log-output streamed the cell's print
    (log,) = (labkit_home / "runs" / "92_typed").glob("*/kernel.log")  # the kernel's own lines are kept there


def test_timeout_fails_the_run(tiny_notebooks, labkit_home, capsys):
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("SECONDS = 30")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, v4.new_code_cell("import time\ntime.sleep(SECONDS)")]
    nbformat.write(nb, str(tiny_notebooks / "93_slow.ipynb"))
    assert main(["run", "93", "--timeout", "2"]) == 1
    (run_json,) = (labkit_home / "runs" / "93_slow").glob("*/run.json")
    info = json.loads(run_json.read_text())
    assert info["status"] == "failed" and "timed out" in info["error"].lower() and info["wall_s"] < 25


# ---------------------------------------------------------------------------------------------- item 14: eval wording
def _gt_and_preds(tmp_path, score):
    from coco_random import random_coco

    gt, dets = random_coco(3, n_images=3)
    dets[0]["score"] = score
    g, p = tmp_path / "g.json", tmp_path / "p.json"
    g.write_text(json.dumps(gt))
    p.write_text(json.dumps(dets))  # json writes Infinity / NaN
    return g, p


def test_eval_infinite_score_is_not_called_nan(tmp_path, capsys):
    g, p = _gt_and_preds(tmp_path, float("inf"))
    assert main(["eval", "--gt", str(g), "--pred", str(p)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "inf" in line and "NaN" not in line and "p.json" in line


def test_eval_messages_name_the_file_not_an_object(tmp_path, capsys):
    g, p = _gt_and_preds(tmp_path, 0.5)
    dets = json.loads(p.read_text())
    dets[0]["image_id"] = 987654
    p.write_text(json.dumps(dets))
    assert main(["eval", "--gt", str(g), "--pred", str(p)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "<prediction object>" not in line and str(p) in line


def test_eval_empty_prediction_folder_fails(tmp_path, capsys):
    """A prediction folder without .txt files reported all-zero metrics with exit 0."""
    from labkit.data.synthetic import make_shapes

    ds = make_shapes(root=tmp_path / "shapes", n_train=1, n_val=2, imgsz=64, seed=0)
    empty = tmp_path / "preds"
    empty.mkdir()
    (empty / "notes.md").write_text("not a prediction")
    assert main(["eval", "--gt", str(ds.yolo_yaml), "--pred", str(empty)]) == 2
    assert "no .txt prediction files" in one_line_error(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------- general
def test_debug_shows_the_traceback(capsys):
    from labkit.errors import UserError

    with pytest.raises(UserError):
        main(["--debug", "links", "--repo", "bad name"])
    assert main(["links", "--repo", "bad name"]) == 2
    with pytest.raises(UserError):  # also where a handler reports errors itself
        main(["eval", "--debug", "--gt", "missing.json", "--pred", "missing.json"])
    assert main(["eval", "--gt", "missing.json", "--pred", "missing.json"]) == 2


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run"])
    assert e.value.code == 2
    one_line_error(capsys.readouterr().err)


@pytest.mark.slow
def test_real_sigint_during_a_cell(tiny_notebooks, labkit_home):
    """A real SIGINT (not a monkeypatched one) while a cell sleeps: exit 130, one line, run.json interrupted with
    the values recorded before, and the kernel shut down (mutation: dropping `except KeyboardInterrupt` in run())."""
    import signal
    import time

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("SECONDS = 120")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, v4.new_code_cell("import labkit\nlabkit.record('before', 1)"),
                v4.new_code_cell("import time\ntime.sleep(SECONDS)")]
    nbformat.write(nb, str(tiny_notebooks / "93_slow.ipynb"))
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(tiny_notebooks), "LABKIT_HOME": str(labkit_home)}
    proc = subprocess.Popen([sys.executable, "-m", "labkit", "run", "93"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not list(labkit_home.glob("runs/93_slow/*/records.json")):
        time.sleep(0.5)
    time.sleep(2)  # now inside time.sleep(SECONDS)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    (run_json,) = labkit_home.glob("runs/93_slow/*/run.json")
    info = json.loads(run_json.read_text())
    assert info["status"] == "interrupted" and info["records"] == {"before": 1} and info["wall_s"] < 120
