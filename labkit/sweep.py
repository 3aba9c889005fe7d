"""Sweeps: a grid of parameter values, one papermill run per point, serial, in parallel or on a Ray cluster.

One papermill run (:func:`labkit.runner.run`) stays the unit of work; existing engines run those units:

- serial (``jobs=1``, the default): the points run one after another in this process;
- local (``jobs=N`` or ``gpus=[...]``): each point runs in its own process, at most N at a time; on Linux each
  point's process is forked from a fork server that imported papermill, nbformat and Jupyter's kernel machinery
  once for this process, so a point does not pay seconds of imports before its kernel starts (elsewhere:
  ``python -m labkit.sweep _point``); the CPU cores are split between them (``OMP/MKL/OPENBLAS/NUMEXPR_NUM_THREADS`` and TensorFlow's
  ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``; torch reads ``OMP_NUM_THREADS``), and with ``gpus`` each
  running point gets one GPU through ``CUDA_VISIBLE_DEVICES``. The Jupyter kernel inherits its process's
  environment, so the notebook sees these values (checked by the tests);
- ray (``executor="ray"``): each point is a Ray task (``num_gpus=1`` where the cluster has GPUs, else a CPU
  share); the task runs the point (forked from the worker's own fork server, as above) into a temporary folder
  on its node and returns the folder as a tar archive,
  which the driver unpacks into the sweep folder: the layout is the same as with the other executors, with or
  without a shared filesystem.

The sweep folder ``runs/sweeps/<notebook>/<timestamp>/`` holds ``sweep.json``, the manifest of its points
(written atomically after every change), one folder per attempt at a point (``00_X=1,SEED=0``; a rerun of a
failed or interrupted point goes to ``00_X=1,SEED=0-2``: a point's results are never overwritten),
``comparison.csv``/``comparison.png`` (one row per point) and, when ``SEED`` is an axis, ``aggregate.csv``
(every recorded value over seeds: mean, std, n; see :func:`aggregate`).

Running the same sweep again (same notebook, values, fixed parameters and profile) continues the latest such
sweep folder: finished points are skipped, failed, interrupted or never-run points run again. ``resume=DIR``
continues a given folder. Ctrl-C stops the sweep: running points are interrupted (each writes its ``run.json``),
the manifest records which points finished, the tables are written, and :class:`labkit.runner.RunInterrupted`
is raised.
"""
from __future__ import annotations

import atexit
import csv
import io
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from labkit import runner
from labkit.active.pool import atomic_write_text
from labkit.errors import UserError

__all__ = ["sweep", "aggregate", "mean_std_text", "thread_env", "point_env", "cpu_count", "load_manifest",
           "MANIFEST", "THREAD_VARS"]

MANIFEST = "sweep.json"
MANIFEST_VERSION = 1
#: Environment variables that bound a process's compute threads (BLAS/OpenMP, numexpr, TensorFlow; torch takes
#: its intra-op count from OMP_NUM_THREADS).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "TF_NUM_INTRAOP_THREADS")
_DONE = "ok"


# ----------------------------------------------------------------------------------------------
# Environment of one point
# ----------------------------------------------------------------------------------------------
def cpu_count() -> int:
    """The CPU cores this process may use (its affinity mask where the OS tells, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_env(threads: int) -> dict[str, str]:
    """The variables that give a process ``threads`` compute threads (:data:`THREAD_VARS`, TF inter-op 1 or 2)."""
    threads = max(1, int(threads))
    out = {k: str(threads) for k in THREAD_VARS}
    out["TF_NUM_INTEROP_THREADS"] = str(min(2, threads))
    return out


def point_env(threads: int, gpu: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a point's process: ``base`` (default ``os.environ``) with its thread share and GPU.

    ``gpu`` None leaves ``CUDA_VISIBLE_DEVICES`` as it is in ``base``; a GPU id makes it the only visible one.
    """
    env = dict(os.environ if base is None else base)
    env.update(thread_env(threads))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.pop("LABKIT_RUN_DIR", None)  # the child's run() sets its own
    return env


