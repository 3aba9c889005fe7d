"""labkit.data.convert against Ultralytics' converter and the synthetic data's own three layouts."""

import json

import numpy as np
import pytest

from coco_random import random_coco
from labkit.data import convert as C
from labkit.metrics import evaluate_coco_json


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from labkit.data.synthetic import make_shapes

    return make_shapes(root=tmp_path_factory.mktemp("shapes"), n_train=4, n_val=12, imgsz=96, seed=3)


def _read_dir(d):
    return {p.stem: C.read_yolo_txt(p) for p in sorted(d.glob("*.txt"))}


def test_91_to_80_map_matches_ultralytics():
    from ultralytics.data.converter import coco80_to_coco91_class, coco91_to_coco80_class

    assert C.coco91_to_coco80() == coco91_to_coco80_class()
    assert C.coco80_to_coco91() == coco80_to_coco91_class()
    assert len(C.COCO80_TO_91) == 80 and C.coco91_to_coco80()[89] == 79  # id 90 (toothbrush) → 79


def test_coco_to_yolo_matches_ultralytics_convert_coco(tmp_path):
    from ultralytics.data.converter import convert_coco

    gt, _ = random_coco(4, n_images=15, n_classes=8)
    ids = C.COCO80_TO_91[:8]  # COCO ids with gaps
    remap = {c["id"]: ids[k] for k, c in enumerate(sorted(gt["categories"], key=lambda c: c["id"]))}
    for c in gt["categories"]:
        c["id"] = remap[c["id"]]
    for a in gt["annotations"]:
        a["category_id"] = remap[a["category_id"]]
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "instances_val.json").write_text(json.dumps(gt))
    convert_coco(str(tmp_path / "ann"), str(tmp_path / "ul"), cls91to80=True)
    info = C.coco_to_yolo(tmp_path / "ann" / "instances_val.json", tmp_path / "lk", cls91to80=True)
    ref = _read_dir(tmp_path / "ul" / "labels" / "val")
    ours = _read_dir(tmp_path / "lk")
    assert len(ours) == len(gt["images"]) and set(ref) <= set(ours)
    for stem, rows in ours.items():
        np.testing.assert_allclose(rows, ref.get(stem, np.zeros((0, 5))), atol=1e-9)
    assert info["skipped_crowd"] == sum(a["iscrowd"] for a in gt["annotations"])
    assert info["names"][0] == "c1" or len(info["names"]) == 80


def test_yolo_to_coco_roundtrip_on_shapes(shapes, tmp_path):
    ref = json.loads(shapes.coco_json("val").read_text())
    images_dir = shapes.yolo_root / "images" / "val"
    coco = C.yolo_to_coco(images_dir, names=list(shapes.classes), out=tmp_path / "gt.json")
    assert [im["file_name"] for im in coco["images"]] == sorted(im["file_name"] for im in ref["images"])
    assert [c["name"] for c in coco["categories"]] == list(shapes.classes)
    a = np.array([x["bbox"] for x in coco["annotations"]])
    b = np.array([x["bbox"] for x in ref["annotations"]])
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=2e-3)  # COCO json rounds to 3 decimals, YOLO to 6 normalised
    assert [x["category_id"] for x in coco["annotations"]] == [x["category_id"] for x in ref["annotations"]]
    # the synthetic COCO file and the YOLO-derived one evaluate identically
    res = [dict(image_id=x["image_id"], category_id=x["category_id"], bbox=x["bbox"], score=0.9)
           for x in ref["annotations"]]
    assert evaluate_coco_json(ref, res).map50_95 == pytest.approx(1.0)
    res2 = [dict(image_id=x["image_id"], category_id=x["category_id"], bbox=x["bbox"], score=0.9)
            for x in coco["annotations"]]
    assert evaluate_coco_json(tmp_path / "gt.json", res2).map50_95 == pytest.approx(1.0)
    # back to YOLO: same rows as the synthetic YOLO labels
    C.coco_to_yolo(coco, tmp_path / "back", cls91to80=False)
    lab = _read_dir(shapes.yolo_root / "labels" / "val")
    back = _read_dir(tmp_path / "back")
    for stem in lab:
        np.testing.assert_allclose(back[stem], lab[stem], atol=1e-6)


