"""Fine-tuning with Ultralytics: runs that never overwrite each other, TensorBoard, tidy curves, comparisons,
predictions exported in the BKAI submission format.

The notebook code stays short::

    run1 = finetune.train(data_yaml, model="yolov8n.pt", name="stage1", epochs=10, optimizer="SGD", ...)
    run2 = finetune.train(data_yaml, model=run1.best, name="stage2-AdamW", optimizer="AdamW", lr0=5e-4, ...)
    finetune.plot_curves([run1, run2]); finetune.compare([run1, run2])

Every run lives in its own folder from :func:`labkit.runner.new_run_dir` (``runs/<kind>/<timestamp>[-N]``), so
two runs started in the same second, or a re-run of a notebook, never overwrite each other. Ultralytics writes
``results.csv`` (one row per epoch), ``weights/best.pt``/``last.pt`` and, when TensorBoard is installed and
enabled, event files that ``tensorboard --logdir runs`` shows.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = ["Run", "train", "parse_device", "enable_tensorboard", "read_results", "plot_curves", "compare",
           "predict_quads", "export_bkai", "read_bkai_submission", "draw_predictions", "CURVE_NAMES"]

#: results.csv column → tidy metric name
CURVE_NAMES = {
    "metrics/mAP50(B)": "mAP50", "metrics/mAP50-95(B)": "mAP50-95", "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall", "train/box_loss": "train_box_loss", "train/cls_loss": "train_cls_loss",
    "train/dfl_loss": "train_dfl_loss", "val/box_loss": "val_box_loss", "val/cls_loss": "val_cls_loss",
    "val/dfl_loss": "val_dfl_loss", "lr/pg0": "lr_pg0", "lr/pg1": "lr_pg1", "lr/pg2": "lr_pg2", "time": "time",
}


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


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One training run: its folder, weights and per-epoch results."""

    name: str
    dir: Path
    params: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)

    @property
    def best(self) -> Path:
        """``weights/best.pt`` (falls back to ``last.pt``)."""
        w = self.dir / "weights"
        return w / "best.pt" if (w / "best.pt").exists() else w / "last.pt"

    @property
    def results_csv(self) -> Path:
        return self.dir / "results.csv"

    def curves(self):
        """Tidy per-epoch curves (see :func:`read_results`)."""
        return read_results(self.results_csv, run=self.name)

    @property
    def epochs_run(self) -> int:
        """Epochs the run actually trained (fewer than asked when early stopping (``patience``) ended it)."""
        return self.summary()["epochs"]

    def summary(self) -> dict:
        """The best epoch — the one Ultralytics saved as ``best.pt`` — and its metrics, epochs run, time.

        Ultralytics 8.4 keeps the epoch of highest *fitness*, and its detection fitness is mAP50-95 alone
        (``DetMetrics.fitness``: weights ``[0, 0, 0, 1]`` on P, R, mAP50, mAP50-95; older versions used
        ``0.1·mAP50 + 0.9·mAP50-95``). A later epoch replaces the best only when strictly better, so ties go to
        the earliest epoch, as ``idxmax`` does.
        """
        df = self.curves()
        wide = df.pivot_table(index="epoch", columns="metric", values="value")
        fit = wide["mAP50-95"] if "mAP50-95" in wide else None
        best_epoch = int(fit.idxmax()) if fit is not None and len(wide) else (int(wide.index.max()) if len(wide) else 0)
        out = {"run": self.name, "epochs": int(wide.index.max()) if len(wide) else 0, "best_epoch": best_epoch}
        for m in ("mAP50", "mAP50-95", "precision", "recall"):
            if m in wide:
                out[f"best_{m}"] = float(wide.loc[best_epoch, m])
        if "time" in wide:
            out["time_s"] = float(wide["time"].max())
        for k in ("optimizer", "lr0", "epochs_asked"):
            if k in self.params:
                out[k] = self.params[k]
        return out


