"""labkit.data.bkai: the BKAI/VinText → YOLO converter on nasty label files; labkit.data.synthetic_text: the
synthetic VinText data in the same layout.

Expected outputs are worked out by hand in the comments; EXIF handling is checked against the pixels that
Ultralytics' own image reader returns, and converted labels against Ultralytics' label verifier.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labkit.data import bkai
from labkit.data.synthetic_text import make_vintext

W, H = 100, 50

# gt_1.txt: BOM, CRLF, blank lines, floats, commas in text, negative and out-of-range coordinates, ###,
# a box fully outside, a degenerate box, a malformed line.
NASTY = (
    "\ufeff10,10,30,10,30,20,10,20,Phở\r\n"
    "\r\n"
    "40.5,5.5,60.5,5.5,60.5,15.5,40.5,15.5,Cà phê, sữa đá\r\n"
    "-10,30,20,30,20,40,-10,40,Đường\r\n"
    "   \r\n"
    "90,40,120,40,120,60,90,60,###\r\n"
    "200,10,220,10,220,20,200,20,outside\r\n"
    "5,5,5,5,5,5,5,5,dot\r\n"
    "1,2,3,abc\r\n"
)
# hand-computed YOLO rows (image 100x50):
ROW_PHO = "0 0.200000 0.300000 0.200000 0.200000"      # x 10..30, y 10..20
ROW_CAPHE = "0 0.505000 0.210000 0.200000 0.200000"    # x 40.5..60.5, y 5.5..15.5
ROW_DUONG = "0 0.100000 0.700000 0.200000 0.200000"    # x -10..20 clipped to 0..20, y 30..40
ROW_DONTCARE = "0.950000 0.900000 0.100000 0.200000"   # x 90..120 → 90..100, y 40..60 → 40..50


def _jpeg(path: Path, w=W, h=H, orientation=None, arr=None):
    a = arr if arr is not None else np.full((h, w, 3), 128, np.uint8)
    im = Image.fromarray(a)
    if orientation:
        ex = im.getexif()
        ex[0x0112] = orientation
        im.save(path, quality=95, exif=ex)
    else:
        im.save(path, quality=95)


def _tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def vintext(tmp_path):
    """A tiny VinText tree with every problem the converter must report."""
    root = tmp_path / "vietnamese"
    tr, lab = root / "train_images", root / "labels"
    tr.mkdir(parents=True)
    lab.mkdir()
    (root / "test_image").mkdir()
    _jpeg(tr / "im0001.jpg")
    (lab / "gt_1.txt").write_bytes(NASTY.encode("utf-8"))
    (lab / "gt_2.txt").write_text("1,1,5,1,5,5,1,5,a\n", encoding="utf-8")   # im0002.jpg is missing
    _jpeg(tr / "im0003.jpg")                                                # no gt_3.txt
    (tr / "im0004.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")         # corrupt
    (lab / "gt_4.txt").write_text("1,1,5,1,5,5,1,5,a\n", encoding="utf-8")
    noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    _jpeg(root / "test_image" / "im0005.jpg", arr=noise)
    data = (root / "test_image" / "im0005.jpg").read_bytes()
    (root / "test_image" / "im0006.jpg").write_bytes(data[: len(data) * 3 // 4])  # truncated: header fine, no EOI
    (lab / "gt_5.txt").write_text("10,10,30,10,30,20,10,20,x\n", encoding="utf-8")
    (lab / "gt_6.txt").write_bytes("10,10,30,10,30,20,10,20,caf\xe9\n".encode("latin-1"))  # not UTF-8
    return root


# ----------------------------------------------------------------------------------------------
def test_parse_line_commas_floats_and_errors():
    xy, text = bkai.parse_line("1,2,3.5,4,-5,6e1,7,8,Phở bò, gà, heo\r\n")
    assert xy.tolist() == [1, 2, 3.5, 4, -5, 60, 7, 8] and text == "Phở bò, gà, heo"
    assert bkai.parse_line("1,2,3,4,5,6,7,8")[1] == ""
    with pytest.raises(bkai.BKAIFormatError, match=r"gt_9\.txt:3: expected 8 coordinates"):
        bkai.parse_line("1,2,3,abc", file="gt_9.txt", lineno=3)
    with pytest.raises(bkai.BKAIFormatError, match=r"f\.txt:2: coordinates are not numbers"):
        bkai.parse_line("1,2,x,4,5,6,7,8,t", file="f.txt", lineno=2)
    with pytest.raises(bkai.BKAIFormatError, match="not finite"):
        bkai.parse_line("1,2,nan,4,5,6,7,8,t")


def test_read_gt_bom_crlf_blank_lines(tmp_path):
    p = tmp_path / "gt_1.txt"
    p.write_bytes(NASTY.encode("utf-8"))
    with pytest.raises(bkai.BKAIFormatError) as e:
        bkai.read_gt(p)
    assert e.value.line == 9 and str(p) in str(e.value)  # line numbers count blank lines
    rows, issues = bkai.read_gt(p, strict=False)
    assert [r[0] for r in rows] == [1, 3, 4, 6, 7, 8]
    assert rows[0][2] == "Phở" and rows[1][2] == "Cà phê, sữa đá" and rows[3][2] == "###"
    assert issues == [{"file": str(p), "line": 9, "error": "expected 8 coordinates and a transcription, found 4 field(s)",
                       "text": "1,2,3,abc"}]


def test_convert_exact_rows_and_report(vintext, tmp_path):
    before = _tree_digest(vintext)
    out = tmp_path / "yolo"
    rep = bkai.convert_vintext(vintext, out, workers=4)
    assert _tree_digest(vintext) == before  # the source is never modified or moved
    assert rep.naming == "vintext"
    assert (out / "labels/train/im0001.txt").read_text().splitlines() == [ROW_PHO, ROW_CAPHE, ROW_DUONG, "0 " + ROW_DONTCARE]
    tr, va = rep.splits["train"], rep.splits["val"]
    assert tr == {"images_in": 3, "images_out": 1, "images_empty": 0, "boxes_in": 7, "kept": 4, "clipped": 2,
                  "dont_care": 0, "outside_image": 1, "degenerate": 1, "malformed": 1}
    assert va["images_in"] == 2 and va["images_out"] == 2 and va["kept"] == 2
    assert rep.labels_without_images == [str(vintext / "labels/gt_2.txt")]
    assert rep.images_without_labels == [str(vintext / "train_images/im0003.jpg")]
    assert [u["file"] for u in rep.unreadable_images] == [str(vintext / "train_images/im0004.jpg")]
    assert rep.truncated_jpegs == [str(vintext / "test_image/im0006.jpg")]
    assert [(m["file"], m["line"]) for m in rep.malformed_lines] == [
        (str(vintext / "labels/gt_1.txt"), 9), (str(vintext / "labels/gt_6.txt"), 1)]
    assert "not UTF-8" in rep.malformed_lines[1]["error"]
    assert (out / "labels/val/im0006.txt").read_text() == ROW_PHO + "\n"  # coordinates survive a bad byte in the text
    # the image is copied byte for byte, the report is on disk, data.yaml points at the splits
    assert (out / "images/train/im0001.jpg").read_bytes() == (vintext / "train_images/im0001.jpg").read_bytes()
    assert not (out / "images/train/im0004.jpg").exists() and not (out / "images/test").exists()
    import json
    import yaml
    assert json.loads((out / "report.json").read_text())["totals"]["kept"] == 6
    y = yaml.safe_load((out / "data.yaml").read_text())
    assert y["train"] == "images/train" and y["val"] == "images/val" and y["names"] == {0: "text"}
    table = rep.table()
    assert "malformed_lines: 2" in table and "gt_1.txt:9" in table


@pytest.mark.parametrize("policy, rows, counts", [
    ("keep", [ROW_PHO, ROW_CAPHE, ROW_DUONG, "0 " + ROW_DONTCARE], (4, 2, 0)),
    ("drop", [ROW_PHO, ROW_CAPHE, ROW_DUONG], (3, 1, 1)),
    ("ignore", [ROW_PHO, ROW_CAPHE, ROW_DUONG, "1 " + ROW_DONTCARE], (4, 2, 0)),
])
def test_dont_care_policies(vintext, tmp_path, policy, rows, counts):
    rep = bkai.convert_vintext(vintext, tmp_path / policy, dont_care=policy, workers=1)
    assert (tmp_path / policy / "labels/train/im0001.txt").read_text().splitlines() == rows
    s = rep.splits["train"]
    assert (s["kept"], s["clipped"], s["dont_care"]) == counts
    import yaml
    names = yaml.safe_load((tmp_path / policy / "data.yaml").read_text())["names"]
    assert names == ({0: "text", 1: "dont_care"} if policy == "ignore" else {0: "text"})


def test_polygon_rows(vintext, tmp_path):
    bkai.convert_vintext(vintext, tmp_path / "poly", fmt="polygon")
    rows = (tmp_path / "poly/labels/train/im0001.txt").read_text().splitlines()
    assert rows[0] == "0 0.100000 0.200000 0.300000 0.200000 0.300000 0.400000 0.100000 0.400000"
    assert rows[2] == "0 0.000000 0.600000 0.200000 0.600000 0.200000 0.800000 0.000000 0.800000"  # x=-10 → 0
    # Ultralytics turns the polygon into the same box the box mode writes
    from ultralytics.utils.ops import segments2boxes
    seg = np.array(rows[2].split()[1:], float).reshape(-1, 2)
    assert np.allclose(segments2boxes([seg])[0], [0.1, 0.7, 0.2, 0.2], atol=1e-6)


def test_strict_raises_naming_file_and_line(vintext, tmp_path):
    (vintext / "train_images/im0004.jpg").unlink()
    with pytest.raises(bkai.BKAIFormatError, match=r"gt_1\.txt:9"):
        bkai.convert_vintext(vintext, tmp_path / "s", strict=True, workers=1)


def test_fresh_output_and_no_overlap(vintext, tmp_path):
    out = tmp_path / "o"
    bkai.convert_vintext(vintext, out)
    with pytest.raises(FileExistsError, match="not empty"):
        bkai.convert_vintext(vintext, out)
    bkai.convert_vintext(vintext, out, overwrite=True)
    with pytest.raises(ValueError, match="overlaps the source"):
        bkai.convert_vintext(vintext, vintext / "labels" / "yolo")
    with pytest.raises(FileNotFoundError, match="labels"):
        bkai.convert_vintext(tmp_path / "nowhere", tmp_path / "x")


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_rotated_jpeg_matches_ultralytics_pixels(tmp_path, orientation):
    """A white block drawn at the labelled stored-pixel box must sit inside the converted box in the image that
    Ultralytics reads (EXIF applied), and the size must be Ultralytics' ``exif_size``."""
    from ultralytics.data.utils import exif_size
    from ultralytics.utils.patches import imread

    root = tmp_path / "v"
    (root / "train_images").mkdir(parents=True)
    (root / "labels").mkdir()
    a = np.zeros((H, W, 3), np.uint8)
    a[10:20, 10:30] = 255  # stored pixels x 10..29, y 10..19 → the quad 10..30 x 10..20
    _jpeg(root / "train_images/im0001.jpg", arr=a, orientation=orientation)
    (root / "labels/gt_1.txt").write_text("10,10,30,10,30,20,10,20,x\n", encoding="utf-8")
    rep = bkai.convert_vintext(root, tmp_path / "o", splits={"train": "train_images"})
    assert rep.exif_rotated == [{"file": str(root / "train_images/im0001.jpg"), "orientation": orientation}]
    img = imread(str(root / "train_images/im0001.jpg"))
    h, w = img.shape[:2]
    assert (w, h) == exif_size(Image.open(root / "train_images/im0001.jpg"))
    assert bkai.image_size(root / "train_images/im0001.jpg") == (w, h, orientation)
    ys, xs = np.where(img[..., 0] > 128)
    pix = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    c, xc, yc, bw, bh = map(float, (tmp_path / "o/labels/train/im0001.txt").read_text().split())
    box = [(xc - bw / 2) * w, (yc - bh / 2) * h, (xc + bw / 2) * w, (yc + bh / 2) * h]
    assert np.allclose(box, pix, atol=1.0), (box, pix)  # JPEG ringing: 1 pixel
    # with exif_labels="displayed" the coordinates are taken as they are
    bkai.convert_vintext(root, tmp_path / "d", splits={"train": "train_images"}, exif_labels="displayed")
    assert (tmp_path / "d/labels/train/im0001.txt").read_text().split()[1:] == \
        [f"{20 / w:.6f}", f"{15 / h:.6f}", f"{20 / w:.6f}", f"{10 / h:.6f}"]


