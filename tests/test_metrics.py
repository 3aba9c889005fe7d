"""labkit.metrics against the references: pycocotools (12 stats, precision/recall arrays),
faster-coco-eval, Ultralytics (match_predictions + ap_per_class, ConfusionMatrix) and the VOC devkit's
matching rules (py-faster-rcnn voc_eval, transcribed below as a plain loop)."""

import copy
import json
import types

import numpy as np
import pytest

from coco_random import coco_to_lists, faster_coco_eval, pycocotools_eval, random_coco, shift_ann_ids
from labkit import metrics as M

import pycocotools  # noqa: E402,F401  (the reference; a hard dependency: a broken install fails, never skips)
TOL = 1e-6


# ------------------------------------------------------------------------------------------------
# COCO convention == pycocotools
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,kw", [
    (0, {}),
    (1, {"score_decimals": 1}),  # many tied scores
    (2, {"n_images": 120, "n_classes": 25, "crowd_frac": 0.15}),
    (3, {"max_gt": 3, "fp_per_img": 20}),
    (4, {"id_zero": False, "score_decimals": 6}),
])
def test_coco_json_equals_pycocotools(seed, kw):
    gt, dets = random_coco(seed, **kw)
    ref, E = pycocotools_eval(gt, dets)
    res = M.evaluate_coco_json(gt, dets)
    np.testing.assert_allclose(res.stats, ref, atol=TOL, rtol=0)
    # the full accumulated arrays too (T, R, K, A, M) and (T, K, A, M)
    np.testing.assert_allclose(res.coco_eval["precision"], E.eval["precision"], atol=TOL, rtol=0)
    np.testing.assert_allclose(res.coco_eval["recall"], E.eval["recall"], atol=TOL, rtol=0)
    # headline numbers are consistent with the stats
    assert res.map50_95 == pytest.approx(ref[0], abs=TOL)
    assert res.map50 == pytest.approx(ref[1], abs=TOL)
    assert res.map75 == pytest.approx(ref[2], abs=TOL)
    # the two categories without GT are excluded
    assert len(res.class_names) == len({a["category_id"] for a in gt["annotations"]})


@pytest.mark.parametrize("seed", range(100, 110))
def test_coco_random_sweep(seed):
    rng = np.random.default_rng(seed)
    kw = dict(n_images=int(rng.integers(5, 80)), n_classes=int(rng.integers(3, 30)), max_gt=int(rng.integers(1, 15)),
              fp_per_img=int(rng.integers(0, 15)), crowd_frac=float(rng.uniform(0, 0.3)),
              score_decimals=int(rng.integers(1, 4)), id_zero=bool(rng.random() < 0.5),
              dup_frac=float(rng.uniform(0, 0.3)))
    gt, dets = random_coco(seed, **kw)
    ref, _ = pycocotools_eval(gt, dets)
    np.testing.assert_allclose(M.evaluate_coco_json(gt, dets).stats, ref, atol=TOL, rtol=0)


def test_coco_edge_cases():
    img = [{"id": 3}, {"id": 1}]
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    box = lambda x: [x, x, 20.0, 20.0]  # noqa: E731
    # class "b" has only a crowd GT → excluded; class "a" has GT in one image only
    gt = {"images": img, "categories": cats, "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": box(5), "area": 400.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": box(40), "area": 400.0, "iscrowd": 1}]}
    dets = [{"image_id": 1, "category_id": 2, "bbox": box(41), "score": 0.9},
            {"image_id": 3, "category_id": 1, "bbox": box(5), "score": 0.95},
            {"image_id": 1, "category_id": 1, "bbox": box(6), "score": 0.5}]
    ref, _ = pycocotools_eval(gt, dets)
    res = M.evaluate_coco_json(gt, dets)
    np.testing.assert_allclose(res.stats, ref, atol=TOL)
    assert res.class_names == ["a"]
    # no GT at all: every stat is -1 (pycocotools) and the means are undefined
    gt0 = {"images": img, "categories": cats, "annotations": []}
    ref0, _ = pycocotools_eval(gt0, dets)
    with pytest.warns(UserWarning, match="no class has ground truth"):
        r0 = M.evaluate_coco_json(gt0, dets)
    np.testing.assert_allclose(r0.stats, ref0)
    assert np.isnan(r0.map50)


def test_coco_json_from_files(tmp_path):
    gt, dets = random_coco(7)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(dets))
    ref, _ = pycocotools_eval(gt, dets)
    res = M.evaluate_coco_json(tmp_path / "gt.json", str(tmp_path / "pred.json"))
    np.testing.assert_allclose(res.stats, ref, atol=TOL, rtol=0)


