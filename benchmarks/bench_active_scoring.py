"""Benchmark: pool scoring throughput, labkit's batched scorer vs Ultralytics' batched ``predict`` vs the source's loop.

Three sides score the same pool images (synthetic shapes) with the same weights, input size, NMS settings
(``conf``, ``iou``, ``max_det``) and torch threads, and each returns the source's uncertainty score
``1 - max(conf)`` per image (1 without boxes):

* **per-image loop** (the source): one ``model.predict(source=path)`` per unlabelled image, reading
  ``results[0].boxes.conf``;
* **Ultralytics batched**: one ``model.predict(source=<list.txt>, batch=B, stream=True)`` over the whole pool, the
  way Ultralytics itself batches files (a ``.txt`` of paths goes to its ``LoadImagesAndVideos`` loader, which reads
  ``B`` images per step; a Python list of paths would be decoded into one in-memory batch);
* **labkit**: :func:`labkit.active.scoring.predict_pool`, which letterboxes batches into a channels-last tensor
  (reading the next batch in a thread), runs a fused copy of the network once per batch, and keeps each box's full
  class vector plus a pooled embedding.

Both batched sides use the same batch ``B``: ``--batch`` capped as labkit caps it on a CPU
(:func:`labkit.active.scoring.cpu_batch`, ``CPU_BATCH_PIXELS``). Each side has its own ``YOLO`` object loaded from
the same weights file, so each keeps its own predictor or fused copy; the cold first call of each is printed.
Every side then gets the same ``--warmup`` untimed runs and ``--runs`` timed runs over the whole pool, in turn
(per-image, batched, labkit, per-image, ...) so that load changes hit all three (``benchmarks/_common.py``,
``interleaved``); the median and the best run of each side are reported, and the results are saved with machine
info to ``runs/bench/bench_active_scoring-<time>.json``.

The model is a YOLOv8n (from its yaml, no download) trained for a few epochs on separate synthetic images, like
notebook 07's starting model, so that every side keeps real boxes at ``conf=0.01`` and NMS does real work (a
randomly initialised head predicts nothing above 1e-4: every score would be 1 and the comparison empty);
``--weights`` uses your own checkpoint instead.

Threads: Ultralytics' first CPU ``predict`` (its ``select_device``) calls ``torch.set_num_threads(cpu_count - 1)``,
i.e. **1** on a 2-core machine, and leaves it there. The benchmark sets the thread count again before every run,
so all sides use the same ``--threads`` (checked after each run); by default it times 1 thread (what Ultralytics
picks by itself on 2 cores) and 2 threads (both cores). Two torch threads on 2 cores collapse when another process
is busy on the machine (each parallel region waits for the descheduled thread); compare the load averages printed
with each row.

Where the gain over the loop comes from: the loop pays Ultralytics' per-call set-up (loading, pre/post-processing,
``Results``) once per image, which at the course's 96-128 px costs more than the network itself; Ultralytics'
batched ``predict`` pays it once per batch. At large inputs the network dominates and the sides converge (run
``--imgsz 320 640`` to see it on your machine).

    python benchmarks/bench_active_scoring.py                  # 256 images at 96 and 128 px, 1 and 2 threads
    python benchmarks/bench_active_scoring.py --imgsz 320 --threads 2 --batch 32
    python benchmarks/bench_active_scoring.py --weights runs/.../weights/last.pt
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, save  # noqa: E402

SIDES = ("per-image", "batched", "labkit")
LABELS = {"per-image": "per-image loop", "batched": "Ultralytics batched", "labkit": "labkit"}


def per_image_scores(model, paths, imgsz, conf, iou, max_det) -> np.ndarray:
    """The source's loop: one ``model.predict`` call per image, score ``1 - max(conf)`` (1 without boxes)."""
    out = []
    for p in paths:
        r = model.predict(source=str(p), imgsz=imgsz, conf=conf, iou=iou, max_det=max_det, device="cpu",
                          verbose=False, save=False)
        c = r[0].boxes.conf
        out.append(1.0 - float(c.max()) if c.numel() > 0 else 1.0)
    return np.asarray(out)


