"""Deterministic synthetic object-detection data: coloured shapes on varied backgrounds.

This is the course's *embedded default data*: it is generated (never downloaded, never committed),
so every notebook runs offline, and the same seed gives byte-identical files on every machine that
has the same Pillow version.

One call writes the same boxes in three layouts::

    root/
      yolo/   images/{train,val}/*.jpg  labels/{train,val}/*.txt  data.yaml
      voc/    Annotations/*.xml  JPEGImages/*.jpg  ImageSets/Main/{train,val,trainval}.txt
      coco/   instances_train.json  instances_val.json  (file_name relative to coco/images/<split>/)
      manifest.json

Example::

    from labkit.data.synthetic import make_shapes
    ds = make_shapes(n_train=64, n_val=32, imgsz=128, seed=0)
    ds.yolo_yaml        # -> path for ultralytics  model.train(data=...)
    ds.voc_root         # -> Pascal VOC tree for the YOLOv1 notebook
    ds.coco_json("val") # -> COCO ground truth for pycocotools / labkit.metrics

Boxes are the tight bounding boxes of the drawn shapes, clipped to the image. Objects whose box is
smaller than ``difficult_frac`` of the image side are flagged ``difficult`` in the VOC layout (they stay
ordinary objects in YOLO and COCO, as VOC's own converters do).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from labkit.data.formats import write_data_yaml

ALL_CLASSES = ("circle", "square", "triangle", "diamond", "cross")
SPLITS = ("train", "val", "test")
_FORMAT_VERSION = 1

# Saturated, well-separated colours; backgrounds are drawn from muted tones so objects stay visible.
_PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
     [145, 30, 180], [70, 240, 240], [240, 50, 230], [250, 250, 250], [20, 20, 20]],
    dtype=np.int32,
)


@dataclass
class ShapesDataset:
    """Paths and facts of a generated shapes dataset (what :func:`make_shapes` returns)."""

    root: Path
    classes: tuple[str, ...]
    counts: dict[str, int]
    imgsz: int
    seed: int
    n_boxes: dict[str, int] = field(default_factory=dict)

    @property
    def yolo_root(self) -> Path:
        return self.root / "yolo"

    @property
    def yolo_yaml(self) -> Path:
        """The Ultralytics ``data.yaml`` (absolute ``path:``)."""
        return self.root / "yolo" / "data.yaml"

    @property
    def voc_root(self) -> Path:
        """Root of the Pascal VOC tree (holds ``Annotations/``, ``JPEGImages/``, ``ImageSets/``)."""
        return self.root / "voc"

    def coco_json(self, split: str = "val") -> Path:
        """Path of the COCO instances file for ``split``."""
        self._check_split(split)
        return self.root / "coco" / f"instances_{split}.json"

    def coco_images(self, split: str = "val") -> Path:
        """Folder the COCO ``file_name`` entries are relative to."""
        self._check_split(split)
        return self.root / "coco" / "images" / split

    def images(self, split: str = "val") -> list[Path]:
        """Sorted image paths of a split (YOLO layout)."""
        self._check_split(split)
        return sorted((self.root / "yolo" / "images" / split).glob("*.jpg"))

    def _check_split(self, split: str) -> None:
        if self.counts.get(split, 0) == 0:
            have = [s for s, n in self.counts.items() if n]
            raise ValueError(f"split {split!r} is empty in {self.root}; available splits: {have}")

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={n} images/{self.n_boxes.get(s, 0)} boxes" for s, n in self.counts.items() if n)
        return f"ShapesDataset({self.root}, classes={list(self.classes)}, imgsz={self.imgsz}, {parts})"


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------
def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Polygon vertices of a shape of 'radius' r centred at (cx, cy)."""
    if kind == "square":
        k, offset = 4, math.pi / 4 + angle
    elif kind == "triangle":
        k, offset = 3, -math.pi / 2 + angle
    elif kind == "diamond":
        k, offset = 4, 0.0
    elif kind == "cross":  # a plus sign as a 12-gon
        t = r * 0.35
        pts = [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r), (-t, r), (-t, t), (-r, t), (-r, -t), (-t, -t)]
        c, s = math.cos(angle), math.sin(angle)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    else:
        raise ValueError(kind)
    return [(cx + r * math.cos(offset + 2 * math.pi * i / k), cy + r * math.sin(offset + 2 * math.pi * i / k)) for i in range(k)]


