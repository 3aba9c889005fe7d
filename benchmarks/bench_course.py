"""Wall time of the smoke course: every notebook on its default (CPU) parameters, one after another.

    python benchmarks/bench_course.py            # all notebooks
    python benchmarks/bench_course.py 00 05      # some of them

Prints one row per notebook (status, wall seconds, share of the total) and the total against the course's
budget: the whole smoke course must stay under 15 minutes on 2 CPU cores. This is a measurement, not a test.
Each notebook runs once (too slow to repeat); the rows are saved with machine info to
``runs/bench/bench_course-<time>.json``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402

BUDGET_S = 15 * 60


def main(argv: list[str]) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    from labkit import env, runner

    nbs = [runner.resolve_notebook(n) for n in argv] if argv else runner.list_notebooks()
    print(f"cpus: {os.cpu_count()}  device: {env.device_info()['torch_device']}  notebooks: {len(nbs)}")
    t0 = time.perf_counter()
    rows = []
    for nb in nbs:
        res = runner.run(nb, kind=f"bench/{nb.stem}", progress=False)
        rows.append({"notebook": nb.stem, "status": res.status, "wall_s": res.wall_s})
        print(f"  {nb.stem}: {res.status} {res.wall_s:.1f} s", flush=True)
    total = time.perf_counter() - t0
    for r in rows:
        r["share"] = f"{100 * r['wall_s'] / total:.0f}%"
    print()
    print(runner.format_table(rows))
    print(f"\ntotal {total:.1f} s = {total / 60:.1f} min; budget {BUDGET_S / 60:.0f} min "
          f"({'within' if total <= BUDGET_S else 'OVER'} budget, {total / BUDGET_S:.2f}x of it)")
    path = save("bench_course", {"notebooks": [nb.stem for nb in nbs], "budget_s": BUDGET_S},
                {"rows": rows, "total_s": total}, packages=("torch", "tensorflow", "ultralytics", "papermill"))
    print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
