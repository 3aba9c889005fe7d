"""Images/s of the YOLOv1 input pipeline: labkit's tf.data vs a per-item Python generator like the source's.

Both produce the same (image, 7x7x(B*5+C) target) batches from the same VOC tree, side by side in one
process. The generator (``labkit.yolov1.data.python_generator_batches``) reads, decodes and resizes
each image eagerly and fills the label matrix in a Python loop, every epoch -- what the source
notebook did. The tf.data pipeline decodes and resizes in parallel, caches the resized uint8 images
after the first epoch, augments (affine + HSV) and encodes in the graph, and prefetches.

    python benchmarks/bench_yolov1_pipeline.py                 # synthetic shapes, 2 threads
    python benchmarks/bench_yolov1_pipeline.py --voc-root /kaggle/input/.../VOC2007 --split trainval --n 512
"""
from __future__ import annotations

import argparse
import os
import time


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
            print(f"  {label:<38} epoch {e + 1}: {n / dt:8.1f} images/s ({dt:.2f} s)")
        return rates

    print(f"{n} images, input {args.imgsz}px, batch {args.batch}, {args.threads} threads, "
          f"TensorFlow {tf.__version__}")
    gen = run(lambda: python_generator_batches(voc, args.imgsz, batch_size=args.batch), "python generator (source)")
    plain = make_dataset(voc, args.imgsz, batch_size=args.batch, training=False, cache=True)
    tfd = run(lambda: plain, "tf.data (cache, no augmentation)")
    aug = make_dataset(voc, args.imgsz, batch_size=args.batch, training=True, cache=True)
    tfa = run(lambda: aug, "tf.data (cache + augmentation)")
    g = sum(gen) / len(gen)
    print()
    print(f"python generator            : {g:8.1f} images/s (mean of {args.epochs} epochs)")
    print(f"tf.data first epoch         : {tfd[0]:8.1f} images/s  ({tfd[0] / g:.1f}x)")
    steady = sum(tfd[1:]) / max(1, len(tfd) - 1)
    steady_aug = sum(tfa[1:]) / max(1, len(tfa) - 1)
    print(f"tf.data later epochs        : {steady:8.1f} images/s  ({steady / g:.1f}x)")
    print(f"tf.data + augmentation later: {steady_aug:8.1f} images/s  ({steady_aug / g:.1f}x)  target >= 3x")
    return {"generator": g, "tfdata_first": tfd[0], "tfdata": steady, "tfdata_aug": steady_aug}


if __name__ == "__main__":
    main()
