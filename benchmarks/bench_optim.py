"""Time labkit.optim (NumPy) against keras.optimizers on the same update, side by side.

    python benchmarks/bench_optim.py [--size 100000] [--steps 200] [--repeat 3] [--warmup 1]

Both sides get the same ``--warmup`` untimed passes over all steps (Keras builds its graph functions and
slots on the first calls; NumPy allocates) and the best of the same ``--repeat`` timed passes, each pass from a
fresh optimizer and fresh parameters (``benchmarks/_common.py``). Prints seconds per step for each optimizer
and the ratio Keras / labkit, plus the max relative difference of the final parameters (float32-rounded
hyperparameters, float64 variables), and saves them with machine info to ``runs/bench/bench_optim-<time>.json``.
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save, timed  # noqa: E402

from labkit import optim as O  # noqa: E402

FACTORIES = {"SGD": lambda: O.SGD(0.1), "Momentum": lambda: O.Momentum(0.05), "Nesterov": lambda: O.Nesterov(0.05),
             "AdaGrad": lambda: O.AdaGrad(0.1), "RMSProp": lambda: O.RMSProp(0.01), "Adam": lambda: O.Adam(0.01),
             "AdamW": lambda: O.AdamW(0.01)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timed passes, the same N for both sides")
    ap.add_argument("--warmup", type=int, default=1, help="untimed passes before timing, the same for both sides")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    from labkit.env import import_keras

    keras = import_keras()
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(a.steps, a.size))
    theta0 = rng.normal(size=a.size)
    results = {}
    print(f"every side: warm-up {a.warmup} pass(es), best of {a.repeat}, {a.steps} steps of size {a.size}")
    print(f"{'optimizer':10s} {'labkit s/step':>14s} {'keras s/step':>13s} {'keras/labkit':>13s} {'max rel diff':>13s}")
    for name, make in FACTORIES.items():
        def ours_pass(opt):
            th = theta0.copy()
            for g in grads:
                th = opt.step(th, g)
            return th

        t_ours, ours = timed(ours_pass, repeat=a.repeat, warmup=a.warmup,
                             setup=lambda: (O.with_float32_hparams(make()),))
        keras.config.set_floatx("float64")
        tg = [keras.ops.convert_to_tensor(g) for g in grads]

        def keras_setup():
            kopt = O.keras_optimizer(O.with_float32_hparams(make()))
            var = keras.Variable(theta0.copy(), dtype="float64")
            kopt.build([var])
            return kopt, var

        def keras_pass(kopt, var):
            for g in tg:
                kopt.apply([g], [var])
            return var

        t_keras, var = timed(keras_pass, repeat=a.repeat, warmup=a.warmup, setup=keras_setup)
        keras.config.set_floatx("float32")
        err = O.relative_error(ours, var.numpy())
        t_ours, t_keras = t_ours / a.steps, t_keras / a.steps
        results[name] = {"labkit_s_per_step": t_ours, "keras_s_per_step": t_keras, "max_rel_diff": float(err)}
        print(f"{name:10s} {t_ours:14.2e} {t_keras:13.2e} {t_keras / t_ours:13.2f} {err:13.1e}", flush=True)
    if not a.no_save:
        path = save("bench_optim", vars(a), results, packages=("keras", "tensorflow"))
        print(f"saved {path.relative_to(Path(__file__).resolve().parents[1])}")


if __name__ == "__main__":
    main()
