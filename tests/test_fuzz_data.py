"""Fuzz-style test of the data loaders (issue 14, "Then, in general"): random bytes, deep nesting, wrong types, huge
and non-finite values and unicode names are fed to the COCO metrics loader, the COCO/YOLO/VOC readers of
``labkit.data.convert``, the BKAI reader/converter and the active-learning manifest loader.

Each input either loads or raises the loader's one error type (MetricsInputError, DataFormatError, BKAIFormatError,
ManifestError: all ValueError subclasses, so ``labkit eval`` turns them into one line and exit code 2) with a
one-line message that names the file; never another exception (a "random traceback"). Every input tree is
byte-identical afterwards.

Mutations caught (each checked by running this file against the mutated code): the metrics loader before issue 14
(random bytes → UnicodeDecodeError traceback); the RecursionError handler removed from the JSON readers (deep
nesting); the manifest's list type checks removed (TypeError: unhashable in ``set()``); OverflowError dropped from
the VOC reader's wrapper (``int(float("1e400"))``); ``read_gt`` without its OSError handler (a folder given).
"""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from labkit import metrics as M
from labkit.active import pool as P
from labkit.data import bkai
from labkit.data import convert as C

WEIRD = [None, True, "x", "", "名字\u202e.jpg", -1, 0, 2 ** 70, -(2 ** 70), 1e308, 1.5, float("nan"), float("inf"),
         -float("inf"), [], [1, 2], {}, {"a": 1}, "1e400", "\x00", "a" * 5000]
