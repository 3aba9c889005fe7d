"""Multi-GPU training from a notebook: run the training in a subprocess when several GPUs are asked for.

Ultralytics trains on several GPUs (``device="0,1"``) with DDP: it writes a script and relaunches it with
``torch.distributed.run``, which cannot work from inside an interactive kernel (the relaunched processes cannot
import the notebook's ``__main__``). From a notebook or a papermill run, :func:`train` therefore runs the training
in a fresh Python process, ``python -m labkit.ddp_launch SPEC.json``, where Ultralytics' own DDP launch works as
in a script; with one device (or the CPU) it is not needed (:func:`needs_subprocess`).

The spec is a JSON file: ``{"target": "module:function", "kwargs": {...}, "result": "out.json"}``. The default
target, :func:`ultralytics_train`, does ``YOLO(model).train(**train_kwargs)`` and writes the trainer's
``save_dir`` and final metrics to ``result``. The child's environment (:func:`child_env`) gets the non-interactive
Matplotlib backend (the kernel's inline backend does not exist outside it), unbuffered output, and keeps the
rest of the kernel's environment (``LABKIT_*``, ``ULTRALYTICS_SAFE_LOAD``).

Wiring (notebooks 06/07, ``labkit.finetune``): where the training call is made, use
``if ddp_launch.needs_subprocess(DEVICE): out = ddp_launch.train(child_model(model), dict(data=..., epochs=...,
device=DEVICE, ...))`` and read ``out["save_dir"]``/``out["metrics"]``; else train in the kernel as now. What
follows the training in the kernel (validation, prediction) runs on one device, :func:`first_device`.
A trainer class and callbacks given by name (:func:`ultralytics_train`) reach the DDP workers too: Ultralytics
pickles them into the script it relaunches (``labkit.active`` keeps its label caches out of the user's dataset that
way).
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from labkit.errors import UserError

__all__ = ["needs_subprocess", "first_device", "child_model", "child_env", "command", "write_spec", "train",
           "ultralytics_train", "DEFAULT_TARGET"]

DEFAULT_TARGET = "labkit.ddp_launch:ultralytics_train"


def _devices(device: Any) -> list[str]:
    if device is None:
        return []
    if isinstance(device, (list, tuple)):
        return [str(d).strip() for d in device if str(d).strip()]
    return [d.strip() for d in str(device).split(",") if d.strip()]


def needs_subprocess(device: Any) -> bool:
    """True when ``device`` names more than one GPU (``"0,1"``, ``[0, 1]``): DDP, which needs a fresh process."""
    devs = _devices(device)
    return len(devs) > 1 and all(d.isdigit() for d in devs)


def first_device(device: Any) -> Any:
    """The one torch device for work done in the kernel: ``"cuda:0"`` for ``"0,1"`` (the first GPU listed);
    any other ``device`` (``"cpu"``, ``"cuda:1"``, ``"mps"``) unchanged."""
    return f"cuda:{_devices(device)[0]}" if needs_subprocess(device) else device


def child_model(model: Any) -> str:
    """What the training subprocess loads: a checkpoint path, a yaml, or a ``.pt`` name resolved to the local file.

    A ``.pt`` name without a local file becomes its yaml (random init, with the notice of
    :func:`labkit.env.yolo_model`): the child never downloads.
    """
    from labkit import env

    text = str(model)
    if isinstance(model, Path) or not text.endswith(".pt") or Path(text).is_file():
        return text
    local = env._find_local_weights(text)
    if local is not None:
        return str(local)
    yaml_name = Path(text).with_suffix(".yaml").name
    print(f"labkit: pretrained {text} not available locally; the DDP run builds {yaml_name} (random init)")
    return yaml_name


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The training process's environment: ``base`` (default ``os.environ``), Agg backend, unbuffered output.

    ``CUDA_VISIBLE_DEVICES`` is kept as it is: Ultralytics sets it from ``device`` in the child itself.
    """
    env = dict(os.environ if base is None else base)
    env["MPLBACKEND"] = "Agg"  # the kernel's module://matplotlib_inline backend is not importable there
    env["PYTHONUNBUFFERED"] = "1"
    return env


