"""labkit sweep in parallel (--jobs/--gpus), resumable (manifest, Ctrl-C, rerun), aggregated over seeds."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat import v4
import nbformat

from labkit import sweep as sw
from labkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def envnb(tiny_notebooks):
    """93_env: records the thread/GPU variables its kernel sees, its start/end time and X*10+SEED;
    fails while the file named by FAIL exists; sleeps SLEEP seconds."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("X = 1\nSEED = 0\nSLEEP = 0.0\nFAIL = ''")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, v4.new_code_cell(
        "import os, time, labkit\n"
        "t0 = time.time()\n"
        "labkit.record('omp', os.environ.get('OMP_NUM_THREADS', ''))\n"
        "labkit.record('tf_intra', os.environ.get('TF_NUM_INTRAOP_THREADS', ''))\n"
        "labkit.record('gpu', os.environ.get('CUDA_VISIBLE_DEVICES', ''))\n"
        "cmd = open(f'/proc/{os.getppid()}/cmdline', 'rb').read() if os.path.exists('/proc') else b''\n"
        "server = b'multiprocessing.' + b'forkserver import main'  # not one literal: the spec carries this text\n"
        "labkit.record('point_process', 'forked' if server in cmd else 'exec' if cmd else '?')\n"
        "if FAIL and os.path.exists(FAIL) and SEED == 1:\n    raise ValueError('asked to fail')\n"
        "labkit.record('kernel_pid', os.getpid())\n"
        "time.sleep(SLEEP)\n"
        "labkit.record('value', X * 10 + SEED)\n"
        "labkit.record('t0', t0)\nlabkit.record('t1', time.time())")]
    nbformat.write(nb, str(tiny_notebooks / "93_env.ipynb"))
    return tiny_notebooks


