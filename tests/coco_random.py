"""Randomised COCO-format ground truth + results, built to hit the corner cases of COCOeval.

Corner cases: many images and classes with non-contiguous ids, categories without any GT, images
without GT, images without predictions, crowd annotations, duplicate GT boxes (IoU ties), duplicated
detections, tied scores (rounded), an annotation with id 0, GT ``area`` different from the box area,
small/medium/large objects, more than 100 detections in one image/class.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np


def random_coco(seed=0, n_images=60, n_classes=12, max_gt=12, fp_per_img=8, crowd_frac=0.06,
                score_decimals=2, id_zero=True, many_dets_image=True, dup_frac=0.05):
    rng = np.random.default_rng(seed)
    img_ids = rng.choice(np.arange(1, 10 * n_images), n_images, replace=False)
    images = [{"id": int(i), "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in img_ids]
    cat_ids = np.sort(rng.choice(np.arange(1, 4 * n_classes), n_classes, replace=False))
    cats = [{"id": int(c), "name": f"c{c}"} for c in cat_ids]
    active = cat_ids[: max(1, n_classes - 2)]  # the last two categories never get GT
    anns, dets = [], []
    aid = 0 if id_zero else 1
    for k, im in enumerate(img_ids):
        kind = rng.random()
        n_gt = 0 if kind < 0.1 else int(rng.integers(1, max_gt + 1))
        gt_here = []
        for _ in range(n_gt):
            w, h = np.exp(rng.uniform(np.log(3), np.log(300), 2))
            x, y = rng.uniform(0, 640 - min(w, 600)), rng.uniform(0, 480 - min(h, 460))
            c = int(rng.choice(active))
            box = [float(x), float(y), float(w), float(h)]
            crowd = int(rng.random() < crowd_frac)
            a = {"id": aid, "image_id": int(im), "category_id": c, "bbox": box,
                 "area": float(w * h * rng.uniform(0.4, 1.0)), "iscrowd": crowd}
            anns.append(a)
            aid += 1
            gt_here.append(a)
            if rng.random() < dup_frac:  # duplicate GT (IoU ties)
                a2 = dict(a, id=aid, bbox=list(box))
                anns.append(a2)
                aid += 1
        if 0.1 <= kind < 0.15:
            continue  # image with GT but no predictions
        for a in gt_here:  # detections near GT
            for _ in range(int(rng.integers(0, 4))):
                x, y, w, h = a["bbox"]
                j = rng.normal(0, 0.15, 4) * [w, h, w, h]
                b = [x + j[0], y + j[1], max(w + j[2], 1.0), max(h + j[3], 1.0)]
                c = a["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
                dets.append({"image_id": int(im), "category_id": c, "bbox": [float(v) for v in b],
                             "score": float(np.round(rng.uniform(0.05, 1.0), score_decimals))})
                if rng.random() < dup_frac:
                    dets.append(copy.deepcopy(dets[-1]))  # exact duplicate
        for _ in range(int(rng.integers(0, fp_per_img + 1))):  # random false positives
            w, h = np.exp(rng.uniform(np.log(3), np.log(300), 2))
            x, y = rng.uniform(0, 600), rng.uniform(0, 440)
            dets.append({"image_id": int(im), "category_id": int(rng.choice(cat_ids)),
                         "bbox": [float(x), float(y), float(w), float(h)],
                         "score": float(np.round(rng.uniform(0.0, 0.9), score_decimals))})
    if many_dets_image:  # > 100 detections of one class in one image (maxDets truncation)
        im = int(img_ids[0])
        c = int(active[0])
        for _ in range(130):
            x, y = rng.uniform(0, 500, 2)
            dets.append({"image_id": im, "category_id": c, "bbox": [float(x), float(y), 40.0, 40.0],
                         "score": float(np.round(rng.uniform(0, 1), score_decimals))})
        anns.append({"id": aid, "image_id": im, "category_id": c, "bbox": [100.0, 100.0, 40.0, 40.0],
                     "area": 1600.0, "iscrowd": 0})
        aid += 1
    perm = rng.permutation(len(images))
    images = [images[i] for i in perm]  # file order differs from id order
    gt = {"images": images, "annotations": anns, "categories": cats}
    return gt, dets


def shift_ann_ids(gt, by=1):
    """A copy of ``gt`` with every annotation id shifted by ``by`` (nothing else changes)."""
    out = copy.deepcopy(gt)
    for a in out["annotations"]:
        a["id"] += by
    return out


def pycocotools_eval(gt, dets, shift_zero_ids=True):
    """12 stats (and the COCOeval object) from pycocotools, silenced.

    pycocotools counts a detection matched to the annotation with id 0 as a false positive (it tests the
    matched id for truthiness); labkit does not copy that bug. So when an annotation has id 0 the reference is
    pycocotools on ids shifted by +1 (``shift_zero_ids=False`` runs the buggy original).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if shift_zero_ids and any(a["id"] == 0 for a in gt["annotations"]):
        gt = shift_ann_ids(gt, 1)
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dets)) if dets else _empty_res(cg)
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats), E


def _empty_res(cg):
    from pycocotools.coco import COCO

    cd = COCO()
    cd.dataset = {"images": cg.dataset["images"], "categories": cg.dataset["categories"], "annotations": []}
    cd.createIndex()
    return cd


def faster_coco_eval(gt, dets):
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(copy.deepcopy(gt))
        cd = cg.loadRes(copy.deepcopy(dets))
        E = COCOeval_faster(cg, cd, "bbox", print_function=lambda *a, **k: None)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats[:12])


def coco_to_lists(gt, dets):
    """COCO dicts → labkit in-memory lists (images in id order, labels = category ids, xyxy boxes)."""
    ids = sorted(im["id"] for im in gt["images"])
    pos = {i: k for k, i in enumerate(ids)}
    G = [{"boxes": [], "labels": [], "iscrowd": [], "area": []} for _ in ids]
    D = [{"boxes": [], "labels": [], "scores": []} for _ in ids]
    for a in gt["annotations"]:
        g = G[pos[a["image_id"]]]
        x, y, w, h = a["bbox"]
        g["boxes"].append([x, y, x + w, y + h])
        g["labels"].append(a["category_id"])
        g["iscrowd"].append(bool(a.get("iscrowd", 0)))
        g["area"].append(a["area"])
    for d in dets:
        r = D[pos[d["image_id"]]]
        x, y, w, h = d["bbox"]
        r["boxes"].append([x, y, x + w, y + h])
        r["labels"].append(d["category_id"])
        r["scores"].append(d["score"])
    for g in G:
        g["boxes"] = np.asarray(g["boxes"], np.float64).reshape(-1, 4)
    for r in D:
        r["boxes"] = np.asarray(r["boxes"], np.float64).reshape(-1, 4)
    return G, D
