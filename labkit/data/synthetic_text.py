"""Synthetic Vietnamese scene text in the exact VinText layout: offline look-alike data for notebook 06.

BKAI/VinText may not be redistributed, so the course trains on generated scenes instead: words with diacritics
(:data:`WORDS`, :data:`COMMA_WORDS`) rendered with matplotlib's DejaVu Sans, rotated and put in perspective on
a cluttered background (:func:`labkit.data.synthetic.background`, the same helper the synthetic shapes use),
with labels in the VinText format that :mod:`labkit.data.bkai` converts::

    from labkit.data.synthetic_text import make_vintext
    src = make_vintext(n_train=64, n_val=16, n_test=8, seed=0)   # a VinTextDataset
    bkai.convert_vintext(src.root, "yolo")                       # the same call as on a real copy

The same arguments give byte-identical files and reuse the folder they were written to.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.data.bkai import VINTEXT_SPLITS
from labkit.data.synthetic import background

__all__ = ["WORDS", "COMMA_WORDS", "VinTextDataset", "make_vintext"]

#: Words and phrases with Vietnamese diacritics (shop signs, street names, menus).
WORDS = ("Phở", "Đường", "Cà phê sữa đá", "Bánh mì", "Bún chả", "Nhà thuốc", "Khách sạn", "Ngân hàng", "Chợ",
         "Trường học", "Quán ăn", "Sửa xe", "Điện thoại", "Hà Nội", "Sài Gòn", "Đà Nẵng", "Huế", "Cơm tấm",
         "Giảm giá", "Khuyến mãi", "Mở cửa", "Lẩu", "Trà sữa", "Nước mía", "Gội đầu", "Xôi", "Bưu điện",
         "Cửa hàng", "Thời trang", "Tiệm vàng", "Nhà hàng", "Bệnh viện", "Công an", "Lê Lợi", "Trần Hưng Đạo",
         "Nguyễn Huệ", "Hai Bà Trưng", "Số 12", "Giá rẻ", "Đặc sản", "Bò kho", "Gỏi cuốn", "Chè", "Kem")
#: Phrases with commas (the source's split(",") breaks on them).
COMMA_WORDS = ("Phở bò, gà", "Bún, miến", "1,5 kg", "Cà phê, trà", "Sáng, trưa, tối", "Giặt, ủi")


@dataclass
class VinTextDataset:
    """A generated VinText look-alike (what :func:`make_vintext` returns)."""

    root: Path
    counts: dict
    n_boxes: int
    seed: int

    @property
    def labels_dir(self) -> Path:
        return self.root / "labels"

    def images_dir(self, split: str) -> Path:
        """Image folder of a YOLO split name (``train``/``val``/``test``) or a VinText folder name."""
        return self.root / VINTEXT_SPLITS.get(split, split)


def _font_path() -> Path:
    """matplotlib's DejaVu Sans (covers Vietnamese), found without importing matplotlib (slow)."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    p = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf" if spec and spec.origin else None
    if p is None or not p.is_file():
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return p


