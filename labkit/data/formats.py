"""The file formats every labkit reader and converter shares, each read or written in this one place.

* **Image files**: :data:`IMG_SUFFIXES` (the suffixes Ultralytics trains on) and :func:`list_images`.
* **YOLO** label txt, one file per image, one row per object: ``class cx cy w h`` normalised to [0, 1] by
  the image width/height; prediction files add a ``confidence`` column (:func:`read_yolo_txt`).
* **VOC** XML: ``<size><width/><height/></size>`` and ``<object><name/><difficult/><bndbox><xmin/><ymin/>
  <xmax/><ymax/></bndbox></object>`` with 1-based inclusive pixel indices (:func:`read_voc_xml`).
* **Ultralytics** ``data.yaml``: ``path``, one ``<split>: images/<split>`` line per split, ``nc``, ``names``
  (:func:`write_data_yaml`).

Bad input raises :class:`DataFormatError` (:class:`VOCFormatError` for VOC files): one line that names the
file (and the line or object) and what is wrong.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["IMG_SUFFIXES", "DataFormatError", "VOCFormatError", "list_images", "read_yolo_txt", "read_voc_xml",
           "write_data_yaml"]

IMG_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DataFormatError(ValueError):
    """An annotation file or folder that cannot be read as the format it should be; the message is one line that
    names the file (and the record or line) and what is wrong. Every reader here raises only this for bad input."""


class VOCFormatError(DataFormatError):
    """An annotation file (or split file) is not valid Pascal VOC; the message names the file."""


def _short(v, n: int = 40) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _read_text(path, what: str = "file") -> str:
    """UTF-8 text of ``path`` (BOM allowed); missing, unreadable or non-UTF-8 files raise :class:`DataFormatError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:  # missing, a folder, no permission
        raise DataFormatError(f"{path}: cannot read the {what} ({e.strerror or type(e).__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: the {what} is not UTF-8 text (byte {e.start})") from None


def list_images(folder, recursive: bool = True) -> list[Path]:
    """The image files (by :data:`IMG_SUFFIXES`, any case) in ``folder``, sorted; with ``recursive`` in its
    subfolders too."""
    folder = Path(folder)
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.suffix.lower() in IMG_SUFFIXES and p.is_file())


def read_yolo_txt(path, with_conf: bool | None = None) -> np.ndarray:
    """Rows of a YOLO txt file as an ``(N, 5)`` (or ``(N, 6)`` with confidence) float array.

    ``with_conf=True`` requires the 6th column, ``False`` requires exactly 5, ``None`` accepts either
    (consistently within the file). Errors name the file and line.
    """
    path = Path(path)
    rows = []
    for ln, line in enumerate(_read_text(path, "YOLO label file").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        want = {True: (6,), False: (5,), None: (5, 6)}[with_conf]
        if len(parts) not in want:
            need = "class cx cy w h conf" if with_conf else "class cx cy w h"
            raise DataFormatError(f"{path}:{ln}: expected {' or '.join(map(str, want))} numbers ({need}), got {line!r}")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise DataFormatError(f"{path}:{ln}: not a number in {line!r}") from None
        if not np.isfinite(vals).all():
            raise DataFormatError(f"{path}:{ln}: NaN/inf in {line!r}")
        if vals[3] <= 0 or vals[4] <= 0:
            raise DataFormatError(f"{path}:{ln}: width/height must be > 0 in {line!r}")
        rows.append(vals)
    if rows and len({len(r) for r in rows}) > 1:
        raise DataFormatError(f"{path}: rows mix 5 and 6 columns")
    ncol = len(rows[0]) if rows else (6 if with_conf else 5)
    return np.asarray(rows, dtype=np.float64).reshape(-1, ncol)


def _voc_text(node, tag: str, where: str, required: bool = True):
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise VOCFormatError(f"{where}: missing <{tag}>")
        return None
    return child.text.strip()


def _voc_number(node, tag: str, where: str, required: bool = True):
    txt = _voc_text(node, tag, where, required)
    if txt is None:
        return None
    try:
        v = float(txt)
    except ValueError:
        raise VOCFormatError(f"{where}: <{tag}> is not a number: {_short(txt)}") from None
    if not math.isfinite(v):
        raise VOCFormatError(f"{where}: <{tag}> is not finite: {_short(txt)}")
    return v


def read_voc_xml(path, need_size: bool = True) -> dict:
    """Parse one VOC annotation: ``{"filename" (None when absent), "width", "height", "names", "boxes" (N, 4)
    float64 continuous xyxy pixels, "difficult" (N,) bool}``.

    VOC's 1-based inclusive ``[xmin, xmax]`` becomes the continuous interval ``[xmin - 1, xmax]``, so
    ``xmax - xmin`` is the width in pixels. ``need_size``: ``<size>`` must hold a positive width and height;
    without it a missing size reads as 0 (the caller takes it from the image). Raises :class:`VOCFormatError`
    naming ``path`` on unreadable or malformed XML, a missing field, a non-number or non-finite number, an
    empty or inverted box, or a ``<difficult>`` that is not 0/1.
    """
    path = Path(path)
    try:
        root = ET.fromstring(path.read_bytes())  # bytes: the XML declaration names the encoding
    except OSError as e:
        raise VOCFormatError(f"{path}: cannot read the VOC annotation ({e.strerror or type(e).__name__})") from None
    except ET.ParseError as e:
        raise VOCFormatError(f"{path}: not valid XML ({e})") from None
    if root.tag != "annotation":
        raise VOCFormatError(f"{path}: root element is <{_short(root.tag, 30)}>, expected <annotation>")
    size = root.find("size")
    if need_size and (size is None or _voc_text(size, "width", "", False) is None
                      or _voc_text(size, "height", "", False) is None):
        raise VOCFormatError(f"{path}: missing <size><width>/<height>")
    w = h = 0
    if size is not None:
        wf, hf = (_voc_number(size, t, f"{path}: <size>", need_size) for t in ("width", "height"))
        w, h = int(wf or 0), int(hf or 0)
        if (need_size and (w <= 0 or h <= 0)) or w < 0 or h < 0:
            raise VOCFormatError(f"{path}: image size {w}x{h} must be positive")
    names, boxes, diff = [], [], []
    for k, obj in enumerate(root.iter("object")):
        name = _voc_text(obj, "name", f"{path}: object {k}")
        where = f"{path}: object {k} ({_short(name, 30)})"
        bb = obj.find("bndbox")
        if bb is None:
            raise VOCFormatError(f"{where}: missing <bndbox>")
        x1, y1, x2, y2 = (_voc_number(bb, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
        if not (x2 > x1 - 1 and y2 > y1 - 1):
            raise VOCFormatError(f"{where}: empty box xmin={x1:g} ymin={y1:g} xmax={x2:g} ymax={y2:g}")
        d = (_voc_text(obj, "difficult", where, required=False) or "0").lower()
        try:
            d = {"true": 1, "false": 0}[d] if d in ("true", "false") else float(d)
        except ValueError:
            raise VOCFormatError(f"{where}: <difficult> must be 0 or 1, got {_short(d)}") from None
        if d not in (0, 1):
            raise VOCFormatError(f"{where}: <difficult> must be 0 or 1, got {d:g}")
        names.append(name)
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        diff.append(d == 1)
    return {"filename": _voc_text(root, "filename", str(path), required=False), "width": w, "height": h,
            "names": names, "boxes": np.asarray(boxes, np.float64).reshape(-1, 4),
            "difficult": np.asarray(diff, bool).reshape(-1)}


def write_data_yaml(file, path, splits: Sequence[str], names: Sequence[str], comment: str) -> None:
    """Write an Ultralytics dataset yaml: ``# comment``, ``path``, ``<split>: images/<split>`` for each split,
    ``nc`` and the ``names`` mapping (UTF-8)."""
    lines = [f"# {comment}", f"path: {path}"]
    lines += [f"{s}: images/{s}" for s in splits]
    lines.append(f"nc: {len(names)}")
    lines.append("names:")
    lines += [f"  {i}: {n}" for i, n in enumerate(names)]
    Path(file).write_text("\n".join(lines) + "\n", encoding="utf-8")
