"""Weight initialization: the variance rules (LeCun, Glorot, He), the lecture's wrong table, Keras initializers.

:data:`INITS` maps a name to its distribution and variance as a function of fan-in and fan-out;
:func:`init_std` and :func:`init_weights` use it in NumPy, :func:`keras_initializer` builds the Keras
initializer of the same name (Keras' own for the standard ones, so the two can be compared).
:data:`LECTURE_TABLE` is the lecture's table, kept to show what it gets wrong; :data:`THEORY_TABLE` the
corrected one.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from labkit.env import import_keras

__all__ = ["INITS", "THEORY_TABLE", "LECTURE_TABLE", "init_std", "init_weights", "keras_initializer"]


#: name → (distribution, variance as a function of fan_in, fan_out).
#: Correct values: Glorot σ² = 2/(n_in+n_out) (uniform limit r = √(6/(n_in+n_out)), since Var U[−r, r] = r²/3),
#: He σ² = 2/n_in, LeCun σ² = 1/n_in. ``glorot_x4`` is Glorot × 4 (the logistic-sigmoid row of the
#: Glorot & Bengio / Theano table). ``lecture_*`` are the lecture's normal-distribution entries,
#: which use the *uniform* constant 6 (variance 3× too large), and ×4 for tanh.
INITS: dict[str, tuple[str, Callable[[int, int], float]]] = {
    "normal_1": ("normal", lambda i, o: 1.0),
    "normal_0.01": ("normal", lambda i, o: 1e-4),
    "lecun_normal": ("normal", lambda i, o: 1.0 / i),
    "glorot_normal": ("normal", lambda i, o: 2.0 / (i + o)),
    "glorot_uniform": ("uniform", lambda i, o: 2.0 / (i + o)),
    "glorot_x4": ("normal", lambda i, o: 16 * 2.0 / (i + o)),
    "he_normal": ("normal", lambda i, o: 2.0 / i),
    "he_uniform": ("uniform", lambda i, o: 2.0 / i),
    "lecture_logistic": ("normal", lambda i, o: 6.0 / (i + o)),
    "lecture_tanh": ("normal", lambda i, o: 16 * 6.0 / (i + o)),
    "lecture_relu": ("normal", lambda i, o: 2 * 6.0 / (i + o)),
}

#: The corrected table (std of the normal, limit r of the uniform), as formulas.
THEORY_TABLE = {
    "logistic (sigmoid)": ("r = 4·√(6/(n_in+n_out))", "σ = 4·√(2/(n_in+n_out))"),
    "tanh": ("r = √(6/(n_in+n_out))", "σ = √(2/(n_in+n_out))"),
    "ReLU (and variants)": ("r = √2·√(6/(n_in+n_out)) (He: √(6/n_in))", "σ = √2·√(2/(n_in+n_out)) (He: √(2/n_in))"),
}
#: What the lecture prints (wrong: 6 under the root for σ, and the ×4 row attached to tanh).
LECTURE_TABLE = {
    "logistyczna": ("r = √(6/(n_in+n_out))", "σ = √(6/(n_in+n_out))"),
    "tang. hiperboliczny": ("r = 4·√(6/(n_in+n_out))", "σ = 4·√(6/(n_in+n_out))"),
    "typu ReLU": ("r = √2·√(6/(n_in+n_out))", "σ = √2·√(6/(n_in+n_out))"),
}


def init_std(kind: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of the weights for initialization ``kind`` (see :data:`INITS`)."""
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}; choose one of {sorted(INITS)}")
    return math.sqrt(INITS[kind][1](fan_in, fan_out))


def init_weights(kind: str, fan_in: int, fan_out: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix. Normal kinds are untruncated; uniform ones use r = √3·σ."""
    rng = np.random.default_rng() if rng is None else rng
    std = init_std(kind, fan_in, fan_out)
    if INITS[kind][0] == "uniform":
        r = math.sqrt(3.0) * std
        return rng.uniform(-r, r, size=(fan_in, fan_out))
    return rng.normal(0.0, std, size=(fan_in, fan_out))


def keras_initializer(kind: str, seed: int | None = None):
    """Keras initializer for an :data:`INITS` name (Keras' own for the standard ones)."""
    keras = import_keras()
    I = keras.initializers
    std_ones = {"lecun_normal": I.LecunNormal, "glorot_normal": I.GlorotNormal, "glorot_uniform": I.GlorotUniform,
                "he_normal": I.HeNormal, "he_uniform": I.HeUniform}
    if kind in std_ones:
        return std_ones[kind](seed=seed)
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}; choose one of {sorted(INITS)}")
    scale = INITS[kind][1](1, 1)  # variance for fan_in = fan_out = 1 … as a VarianceScaling factor:
    if kind.startswith("normal_"):
        return I.RandomNormal(stddev=math.sqrt(scale), seed=seed)
    factor = {"glorot_x4": 16.0, "lecture_logistic": 3.0, "lecture_tanh": 48.0, "lecture_relu": 6.0}[kind]
    return I.VarianceScaling(scale=factor, mode="fan_avg", distribution="untruncated_normal", seed=seed)