def test_bkai2022_naming_auto_and_explicit(tmp_path):
    imgs, gts = tmp_path / "train_imgs/training_img", tmp_path / "train_gt/training_gt"
    imgs.mkdir(parents=True)
    gts.mkdir(parents=True)
    for stem in ("1", "27", "img_a"):
        _jpeg(imgs / f"{stem}.jpg")
        (gts / f"gt_{stem}.txt").write_text("10,10,30,10,30,20,10,20,x\n", encoding="utf-8")
    rep = bkai.convert({"train": imgs}, gts, tmp_path / "o")
    assert rep.naming == "bkai2022" and rep.splits["train"]["images_out"] == 3
    assert sorted(p.name for p in (tmp_path / "o/labels/train").iterdir()) == ["1.txt", "27.txt", "img_a.txt"]
    assert bkai.detect_naming(["im0001.jpg", "im0002.jpg"]) == "vintext"
    assert bkai.label_key("im0010.jpg", "vintext") == "10" and bkai.label_key("10.jpg", "bkai2022") == "10"
    assert bkai.label_file(gts, imgs / "27.jpg", "bkai2022") == gts / "gt_27.txt"
    assert bkai.label_file(gts, "img_a.jpg") == gts / "gt_img_a.txt"  # auto: not im<digits> → bkai2022
    assert bkai.label_file(gts, "im0027.jpg", "vintext") == gts / "gt_27.txt"  # zero padding dropped
    assert bkai.label_file(gts, "im0099.jpg") is None and bkai.label_file(gts, "zz.jpg", "vintext") is None
    # forcing vintext on these names finds no labels, and says so
    rep = bkai.convert({"train": imgs}, gts, tmp_path / "o2", naming="vintext")
    assert rep.splits["train"]["images_out"] == 0 and len(rep.images_without_labels) == 3
    assert len(rep.labels_without_images) == 3


