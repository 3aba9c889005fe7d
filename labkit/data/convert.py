"""Annotation converters: COCO JSON ↔ YOLO txt (with the 91 → 80 category map), VOC XML → YOLO,
YOLO (labels or predictions with a confidence column) → COCO JSON for evaluation.

Formats:

* **COCO** ``bbox`` = ``[x, y, w, h]`` in pixels (top-left corner); category ids are the paper's
  91-id scheme for COCO itself (80 used, with gaps), anything for custom sets.
* **YOLO** txt and **VOC** XML: read by :mod:`labkit.data.formats` (``read_yolo_txt``, ``read_voc_xml``,
  re-exported here), the one place each format is parsed.

``coco_to_yolo`` follows ``ultralytics.data.converter.convert_coco`` (crowds skipped, empty boxes
skipped, ``%g`` numbers, duplicate rows removed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from labkit.data.formats import (IMG_SUFFIXES, DataFormatError, _read_text, _short, list_images, read_voc_xml,
                                 read_yolo_txt)

__all__ = [
    "COCO80_TO_91", "coco91_to_coco80", "coco80_to_coco91", "coco_to_yolo", "yolo_to_coco", "yolo_preds_to_coco",
    "voc_to_yolo", "read_voc_xml", "read_yolo_txt", "yolo_dataset", "IMG_SUFFIXES", "DataFormatError",
]

# The 80 category ids COCO actually uses, in order: index = YOLO class (0..79), value = COCO id (1..90).
COCO80_TO_91 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
                33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
                61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


def _read_json(path, what: str = "JSON file"):
    text = _read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise DataFormatError(f"{path}: JSON nested too deeply") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_pos(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _is_box(v) -> bool:
    return (isinstance(v, list) and len(v) == 4
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


def _is_file_name(v) -> bool:
    return isinstance(v, str) and "\0" not in v and Path(v).name not in ("", ".", "..")


_CHECKS = {_is_int: "an integer", _is_pos: "a positive number", _is_box: "4 finite numbers [x, y, w, h]",
           _is_file_name: "a file name"}


def _check_coco(data, src: str, need=("images", "annotations", "categories")) -> None:
    """Check the COCO structure the converters read; the first problem raises :class:`DataFormatError`."""
    if not isinstance(data, dict):
        raise DataFormatError(f"{src}: a COCO file must be a JSON object with {', '.join(map(repr, need))}, "
                              f"got {type(data).__name__}")
    fields = {"images": {"id": _is_int, "file_name": _is_file_name, "width": _is_pos, "height": _is_pos},
              "categories": {"id": _is_int},
              "annotations": {"image_id": _is_int, "category_id": _is_int, "bbox": _is_box}}
    for key in need:
        if key not in data:
            raise DataFormatError(f"{src}: missing {key!r}")
        if not isinstance(data[key], list):
            raise DataFormatError(f"{src}: {key!r} must be a list, got {_short(data[key])}")
        for j, rec in enumerate(data[key]):
            if not isinstance(rec, dict):
                raise DataFormatError(f"{src}: {key}[{j}] must be a JSON object, got {_short(rec)}")
            for f, ok in fields[key].items():
                if f not in rec:
                    raise DataFormatError(f"{src}: {key}[{j}] is missing the field {f!r}")
                if not ok(rec[f]):
                    raise DataFormatError(f"{src}: {key}[{j}] field {f!r} must be {_CHECKS[ok]}, got {_short(rec[f])}")


def coco91_to_coco80() -> list:
    """List of 91 entries: ``[coco_id - 1] → YOLO class 0..79``, ``None`` for the 11 unused ids."""
    table = [None] * 91
    for k, cid in enumerate(COCO80_TO_91):
        table[cid - 1] = k
    return table


def coco80_to_coco91() -> list:
    """YOLO class 0..79 → COCO category id (the inverse map, used when writing COCO results)."""
    return list(COCO80_TO_91)


def _fmt(rows):
    return "".join(("%g " * len(r)).rstrip() % tuple(r) + "\n" for r in dict.fromkeys(map(tuple, rows)))


# ------------------------------------------------------------------------------------------------
# COCO → YOLO
# ------------------------------------------------------------------------------------------------
def coco_to_yolo(coco_json, out_dir, cls91to80: bool | None = None) -> dict:
    """Write YOLO label files (``out_dir/<image stem>.txt``) from a COCO GT file or dict.

    Args:
        coco_json: path or dict.
        out_dir: folder for the txt files (created). Every image gets a file (empty if no object).
        cls91to80: map COCO's 91-id scheme to 80 classes (``None``: auto — yes if every category id
            is one of the 80 COCO ids and there are more than 20 categories); otherwise the class is
            the rank of the category id among the sorted category ids.

    Returns:
        ``{"names": [...], "n_images": int, "n_boxes": int, "skipped_crowd": int, "skipped_empty": int}``.
    """
    data = _read_json(coco_json, "COCO file") if isinstance(coco_json, (str, Path)) else coco_json
    src = str(coco_json) if isinstance(coco_json, (str, Path)) else "COCO dict"
    _check_coco(data, src)
    cats = sorted(data["categories"], key=lambda c: c["id"])
    ids = [c["id"] for c in cats]
    if cls91to80 is None:
        cls91to80 = len(ids) > 20 and set(ids) <= set(COCO80_TO_91)
    if cls91to80:
        m = coco91_to_coco80()
        cmap = {cid: m[cid - 1] for cid in range(1, 92) if m[cid - 1] is not None}
        by_id = {c["id"]: c.get("name", str(c["id"])) for c in cats}
        names = [by_id.get(cid, str(cid)) for cid in COCO80_TO_91]
    else:
        cmap = {cid: k for k, cid in enumerate(ids)}
        names = [c.get("name", str(c["id"])) for c in cats]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {im["id"]: im for im in data["images"]}
    rows = {i: [] for i in images}
    n_crowd = n_empty = 0
    for j, a in enumerate(data["annotations"]):
        if a["image_id"] not in images:
            raise DataFormatError(f"{src}: annotation {j} (id {_short(a.get('id'))}) refers to unknown image id "
                                  f"{a['image_id']}")
        if a.get("iscrowd", False):
            n_crowd += 1
            continue
        im = images[a["image_id"]]
        w, h = im["width"], im["height"]
        box = np.array(a["bbox"], dtype=np.float64)
        box[:2] += box[2:] / 2
        box[[0, 2]] /= w
        box[[1, 3]] /= h
        if box[2] <= 0 or box[3] <= 0:
            n_empty += 1
            continue
        if a["category_id"] not in cmap:
            raise DataFormatError(f"{src}: annotation {j} (id {_short(a.get('id'))}): category id {a['category_id']} "
                                  "cannot be mapped "
                                  f"({'not one of the 80 COCO ids' if cls91to80 else 'not in categories'})")
        rows[a["image_id"]].append([cmap[a["category_id"]], *box.tolist()])
    n = 0
    for i, im in images.items():
        (out / Path(im["file_name"]).with_suffix(".txt").name).write_text(_fmt(rows[i]))
        n += len(dict.fromkeys(map(tuple, rows[i])))
    return {"names": names, "n_images": len(images), "n_boxes": n, "skipped_crowd": n_crowd, "skipped_empty": n_empty}


# ------------------------------------------------------------------------------------------------
# YOLO → COCO
# ------------------------------------------------------------------------------------------------
def _image_size(p: Path):
    from PIL import Image

    with Image.open(p) as im:
        return im.size  # (w, h), header only


def _labels_dir_for(images_dir: Path) -> Path:
    """Ultralytics' rule: the last ``images`` path component becomes ``labels``."""
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    raise DataFormatError(f"{images_dir}: cannot find the labels folder (no 'images' component in the path)")