def command(spec_path: str | os.PathLike, python: str | None = None) -> list[str]:
    """``[python, "-m", "labkit.ddp_launch", SPEC]`` (``python`` defaults to this interpreter)."""
    return [python or sys.executable, "-m", "labkit.ddp_launch", str(spec_path)]


def write_spec(folder: str | os.PathLike, kwargs: Mapping[str, Any], target: str = DEFAULT_TARGET) -> Path:
    """Write ``spec.json`` (target, kwargs, result path) into ``folder``; kwargs must be JSON-serializable."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps({"target": target, "kwargs": dict(kwargs), "result": str(folder / "result.json")}, indent=1)
    except TypeError as e:
        raise UserError(f"multi-GPU training: the training arguments must be plain values (JSON): {e}") from None
    (folder / "spec.json").write_text(text)
    return folder / "spec.json"


def train(model: str, train_kwargs: Mapping[str, Any], workdir: str | os.PathLike | None = None,
          target: str = DEFAULT_TARGET, stream: bool = True, extra: Mapping[str, Any] | None = None,
          env: Mapping[str, str] | None = None) -> dict:
    """Run ``target(model=..., train_kwargs=..., **extra)`` in a subprocess; return what it wrote to its result file.

    The child's output is streamed to this process's stdout (the notebook) when ``stream``. A failure raises
    ``RuntimeError`` with the last lines of that output. ``workdir`` holds the spec and the result; keep it out of
    the training's own save folder (Ultralytics empties that folder before a DDP launch). ``env``: variables added
    to the child's environment (:func:`child_env`), which its DDP workers inherit.
    """
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="labkit-ddp-"))
    spec = write_spec(workdir, {"model": model, "train_kwargs": dict(train_kwargs), **dict(extra or {})}, target)
    proc = subprocess.Popen(command(spec), env=child_env(None if env is None else {**os.environ, **env}),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        if stream:
            print(line, end="", flush=True)
    rc = proc.wait()
    result = workdir / "result.json"
    if rc != 0 or not result.is_file():
        raise RuntimeError(f"multi-GPU training failed (exit code {rc}); last output:\n" + "".join(tail[-15:]))
    return json.loads(result.read_text())


def _resolve(name: str):
    mod, _, fn = name.partition(":")
    return getattr(importlib.import_module(mod), fn)


def ultralytics_train(model: str, train_kwargs: Mapping[str, Any],
                      callbacks: Mapping[str, Sequence[str]] | None = None, trainer: str | None = None) -> dict:
    """``YOLO(model).train(**train_kwargs)`` in this (script) process; Ultralytics runs DDP for ``device="0,1"``.

    ``callbacks`` maps an Ultralytics event to ``"module:function"`` names added to the model before training;
    ``trainer`` (``"module:Class"``) replaces Ultralytics' trainer class. Both reach every DDP worker: Ultralytics
    pickles the trainer's class and callbacks into the script it relaunches.
    """
    from ultralytics import YOLO

    y = YOLO(model)
    for event, names in (callbacks or {}).items():
        for name in names:
            y.add_callback(event, _resolve(name))
    y.train(**({"trainer": _resolve(trainer)} if trainer else {}), **train_kwargs)
    trainer = getattr(y, "trainer", None)
    metrics = getattr(trainer, "metrics", None) or {}
    return {"save_dir": str(getattr(trainer, "save_dir", "")),
            "metrics": {str(k): float(v) for k, v in dict(metrics).items() if isinstance(v, (int, float))}}


def _main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m labkit.ddp_launch SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    out = _resolve(spec["target"])(**spec["kwargs"])
    Path(spec["result"]).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a subprocess
    sys.exit(_main(sys.argv[1:]))