def test_ultralytics_accepts_clipped_and_rejects_unclipped(vintext, tmp_path):
    """The source's bug: one out-of-range row makes Ultralytics drop the whole image; clipping fixes it."""
    from ultralytics.data.utils import verify_image_label

    bkai.convert_vintext(vintext, tmp_path / "o")
    img, lbl = tmp_path / "o/images/train/im0001.jpg", tmp_path / "o/labels/train/im0001.txt"
    res = verify_image_label((str(img), str(lbl), "", False, 1, 0, 0, False))
    assert res[8] == 0 and len(res[1]) == 4  # nc (corrupt) = 0, 4 boxes kept
    # the unclipped box of the "Đường" row (x -10..20): centre x = 5/100, but here a row crossing the left edge
    bad = tmp_path / "bad.txt"
    bad.write_text(ROW_PHO + "\n0 0.050000 0.700000 0.300000 0.200000\n0 -0.050000 0.700000 0.300000 0.200000\n")
    res = verify_image_label((str(img), str(bad), "", False, 1, 0, 0, False))
    assert res[8] == 1 and res[1] is None and "negative" in res[-1]


# ----------------------------------------------------------------------------------------------
def test_make_vintext_layout_and_content(tmp_path):
    ds = make_vintext(tmp_path / "a", n_train=12, n_val=4, n_test=4, size=(160, 120), font_px=(14, 22),
                      p_comma=0.3, p_dontcare=0.2, p_border=0.3, seed=3)
    names = {d: sorted(p.name for p in (ds.root / d).iterdir()) for d in bkai.VINTEXT_SPLITS.values()}
    assert names["train_images"] == [f"im{i:04d}.jpg" for i in range(1, 13)]
    assert names["test_image"] == [f"im{i:04d}.jpg" for i in range(13, 17)]
    assert names["unseen_test_images"] == [f"im{i:04d}.jpg" for i in range(17, 21)]
    assert sorted(p.name for p in ds.labels_dir.iterdir()) == sorted(f"gt_{i}.txt" for i in range(1, 21))
    rows = [r for i in range(1, 21) for r in bkai.read_gt(ds.labels_dir / f"gt_{i}.txt")[0]]
    assert len(rows) == ds.n_boxes > 20
    texts = [t for _, _, t in rows]
    assert any("," in t for t in texts) and "###" in texts
    assert any(any(ord(ch) > 127 for ch in t) for t in texts)  # diacritics
    q = np.array([xy for _, xy, _ in rows]).reshape(-1, 4, 2)
    assert (np.abs(q[:, 0, 1] - q[:, 1, 1]) > 1).mean() > 0.5  # top edges are not horizontal
    crossing = (q[..., 0].min(1) < 0) | (q[..., 1].min(1) < 0) | (q[..., 0].max(1) > 160) | (q[..., 1].max(1) > 120)
    assert crossing.any() and not crossing.all()
    assert Image.open(ds.images_dir("train") / "im0001.jpg").size == (160, 120)
    # deterministic for a seed; another seed differs; the same call reuses the folder
    ds2 = make_vintext(tmp_path / "b", n_train=12, n_val=4, n_test=4, size=(160, 120), font_px=(14, 22),
                       p_comma=0.3, p_dontcare=0.2, p_border=0.3, seed=3)
    assert _tree_digest(ds.root) == _tree_digest(ds2.root)
    ds3 = make_vintext(tmp_path / "c", n_train=12, n_val=4, n_test=4, size=(160, 120), seed=4)
    assert (ds3.root / "labels/gt_1.txt").read_text() != (ds.root / "labels/gt_1.txt").read_text()
    with pytest.raises(FileExistsError):
        make_vintext(tmp_path / "a", n_train=1, n_val=1, n_test=1, seed=3)


