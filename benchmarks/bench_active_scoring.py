"""Benchmark: pool scoring throughput, labkit's batched scorer vs the source's one-predict-per-image loop.

Same model (YOLOv8n from its yaml, random weights, no download), same images (synthetic shapes), same
input size and NMS settings. The source calls ``model.predict(source=path)`` for every unlabelled image and
reads ``results[0].boxes.conf``; labkit's :func:`labkit.active.scoring.predict_pool` letterboxes batches
(reading the next batch in a thread), runs the fused network once per batch, and keeps each box's full class
vector plus a pooled embedding. Runs alternate (labkit, source, labkit, ...) so load changes hit both.

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
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--conf", type=float, default=0.01)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import labkit
    from labkit.active.scoring import per_image_predict_scores, predict_pool
    from labkit.data.synthetic import make_shapes

    labkit.env.configure_offline()
    from ultralytics import YOLO

    for imgsz in args.imgsz:
        bench(args, imgsz, predict_pool, per_image_predict_scores, make_shapes, YOLO, torch)


def bench(args, imgsz, predict_pool, per_image_predict_scores, make_shapes, YOLO, torch) -> float:
    """Time both scorers at one input size; prints images/s and the ratio, returns the ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = make_shapes(root=os.path.join(tmp, "shapes"), n_train=args.n, n_val=1, imgsz=imgsz, seed=0)
        paths = [str(p) for p in ds.images("train")]
        torch.manual_seed(0)
        model = YOLO("yolov8n.yaml")
        # warm-up both (predictor set-up, first-call allocations)
        predict_pool(model, paths[:8], imgsz=imgsz, batch=args.batch, conf=args.conf, progress=False)
        per_image_predict_scores(model, paths[:2], imgsz=imgsz, conf=args.conf)
        t_lab, t_src = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            preds = predict_pool(model, paths, imgsz=imgsz, batch=args.batch, conf=args.conf, progress=False)
            t_lab.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            src = per_image_predict_scores(model, paths, imgsz=imgsz, conf=args.conf)
            t_src.append(time.perf_counter() - t0)
        # same answer for the source's score: 1 - max conf (1 without boxes)
        ours = [1 - p.max() if p.size else 1.0 for p in preds.probs]
        agree = max(abs(a - b) for a, b in zip(ours, src))
    lab, srcm = statistics.median(t_lab), statistics.median(t_src)
    print(f"pool scoring: {args.n} images at {imgsz} px, YOLOv8n, {args.threads} threads, "
          f"median of {args.runs} runs")
    print(f"  source, one model.predict per image : {args.n / srcm:8.1f} images/s  ({srcm:.2f} s)")
    print(f"  labkit predict_pool, batch {args.batch:<3d}       : {args.n / lab:8.1f} images/s  ({lab:.2f} s)"
          f"  [+ full class vectors + embeddings]")
    print(f"  speed-up labkit / source            : {srcm / lab:8.2f}x   (target >= 3x)")
    print(f"  max |difference| of the source's 1 - max(conf) score: {agree:.2e}")
    return srcm / lab


if __name__ == "__main__":
    main()
