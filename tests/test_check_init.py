"""labkit.check.init: the checkers of notebook 02 pass on right answers, name a stub, and fail on plausible errors."""
from __future__ import annotations

import numpy as np
import pytest

from labkit import check
from labkit import deepnets as D

_VAR = {"normal_1": lambda i, o: 1.0, "lecun_normal": lambda i, o: 1 / i, "glorot_normal": lambda i, o: 2 / (i + o),
        "glorot_uniform": lambda i, o: 2 / (i + o), "he_normal": lambda i, o: 2 / i, "he_uniform": lambda i, o: 2 / i,
        "glorot_x4": lambda i, o: 32 / (i + o)}


def init_std(kind, fan_in, fan_out):  # the notebook's version
    return float(np.sqrt(_VAR[kind](fan_in, fan_out)))


def propagate(x, weights, activation, grad_out):  # the notebook's version
    a, zs, acts = x, [], [x]
    for W in weights:
        z = a @ W
        a = D.activation(activation, z)
        zs.append(z)
        acts.append(a)
    g, norms = grad_out, []
    for l in reversed(range(len(weights))):
        gz = g * D.activation_grad(activation, zs[l])
        norms.append(np.linalg.norm(acts[l].T @ gz))
        g = gz @ weights[l].T
    return np.array([a.var() for a in acts[1:]]), np.array(norms[::-1])


def batchnorm_forward(z, eps):
    return (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)


def max_norm(W, c):
    return W * np.minimum(1.0, c / np.linalg.norm(W, axis=0, keepdims=True))


def _stub(*args, **kwargs):
    raise NotImplementedError("implement this")


RIGHT = {"init_std": init_std, "variance_propagation": propagate, "batchnorm_forward": batchnorm_forward,
         "max_norm": max_norm}


def _propagate_var_of_z(x, weights, activation, grad_out):
    act_var, norms = propagate(x, weights, activation, grad_out)
    z_var, a = [], x
    for W in weights:
        z = a @ W
        z_var.append(z.var())
        a = D.activation(activation, z)
    return np.array(z_var), norms


def _propagate_grad_at_a(x, weights, activation, grad_out):
    act_var, _ = propagate(x, weights, activation, grad_out)
    a, acts = x, [x]
    for W in weights:
        a = D.activation(activation, a @ W)
        acts.append(a)
    g, norms = grad_out, []
    for l in reversed(range(len(weights))):
        gz = g * D.activation_grad(activation, acts[l + 1])  # f'(a) instead of f'(z)
        norms.append(np.linalg.norm(acts[l].T @ gz))
        g = gz @ weights[l].T
    return act_var, np.array(norms[::-1])


WRONG = [
    ("init_std", lambda kind, fan_in, fan_out: init_std(kind, fan_in, fan_out) ** 2, "variance"),
    ("init_std", lambda kind, fan_in, fan_out: float(np.sqrt(2 / fan_in)) if kind.startswith("glorot")
     else init_std(kind, fan_in, fan_out), "Glorot"),
    ("init_std", lambda kind, fan_in, fan_out: float(np.sqrt(6 / (fan_in + fan_out))) if kind == "glorot_normal"
     else init_std(kind, fan_in, fan_out), "Glorot"),  # the lecture's normal column
    ("variance_propagation", _propagate_var_of_z, "act_var"),
    ("variance_propagation", _propagate_grad_at_a, "grad_norm"),
    ("batchnorm_forward", lambda z, eps: (z - z.mean(0)) / np.sqrt(z.var(0, ddof=1) + eps), "biased variance"),
    ("batchnorm_forward", lambda z, eps: (z - z.mean(0)) / (z.std(0) + eps), "inside the square root"),
    ("batchnorm_forward", lambda z, eps: (z - z.mean()) / np.sqrt(z.var() + eps), "each column"),
    ("max_norm", lambda W, c: W * np.minimum(1.0, c / np.linalg.norm(W, axis=1, keepdims=True)), "axis 0"),
    ("max_norm", lambda W, c: W * c / np.linalg.norm(W, axis=0, keepdims=True), "only the long ones"),
]


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_right_answers_pass(name, capsys):
    fn = getattr(check, name)
    assert fn(RIGHT[name], seed=0)
    assert fn(RIGHT[name])  # fresh cases
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_stub_is_not_implemented_yet(name):
    r = getattr(check, name)(_stub, show=False)
    assert not r and "not implemented yet" in r.message


@pytest.mark.parametrize("name,wrong,hint_word", WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plausible_wrong_answers_fail_with_a_precise_message(name, wrong, hint_word, seed):
    r = getattr(check, name)(wrong, seed=seed, show=False)
    assert not r
    assert "case " in r.message and "expected:" in r.message and "got:" in r.message and "hint:" in r.message
    assert hint_word in r.message


def test_reference_is_used_not_the_student_answer():
    """The propagation reference really is labkit's NumPy net (whose gradients tests/test_deepnets checks vs TF)."""
    rng = np.random.default_rng(0)
    x, W = rng.normal(size=(8, 5)), [rng.normal(size=(5, 6)), rng.normal(size=(6, 6))]
    g = rng.normal(size=(8, 6))
    ref = D.signal_propagation(x=x, weights=W, activation_name="tanh", grad_out=g)
    mine = propagate(x, W, "tanh", g)
    np.testing.assert_allclose(ref["act_var"], mine[0], rtol=1e-12)
    np.testing.assert_allclose(ref["grad_norm"], mine[1], rtol=1e-12)


def test_batch_norm_check_is_stable_on_many_fresh_draws():
    """The right answer passes on 300 fresh cases (a float32 reference once failed 1 case in 10 by cancellation)."""
    assert check.batchnorm_forward(batchnorm_forward, n=300, seed=12345, show=False)
    assert check.max_norm(max_norm, n=300, seed=12345, show=False)
