"""Conversion throughput: labkit.data.bkai.convert vs the seed notebook's approach, on the same synthetic VinText set.

The seed (``000_*``, "BKAI 2") converts each image serially: ``cv2.imread`` + ``PIL.Image.verify`` to check it,
``cv2.imread`` again for its size (two full decodes), ``line.split(',')`` and ``map(int, …)`` per label line,
boxes partly outside the image dropped, then the image copied and the label written. labkit reads the size from
the file header (EXIF-aware), parses robustly, clips, reports, and runs in a thread pool.

    .venv/bin/python benchmarks/bench_bkai_convert.py [--n 150] [--size 1280 720] [--repeat 3] [--warmup 1]

Both sides write to fresh folders in the same process. Each gets the same ``--warmup`` untimed runs (page cache,
imports) and ``--repeat`` timed runs, taken in turn (``benchmarks/_common.py``, ``interleaved``); the best run of
each is reported and saved with machine info to ``runs/bench/bench_bkai_convert-<time>.json``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, save  # noqa: E402


def seed_convert(images_folder, labels_folder, output_images_folder, output_labels_folder) -> int:
    """The seed notebook's ``process_labels_and_images`` (BKAI 2 / VinText), kept as written (minus prints)."""
    import cv2
    from PIL import Image

    def is_bbox_valid(bbox, w, h):
        xs, ys = bbox[0::2], bbox[1::2]
        return 0 <= min(xs) < max(xs) <= w and 0 <= min(ys) < max(ys) <= h

    def convert_bbox_to_yolo(bbox, w, h):
        xs, ys = bbox[0::2], bbox[1::2]
        x_min, x_max, y_min, y_max = min(xs), max(xs), min(ys), max(ys)
        return (x_min + x_max) / 2.0 / w, (y_min + y_max) / 2.0 / h, (x_max - x_min) / w, (y_max - y_min) / h

    def is_image_valid(path):
        try:
            img = cv2.imread(path)
            if img is None:
                raise ValueError("Image could not be read with OpenCV")
            Image.open(path).verify()
            return True
        except Exception:
            return False

    os.makedirs(output_images_folder, exist_ok=True)
    os.makedirs(output_labels_folder, exist_ok=True)
    kept = 0
    for image_name in os.listdir(images_folder):
        if not image_name.endswith(".jpg"):
            continue
        image_id = str(int(image_name.split(".")[0].replace("im", "")))
        label_file = os.path.join(labels_folder, f"gt_{image_id}.txt")
        if not os.path.exists(label_file):
            continue
        image_path = os.path.join(images_folder, image_name)
        if not is_image_valid(image_path):
            continue
        img = cv2.imread(image_path)
        img_height, img_width = img.shape[:2]
        yolo_labels = []
        for line in open(label_file, "r", encoding="utf-8"):
            parts = line.strip().split(",")
            bbox = list(map(int, parts[:8]))
            _ = parts[8]
            if is_bbox_valid(bbox, img_width, img_height):
                x, y, w, h = convert_bbox_to_yolo(bbox, img_width, img_height)
                yolo_labels.append(f"0 {x} {y} {w} {h}")
        if not yolo_labels:
            continue
        shutil.copy(image_path, os.path.join(output_images_folder, f"{image_id}.jpg"))
        with open(os.path.join(output_labels_folder, f"{image_id}.txt"), "w") as f:
            f.write("\n".join(yolo_labels))
        kept += len(yolo_labels)
    return kept


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=80, help="training images in the synthetic set")
    ap.add_argument("--size", type=int, nargs=2, default=(1280, 720), help="image width height (VinText photos are large)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per side (the best is reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per side before timing")
    ap.add_argument("--workers", type=int, default=None, help="labkit threads (default: min(8, 2*cpus))")
    ap.add_argument("--no-save", action="store_true", help="do not write runs/bench/bench_bkai_convert-*.json")
    args = ap.parse_args(argv)

    from labkit.data.bkai import convert
    from labkit.data.synthetic_text import make_vintext

    tmp = Path(tempfile.mkdtemp(prefix="bench-bkai-"))
    try:
        w, h = args.size
        t0 = time.perf_counter()
        ds = make_vintext(tmp / "src", n_train=args.n, n_val=0, n_test=0, size=(w, h),
                          font_px=(h // 20, h // 8), max_words=8, seed=0)
        print(f"synthetic VinText: {args.n} images {w}x{h}, {ds.n_boxes} boxes (generated in {time.perf_counter() - t0:.1f} s)")
        images, labels = ds.images_dir("train"), ds.labels_dir
        run = itertools.count()  # every call writes to a folder of its own

        def seed_side():
            r = next(run)
            return seed_convert(str(images), str(labels), str(tmp / f"seed{r}/images"), str(tmp / f"seed{r}/labels"))

        def labkit_side():
            return convert({"train": images}, labels, tmp / f"labkit{next(run)}", workers=args.workers)

        res = interleaved({"seed": seed_side, "labkit": labkit_side}, repeat=args.repeat, warmup=args.warmup)
        s, lk = res["seed"]["best"], res["labkit"]["best"]
        kept_seed, rep = res["seed"]["out"], res["labkit"]["out"]
        print(f"every side: warm-up {args.warmup}, best of {args.repeat} runs taken in turn")
        print(f"seed approach (cv2 decode x2 + PIL verify, serial): {s:.3f} s  {args.n / s:8.1f} img/s  boxes kept {kept_seed}")
        print(f"labkit.data.bkai.convert (header size, threads):     {lk:.3f} s  {args.n / lk:8.1f} img/s  boxes kept "
              f"{rep.totals['kept']} ({rep.totals['clipped']} clipped instead of dropped)")
        print(f"speed-up: {s / lk:.1f}x (target >= 5x)")
        if not args.no_save:
            path = save("bench_bkai_convert", {k: v for k, v in vars(args).items() if k != "no_save"},
                        {"seconds": {k: r["times"] for k, r in res.items()}, "best_s": {"seed": s, "labkit": lk},
                         "speed_up": s / lk, "boxes_kept": {"seed": kept_seed, "labkit": rep.totals["kept"]},
                         "boxes_clipped_labkit": rep.totals["clipped"]}, packages=("opencv-python", "pillow"))
            print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