def test_make_vintext_default_root_under_labkit_home(labkit_home):
    ds = make_vintext(n_train=2, n_val=1, n_test=1, size=(64, 48), font_px=(10, 12))
    assert ds.root.parent == (labkit_home / "data" / "synthetic").resolve()
    rep = bkai.convert_vintext(ds.root, labkit_home / "yolo")
    assert rep.totals["images_out"] == 4 and not rep.malformed_lines


def test_zero_padded_keys_do_not_collide(tmp_path):
    """issue 14 #11: in the 2022 naming gt_5.txt and gt_05.txt are two labels of two images.

    Catches: label files keyed by int(key) (one file silently lost, both images given the same boxes), and a
    zero-padding fallback that takes a file another image owns by its exact name."""
    imgs, gts = tmp_path / "imgs", tmp_path / "gts"
    imgs.mkdir()
    gts.mkdir()
    for stem, x in (("5", 10), ("05", 40), ("7", 10)):
        _jpeg(imgs / f"{stem}.jpg")
        (gts / f"gt_{stem}.txt").write_text(f"{x},10,{x + 20},10,{x + 20},20,{x},20,t{stem}\n", encoding="utf-8")
    _jpeg(imgs / "007.jpg")  # only gt_7.txt, which 7.jpg owns by its exact name: no label for 007
    _jpeg(imgs / "0009.jpg")
    _jpeg(imgs / "009.jpg")
    (gts / "gt_9.txt").write_text("10,10,30,10,30,20,10,20,nine\n", encoding="utf-8")  # 2 images fall back to it
    rep = bkai.convert({"train": imgs}, gts, tmp_path / "o", naming="bkai2022")
    out = tmp_path / "o/labels/train"
    assert sorted(p.name for p in out.iterdir()) == ["05.txt", "5.txt", "7.txt"]
    assert (out / "5.txt").read_text() != (out / "05.txt").read_text()  # each image its own boxes
    assert rep.totals["kept"] == 3 and rep.labels_without_images == [str(gts / "gt_9.txt")]
    assert rep.images_without_labels == [str(imgs / "007.jpg")]
    assert sorted(a["file"] for a in rep.ambiguous_labels) == [str(imgs / "0009.jpg"), str(imgs / "009.jpg")]
    assert "ambiguous_labels: 2" in rep.table()
    assert bkai.label_file(gts, "5.jpg", "bkai2022") == gts / "gt_5.txt"
    assert bkai.label_file(gts, "05.jpg", "bkai2022") == gts / "gt_05.txt"
    assert bkai.label_file(gts, "005.jpg", "bkai2022") is None  # gt_5 and gt_05 both fit: no guess
    with pytest.raises(bkai.BKAIFormatError, match="009.jpg: gt_9.txt matches 2 images"):
        bkai.convert({"train": imgs}, gts, tmp_path / "o2", naming="bkai2022", strict=True)


def test_png_named_jpg_is_not_a_truncated_jpeg(tmp_path):
    """issue 14 #11. Catches: deciding "JPEG" from the file name (a PNG never ends with FF D9)."""
    root = tmp_path / "v"
    (root / "train_images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(root / "train_images" / "im0001.jpg", format="PNG")
    Image.new("RGB", (64, 48), (30, 60, 90)).save(root / "train_images" / "im0002.png", format="JPEG", quality=95)
    data = (root / "train_images" / "im0002.png").read_bytes()
    (root / "train_images" / "im0002.png").write_bytes(data[: len(data) - 10])  # a truncated JPEG named .png
    for i in (1, 2):
        (root / "labels" / f"gt_{i}.txt").write_text("10,10,30,10,30,20,10,20,x\n", encoding="utf-8")
    rep = bkai.convert_vintext(root, tmp_path / "o", splits={"train": "train_images"})
    assert rep.truncated_jpegs == [str(root / "train_images" / "im0002.png")]
    assert rep.splits["train"]["images_out"] == 2
