"""Training YOLOv1 with ``model.fit``: device setup, the paper's LR schedule, checkpoints, resume.

* :func:`configure_device` -- mixed precision (float16 compute, float32 output and loss) and XLA
  when a GPU is present, ``tf.distribute.MirroredStrategy`` when there is more than one;
* :class:`WarmupStepSchedule` -- the paper's schedule: raise the LR from ``warmup_start`` to
  ``base_lr`` during the first steps (the paper: 1e-3 -> 1e-2 over the first epochs), then divide it
  at the given boundaries (the paper: 1e-2 for 75 epochs, 1e-3 for 30, 1e-4 for 30);
* :func:`compile_model` -- the loss (:class:`labkit.yolov1.loss.YoloLoss`) plus one metric per
  loss term, so the history holds a curve for each term;
* :func:`fit` -- checkpoints ``last.keras`` (every epoch, with the optimizer state) and
  ``best.keras`` (lowest validation loss), early stopping, a ``tqdm`` progress bar, a CSV log, and
  resume: if ``last.keras`` exists in the run folder training continues from the next epoch.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from labkit.yolov1.loss import TERMS, YoloLoss, YoloLossTerm

__all__ = ["configure_device", "WarmupStepSchedule", "paper_schedule", "compile_model", "TqdmCallback",
           "fit", "load_history"]


def configure_device(device: str = "auto", mixed_precision: bool | None = None, verbose: bool = True):
    """Pick the TensorFlow setup. Returns ``(strategy, jit_compile)``.

    On a GPU: ``mixed_float16`` policy (unless ``mixed_precision=False``) and XLA; with more than one
    GPU a ``MirroredStrategy``. On CPU: float32, no XLA, default strategy. ``device="cpu"`` forces
    the CPU path even when a GPU is present."""
    gpus = tf.config.list_physical_devices("GPU")
    use_gpu = bool(gpus) and str(device).lower() not in ("cpu",)
    if mixed_precision is None:
        mixed_precision = use_gpu
    keras.mixed_precision.set_global_policy("mixed_float16" if (use_gpu and mixed_precision) else "float32")
    if use_gpu and len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
    elif use_gpu:
        strategy = tf.distribute.get_strategy()
    else:
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0") if gpus else tf.distribute.get_strategy()
    if verbose:
        print(f"TensorFlow on {'%d GPU(s)' % len(gpus) if use_gpu else 'CPU'}; "
              f"policy {keras.mixed_precision.global_policy().name}; XLA {'on' if use_gpu else 'off'}; "
              f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")
    return strategy, use_gpu


@keras.saving.register_keras_serializable(package="labkit.yolov1")
class WarmupStepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``warmup_start`` to ``base_lr`` over ``warmup_steps``, then
    ``base_lr * factors[k]`` after ``boundaries[k]`` steps (piecewise constant)."""

    def __init__(self, base_lr=1e-2, warmup_steps=0, warmup_start=1e-3, boundaries=(), factors=()):
        if len(boundaries) != len(factors):
            raise ValueError("boundaries and factors must have the same length")
        self.base_lr, self.warmup_steps, self.warmup_start = float(base_lr), int(warmup_steps), float(warmup_start)
        self.boundaries, self.factors = [int(b) for b in boundaries], [float(f) for f in factors]

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        lr = tf.constant(self.base_lr, tf.float32)
        for b, f in zip(self.boundaries, self.factors):
            lr = tf.where(step >= b, tf.constant(self.base_lr * f, tf.float32), lr)
        if self.warmup_steps > 0:
            frac = tf.minimum(step / self.warmup_steps, 1.0)
            warm = self.warmup_start + (self.base_lr - self.warmup_start) * frac
            lr = tf.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self):
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps, "warmup_start": self.warmup_start,
                "boundaries": self.boundaries, "factors": self.factors}


def paper_schedule(steps_per_epoch: int, epochs: int = 135, base_lr: float = 1e-2, warmup_epochs: float = 1,
                   warmup_start: float = 1e-3, decay_at=(75 / 135, 105 / 135), factors=(0.1, 0.01)):
    """The paper's schedule scaled to ``epochs``: warm-up, then ``base_lr`` until 75/135 of training,
    ``base_lr/10`` until 105/135, then ``base_lr/100`` (the paper, Sec. 2.2: 1e-2 for 75 epochs, 1e-3 for
    30, 1e-4 for 30 -- 135 in all; its warm-up happens inside the first 75)."""
    return WarmupStepSchedule(base_lr, int(round(warmup_epochs * steps_per_epoch)), warmup_start,
                              [int(round(d * epochs * steps_per_epoch)) for d in decay_at], list(factors))