# ----------------------------------------------------------------------------------------------
# Aggregation over seeds
# ----------------------------------------------------------------------------------------------
def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        if v.strip().lower() in ("true", "false"):
            return float(v.strip().lower() == "true")
        try:
            f = float(v)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def aggregate(rows: Iterable[Mapping[str, Any]], by: Sequence[str], over: str = "SEED",
              values: Sequence[str] | None = None, skip: Sequence[str] = ("status", "error")) -> list[dict]:
    """Aggregate recorded values over repeats (seeds): one row per combination of the ``by`` columns.

    Rows whose ``status`` column is present and not ``"ok"`` are left out. ``values`` (default: every other
    column but ``over`` and ``skip``) are read as numbers (booleans as 0/1, so a verdict's mean is the fraction
    of seeds where it held; text that is not a number is ignored). Each output row has the ``by`` values, ``n``
    (the rows in the group) and, per value ``v``, ``v_mean``, ``v_std`` (sample standard deviation, ddof=1; None
    when fewer than 2 numbers) and ``v_n`` (how many rows had a number for it). Groups keep the order in which
    they first appear.
    """
    rows = [dict(r) for r in rows if r.get("status", "ok") in ("ok", None)]
    by = list(by)
    if values is None:
        values = list(dict.fromkeys(k for r in rows for k in r if k not in by and k != over and k not in skip))
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(str(r.get(k)) for k in by), []).append(r)
    out = []
    for members in groups.values():
        row: dict[str, Any] = {k: members[0].get(k) for k in by}
        row["n"] = len(members)
        for v in values:
            nums = [x for x in (_number(m.get(v)) for m in members) if x is not None]
            if not nums:
                continue
            mean = sum(nums) / len(nums)
            std = math.sqrt(sum((x - mean) ** 2 for x in nums) / (len(nums) - 1)) if len(nums) > 1 else None
            row[f"{v}_mean"], row[f"{v}_std"], row[f"{v}_n"] = mean, std, len(nums)
        out.append(row)
    return out


def mean_std_text(row: Mapping[str, Any], value: str) -> str:
    """``0.5123 ± 0.0131 (n=3)`` for ``value`` in an :func:`aggregate` row ('' when absent)."""
    if f"{value}_mean" not in row:
        return ""
    std = row.get(f"{value}_std")
    return f"{row[f'{value}_mean']:.4g} ± {'-' if std is None else f'{std:.2g}'} (n={row[f'{value}_n']})"


# ----------------------------------------------------------------------------------------------
# The manifest
# ----------------------------------------------------------------------------------------------
def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def _key(nb: Path, values, fixed, profile) -> dict:
    return {"notebook": nb.name, "values": _jsonable({k: [str(x) for x in v] for k, v in values.items()}),
            "fixed": _jsonable({k: str(v) for k, v in (fixed or {}).items()}), "profile": profile}


def _write_manifest(root: Path, manifest: dict) -> None:
    atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1, default=str))


def load_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a sweep folder, or a one-line :class:`UserError` naming the folder."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise UserError(f"--resume {folder}: no {MANIFEST} there; give a sweep folder made by labkit sweep "
                        "(runs/sweeps/<notebook>/<timestamp>)")
    try:
        manifest = json.loads(path.read_text())
        assert manifest.get("version") == MANIFEST_VERSION and isinstance(manifest["points"], list)
    except (ValueError, KeyError, AssertionError, OSError):
        raise UserError(f"--resume {folder}: {MANIFEST} is not a labkit sweep manifest "
                        f"(version {MANIFEST_VERSION}); start a new sweep instead") from None
    return manifest


def _latest_matching(nb: Path, key: dict) -> Path | None:
    base = runner.env.paths().runs / "sweeps" / nb.stem
    for d in sorted((p for p in base.glob("*") if (p / MANIFEST).is_file()), key=lambda p: (p / MANIFEST).stat().st_mtime,
                    reverse=True):
        try:
            m = json.loads((d / MANIFEST).read_text())
        except (ValueError, OSError):
            continue
        if m.get("key") == key:
            return d
    return None