def test_coco_equals_faster_coco_eval():
    pytest.importorskip("faster_coco_eval")
    gt, dets = random_coco(11, id_zero=False, n_images=80)
    np.testing.assert_allclose(M.evaluate_coco_json(gt, dets).stats, faster_coco_eval(gt, dets), atol=TOL, rtol=0)


def test_in_memory_equals_pycocotools():
    gt, dets = random_coco(5, id_zero=False)  # in-memory records have no annotation ids → no id-0 quirk
    ref, _ = pycocotools_eval(gt, dets)
    G, D = coco_to_lists(gt, dets)
    res = M.evaluate(G, D)
    np.testing.assert_allclose(res.stats, ref, atol=TOL, rtol=0)
    # torch tensors are accepted too
    import torch
    Gt = [{k: torch.as_tensor(np.asarray(v)) for k, v in g.items()} for g in G]
    Dt = [{k: torch.as_tensor(np.asarray(v)) for k, v in d.items()} for d in D]
    np.testing.assert_allclose(M.evaluate(Gt, Dt).stats, ref, atol=TOL, rtol=0)


def _two_box(ids):
    gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": ids[0], "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0},
                          {"id": ids[1], "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "area": 400,
                           "iscrowd": 0}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.8}]
    return gt, dets


def test_annotation_ids_are_labels_not_matches():
    # issue 14 #10. Catches: copying pycocotools' id-0 bug (a match to the GT with id 0 read as "unmatched"):
    # mAP50 was 0.2525 with ids 0, 1.
    for ids in ((0, 1), (1, 2), (1, 0), (7, 3)):
        gt, dets = _two_box(ids)
        res = M.evaluate_coco_json(gt, dets)
        assert res.map50 == 1.0, ids
        assert res.map50_95 == 1.0, ids
    # the reference itself: pycocotools loses the id-0 match, and agrees with labkit on ids shifted by +1
    gt, dets = _two_box((0, 1))
    raw, _ = pycocotools_eval(gt, dets, shift_zero_ids=False)
    assert raw[1] == pytest.approx(51 * 0.5 / 101)  # 0.2525: FP first, then TP → precision 0.5 up to recall 0.5
    np.testing.assert_allclose(M.pycocotools_stats(gt, dets), raw, atol=0)  # the public helper notebook 05 uses
    np.testing.assert_allclose(M.evaluate_coco_json(gt, dets).stats,
                               pycocotools_eval(shift_ann_ids(gt, 1), dets, shift_zero_ids=False)[0], atol=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_renumbering_annotations_changes_no_metric(seed):
    # Catches: any use of annotation ids in matching or ordering (the id-0 bug, or ordering GTs by id).
    gt, dets = random_coco(seed, n_images=25, id_zero=True)
    base = {c: M.evaluate_coco_json(gt, dets, convention=c) for c in M.CONVENTIONS}
    rng = np.random.default_rng(seed)
    renum = copy.deepcopy(gt)
    new_ids = rng.permutation(len(renum["annotations"]))  # includes 0, in a random place
    for a, i in zip(renum["annotations"], new_ids):
        a["id"] = int(i) * 3 - 5  # negative and zero ids too
    for c, r in base.items():
        r2 = M.evaluate_coco_json(renum, dets, convention=c)
        np.testing.assert_array_equal(r2.stats, r.stats)
        assert r2.map50 == r.map50 and r2.map50_95 == r.map50_95


def test_empty_predictions_give_zero_ap():
    gt, _ = random_coco(3)
    ref, _ = pycocotools_eval(gt, [])
    res = M.evaluate_coco_json(gt, [])
    np.testing.assert_allclose(res.stats, ref, atol=TOL)
    assert res.map50 == 0.0 and res.map50_95 == 0.0
    for conv in M.CONVENTIONS:
        r = M.evaluate_coco_json(gt, [], convention=conv)
        assert r.map50 == 0.0 and all(v["ap50"] == 0.0 for v in r.ap_per_class.values())


def test_class_without_gt_is_excluded():
    G = [{"boxes": np.array([[0, 0, 10, 10.]]), "labels": np.array([0])}]
    D = [{"boxes": np.array([[0, 0, 10, 10.]]), "labels": np.array([0]), "scores": np.array([0.9])}]
    D2 = [{"boxes": np.array([[0, 0, 10, 10.], [50, 50, 60, 60.]]), "labels": np.array([0, 1]),
           "scores": np.array([0.9, 0.95])}]
    for conv in M.CONVENTIONS:
        base = M.evaluate(G, D, class_names=["a", "b"], convention=conv)
        r = M.evaluate(G, D2, class_names=["a", "b"], convention=conv)
        assert r.class_names == ["a"] and r.map50 == pytest.approx(base.map50)
        # a perfect detection: AP 1, except Ultralytics' trapezoid, which ends the curve at (1, 0) → 0.995
        assert r.map50 == pytest.approx(0.995 if conv == "ultralytics" else 1.0)


# ------------------------------------------------------------------------------------------------
# Hand-computed single-class example: where the conventions differ
# ------------------------------------------------------------------------------------------------
def _three_gt_example():
    gtb = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10.]])
    detb = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [20, 0, 30, 10.]])  # TP, FP, TP
    G = [{"boxes": gtb, "labels": np.zeros(3, int)}]
    D = [{"boxes": detb, "labels": np.zeros(3, int), "scores": np.array([0.9, 0.8, 0.7])}]
    return G, D


