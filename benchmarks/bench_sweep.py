"""The same 8-point tiny sweep three ways: serially, with ``--jobs 2`` and on a local Ray.

Each point is a tiny notebook that does a fixed amount of CPU-bound work and records how long that work took.
``--kind`` picks the work:

- ``python`` (default): single-threaded, Python-bound work, a pure-Python loop and small NumPy operations
  (``--work`` units of a 20,000-step loop plus 100 NumPy calls on 8 numbers, about 1.5 ms each in a cell), like a
  real tiny notebook whose time goes to kernel start-up, imports and Python. One point keeps one core busy whatever
  its thread settings, so on 2 cores two points in parallel really overlap: this is the workload of issue 19's
  ``--jobs 2`` target.
- ``blas``: 400x400 matrix products (``--work`` of them). A serial point's BLAS already runs on every core, and the
  parallel executors give each of 2 points one thread (``labkit.sweep.thread_env``), so on 2 cores both ways do the
  same work on the same 2 cores: ``--jobs 2`` gains little over serial here (only the single-threaded kernel
  start-up and Python overlap; ``benchmarks/results/bench_sweep-20261203T131929Z.json``, 8 points, ``--work 6000``,
  2 idle cores: serial 66.6 s, ``--jobs 2`` 59.2 s, Ray 64.6 s). Kept to show that limit: parallel points pay off
  for work that does not already fill the cores.

The benchmark prints which kind ran and, per way, the wall time, the speed-up over serial, and the overhead per
point: ``(wall x slots - sum of the points' work) / points`` (kernel start, papermill, process and Ray scheduling).
Most of it (a Jupyter kernel and papermill per point) is the same for every executor, so what Ray itself costs is
printed as well: ``(Ray's wall - the local executor's wall with the same slots) x slots / points``, Ray's extra
seconds per point over ``--jobs 2``.
Issue 19's targets on 2 cores: ``--jobs 2`` at least 1.6x faster than serial (``--kind python``), Ray's overhead
under 2 s a point. Each way runs once (a sweep is too slow to repeat); results go to
``runs/bench/bench_sweep-<time>.json`` (its settings record the kind) with the machine's load average, since other
load on the machine inflates every figure.

    python benchmarks/bench_sweep.py [--kind python|blas] [--points 8] [--work N] [--no-ray]
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402


DEFAULT_WORK = {"python": 4000, "blas": 600}  # units per point: ~1.5 ms Python loops, or 400x400 matrix products


def _notebook(folder: Path) -> None:
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    p = v4.new_code_cell("SEED = 0\nWORK = 40\nKIND = 'python'")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, v4.new_code_cell(
        "import time, numpy as np, labkit\n"
        "rng = np.random.default_rng(SEED)\n"
        "a = rng.standard_normal((400, 400))\n"
        "t = time.perf_counter()\n"
        "for _ in range(WORK):\n"
        "    if KIND == 'blas':\n"
        "        b = a @ a\n"
        "    else:  # single-threaded: a Python loop and NumPy calls on 8 numbers\n"
        "        s = 0\n"
        "        for i in range(20_000):\n"
        "            s += (i * i) % 7\n"
        "        x = rng.standard_normal(8)\n"
        "        for _ in range(100):\n"
        "            x = np.tanh(0.9 * x + 0.1)\n"
        "labkit.record('work_s', time.perf_counter() - t)")]
    nbformat.write(nb, str(folder / "95_bench.ipynb"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=sorted(DEFAULT_WORK), default="python",
                    help="python: single-threaded Python-bound points (default); blas: matrix products")
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--work", type=int, default=None,
                    help="work units per point (python: ~1.5 ms loops, default 4000; "
                         "blas: 400x400 matrix products, default 600)")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    if args.work is None:
        args.work = DEFAULT_WORK[args.kind]
    print(f"kind: {args.kind} ({args.work} units of work per point, {args.points} points)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    (tmp / "notebooks").mkdir()
    _notebook(tmp / "notebooks")
    os.environ.update(LABKIT_NOTEBOOKS=str(tmp / "notebooks"), LABKIT_HOME=str(tmp / "home"), MPLBACKEND="Agg")
    from labkit import sweep as sw

    values = {"SEED": list(range(args.points))}
    ways = [("serial", 1, {"jobs": 1}), ("--jobs 2", 2, {"jobs": 2})]
    if not args.no_ray:
        try:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
            ways.append(("ray (local, 2 CPUs)", 2, {"executor": "ray", "jobs": 2}))
        except ImportError:
            print("ray not installed: skipping the Ray side (pip install -e '.[ray]')")
    results = {}
    for name, slots, kw in ways:
        t = time.perf_counter()
        root = sw.sweep("95", values, fixed={"WORK": args.work, "KIND": args.kind}, new=True, **kw)
        wall = time.perf_counter() - t
        rows = list(csv.DictReader(open(root / "comparison.csv")))
        work = sum(float(r["work_s"]) for r in rows if r.get("work_s"))
        results[name] = {"wall_s": wall, "slots": slots, "points_ok": sum(r["status"] == "ok" for r in rows),
                         "work_s_sum": work, "overhead_per_point_s": (wall * slots - work) / len(rows)}
    serial = results["serial"]["wall_s"]
    print(f"\nkind: {args.kind}\n{'way':<22}{'wall s':>8}{'speed-up':>10}{'work s (sum)':>14}{'overhead/point s':>18}")
    for name, r in results.items():
        r["speedup_vs_serial"] = serial / r["wall_s"]
        print(f"{name:<22}{r['wall_s']:>8.1f}{r['speedup_vs_serial']:>10.2f}{r['work_s_sum']:>14.1f}"
              f"{r['overhead_per_point_s']:>18.2f}")
    ray_name = "ray (local, 2 CPUs)"
    if ray_name in results:
        local = results["--jobs 2"]
        extra = (results[ray_name]["wall_s"] - local["wall_s"]) * local["slots"] / args.points
        results[ray_name]["extra_per_point_vs_jobs2_s"] = extra
        print(f"Ray's extra per point over --jobs 2: {extra:.2f} s (target < 2 s)")
    path = save("bench_sweep", vars(args), results, packages=("papermill", "ray"))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
