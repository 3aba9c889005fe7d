"""A text detector's predictions in the BKAI format, and the label-conversion lesson of notebook 06.

:func:`predict_quads` turns a YOLO model's boxes into the quads a BKAI submission expects, :func:`export_bkai` writes
them (one ``<image stem>.txt`` per image) and :func:`read_bkai_submission` reads them back; :func:`filter_predictions`
and :func:`draw_predictions` are what notebook 06's confidence slider (:mod:`labkit.widgets.finetune`) shows.
:func:`border_report` measures, with Ultralytics' own label checker, what three ways of converting boxes that cross
the image border cost (:func:`border_verdict`). The label format itself is read by :mod:`labkit.data.bkai`.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable

import numpy as np

from labkit.finetune.training import parse_device

__all__ = ["predict_quads", "export_bkai", "read_bkai_submission", "draw_predictions", "filter_predictions",
           "border_report", "border_verdict"]


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
# The label-conversion lesson of notebook 06, computed from its own counts (and tests/test_lessons_06_07.py)
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

    from labkit.data.bkai import detect_naming, image_size, label_file, quad_to_box, read_gt

    src = Path(src)
    images = sorted((src / split).glob("*.jpg"))
    if naming == "auto":
        naming = detect_naming(p.name for p in images)

    def row(x1, y1, x2, y2, w, h):
        return f"0 {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"

    out = dict(images=0, boxes=0, lost_inside=0, dropped=0, lost_unclipped=0, dropped_clipped=0, lost_clipped=0)
    with tempfile.TemporaryDirectory() as tmp:
        lbl = Path(tmp) / "label.txt"

        def rejected(img, boxes, w, h):  # Ultralytics' checker: element 8 counts the image as corrupt
            lbl.write_text("\n".join(row(*b, w, h) for b in boxes) + "\n")
            return bool(verify_image_label((str(img), str(lbl), "", False, 1, 0, 0, False))[8])

        for img in images:
            w, h, _ = image_size(img)
            rows, _ = read_gt(label_file(src / "labels", img, naming), strict=False)
            boxes = [quad_to_box(xy) for _, xy, _ in rows]
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