def test_conventions_hand_computed():
    G, D = _three_gt_example()
    # precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3
    expected = {
        "voc": 1 / 3 * 1 + 1 / 3 * (2 / 3),  # area under the envelope
        "voc07": (4 * 1 + 3 * (2 / 3)) / 11,  # r = 0..0.3 → 1, r = 0.4..0.6 → 2/3, r ≥ 0.7 → 0
        "coco": (34 * 1 + 33 * (2 / 3)) / 101,  # r = 0..0.33 → 1, 0.34..0.66 → 2/3
    }
    for conv, v in expected.items():
        assert M.evaluate(G, D, convention=conv).map50 == pytest.approx(v, abs=1e-12), conv
    prec, rec = M.pr_curve([True, False, True], 3)
    for conv, v in expected.items():
        assert M.ap_from_pr(rec, prec, conv) == pytest.approx(v, abs=1e-12)
    r = M.evaluate(G, D, conf=0.75)  # two detections ≥ 0.75: one TP, one FP
    assert r.precision["0"] == pytest.approx(0.5) and r.recall["0"] == pytest.approx(1 / 3)
    assert r.f1["0"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))


def test_match_image_teaching_helper_agrees_with_engine():
    rng = np.random.default_rng(0)
    gtb = rng.uniform(0, 100, (6, 2))
    gtb = np.concatenate([gtb, gtb + rng.uniform(10, 40, (6, 2))], 1)
    det = np.concatenate([gtb + rng.normal(0, 4, gtb.shape), gtb[:3] + 2.0])
    det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
    sc = rng.permutation(len(det)) / len(det) + 0.01
    for thr_i, thr in enumerate(M.IOU_THRESHOLDS[:3]):
        m = M.match_image(gtb, det, sc, thr)
        prec, rec = M.pr_curve(m["tp"], len(gtb))
        res = M.evaluate([{"boxes": gtb, "labels": np.zeros(6, int)}],
                         [{"boxes": det, "labels": np.zeros(len(det), int), "scores": sc}])
        assert M.ap_from_pr(rec, prec, "coco") == pytest.approx(res.ap[0, thr_i], abs=1e-12)


