"""BKAI / VinText Vietnamese scene text: the label format, read robustly, and its converter to YOLO.

**The format.** One label file per image, one text instance per line::

    x1,y1,x2,y2,x3,y3,x4,y4,TRANSCRIPTION

a quadrilateral (clockwise from the top-left corner, in pixels) and the text, UTF-8. ``###`` marks
*don't care* text (illegible). Transcriptions may contain commas (``"Phở bò, gà"``), so a line is split at
most 8 times. Coordinates may be floats and may fall outside the image.

**Two naming schemes** (:data:`NAMINGS`):

* ``"vintext"`` — VinText (``vietnamese/``): ``train_images/``, ``test_image/`` (singular!),
  ``unseen_test_images/`` and one shared ``labels/`` folder: image ``im0001.jpg`` ↔ ``labels/gt_1.txt``
  (the zero padding is dropped);
* ``"bkai2022"`` — the 2022 challenge release: image ``X.jpg`` ↔ ``gt_X.txt``;
* ``"auto"`` (default) — chosen from the image names (``im<digits>`` → VinText).

The naming is about file names only. :func:`convert_vintext` expects the VinText *folder layout*; the 2022
release keeps its images and labels elsewhere (``train_imgs/training_img/``, ``train_gt/training_gt/``): pass
those folders to :func:`convert` directly, e.g.
``convert({"train": root / "train_imgs/training_img"}, root / "train_gt/training_gt", out)``.

**What the converter fixes in the source notebook**: ``split(",", 8)`` instead of
``split(",")`` (commas in text), float coordinates, boxes partly outside the image are *clipped* (Ultralytics
drops the whole image when one label value is outside [0, 1]), EXIF orientation is applied to the
coordinates (Ultralytics trains on EXIF-rotated pixels), the image size comes from the file header (no full
decode), work runs in parallel, and every problem is counted in a report instead of being printed and lost.

**The ``###`` policy** (``dont_care=``):

* ``"keep"`` (default) — a ``###`` region is text, only unreadable: for a text *detector* it is a positive
  (class 0), as in the source notebook. Dropping it would teach the model that illegible text is background;
* ``"drop"`` — not written (counted as dropped, reason ``dont_care``);
* ``"ignore"`` — written as its own class 1 ``dont_care``. Ultralytics has no ignore regions, so this is the
  closest thing: train on it or filter class 1 at evaluation/prediction time.

The licence of BKAI/VinText forbids redistribution: labkit never ships it. Point :func:`convert_vintext` at
your own copy (e.g. a Kaggle input); :func:`labkit.data.synthetic_text.make_vintext` generates offline
look-alike data in the same layout for the course.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from labkit.data.formats import list_images, write_data_yaml

__all__ = [
    "NAMINGS", "DONT_CARE_POLICIES", "VINTEXT_SPLITS", "BKAIFormatError", "parse_line", "read_gt",
    "image_size", "exif_orientation", "orient_points", "detect_naming", "label_key", "label_file", "convert",
    "convert_vintext", "ConvertReport", "quad_to_box",
]

NAMINGS = ("auto", "vintext", "bkai2022")
DONT_CARE_POLICIES = ("keep", "drop", "ignore")
#: VinText folder → YOLO split
VINTEXT_SPLITS = {"train": "train_images", "val": "test_image", "test": "unseen_test_images"}
DROP_REASONS = ("dont_care", "outside_image", "degenerate")


class BKAIFormatError(ValueError):
    """A label line or file that cannot be read; the message names the file and the line."""

    def __init__(self, file, line: int | None, reason: str, text: str | None = None):
        self.file, self.line, self.reason, self.text = str(file), line, reason, text
        where = f"{file}:{line}" if line is not None else str(file)
        super().__init__(f"{where}: {reason}" + (f": {text!r}" if text is not None else ""))


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------
def parse_line(line: str, file="<string>", lineno: int | None = None) -> tuple[np.ndarray, str]:
    """Parse ``x1,y1,…,x4,y4,TEXT`` into (8 float coordinates, text).

    The line is split at most 8 times, so commas inside the transcription stay in the text. Coordinates may be
    integers or floats (``12.5``, ``-3``, ``1e2``); surrounding whitespace and a trailing ``\\r`` are ignored.
    A line with only 8 numbers gets the empty text. Raises :class:`BKAIFormatError` naming file and line.
    """
    s = line.rstrip("\r\n")
    parts = s.split(",", 8)
    if len(parts) < 8:
        raise BKAIFormatError(file, lineno, f"expected 8 coordinates and a transcription, found {len(parts)} field(s)", s)
    try:
        xy = np.array([float(p) for p in parts[:8]], dtype=np.float64)
    except ValueError:
        raise BKAIFormatError(file, lineno, "coordinates are not numbers", s) from None
    if not np.isfinite(xy).all():
        raise BKAIFormatError(file, lineno, "coordinates are not finite", s)
    text = parts[8].strip() if len(parts) == 9 else ""
    return xy, text


def _decode(data: bytes, file) -> tuple[str, list[dict]]:
    """UTF-8 (BOM allowed); undecodable bytes are reported (with their line) and replaced."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        issue = {"file": str(file), "line": line, "error": f"not UTF-8 (byte {e.start}); text decoded with replacement",
                 "text": None}
        return data.decode("utf-8-sig", errors="replace"), [issue]