def batched_scores(model, list_file, paths, imgsz, conf, iou, max_det, batch) -> np.ndarray:
    """Ultralytics' own batching: ``predict`` over a ``.txt`` of image paths, ``batch`` images per step, streamed;
    the same ``1 - max(conf)`` score, returned in the order of ``paths`` (Ultralytics sorts a list file)."""
    scores = {}
    for r in model.predict(source=str(list_file), batch=batch, stream=True, imgsz=imgsz, conf=conf, iou=iou,
                           max_det=max_det, device="cpu", verbose=False, save=False):
        c = r.boxes.conf
        scores[os.path.abspath(r.path)] = 1.0 - float(c.max()) if c.numel() > 0 else 1.0
    return np.asarray([scores[os.path.abspath(p)] for p in paths])


def write_list(path, paths) -> str:
    """A ``.txt`` with one absolute image path per line (Ultralytics' file-list source)."""
    Path(path).write_text("".join(os.path.abspath(p) + "\n" for p in paths))
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="pool images")
    ap.add_argument("--imgsz", type=int, nargs="+", default=[96, 128], help="input sizes to time")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads (every side)")
    ap.add_argument("--batch", type=int, default=32, help="images per batch, both batched sides (capped on CPU)")
    ap.add_argument("--workers", type=int, default=None,
                    help="labkit's image-reading threads (default: labkit's own, 0 on the CPU)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per side before timing")
    ap.add_argument("--conf", type=float, default=0.01)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--max-det", type=int, default=100)
    ap.add_argument("--weights", default=None, help="a trained checkpoint (default: train one on synthetic shapes)")
    ap.add_argument("--train-epochs", type=int, default=10, help="epochs of the default model's training")
    ap.add_argument("--no-save", action="store_true", help="do not write runs/bench/bench_active_scoring-*.json")
    args = ap.parse_args()

    import torch

    import labkit
    from labkit.active.scoring import cpu_batch, predict_pool
    from labkit.data.synthetic import make_shapes

    labkit.env.configure_offline()
    from ultralytics import YOLO

    rows, cold = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or train_model(tmp, args.train_epochs, min(args.imgsz))
        for imgsz in args.imgsz:
            ds = make_shapes(root=os.path.join(tmp, f"shapes{imgsz}"), n_train=args.n, n_val=1, imgsz=imgsz, seed=0)
            paths = [str(p) for p in ds.images("train")]
            batch = cpu_batch(args.batch, imgsz)
            models = {side: YOLO(weights) for side in SIDES}  # one predictor / fused copy per side, same weights
            kw = dict(imgsz=imgsz, conf=args.conf, iou=args.iou, max_det=args.max_det)
            lists = {k: write_list(os.path.join(tmp, f"{k}{imgsz}.txt"), ps) for k, ps in
                     (("one", paths[:1]), ("pool", paths))}
            fns = {"per-image": lambda ps, lst: per_image_scores(models["per-image"], ps, **kw),
                   "batched": lambda ps, lst: batched_scores(models["batched"], lst, ps, batch=batch, **kw),
                   "labkit": lambda ps, lst: predict_pool(models["labkit"], ps, batch=batch, workers=args.workers,
                                                          progress=False, **kw)}
            # cold calls: Ultralytics sets up each predictor (and resets torch's threads), labkit fuses and caches
            cold[imgsz] = {}
            for side, fn in fns.items():
                t0 = time.perf_counter()
                fn(paths[:1], lists["one"])
                cold[imgsz][side] = time.perf_counter() - t0
            print(f"{imgsz} px: first calls (set-up): " + ", ".join(f"{LABELS[s]} {t:.2f} s" for s, t in
                  cold[imgsz].items()) + f"; Ultralytics left torch at {torch.get_num_threads()} thread(s)")
            for threads in args.threads:
                rows.append(bench(args, imgsz, threads, batch, paths, lists["pool"], fns, torch))
    print(f"\nsummary: {args.n} images, YOLOv8n, batch {args.batch} (capped on CPU), warm-up {args.warmup}, "
          f"medians of {args.runs} runs per side taken in turn (best runs in brackets), images/s")
    print(f"  {'size':>6} {'threads':>7} {'per-image':>14} {'UL batched':>14} {'labkit':>14} "
          f"{'labkit/loop':>14} {'labkit/batched':>15} {'batched/loop':>14}   load")
    for r in rows:
        ips = "".join(f" {r[s]['img_s']:>8.1f} [{r[s]['img_s_best']:>3.0f}]" for s in SIDES)
        rat = "".join(f" {r['ratios'][k]:>8.2f}x [{r['ratios_best'][k]:.2f}x]" for k in
                      ("labkit/per-image", "labkit/batched", "batched/per-image"))
        print(f"  {r['imgsz']:>4}px {r['threads']:>7d}{ips}{rat}   {r['load']}")
    for imgsz in args.imgsz:
        rs = [r for r in rows if r["imgsz"] == imgsz]
        best = {s: max(rs, key=lambda r: r[s]["img_s"]) for s in SIDES}
        print(f"  {imgsz:>4}px each side at its fastest thread count: " + ", ".join(
            f"{LABELS[s]} {best[s][s]['img_s']:.1f} img/s ({best[s]['threads']} thread(s))" for s in SIDES)
            + f" -> labkit/loop {best['labkit']['labkit']['img_s'] / best['per-image']['per-image']['img_s']:.2f}x, "
            f"labkit/batched {best['labkit']['labkit']['img_s'] / best['batched']['batched']['img_s']:.2f}x")
    if not args.no_save:
        settings = {k: v for k, v in vars(args).items() if k != "no_save"}
        settings["model"] = args.weights or f"yolov8n.yaml trained {args.train_epochs} epochs on 64 synthetic images"
        path = save("bench_active_scoring", settings, {"rows": rows, "cold_first_call_s": cold},
                    packages=("torch", "ultralytics"))
        print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")


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


