"""Signal propagation through a deep MLP, by hand in NumPy (notebook 02).

:func:`signal_propagation` runs a ``depth``-layer MLP without biases forward and backward and records, per
layer, the activation variance, the gradient norm and the dead-ReLU fraction, optionally with batch
normalization. It is what the Glorot/He analysis is about, and fast enough for a widget.
:func:`mean_profile` averages it over random nets, :func:`variance_grid` tabulates inits × activations.
``tests/test_deepnets.py`` checks the backward pass (with and without BN) against TensorFlow's autodiff.
"""
from __future__ import annotations

import numpy as np

from labkit.deepnets.activations import ACTIVATIONS
from labkit.deepnets.initialization import init_weights

__all__ = ["signal_propagation", "mean_profile", "variance_grid"]


def signal_propagation(depth: int = 50, width: int = 128, activation_name: str = "relu", init: str = "he_normal",
                       n: int = 256, batchnorm: bool = False, seed: int = 0, bn_eps: float = 1e-5,
                       keep_activations: bool = False, x=None, weights=None, backward: bool = True,
                       grad_out=None) -> dict:
    """Run a depth-layer MLP (no biases) forward and backward on N(0, 1) inputs, by hand.

    Layer l: z_l = a_{l−1} W_l, [BN: ẑ = (z − mean)/√(var + ε), γ = 1, β = 0], a_l = f(ẑ or z).
    The loss is L = Σ(a_depth ⊙ R)/n with a fixed random R, so ∂L/∂a_depth = R/n.

    Returns a dict of per-layer arrays (index 0 = first layer): ``act_var`` (variance of a_l over
    batch and units), ``pre_var`` (of z_l), ``grad_norm`` (‖∂L/∂W_l‖_F), ``dead`` (fraction of units
    whose pre-activation is ≤ 0 for every sample: a dead ReLU), and the inputs' variance ``in_var``.
    ``keep_activations=True`` adds the lists ``a`` and ``z``. ``x``/``weights`` override the random ones
    (used by the tests to compare with TensorFlow). ``backward=False`` skips the backward pass
    (``grad_norm`` is then NaN). ``grad_out`` overrides the loss gradient ∂L/∂a_depth (default R/n).
    """
    if activation_name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation_name!r}; choose one of {sorted(ACTIVATIONS)}")
    try:  # small matrices: one BLAS thread is faster than several fighting over shared cores
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return _signal_propagation(depth, width, activation_name, init, n, batchnorm, seed, bn_eps,
                                       keep_activations, x, weights, backward, grad_out)
    except ImportError:  # pragma: no cover
        return _signal_propagation(depth, width, activation_name, init, n, batchnorm, seed, bn_eps,
                                   keep_activations, x, weights, backward, grad_out)


def _signal_propagation(depth, width, activation_name, init, n, batchnorm, seed, bn_eps, keep_activations,
                        x, weights, backward, grad_out=None):
    rng = np.random.default_rng(seed)
    f, df = ACTIVATIONS[activation_name]
    x = rng.normal(size=(n, width)) if x is None else np.asarray(x, dtype=float)
    if weights is None:
        weights = [init_weights(init, x.shape[1] if l == 0 else width, width, rng) for l in range(depth)]
    depth = len(weights)
    R = rng.normal(size=(x.shape[0], weights[-1].shape[1]))
    a, zs, zhats, stds, acts = x, [], [], [], [x]
    with np.errstate(over="ignore", invalid="ignore"):
        for W in weights:
            z = a @ W
            zs.append(z)
            if batchnorm:
                mu, var = z.mean(0), z.var(0)
                std = np.sqrt(var + bn_eps)
                zh = (z - mu) / std
                stds.append(std)
            else:
                zh = z
            zhats.append(zh)
            a = f(zh)
            acts.append(a)
        # backward
        grads = [np.full((1, 1), np.nan)] * depth
        g = R / x.shape[0] if grad_out is None else np.asarray(grad_out, dtype=float)  # dL/da_L
        for l in (range(depth - 1, -1, -1) if backward else ()):
            gz = g * df(zhats[l])  # dL/dẑ
            if batchnorm:
                m = gz.shape[0]
                zh = zhats[l]
                gz = (m * gz - gz.sum(0) - zh * (gz * zh).sum(0)) / (m * stds[l])
            grads[l] = acts[l].T @ gz
            g = gz @ weights[l].T
    out = {
        "in_var": float(x.var()),
        "act_var": np.array([float(np.var(a)) for a in acts[1:]]),
        "pre_var": np.array([float(np.var(z)) for z in zs]),
        "grad_norm": np.array([float(np.linalg.norm(gw)) for gw in grads]),
        "dead": np.array([float(np.mean(np.all(z <= 0, axis=0))) for z in zhats]),
        "input_grad": g,
    }
    if keep_activations:
        out["a"] = acts[1:]
        out["z"] = zs
    return out


def mean_profile(n_nets: int = 4, seed: int = 0, **kw) -> dict:
    """:func:`signal_propagation` averaged over ``n_nets`` independent random nets (seeds seed, seed+1, …).

    The Glorot/He derivations are statements about the *expected* variance over random weights; one
    finite-width net fluctuates around it (a random walk in log-variance, step ~ 1/√width).
    """
    runs = [signal_propagation(seed=seed + k, **kw) for k in range(n_nets)]
    keys = ("act_var", "pre_var", "grad_norm", "dead")
    out = {k: np.mean([r[k] for r in runs], axis=0) for k in keys}
    out["in_var"] = float(np.mean([r["in_var"] for r in runs]))
    return out


def variance_grid(inits, activations, depth: int = 50, width: int = 128, n: int = 256, seed: int = 0,
                  batchnorm: bool = False):
    """A pandas DataFrame: one row per (init, activation) with the first/last-layer variance and gradient norm.

    Columns: ``var_first``, ``var_last``, ``var_ratio`` (last/first), ``grad_first``, ``grad_last``,
    ``grad_ratio`` (first/last layer: > 1 exploding towards the input, < 1 vanishing), ``dead_last``.
    """
    import pandas as pd

    rows = []
    for ini in inits:
        for act in activations:
            r = signal_propagation(depth, width, act, ini, n=n, seed=seed, batchnorm=batchnorm)
            rows.append(dict(init=ini, activation=act, var_first=r["act_var"][0], var_last=r["act_var"][-1],
                             var_ratio=r["act_var"][-1] / r["act_var"][0], grad_first=r["grad_norm"][0],
                             grad_last=r["grad_norm"][-1], grad_ratio=r["grad_norm"][0] / r["grad_norm"][-1],
                             dead_last=r["dead"][-1]))
    return pd.DataFrame(rows)