def yolo_dataset(path, split: str = "val"):
    """Resolve a YOLO dataset (``data.yaml`` or a folder holding one, or a folder with
    ``images/`` and ``labels/``) to ``(images_dir, labels_dir, names)``."""
    path = Path(path)
    yaml_file = path if path.suffix in (".yaml", ".yml") else (path / "data.yaml" if (path / "data.yaml").exists()
                                                               else None)
    if yaml_file is not None:
        import yaml

        try:
            cfg = yaml.safe_load(_read_text(yaml_file, "dataset yaml"))
        except yaml.YAMLError as e:
            raise DataFormatError(f"{yaml_file}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(cfg, dict):
            raise DataFormatError(f"{yaml_file}: a dataset yaml must be a mapping with {split!r} and 'names'")
        if not isinstance(cfg.get("path") or "", str) or not isinstance(cfg.get(split, ""), str):
            raise DataFormatError(f"{yaml_file}: 'path' and {split!r} must be folder names")
        root = Path(cfg.get("path") or yaml_file.parent)
        if not root.is_absolute():
            root = (yaml_file.parent / root).resolve()
        if split not in cfg:
            raise DataFormatError(f"{yaml_file}: no {split!r} entry")
        images_dir = root / cfg[split]
        names = cfg.get("names", {})
        if isinstance(names, dict) and all(isinstance(k, int) for k in names):
            names = [names[k] for k in sorted(names)]
        elif isinstance(names, list):
            names = list(names)
        else:
            raise DataFormatError(f"{yaml_file}: 'names' must be a list or a mapping class index -> name")
        return images_dir, _labels_dir_for(images_dir), names
    images_dir = path / "images" / split if (path / "images" / split).is_dir() else path / "images"
    if not images_dir.is_dir():
        raise DataFormatError(f"{path}: not a YOLO dataset (no data.yaml and no images/ folder)")
    return images_dir, _labels_dir_for(images_dir), None


def yolo_to_coco(images_dir, labels_dir=None, names=None, out=None, category_offset: int = 1) -> dict:
    """COCO ground truth from YOLO labels (for evaluation with pycocotools / labkit).

    Image ids are 1, 2, … in sorted file order (``file_name`` relative to ``images_dir``); category
    id = class + ``category_offset``. Image sizes are read from the image headers. A missing label
    file means "no objects". Returns the dict (and writes it to ``out`` if given).
    """
    images_dir = Path(images_dir)
    labels_dir = Path(labels_dir) if labels_dir is not None else _labels_dir_for(images_dir)
    files = list_images(images_dir)
    if not files:
        raise DataFormatError(f"{images_dir}: no images found")
    images, anns = [], []
    max_cls = -1
    for i, f in enumerate(files, 1):
        try:
            w, h = _image_size(f)
        except Exception as e:  # not an image (PIL: UnidentifiedImageError, a truncated header …)
            raise DataFormatError(f"{f}: not a readable image ({type(e).__name__})") from None
        rel = f.relative_to(images_dir)
        images.append({"id": i, "file_name": rel.as_posix(), "width": w, "height": h})
        lf = (labels_dir / rel).with_suffix(".txt")
        if not lf.exists():
            continue
        for r in read_yolo_txt(lf, with_conf=False):
            c, cx, cy, bw, bh = r
            if c != int(c) or c < 0:
                raise DataFormatError(f"{lf}: class {c} is not a non-negative integer")
            max_cls = max(max_cls, int(c))
            bw, bh = bw * w, bh * h
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c) + category_offset,
                         "bbox": [cx * w - bw / 2, cy * h - bh / 2, bw, bh], "area": bw * bh, "iscrowd": 0})
    if names is None:
        names = [str(k) for k in range(max_cls + 1)]
    elif max_cls >= len(names):
        raise DataFormatError(f"{labels_dir}: class {max_cls} found but only {len(names)} names")
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": k + category_offset, "name": str(n)} for k, n in enumerate(names)]}
    if out is not None:
        Path(out).write_text(json.dumps(coco))
    return coco


