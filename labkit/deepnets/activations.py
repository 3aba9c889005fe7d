"""Activation functions and their derivatives in NumPy, and the matching Keras layers (notebook 02).

:data:`ACTIVATIONS` maps a name to ``(f, f')``; :func:`activation` and :func:`activation_grad` apply them.
:func:`activation_layer` builds the Keras layer of the same name (RReLU as a small custom layer).
``tests/test_deepnets.py`` checks every function and derivative against ``keras.activations`` and
``tf.GradientTape``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from labkit.env import import_keras

__all__ = ["ACTIVATIONS", "SELU_ALPHA", "SELU_SCALE", "activation", "activation_grad", "activation_layer"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # numerically stable logistic


def _phi(z):  # standard normal pdf
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z):  # standard normal cdf
    from scipy.special import erf

    return 0.5 * (1.0 + erf(z / math.sqrt(2.0)))


def _rrelu(z, lower=1 / 8, upper=1 / 3, training=False, rng=None):
    if not training:
        a = 0.5 * (lower + upper)
        return np.where(z >= 0, z, a * z)
    rng = np.random.default_rng() if rng is None else rng
    a = rng.uniform(lower, upper, size=np.shape(z))
    return np.where(z >= 0, z, a * z)


#: name → (forward f(z, **kw), derivative f'(z, **kw)). Defaults: leaky α = 0.01 (lecture), ELU α = 1,
#: RReLU α ~ U[1/8, 1/3] while training (Xu et al. 2015; PyTorch), its mean at inference;
#: PReLU is a leaky ReLU whose α is learned (``alpha=`` here, 0.25 at init as in PyTorch/He et al.).
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda z, alpha=0.01: np.where(z >= 0, z, alpha * z),
                   lambda z, alpha=0.01: np.where(z >= 0, 1.0, alpha)),
    "rrelu": (_rrelu, lambda z, lower=1 / 8, upper=1 / 3: np.where(z >= 0, 1.0, 0.5 * (lower + upper))),
    "prelu": (lambda z, alpha=0.25: np.where(z >= 0, z, alpha * z),
              lambda z, alpha=0.25: np.where(z >= 0, 1.0, alpha)),
    "elu": (lambda z, alpha=1.0: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))),
            lambda z, alpha=1.0: np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0)))),
    "selu": (lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
             lambda z: SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0)))),
    "gelu": (lambda z: z * _Phi(z), lambda z: _Phi(z) + z * _phi(z)),
    "silu": (lambda z: z * _sigmoid(z), lambda z: _sigmoid(z) * (1 + z * (1 - _sigmoid(z)))),
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]


def activation(name: str, z, **kw):
    """Apply activation ``name`` (see :data:`ACTIVATIONS`) to ``z``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name][0](np.asarray(z, dtype=float), **kw)


def activation_grad(name: str, z, **kw):
    """Derivative of activation ``name`` at ``z`` (RReLU: its inference-time slope)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name][1](np.asarray(z, dtype=float), **kw)


def _rrelu_layer_class():
    keras = import_keras()

    class RReLU(keras.layers.Layer):
        """Randomized leaky ReLU: α ~ U[lower, upper] per element while training, its mean at inference."""

        def __init__(self, lower=1 / 8, upper=1 / 3, seed=None, **kw):
            super().__init__(**kw)
            self.lower, self.upper = lower, upper
            self.seed_gen = keras.random.SeedGenerator(seed)

        def call(self, x, training=False):
            if training:
                a = keras.random.uniform(keras.ops.shape(x), self.lower, self.upper, seed=self.seed_gen)
            else:
                a = 0.5 * (self.lower + self.upper)
            return keras.ops.where(x >= 0, x, a * x)

    return RReLU


def activation_layer(kind: str, **kw):
    """A Keras layer for activation ``kind`` (the names of :data:`ACTIVATIONS`)."""
    keras = import_keras()
    L = keras.layers
    if kind == "leaky_relu":
        return L.LeakyReLU(negative_slope=kw.pop("alpha", 0.01), **kw)
    if kind == "prelu":
        return L.PReLU(alpha_initializer=keras.initializers.Constant(kw.pop("alpha", 0.25)), **kw)
    if kind == "rrelu":
        return _rrelu_layer_class()(**kw)
    if kind == "swish":
        kind = "silu"
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; choose one of {sorted(ACTIVATIONS)}")
    return L.Activation(kind, **kw)
