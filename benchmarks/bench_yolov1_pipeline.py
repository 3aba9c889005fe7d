"""Images/s of the YOLOv1 input pipeline: labkit's tf.data vs a per-item Python generator like the source's.

Both produce the same kind of (image, 7x7x(B*5+C) target) batches from the same VOC tree, side by side in
one process, once without and once with the paper's augmentation. The generator
(``labkit.yolov1.data.python_generator_batches``) reads, decodes and resizes each image eagerly and fills
the label matrix in a Python loop, every epoch -- what the source notebook did -- and, with augmentation,
calls the same affine and HSV functions eagerly on each image. The tf.data pipeline decodes and resizes in
parallel, caches the resized uint8 images after the first epoch, augments (affine + HSV) and encodes whole
batches in the graph, and prefetches. Both sides run the same ``--epochs`` over the same images; the generator has
no cache, so all its epochs are averaged, while tf.data's first epoch (which fills its cache) is reported apart from
the later ones. The results are saved with machine info to ``runs/bench/bench_yolov1_pipeline-<time>.json``.

    python benchmarks/bench_yolov1_pipeline.py                 # synthetic shapes, 2 threads
    python benchmarks/bench_yolov1_pipeline.py --voc-root /kaggle/input/.../VOC2007 --split trainval --n 512
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voc-root", default=None, help="a real VOC root; default: synthetic shapes")
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=384, help="images (synthetic: generated; VOC: first n of the split)")
    ap.add_argument("--data-imgsz", type=int, default=320, help="side of the generated synthetic images")
    ap.add_argument("--imgsz", type=int, default=224, help="network input side")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for TensorFlow (the course target: 2)")
    ap.add_argument("--no-save", action="store_true", help="do not write runs/bench/bench_yolov1_pipeline-*.json")
    args = ap.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from labkit.yolov1.data import make_dataset, python_generator_batches
    from labkit.yolov1.voc import read_voc

    if args.voc_root:
        voc = read_voc(args.voc_root, args.split)
        voc.records = voc.records[: args.n]
    else:
        from labkit.data.synthetic import make_shapes
        shapes = make_shapes(n_train=args.n, n_val=8, imgsz=args.data_imgsz, seed=0)
        voc = read_voc(shapes.voc_root, "train")
    n = len(voc.records)

    def run(make_iter, label):
        rates = []
        for e in range(args.epochs):
            t = time.perf_counter()
            seen = 0
            for x, y in make_iter():
                _ = (x.numpy() if hasattr(x, "numpy") else x)[0, 0, 0, 0] + (y.numpy() if hasattr(y, "numpy") else y)[0, 0, 0, 0]
                seen += int(x.shape[0])
            dt = time.perf_counter() - t
            assert seen == n, (seen, n)
            rates.append(n / dt)
            print(f"  {label:<44} epoch {e + 1}: {n / dt:8.1f} images/s ({dt:.2f} s)", flush=True)
        return rates

    from labkit.yolov1.data import xla_available

    print(f"{n} images, input {args.imgsz}px, batch {args.batch}, {args.threads} threads, "
          f"TensorFlow {tf.__version__}, XLA for the HSV step: {xla_available()}")
    rows, epochs = {}, {}
    for aug in (False, True):
        kind = "paper augmentation" if aug else "no augmentation"
        gen = run(lambda: python_generator_batches(voc, args.imgsz, batch_size=args.batch, augment=aug),
                  f"python generator, {kind}")
        ds = make_dataset(voc, args.imgsz, batch_size=args.batch, training=aug, augment=aug, cache=True)
        tfd = run(lambda: ds, f"tf.data, {kind}")
        rows[kind] = (sum(gen) / len(gen), tfd[0], sum(tfd[1:]) / max(1, len(tfd) - 1))
        epochs[kind] = {"python_generator_img_s": gen, "tf_data_img_s": tfd}
    print()
    print("Same batches from both sides (the generator augments each image eagerly with the same functions);")
    print("images/s, the generator averaged over its epochs, tf.data split into the first epoch (decodes and")
    print("fills the cache) and the later ones (served from the cache).")
    print(f"{'':<20} {'python generator':>17} {'tf.data epoch 1':>16} {'tf.data later':>14} {'ratio later':>12} {'ratio epoch 1':>14}")
    for kind, (g, first, later) in rows.items():
        print(f"{kind:<20} {g:>17.1f} {first:>16.1f} {later:>14.1f} {later / g:>11.1f}x {first / g:>13.1f}x")
    g0 = rows["no augmentation"][0]
    print(f"(cross-check: tf.data with augmentation vs the generator without it, later epochs: "
          f"{rows['paper augmentation'][2] / g0:.1f}x)")
    print("target: >= 3x (later epochs)")
    if not args.no_save:
        settings = {k: v for k, v in vars(args).items() if k != "no_save"}
        settings.update(images=n, xla_hsv=bool(xla_available()))
        results = {kind: {"generator_img_s": g, "tf_data_epoch1_img_s": first, "tf_data_later_img_s": later,
                          "ratio_later": later / g, "ratio_epoch1": first / g, "per_epoch": epochs[kind]}
                   for kind, (g, first, later) in rows.items()}
        path = save("bench_yolov1_pipeline", settings, results, packages=("tensorflow",))
        print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")
    return rows


if __name__ == "__main__":
    main()
