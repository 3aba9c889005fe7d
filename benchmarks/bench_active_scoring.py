"""Benchmark: pool scoring throughput, labkit's batched scorer vs the source's one-predict-per-image loop.

Same model (YOLOv8n from its yaml, random weights, no download), same images (synthetic shapes), same
input size, NMS settings and torch threads. The source calls ``model.predict(source=path)`` for every unlabelled
image and reads ``results[0].boxes.conf``; labkit's :func:`labkit.active.scoring.predict_pool` letterboxes batches
into a channels-last tensor (reading the next batch in a thread), runs a fused copy of the network once per batch,
and keeps each box's full class vector plus a pooled embedding. Both sides are warmed up first: Ultralytics keeps
its predictor (fused model) on the ``YOLO`` object between calls, labkit keeps its fused copy in a cache that
is checked against the weights, and the cold first call of each is printed too. Runs alternate (source, labkit,
source, ...) so load changes hit both; the median and the best run of each side are reported.

    python benchmarks/bench_active_scoring.py                    # 256 images at 96 and 128 px, 2 threads
    python benchmarks/bench_active_scoring.py --imgsz 320 --n 256 --batch 32
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="pool images")
    ap.add_argument("--imgsz", type=int, nargs="+", default=[96, 128], help="input sizes to time")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="labkit's image-reading threads")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--conf", type=float, default=0.01)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import labkit
    from labkit.active.scoring import per_image_predict_scores, predict_pool
    from labkit.data.synthetic import make_shapes

    labkit.env.configure_offline()
    from ultralytics import YOLO

    rows = [bench(args, imgsz, predict_pool, per_image_predict_scores, make_shapes, YOLO, torch)
            for imgsz in args.imgsz]
    print(f"\nsummary ({args.n} images, {args.threads} threads, medians): "
          + " | ".join(f"{r['imgsz']} px: source {r['source']:.0f} img/s, labkit {r['labkit']:.0f} img/s, "
                       f"{r['ratio']:.2f}x" for r in rows))


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def bench(args, imgsz, predict_pool, per_image_predict_scores, make_shapes, YOLO, torch) -> float:
    """Time both scorers at one input size; prints images/s and the ratios, returns the medians."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = make_shapes(root=os.path.join(tmp, "shapes"), n_train=args.n, n_val=1, imgsz=imgsz, seed=0)
        paths = [str(p) for p in ds.images("train")]
        torch.manual_seed(0)
        model = YOLO("yolov8n.yaml")
        kw = dict(imgsz=imgsz, conf=args.conf)
        # first (cold) calls: Ultralytics sets up its predictor, labkit fuses and caches its copy
        t0 = time.perf_counter()
        per_image_predict_scores(model, paths[:1], **kw)
        cold_src = time.perf_counter() - t0
        t0 = time.perf_counter()
        predict_pool(model, paths[:1], batch=args.batch, workers=args.workers, progress=False, **kw)
        cold_lab = time.perf_counter() - t0
        predict_pool(model, paths[:args.batch], batch=args.batch, workers=args.workers, progress=False, **kw)
        load0 = _load()
        t_lab, t_src = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            src = per_image_predict_scores(model, paths, **kw)
            t_src.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            preds = predict_pool(model, paths, batch=args.batch, workers=args.workers, progress=False, **kw)
            t_lab.append(time.perf_counter() - t0)
        load1 = _load()
        # same answer for the source's score: 1 - max conf (1 without boxes)
        ours = [1 - p.max() if p.size else 1.0 for p in preds.probs]
        agree = max(abs(a - b) for a, b in zip(ours, src))
    lab, srcm = statistics.median(t_lab), statistics.median(t_src)
    print(f"pool scoring: {args.n} images at {imgsz} px, YOLOv8n, {args.threads} torch threads, "
          f"{args.runs} alternating runs ({load0} before, {load1} after)")
    print(f"  source, one model.predict per image : {args.n / srcm:8.1f} images/s median, "
          f"{args.n / min(t_src):8.1f} best  (first call {cold_src:.2f} s)")
    print(f"  labkit predict_pool, batch {args.batch:<3d}       : {args.n / lab:8.1f} images/s median, "
          f"{args.n / min(t_lab):8.1f} best  (first call {cold_lab:.2f} s)  [+ full class vectors + embeddings]")
    print(f"  speed-up labkit / source            : {srcm / lab:8.2f}x median, {min(t_src) / min(t_lab):8.2f}x best"
          f"   (target >= 3x)")
    print(f"  max |difference| of the source's 1 - max(conf) score: {agree:.2e}")
    return {"imgsz": imgsz, "source": args.n / srcm, "labkit": args.n / lab, "ratio": srcm / lab}


if __name__ == "__main__":
    main()
