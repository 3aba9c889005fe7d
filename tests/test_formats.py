"""labkit.data.formats: the one place each shared file format is read or written.

The VOC parser, the image suffixes, the image listing, the YOLO label reader and the data.yaml writer were each
written twice (data.convert / yolov1.voc / data.bkai / data.synthetic / viz). These tests pin what the merged
versions do where the copies disagreed, each naming the copy that was wrong.
"""
import numpy as np
import pytest

from labkit import viz
from labkit.data import bkai, convert, formats as F, synthetic
from labkit.yolov1 import voc


def _voc(tmp_path, obj: str, size: str = "<size><width>20</width><height>10</height></size>", name="a.xml"):
    f = tmp_path / name
    f.write_text(f"<annotation><filename>a.jpg</filename>{size}<object>{obj}</object></annotation>")
    return f


def _obj(xmin=2, ymin=3, xmax=8, ymax=9, difficult="0", name="cat"):
    return (f"<name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>")


def test_one_parser_one_error_type():
    assert convert.read_voc_xml is F.read_voc_xml and convert.read_yolo_txt is F.read_yolo_txt
    assert voc.VOCFormatError is F.VOCFormatError and issubclass(F.VOCFormatError, convert.DataFormatError)
    assert convert.IMG_SUFFIXES is F.IMG_SUFFIXES
    assert not hasattr(bkai, "IMG_SUFFIXES") and not hasattr(voc, "IMAGE_EXTS")


def test_both_readers_agree_on_a_good_file(tmp_path):
    f = _voc(tmp_path, _obj(difficult="1"))
    a, b = F.read_voc_xml(f), voc.parse_voc_xml(f)
    np.testing.assert_array_equal(a["boxes"], [[1, 2, 8, 9]])  # 1-based inclusive -> continuous
    assert b["boxes"].dtype == np.float32 and np.array_equal(a["boxes"], b["boxes"])
    assert a["names"] == b["names"] == ["cat"] and a["difficult"].tolist() == b["difficult"].tolist() == [True]
    assert (a["width"], a["height"], a["filename"]) == (20, 10, "a.jpg")


def test_inverted_box_is_an_error_for_voc_to_yolo(tmp_path):
    """data.convert's copy accepted an inverted box and voc_to_yolo wrote a negative-width YOLO row (which
    read_yolo_txt then rejects); yolov1.voc's copy raised. Both raise now, naming the file."""
    (tmp_path / "voc" / "Annotations").mkdir(parents=True)
    _voc(tmp_path / "voc" / "Annotations", _obj(xmin=9, xmax=3), name="inv.xml")
    with pytest.raises(convert.DataFormatError, match=r"inv.xml: object 0 \('cat'\): empty box"):
        convert.voc_to_yolo(tmp_path / "voc", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.txt")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("obj, what", [(_obj(difficult="x"), "difficult"), (_obj(xmax="inf"), "xmax"),
                                       (_obj(name=""), "name")])
def test_bad_fields_are_errors_for_the_yolov1_reader(tmp_path, obj, what):
    """yolov1.voc's copy read ``<difficult>x`` as not difficult and took an infinite xmax; data.convert's raised."""
    with pytest.raises(voc.VOCFormatError, match=f"a.xml.*{what}"):
        voc.parse_voc_xml(_voc(tmp_path, obj))


def test_size_is_required_only_where_asked(tmp_path):
    f = _voc(tmp_path, _obj(), size="")
    assert (voc.parse_voc_xml(f)["width"], voc.parse_voc_xml(f)["height"]) == (0, 0)  # taken from the image later
    with pytest.raises(F.VOCFormatError, match=r"a.xml: missing <size>"):
        F.read_voc_xml(f)


def test_list_images(tmp_path):
    """data.convert's copy listed a folder named like an image (then failed reading it); bkai's listed only the
    top folder. One function: files only, recursive by default."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "dir.jpg").mkdir()
    for p in ("b.JPG", "a.png", "c.gif", "note.txt", "sub/d.webp"):
        (tmp_path / p).write_bytes(b"x")
    assert [p.name for p in F.list_images(tmp_path)] == ["a.png", "b.JPG", "d.webp"]
    assert [p.name for p in F.list_images(tmp_path, recursive=False)] == ["a.png", "b.JPG"]


def test_viz_reads_labels_through_read_yolo_txt(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("1 0.5 0.5 0.2 0.4\n\n0 0.25 0.75 0.5 0.5\n")
    cls, boxes = viz.read_yolo_labels(f, 100, 50)
    assert cls.tolist() == [1, 0]
    np.testing.assert_allclose(boxes, [[40, 15, 60, 35], [0, 25, 50, 50]])
    cls, boxes = viz.read_yolo_labels(tmp_path / "missing.txt", 100, 50)
    assert cls.shape == (0,) and boxes.shape == (0, 4)
    f.write_text("1 0.5 0.5 0 0.4\n")  # the viz copy drew a zero-width box without a word
    with pytest.raises(F.DataFormatError, match="a.txt:1"):
        viz.read_yolo_labels(f, 100, 50)


def test_data_yaml(tmp_path):
    F.write_data_yaml(tmp_path / "d.yaml", tmp_path, ["train", "val"], ["text", "chữ"], "made here")
    import yaml

    cfg = yaml.safe_load((tmp_path / "d.yaml").read_text(encoding="utf-8"))
    assert cfg == {"path": str(tmp_path), "train": "images/train", "val": "images/val", "nc": 2,
                   "names": {0: "text", 1: "chữ"}}
    assert not hasattr(synthetic, "_write_data_yaml") and not hasattr(bkai, "_write_data_yaml")
