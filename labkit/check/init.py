"""Checkers for notebook 02: initialization scales, variance propagation, batch norm, max-norm.

References: :func:`labkit.deepnets.init_std` and :func:`labkit.deepnets.signal_propagation` (the NumPy net that
the tests check against TensorFlow's gradients), and Keras itself for batch norm
(``keras.layers.BatchNormalization`` in training mode) and max-norm (``keras.constraints.MaxNorm``).
"""
from __future__ import annotations

import numpy as np

from labkit import deepnets as D
from labkit.check import Report, compare_arrays, fresh_seed, run_cases

__all__ = ["init_std", "variance_propagation", "batchnorm_forward", "max_norm"]

_STD_KINDS = ["normal_1", "lecun_normal", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "glorot_x4"]
_ACTS = ["relu", "tanh", "sigmoid", "selu", "leaky_relu", "elu", "gelu", "silu"]


def init_std(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """``fn(kind, fan_in, fan_out)`` -> the weights' standard deviation, for the kinds in ``_STD_KINDS``.

    Reference :func:`labkit.deepnets.init_std`; the notebook's §1 checks it against Keras' own initializers.
    """
    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = [{"kind": k, "fan_in": 300, "fan_out": 500} for k in _STD_KINDS]  # every kind once, then random
    cases += [{"kind": str(rng.choice(_STD_KINDS)), "fan_in": int(rng.integers(1, 2000)),
               "fan_out": int(rng.integers(1, 2000))} for _ in range(max(0, n - len(cases)))]

    def hint(case, expected, got):
        k = case["kind"]
        if isinstance(got, (int, float)) and np.isclose(got, expected ** 2):
            return "that is the variance σ²: return the standard deviation σ = √(σ²)"
        if k.startswith("glorot"):
            return "Glorot: σ² = 2/(fan_in + fan_out), for the normal and the uniform alike (r = √3·σ is the limit)"
        if k.startswith("he"):
            return "He: σ² = 2/fan_in (ReLU halves the variance, the 2 restores it)"
        if k == "lecun_normal":
            return "LeCun: σ² = 1/fan_in"
        return "return the standard deviation σ, not the variance σ²"

    return run_cases("init_std", fn, cases, D.init_std, reference_name="labkit.deepnets.init_std (checked against Keras)",
                     hint=hint, seed=seed, show=show)


def _propagation_reference(x, weights, activation, grad_out):
    r = D.signal_propagation(x=x, weights=weights, activation_name=activation, grad_out=grad_out)
    return r["act_var"], r["grad_norm"]


def _compare_pair(expected, got):
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a pair (act_var, grad_norm), got {type(got).__name__}"
    for label, e, g in zip(("act_var", "grad_norm"), expected, got):
        diff = compare_arrays(e, g, rtol=1e-7, atol=1e-12)
        if diff:
            return f"{label}: {diff}"
    return None


def variance_propagation(fn, *, n: int = 12, seed: int | None = None, show: bool = True) -> Report:
    """``fn(x, weights, activation, grad_out)`` -> ``(act_var, grad_norm)``, one entry per layer.

    Forward ``z_l = a_{l-1} @ W_l``, ``a_l = f(z_l)``; ``act_var[l] = a_l.var()``. Backward from
    ``grad_out = ∂L/∂a_L``: ``∂L/∂z_l = ∂L/∂a_l * f'(z_l)``, ``∂L/∂W_l = a_{l-1}.T @ ∂L/∂z_l``,
    ``∂L/∂a_{l-1} = ∂L/∂z_l @ W_l.T``; ``grad_norm[l] = ‖∂L/∂W_l‖_F``. ``activation`` is a name understood by
    :func:`labkit.deepnets.activation` and :func:`labkit.deepnets.activation_grad`.
    Reference :func:`labkit.deepnets.signal_propagation` (its gradients are checked against TensorFlow's).
    """
    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        depth, width, m = int(rng.integers(2, 7)), int(rng.integers(4, 24)), int(rng.integers(8, 40))
        n_in = int(rng.integers(3, 20))
        kind = str(rng.choice(["he_normal", "glorot_normal", "normal_1", "lecun_normal"]))
        weights = [D.init_weights(kind, n_in if l == 0 else width, width, rng) for l in range(depth)]
        cases.append({"x": rng.normal(size=(m, n_in)), "weights": weights, "activation": _ACTS[k % len(_ACTS)],
                      "grad_out": rng.normal(size=(m, width)) / m})

    def hint(case, expected, got):
        return ("forward: record the variance of the activations a_l (after f), not of z_l; backward: multiply by "
                "f'(z_l) (the derivative at the pre-activation), then by W_l.T to go one layer down")

    return run_cases("variance_propagation", fn, cases, _propagation_reference,
                     reference_name="labkit.deepnets.signal_propagation (checked against TensorFlow)",
                     compare=_compare_pair, hint=hint, seed=seed, show=show)


def _keras_bn(z, eps):
    from labkit.env import import_keras

    keras = import_keras()
    layer = keras.layers.BatchNormalization(epsilon=eps, momentum=0.9, dtype="float64")  # float32 would cancel badly
    return np.asarray(layer(np.asarray(z, dtype="float64"), training=True), dtype=float)


def batchnorm_forward(fn, *, n: int = 10, seed: int | None = None, show: bool = True) -> Report:
    """``fn(z, eps)`` -> batch norm in training mode with γ = 1, β = 0: ``(z - mean) / sqrt(var + eps)`` per column.

    Reference: ``keras.layers.BatchNormalization`` in float64, called with ``training=True`` (they agree to ~1e-14).
    """
    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        m, u = int(rng.integers(2, 33)), int(rng.integers(1, 9))
        z = rng.normal(loc=rng.normal(0, 3, size=u), scale=rng.uniform(0.05, 4, size=u), size=(m, u))
        eps = float(rng.choice([1e-3, 1e-2, 0.1, 1.0]))  # large ε so that ε's place in the formula shows
        cases.append({"z": z, "eps": eps})

    def hint(case, expected, got):
        return ("normalize each column (unit) over the batch axis 0, with the biased variance (ddof=0) and ε "
                "inside the square root")

    return run_cases("batchnorm_forward", fn, cases, _keras_bn,
                     reference_name="keras.layers.BatchNormalization(training=True)",
                     compare=lambda e, g: compare_arrays(e, g, rtol=1e-9, atol=1e-10), hint=hint, seed=seed,
                     show=show)


def _keras_max_norm(W, c):
    from labkit.env import import_keras

    keras = import_keras()
    W = keras.ops.convert_to_tensor(np.asarray(W, dtype="float64"), dtype="float64")
    return np.asarray(keras.constraints.MaxNorm(max_value=c)(W), dtype=float)


def max_norm(fn, *, n: int = 10, seed: int | None = None, show: bool = True) -> Report:
    """``fn(W, c)`` -> ``W`` with each unit's incoming weight vector (a column of the Dense kernel, shape
    ``(fan_in, fan_out)``) rescaled so that its L2 norm is at most ``c``; columns already within ``c`` stay.

    Reference: ``keras.constraints.MaxNorm(max_value=c)`` (axis 0) in float64; Keras scales by ``norm' / (1e-7 + norm)``,
    which moves each weight by at most 1e-7: hence the absolute tolerance 2e-7.
    """
    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        fan_in, fan_out = int(rng.integers(2, 12)), int(rng.integers(2, 12))
        W = rng.normal(size=(fan_in, fan_out)) * rng.uniform(0.1, 2.0, size=fan_out)  # some columns short, some long
        cases.append({"W": W, "c": float(rng.uniform(0.5, 3.0))})

    def hint(case, expected, got):
        return "take the norm of each column (axis 0: one unit's incoming weights) and shrink only the long ones"

    return run_cases("max_norm", fn, cases, _keras_max_norm, reference_name="keras.constraints.MaxNorm",
                     compare=lambda e, g: compare_arrays(e, g, rtol=1e-6, atol=2e-7), hint=hint, seed=seed,
                     show=show)
