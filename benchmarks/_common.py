"""Shared by the benchmarks: one timing rule for every side, and results saved as JSON with machine info.

Every side of a comparison goes through :func:`timed` with the same ``warmup`` and ``repeat``: the warm-up runs
are not timed (imports, caches, first-call compilation), then the best of ``repeat`` timed runs is reported
(the best run is the one least disturbed by other load on the machine). :func:`interleaved` applies the same rule
to several sides at once, calling them in turn (a, b, c, a, b, c, ...) so that a load change on a shared machine
hits every side alike. :func:`save` writes
``runs/bench/<name>-<UTC time>.json`` with the machine (CPU count and model, load average, Python, platform and
package versions) next to the numbers, so a figure quoted elsewhere can name its file.
"""
from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, *, repeat: int, warmup: int, setup=None):
    """Best-of-``repeat`` seconds of ``fn(*setup())`` after ``warmup`` untimed calls; returns ``(seconds, output)``.

    ``setup`` (optional) builds fresh arguments for each call outside the timed region (e.g. deep copies)."""
    args = setup if setup is not None else (lambda: ())
    out = None
    for _ in range(warmup):
        out = fn(*args())
    best, times = float("inf"), []
    for _ in range(max(repeat, 1)):
        a = args()
        t = time.perf_counter()
        out = fn(*a)
        times.append(time.perf_counter() - t)
        best = min(best, times[-1])
    return best, out


def interleaved(fns: dict, *, repeat: int, warmup: int, setup=None) -> dict:
    """Time every side of ``fns`` (name -> callable) in turn: ``warmup`` untimed rounds, then ``repeat`` timed ones.

    ``setup`` (optional) is called before every call, outside the timed region, and returns the call's arguments.
    Returns ``{name: {"best": s, "median": s, "times": [s, ...], "out": last output}}``."""
    args = setup if setup is not None else (lambda: ())
    res = {name: {"times": [], "out": None} for name in fns}
    for _ in range(warmup):
        for name, fn in fns.items():
            res[name]["out"] = fn(*args())
    for _ in range(max(repeat, 1)):
        for name, fn in fns.items():
            a = args()
            t = time.perf_counter()
            res[name]["out"] = fn(*a)
            res[name]["times"].append(time.perf_counter() - t)
    for r in res.values():
        r["best"], r["median"] = min(r["times"]), statistics.median(r["times"])
    return res


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(packages=()) -> dict:
    """CPU count and model, load average, Python and platform, and the versions of ``packages`` (None if absent)."""
    vers = {}
    for p in ("numpy", "labkit", *packages):
        try:
            vers[p] = _md.version(p)
        except _md.PackageNotFoundError:
            vers[p] = None
    return {"cpu_count": os.cpu_count(), "cpu_model": _cpu_model(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(), "platform": platform.platform(), "versions": vers}


def save(name: str, settings: dict, results: dict, packages=(), out_dir=None) -> Path:
    """Write ``{benchmark, time_utc, settings, machine, results}`` to ``runs/bench/<name>-<time>.json``."""
    now = _dt.datetime.now(_dt.timezone.utc)
    d = Path(out_dir) if out_dir else ROOT / "runs" / "bench"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    rec = {"benchmark": name, "time_utc": now.isoformat(timespec="seconds"), "settings": settings,
           "machine": machine_info(packages), "results": results}
    path.write_text(json.dumps(rec, indent=2, default=float) + "\n")
    return path