# ------------------------------------------------------------------------------------------------
# VOC conventions == the devkit's rules (reference loop transcribed from py-faster-rcnn voc_eval.py,
# with the devkit's ">=" threshold and labkit's continuous area, no +1)
# ------------------------------------------------------------------------------------------------
def _voc_reference(G, D, cls, thr, use_07):
    recs = {}
    npos = 0
    for i, g in enumerate(G):
        m = g["labels"] == cls
        diff = g.get("difficult", np.zeros(len(g["labels"]), bool))[m]
        recs[i] = {"bbox": g["boxes"][m], "difficult": diff, "det": [False] * int(m.sum())}
        npos += int((~diff).sum())
    img, conf, bb = [], [], []
    for i, d in enumerate(D):
        m = d["labels"] == cls
        img += [i] * int(m.sum())
        conf += list(d["scores"][m])
        bb += list(d["boxes"][m])
    order = np.argsort(-np.asarray(conf), kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for k, j in enumerate(order):
        R = recs[img[j]]
        b = bb[j]
        ovmax = -np.inf
        BBGT = R["bbox"]
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], b[0])
            iymin = np.maximum(BBGT[:, 1], b[1])
            ixmax = np.minimum(BBGT[:, 2], b[2])
            iymax = np.minimum(BBGT[:, 3], b[3])
            iw = np.maximum(ixmax - ixmin, 0.0)
            ih = np.maximum(iymax - iymin, 0.0)
            inters = iw * ih
            uni = (b[2] - b[0]) * (b[3] - b[1]) + (BBGT[:, 2] - BBGT[:, 0]) * (BBGT[:, 3] - BBGT[:, 1]) - inters
            overlaps = inters / uni
            ovmax = np.max(overlaps)
            jmax = np.argmax(overlaps)
        if ovmax >= thr:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[k] = 1.0
                    R["det"][jmax] = 1
                else:
                    fp[k] = 1.0
        else:
            fp[k] = 1.0
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap += p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


@pytest.mark.parametrize("conv", ["voc07", "voc"])
def test_voc_conventions_equal_devkit_rules(conv):
    gt, dets = random_coco(21, n_images=50, n_classes=6, score_decimals=6)
    G, D = coco_to_lists(gt, dets)
    rng = np.random.default_rng(0)
    for g in G:
        g["difficult"] = rng.random(len(g["labels"])) < 0.15
        g["iscrowd"] = np.zeros(len(g["labels"]), bool)
        g["labels"] = np.asarray(g["labels"])
    for d in D:
        d["labels"], d["scores"] = np.asarray(d["labels"]), np.asarray(d["scores"])
    res = M.evaluate(G, D, convention=conv)
    for k, cid in enumerate(res.class_ids):
        for t in (0, 5, 9):
            ref = _voc_reference(G, D, cid, M.IOU_THRESHOLDS[t], conv == "voc07")
            assert res.ap[k, t] == pytest.approx(ref, abs=TOL), (cid, t)


