"""Plotting helpers shared by the notebooks: boxes on images, image grids, run result plots."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

_COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
            "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#000075"]


def colour(i: int) -> str:
    """A stable colour per class id."""
    return _COLOURS[int(i) % len(_COLOURS)]


def draw_boxes(ax, boxes_xyxy, labels=None, scores=None, class_names: Sequence[str] | None = None,
               linestyle: str = "-", linewidth: float = 1.5) -> None:
    """Draw xyxy pixel boxes on a matplotlib axis, coloured by class, with 'name score' captions."""
    from matplotlib.patches import Rectangle

    boxes = np.asarray(boxes_xyxy, dtype=float).reshape(-1, 4)
    for j, (x1, y1, x2, y2) in enumerate(boxes):
        c = int(labels[j]) if labels is not None else 0
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour(c),
                               linewidth=linewidth, linestyle=linestyle))
        text = class_names[c] if class_names is not None and labels is not None else (str(c) if labels is not None else "")
        if scores is not None:
            text = f"{text} {float(scores[j]):.2f}".strip()
        if text:
            ax.text(x1, y1, text, fontsize=7, color="white", va="bottom",
                    bbox=dict(facecolor=colour(c), edgecolor="none", pad=1, alpha=0.8))


def read_yolo_labels(label_file: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a YOLO label txt (:func:`labkit.data.formats.read_yolo_txt`) into (classes, xyxy pixel boxes);
    a missing file means no objects."""
    from labkit.data.formats import read_yolo_txt

    a = read_yolo_txt(label_file) if Path(label_file).exists() else np.zeros((0, 5))
    cls, (xc, yc, w, h) = a[:, 0].astype(int), a[:, 1:5].T
    boxes = np.stack([(xc - w / 2) * width, (yc - h / 2) * height, (xc + w / 2) * width, (yc + h / 2) * height], 1)
    return cls, boxes.reshape(-1, 4)


def show_yolo_samples(images: Sequence[Path], class_names: Sequence[str], ncols: int = 4, size: float = 2.6):
    """Show images of a YOLO-layout dataset with their label boxes; returns the figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    n = len(images)
    nrows = max(1, (n + ncols - 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, path in zip(axes.ravel(), images):
        path = Path(path)
        img = Image.open(path)
        label = path.parent.parent.parent / "labels" / path.parent.name / (path.stem + ".txt")
        cls, boxes = read_yolo_labels(label, *img.size)
        ax.imshow(img)
        draw_boxes(ax, boxes, cls, class_names=class_names)
        ax.set_title(path.name, fontsize=8)
    fig.tight_layout()
    return fig


def show_image(path, figsize=(8, 5), title: str | None = None):
    """Show an image file (e.g. an Ultralytics results.png) without axes; returns the figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(Image.open(path))
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
