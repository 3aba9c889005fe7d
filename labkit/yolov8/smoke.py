"""Notebook 00's smoke training: YOLOv8n from random weights that learns the shapes in under a minute on a CPU.

The first version of notebook 00 trained on 64 images at 128 px, batch 16, for 5 epochs with Ultralytics'
defaults and recorded mAP50 = 0 in every epoch. What it lacked was optimizer steps: Ultralytics accumulates
gradients until ``nbs = 64`` images have been seen, so each 64-image epoch was one step -- 5 in all, three of them
in the learning-rate warm-up.

Here the same CPU minute holds hundreds of steps: many small images (256 at 64 px by default in the notebook),
15 epochs and ``nbs = batch`` (a step per batch). AdamW at ``lr0 = 0.003`` and ``single_cls`` (one class,
"shape": a detector learns *where* objects are long before *which* shape each is) make each step count; warm-up
and mosaic are off, as in notebook 07. (With that many batches Ultralytics' own ``nbs``, warm-up and mosaic also
learn on seed 0: the number of steps is what mattered.)
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

__all__ = ["SMOKE_TRAIN_ARGS", "quiet_ultralytics", "smoke_train"]

#: The training settings that make the smoke run learn (see the module docstring); ``nbs`` is set to the batch.
SMOKE_TRAIN_ARGS = {"optimizer": "AdamW", "lr0": 0.003, "warmup_epochs": 0.0, "mosaic": 0.0, "single_cls": True}


@contextlib.contextmanager
def quiet_ultralytics(level: int = logging.WARNING):
    """Silence Ultralytics' INFO log (and with it its per-epoch progress bars) inside the ``with`` block."""
    from ultralytics.utils import LOGGER

    old = LOGGER.level
    LOGGER.setLevel(level)
    try:
        yield
    finally:
        LOGGER.setLevel(old)


def _drop_tensorboard(trainer) -> None:
    # TensorBoard traces the model at the start of every run (seconds on a CPU); nobody opens it for a smoke run
    for event, fns in trainer.callbacks.items():
        trainer.callbacks[event] = [f for f in fns if "tensorboard" not in getattr(f, "__module__", "")]


def smoke_train(data_yaml: str | Path, epochs: int, imgsz: int, batch: int, seed: int = 0, device: str = "cpu",
                project: str | Path | None = None, name: str | None = None, model: str = "yolov8n.pt",
                workers: int = 0, plots: bool = True, progress: bool = True, **overrides):
    """Train ``model`` on ``data_yaml`` with :data:`SMOKE_TRAIN_ARGS` and ``nbs = batch``, quietly.

    ``model`` goes through :func:`labkit.env.yolo_model` (pretrained when present, else its yaml, random init).
    ``overrides`` replace any training argument (e.g. ``single_cls=False``). Ultralytics' log is silenced; a
    tqdm bar counts the epochs instead. Returns ``(model, metrics)``: the trained ``YOLO`` object and the
    ``DetMetrics`` of the final validation (``metrics.box.map50``); the per-epoch values are in
    ``model.trainer.save_dir / "results.csv"``.
    """
    import os

    from tqdm.auto import tqdm

    from labkit.env import ultralytics_device, yolo_model

    # Ultralytics' TensorBoard integration imports TensorFlow when it is installed: keep its C++ log quiet
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    yolo = yolo_model(model)
    yolo.add_callback("on_pretrain_routine_start", _drop_tensorboard)
    bar = tqdm(total=epochs, desc="epochs", disable=not progress)
    yolo.add_callback("on_fit_epoch_end", lambda trainer: (bar.update(1), bar.set_postfix(
        mAP50=f"{float(trainer.metrics.get('metrics/mAP50(B)', 0.0)):.3f}")))
    kw = dict(data=str(data_yaml), epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), nbs=int(batch),
              workers=int(workers), device=ultralytics_device(device), seed=int(seed), deterministic=True,
              plots=plots, verbose=False, **SMOKE_TRAIN_ARGS)
    if project is not None:
        kw.update(project=str(project), name=name, exist_ok=True)
    kw.update(overrides)
    try:
        with quiet_ultralytics():
            metrics = yolo.train(**kw)
    finally:
        bar.close()
    return yolo, metrics