def train(data, model="yolov8n.pt", name: str = "run", epochs: int = 10, imgsz: int = 320, batch: int = 16,
          optimizer: str = "AdamW", lr0: float = 5e-4, lrf: float = 0.01, cos_lr: bool = True,
          weight_decay: float = 5e-4, patience: int = 15, seed: int = 0, device="auto", freeze=None,
          workers: int = 0, kind: str = "06_bkai", tensorboard: bool = True, run_root=None, verbose: bool = False,
          trust_weights: bool = False, **extra) -> Run:
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
        trust_weights: load ``model`` without restriction (the explicit opt-in for a trusted legacy file that
            safe loading refuses: see :mod:`labkit.weights`).
        extra: any other Ultralytics training argument (``mosaic``, ``warmup_epochs``, ``plots`` …).
    """
    from labkit import env, weights
    from labkit.runner import new_run_dir

    env.configure_offline()
    enable_tensorboard(tensorboard)
    m = env.yolo_model(str(model), verbose=True, trust_weights=trust_weights) if not isinstance(model, Path) else None
    if m is None:
        from ultralytics import YOLO

        with weights.trusted(trust_weights):
            m = YOLO(str(model))
    base = new_run_dir(kind, root=run_root)  # runs/<kind>/<timestamp>[-N], created atomically: never reused
    run_dir = base / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    params = dict(epochs=epochs, imgsz=imgsz, batch=batch, optimizer=optimizer, lr0=lr0, lrf=lrf, cos_lr=cos_lr,
                  weight_decay=weight_decay, patience=patience, seed=seed, freeze=freeze, workers=workers)
    args = dict(data=str(data), device=parse_device(device), project=str(run_dir.parent), name=run_dir.name,
                exist_ok=True, verbose=verbose, plots=extra.pop("plots", False), **params, **extra)
    with weights.trusted(trust_weights):
        res = m.train(**args)
    final = dict(getattr(res, "results_dict", {}) or {}) if res is not None else {}
    return Run(name=name, dir=run_dir, params={**params, "model": str(model), "epochs_asked": epochs}, final=final)


# ----------------------------------------------------------------------------------------------
# Curves and comparisons
# ----------------------------------------------------------------------------------------------
def read_results(path, run: str | None = None):
    """Parse an Ultralytics ``results.csv`` (file or run folder) into a tidy DataFrame.

    Columns: ``run, epoch, metric, value`` with metric names from :data:`CURVE_NAMES` (``mAP50``,
    ``mAP50-95``, ``precision``, ``recall``, ``train_box_loss`` …); unknown columns keep their own name.
    Column names are stripped (older Ultralytics padded them with spaces).
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results.csv at {path} (did the run finish an epoch?)")
    df = pd.read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    if "epoch" not in df.columns:
        raise ValueError(f"{path}: no 'epoch' column; columns are {list(df.columns)}")
    long = df.melt(id_vars="epoch", var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(lambda c: CURVE_NAMES.get(c, c))
    long.insert(0, "run", run if run is not None else path.parent.name)
    long["epoch"] = long["epoch"].astype(int)
    return long.reset_index(drop=True)


def _frames(runs):
    import pandas as pd

    frames = []
    for r in runs:
        if isinstance(r, Run):
            frames.append(r.curves())
        elif isinstance(r, pd.DataFrame):
            frames.append(r)
        else:
            frames.append(read_results(r))
    return pd.concat(frames, ignore_index=True)


def plot_curves(runs, metrics: Sequence[str] = ("mAP50", "mAP50-95", "train_box_loss", "val_box_loss"),
                offsets: dict | None = None):
    """Plot per-epoch curves of several runs on shared axes (one panel per metric); returns the figure.

    ``runs`` are :class:`Run` objects, run folders or tidy DataFrames. ``offsets`` maps a run name to an epoch
    offset (stage 2 drawn after stage 1).
    """
    import matplotlib.pyplot as plt

    df = _frames(runs)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for name, g in df[df.metric == m].groupby("run", sort=False):
            off = (offsets or {}).get(name, 0)
            ax.plot(g.epoch + off, g.value, marker=".", label=name)
        ax.set_title(m)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def compare(runs):
    """One row per run: epochs run, best epoch (the ``best.pt`` one: highest mAP50-95, Ultralytics 8.4's fitness),
    the mAP50 / mAP50-95 / P / R of that epoch, time, optimizer."""
    import pandas as pd

    return pd.DataFrame([r.summary() for r in runs]).set_index("run")


# ----------------------------------------------------------------------------------------------
# Predictions and the BKAI submission format
# ----------------------------------------------------------------------------------------------
def predict_quads(model, images: Iterable, conf: float = 0.25, imgsz: int = 640, device="auto",
                  batch: int = 8, trust_weights: bool = False) -> dict:
    """Predict text boxes; returns ``{image_path: {"quads": (N, 4, 2) int, "scores": (N,)}}``.

    A detector gives axis-aligned boxes; as quads they are the 4 corners clockwise from the top-left, rounded
    to integers and clipped to the image, as the BKAI submission expects. A weights path loads safely
    (:mod:`labkit.weights`; ``trust_weights=True`` is the opt-in for a trusted legacy file).
    """
    from ultralytics import YOLO

    from labkit import weights

    if not hasattr(model, "predict"):
        with weights.trusted(trust_weights):
            model = YOLO(str(model))
    images = [str(p) for p in images]
    out = {}
    dev = parse_device(device, verbose=False)
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        for path, r in zip(chunk, model.predict(chunk, conf=conf, imgsz=imgsz, device=dev, verbose=False)):
            h, w = r.orig_shape
            b = r.boxes.xyxy.cpu().numpy() if len(r.boxes) else np.zeros((0, 4))
            x1, y1 = np.clip(np.floor(b[:, 0]), 0, w - 1), np.clip(np.floor(b[:, 1]), 0, h - 1)
            x2, y2 = np.clip(np.ceil(b[:, 2]), 0, w - 1), np.clip(np.ceil(b[:, 3]), 0, h - 1)
            quads = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                              np.stack([x1, y2], 1)], 1).astype(int)
            out[path] = {"quads": quads, "scores": r.boxes.conf.cpu().numpy() if len(r.boxes) else np.zeros(0)}
    return out


