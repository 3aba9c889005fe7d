"""labkit sweep --executor ray on a Ray started on 127.0.0.1 inside the test: kill the driver mid-way, resume,
check the aggregate over seeds. Skipped only when the optional [ray] extra is not installed."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from nbformat import v4

ray = pytest.importorskip("ray", reason="the optional [ray] extra is not installed (pip install -e '.[ray]')")

from labkit import sweep as sw  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_ray_sweep_killed_then_resumed_aggregates_over_seeds(tiny_notebooks, labkit_home, local_ray):
    """4 points (X 1,2 x SEED 0,1) as Ray tasks from a driver process that is SIGKILLed once a point finished;
    the manifest then holds finished and unfinished points; resuming runs only the unfinished ones (into the same
    folder layout) and aggregate.csv has mean ± std over the 2 seeds. Catches: outputs not brought back from the
    task, a resume that reruns finished points, aggregating per point instead of over seeds, a task that starts a
    fresh Python per point instead of forking it from the worker's fork server."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("X = 1\nSEED = 0\nSLEEP = 0.0")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, v4.new_code_cell(
        "import os, time, labkit\ntime.sleep(SLEEP * X)\nlabkit.record('value', X * 10 + SEED)\n"
        "cmd = open(f'/proc/{os.getppid()}/cmdline', 'rb').read() if os.path.exists('/proc') else b''\n"
        "server = b'multiprocessing.' + b'forkserver import main'  # not one literal: the spec carries this text\n"
        "labkit.record('point_process', 'forked' if server in cmd else 'exec' if cmd else '?')")]
    nbformat.write(nb, str(tiny_notebooks / "94_ray.ipynb"))
    env = {**os.environ, "LABKIT_NOTEBOOKS": str(tiny_notebooks), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "labkit.cli", "sweep", "94", "-p", "X", "1,2", "-p", "SEED", "0,1",
           "--set", "SLEEP", "4", "--executor", "ray", "--address", local_ray]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = labkit_home / "runs" / "sweeps" / "94_ray"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ms = list(base.glob("*/sweep.json"))
        if ms and "ok" in [p["status"] for p in json.loads(ms[0].read_text())["points"]]:
            break
        if proc.poll() is not None:
            pytest.fail("the driver ended early: " + proc.communicate()[1][-2000:])
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("no point finished in time: " + proc.communicate()[1][-2000:])
    proc.send_signal(signal.SIGKILL)  # a killed driver: no chance to clean up
    proc.communicate(timeout=30)
    root = ms[0].parent
    first = json.loads(ms[0].read_text())["points"]
    done = [p["index"] for p in first if p["status"] == "ok"]
    assert done and len(done) < 4, [p["status"] for p in first]
    finished_dir = root / first[done[0]]["run_dir"]
    assert json.loads((finished_dir / "run.json").read_text())["run_dir"] == str(finished_dir)  # unpacked here
    assert (finished_dir / "94_ray.ipynb").is_file()

    out = sw.sweep(resume=root, executor="ray")
    assert out == root
    m = json.loads((root / "sweep.json").read_text())["points"]
    assert [p["status"] for p in m] == ["ok"] * 4
    for i in done:
        assert m[i]["attempts"] == first[i]["attempts"]  # finished points were not rerun
    rows = list(csv.DictReader(open(root / "comparison.csv")))
    assert sorted(int(r["value"]) for r in rows) == [10, 11, 20, 21]
    if sys.platform.startswith("linux"):  # each task forks its point from the worker's fork server (no re-imports)
        assert {r["point_process"] for r in rows} == {"forked"}
    agg = list(csv.DictReader(open(root / "aggregate.csv")))
    assert [(r["X"], r["n"], float(r["value_mean"])) for r in agg] == [("1", "2", 10.5), ("2", "2", 20.5)]
    assert float(agg[0]["value_std"]) == pytest.approx(0.5 ** 0.5)
