"""The embedded synthetic shapes data: deterministic, consistent across its three layouts; the background both
synthetic datasets (shapes, scene text) draw on."""
from __future__ import annotations

import filecmp
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml

from labkit.data.synthetic import background, make_shapes


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("a") / "shapes", n_train=24, n_val=12, n_test=6, imgsz=96, seed=3)


def test_deterministic_bytes(ds, tmp_path):
    again = make_shapes(tmp_path / "again", n_train=24, n_val=12, n_test=6, imgsz=96, seed=3)
    for sub in ("yolo/labels/train", "yolo/images/val", "voc/Annotations", "voc/JPEGImages"):
        a, b = ds.root / sub, again.root / sub
        names = sorted(p.name for p in a.iterdir())
        assert names == sorted(p.name for p in b.iterdir())
        _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
        assert not mismatch and not errors
    other = make_shapes(tmp_path / "other", n_train=24, n_val=12, n_test=6, imgsz=96, seed=4)
    assert (other.root / "yolo/labels/train/000001.txt").read_text() != (ds.root / "yolo/labels/train/000001.txt").read_text()


def test_layouts_agree(ds):
    coco = json.loads(ds.coco_json("train").read_text())
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    assert list(cats.values()) == list(ds.classes)
    assert len(coco["images"]) == 24 and len(coco["annotations"]) == ds.n_boxes["train"]
    for img in coco["images"]:
        stem = img["file_name"][:-4]
        assert (ds.coco_images("train") / img["file_name"]).is_file()
        yolo = np.loadtxt(ds.root / f"yolo/labels/train/{stem}.txt", ndmin=2)
        anns = by_image.get(img["id"], [])
        assert len(yolo) == len(anns)
        objs = ET.parse(ds.voc_root / f"Annotations/{stem}.xml").findall("object")
        assert len(objs) == len(anns)
        for row, ann, obj in zip(yolo, anns, objs):
            x, y, w, h = ann["bbox"]
            assert int(row[0]) == ann["category_id"] - 1
            assert obj.find("name").text == cats[ann["category_id"]]
            np.testing.assert_allclose(row[1:] * 96, [x + w / 2, y + h / 2, w, h], atol=0.01)
            bb = obj.find("bndbox")
            vx1, vy1, vx2, vy2 = (float(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            assert abs(vx1 - 1 - x) <= 1 and abs(vx2 - (x + w)) <= 1 and abs(vy1 - 1 - y) <= 1 and abs(vy2 - (y + h)) <= 1
            assert 0 <= x and x + w <= 96 and 0 <= y and y + h <= 96


def test_voc_splits_and_difficult(ds):
    main = ds.voc_root / "ImageSets/Main"
    train, val, test, trainval = ((main / f"{s}.txt").read_text().split() for s in ("train", "val", "test", "trainval"))
    assert (len(train), len(val), len(test)) == (24, 12, 6) and trainval == train + val
    difficult = [int(o.find("difficult").text) for f in (ds.voc_root / "Annotations").glob("*.xml")
                 for o in ET.parse(f).findall("object")]
    assert 0 < sum(difficult) < len(difficult)


def test_data_yaml_and_pycocotools(ds):
    data = yaml.safe_load(ds.yolo_yaml.read_text())
    assert data["nc"] == 3 and data["names"] == {0: "circle", 1: "square", 2: "triangle"}
    assert (ds.yolo_root / data["train"]).is_dir() and data["path"] == str(ds.yolo_root)
    from pycocotools.coco import COCO

    c = COCO(str(ds.coco_json("val")))
    assert len(c.getImgIds()) == 12 and len(c.getAnnIds()) == ds.n_boxes["val"]


def test_reuse_and_refuse(ds):
    again = make_shapes(ds.root, n_train=24, n_val=12, n_test=6, imgsz=96, seed=3)  # cached: no rewrite
    assert again.n_boxes == ds.n_boxes
    with pytest.raises(FileExistsError, match="other settings"):
        make_shapes(ds.root, n_train=5, n_val=5, imgsz=96, seed=3)


def test_default_root_per_settings(labkit_home):
    a = make_shapes(n_train=4, n_val=2, imgsz=64)
    b = make_shapes(n_train=4, n_val=3, imgsz=64)
    assert a.root != b.root and a.root.parent == labkit_home / "data" / "synthetic"


@pytest.mark.parametrize("kwargs,match", [({"n_classes": 9}, "n_classes"), ({"imgsz": 8}, "imgsz"),
                                          ({"min_size": 0.6, "max_size": 0.5}, "min_size"),
                                          ({"n_train": 0, "n_val": 0}, "split sizes")])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_shapes(tmp_path / "x", **kwargs)


def test_empty_split_error(tmp_path):
    d = make_shapes(tmp_path / "s", n_train=2, n_val=2, imgsz=64)
    with pytest.raises(ValueError, match="split 'test' is empty"):
        d.coco_json("test")


def _rows_constant(img) -> bool:
    a = np.asarray(img)
    return bool((a == a[:, :1]).all())


def test_background_gradient_texture_clutter():
    """``background``: a gradient between the two colours the generator draws first, then the texture and clutter
    asked for, nothing else.

    Mutations caught: ``any_direction`` ignored (every gradient vertical, or a horizontal one when it is off); the
    colours drawn from another range or in another order (the first and last rows are not the replayed draw);
    clutter drawn when ``clutter=None``, or not drawn when asked; an unknown texture accepted silently."""
    flat = background(np.random.default_rng(0), 40, 30, any_direction=False, textures=("flat",), blur=0)
    c0, c1 = np.random.default_rng(0).integers(40, 200, size=(2, 3))
    a = np.asarray(flat)
    assert a.shape == (30, 40, 3) and _rows_constant(flat)
    assert a[0, 0].tolist() == c0.tolist() and a[-1, 0].tolist() == c1.tolist()
    kw = dict(any_direction=True, textures=("flat",), blur=0)
    assert {_rows_constant(background(np.random.default_rng(s), 24, 24, **kw)) for s in range(20)} == {True, False}

    # the scene text's settings: noise and clutter on a vertical gradient; a function of the generator's state
    text = dict(colours=(60, 200), any_direction=False, textures=("noise",), noise=6, blur=0)
    with_clutter = background(np.random.default_rng(1), 64, 48, clutter=(2, 6), **text)
    assert with_clutter.tobytes() == background(np.random.default_rng(1), 64, 48, clutter=(2, 6), **text).tobytes()
    without = np.asarray(background(np.random.default_rng(1), 64, 48, clutter=None, **text), dtype=int)
    changed = (np.abs(np.asarray(with_clutter, dtype=int) - without).max(-1) > 0).mean()
    assert 0 < changed < 1  # clutter covers part of the picture; the noise under it is the same draw
    with pytest.raises(ValueError, match="texture"):
        background(np.random.default_rng(0), 8, 8, textures=("plaid",))