def compile_model(model, S: int, B: int, C: int, schedule, optimizer: str = "adam", weight_decay: float = 5e-4,
                  lambda_coord: float = 5.0, lambda_noobj: float = 0.5, conf_target: str = "iou",
                  jit_compile: bool | str = "auto"):
    """Compile with the YOLOv1 loss, one metric per loss term, and the optimizer
    (``"sgd"``: the paper's momentum 0.9 + weight decay 5e-4; ``"adam"``: AdamW, faster from scratch)."""
    kw = dict(S=S, B=B, C=C, lambda_coord=lambda_coord, lambda_noobj=lambda_noobj, conf_target=conf_target)
    if optimizer == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=weight_decay)
    elif optimizer == "adam":
        opt = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    model.compile(optimizer=opt, loss=YoloLoss(**kw), metrics=[YoloLossTerm(t, **kw) for t in TERMS],
                  jit_compile=jit_compile)
    return model


class TqdmCallback(keras.callbacks.Callback):
    """One ``tqdm.auto`` bar over epochs, showing the latest losses."""

    def __init__(self, epochs, initial_epoch=0):
        super().__init__()
        self.epochs, self.initial_epoch, self.bar = epochs, initial_epoch, None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=self.epochs, initial=self.initial_epoch, desc="epochs", unit="ep")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "val_loss")})
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


class _EpochState(keras.callbacks.Callback):
    """Write ``state.json`` (last finished epoch) next to ``last.keras``."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        self.path.write_text(json.dumps({"epoch": epoch + 1}))


def load_history(run_dir) -> dict:
    """The CSV log of a run as ``{column: np.ndarray}`` (all epochs, across resumes; columns Keras left
    empty, such as ``val_*`` without validation data, are dropped)."""
    p = Path(run_dir) / "history.csv"
    if not p.is_file():
        return {}
    with open(p) as f:
        rows = list(csv.DictReader(f))
    out = {}
    for k in (rows[0] if rows else {}):
        # Keras writes "NA" for columns it has no value for (e.g. val_* when training without validation)
        v = np.array([float(r[k]) if r[k] not in ("", "NA") else np.nan for r in rows])
        if not np.isnan(v).all():
            out[k] = v
    return out


def fit(model, train_ds, val_ds=None, epochs: int = 30, run_dir="runs/yolov1", resume: bool = True,
        patience: int | None = 10, progress: bool = True, verbose: int = 0, extra_callbacks=()):
    """Train ``model`` (compiled with :func:`compile_model`) and return ``(model, history dict)``.

    If ``resume`` and ``run_dir/last.keras`` exists, that checkpoint (weights *and* optimizer state)
    is loaded and training continues at the epoch after the last finished one. The returned model is
    the one at the end of training (``run_dir/best.keras`` holds the best by validation loss)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    last, state = run_dir / "last.keras", run_dir / "state.json"
    initial_epoch = 0
    if resume and last.is_file() and state.is_file():
        initial_epoch = int(json.loads(state.read_text())["epoch"])
        model = keras.models.load_model(last)
        print(f"Resuming from {last} at epoch {initial_epoch}")
    elif not resume:
        for p in (last, state, run_dir / "history.csv", run_dir / "best.keras"):
            p.unlink(missing_ok=True)
    if initial_epoch >= epochs:
        print(f"{last} already finished {initial_epoch} >= {epochs} epochs; nothing to do")
        return model, load_history(run_dir)
    monitor = "val_loss" if val_ds is not None else "loss"
    cbs = [keras.callbacks.ModelCheckpoint(str(last)),
           _EpochState(state),
           keras.callbacks.ModelCheckpoint(str(run_dir / "best.keras"), monitor=monitor, save_best_only=True),
           keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=initial_epoch > 0),
           keras.callbacks.TerminateOnNaN()]
    if patience:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience))
    if progress:
        cbs.append(TqdmCallback(epochs, initial_epoch))
    cbs += list(extra_callbacks)
    # the datasets of make_dataset shuffle themselves (Keras would only warn that it cannot)
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch, callbacks=cbs,
              verbose=verbose, shuffle=False)
    return model, load_history(run_dir)
