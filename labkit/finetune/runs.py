"""What a training run holds: per-epoch curves, the best epoch, comparisons and the verdicts computed from them.

A :class:`Run` (what :func:`labkit.finetune.train` returns) is a folder with Ultralytics' ``results.csv`` and
``weights/``; :func:`read_results` turns the csv into a tidy table (``run, epoch, metric, value``) that
:func:`plot_curves` and :func:`compare` use for several runs at once. The lessons of notebook 06 about training
(two stages, the optimizer, the nominal batch size) are computed from these curves: :func:`stage_verdicts`,
:func:`nbs_verdict`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["Run", "CURVE_NAMES", "read_results", "plot_curves", "compare", "stage_verdicts", "repeated_epochs",
           "nbs_verdict"]

#: results.csv column → tidy metric name
CURVE_NAMES = {
    "metrics/mAP50(B)": "mAP50", "metrics/mAP50-95(B)": "mAP50-95", "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall", "train/box_loss": "train_box_loss", "train/cls_loss": "train_cls_loss",
    "train/dfl_loss": "train_dfl_loss", "val/box_loss": "val_box_loss", "val/cls_loss": "val_cls_loss",
    "val/dfl_loss": "val_dfl_loss", "lr/pg0": "lr_pg0", "lr/pg1": "lr_pg1", "lr/pg2": "lr_pg2", "time": "time",
}


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
# The training lessons of notebook 06, computed from the runs' own curves (and tests/test_lessons_06_07.py)
# ----------------------------------------------------------------------------------------------
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
