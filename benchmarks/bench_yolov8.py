"""Benchmark: CPU forward latency of labkit's YOLOv8 vs Ultralytics' for the same weights and input.

For each scale, Ultralytics builds ``yolov8{scale}.yaml`` (random weights, no download), labkit copies
the weights (``labkit.yolov8.from_ultralytics``), both run in eval mode under ``torch.inference_mode``
on the same input, with the same ``--warmup`` untimed and ``--runs`` timed calls taken in turn (labkit, Ultralytics,
labkit, ...) so load changes hit both equally (``benchmarks/_common.py``, ``interleaved``). Prints the median times, the ratio labkit/Ultralytics (expect ~1.0x: the same convolutions in the same
order) and the largest difference of the decoded outputs. On a shared machine prefer the "min ratio"
(fastest run of each), which other programs disturb least. Saves the results with machine info to
``runs/bench/bench_yolov8-<time>.json``.

    python benchmarks/bench_yolov8.py                     # n and s at 640, 2 threads
    python benchmarks/bench_yolov8.py --scales nsmlx --imgsz 320 --runs 5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, save  # noqa: E402


def bench(scale: str, imgsz: int, runs: int, warmup: int, batch: int) -> dict:
    from ultralytics.nn.tasks import DetectionModel

    from labkit.yolov8 import from_ultralytics, ultralytics_head_outputs

    theirs = DetectionModel(f"yolov8{scale}.yaml", verbose=False).eval()
    ours = from_ultralytics(theirs).eval()
    x = torch.rand(batch, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        diff = (ultralytics_head_outputs(theirs(x), nc=80)["decoded"] - ours(x)[0]).abs().max().item()
        res = interleaved({"labkit": lambda: ours(x), "ultralytics": lambda: theirs(x)}, repeat=runs, warmup=warmup)
    mo, mt = res["labkit"]["median"] * 1000, res["ultralytics"]["median"] * 1000
    return {"scale": scale, "labkit_ms": mo, "ultralytics_ms": mt, "ratio": mo / mt,
            "min_ratio": res["labkit"]["best"] / res["ultralytics"]["best"], "max_abs_diff": diff,
            "seconds": {k: r["times"] for k, r in res.items()}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", default="ns", help="scales to run, e.g. nsmlx")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-save", action="store_true", help="do not write runs/bench/bench_yolov8-*.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import ultralytics

    print(f"torch {torch.__version__}, ultralytics {ultralytics.__version__}, {args.threads} threads, "
          f"batch {args.batch}, {args.imgsz}x{args.imgsz}, median of {args.runs} (after {args.warmup} warm-up)")
    print("ratio = labkit / ultralytics of the medians; min ratio = of the fastest runs (least disturbed by load)")
    print(f"{'scale':>5} {'labkit ms':>10} {'ultralytics ms':>15} {'ratio':>7} {'min ratio':>10} {'max|diff| decoded':>18}")
    rows = []
    for s in args.scales:
        r = bench(s, args.imgsz, args.runs, args.warmup, args.batch)
        rows.append(r)
        print(f"{r['scale']:>5} {r['labkit_ms']:>10.1f} {r['ultralytics_ms']:>15.1f} {r['ratio']:>6.2f}x "
              f"{r['min_ratio']:>9.2f}x {r['max_abs_diff']:>18.2e}")
    if not args.no_save:
        path = save("bench_yolov8", {k: v for k, v in vars(args).items() if k != "no_save"}, {"rows": rows},
                    packages=("torch", "ultralytics"))
        print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")


if __name__ == "__main__":
    main()