N_CASES = 24  # per loader; the whole file runs in a few seconds


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _paths(obj, prefix=()):
    """Every path (tuple of keys/indices) into a JSON document."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _set(obj, path, value):
    if not path:
        return value
    cur = obj
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return obj


def _mutants(doc, rng, n):
    """Documents derived from ``doc``: random bytes, deep nesting, and 1-3 random leaves/subtrees replaced by
    weird values (wrong types, huge or non-finite numbers, unicode)."""
    texts = [bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8)), b"\xff\xfe\x00garbage",
             b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"", b"null", b"[]", b"1e400",
             json.dumps("名字").encode()]
    paths = _paths(doc)
    for _ in range(n):
        d = copy.deepcopy(doc)
        for _ in range(int(rng.integers(1, 4))):
            ps = _paths(d)
            p = ps[int(rng.integers(len(ps)))]
            d = _set(d, p, copy.deepcopy(WEIRD[int(rng.integers(len(WEIRD)))]))
        texts.append(json.dumps(d).encode())  # NaN/Infinity written as JSON extensions, as Python reads them
    assert len(paths) > 5
    return texts


def _check(call, error, root, name):
    """``call()`` loads or raises ``error`` with one line naming ``name``; ``root`` is unchanged."""
    before = _tree(root)
    try:
        call()
    except error as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 600, msg
        assert name in msg, msg
    assert _tree(root) == before


# ------------------------------------------------------------------------------------------------
def _coco():
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                     {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}],
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 12], "area": 120,
                           "iscrowd": 0},
                          {"id": 1, "image_id": 2, "category_id": 2, "bbox": [5, 5, 20, 20]}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 12], "score": 0.9},
            {"image_id": 2, "category_id": 2, "bbox": [6, 5, 20, 20], "score": 0.4}]
    return gt, dets


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_coco_metrics_and_converters(tmp_path, seed):
    rng = np.random.default_rng(seed)
    gt, dets = _coco()
    src = tmp_path / "src"
    src.mkdir()
    good_gt, good_dets = src / "gt.json", src / "dets.json"
    good_gt.write_text(json.dumps(gt))
    good_dets.write_text(json.dumps(dets))
    for k, data in enumerate(_mutants(gt, rng, N_CASES)):
        f = src / f"gt_{k}_名字.json"
        f.write_bytes(data)
        _check(lambda: M.evaluate_coco_json(f, good_dets), M.MetricsInputError, src, f.name)
        _check(lambda: C.coco_to_yolo(f, tmp_path / "out" / str(k)), C.DataFormatError, src, f.name)
        _check(lambda: C.yolo_preds_to_coco(src, f), C.DataFormatError, src, f.name if k < 9 else "")
    for k, data in enumerate(_mutants(dets, rng, N_CASES)):
        f = src / f"dets_{k}.json"
        f.write_bytes(data)
        _check(lambda: M.evaluate_coco_json(good_gt, f), M.MetricsInputError, src, f.name)
    # folders and missing files are one line too
    _check(lambda: M.evaluate_coco_json(src, good_dets), M.MetricsInputError, src, str(src))
    _check(lambda: C.coco_to_yolo(src / "missing.json", tmp_path / "o"), C.DataFormatError, src, "missing.json")


def test_fuzz_yolo_and_voc_readers(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "ds"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    lines = [b"0 0.5 0.5 0.2 0.2", b"0 0.5 0.5 0.2 0.2 0.9", b"1 nan 0.5 0.2 0.2", b"0 1e400 0.5 0.1 0.1",
             b"0 0.5 0.5 -1 0.2", b"x y z w h", b"0 0.5", "0 0,5 0.5 0.1 0.1".encode(),
             "名字 0.5 0.5 0.1 0.1".encode(),
             b"\xff\xfe\x00\x01", b"1e308 0.5 0.5 0.1 0.1", b"-3 0.5 0.5 0.1 0.1"]
    for k in range(N_CASES):
        f = src / "labels" / f"l{k}.txt"
        f.write_bytes(b"\n".join(lines[int(i)] for i in rng.integers(0, len(lines), int(rng.integers(1, 4))))
                      if k else bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
        _check(lambda: C.read_yolo_txt(f), C.DataFormatError, src, f.name)
    _check(lambda: C.read_yolo_txt(src / "labels"), C.DataFormatError, src, "labels")
    # an image folder with a broken image and a broken label next to a good one
    from PIL import Image

    Image.new("RGB", (32, 24)).save(src / "images" / "ok.png")
    (src / "images" / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    _check(lambda: C.yolo_to_coco(src / "images"), C.DataFormatError, src, "bad.jpg")
    (src / "images" / "bad.jpg").unlink()
    (src / "labels" / "ok.txt").write_bytes(b"0 0.5 0.5 inf 0.2\n")
    _check(lambda: C.yolo_to_coco(src / "images"), C.DataFormatError, src, "ok.txt")
    for k, body in enumerate([b"\x00\x01garbage", b"<a>" * 50_000, b"<annotation></annotation>",
                              b"<annotation><size><width>1e400</width><height>5</height></size></annotation>",
                              b"<annotation><size><width>nan</width><height>5</height></size></annotation>",
                              b"<annotation><size><width>0</width><height>5</height></size></annotation>",
                              b"<annotation><size><width/><height>5</height></size></annotation>",
                              "<annotation><size><width>9</width><height>5</height></size><object><name/>"
                              "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1e999</xmax><ymax>2</ymax></bndbox>"
                              "</object></annotation>".encode(),
                              "<annotation><size><width>9</width><height>5</height></size><object><name>名字</name>"
                              "<difficult>x</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>2"
                              "</ymax></bndbox></object></annotation>".encode(),
                              b'<!DOCTYPE a [<!ENTITY b "bbbbbbbbbb"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
                              b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><annotation>&d;</annotation>']):
        f = src / f"v{k}.xml"
        f.write_bytes(body)
        _check(lambda: C.read_voc_xml(f), C.DataFormatError, src, f.name)
    (src / "data.yaml").write_bytes(b"names: [a\ntrain: {")
    _check(lambda: C.yolo_dataset(src / "data.yaml"), C.DataFormatError, src, "data.yaml")
    (src / "data.yaml").write_bytes(b"- 1\n- 2\n")
    _check(lambda: C.yolo_dataset(src / "data.yaml"), C.DataFormatError, src, "data.yaml")


def test_fuzz_bkai_reader_and_converter(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "vin"
    (root / "train_images").mkdir(parents=True)
    (root / "labels").mkdir()
    from PIL import Image

    good = "10,10,30,10,30,20,10,20,Phở bò, gà"
    pieces = [good, "1e400,1,2,3,4,5,6,7,x", "nan,1,2,3,4,5,6,7,x", "1,2,3", "a,b,c,d,e,f,g,h,i", ",,,,,,,,",
              "-1e308,0,1e308,0,1e308,5,-1e308,5,huge", "10,10,30,10,30,20,10,20," + "名" * 3000, "\u202e" * 9,
              "10,10,10,10,10,10,10,10,degenerate"]
    for k in range(1, N_CASES + 1):
        Image.new("RGB", (40, 30), (k * 9 % 255, 20, 30)).save(root / "train_images" / f"im{k:04d}.jpg")
        f = root / "labels" / f"gt_{k}.txt"
        if k % 6 == 0:
            f.write_bytes(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
        else:
            f.write_text("\n".join(pieces[int(i)] for i in rng.integers(0, len(pieces), 4)), encoding="utf-8")
        _check(lambda: bkai.read_gt(f, strict=True), bkai.BKAIFormatError, root, f.name)
        before = _tree(root)
        rows, issues = bkai.read_gt(f, strict=False)  # lenient: never raises, lists every problem
        assert all(np.isfinite(xy).all() for _, xy, _ in rows) and _tree(root) == before
    for odd in ("gt_².txt", "gt_名字\u202e.txt", "gt_٣.txt", "gt_.txt"):  # unicode digits and names: never a crash
        (root / "labels" / odd).write_text(good, encoding="utf-8")
        if odd[3:-4]:
            Image.new("RGB", (40, 30)).save(root / "train_images" / (odd[3:-4] + ".png"))
    (root / "train_images" / "im0003.jpg").write_bytes(b"not an image")
    (root / "train_images" / "im0005.jpg").write_bytes(bytes(rng.integers(0, 256, 500, dtype=np.uint8)))
    before = _tree(root)
    rep = bkai.convert_vintext(root, tmp_path / "out", splits={"train": "train_images"}, workers=1)
    assert _tree(root) == before
    assert len(rep.unreadable_images) == 2 and rep.malformed_lines
    for p in (tmp_path / "out" / "labels" / "train").iterdir():  # everything written is valid YOLO
        for line in p.read_text().splitlines():
            v = [float(x) for x in line.split()]
            assert len(v) == 5 and all(math.isfinite(x) and 0 <= x <= 1 for x in v[1:]), line
    _check(lambda: bkai.read_gt(root / "labels", strict=True), bkai.BKAIFormatError, root, "labels")
    _check(lambda: bkai.convert_vintext(root, tmp_path / "o2", splits={"train": "train_images"}, strict=True),
           bkai.BKAIFormatError, root, str(root))


def test_fuzz_manifest_loader(tmp_path):
    rng = np.random.default_rng(7)
    src = tmp_path / "pool" / "images"
    src.mkdir(parents=True)
    ims = []
    for i in range(8):
        p = src / f"画像{i}.jpg"
        p.write_bytes(b"x")
        ims.append(str(p))
    work = tmp_path / "work"
    m = P.PoolManifest.create(work / "m.json", ims[:6], ims[6:], ["名字"], initial=2, config={"strategy": "random"})
    m.set_metrics({"map50": 0.5, "map50_95": 0.25}, "w.pt")
    m.add_round(m.unlabelled[:2], {p: 0.5 for p in m.unlabelled})
    doc = json.loads((work / "m.json").read_text())
    for k, data in enumerate(_mutants(doc, rng, 3 * N_CASES)):
        f = work / f"m{k}.json"
        f.write_bytes(data)
        _check(lambda: P.PoolManifest.load(f), P.ManifestError, tmp_path, f.name)
    _check(lambda: P.PoolManifest.load(work), P.ManifestError, tmp_path, "work")