# ------------------------------------------------------------------------------------------------
# Ultralytics convention == ultralytics' own validator functions
# ------------------------------------------------------------------------------------------------
def test_ultralytics_convention_equals_ultralytics_val():
    import torch
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import ap_per_class, box_iou

    gt, dets = random_coco(31, n_images=60, n_classes=8, score_decimals=8, crowd_frac=0.0, many_dets_image=False,
                           dup_frac=0.0)
    G, D = coco_to_lists(gt, dets)
    fake = types.SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    tps, confs, pcls, tcls = [], [], [], []
    for g, d in zip(G, D):
        o = np.argsort(-np.asarray(d["scores"]), kind="stable")
        db = torch.tensor(d["boxes"][o], dtype=torch.float32)
        dc = torch.tensor(np.asarray(d["labels"])[o], dtype=torch.float32)
        gc = torch.tensor(np.asarray(g["labels"]), dtype=torch.float32)
        if len(gc) and len(dc):
            iou = box_iou(torch.tensor(g["boxes"], dtype=torch.float32), db)
            tp = BaseValidator.match_predictions(fake, dc, gc, iou).numpy()
        else:
            tp = np.zeros((len(dc), 10), bool)
        tps.append(tp)
        confs.append(np.asarray(d["scores"])[o])
        pcls.append(dc.numpy())
        tcls.append(gc.numpy())
    out = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls), np.concatenate(tcls))
    ref_ap, ref_cls = out[5], out[6]
    res = M.evaluate(G, D, convention="ultralytics")
    assert res.class_ids == list(ref_cls)
    np.testing.assert_allclose(res.ap, ref_ap, atol=TOL)
    assert res.map50 == pytest.approx(ref_ap[:, 0].mean(), abs=TOL)
    assert res.map50_95 == pytest.approx(ref_ap.mean(), abs=TOL)


def test_confusion_matrix_equals_ultralytics():
    import torch
    from ultralytics.utils.metrics import ConfusionMatrix

    gt, dets = random_coco(41, n_images=40, n_classes=5, score_decimals=8, crowd_frac=0.0, many_dets_image=False)
    G, D = coco_to_lists(gt, dets)
    cats = sorted(c["id"] for c in gt["categories"])
    remap = {c: i for i, c in enumerate(cats)}
    for r in G + D:
        r["labels"] = np.array([remap[c] for c in r["labels"]], dtype=int)
        if "scores" in r:
            r["scores"] = np.asarray(r["scores"])
    cm = ConfusionMatrix(names={i: str(c) for i, c in enumerate(cats)})
    for g, d in zip(G, D):
        cm.process_batch({"bboxes": torch.tensor(d["boxes"], dtype=torch.float32),
                          "conf": torch.tensor(d["scores"], dtype=torch.float32),
                          "cls": torch.tensor(d["labels"], dtype=torch.float32)},
                         {"bboxes": torch.tensor(g["boxes"], dtype=torch.float32),
                          "cls": torch.tensor(g["labels"], dtype=torch.float32)}, conf=0.25, iou_thres=0.45)
    ours = M.confusion_matrix(G, D, num_classes=len(cats), conf=0.25, iou_thres=0.45)
    np.testing.assert_array_equal(ours, cm.matrix.astype(int))


# ------------------------------------------------------------------------------------------------
# Bad input → clear errors naming the record
# ------------------------------------------------------------------------------------------------
def _one(boxes=((0, 0, 10, 10),), labels=(0,), scores=(0.5,)):
    return ([{"boxes": np.array([[0, 0, 10, 10.]]), "labels": np.array([0])}],
            [{"boxes": np.array(boxes, float), "labels": np.array(labels), "scores": np.array(scores)}])


@pytest.mark.parametrize("box,msg", [((0, 0, np.nan, 10), "NaN"), ((5, 0, 2, 10), "negative size"),
                                     ((0, 0, 0, 10), "zero size")])
def test_bad_boxes_in_memory(box, msg):
    G, D = _one(boxes=[(0, 0, 10, 10), box], labels=[0, 0], scores=[0.5, 0.4])
    with pytest.raises(M.MetricsInputError, match=rf"dets\[0\] box 1 has {msg}"):
        M.evaluate(G, D)


def test_bad_records_in_memory():
    G, D = _one()
    with pytest.raises(M.MetricsInputError, match=r"dets\[0\] is missing the field 'scores'"):
        M.evaluate(G, [{"boxes": D[0]["boxes"], "labels": D[0]["labels"]}])
    with pytest.raises(M.MetricsInputError, match=r"gts\[0\] is missing the field 'labels'"):
        M.evaluate([{"boxes": G[0]["boxes"]}], D)
    with pytest.raises(M.MetricsInputError, match="one dict per image"):
        M.evaluate(G, D + D)
    with pytest.raises(M.MetricsInputError, match=r"label 3 outside 0..1"):
        M.evaluate(G, _one(labels=[3])[1], class_names=["a", "b"])
    with pytest.raises(ValueError, match="unknown convention"):
        M.evaluate(G, D, convention="pascal")


