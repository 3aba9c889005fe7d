"""Pascal VOC reader: ``Annotations/*.xml``, ``ImageSets/Main/<split>.txt``, ``JPEGImages/``.

The reader is deliberately strict about annotations and forgiving about images:

* a malformed XML file raises :class:`VOCFormatError` whose message names the file;
* a missing, empty or undecodable image is *reported and skipped* while the dataset is
  read -- i.e. before any training starts -- so that an epoch can never crash half way
  (the failure mode of the source notebook's Python generator).

Boxes are kept in pixel ``xyxy`` coordinates of the original image, as VOC stores them
(VOC pixel indices are 1-based; we convert to 0-based by subtracting 1 from ``xmin``/``ymin``
so that ``xmax - xmin`` is the box width in pixels).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from labkit.data.formats import IMG_SUFFIXES, VOCFormatError, read_voc_xml

__all__ = ["VOCFormatError", "VOCRecord", "VOCDataset", "parse_voc_xml", "read_split_ids",
           "discover_classes", "check_image", "read_voc"]

@dataclass
class VOCRecord:
    """One image and its objects.

    Attributes: ``image_id``, ``image_path``, ``width``, ``height`` (from the XML ``<size>``,
    or from the image when missing), ``boxes`` (N,4) float32 pixel xyxy, ``names`` (N object
    class names), ``labels`` (N,) int64 indices into the dataset's class list, ``difficult`` (N,) bool.
    """

    image_id: str
    image_path: str
    width: int
    height: int
    boxes: np.ndarray
    names: list
    difficult: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))


def parse_voc_xml(path) -> dict:
    """Parse one VOC annotation (:func:`labkit.data.formats.read_voc_xml`; ``<size>`` may be missing, then
    width and height are 0).

    Returns ``{"filename", "width", "height", "boxes" (N,4) float32 xyxy 0-based pixels,
    "names" list[str], "difficult" (N,) bool}``.  Raises :class:`VOCFormatError` naming
    ``path`` on any problem (unparsable XML, missing fields, degenerate boxes).
    """
    a = read_voc_xml(path, need_size=False)
    a["boxes"] = a["boxes"].astype(np.float32)
    return a


def read_split_ids(root, split: str) -> list:
    """Image ids listed in ``ImageSets/Main/<split>.txt`` (one id per line, blank lines ignored)."""
    p = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
    if not p.is_file():
        avail = sorted(q.stem for q in p.parent.glob("*.txt") if "_" not in q.stem) if p.parent.is_dir() else []
        raise FileNotFoundError(f"split file {p} not found (available splits: {avail or 'none'})")
    ids = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if line:
            ids.append(line.split()[0])
    return ids


def discover_classes(root, ids=None) -> list:
    """Class names found in the data, sorted alphabetically (VOC's own class order is alphabetical).

    Scans the annotations of ``ids`` (default: every ``Annotations/*.xml``)."""
    ann = Path(root) / "Annotations"
    files = [ann / f"{i}.xml" for i in ids] if ids is not None else sorted(ann.glob("*.xml"))
    names = set()
    for f in files:
        names.update(parse_voc_xml(f)["names"])
    return sorted(names)


def check_image(path, decode: bool = True):
    """Return ``None`` if ``path`` is a readable image, else a short reason string.

    With ``decode=True`` the whole image is decoded (catches truncated files), otherwise only the
    header is checked."""
    from PIL import Image

    if not os.path.isfile(path):
        return "missing"
    if os.path.getsize(path) == 0:
        return "empty file"
    try:
        with Image.open(path) as im:
            fmt = im.format
            if decode:
                im.load()
            else:
                im.verify()
        if fmt not in ("JPEG", "PNG", "BMP", "GIF"):
            return f"unsupported format {fmt}"
    except Exception as e:  # PIL raises many types
        return f"unreadable ({type(e).__name__}: {e})"
    return None


@dataclass
class VOCDataset:
    """Result of :func:`read_voc`: ``records`` (usable images), ``classes``, and ``skipped``
    (list of ``(image_path, reason)`` for images that were reported and left out)."""

    root: str
    split: str
    classes: list
    records: list
    skipped: list

    def __len__(self):
        return len(self.records)

    def ground_truth(self, normalized: bool = False) -> list:
        """Ground truth in the format of :func:`labkit.metrics.evaluate`:
        one ``{"boxes", "labels", "difficult"}`` dict per image (pixel xyxy unless ``normalized``)."""
        out = []
        for r in self.records:
            b = r.boxes.copy()
            if normalized:
                b = b / np.array([r.width, r.height, r.width, r.height], np.float32)
            out.append({"boxes": b, "labels": r.labels.copy(), "difficult": r.difficult.copy()})
        return out


def read_voc(root, split: str = "train", classes=None, check_images: bool = True, decode_check: bool = True,
             keep_difficult: bool = True, verbose: bool = True, workers: int = 4) -> VOCDataset:
    """Read a Pascal VOC split.

    Args:
        root: the folder holding ``Annotations/``, ``JPEGImages/`` and ``ImageSets/Main/``
            (e.g. ``.../VOCdevkit/VOC2007``).
        split: name of the split file (``train``, ``val``, ``trainval``, ``test``).
        classes: class names in label order; default: :func:`discover_classes` over all annotations.
        check_images: verify every image now (missing/corrupt ones are reported and skipped).
        decode_check: fully decode each image while checking (slower, catches truncated JPEGs).
        keep_difficult: keep ``difficult`` objects (they are needed for VOC evaluation; the
            target encoder ignores them by default).
        verbose: print a one-line summary and the list of skipped images.
    """
    root = Path(root)
    if not (root / "Annotations").is_dir():
        raise FileNotFoundError(f"{root} is not a VOC root: no Annotations/ folder "
                                "(point VOC_ROOT at the folder holding Annotations/, JPEGImages/, ImageSets/)")
    ids = read_split_ids(root, split)
    if classes is None:
        classes = discover_classes(root)
    classes = list(classes)
    cidx = {c: i for i, c in enumerate(classes)}
    recs, skipped = [], []
    for i in ids:
        xml = root / "Annotations" / f"{i}.xml"
        if not xml.is_file():
            raise VOCFormatError(f"{xml}: annotation listed in split '{split}' does not exist")
        a = parse_voc_xml(xml)
        unknown = [n for n in a["names"] if n not in cidx]
        if unknown:
            raise VOCFormatError(f"{xml}: unknown class(es) {sorted(set(unknown))}; known: {classes}")
        img = root / "JPEGImages" / (a["filename"] or f"{i}.jpg")
        if not img.is_file() and a["filename"] is None:
            for ext in IMG_SUFFIXES:
                if (root / "JPEGImages" / f"{i}{ext}").is_file():
                    img = root / "JPEGImages" / f"{i}{ext}"
                    break
        keep = np.ones(len(a["names"]), bool) if keep_difficult else ~a["difficult"]
        recs.append(VOCRecord(
            image_id=i, image_path=str(img), width=a["width"], height=a["height"],
            boxes=a["boxes"][keep], names=[n for n, k in zip(a["names"], keep) if k],
            difficult=a["difficult"][keep],
            labels=np.asarray([cidx[n] for n, k in zip(a["names"], keep) if k], np.int64),
        ))
    if check_images:
        with ThreadPoolExecutor(max(1, workers)) as ex:
            reasons = list(ex.map(lambda r: check_image(r.image_path, decode_check), recs))
        good = []
        for r, why in zip(recs, reasons):
            if why is None:
                good.append(r)
            else:
                skipped.append((r.image_path, why))
        recs = good
    # fill in missing sizes from the image header
    for r in recs:
        if r.width <= 0 or r.height <= 0:
            from PIL import Image
            with Image.open(r.image_path) as im:
                r.width, r.height = im.size
    if verbose:
        print(f"VOC {root.name}/{split}: {len(recs)} images, {sum(len(r.labels) for r in recs)} objects, "
              f"{len(classes)} classes" + (f"; skipped {len(skipped)} unreadable image(s):" if skipped else ""))
        for p, why in skipped[:20]:
            print(f"  skipped {p}: {why}")
        if len(skipped) > 20:
            print(f"  ... and {len(skipped) - 20} more")
    return VOCDataset(str(root), split, classes, recs, skipped)