def yolo_preds_to_coco(pred_dir, coco_gt, category_offset: int = 1, out=None, category_ids=None) -> list:
    """COCO results list from YOLO prediction txt files (``class cx cy w h conf``, normalised), one
    per image named like the image (as Ultralytics ``save_txt=True, save_conf=True`` writes them).

    ``coco_gt`` (dict or path) supplies image ids and sizes, matched by file stem. A prediction file
    for an image that is not in the ground truth is an error; a missing file means "no detections".
    Category id = ``category_ids[class]`` if given (e.g. :func:`coco80_to_coco91` for COCO), else
    class + ``category_offset``.
    """
    gt = _read_json(coco_gt, "COCO file") if isinstance(coco_gt, (str, Path)) else coco_gt
    src = str(coco_gt) if isinstance(coco_gt, (str, Path)) else "COCO dict"
    _check_coco(gt, src, need=("images",))
    by_stem = {}
    for im in gt["images"]:
        stem = Path(im["file_name"]).stem
        if stem in by_stem:
            raise DataFormatError(f"{src}: two ground-truth images share the stem {stem!r}; cannot match prediction "
                                  "files")
        by_stem[stem] = im
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataFormatError(f"prediction folder not found: {pred_dir}")
    res = []
    for f in sorted(pred_dir.rglob("*.txt")):
        im = by_stem.get(f.stem)
        if im is None:
            raise DataFormatError(f"{f}: no image named {f.stem!r} in the ground truth")
        w, h = im["width"], im["height"]
        for ln, (c, cx, cy, bw, bh, conf) in enumerate(read_yolo_txt(f, with_conf=True), 1):
            if c != int(c) or c < 0 or (category_ids is not None and c >= len(category_ids)):
                raise DataFormatError(f"{f}: row {ln}: class {c:g} is not a valid class index")
            bw, bh = bw * w, bh * h
            cid = int(category_ids[int(c)]) if category_ids is not None else int(c) + category_offset
            res.append({"image_id": im["id"], "category_id": cid,
                        "bbox": [cx * w - bw / 2, cy * h - bh / 2, bw, bh], "score": float(conf)})
    if out is not None:
        Path(out).write_text(json.dumps(res))
    return res