def test_point_env_splits_threads_and_assigns_gpu():
    """Catches: a thread variable left out (TF's), the GPU not set, the parent's LABKIT_RUN_DIR leaking."""
    env = sw.point_env(3, "2", base={"PATH": "/bin", "LABKIT_RUN_DIR": "/x", "CUDA_VISIBLE_DEVICES": "0,1"})
    assert {env[k] for k in sw.THREAD_VARS} == {"3"} and env["TF_NUM_INTEROP_THREADS"] == "2"
    assert env["CUDA_VISIBLE_DEVICES"] == "2" and env["PATH"] == "/bin" and "LABKIT_RUN_DIR" not in env
    assert sw.point_env(0, None, base={"CUDA_VISIBLE_DEVICES": "0,1"})["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert sw.point_env(0, None, base={})["OMP_NUM_THREADS"] == "1"  # never 0 threads


def test_aggregate_mean_std_n():
    """Hand-computed: [1, 2, 3] has mean 2 and sample std 1 (ddof=0 would give 0.816); failed rows are out;
    a boolean's mean is the fraction of seeds where it held. Catches ddof=0, grouping by SEED, counting failures."""
    rows = [{"LR": 0.1, "SEED": s, "status": "ok", "acc": a, "good": g}
            for s, a, g in [(0, 1, True), (1, 2, False), (2, 3, True)]]
    rows += [{"LR": 0.1, "SEED": 3, "status": "failed", "acc": 100, "good": False},
             {"LR": 0.2, "SEED": 0, "status": "ok", "acc": "0.5", "good": "True"}]
    agg = sw.aggregate(rows, by=["LR"])
    assert [a["LR"] for a in agg] == [0.1, 0.2] and [a["n"] for a in agg] == [3, 1]
    assert agg[0]["acc_mean"] == pytest.approx(2.0) and agg[0]["acc_std"] == pytest.approx(1.0)
    assert agg[0]["good_mean"] == pytest.approx(2 / 3) and agg[0]["acc_n"] == 3
    assert agg[1]["acc_mean"] == 0.5 and agg[1]["acc_std"] is None and agg[1]["good_mean"] == 1.0
    assert "SEED_mean" not in agg[0]
    assert sw.mean_std_text(agg[0], "acc") == "2 ± 1 (n=3)"


def test_jobs_run_points_in_parallel_with_their_own_env(envnb, labkit_home):
    """Two points with --jobs 2 --gpus 5,6: they overlap in time, each kernel sees one GPU (different ones) and
    its share of the cores, and (Linux) each point's process is a child of the sweep's fork server, not a fresh
    Python that imports papermill again. Catches: jobs ignored (serial), the GPU or thread env not reaching the
    kernel, the fork server not used (each point exec'ing ``python -m labkit.sweep _point``)."""
    root = sw.sweep("93", {"X": [1, 2]}, fixed={"SLEEP": 2.0}, gpus=["5", "6"])
    rows = list(csv.DictReader(open(root / "comparison.csv")))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    if sys.platform.startswith("linux"):
        assert [r["point_process"] for r in rows] == ["forked", "forked"]
    assert sorted(r["gpu"] for r in rows) == ["5", "6"]
    share = str(max(1, sw.cpu_count() // 2))
    assert all(r["omp"] == share and r["tf_intra"] == share for r in rows)
    (a0, a1), (b0, b1) = [(float(r["t0"]), float(r["t1"])) for r in rows]
    assert a0 < b1 and b0 < a1, "the two points did not run at the same time"
    manifest = json.loads((root / "sweep.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["ok", "ok"]


def test_bad_jobs_and_gpus_are_one_line_errors(envnb, capsys):
    assert main(["sweep", "93", "-p", "X", "1", "--jobs", "0"]) == 2
    assert main(["sweep", "93", "-p", "X", "1", "--jobs", "3", "--gpus", "0,1"]) == 2
    assert main(["sweep", "--resume", "/nonexistent/sweep"]) == 2
    err = capsys.readouterr().err
    assert "--jobs 0" in err and "one point per GPU" in err and "no sweep.json" in err and "Traceback" not in err


def test_rerun_skips_finished_and_aggregates_over_seeds(envnb, labkit_home, tmp_path):
    """Run 1: SEED=1 fails (a flag file). Rerunning the same sweep reruns only that point, into a new folder;
    the finished points' run.json is untouched. The aggregate is mean ± std over seeds with n.
    Catches: rerunning finished points, overwriting the failed attempt, aggregating a failed run."""
    flag = tmp_path / "fail-now"
    flag.write_text("x")
    values = {"X": [1, 2], "SEED": [0, 1]}
    fixed = {"FAIL": str(flag)}
    root = sw.sweep("93", values, fixed=fixed, jobs=2)
    m = json.loads((root / "sweep.json").read_text())
    assert [p["status"] for p in m["points"]] == ["ok", "failed", "ok", "failed"]
    agg = list(csv.DictReader(open(root / "aggregate.csv")))
    assert [(r["X"], r["n"], r["value_mean"]) for r in agg] == [("1", "1", "10.0"), ("2", "1", "20.0")]
    ok_json = root / m["points"][0]["run_dir"] / "run.json"
    before = ok_json.read_text(), ok_json.stat().st_mtime_ns
    flag.unlink()
    assert sw.sweep("93", values, fixed=fixed, jobs=2) == root  # the same command continues the same folder
    m2 = json.loads((root / "sweep.json").read_text())
    assert [p["status"] for p in m2["points"]] == ["ok"] * 4
    assert [len(p["attempts"]) for p in m2["points"]] == [1, 2, 1, 2]
    failed_first = root / m2["points"][1]["attempts"][0] / "run.json"
    assert json.loads(failed_first.read_text())["status"] == "failed"  # the failed attempt is kept
    assert (ok_json.read_text(), ok_json.stat().st_mtime_ns) == before
    agg = list(csv.DictReader(open(root / "aggregate.csv")))
    assert [(r["X"], r["n"]) for r in agg] == [("1", "2"), ("2", "2")]
    assert [float(r["value_mean"]) for r in agg] == [10.5, 20.5]
    assert [float(r["value_std"]) for r in agg] == pytest.approx([0.5 ** 0.5] * 2)


def test_ctrl_c_records_finished_points_then_resume(envnb, labkit_home):
    """SIGINT to a `labkit sweep --jobs 2` process while points run: exit 130, the manifest says which points
    finished and which were interrupted; `--resume DIR` runs only the unfinished ones.
    Catches: children left running, an unwritten manifest, a resume that reruns finished points."""
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(envnb), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "labkit.cli", "sweep", "93", "-p", "SLEEP", "0,60,60", "--jobs", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = labkit_home / "runs" / "sweeps" / "93_env"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until the SLEEP=0 point is done and a SLEEP=60 one runs
        ms = list(base.glob("*/sweep.json"))
        if ms:
            st = [p["status"] for p in json.loads(ms[0].read_text())["points"]]
            if st[0] == "ok" and "running" in st[1:]:
                break
        time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the sweep did not get going: " + proc.communicate()[1][-2000:])
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    root = ms[0].parent
    m = json.loads(ms[0].read_text())
    assert m["points"][0]["status"] == "ok" and {p["status"] for p in m["points"][1:]} <= {"interrupted", "pending"}
    assert "interrupted" in [p["status"] for p in m["points"]]
    rows = list(csv.DictReader(open(root / "comparison.csv")))
    assert rows[0]["status"] == "ok"
    # resume with short sleeps is not possible (the points are fixed); stop them quickly with a timeout instead
    r = subprocess.run([sys.executable, "-m", "labkit.cli", "sweep", "--resume", str(root), "--jobs", "2",
                        "--timeout", "1"], env=env, capture_output=True, text=True, timeout=120)
    m2 = json.loads((root / "sweep.json").read_text())
    assert m2["points"][0]["attempts"] == m["points"][0]["attempts"]  # the finished point was skipped
    assert all(len(p["attempts"]) >= 1 for p in m2["points"][1:])
    assert [p["status"] for p in m2["points"][1:]] == ["failed", "failed"] and r.returncode == 1  # cell timeout


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"  # a zombie has stopped running
    except (OSError, IndexError):
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_killed_driver_interrupts_its_points(envnb, labkit_home):
    """SIGKILL to a `labkit sweep --jobs 2` driver while two 60 s points run: within seconds each point records
    ``interrupted`` in its own run.json and its kernel is gone. Catches: forked points keeping the fork server alive
    (their copy of its "alive" pipe left open: they ran the full 60 s and wrote ``ok``), no parent-death signal."""
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(envnb), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "labkit.cli", "sweep", "93", "-p", "X", "1,2", "--set", "SLEEP", "60", "--jobs", "2"]
    err = open(labkit_home / "driver.err", "w")  # not a pipe: the points would hold it open  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    base = labkit_home / "runs" / "sweeps" / "93_env"
    deadline, records = time.monotonic() + 90, []
    while time.monotonic() < deadline and len(records) < 2:  # both kernels are in their sleep
        records = [r for r in base.glob("*/*/records.json") if "kernel_pid" in r.read_text()]
        time.sleep(0.3)
    if len(records) < 2:
        proc.kill()
        proc.wait()
        pytest.fail("the points did not get going: " + (labkit_home / "driver.err").read_text()[-2000:])
    t_kill = time.monotonic()
    proc.kill()
    proc.wait(timeout=30)
    err.close()
    runs = [r.parent / "run.json" for r in records]
    pids = [json.loads(r.read_text())["kernel_pid"] for r in records]
    while time.monotonic() - t_kill < 30 and not (all(r.exists() for r in runs) and all(map(_gone, pids))):
        time.sleep(0.3)
    assert [json.loads(r.read_text())["status"] if r.exists() else "no run.json" for r in runs] == ["interrupted"] * 2
    assert all(map(_gone, pids)) and time.monotonic() - t_kill < 30


def test_script_sweeping_at_top_level_is_not_rerun_by_its_points(envnb, labkit_home, tmp_path):
    """A script that calls sweep() at top level (no ``if __name__ == "__main__"``) with jobs=2: its points do not
    import the script again (multiprocessing would: each point would start the sweep over). Catches: the driver's
    ``__main__`` handed to the forked points."""
    script = tmp_path / "drive.py"
    script.write_text("from labkit import sweep\nsweep.sweep('93', {'X': [1, 2]}, jobs=2)\nprint('driver done')\n")
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(envnb), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stdout.count("driver done") == 1, r.stderr[-2000:]
    (root,) = [m.parent for m in (labkit_home / "runs" / "sweeps" / "93_env").glob("*/sweep.json")]
    m = json.loads((root / "sweep.json").read_text())
    assert [p["status"] for p in m["points"]] == ["ok", "ok"] and [len(p["attempts"]) for p in m["points"]] == [1, 1]