# ----------------------------------------------------------------------------------------------
# Executors: each takes the points to run and updates the manifest as they finish
# ----------------------------------------------------------------------------------------------
def _label(point: Mapping[str, Any]) -> str:
    label = ",".join(f"{k}={v}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9_.=,-]", "_", label)[:80]


def _result_of(run_dir: Path, returncode: int | None = None) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        why = f"point process exited with code {returncode}" if returncode is not None else "no run.json"
        return {"status": "failed", "error": f"{why}; see {run_dir / 'point.log'}", "records": {}, "wall_s": 0.0,
                "parameters": {}, "run_dir": str(run_dir)}


def _child_command(spec: dict) -> list[str]:
    return [sys.executable, "-m", "labkit.sweep", "_point", json.dumps(spec, default=str)]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the point process gets SIGINT (it records ``interrupted``) when the sweep driver dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the point simply outlives a killed driver
        pass
    os.setsid()


class _Interrupted(Exception):
    pass


def _run_serial(nb, todo, start, finish, profile, timeout, progress, log_output):
    for p in todo:
        run_dir = start(p, None)
        try:
            res = runner.run(nb, p["parameters"], profile=None, run_dir=run_dir, progress=progress,
                             timeout=timeout, log_output=log_output)
            finish(p, _result_of(Path(res.run_dir)))
        except runner.RunInterrupted as e:
            finish(p, _result_of(Path(e.where)))
            raise _Interrupted() from None


def _forked_point(spec: dict, env: dict, log_path: str) -> None:  # pragma: no cover - runs in a forked child
    """One point in a child of the fork server: what ``python -m labkit.sweep _point`` does, minus the imports.

    The child leaves the driver's session (Ctrl-C reaches it only through the driver, which records what
    finished) and gets SIGINT when its parent, the fork server, dies: the server exits when the driver does, once
    no child holds its copy of the driver's "alive" pipe, so the child closes that copy first (multiprocessing
    hands every child one; kept, a killed driver would leave its points running to the end). Its output goes to
    ``log_path`` and its environment (thread share, GPU) is the point's, which the notebook's kernel inherits.
    Exit handlers run before the child leaves (multiprocessing ends a forked child with ``os._exit``)."""
    from multiprocessing import forkserver

    _die_with_parent()
    server = getattr(forkserver, "_forkserver", None)
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        os.close(alive)
        server._forkserver_alive_fd = None
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (log, 1), (log, 2)):
        os.dup2(fd, target)
    os.environ.clear()
    os.environ.update(env)
    try:
        code = _run_point(spec)
    finally:
        atexit._run_exitfuncs()
    sys.exit(code)


def _fork_context():
    """The fork-server context for point processes on Linux, or None elsewhere: then each point is a fresh
    ``python -m labkit.sweep _point`` (macOS: forking a process that has used Apple's frameworks is unsafe, and
    the point's parent-death signal is Linux's).

    The server starts with the first forked point of this process and imports :data:`_POINT_IMPORTS` once; it
    lives as long as this process (a Jupyter kernel: across sweeps)."""
    if not sys.platform.startswith("linux") or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(_POINT_IMPORTS))
    return ctx


_START_LOCK = threading.Lock()


def _start_without_main(process) -> None:
    """``process.start()`` without handing the child this process's ``__main__`` to import again.

    multiprocessing re-runs the parent's main script in every child (as ``__mp_main__``): a script that calls
    :func:`sweep` at top level would sweep again inside each point, and every point would pay the script's
    imports. The target lives in this module, so the child needs nothing from ``__main__``."""
    with _START_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main


#: What a point's process imports to run its notebook (papermill, nbclient, jupyter_client's kernel manager and
#: what it loads to find and start a kernel): the fork server imports them once.
_POINT_IMPORTS = ("labkit.sweep", "labkit.runner", "papermill", "papermill.execute", "nbclient",
                  "jupyter_client.manager", "jupyter_client.kernelspec", "ipykernel.kernelspec", "IPython.paths",
                  "psutil")