@functools.lru_cache(maxsize=64)
def _font(px: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(_font_path()), px)


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """8 coefficients of the projective map src → dst (4 point pairs)."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y]); b.append(v)
    return np.linalg.solve(np.array(A, float), np.array(b, float))


def _render_word(rng, img, text: str, font_px: int, border: bool, placed: list, max_angle: float):
    """Render one word with rotation + perspective onto ``img``; return its quad (4x2, clockwise from TL) or None."""
    from PIL import Image, ImageDraw

    W, H = img.size
    font = _font(int(font_px))
    l, t, r, b = font.getbbox(text)
    tw, th = r - l, b - t
    pad = 4
    patch = Image.new("RGBA", (tw + 2 * pad, th + 2 * pad), (0, 0, 0, 0))
    bg = float(np.asarray(img.resize((16, 16))).mean())
    col = (20, 20, 20) if bg > 128 else (245, 245, 245)
    col = tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in col)
    ImageDraw.Draw(patch).text((pad - l, pad - t), text, font=font, fill=col + (255,))
    src = np.array([[pad, pad], [pad + tw, pad], [pad + tw, pad + th], [pad, pad + th]], float)
    for _ in range(20):
        ang = math.radians(rng.uniform(-max_angle, max_angle))
        scale = 1.0
        if border:  # centre near an edge so the word crosses it
            edge = int(rng.integers(4))
            cx = [rng.uniform(-0.1, 0.1) * W, rng.uniform(0.9, 1.1) * W, rng.uniform(0.2, 0.8) * W, rng.uniform(0.2, 0.8) * W][edge]
            cy = [rng.uniform(0.2, 0.8) * H, rng.uniform(0.2, 0.8) * H, rng.uniform(-0.05, 0.05) * H, rng.uniform(0.95, 1.05) * H][edge]
        else:
            cx, cy = rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H
        rect = np.array([[-tw / 2, -th / 2], [tw / 2, -th / 2], [tw / 2, th / 2], [-tw / 2, th / 2]]) * scale
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
        dst = rect @ rot.T + [cx, cy]
        dst += rng.uniform(-0.12, 0.12, (4, 2)) * th  # perspective: corners move independently
        x1, y1, x2, y2 = dst[:, 0].min(), dst[:, 1].min(), dst[:, 0].max(), dst[:, 1].max()
        if not border and (x1 < 1 or y1 < 1 or x2 > W - 1 or y2 > H - 1):
            continue
        if any(not (x2 < a1 - 2 or x1 > a2 + 2 or y2 < b1 - 2 or y1 > b2 + 2) for a1, b1, a2, b2 in placed):
            continue
        ox, oy = int(math.floor(x1)), int(math.floor(y1))  # warp into the word's bounding box only
        size = (int(math.ceil(x2)) - ox + 1, int(math.ceil(y2)) - oy + 1)
        coeffs = _homography(dst - [ox, oy], src)  # PIL maps output pixels back to input pixels
        layer = patch.transform(size, Image.PERSPECTIVE, tuple(coeffs), resample=Image.BICUBIC)
        img.paste(layer, (ox, oy), layer)
        placed.append((x1, y1, x2, y2))
        return dst
    return None


def _draw_scene(rng, w, h, max_words, font_px, p_comma, p_dontcare, p_border, max_angle):
    img = background(rng, w, h, colours=(60, 200), any_direction=False, textures=("noise",), noise=6, blur=0,
                     clutter=(2, 6))
    placed, lines = [], []
    for k in range(int(rng.integers(2, max_words + 1))):
        comma = rng.random() < p_comma
        text = str(rng.choice(COMMA_WORDS if comma else WORDS))
        size = int(rng.integers(font_px[0], font_px[1] + 1))
        quad = _render_word(rng, img, text, size, rng.random() < p_border, placed, max_angle)
        if quad is None:
            continue
        label = "###" if rng.random() < p_dontcare else text
        q = np.rint(quad).astype(int)
        lines.append(",".join(str(v) for v in q.ravel()) + "," + label)
    return img, lines


def make_vintext(root=None, n_train: int = 64, n_val: int = 16, n_test: int = 8, size=(320, 240),
                 max_words: int = 5, font_px=None, p_comma: float = 0.15, p_dontcare: float = 0.08,
                 p_border: float = 0.08, max_angle: float = 20.0, seed: int = 0, quality: int = 90,
                 overwrite: bool = False) -> VinTextDataset:
    """Generate (or reuse) deterministic Vietnamese scene text in the exact VinText layout, offline.

    Layout (as in the real VinText copy)::

        root/train_images/im0001.jpg …   (n_train)
        root/test_image/im00NN.jpg …     (n_val; the real folder name is singular)
        root/unseen_test_images/…        (n_test)
        root/labels/gt_1.txt … gt_N.txt  (one shared folder, no zero padding)

    Words with diacritics are rendered with matplotlib's DejaVu Sans, rotated (±``max_angle``°) and put in
    perspective, so the quads are not axis-aligned; some transcriptions contain commas (``p_comma``), some are
    ``###`` (``p_dontcare``), some words cross the image border (``p_border``). ``size`` is (width, height);
    ``font_px`` the (min, max) text height in pixels, by default 1/8 to 2/9 of the image height (large text on
    small images: a from-scratch detector learns it in a few CPU minutes).

    The default ``root`` is ``<LABKIT_HOME>/data/synthetic/vintext-<hash of the arguments>``; the same
    arguments reuse the existing data, different ones never overwrite it.
    """
    if min(n_train, n_val, n_test) < 0 or n_train + n_val + n_test == 0:
        raise ValueError("split sizes must be >= 0 and not all zero")
    w, h = int(size[0]), int(size[1])
    if w < 32 or h < 32:
        raise ValueError(f"size must be at least 32x32, got {size}")
    if font_px is None:
        font_px = (max(8, h // 8), max(10, h * 2 // 9))
    params = dict(n_train=n_train, n_val=n_val, n_test=n_test, size=[w, h], max_words=max_words,
                  font_px=list(font_px), p_comma=p_comma, p_dontcare=p_dontcare, p_border=p_border,
                  max_angle=max_angle, seed=seed, quality=quality, version=1)
    if root is None:
        from labkit import env

        key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        root = env.paths().data / "synthetic" / f"vintext-{key}"
    root = Path(root).expanduser().resolve()
    counts = {"train": n_train, "val": n_val, "test": n_test}
    manifest = root / "manifest.json"
    if manifest.exists() and not overwrite:
        old = json.loads(manifest.read_text())
        if old.get("params") == params:
            return VinTextDataset(root, counts, old["n_boxes"], seed)
        raise FileExistsError(f"{root} holds VinText-like data made with other settings; pass another root or overwrite=True")
    if root.exists() and any(root.iterdir()) and not manifest.exists() and not overwrite:
        raise FileExistsError(f"{root} exists and is not a labkit synthetic VinText folder; choose an empty folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".vintext-tmp-", dir=root.parent))
    try:
        rng = np.random.default_rng(seed)
        (tmp / "labels").mkdir()
        idx, n_boxes = 0, 0
        for split, n in counts.items():
            folder = tmp / VINTEXT_SPLITS[split]
            folder.mkdir()
            for _ in range(n):
                idx += 1
                img, lines = _draw_scene(rng, w, h, max_words, font_px, p_comma, p_dontcare, p_border, max_angle)
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=quality)
                (folder / f"im{idx:04d}.jpg").write_bytes(buf.getvalue())
                (tmp / "labels" / f"gt_{idx}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
                n_boxes += len(lines)
        (tmp / "manifest.json").write_text(json.dumps({"params": params, "n_boxes": n_boxes}, indent=1))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return VinTextDataset(root, counts, n_boxes, seed)