def export_bkai(preds: dict, out_dir, text: str | None = None) -> list[Path]:
    """Write predictions in the BKAI submission format: one ``<image stem>.txt`` per image, one line per box,
    ``x1,y1,x2,y2,x3,y3,x4,y4`` (8 integers, clockwise from the top-left), plus ``,TEXT`` when ``text`` is
    given (a detector has no transcription). Images without detections get an empty file. Returns the files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for path, p in preds.items():
        lines = [",".join(str(int(v)) for v in q.reshape(-1)) + (f",{text}" if text is not None else "")
                 for q in np.asarray(p["quads"]).reshape(-1, 4, 2)]
        f = out_dir / (Path(path).stem + ".txt")
        f.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        files.append(f)
    return files


def read_bkai_submission(path) -> np.ndarray:
    """Read a submission file back: ``(N, 4, 2)`` int quads (checks 8 integers per line, names file:line)."""
    rows = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(",", 8)[:8]
        if len(parts) != 8 or not all(re.fullmatch(r"-?\d+", p.strip()) for p in parts):
            raise ValueError(f"{path}:{i}: expected 8 integer coordinates, got {line!r}")
        rows.append([int(p) for p in parts])
    return np.array(rows, dtype=int).reshape(-1, 4, 2)


def draw_predictions(preds: dict, ncols: int = 4, size: float = 3.0, max_images: int = 8):
    """Draw predicted quads (with scores) on their images; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon
    from PIL import Image, ImageOps

    items = list(preds.items())[:max_images]
    nrows = max(1, math.ceil(len(items) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * 0.8 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (path, p) in zip(axes.ravel(), items):
        ax.imshow(ImageOps.exif_transpose(Image.open(path)))
        for q, s in zip(np.asarray(p["quads"]).reshape(-1, 4, 2), p["scores"]):
            ax.add_patch(Polygon(q, closed=True, fill=False, edgecolor="#e6194b", linewidth=1.5))
            ax.text(q[0, 0], q[0, 1], f"{s:.2f}", fontsize=6, color="white", va="bottom",
                    bbox=dict(facecolor="#e6194b", edgecolor="none", pad=0.5, alpha=0.8))
        ax.set_title(f"{Path(path).name}: {len(p['scores'])} boxes", fontsize=8)
    fig.tight_layout()
    return fig


def filter_predictions(preds: dict, conf: float) -> dict:
    """Keep the predictions scoring at least ``conf`` (the same structure as :func:`predict_quads` returns)."""
    out = {}
    for path, p in preds.items():
        scores = np.asarray(p["scores"])
        keep = scores >= conf
        out[path] = {"quads": np.asarray(p["quads"]).reshape(-1, 4, 2)[keep], "scores": scores[keep]}
    return out


def conf_widget(preds: dict, conf: float = 0.25, ncols: int = 4):
    """A confidence-threshold slider over predictions made once at a low threshold; redraws the kept boxes.

    Predict with a low ``conf`` (e.g. 0.01) first, so that moving the slider only filters, never re-runs the model.
    Returns a VBox with ``.slider``, ``.output``, ``.redraw()`` and ``.kept`` (boxes kept at the current value).
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    slider = W.FloatSlider(value=conf, min=0.0, max=0.95, step=0.05, description="conf",
                           continuous_update=False, readout_format=".2f")
    out = W.Output()
    box = W.VBox([slider, out])

    def redraw(*_):
        kept = filter_predictions(preds, slider.value)
        box.kept = sum(len(p["scores"]) for p in kept.values())
        with out:
            out.clear_output(wait=True)
            fig = draw_predictions(kept, ncols=ncols)
            fig.suptitle(f"conf >= {slider.value:.2f}: {box.kept} boxes on {len(kept)} images", fontsize=9)
            fig.tight_layout()
            plt.show()

    slider.observe(redraw, names="value")
    box.slider, box.output, box.redraw = slider, out, redraw
    redraw()
    return box