# ------------------------------------------------------------------------------------------------
# VOC → YOLO
# ------------------------------------------------------------------------------------------------
def voc_to_yolo(voc_root, out_dir, class_names=None, split=None, include_difficult: bool = False,
                ultralytics_rounding: bool = False) -> dict:
    """Write YOLO labels from a VOC tree (``voc_root/Annotations/*.xml``, optional
    ``ImageSets/Main/<split>.txt``).

    Args:
        class_names: class order (index = YOLO class); default: sorted names found. Objects of other
            classes are skipped.
        include_difficult: Ultralytics' VOC.yaml drops ``difficult`` objects (default here too).
        ultralytics_rounding: reproduce Ultralytics' VOC.yaml formula (centre − 1 pixel, width
            xmax − xmin) instead of the exact continuous box ``[xmin − 1, xmax]``.

    Returns ``{"names", "n_images", "n_boxes", "skipped_difficult"}``.
    """
    voc_root = Path(voc_root)
    ann_dir = voc_root / "Annotations"
    if not ann_dir.is_dir():
        raise DataFormatError(f"{voc_root}: no Annotations/ folder")
    if split is not None:
        lst = voc_root / "ImageSets" / "Main" / f"{split}.txt"
        if not lst.exists():
            raise DataFormatError(f"{lst}: split list not found")
        files = [ann_dir / f"{s.split()[0]}.xml" for s in _read_text(lst, "split list").split("\n") if s.strip()]
    else:
        files = sorted(ann_dir.glob("*.xml"))
    recs = [(f, read_voc_xml(f)) for f in files]
    if class_names is None:
        class_names = sorted({n for _, r in recs for n in r["names"]})
    idx = {n: k for k, n in enumerate(class_names)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nb = nd = 0
    for f, r in recs:
        w, h = r["width"], r["height"]
        rows = []
        for n, b, d in zip(r["names"], r["boxes"], r["difficult"]):
            if n not in idx:
                continue
            if d and not include_difficult:
                nd += 1
                continue
            if ultralytics_rounding:  # VOC.yaml: convert_box on the raw 1-based numbers
                xmin, xmax, ymin, ymax = b[0] + 1, b[2], b[1] + 1, b[3]
                cx, cy, bw, bh = (xmin + xmax) / 2 - 1, (ymin + ymax) / 2 - 1, xmax - xmin, ymax - ymin
            else:
                cx, cy, bw, bh = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]
            rows.append([idx[n], cx / w, cy / h, bw / w, bh / h])
        (out / f"{f.stem}.txt").write_text(_fmt(rows))
        nb += len(rows)
    return {"names": list(class_names), "n_images": len(recs), "n_boxes": nb, "skipped_difficult": nd}
