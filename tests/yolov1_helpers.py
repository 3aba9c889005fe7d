"""Helpers for the YOLOv1 tests: a tiny Pascal VOC tree written on the fly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def voc_xml(filename, w, h, objects):
    """objects: list of (name, xmin, ymin, xmax, ymax, difficult) in VOC 1-based pixels."""
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult>"
        f"<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>"
        for n, a, b, c, e, d in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


def make_voc(root, n=6, size=(80, 60), classes=("dog", "cat"), seed=0, splits=None):
    """Write ``n`` images with 1-2 coloured rectangles each; returns (root, {id: objects})."""
    root = Path(root)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    W, H = size
    truth = {}
    for i in range(n):
        iid = f"{i:06d}"
        img = np.full((H, W, 3), 40, np.uint8)
        objs = []
        for k in range(1 + i % 2):
            x1, y1 = int(rng.integers(1, W // 2)), int(rng.integers(1, H // 2))
            x2, y2 = x1 + int(rng.integers(8, W // 2)), y1 + int(rng.integers(8, H // 2))
            name = classes[(i + k) % len(classes)]
            img[y1 - 1:y2, x1 - 1:x2] = (200, 60 + 100 * k, 30)
            objs.append((name, x1, y1, x2, y2, int(k == 1 and i % 4 == 1)))
        Image.fromarray(img).save(root / "JPEGImages" / f"{iid}.jpg", quality=95)
        (root / "Annotations" / f"{iid}.xml").write_text(voc_xml(f"{iid}.jpg", W, H, objs))
        truth[iid] = objs
    ids = sorted(truth)
    splits = splits or {"train": ids[: n - 2], "val": ids[n - 2:], "trainval": ids}
    for s, lst in splits.items():
        (root / "ImageSets" / "Main" / f"{s}.txt").write_text("\n".join(lst) + "\n")
    return root, truth
