"""Training an Ultralytics YOLO model from a notebook: one call, one run folder that is never reused.

:func:`train` turns the notebook's parameters into Ultralytics' ``model.train`` arguments: the device
(:func:`parse_device`; several GPUs train with DDP in a subprocess, :mod:`labkit.ddp_launch`), TensorBoard for this
process only (:func:`enable_tensorboard`), quiet logs (:func:`quiet_ultralytics`), safe weight loading
(:mod:`labkit.weights`), and a fresh run folder from :func:`labkit.runner.new_run_dir`
(``runs/<kind>/<timestamp>[-N]/<name>``), so two runs started in the same second, or a re-run of a notebook, never
overwrite each other. Ultralytics writes ``results.csv`` (one row per epoch), ``weights/best.pt``/``last.pt`` and,
with TensorBoard enabled, event files that ``tensorboard --logdir`` on :func:`runs_root` shows side by side. What a
run holds is read by :mod:`labkit.finetune.runs`.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from labkit.finetune.runs import Run

__all__ = ["train", "parse_device", "enable_tensorboard", "runs_root", "tensorboard_stopped_at_exit",
           "quiet_ultralytics"]


# ----------------------------------------------------------------------------------------------
# Device and TensorBoard
# ----------------------------------------------------------------------------------------------
def parse_device(device: str | int | Sequence[int] | None = "auto", verbose: bool = True) -> str:
    """Translate a notebook ``DEVICE`` into Ultralytics' ``device`` argument.

    ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"0"`` or a multi-GPU list ``"0,1"`` /
    ``[0, 1]`` (Ultralytics then trains with DDP, as the seed did on two T4s). GPUs that are absent are
    dropped with a message; with none left it falls back to the CPU.
    """
    from labkit import env

    if isinstance(device, (list, tuple)):
        device = ",".join(str(d) for d in device)
    text = str(device if device is not None else "auto").strip().lower().replace(" ", "")
    text = text.strip("[]")
    if "," in text:
        import torch

        wanted = [int(d) for d in text.split(",") if d != ""]
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        have = [d for d in wanted if d < n]
        if len(have) < len(wanted) and verbose:
            print(f"labkit: DEVICE={device!r} asked for GPUs {wanted}, {n} available; using "
                  f"{have if have else 'the CPU'}." + ("" if have else " " + env.gpu_hint()))
        if not have:
            return "cpu"
        return ",".join(str(d) for d in have)
    return env.ultralytics_device(env.select_device(text, verbose=verbose))


def enable_tensorboard(on: bool = True, verbose: bool = True) -> bool:
    """Turn Ultralytics' TensorBoard logging on (setting ``tensorboard``, for this process only: the user's
    Ultralytics settings file is not rewritten); returns whether it is active.

    When the ``tensorboard`` package is missing the run goes on without it, with a one-line notice.
    """
    import importlib.util

    from ultralytics.utils import SETTINGS

    available = importlib.util.find_spec("tensorboard") is not None
    want = bool(on) and available
    if on and not available and verbose:
        print("labkit: the tensorboard package is not installed; training runs without TensorBoard logs "
              "(pip install tensorboard to get them).")
    # this process only: trainers read SETTINGS per run; SETTINGS.update would rewrite the user's global file
    dict.update(SETTINGS, {"tensorboard": want})
    return want


def runs_root(kind: str = "06_bkai") -> Path:
    """The folder that holds every run of ``kind`` (what :func:`train` creates its run folders in), created if
    needed: ``<LABKIT_HOME>/runs/<kind>``, or inside the ``labkit run`` folder. Point TensorBoard's ``--logdir``
    here to see all of them side by side."""
    import os

    from labkit import env

    root = Path(os.environ["LABKIT_RUN_DIR"]) if os.environ.get("LABKIT_RUN_DIR") else env.paths().runs
    d = root / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextmanager
def tensorboard_stopped_at_exit(verbose: bool = True):
    """Stop the TensorBoard servers started inside the block when this Python process (the kernel) exits.

    ``%tensorboard --logdir …`` (TensorBoard's notebook magic) starts a server *process* and leaves it running
    after the kernel is gone; under papermill or nbval, with nobody to look at it, that is a leak. Wrap the magic::

        with finetune.tensorboard_stopped_at_exit():
            %tensorboard --logdir runs/06_bkai

    Servers that were already running before the block (the magic *reuses* one with the same arguments) are
    left alone; only those that appear during the block get a ``SIGTERM`` at exit (``atexit``).
    """
    import atexit
    import os
    import signal

    import shutil
    import sys

    from tensorboard import manager

    # the magic runs the `tensorboard` program found on PATH; a kernel started from a virtual environment that is
    # not activated has it next to its python, not on PATH
    here = Path(sys.executable).parent / "tensorboard"
    if "TENSORBOARD_BINARY" not in os.environ and shutil.which("tensorboard") is None and here.is_file():
        os.environ["TENSORBOARD_BINARY"] = str(here)
    before = {i.pid for i in manager.get_all()}
    try:
        yield
    finally:
        new = sorted({i.pid for i in manager.get_all()} - before)

        def _stop(pids=tuple(new)):
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:  # already gone
                    pass

        if new:
            atexit.register(_stop)
            if verbose:
                print(f"labkit: TensorBoard server pid {', '.join(map(str, new))} stops when this kernel exits.")


@contextmanager
def quiet_ultralytics(quiet: bool = True):
    """Within the block, raise Ultralytics' LOGGER to WARNING (its epoch tables, progress bars and "Validating
    best.pt" lines go quiet; warnings and errors still show); restored on exit. Ultralytics' own progress bars are
    disabled whenever its LOGGER is above INFO (``ultralytics.utils.tqdm.TQDM``)."""
    import logging

    from ultralytics.utils import LOGGER

    old = LOGGER.level
    if quiet:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(old)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train(data, model="yolov8n.pt", name: str = "run", epochs: int = 10, imgsz: int = 320, batch: int = 16,
          optimizer: str = "AdamW", lr0: float = 5e-4, lrf: float = 0.01, cos_lr: bool = True,
          weight_decay: float = 5e-4, patience: int = 15, seed: int = 0, device="auto", freeze=None,
          workers: int = 0, kind: str = "06_bkai", tensorboard: bool = True, run_root=None, verbose: bool = False,
          nbs: int | None = None, trust_weights: bool = False, **extra) -> Run:
    """Train (or fine-tune) an Ultralytics YOLO model into a fresh run folder; returns a :class:`Run`.

    Args:
        data: a ``data.yaml``.
        model: a ``.pt`` checkpoint (e.g. the previous stage's ``run.best``), a name such as ``"yolov8x.pt"``
            (pretrained when available locally, else built from its yaml with a notice: ``labkit.env.yolo_model``)
            or a ``.yaml``.
        name: the run's label in plots and tables; the run lives in ``runs/<kind>/<timestamp>[-N]/<name>``
            (the timestamp folder comes from :func:`labkit.runner.new_run_dir`, so it is never reused).
        epochs, imgsz, batch, optimizer, lr0, lrf, cos_lr, weight_decay, patience, seed, freeze, workers:
            Ultralytics' arguments of the same name (the seed notebook's hyperparameters).
        device: ``"auto"``, ``"cpu"``, ``"0"``, ``"0,1"`` … (see :func:`parse_device`).
        tensorboard: log to TensorBoard when the package is installed.
        verbose: Ultralytics' per-epoch log and progress bars; off by default (its LOGGER is raised to WARNING
            for the run, see :func:`quiet_ultralytics`), so a notebook cell prints a few lines, not thousands.
        nbs: Ultralytics' *nominal batch size* (None: its default, 64). It accumulates gradients over
            ``round(nbs / batch)`` batches before each optimizer step and scales the weight decay with it: with
            ``batch=4`` and 32 images (8 batches) the default steps once every **two epochs**, and an epoch without
            a step validates the unchanged EMA weights, so its metrics repeat the previous epoch's exactly.
            ``nbs=batch`` makes every batch one step.
        trust_weights: load ``model`` without restriction (the explicit opt-in for a trusted legacy file that
            safe loading refuses: see :mod:`labkit.weights`).
        extra: any other Ultralytics training argument (``mosaic``, ``warmup_epochs``, ``plots`` …).
    """
    from labkit import ddp_launch, env, weights
    from labkit.runner import new_run_dir

    env.configure_offline()
    enable_tensorboard(tensorboard)
    device = parse_device(device)
    base = new_run_dir(kind, root=run_root)  # runs/<kind>/<timestamp>[-N], created atomically: never reused
    run_dir = base / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    params = dict(epochs=epochs, imgsz=imgsz, batch=batch, optimizer=optimizer, lr0=lr0, lrf=lrf, cos_lr=cos_lr,
                  weight_decay=weight_decay, patience=patience, seed=seed, freeze=freeze, workers=workers)
    args = dict(data=str(data), device=device, project=str(run_dir.parent), name=run_dir.name,
                exist_ok=True, verbose=verbose, plots=extra.pop("plots", False), **params, **extra)
    if nbs is not None:
        args["nbs"] = int(nbs)
    run_params = {**params, "model": str(model), "epochs_asked": epochs}
    if ddp_launch.needs_subprocess(device):
        # Several GPUs: Ultralytics' DDP relaunches a script, which cannot happen inside a kernel; the training runs
        # in a fresh process (labkit.ddp_launch) and writes into the same run folder.
        print(f"labkit: DEVICE={device!r}: training with DDP in a subprocess (python -m labkit.ddp_launch)")
        out = ddp_launch.train(ddp_launch.child_model(model), args, workdir=base / f".ddp-{run_dir.name}")
        return Run(name=name, dir=run_dir, params=run_params, final=dict(out.get("metrics") or {}))
    m = env.yolo_model(str(model), verbose=True, trust_weights=trust_weights) if not isinstance(model, Path) else None
    if m is None:
        from ultralytics import YOLO

        with weights.trusted(trust_weights):
            m = YOLO(str(model))
    with quiet_ultralytics(not verbose), weights.trusted(trust_weights):
        res = m.train(**args)
    final = dict(getattr(res, "results_dict", {}) or {}) if res is not None else {}
    return Run(name=name, dir=run_dir, params=run_params, final=final)