def test_bad_coco_json(tmp_path):
    gt, dets = random_coco(2, n_images=10)
    bad = copy.deepcopy(dets)
    bad[3]["image_id"] = 987654321
    with pytest.raises(M.MetricsInputError, match=r"prediction 3 .*image id 987654321.*not in the ground truth"):
        M.evaluate_coco_json(gt, bad)
    bad = copy.deepcopy(dets)
    bad[4]["category_id"] = 999
    with pytest.raises(M.MetricsInputError, match=r"prediction 4 .*category id 999"):
        M.evaluate_coco_json(gt, bad)
    bad = copy.deepcopy(dets)
    del bad[2]["score"]
    with pytest.raises(M.MetricsInputError, match=r"prediction 2 .*missing the field 'score'"):
        M.evaluate_coco_json(gt, bad)
    bad = copy.deepcopy(dets)
    bad[1]["bbox"] = [1, 2, -3, 4]
    with pytest.raises(M.MetricsInputError, match=r"prediction 1 .*negative size"):
        M.evaluate_coco_json(gt, bad)
    badg = copy.deepcopy(gt)
    del badg["annotations"][5]["bbox"]
    with pytest.raises(M.MetricsInputError, match=r"annotation 5 .*missing the field 'bbox'"):
        M.evaluate_coco_json(badg, dets)
    badg = copy.deepcopy(gt)
    badg["annotations"][0]["bbox"][2] = float("nan")
    with pytest.raises(M.MetricsInputError, match=r"annotation 0 .*NaN"):
        M.evaluate_coco_json(badg, dets)
    with pytest.raises(M.MetricsInputError, match="not found"):
        M.evaluate_coco_json(tmp_path / "nope.json", dets)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(M.MetricsInputError, match="not valid JSON"):
        M.evaluate_coco_json(gt, tmp_path / "broken.json")


def test_result_serialises_and_summarises():
    gt, dets = random_coco(9, n_images=20)
    r = M.evaluate_coco_json(gt, dets)
    d = json.loads(json.dumps(r.to_dict(curves=True)))
    assert d["stats"]["AP@.50"] == pytest.approx(r.stats[1])
    assert set(d["pr_curves"]) == set(r.class_names)
    assert "mAP50=" in r.summary() and r["map50"] == r.map50


# ------------------------------------------------------------------------------------------------
# Teaching helpers and the P-R widget (no browser)
# ------------------------------------------------------------------------------------------------
def test_threshold_view_agrees_with_engine():
    gt, dets = random_coco(17, n_images=30, n_classes=4, crowd_frac=0.0, many_dets_image=False, id_zero=False)
    G, D = coco_to_lists(gt, dets)
    res = M.evaluate(G, D, conf=0.5)
    for k, cid in enumerate(res.class_ids):
        for t in (0, 3, 5):
            v = M.threshold_view(G, D, cid, M.IOU_THRESHOLDS[t], conf=0.5)
            assert v["ap"]["coco"] == pytest.approx(res.ap[k, t], abs=1e-12)
        v = M.threshold_view(G, D, cid, 0.5, conf=0.5)
        assert v["n_gt"] == res.num_gt[str(cid)]
        above = v["score"] >= 0.5
        assert v["p_at_conf"] == pytest.approx(res.precision[str(cid)])
        assert v["r_at_conf"] == pytest.approx(v["tp"][above].sum() / v["n_gt"])
        np.testing.assert_allclose(v["recall"], res.pr_curves[str(cid)]["recall"])
        assert np.all(np.diff(v["envelope"]) <= 0)