class _ForkedPoint:
    """A point's forked process, with the part of ``subprocess.Popen``'s interface the local executor uses."""

    def __init__(self, ctx, spec: dict, env: dict, log_path: Path):
        self.process = ctx.Process(target=_forked_point, args=(spec, env, str(log_path)), name="labkit-point")
        _start_without_main(self.process)

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def send_signal(self, sig: int) -> None:
        try:
            os.kill(self.process.pid, sig)
        except ProcessLookupError:  # it ended between the last poll and now
            pass

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired("labkit sweep point", timeout)
        return self.process.exitcode

    def kill(self) -> None:
        self.process.kill()


def _start_point(ctx, spec: dict, env: dict, run_dir: Path):
    """Start one point's process (forked from the fork server where there is one); returns it and its log."""
    if ctx is not None:
        return _ForkedPoint(ctx, spec, env, run_dir / "point.log"), None
    log = open(run_dir / "point.log", "ab")  # noqa: SIM115 - closed when the point ends
    proc = subprocess.Popen(_child_command(spec), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if os.name == "posix" else None)
    return proc, log


def _run_local(nb, todo, start, finish, profile, timeout, jobs, gpus):
    threads = max(1, cpu_count() // jobs)
    ctx = _fork_context()
    free_gpus = list(gpus or [])
    queue = list(todo)
    running: dict[int, tuple] = {}  # index -> (popen, point, gpu, run_dir, log handle)
    try:
        while queue or running:
            while queue and len(running) < jobs:
                p = queue.pop(0)
                gpu = free_gpus.pop(0) if gpus else None
                run_dir = start(p, gpu)
                spec = {"notebook": str(nb), "parameters": p["parameters"], "run_dir": str(run_dir),
                        "timeout": timeout}
                proc, log = _start_point(ctx, spec, point_env(threads, gpu), run_dir)
                running[p["index"]] = (proc, p, gpu, run_dir, log)
            time.sleep(0.05)
            for i, (proc, p, gpu, run_dir, log) in list(running.items()):
                if proc.poll() is not None:
                    if log is not None:
                        log.close()
                    del running[i]
                    if gpu is not None:
                        free_gpus.append(gpu)
                    finish(p, _result_of(run_dir, proc.returncode))
    except BaseException as exc:  # Ctrl-C, or an error in the driver: no point may outlive it unrecorded
        for proc, *_ in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # run() records status interrupted, stops its kernel
        deadline = time.monotonic() + 30
        for proc, p, gpu, run_dir, log in running.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if log is not None:
                log.close()
            res = _result_of(run_dir, proc.returncode)
            why = "stopped with Ctrl-C" if isinstance(exc, KeyboardInterrupt) else f"sweep stopped: {exc!r}"[:200]
            try:
                finish(p, res if res["status"] == "ok" else
                       {**res, "status": "interrupted", "error": res.get("error") or why})
            except Exception:  # noqa: BLE001 - the driver's own error (e.g. the manifest unwritable) is raised below
                if isinstance(exc, KeyboardInterrupt):
                    raise
        if isinstance(exc, KeyboardInterrupt):
            raise _Interrupted() from None
        raise


def _ray_point(spec: dict, threads: int) -> bytes:
    """A Ray task: run one point into a temporary folder on this node; return that folder as a tar archive."""
    with tempfile.TemporaryDirectory(prefix="labkit-point-") as tmp:
        run_dir = Path(tmp) / "point"
        run_dir.mkdir()
        gpu_ids = None
        try:
            import ray

            gpu_ids = ray.get_runtime_context().get_accelerator_ids().get("GPU") or None
        except Exception:  # noqa: BLE001 - outside Ray, or an old Ray
            pass
        env = point_env(threads, ",".join(map(str, gpu_ids)) if gpu_ids else None)
        proc, log = _start_point(_fork_context(), {**spec, "run_dir": str(run_dir)}, env, run_dir)
        returncode = proc.wait()
        if log is not None:
            log.close()
        (run_dir / "point.returncode").write_text(str(returncode))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(run_dir, arcname=".")
        return buf.getvalue()


def _unpack(data: bytes, run_dir: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(run_dir, filter="data")
    info = run_dir / "run.json"
    if info.is_file():  # the folder's own path, as the driver sees it
        d = json.loads(info.read_text())
        d["run_dir"] = str(run_dir)
        info.write_text(json.dumps(d, indent=1, default=str))


def _run_ray(nb, todo, start, finish, timeout, address, jobs):
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray: the ray package is not installed; pip install 'labkit[ray]' "
                        "(or use the default local executor)") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(f"--address {address}: cannot connect to a Ray cluster ({str(e).splitlines()[0]}); "
                            "start one with `ray start --head` or give its address") from None
    res = ray.cluster_resources()
    n_gpus, n_cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
    if n_gpus:
        opts, threads = {"num_gpus": 1, "num_cpus": 1}, max(1, n_cpus // n_gpus)
    else:
        share = max(1, n_cpus // max(1, jobs or n_cpus))
        opts, threads = {"num_cpus": share}, share
    task = ray.remote(max_retries=0)(_ray_point).options(**opts)
    refs = {}
    for p in todo:
        run_dir = start(p, None)
        spec = {"notebook": str(nb), "parameters": p["parameters"], "timeout": timeout,
                "notebook_text": nb.read_text(encoding="utf-8")}
        refs[task.remote(spec, threads)] = (p, run_dir)
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in done:
                p, run_dir = refs.pop(ref)
                try:
                    _unpack(ray.get(ref), run_dir)
                    rc = (run_dir / "point.returncode").read_text().strip()
                    finish(p, _result_of(run_dir, int(rc) if rc.lstrip("-").isdigit() else None))
                except Exception as e:  # noqa: BLE001 - a task that died: the point failed
                    finish(p, {"status": "failed", "error": f"Ray task: {type(e).__name__}: {str(e)[:200]}",
                               "records": {}, "wall_s": 0.0, "parameters": {}, "run_dir": str(run_dir)})
    except KeyboardInterrupt:
        for ref, (p, run_dir) in refs.items():
            ray.cancel(ref, force=True)
            finish(p, {"status": "interrupted", "error": "stopped with Ctrl-C", "records": {}, "wall_s": 0.0,
                       "parameters": {}, "run_dir": str(run_dir)})
        raise _Interrupted() from None


# ----------------------------------------------------------------------------------------------
# The sweep
# ----------------------------------------------------------------------------------------------
def sweep(notebook: str | os.PathLike | None = None, values: Mapping[str, Iterable[Any]] | None = None,
          fixed: Mapping[str, Any] | None = None, profile: str | None = None, progress: bool = False,
          timeout: int | None = None, log_output: bool = False, jobs: int = 1, gpus: Sequence[str] | None = None,
          executor: str = "local", address: str | None = None, resume: str | os.PathLike | None = None,
          new: bool = False, over: str = "SEED") -> Path:
    """Run a notebook once per grid point into a sweep folder (see the module doc); return the folder.

    Args:
        jobs: points run at the same time (local executor: each in its own process; 1 runs them in this one).
        gpus: GPU ids; each running point gets one through ``CUDA_VISIBLE_DEVICES`` (``jobs`` defaults to their
            number and may not exceed it).
        executor: ``"local"`` or ``"ray"`` (``address``: the Ray cluster's, default a local Ray).
        resume: a sweep folder to continue (its manifest gives the notebook and points).
        new: start a new sweep folder even when a matching one exists.
        over: the axis that :func:`aggregate` averages over (``aggregate.csv``) when it is swept.
    """
    if executor not in ("local", "ray"):
        raise UserError(f"--executor {executor!r}: choose local or ray")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UserError(f"--jobs {jobs!r}: give a positive number of points to run at the same time")
    gpus = [str(g).strip() for g in gpus] if gpus else None
    if gpus is not None and (not gpus or any(not g for g in gpus)):
        raise UserError("--gpus: give GPU ids separated by commas, e.g. --gpus 0,1")
    if gpus and jobs == 1:
        jobs = len(gpus)
    if gpus and jobs > len(gpus):
        raise UserError(f"--jobs {jobs} with --gpus {','.join(gpus)}: at most one point per GPU; "
                        f"give --jobs {len(gpus)} or more GPUs")
    if resume is not None:
        root = Path(resume)
        manifest = load_manifest(root)
        nb = runner.resolve_notebook(manifest["notebook_path"]) if Path(manifest["notebook_path"]).is_file() \
            else runner.resolve_notebook(manifest["key"]["notebook"])
        timeout = timeout if timeout is not None else manifest.get("timeout")
    else:
        if notebook is None or not values:
            raise UserError("give a notebook and at least one swept parameter: -p NAME v1,v2,...")
        nb = runner.resolve_notebook(notebook)
        points = runner.grid(values)
        if not points:
            raise runner.ParameterError(f"sweep of {nb.name}: no grid points; give at least one value per parameter")
        resolved = [runner.resolve_parameters(nb, {**(fixed or {}), **pt}, profile=profile) for pt in points]
        key = _key(nb, values, fixed, profile)
        root = None if new else _latest_matching(nb, key)
        if root is not None:
            manifest = load_manifest(root)
            print(f"sweep: continuing {root} (finished points are skipped; --new starts a fresh sweep)")
        else:
            root = runner.new_run_dir(f"sweeps/{nb.stem}")
            manifest = {"version": MANIFEST_VERSION, "key": key, "notebook_path": str(nb), "axes": list(values),
                        "timeout": timeout, "points": []}
            for i, (pt, par) in enumerate(zip(points, resolved)):
                shown = {k: par.get(k, str(v)) for k, v in pt.items()}
                manifest["points"].append({"index": i, "label": f"{i:02d}_{_label(shown)}", "point": _jsonable(shown),
                                           "parameters": _jsonable(par), "status": "pending", "run_dir": None,
                                           "attempts": []})
            _write_manifest(root, manifest)
    for p in manifest["points"]:  # a point left "running" by a killed driver was interrupted
        if p["status"] == "running":
            p["status"] = "interrupted"
    todo = [p for p in manifest["points"] if p["status"] != _DONE]
    results: dict[int, dict] = {}
    for p in manifest["points"]:
        if p["status"] != "pending" and p.get("run_dir"):
            results[p["index"]] = _result_of(root / p["run_dir"])
    skipped = len(manifest["points"]) - len(todo)
    if skipped:
        print(f"sweep: {skipped} of {len(manifest['points'])} points already finished; running {len(todo)}")

    from tqdm.auto import tqdm

    bar = tqdm(total=len(manifest["points"]), initial=skipped, desc=f"sweep {nb.stem}", file=sys.stderr)

    def start(p: dict, gpu: str | None) -> Path:
        run_dir = runner._fresh_dir(root / p["label"])  # a rerun goes to <label>-2: nothing is overwritten
        p.update(status="running", run_dir=run_dir.name, gpu=gpu)
        p["attempts"].append(run_dir.name)
        _write_manifest(root, manifest)
        return run_dir

    def finish(p: dict, res: dict) -> None:
        p["status"] = res.get("status", "failed")
        p["error"] = res.get("error")
        results[p["index"]] = res
        _write_manifest(root, manifest)
        bar.update(1)

    interrupted = False
    try:
        if executor == "ray":
            _run_ray(nb, todo, start, finish, timeout, address, jobs if jobs > 1 else None)
        elif jobs == 1 and not gpus:
            _run_serial(nb, todo, start, finish, profile, timeout, progress, log_output)
        else:
            _run_local(nb, todo, start, finish, profile, timeout, jobs, gpus)
    except (_Interrupted, KeyboardInterrupt):
        interrupted = True
        for p in manifest["points"]:
            if p["status"] == "running":
                p["status"] = "interrupted"
        _write_manifest(root, manifest)
    finally:
        bar.close()
    _write_tables(root, manifest, results, over)
    if interrupted:
        raise runner.RunInterrupted(root)
    return root


def _write_tables(root: Path, manifest: dict, results: dict[int, dict], over: str) -> None:
    axes = manifest["axes"]
    rows = []
    for p in manifest["points"]:
        res = results.get(p["index"])
        if res is None:
            continue
        rec = res.get("records") or {}
        rows.append({**p["point"], "status": res.get("status", "failed"), "wall_s": res.get("wall_s", 0.0),
                     **{k: v for k, v in rec.items() if not isinstance(v, (list, dict))},
                     "error": res.get("error") or ""})
    if not rows:
        print(f"sweep: no point finished; manifest in {root / MANIFEST}")
        return
    columns = list(dict.fromkeys(k for r in rows for k in r if k != "error")) + ["error"]
    with open(root / "comparison.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    n_bad = sum(r["status"] != "ok" for r in rows)
    if over in axes and len({str(r[over]) for r in rows}) > 1:
        by = [a for a in axes if a != over]
        agg = aggregate(rows, by=by, over=over)
        names = [c for c in columns if c not in axes and c not in ("status", "error")]
        agg_cols = by + ["n"] + [f"{v}_{s}" for v in names for s in ("mean", "std", "n") if any(f"{v}_mean" in a for a in agg)]
        with open(root / "aggregate.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=agg_cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(agg)
        shown = [{**{k: a[k] for k in by}, "n": a["n"], **{v: mean_std_text(a, v) for v in names if f"{v}_mean" in a}}
                 for a in agg]
        _plot(agg, by, root / "comparison.png", aggregated=True)
        print(runner.format_table(shown))
        print(f"\nmean ± std over {over} (n seeds that finished ok): {root / 'aggregate.csv'}")
    else:
        _plot(rows, axes, root / "comparison.png", aggregated=False)
        print(runner.format_table(rows, columns))
    print(f"sweep results: {root / 'comparison.csv'}" + (f" ({n_bad} of {len(rows)} points not ok)" if n_bad else ""))


def _plot(rows: list[dict], keys: list[str], out: Path, aggregated: bool) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if aggregated:
        metrics = list(dict.fromkeys(k[:-5] for r in rows for k in r if k.endswith("_mean")))
    else:
        metrics = [k for k in rows[0] if k not in keys and k not in ("status", "error")
                   and all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
    if not metrics:
        return
    labels = [",".join(f"{k}={r[k]}" for k in keys) or "all" for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        if aggregated:
            ax.barh(range(len(rows)), [r.get(f"{m}_mean", float("nan")) for r in rows], color="tab:blue",
                    xerr=[r.get(f"{m}_std") or 0.0 for r in rows], capsize=3)
            ax.set_title(f"{m} (mean ± std)")
        else:
            ax.barh(range(len(rows)), [r[m] for r in rows], color="tab:blue")
            ax.set_title(m)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# The point process: python -m labkit.sweep _point SPEC_JSON
# ----------------------------------------------------------------------------------------------
def _run_point(spec: dict) -> int:
    """Run one point as its spec says (in the point's own process); 0, or 130 when it was interrupted."""
    nb = Path(spec["notebook"])
    run_dir = Path(spec["run_dir"])
    if not nb.is_file() and spec.get("notebook_text") is not None:  # a node without the driver's files
        nb = run_dir.parent / nb.name
        nb.write_text(spec["notebook_text"], encoding="utf-8")
    try:
        runner.run(nb, spec["parameters"], run_dir=run_dir, progress=False, timeout=spec.get("timeout"))
    except runner.RunInterrupted:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through subprocesses in the tests
    if len(sys.argv) == 3 and sys.argv[1] == "_point":
        sys.exit(_run_point(json.loads(sys.argv[2])))
    sys.exit("usage: python -m labkit.sweep _point SPEC_JSON (internal; use `labkit sweep`)")