def test_yolo_preds_to_coco(shapes, tmp_path):
    gt = C.yolo_to_coco(shapes.yolo_root / "images" / "val", names=list(shapes.classes))
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    lab = _read_dir(shapes.yolo_root / "labels" / "val")
    for stem, rows in lab.items():  # perfect predictions with a confidence column
        conf = np.linspace(0.9, 0.5, len(rows))[:, None]
        np.savetxt(pred_dir / f"{stem}.txt", np.hstack([rows, conf]), fmt="%g")
    res = C.yolo_preds_to_coco(pred_dir, gt)
    assert len(res) == len(gt["annotations"])
    np.testing.assert_allclose([r["bbox"] for r in res], [a["bbox"] for a in gt["annotations"]], atol=1e-6)
    assert evaluate_coco_json(gt, res).map50_95 == pytest.approx(1.0)
    # a label file without the confidence column is a clear error naming file and line
    stem = next(iter(lab))
    np.savetxt(pred_dir / f"{stem}.txt", lab[stem], fmt="%g")
    with pytest.raises(ValueError, match=rf"{stem}.txt:1: expected 6 numbers"):
        C.yolo_preds_to_coco(pred_dir, gt)
    (pred_dir / f"{stem}.txt").write_text("")
    (pred_dir / "not_an_image.txt").write_text("0 0.5 0.5 0.1 0.1 0.9\n")
    with pytest.raises(ValueError, match="not_an_image"):
        C.yolo_preds_to_coco(pred_dir, gt)


def test_voc_to_yolo_on_shapes(shapes, tmp_path):
    info = C.voc_to_yolo(shapes.voc_root, tmp_path / "all", class_names=list(shapes.classes), split="val",
                         include_difficult=True)
    lab = _read_dir(shapes.yolo_root / "labels" / "val")
    ours = _read_dir(tmp_path / "all")
    assert set(ours) == set(lab) and info["n_boxes"] == sum(len(v) for v in lab.values())
    for stem in lab:
        np.testing.assert_array_equal(ours[stem][:, 0], lab[stem][:, 0])
        # VOC stores integer pixels (floor/ceil of each side): centre within 1 px, size within 2 px
        np.testing.assert_allclose(ours[stem][:, 1:], lab[stem][:, 1:], atol=2.0 / shapes.imgsz + 1e-6)
    # difficult objects are dropped by default, as Ultralytics' VOC.yaml does
    n_diff = 0
    for f in (shapes.voc_root / "Annotations").glob("*.xml"):
        if f.stem in lab:
            n_diff += int(C.read_voc_xml(f)["difficult"].sum())
    info2 = C.voc_to_yolo(shapes.voc_root, tmp_path / "nodiff", class_names=list(shapes.classes), split="val")
    assert info2["skipped_difficult"] == n_diff and info2["n_boxes"] == info["n_boxes"] - n_diff


def test_voc_ultralytics_rounding_formula(tmp_path):
    ann = tmp_path / "voc" / "Annotations"
    ann.mkdir(parents=True)
    (ann / "a.xml").write_text(
        "<annotation><size><width>200</width><height>100</height></size><object><name>cat</name>"
        "<difficult>0</difficult><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>60</xmax><ymax>80</ymax></bndbox>"
        "</object></annotation>")
    C.voc_to_yolo(tmp_path / "voc", tmp_path / "u", ultralytics_rounding=True)
    C.voc_to_yolo(tmp_path / "voc", tmp_path / "e")
    # Ultralytics VOC.yaml convert_box: ((xmin+xmax)/2 - 1, (ymin+ymax)/2 - 1, xmax-xmin, ymax-ymin) / size
    np.testing.assert_allclose(C.read_yolo_txt(tmp_path / "u" / "a.txt")[0],
                               [0, (35.5 - 1) / 200, (50.5 - 1) / 100, 49 / 200, 59 / 100], atol=1e-6)
    # exact: pixels 11..60 (1-based, inclusive) cover the continuous interval [10, 60]
    np.testing.assert_allclose(C.read_yolo_txt(tmp_path / "e" / "a.txt")[0],
                               [0, 35 / 200, 50 / 100, 50 / 200, 60 / 100], atol=1e-6)
    (ann / "b.xml").write_text("<annotation><size><width>10</width></size></annotation>")
    with pytest.raises(ValueError, match=r"b.xml: missing <size>"):
        C.voc_to_yolo(tmp_path / "voc", tmp_path / "x")


def test_yolo_dataset_resolution(shapes):
    images, labels, names = C.yolo_dataset(shapes.yolo_yaml, "val")
    assert images.is_dir() and labels.is_dir() and names == list(shapes.classes)
    assert C.yolo_dataset(shapes.yolo_root, "val")[0] == images
