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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

__all__ = ["Run", "train", "parse_device", "enable_tensorboard", "read_results", "plot_curves", "compare",
           "predict_quads", "export_bkai", "quiet_ultralytics", "tensorboard_stopped_at_exit", "runs_root",
           "border_report", "border_verdict", "stage_verdicts", "repeated_epochs", "nbs_verdict",
           "read_bkai_submission", "draw_predictions", "CURVE_NAMES"]

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
        out = ddp_launch.train(_ddp_model(model), args, workdir=base / f".ddp-{run_dir.name}")
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


def _ddp_model(model) -> str:
    """What the DDP subprocess loads: a checkpoint path, a yaml, or a ``.pt`` name resolved to the local file.

    A ``.pt`` name without a local file becomes its yaml (random init, with the same notice as
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


# ----------------------------------------------------------------------------------------------
# The lessons of notebook 06, computed from their own results (the notebook and tests/test_lessons_06_07.py)
# ----------------------------------------------------------------------------------------------
def border_report(src, naming: str = "auto", split: str = "train_images") -> dict:
    """What three conversions of a VinText copy's boxes cost, judged by Ultralytics' own label checker.

    For every image of ``src/<split>`` (labels in ``src/labels``): the source's check (a box must lie entirely
    inside the image, else it is skipped), no check at all (a row outside [0, 1] makes Ultralytics'
    ``verify_image_label`` reject the **whole image**), and clipping to the image (what ``labkit.data.bkai``
    does; boxes that clipping leaves under 1 px are counted as lost). Returns counts: ``images``, ``boxes``,
    ``lost_inside``, ``dropped`` / ``lost_unclipped`` (images rejected, and all their boxes),
    ``dropped_clipped`` / ``lost_clipped``.
    """
    import tempfile

    from ultralytics.data.utils import verify_image_label

    from labkit.data import bkai

    src = Path(src)
    images = sorted((src / split).glob("*.jpg"))
    if naming == "auto":
        naming = bkai.detect_naming(p.name for p in images)

    def row(x1, y1, x2, y2, w, h):
        return f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"

    out = dict(images=0, boxes=0, lost_inside=0, dropped=0, lost_unclipped=0, dropped_clipped=0, lost_clipped=0)
    with tempfile.TemporaryDirectory() as tmp:
        lbl = Path(tmp) / "label.txt"

        def rejected(img, boxes, w, h):  # Ultralytics' checker: element 8 counts the image as corrupt
            lbl.write_text("\n".join(row(*b, w, h) for b in boxes) + "\n")
            return bool(verify_image_label((str(img), str(lbl), "", False, 1, 0, 0, False))[8])

        for img in images:
            w, h, _ = bkai.image_size(img)
            rows, _ = bkai.read_gt(bkai.label_file(src / "labels", img, naming), strict=False)
            boxes = [bkai.quad_to_box(xy) for _, xy, _ in rows]
            inside = [b for b in boxes if 0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h]
            out["lost_inside"] += len(boxes) - len(inside)
            if rejected(img, boxes, w, h):
                out["dropped"] += 1
                out["lost_unclipped"] += len(boxes)
            clipped = [[min(max(v, 0), m) for v, m in zip(b, (w, h, w, h))] for b in boxes]
            clipped = [b for b in clipped if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
            out["lost_clipped"] += len(boxes) - len(clipped)
            if rejected(img, clipped, w, h):
                out["dropped_clipped"] += 1
                out["lost_clipped"] += len(clipped)
            out["images"] += 1
            out["boxes"] += len(boxes)
    return out


def border_verdict(rep: dict) -> tuple[str, bool, str]:
    """``(claim, ok, detail)``: clipping loses nothing, while the source's check and no check both lose boxes."""
    ok = (rep["dropped_clipped"] == 0 and rep["lost_clipped"] == 0 and rep["lost_inside"] > 0
          and rep["dropped"] > 0)
    return ("clipping keeps every box and image, the source's check and no check both lose boxes", ok,
            f"clipped: {rep['dropped_clipped']} images / {rep['lost_clipped']} boxes lost; inside-only check: "
            f"{rep['lost_inside']} boxes lost; no check: {rep['dropped']} images and {rep['lost_unclipped']} boxes "
            f"dropped (of {rep['images']} images, {rep['boxes']} boxes)")


def _curve(run: Run, metric: str = "mAP50-95") -> np.ndarray:
    w = run.curves().pivot_table(index="epoch", columns="metric", values="value")
    return w[metric].to_numpy(dtype=float)


def stage_verdicts(stage1: Run, stage2: Run, other: Run | None = None) -> list[tuple[str, bool, str]]:
    """The two-stage and optimizer lessons, as ``(claim, ok, detail)`` for :func:`labkit.verdict`.

    * stage 2 (the fine-tuning recipe, from stage 1's ``best.pt``) ends above stage 1's best epoch (mAP50-95,
      Ultralytics' fitness);
    * with ``other`` (SGD at its default learning rate, from the same checkpoint): SGD's worst stage-2 epoch falls
      below a quarter of the checkpoint's mAP50-95 while the fine-tuning recipe's worst epoch stays above half of
      it, and the recipe's best epoch beats SGD's. (Measured over seeds 0-2 on the notebook's defaults: SGD's worst
      epoch is near 0, the recipe's 0.5-1.1x the checkpoint; ``tests/test_lessons_06_07.py`` reruns them.)
    """
    s1 = float(_curve(stage1).max())
    a = _curve(stage2)
    out = [("stage 2 fine-tuning from the stage-1 checkpoint beats stage 1's best epoch", bool(a.max() > s1),
            f"mAP50-95 {a.max():.3f} ({stage2.name}) vs {s1:.3f} (stage 1)")]
    if other is not None:
        b = _curve(other)
        oa, ob = stage2.params.get("optimizer", stage2.name), other.params.get("optimizer", other.name)
        out.append((f"{ob} at its default learning rate first wrecks the checkpoint, "
                    f"{oa} at the fine-tuning rate keeps most of it",
                    bool(b.min() < 0.25 * s1 and a.min() > 0.5 * s1),
                    f"worst epoch mAP50-95 {b.min():.3f} vs {a.min():.3f}; checkpoint {s1:.3f}"))
        out.append((f"{oa} fine-tuning ends above {ob}", bool(a.max() > b.max()),
                    f"best mAP50-95 {a.max():.3f} vs {b.max():.3f}"))
    return out


def repeated_epochs(run: Run, metrics: Sequence[str] = ("mAP50-95", "val_box_loss")) -> list[int]:
    """Epochs whose validation ``metrics`` equal the previous epoch's exactly (an epoch without an optimizer step:
    Ultralytics validates the EMA weights, which only change when the optimizer steps)."""
    w = run.curves().pivot_table(index="epoch", columns="metric", values="value")[list(metrics)]
    same = (w.diff().abs().sum(axis=1) == 0) & (w.index > w.index.min())
    return [int(e) for e in w.index[same]]


def nbs_verdict(run: Run) -> tuple[str, bool, str]:
    """``(claim, ok, detail)`` for a short run with Ultralytics' default ``nbs`` on a few small batches: some epoch
    repeats the previous one exactly, and not every epoch does (the optimizer did step in between)."""
    rep = repeated_epochs(run)
    n = run.epochs_run
    return ("with the default nominal batch size an epoch without an optimizer step repeats the previous "
            "epoch's validation exactly", bool(rep) and len(rep) < n - 1,
            f"epochs repeating the previous one: {rep} of 1..{n}")