def test_interactive_pr_widget_redraws(monkeypatch):
    """The widget draws what ``threshold_view`` computes for the sliders' current values.

    Mutations caught: the widget calling ``threshold_view`` with IoU 0.5 whatever the IoU slider says (the title's
    AP@0.75 is then the AP@0.5 value, 1/3 + ... != 2/3 * ...), or with the default conf 0.25 whatever the conf slider
    says (the operating point moves), or not redrawing on a slider change (too few figures)."""
    import ipywidgets  # noqa: F401 - a hard dependency of the widgets

    from labkit.widgets import metrics as WM

    shown, real_png = [], WM.figure_png
    monkeypatch.setattr(WM, "figure_png", lambda fig, **k: shown.append(fig) or real_png(fig, **k))
    gtb = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10.]])
    detb = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [22, 0, 32, 10.]])  # TP, FP, IoU 2/3: TP at .5 only
    G = [{"boxes": gtb, "labels": np.zeros(3, int)}]
    D = [{"boxes": detb, "labels": np.zeros(3, int), "scores": np.array([0.9, 0.85, 0.7])}]
    box = WM.interactive_pr(G, D, class_names=["thing"])
    sliders = box.children[0].children
    sliders[1].value = 0.75  # IoU threshold
    sliders[0].value = 0.8  # conf
    assert len(shown) == 3  # first draw + one redraw per slider change
    v = M.threshold_view(G, D, 0, 0.75, conf=0.8)
    assert v["ap"]["coco"] != M.threshold_view(G, D, 0, 0.5, conf=0.8)["ap"]["coco"]  # the example can tell them apart
    ax_img, ax_pr = shown[-1].axes
    assert f"AP@0.75: COCO {v['ap']['coco']:.3f}" in ax_pr.get_title()
    np.testing.assert_allclose(ax_pr.lines[0].get_xdata(), v["recall"])
    assert box._repr_mimebundle_()["image/png"]  # a static render of the current state (issue 16)
    (op,) = [ln for ln in ax_pr.lines if ln.get_label().startswith("conf")]
    assert (op.get_xdata()[0], op.get_ydata()[0]) == (v["r_at_conf"], v["p_at_conf"]) == (1 / 3, 0.5)
    assert len(ax_img.patches) == 6  # 3 GT + 3 detections of the class


def test_error_wording_names_the_input(tmp_path):
    # issue 14 #14. Catches: "prediction prediction 0", "1 such records", "<prediction object>", and an
    # Infinity score reported as "NaN".
    gt, dets = _two_box((1, 2))
    bad = copy.deepcopy(dets)
    bad[0]["bbox"] = [1, 2, -3, 4]
    with pytest.raises(M.MetricsInputError) as e:
        M.evaluate_coco_json(gt, bad, pred_name="preds.json")
    assert "prediction prediction" not in str(e.value) and "preds.json" in str(e.value)
    assert str(e.value).startswith("prediction 0 (image 1) in preds.json has negative size")
    with pytest.raises(M.MetricsInputError) as e:
        M.evaluate_coco_json(gt, bad)
    assert "<" not in str(e.value) and "the prediction data passed in" in str(e.value)
    bad = copy.deepcopy(dets)
    bad[1]["image_id"] = 99
    with pytest.raises(M.MetricsInputError, match=r"\(1 such record\)$"):
        M.evaluate_coco_json(gt, bad)
    bad[0]["image_id"] = 98
    with pytest.raises(M.MetricsInputError, match=r"\(2 such records\)$"):
        M.evaluate_coco_json(gt, bad)
    p = tmp_path / "inf.json"
    p.write_text(json.dumps(dets).replace("0.9", "Infinity"))
    with pytest.raises(M.MetricsInputError, match=r"prediction 0 \(image 1\) in .*inf.json has score inf"):
        M.evaluate_coco_json(gt, p)
    G, D = _one(boxes=[(0, 0, 10, 10)], labels=[0], scores=[float("inf")])
    with pytest.raises(M.MetricsInputError, match=r"prediction dets\[0\] box 0 has score inf"):
        M.evaluate(G, D)