def read_gt(path, strict: bool = True) -> tuple[list[tuple[int, np.ndarray, str]], list[dict]]:
    """Read one ``gt_*.txt``: returns ``([(line_number, xy[8], text), ...], issues)``.

    Handles a UTF-8 BOM, CRLF line ends and blank lines. ``strict=True`` raises :class:`BKAIFormatError` at the
    first malformed line; ``strict=False`` skips it and lists it in ``issues`` (dicts with file, line, error, text).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:  # missing, a folder, no permission
        raise BKAIFormatError(path, None, f"cannot read the label file ({e.strerror or type(e).__name__})") from None
    text, issues = _decode(data, path)
    if issues and strict:
        raise BKAIFormatError(path, issues[0]["line"], "file is not UTF-8")
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            xy, t = parse_line(line, path, i)
        except BKAIFormatError as e:
            if strict:
                raise
            issues.append({"file": str(path), "line": i, "error": e.reason, "text": line.rstrip("\r\n")})
            continue
        rows.append((i, xy, t))
    return rows, issues


# ----------------------------------------------------------------------------------------------
# Images: size from the header, EXIF orientation
# ----------------------------------------------------------------------------------------------
def exif_orientation(img) -> int:
    """EXIF orientation tag (1–8) of an opened PIL image; 1 when absent or unreadable."""
    try:
        o = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1
    return o if 1 <= o <= 8 else 1


def image_size(path) -> tuple[int, int, int]:
    """``(width, height, orientation)`` read from the file header, without decoding the pixels.

    ``width``/``height`` are the *displayed* size (EXIF orientations 5–8 swap them), the size Ultralytics and
    OpenCV (``cv2.imread`` applies EXIF) work with. Raises ``OSError``/``PIL.UnidentifiedImageError`` when the
    file is not an image.
    """
    from PIL import Image

    with Image.open(path) as img:  # lazy: only the header is parsed
        w, h = img.size
        o = exif_orientation(img)
    return (h, w, o) if o in (5, 6, 7, 8) else (w, h, o)


def orient_points(xy: np.ndarray, raw_w: float, raw_h: float, orientation: int) -> np.ndarray:
    """Map points ``(..., 2)`` from stored-pixel coordinates to the EXIF-oriented (displayed) image.

    ``raw_w``/``raw_h`` are the stored size. Continuous coordinates: a pixel edge at x maps to W - x on a mirror.
    Matches ``PIL.ImageOps.exif_transpose`` and ``cv2.imread`` (tested).
    """
    p = np.asarray(xy, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]
    W, H = raw_w, raw_h
    if orientation == 2:
        nx, ny = W - x, y
    elif orientation == 3:
        nx, ny = W - x, H - y
    elif orientation == 4:
        nx, ny = x, H - y
    elif orientation == 5:
        nx, ny = y, x
    elif orientation == 6:
        nx, ny = H - y, x
    elif orientation == 7:
        nx, ny = H - y, W - x
    elif orientation == 8:
        nx, ny = y, W - x
    else:
        nx, ny = x, y
    return np.stack([nx, ny], axis=-1)


def _jpeg_truncated(path: Path) -> bool:
    """True if a JPEG file lacks its end-of-image marker (4 bytes read, no decode).

    What the file *is* decides, not its name: a PNG saved as ``.jpg`` is not a truncated JPEG, and a JPEG
    saved as ``.png`` is checked like any JPEG (its start-of-image marker ``FF D8`` says so)."""
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return False
        f.seek(0, 2)
        if f.tell() < 4:
            return True
        f.seek(-2, 2)
        return f.read() != b"\xff\xd9"


# ----------------------------------------------------------------------------------------------
# Naming schemes
# ----------------------------------------------------------------------------------------------
_VINTEXT_RE = re.compile(r"^im(\d+)$", re.IGNORECASE)


def detect_naming(image_names: Iterable[str]) -> str:
    """``"vintext"`` when most image stems look like ``im0001``, else ``"bkai2022"``."""
    stems = [Path(n).stem for n in image_names]
    if not stems:
        return "vintext"
    hits = sum(bool(_VINTEXT_RE.match(s)) for s in stems)
    return "vintext" if hits * 2 > len(stems) else "bkai2022"


def label_key(image_name: str, naming: str) -> str | None:
    """The ``gt_<key>.txt`` key of an image: ``im0001.jpg`` → ``"1"`` (vintext), ``X.jpg`` → ``"X"`` (bkai2022)."""
    stem = Path(image_name).stem
    if naming == "vintext":
        m = _VINTEXT_RE.match(stem)
        return _normalise_key(m.group(1)) if m else None
    if naming == "bkai2022":
        return stem
    raise ValueError(f"naming must be one of {NAMINGS[1:]}, got {naming!r}")


def label_file(labels_dir, image, naming: str = "auto") -> Path | None:
    """The ``gt_*.txt`` of one image in ``labels_dir`` under ``naming`` (``"auto"``: detected from this one
    name), or ``None`` when there is none. The exact name ``gt_<key>.txt`` wins; otherwise zero padding is
    ignored (``gt_05.txt`` for key ``5``) only when exactly one file matches, as in :func:`convert`."""
    labels_dir, name = Path(labels_dir), Path(image).name
    if naming == "auto":
        naming = detect_naming([name])
    key = label_key(name, naming)
    if key is None:
        return None
    p = labels_dir / f"gt_{key}.txt"
    if p.is_file():
        return p
    cands = _label_files(labels_dir).get(_normalise_key(key), [])
    return cands[0] if len(cands) == 1 else None


def _label_files(labels_dir: Path) -> dict[str, list[Path]]:
    """``gt_*.txt`` files by normalised key (``"05"`` and ``"5"`` both → ``"5"``): a list, as keys can collide."""
    out: dict[str, list[Path]] = {}
    for p in sorted(labels_dir.iterdir()):
        if p.suffix.lower() == ".txt" and p.name.startswith("gt_") and p.is_file():
            out.setdefault(_normalise_key(p.stem[3:]), []).append(p)
    return out


def _match_labels(images: Sequence[Path], naming: str, labels_dir: Path):
    """Pair each image with its own label file; returns ``(matched {image: file}, ambiguous [dict])``.

    The exact ``gt_<key>.txt`` always wins. Only when it is absent is zero padding ignored, and only if exactly one
    file has that normalised key, no other image claims that file by its exact name, and no other image falls back
    to it; anything else is reported as ambiguous, never guessed (``gt_5.txt`` and ``gt_05.txt`` are two labels).
    """
    by_norm = _label_files(labels_dir)
    exact_names = {p.name: p for ps in by_norm.values() for p in ps}
    matched, want = {}, {}
    for im in images:
        key = label_key(im.name, naming)
        if key is None:
            continue
        f = exact_names.get(f"gt_{key}.txt")
        if f is not None:
            matched[im] = f
        else:
            want[im] = _normalise_key(key)
    claimed = set(matched.values())
    ambiguous = []
    fallback: dict[Path, list[Path]] = {}
    for im, nk in want.items():
        cands = [f for f in by_norm.get(nk, []) if f not in claimed]
        if len(cands) == 1:
            fallback.setdefault(cands[0], []).append(im)
        elif len(cands) > 1:
            ambiguous.append({"file": str(im), "error": "several label files match after ignoring zero padding: "
                              + ", ".join(c.name for c in cands) + "; rename them to the image's exact key"})
    for f, ims in fallback.items():
        if len(ims) == 1:
            matched[ims[0]] = f
        else:
            for im in ims:
                ambiguous.append({"file": str(im), "error": f"{f.name} matches {len(ims)} images after ignoring "
                                  "zero padding; rename it to one image's exact key"})
    return matched, ambiguous


def _normalise_key(key: str) -> str:
    return str(int(key)) if key.isascii() and key.isdigit() else key  # "²".isdigit() is True, int("²") fails


# ----------------------------------------------------------------------------------------------
# Boxes
# ----------------------------------------------------------------------------------------------
def quad_to_box(xy: np.ndarray) -> np.ndarray:
    """Axis-aligned ``[x1, y1, x2, y2]`` around a quad given as 8 numbers."""
    q = np.asarray(xy, dtype=np.float64).reshape(4, 2)
    return np.array([q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()])


def _fmt(v: float) -> str:
    return f"{v:.6f}"


def _convert_rows(rows, w: int, h: int, fmt: str, dont_care: str, min_size: float):
    """Label rows for one image → (yolo lines, counts)."""
    counts = {"kept": 0, "clipped": 0, "dont_care": 0, "outside_image": 0, "degenerate": 0}
    lines = []
    for _, xy, text in rows:
        cls = 0
        if text == "###":
            if dont_care == "drop":
                counts["dont_care"] += 1
                continue
            if dont_care == "ignore":
                cls = 1
        x1, y1, x2, y2 = (float(v) for v in quad_to_box(xy))  # Python floats: a 1e308 span is inf, no warning
        if (x2 - x1) < min_size or (y2 - y1) < min_size:
            counts["degenerate"] += 1
            continue
        cx1, cy1, cx2, cy2 = min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)
        if (cx2 - cx1) < min_size or (cy2 - cy1) < min_size:
            counts["outside_image"] += 1
            continue
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            counts["clipped"] += 1
        counts["kept"] += 1
        if fmt == "box":
            vals = ((cx1 + cx2) / 2 / w, (cy1 + cy2) / 2 / h, (cx2 - cx1) / w, (cy2 - cy1) / h)
        else:  # polygon: each corner clipped to the image
            q = np.asarray(xy, dtype=np.float64).reshape(4, 2)
            q = np.stack([np.clip(q[:, 0], 0, w) / w, np.clip(q[:, 1], 0, h) / h], 1)
            vals = tuple(q.ravel())
        lines.append(f"{cls} " + " ".join(_fmt(v) for v in vals))
    return lines, counts


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------
@dataclass
class ConvertReport:
    """Everything :func:`convert` did; nothing is dropped without a line here. ``to_json()``, ``table()``."""

    out: str
    naming: str
    format: str
    dont_care: str
    splits: dict = field(default_factory=dict)
    unreadable_images: list = field(default_factory=list)
    truncated_jpegs: list = field(default_factory=list)
    exif_rotated: list = field(default_factory=list)
    labels_without_images: list = field(default_factory=list)
    images_without_labels: list = field(default_factory=list)
    malformed_lines: list = field(default_factory=list)
    ambiguous_labels: list = field(default_factory=list)

    @property
    def totals(self) -> dict:
        """Counts summed over the splits."""
        keys = list(next(iter(self.splits.values()), {}).keys())
        return {k: sum(s[k] for s in self.splits.values()) for k in keys}

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("out", "naming", "format", "dont_care", "splits")}
        d["totals"] = self.totals
        for k in ("unreadable_images", "truncated_jpegs", "exif_rotated", "labels_without_images",
                  "images_without_labels", "ambiguous_labels", "malformed_lines"):
            d[k] = getattr(self, k)
        return d

    def to_json(self, path=None) -> str:
        """The report as JSON text (also written to ``path`` when given)."""
        text = json.dumps(self.as_dict(), indent=1, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def table(self) -> str:
        """A plain-text table: one row per split plus the total, then the problem lists (first 5 of each)."""
        cols = ["images_in", "images_out", "images_empty", "boxes_in", "kept", "clipped", "dont_care",
                "outside_image", "degenerate", "malformed"]
        rows = [(name, s) for name, s in self.splits.items()] + [("total", self.totals)]
        width = [max(len(c), 6) for c in cols]
        lines = ["split  " + "  ".join(c.rjust(w) for c, w in zip(cols, width))]
        for name, s in rows:
            lines.append(f"{name:<6} " + "  ".join(str(s.get(c, 0)).rjust(w) for c, w in zip(cols, width)))
        for key in ("unreadable_images", "truncated_jpegs", "exif_rotated", "labels_without_images",
                    "images_without_labels", "ambiguous_labels", "malformed_lines"):
            items = getattr(self, key)
            lines.append(f"{key}: {len(items)}")
            for it in items[:5]:
                if isinstance(it, dict):
                    where = it["file"] + (f":{it['line']}" if it.get("line") else "")
                    lines.append(f"  {where}  {it.get('error', '')}")
                else:
                    lines.append(f"  {it}")
            if len(items) > 5:
                lines.append(f"  ... {len(items) - 5} more (see report.json)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


# ----------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------
def _process(img_path: Path, label_path: Path, out_img: Path, out_lbl: Path, fmt: str, dont_care: str,
             min_size: float, exif_labels: str, link: str) -> dict:
    res: dict = {"image": str(img_path)}
    try:
        w, h, o = image_size(img_path)
    except Exception as e:  # not an image at all, or a broken header
        res["unreadable"] = f"{type(e).__name__}: {e}"
        return res
    res["orientation"] = o
    res["truncated"] = _jpeg_truncated(img_path)
    rows, issues = read_gt(label_path, strict=False)
    res["issues"] = issues
    res["boxes_in"] = len(rows) + sum(1 for i in issues if i.get("text") is not None)
    if o != 1 and exif_labels == "stored":
        raw_w, raw_h = (h, w) if o in (5, 6, 7, 8) else (w, h)
        rows = [(i, orient_points(xy.reshape(4, 2), raw_w, raw_h, o).ravel(), t) for i, xy, t in rows]
    lines, counts = _convert_rows(rows, w, h, fmt, dont_care, min_size)
    res["counts"] = counts
    out_lbl.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    if link == "symlink":
        os.symlink(img_path.resolve(), out_img)
    elif link == "hardlink":
        os.link(img_path, out_img)
    else:
        shutil.copyfile(img_path, out_img)
    return res


def convert(splits: Mapping[str, str | os.PathLike], labels_dir, out, naming: str = "auto", fmt: str = "box",
            dont_care: str = "keep", min_size: float = 1.0, exif_labels: str = "stored", link: str = "copy",
            workers: int | None = None, strict: bool = False, overwrite: bool = False,
            progress: bool = False) -> ConvertReport:
    """Convert BKAI/VinText splits to a YOLO dataset in a fresh folder ``out``; the source is only read.

    Args:
        splits: YOLO split name → image folder, e.g. ``{"train": ".../train_images", "val": ".../test_image"}``.
        labels_dir: the folder holding ``gt_*.txt`` (VinText: one shared folder for all splits).
        out: output folder; must not exist or be empty (``overwrite=True`` replaces it). Gets
            ``images/<split>/``, ``labels/<split>/`` (same file names as the source images), ``data.yaml``
            and ``report.json``.
        naming: ``"auto"``, ``"vintext"`` (``im0001.jpg`` ↔ ``gt_1.txt``) or ``"bkai2022"`` (``X.jpg`` ↔ ``gt_X.txt``).
            Each image gets its own file: the exact ``gt_<key>.txt`` wins (``5.jpg`` ↔ ``gt_5.txt``, ``05.jpg`` ↔
            ``gt_05.txt``); zero padding is ignored only when that matches exactly one file, otherwise the image
            is listed under ``ambiguous_labels``, never given another image's boxes.
        fmt: ``"box"`` (``0 cx cy w h``) or ``"polygon"`` (``0 x1 y1 … x4 y4``, each corner clipped; Ultralytics
            detection turns it into the enclosing box).
        dont_care: the ``###`` policy, ``"keep"`` (default, class 0), ``"drop"`` or ``"ignore"`` (class 1).
        min_size: boxes narrower or lower than this many pixels (before or after clipping) are dropped.
        exif_labels: ``"stored"`` (default): coordinates refer to the stored pixels and are rotated with the EXIF
            orientation, to match the pixels Ultralytics trains on; ``"displayed"``: they already do.
        link: ``"copy"`` (default), ``"hardlink"`` or ``"symlink"`` for the images.
        workers: threads (default ``min(8, 2 * cpu_count)``); 1 runs serially.
        strict: raise :class:`BKAIFormatError` at the first malformed line or unreadable image instead of
            reporting it.
        progress: show a ``tqdm`` progress bar.

    Returns:
        The :class:`ConvertReport` (also written to ``out/report.json``).
    """
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
    if fmt not in ("box", "polygon"):
        raise ValueError(f"fmt must be 'box' or 'polygon', got {fmt!r}")
    if dont_care not in DONT_CARE_POLICIES:
        raise ValueError(f"dont_care must be one of {DONT_CARE_POLICIES}, got {dont_care!r}")
    if exif_labels not in ("stored", "displayed"):
        raise ValueError(f"exif_labels must be 'stored' or 'displayed', got {exif_labels!r}")
    if link not in ("copy", "hardlink", "symlink"):
        raise ValueError(f"link must be 'copy', 'hardlink' or 'symlink', got {link!r}")
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise FileNotFoundError(f"labels folder {labels_dir} does not exist")
    split_dirs = {}
    for name, d in splits.items():
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"image folder for split {name!r} does not exist: {d}")
        split_dirs[name] = d
    out = Path(out)
    src_roots = [labels_dir.resolve(), *(d.resolve() for d in split_dirs.values())]
    if any(out.resolve() == r or r in out.resolve().parents or out.resolve() in r.parents for r in src_roots):
        raise ValueError(f"output folder {out} overlaps the source; choose a separate folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output folder {out} is not empty; choose a fresh folder or pass overwrite=True")
        shutil.rmtree(out)

    images = {name: list_images(d, recursive=False) for name, d in split_dirs.items()}
    if naming == "auto":
        naming = detect_naming(p.name for ims in images.values() for p in ims)
    all_labels = [p for ps in _label_files(labels_dir).values() for p in ps]
    report = ConvertReport(out=str(out), naming=naming, format=fmt, dont_care=dont_care)
    matched, report.ambiguous_labels = _match_labels([p for ims in images.values() for p in ims], naming, labels_dir)
    if strict and report.ambiguous_labels:
        a = report.ambiguous_labels[0]
        raise BKAIFormatError(a["file"], None, a["error"])
    jobs = []
    for name, ims in images.items():
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        (out / "labels" / name).mkdir(parents=True, exist_ok=True)
        report.splits[name] = {"images_in": len(ims), "images_out": 0, "images_empty": 0, "boxes_in": 0,
                               "kept": 0, "clipped": 0, "dont_care": 0, "outside_image": 0, "degenerate": 0,
                               "malformed": 0}
        ambiguous = {d["file"] for d in report.ambiguous_labels}
        for p in ims:
            if p not in matched:
                if str(p) not in ambiguous:
                    report.images_without_labels.append(str(p))
                continue
            jobs.append((name, p, matched[p], out / "images" / name / p.name,
                         out / "labels" / name / (p.stem + ".txt")))
    used = set(matched.values())
    report.labels_without_images = sorted(str(f) for f in all_labels if f not in used)

    def work(job):
        split, p, lbl, oi, ol = job
        try:
            return split, _process(p, lbl, oi, ol, fmt, dont_care, min_size, exif_labels, link)
        except Exception as e:  # e.g. a label file that cannot be read: name both files
            raise RuntimeError(f"converting {p} with {lbl} failed: {type(e).__name__}: {e}") from e

    nworkers = workers or min(8, 2 * (os.cpu_count() or 1))
    if nworkers <= 1:
        results = map(work, jobs)
    else:
        pool = ThreadPoolExecutor(nworkers)
        results = pool.map(work, jobs)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(jobs), desc="convert")
    try:
        for split, res in results:
            s = report.splits[split]
            if "unreadable" in res:
                report.unreadable_images.append({"file": res["image"], "error": res["unreadable"]})
                if strict:
                    raise BKAIFormatError(res["image"], None, f"unreadable image ({res['unreadable']})")
                continue
            for issue in res["issues"]:
                report.malformed_lines.append(issue)
                if strict:
                    raise BKAIFormatError(issue["file"], issue["line"], issue["error"], issue.get("text"))
            s["malformed"] += sum(1 for i in res["issues"] if i.get("text") is not None)
            if res["truncated"]:
                report.truncated_jpegs.append(res["image"])
            if res["orientation"] != 1:
                report.exif_rotated.append({"file": res["image"], "orientation": res["orientation"]})
            s["images_out"] += 1
            s["boxes_in"] += res["boxes_in"]
            c = res["counts"]
            s["images_empty"] += c["kept"] == 0
            for k in ("kept", "clipped", "dont_care", "outside_image", "degenerate"):
                s[k] += c[k]
    finally:
        if nworkers > 1:
            pool.shutdown(wait=True)
    for lst in (report.unreadable_images, report.malformed_lines, report.exif_rotated):
        lst.sort(key=lambda d: (d["file"], d.get("line") or 0))
    report.truncated_jpegs.sort()
    report.images_without_labels.sort()
    names = ["text"] + (["dont_care"] if dont_care == "ignore" else [])
    write_data_yaml(out / "data.yaml", out.resolve(), list(split_dirs), names,
                    "BKAI/VinText converted by labkit.data.bkai (never redistribute the data)")
    report.to_json(out / "report.json")
    return report


def convert_vintext(root, out, splits: Mapping[str, str] | None = None, **kwargs) -> ConvertReport:
    """Convert a VinText copy (the folder holding ``train_images/``, ``test_image/``, ``unseen_test_images/``
    and ``labels/``) into YOLO ``train``/``val``/``test`` splits. Missing split folders are skipped with a
    notice. Other arguments as in :func:`convert`.
    """
    root = Path(root)
    if not (root / "labels").is_dir():
        raise FileNotFoundError(f"{root} has no labels/ folder: expected the VinText layout "
                                "(train_images/, test_image/, unseen_test_images/, labels/gt_N.txt)")
    wanted = splits or VINTEXT_SPLITS
    have = {}
    for split, folder in wanted.items():
        if (root / folder).is_dir():
            have[split] = root / folder
        else:
            print(f"labkit: {root / folder} not found; split {split!r} skipped")
    if not have:
        raise FileNotFoundError(f"none of {list(wanted.values())} found under {root}")
    return convert(have, root / "labels", out, **kwargs)
