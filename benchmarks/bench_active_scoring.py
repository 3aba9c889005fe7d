"""Benchmark: pool scoring throughput, labkit's batched scorer vs the source's one-predict-per-image loop.

Same model, same images (synthetic shapes), same input size, NMS settings and torch threads. The model is a
YOLOv8n (from its yaml, no download) trained for a few epochs on separate synthetic images, like notebook 07's
starting model, so that both scorers keep real boxes at ``conf=0.01`` and NMS does real work (a randomly
initialised head predicts nothing above 1e-4: every score would be 1 and the comparison empty); ``--weights``
uses your own checkpoint instead. The source calls ``model.predict(source=path)`` for every unlabelled
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
for the descheduled thread): the source's batch-1 forward passes, many tiny parallel regions, drop 10-20x; big
batches suffer much less. Compare the load averages printed with each row; the last lines compare each side at
its own fastest thread count.

Where the gain comes from: the source pays Ultralytics' per-call set-up (loading, pre/post-processing, ``Results``)
once per image, which at the course's 96-128 px costs more than the network itself. At large inputs the network
dominates and both sides converge: measured here at 2 threads, 320 px about 1.6x, 640 px about 0.9-1.0x
(``--imgsz 320 640 --n 64``). On a CPU labkit caps each pass at ``CPU_BATCH_PIXELS`` (1 image at 640 px), since
big batches of big images run slower per image there.

    python benchmarks/bench_active_scoring.py                  # 256 images at 96 and 128 px, 1 and 2 threads
    python benchmarks/bench_active_scoring.py --imgsz 320 --threads 2 --batch 32
    python benchmarks/bench_active_scoring.py --weights runs/.../weights/last.pt
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
    ap.add_argument("--weights", default=None, help="a trained checkpoint (default: train one on synthetic shapes)")
    ap.add_argument("--train-epochs", type=int, default=10, help="epochs of the default model's training")
    args = ap.parse_args()

    import torch

    import labkit
    from labkit.active.scoring import per_image_predict_scores, predict_pool
    from labkit.data.synthetic import make_shapes

    labkit.env.configure_offline()
    from ultralytics import YOLO

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or train_model(tmp, args.train_epochs, min(args.imgsz))
        for imgsz in args.imgsz:
            ds = make_shapes(root=os.path.join(tmp, f"shapes{imgsz}"), n_train=args.n, n_val=1, imgsz=imgsz, seed=0)
            paths = [str(p) for p in ds.images("train")]
            model = YOLO(weights)
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
    for imgsz in args.imgsz:
        rs = [r for r in rows if r["imgsz"] == imgsz]
        bs, bl = max(rs, key=lambda r: r["source"]), max(rs, key=lambda r: r["labkit"])
        print(f"  {imgsz:>4}px each side at its fastest thread count: source {bs['source']:.1f} img/s "
              f"({bs['threads']} thread(s)), labkit {bl['labkit']:.1f} img/s ({bl['threads']} thread(s)) -> "
              f"{bl['labkit'] / bs['source']:.2f}x")
    print("  target: >= 3x on 2 CPU cores")


def train_model(tmp: str, epochs: int, imgsz: int) -> str:
    """A YOLOv8n trained briefly on 64 synthetic images (not the benchmark's pool), as notebook 07 makes its
    starting model; returns the weights' path."""
    from labkit.active import LoopConfig, train_once
    from labkit.data.synthetic import make_shapes

    t0 = time.perf_counter()
    ds = make_shapes(root=os.path.join(tmp, "train_set"), n_train=64, n_val=16, imgsz=imgsz, n_classes=3,
                     max_objects=3, min_size=0.25, max_size=0.6, seed=100)
    cfg = LoopConfig(model="yolov8n.yaml", imgsz=imgsz, batch=8, workers=0,
                     train_kwargs={"optimizer": "AdamW", "lr0": 0.003, "nbs": 8, "warmup_epochs": 0, "mosaic": 0.0})
    res = train_once(os.path.join(tmp, "model"), [str(p) for p in ds.images("train")],
                     [str(p) for p in ds.images("val")], list(ds.classes), cfg, epochs=epochs)
    print(f"model: YOLOv8n trained {epochs} epochs on 64 synthetic images at {imgsz} px in "
          f"{time.perf_counter() - t0:.0f} s (val mAP50 {res['map50']:.2f})")
    return res["weights"]


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
    kept = sum(len(b) for b in preds.boxes) / n
    lab, srcm = statistics.median(t_lab), statistics.median(t_src)
    row = {"imgsz": imgsz, "threads": threads, "source": n / srcm, "labkit": n / lab, "ratio": srcm / lab,
           "source_best": n / min(t_src), "labkit_best": n / min(t_lab), "ratio_best": min(t_src) / min(t_lab),
           "load": f"{load0} -> {_load()}"}
    print(f"{imgsz} px, {threads} thread(s): source {row['source']:.1f} img/s, labkit {row['labkit']:.1f} img/s "
          f"[+ full class vectors + embeddings] -> {row['ratio']:.2f}x (best runs {row['ratio_best']:.2f}x); "
          f"max |difference| of the source's 1 - max(conf) score {agree:.1e}; {kept:.1f} boxes kept per image; "
          f"load average {row['load']}")
    return row


if __name__ == "__main__":
    main()