def bench(args, imgsz, threads, batch, paths, pool_list, fns, torch) -> dict:
    """Time the three sides at one input size and thread count (in turn, same warm-up and runs); returns images/s,
    the ratios and how far the sides' ``1 - max(conf)`` scores differ."""
    n = len(paths)

    def checked(fn):
        def call():
            out = fn(paths, pool_list)
            if torch.get_num_threads() != threads:
                raise RuntimeError(f"torch threads changed during a timed run ({torch.get_num_threads()} != {threads})")
            return out
        return call

    load0 = _load()
    res = interleaved({s: checked(fn) for s, fn in fns.items()}, repeat=args.runs, warmup=args.warmup,
                      setup=lambda: (torch.set_num_threads(threads), ())[1])
    preds = res["labkit"]["out"]
    ours = np.asarray([1 - p.max() if p.size else 1.0 for p in preds.probs])
    diff = {s: float(np.abs(ours - res[s]["out"]).max()) for s in ("per-image", "batched")}
    kept = sum(len(b) for b in preds.boxes) / n
    row = {"imgsz": imgsz, "threads": threads, "batch": batch, "load": f"{load0} -> {_load()}",
           "max_abs_score_diff_vs_labkit": diff, "boxes_per_image_labkit": kept}
    for s in SIDES:
        row[s] = {"img_s": n / res[s]["median"], "img_s_best": n / res[s]["best"], "seconds": res[s]["times"]}
    pairs = {"labkit/per-image": ("labkit", "per-image"), "labkit/batched": ("labkit", "batched"),
             "batched/per-image": ("batched", "per-image")}
    row["ratios"] = {k: res[b]["median"] / res[a]["median"] for k, (a, b) in pairs.items()}
    row["ratios_best"] = {k: res[b]["best"] / res[a]["best"] for k, (a, b) in pairs.items()}
    print(f"{imgsz} px, {threads} thread(s), batch {batch}: " + ", ".join(
        f"{LABELS[s]} {row[s]['img_s']:.1f} img/s" for s in SIDES)
        + f" [labkit + full class vectors + embeddings] -> labkit/loop {row['ratios']['labkit/per-image']:.2f}x, "
        f"labkit/batched {row['ratios']['labkit/batched']:.2f}x; max |score difference| vs labkit: per-image "
        f"{diff['per-image']:.1e}, batched {diff['batched']:.1e}; {kept:.1f} boxes kept per image; "
        f"load average {row['load']}")
    return row


if __name__ == "__main__":
    main()
