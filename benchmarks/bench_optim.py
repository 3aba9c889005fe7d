"""Time labkit.optim (NumPy) against keras.optimizers on the same update, side by side.

    python benchmarks/bench_optim.py [--size 100000] [--steps 200]

Prints seconds per step for each optimizer and the ratio Keras / labkit, plus the max relative
difference of the final parameters (float32-rounded hyperparameters, float64 variables).
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from labkit import optim as O


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=200)
    a = ap.parse_args()
    keras = O.import_keras()
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(a.steps, a.size))
    theta0 = rng.normal(size=a.size)
    print(f"{'optimizer':10s} {'labkit s/step':>14s} {'keras s/step':>13s} {'keras/labkit':>13s} {'max rel diff':>13s}")
    for opt in [O.SGD(0.1), O.Momentum(0.05), O.Nesterov(0.05), O.AdaGrad(0.1), O.RMSProp(0.01), O.Adam(0.01),
                O.AdamW(0.01)]:
        opt = O.with_float32_hparams(opt)
        ours = theta0.copy()
        t = time.perf_counter()
        for g in grads:
            ours = opt.step(ours, g)
        t_ours = (time.perf_counter() - t) / a.steps
        keras.config.set_floatx("float64")
        kopt = O.keras_optimizer(opt)
        var = keras.Variable(theta0.copy(), dtype="float64")
        kopt.build([var])
        tg = [keras.ops.convert_to_tensor(g) for g in grads]
        t = time.perf_counter()
        for g in tg:
            kopt.apply([g], [var])
        t_keras = (time.perf_counter() - t) / a.steps
        keras.config.set_floatx("float32")
        err = O.relative_error(ours, var.numpy())
        print(f"{opt.name:10s} {t_ours:14.2e} {t_keras:13.2e} {t_keras / t_ours:13.2f} {err:13.1e}")


if __name__ == "__main__":
    main()
