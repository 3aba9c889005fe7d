"""Benchmark: pool scoring throughput, labkit's batched scorer vs the source's one-predict-per-image loop.

Same model (YOLOv8n from its yaml, random weights, no download), same images (synthetic shapes), same
input size, NMS settings and torch threads. The source calls ``model.predict(source=path)`` for every unlabelled
image and reads ``results[0].boxes.conf``; labkit's :func:`labkit.active.scoring.predict_pool` letterboxes batches
into a channels-last tensor (reading the next batch in a thread), runs a fused copy of the network once per batch,
and keeps each box's full class vector plus a pooled embedding. Both sides are warmed up first: Ultralytics keeps
its predictor (fused model) on the ``YOLO`` object between calls, labkit keeps its fused copy in a cache that
is checked against the weights; the cold first call of each is printed too. Runs alternate (source, labkit,
source, ...) so load changes hit both; the median and the best run of each side are reported.

Threads: Ultralytics' first CPU ``predict`` (its ``select_device``) calls ``torch.set_num_threads(cpu_count - 1)``,
i.e. **1** on a 2-core machine, and leaves it there. The benchmark sets the thread count again before every timed
run, so both sides use the same ``--threads`` (checked after each run); by default it times 1 thread (what
Ultralytics picks by itself on 2 cores) and 2 threads (both cores), and prints every ratio side by side.
Two torch threads on 2 cores collapse when another process is busy on the machine (each parallel region waits
for the descheduled thread): compare the load averages printed with each block.

    python benchmarks/bench_active_scoring.py                  # 256 images at 96 and 128 px, 1 and 2 threads
    python benchmarks/bench_active_scoring.py --imgsz 320 --threads 2 --batch 32
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
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads (both sides)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="labkit's image-reading threads")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--conf", type=float, default=0.01)
    args = ap.parse_args()

    import torch

    import labkit
    from labkit.active.scoring import per_image_predict_scores, predict_pool
    from labkit.data.synthetic import make_shapes

    labkit.env.configure_offline()
    from ultralytics import YOLO

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for imgsz in args.imgsz:
            ds = make_shapes(root=os.path.join(tmp, f"shapes{imgsz}"), n_train=args.n, n_val=1, imgsz=imgsz, seed=0)
            paths = [str(p) for p in ds.images("train")]
            torch.manual_seed(0)
            model = YOLO("yolov8n.yaml")
            kw = dict(imgsz=imgsz, conf=args.conf)
            # cold calls: Ultralytics sets up its predictor (and resets torch's threads), labkit fuses and caches
            t0 = time.perf_counter()
            per_image_predict_scores(model, paths[:1], **kw)
            cold_src = time.perf_counter() - t0
            t0 = time.perf_counter()
            predict_pool(model, paths[:1], batch=args.batch, workers=args.workers, progress=False, **kw)
            cold_lab = time.perf_counter() - t0
            print(f"{imgsz} px: first calls (set-up): source {cold_src:.2f} s, labkit {cold_lab:.2f} s; "
                  f"Ultralytics left torch at {torch.get_num_threads()} thread(s)")
            for threads in args.threads:
                rows.append(bench(args, imgsz, threads, paths, model, kw, predict_pool, per_image_predict_scores,
                                  torch))
    print(f"\nsummary: {args.n} images, YOLOv8n, batch {args.batch}, medians of {args.runs} alternating runs "
          f"(best runs in brackets)")
    print(f"  {'size':>6} {'threads':>7} {'source img/s':>14} {'labkit img/s':>14} {'labkit/source':>15}   load")
    for r in rows:
        print(f"  {r['imgsz']:>4}px {r['threads']:>7d} {r['source']:>8.1f} [{r['source_best']:>3.0f}] "
              f"{r['labkit']:>8.1f} [{r['labkit_best']:>3.0f}] {r['ratio']:>8.2f}x [{r['ratio_best']:.2f}x]   "
              f"{r['load']}")
    print("  target: >= 3x on 2 CPU cores")


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def bench(args, imgsz, threads, paths, model, kw, predict_pool, per_image_predict_scores, torch) -> dict:
    """Time both scorers at one input size and thread count (alternating runs); returns images/s and ratios."""
    n = len(paths)

    def timed(fn):
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if torch.get_num_threads() != threads:
            raise RuntimeError(f"torch threads changed during a timed run ({torch.get_num_threads()} != {threads})")
        return out, dt

    timed(lambda: predict_pool(model, paths[:args.batch], batch=args.batch, workers=args.workers, progress=False,
                               **kw))  # warm at this thread count
    load0 = _load()
    t_lab, t_src = [], []
    for _ in range(args.runs):
        src, dt = timed(lambda: per_image_predict_scores(model, paths, **kw))
        t_src.append(dt)
        preds, dt = timed(lambda: predict_pool(model, paths, batch=args.batch, workers=args.workers, progress=False,
                                               **kw))
        t_lab.append(dt)
    # same answer for the source's score: 1 - max conf (1 without boxes)
    ours = [1 - p.max() if p.size else 1.0 for p in preds.probs]
    agree = max(abs(a - b) for a, b in zip(ours, src))
    lab, srcm = statistics.median(t_lab), statistics.median(t_src)
    row = {"imgsz": imgsz, "threads": threads, "source": n / srcm, "labkit": n / lab, "ratio": srcm / lab,
           "source_best": n / min(t_src), "labkit_best": n / min(t_lab), "ratio_best": min(t_src) / min(t_lab),
           "load": f"{load0} -> {_load()}"}
    print(f"{imgsz} px, {threads} thread(s): source {row['source']:.1f} img/s, labkit {row['labkit']:.1f} img/s "
          f"[+ full class vectors + embeddings] -> {row['ratio']:.2f}x (best runs {row['ratio_best']:.2f}x); "
          f"max |difference| of the source's 1 - max(conf) score {agree:.1e}; load average {row['load']}")
    return row


if __name__ == "__main__":
    main()
