"""Benchmark: labkit COCO bbox evaluation vs hotcoco vs faster-coco-eval vs pycocotools, same data, one process.

A COCO-val-sized synthetic set (default 5,000 images, 80 categories with COCO's non-contiguous ids,
~7 GT per image, ~100 detections per image, some crowds, tied scores). Each tool gets the same GT
dict and results list (a fresh deep copy per run, outside the timed region) and runs from there to the
12 summary stats (hotcoco, faster-coco-eval and pycocotools: ``COCO`` + ``loadRes`` +
evaluate/accumulate/summarize; labkit: ``evaluate_coco_json``). Every library is imported before any timing,
and every side gets the same ``--warmup`` untimed runs and the best of the same ``--repeat`` timed runs
(``benchmarks/_common.py``). Prints the times side by side, the ratios to labkit and the largest difference
between the stats, and saves them with machine info to ``runs/bench/bench_metrics-<time>.json``.

    python benchmarks/bench_metrics.py                       # full size (pycocotools takes minutes per run)
    python benchmarks/bench_metrics.py --small --repeat 3 --warmup 1   # 500 images, quick
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, timed  # noqa: E402

COCO80_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
              34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
              62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


def make_set(n_images=5000, dets_per_image=100, gt_per_image=7.3, seed=0):
    """Synthetic COCO GT + detections, vectorised so generation is cheap."""
    rng = np.random.default_rng(seed)
    cats = np.array(COCO80_IDS)
    img_ids = np.sort(rng.choice(np.arange(1, 600000), n_images, replace=False))
    images = [{"id": int(i), "width": 640, "height": 480} for i in img_ids]
    n_gt = rng.poisson(gt_per_image, n_images)
    G = int(n_gt.sum())
    g_img = np.repeat(img_ids, n_gt)
    wh = np.exp(rng.uniform(np.log(4), np.log(400), (G, 2)))
    xy = rng.uniform(0, 1, (G, 2)) * (np.array([640, 480]) - np.minimum(wh, [600, 460]))
    # categories: skewed like COCO (person is frequent)
    p = rng.dirichlet(np.ones(80) * 0.5)
    g_cat = rng.choice(cats, G, p=p)
    crowd = rng.random(G) < 0.01
    anns = [{"id": int(k + 1), "image_id": int(g_img[k]), "category_id": int(g_cat[k]),
             "bbox": [float(xy[k, 0]), float(xy[k, 1]), float(wh[k, 0]), float(wh[k, 1])],
             "area": float(wh[k, 0] * wh[k, 1] * 0.7), "iscrowd": int(crowd[k])} for k in range(G)]
    # detections: per GT ~3 jittered copies (mostly right class), rest random false positives
    n_near = rng.poisson(3, G)
    src = np.repeat(np.arange(G), n_near)
    jit = rng.normal(0, 0.12, (len(src), 4)) * np.concatenate([wh[src], wh[src]], 1)
    nb = np.concatenate([xy[src] + jit[:, :2], np.maximum(wh[src] + jit[:, 2:], 1.0)], 1)
    ncat = np.where(rng.random(len(src)) < 0.85, g_cat[src], rng.choice(cats, len(src)))
    nimg = g_img[src]
    nscore = np.clip(rng.beta(4, 2, len(src)), 0.001, 1)
    n_rand = np.maximum(dets_per_image - np.bincount(np.searchsorted(img_ids, nimg), minlength=n_images), 0)
    R = int(n_rand.sum())
    rimg = np.repeat(img_ids, n_rand)
    rwh = np.exp(rng.uniform(np.log(4), np.log(300), (R, 2)))
    rb = np.concatenate([rng.uniform(0, 600, (R, 1)), rng.uniform(0, 440, (R, 1)), rwh], 1)
    rcat = rng.choice(cats, R, p=p)
    rscore = rng.beta(1.2, 5, R)
    boxes = np.concatenate([nb, rb])
    score = np.round(np.concatenate([nscore, rscore]), 3)  # rounding gives tied scores
    cat = np.concatenate([ncat, rcat])
    img = np.concatenate([nimg, rimg])
    o = np.argsort(img, kind="stable")
    dets = [{"image_id": int(img[k]), "category_id": int(cat[k]), "bbox": [float(v) for v in boxes[k]],
             "score": float(score[k])} for k in o]
    gt = {"images": images, "annotations": anns, "categories": [{"id": int(c), "name": f"cat{c}"} for c in cats]}
    return gt, dets


def run_pycocotools(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        cd = cg.loadRes(dets)
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats)


def run_faster(gt, dets):
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(gt)
        cd = cg.loadRes(dets)
        E = COCOeval_faster(cg, cd, "bbox", print_function=lambda *a, **k: None)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats[:12])


def run_hotcoco(gt, dets):
    from hotcoco import COCO, COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(gt)
        cd = cg.loadRes(dets)
        E = COCOeval(cg, cd, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats[:12])


def run_labkit(gt, dets):
    from labkit.metrics import evaluate_coco_json

    return evaluate_coco_json(gt, dets, curves=False).stats


SIDES = {"labkit": (run_labkit, "labkit"), "hotcoco": (run_hotcoco, "hotcoco"),
         "faster-coco-eval": (run_faster, "faster_coco_eval"), "pycocotools": (run_pycocotools, "pycocotools")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="500 images instead of 5,000")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--dets", type=int, default=100, help="detections per image")
    ap.add_argument("--repeat", type=int, default=1, help="best of N timed runs, the same N for every side")
    ap.add_argument("--warmup", type=int, default=0, help="untimed runs before timing, the same for every side")
    ap.add_argument("--skip", action="append", default=[], choices=list(SIDES)[1:],
                    help="leave a reference out (repeatable), e.g. --skip pycocotools")
    ap.add_argument("--no-save", action="store_true", help="do not write runs/bench/bench_metrics-*.json")
    a = ap.parse_args(argv)
    n = a.images or (500 if a.small else 5000)
    sides = {}
    for name, (fn, module) in SIDES.items():
        if name in a.skip:
            continue
        try:
            __import__(module)  # import before timing: no side pays its import inside the timed region
            if module == "pycocotools":
                __import__("pycocotools.cocoeval")
        except ImportError:
            print(f"{name:17s} not installed, skipped")
            continue
        sides[name] = fn
    t = time.perf_counter()
    gt, dets = make_set(n, a.dets)
    print(f"set: {n} images, {len(gt['annotations'])} GT, {len(dets)} detections, 80 classes "
          f"(built in {time.perf_counter() - t:.1f}s); every side: warm-up {a.warmup}, best of {a.repeat}")
    fresh = lambda: (copy.deepcopy(gt), copy.deepcopy(dets))  # noqa: E731  every run gets untouched inputs
    times, stats = {}, {}
    for name, fn in sides.items():
        times[name], stats[name] = timed(fn, repeat=a.repeat, warmup=a.warmup, setup=fresh)
        print(f"{name:17s} {times[name]:8.2f} s   ({times[name] / times['labkit']:.2f}x labkit's time)", flush=True)
    diffs = {name: float(np.abs(stats["labkit"] - s).max()) for name, s in stats.items() if name != "labkit"}
    for name, d in diffs.items():
        print(f"max |labkit - {name}| over the 12 stats = {d:.2e}")
    print("stats (labkit):", " ".join(f"{x:.4f}" for x in stats["labkit"]))
    if not a.no_save:
        path = save("bench_metrics", {"images": n, "dets_per_image": a.dets, "gt": len(gt["annotations"]),
                                      "detections": len(dets), "repeat": a.repeat, "warmup": a.warmup},
                    {"seconds": times, "max_abs_stat_diff_vs_labkit": diffs,
                     "stats": {k: v.tolist() for k, v in stats.items()}},
                    packages=("hotcoco", "faster-coco-eval", "pycocotools"))
        print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")


if __name__ == "__main__":
    main()