def background(rng: np.random.Generator, w: int, h: int, *, colours: tuple[int, int] = (40, 200),
               any_direction: bool = True, textures: Sequence[str] = ("flat", "noise", "stripes"),
               noise: float = 18.0, blur: float = 0.6, clutter: tuple[int, int] | None = None) -> Image.Image:
    """A random ``w`` x ``h`` background that is not an object: a gradient, a texture, optional clutter.

    The gradient runs between two random colours drawn from ``colours`` (low, high): vertical, or in either
    direction with ``any_direction``. One of ``textures`` is drawn on it: ``"flat"`` (none), ``"noise"``
    (Gaussian, standard deviation ``noise``) or ``"stripes"`` (soft vertical bands); the choice is random
    only when there are several. ``blur`` (a Gaussian radius, 0 for none) softens it; ``clutter`` = (low, high)
    then draws that many (high exclusive) sharp rectangles and lines, distractors that are not labelled.

    The defaults are the shapes' backgrounds; the scene text (:mod:`labkit.data.synthetic_text`) uses
    ``colours=(60, 200), any_direction=False, textures=("noise",), noise=6, blur=0, clutter=(2, 6)``. The same
    generator state gives the same picture, so a seed reproduces both datasets.
    """
    c0, c1 = rng.integers(colours[0], colours[1], size=(2, 3))
    vertical = not (any_direction and rng.random() < 0.5)
    t = np.linspace(0.0, 1.0, h if vertical else w)[:, None]
    grad = c0[None, :] * (1 - t) + c1[None, :] * t  # one colour per row (or column)
    img = np.broadcast_to(grad[:, None, :] if vertical else grad[None, :, :], (h, w, 3)).copy()
    texture = textures[int(rng.integers(0, len(textures)))] if len(textures) > 1 else textures[0]
    if texture == "noise":
        img += rng.normal(0, noise, size=img.shape)
    elif texture == "stripes":
        period = rng.integers(8, 24)
        img += (np.arange(w) // period % 2)[None, :, None] * rng.integers(10, 35)
    elif texture != "flat":
        raise ValueError(f"texture must be 'flat', 'noise' or 'stripes', got {texture!r}")
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if blur:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    if clutter is not None:
        d = ImageDraw.Draw(out)
        for _ in range(int(rng.integers(*clutter))):  # rectangles and lines that are not objects
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            col = tuple(int(v) for v in rng.integers(40, 220, 3))
            if rng.random() < 0.5:
                d.rectangle([x0, y0, x0 + int(rng.integers(10, w // 3)), y0 + int(rng.integers(10, h // 3))], fill=col)
            else:
                d.line([x0, y0, int(rng.integers(0, w)), int(rng.integers(0, h))], fill=col,
                       width=int(rng.integers(1, 4)))
    return out


def _draw_image(rng: np.random.Generator, imgsz: int, n_classes: int, max_objects: int,
                min_size: float, max_size: float) -> tuple[Image.Image, list[tuple[int, float, float, float, float]]]:
    """Draw one image; return it and its objects as (class_id, x1, y1, x2, y2) in pixels."""
    img = background(rng, imgsz, imgsz)
    draw = ImageDraw.Draw(img)
    n = int(rng.integers(1, max_objects + 1))
    objects: list[tuple[int, float, float, float, float]] = []
    for _ in range(n):
        cls = int(rng.integers(0, n_classes))
        kind = ALL_CLASSES[cls]
        r = float(rng.uniform(min_size, max_size)) * imgsz / 2
        # centre may be partly outside the image (up to 30% of the radius) -> boxes are clipped
        cx, cy = rng.uniform(-0.3 * r, imgsz + 0.3 * r, size=2)
        angle = float(rng.uniform(0, 2 * math.pi)) if kind in ("square", "triangle", "cross") else 0.0
        colour = tuple(int(v) for v in _PALETTE[rng.integers(0, len(_PALETTE))])
        if kind == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            x1, y1, x2, y2 = cx - r, cy - r, cx + r, cy + r
        else:
            pts = _shape_points(kind, cx, cy, r, angle)
            draw.polygon(pts, fill=colour)
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        x1, y1 = max(0.0, x1), max(0.0, y1)
        x2, y2 = min(float(imgsz), x2), min(float(imgsz), y2)
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            objects.append((cls, x1, y1, x2, y2))
    # Later shapes may hide earlier ones: drop objects more than 60% covered by those drawn after them.
    keep = []
    for i, (c, x1, y1, x2, y2) in enumerate(objects):
        area = (x2 - x1) * (y2 - y1)
        covered = 0.0
        for _, a1, b1, a2, b2 in objects[i + 1:]:
            iw, ih = min(x2, a2) - max(x1, a1), min(y2, b2) - max(y1, b1)
            if iw > 0 and ih > 0:
                covered = max(covered, iw * ih / area)
        if covered < 0.6:
            keep.append((c, x1, y1, x2, y2))
    return img, keep


# ----------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------
def _voc_xml(name: str, imgsz: int, objects, classes, difficult_frac: float) -> str:
    rows = []
    for c, x1, y1, x2, y2 in objects:
        difficult = int(min(x2 - x1, y2 - y1) < difficult_frac * imgsz)
        # VOC boxes are 1-based inclusive pixel indices
        bx1, by1 = int(math.floor(x1)) + 1, int(math.floor(y1)) + 1
        bx2, by2 = min(imgsz, int(math.ceil(x2))), min(imgsz, int(math.ceil(y2)))
        rows.append(
            f"  <object>\n    <name>{escape(classes[c])}</name>\n    <pose>Unspecified</pose>\n"
            f"    <truncated>0</truncated>\n    <difficult>{difficult}</difficult>\n"
            f"    <bndbox><xmin>{bx1}</xmin><ymin>{by1}</ymin><xmax>{bx2}</xmax><ymax>{by2}</ymax></bndbox>\n  </object>"
        )
    body = "\n".join(rows)
    return (
        f"<annotation>\n  <folder>shapes</folder>\n  <filename>{name}.jpg</filename>\n"
        f"  <source><database>labkit synthetic shapes</database></source>\n"
        f"  <size><width>{imgsz}</width><height>{imgsz}</height><depth>3</depth></size>\n"
        f"  <segmented>0</segmented>\n{body}\n</annotation>\n"
    )


def _params_key(**params) -> str:
    blob = json.dumps(params, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def default_root() -> Path:
    """Where generated datasets go by default: ``<LABKIT_HOME>/data/synthetic``."""
    from labkit import env

    return env.paths().data / "synthetic"


def make_shapes(
    root: str | os.PathLike | None = None,
    n_train: int = 64,
    n_val: int = 32,
    n_test: int = 0,
    imgsz: int = 128,
    n_classes: int = 3,
    max_objects: int = 4,
    min_size: float = 0.15,
    max_size: float = 0.5,
    difficult_frac: float = 0.12,
    seed: int = 0,
    overwrite: bool = False,
) -> ShapesDataset:
    """Generate (or reuse) a deterministic shapes detection dataset in YOLO, VOC and COCO layouts.

    Args:
        root: output folder. Default: ``<LABKIT_HOME>/data/synthetic/shapes-<hash of the arguments>``,
            so different settings never overwrite each other and the same settings are generated once.
        n_train, n_val, n_test: images per split (``test`` is written only when ``n_test > 0``).
        imgsz: square image side in pixels.
        n_classes: how many of ``circle, square, triangle, diamond, cross`` to use (1–5).
        max_objects: each image holds 1..max_objects shapes (some may be dropped when hidden).
        min_size, max_size: shape diameter as a fraction of ``imgsz``.
        difficult_frac: VOC ``difficult`` flag for boxes whose shorter side is below this fraction of ``imgsz``.
        seed: random seed; the same seed gives the same images and boxes.
        overwrite: regenerate even if a complete dataset with the same settings exists at ``root``.

    Returns:
        A :class:`ShapesDataset` with the paths of every layout.
    """
    if not 1 <= n_classes <= len(ALL_CLASSES):
        raise ValueError(f"n_classes must be between 1 and {len(ALL_CLASSES)}, got {n_classes}")
    if imgsz < 32:
        raise ValueError(f"imgsz must be at least 32 pixels, got {imgsz}")
    if not 0 < min_size <= max_size <= 1:
        raise ValueError(f"need 0 < min_size <= max_size <= 1, got {min_size}, {max_size}")
    if n_train < 0 or n_val < 0 or n_test < 0 or n_train + n_val + n_test == 0:
        raise ValueError("split sizes must be >= 0 and not all zero")
    params = dict(n_train=n_train, n_val=n_val, n_test=n_test, imgsz=imgsz, n_classes=n_classes,
                  max_objects=max_objects, min_size=min_size, max_size=max_size,
                  difficult_frac=difficult_frac, seed=seed, version=_FORMAT_VERSION)
    root = Path(root) if root is not None else default_root() / f"shapes-{_params_key(**params)}"
    root = root.expanduser().resolve()
    classes = ALL_CLASSES[:n_classes]
    counts = {"train": n_train, "val": n_val, "test": n_test}

    manifest = root / "manifest.json"
    if manifest.exists() and not overwrite:
        try:
            old = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("params") == params:
            return ShapesDataset(root, classes, counts, imgsz, seed, old.get("n_boxes", {}))
        raise FileExistsError(
            f"{root} holds a shapes dataset made with other settings ({old.get('params')}); "
            "pass another root, or overwrite=True to replace it"
        )
    if root.exists() and any(root.iterdir()) and not manifest.exists() and not overwrite:
        raise FileExistsError(f"{root} exists and is not a labkit shapes dataset; choose an empty folder")

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".shapes-tmp-", dir=root.parent))
    try:
        n_boxes = _write_all(tmp, params, classes, counts)
        (tmp / "manifest.json").write_text(json.dumps({"params": params, "classes": list(classes),
                                                       "n_boxes": n_boxes}, indent=1))
        # data.yaml needs the final absolute path
        splits = ["train", "val"] + (["test"] if counts["test"] else [])
        write_data_yaml(tmp / "yolo" / "data.yaml", root / "yolo", splits, classes, "labkit synthetic shapes (generated)")
        if root.exists() and overwrite:
            shutil.rmtree(root)
        try:
            os.replace(tmp, root)  # atomic on one filesystem: a crash never leaves half a dataset at root
        except OSError:
            # Another process made the same dataset meanwhile (same parameters, same seed: same files). Use it.
            if not (manifest.exists() and json.loads(manifest.read_text()).get("params") == params):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShapesDataset(root, classes, counts, imgsz, seed, n_boxes)


def _write_all(out: Path, params: dict, classes: Sequence[str], counts: dict[str, int]) -> dict[str, int]:
    imgsz = params["imgsz"]
    rng = np.random.default_rng(params["seed"])
    for sub in ("voc/Annotations", "voc/JPEGImages", "voc/ImageSets/Main", "coco"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    n_boxes: dict[str, int] = {}
    index = 0
    ann_id = 1
    for split in SPLITS:
        n = counts[split]
        if n == 0:
            continue
        for sub in (f"yolo/images/{split}", f"yolo/labels/{split}", f"coco/images/{split}"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        names, coco_images, coco_anns = [], [], []
        total = 0
        for i in range(n):
            index += 1
            name = f"{index:06d}"
            img, objects = _draw_image(rng, imgsz, len(classes), params["max_objects"],
                                       params["min_size"], params["max_size"])
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=95)
            data = buf.getvalue()
            for path in (out / f"yolo/images/{split}/{name}.jpg", out / f"voc/JPEGImages/{name}.jpg",
                         out / f"coco/images/{split}/{name}.jpg"):
                path.write_bytes(data)
            rows = [f"{c} {(x1 + x2) / 2 / imgsz:.6f} {(y1 + y2) / 2 / imgsz:.6f} {(x2 - x1) / imgsz:.6f} {(y2 - y1) / imgsz:.6f}"
                    for c, x1, y1, x2, y2 in objects]
            (out / f"yolo/labels/{split}/{name}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
            (out / f"voc/Annotations/{name}.xml").write_text(
                _voc_xml(name, imgsz, objects, classes, params["difficult_frac"]))
            coco_images.append({"id": index, "file_name": f"{name}.jpg", "width": imgsz, "height": imgsz})
            for c, x1, y1, x2, y2 in objects:
                w, h = x2 - x1, y2 - y1
                coco_anns.append({"id": ann_id, "image_id": index, "category_id": c + 1,
                                  "bbox": [round(x1, 3), round(y1, 3), round(w, 3), round(h, 3)],
                                  "area": round(w * h, 3), "iscrowd": 0})
                ann_id += 1
            total += len(objects)
            names.append(name)
        (out / f"voc/ImageSets/Main/{split}.txt").write_text("\n".join(names) + "\n")
        coco = {"info": {"description": "labkit synthetic shapes", "version": str(_FORMAT_VERSION)},
                "images": coco_images, "annotations": coco_anns,
                "categories": [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(classes)]}
        (out / f"coco/instances_{split}.json").write_text(json.dumps(coco))
        n_boxes[split] = total
    trainval = []
    for split in ("train", "val"):
        f = out / f"voc/ImageSets/Main/{split}.txt"
        if f.exists():
            trainval += f.read_text().split()
    (out / "voc/ImageSets/Main/trainval.txt").write_text("\n".join(trainval) + "\n")
    return n_boxes
