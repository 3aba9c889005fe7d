"""labkit.check.optim: the optimizer checkers of notebook 01.

Each checker must pass a right answer (written here independently of labkit, in the notebook's signatures), report
a stub as "not implemented", and fail on the plausible wrong answers named in each test, with the hint for that
mistake. The notebook's own rules and solutions are run through their checkers too, and its student version (the
solutions stubbed by ``labkit.student``) must leave the rules in view working and report the stubs.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from labkit import check, student
from labkit.check import optim as C

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_optimizers.ipynb"
SEEDS = (0, 1, 2)


# --- right answers ------------------------------------------------------------------------------------------

def momentum_ok(theta, g, m, lr, beta):
    m = beta * m - lr * g
    return theta + m, m


def nesterov_ok(theta, g, m, lr, beta):
    m = beta * m - lr * g
    return theta + beta * m - lr * g, m


def adagrad_ok(theta, g, s, lr, eps):
    s = s + g ** 2
    return theta - lr * g / np.sqrt(s + eps), s


def rmsprop_ok(theta, g, s, lr, rho, eps):
    s = rho * s + (1 - rho) * g ** 2
    return theta - lr * g / np.sqrt(s + eps), s


def adam_ok(theta, g, m, s, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g ** 2
    return theta - lr * (m / (1 - beta1 ** t)) / (np.sqrt(s / (1 - beta2 ** t)) + eps), m, s


def adam_keras_ok(theta, g, m, s, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g ** 2
    lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return theta - lr_t * m / (np.sqrt(s) + eps), m, s


def adamw_ok(theta, g, m, s, t, lr, weight_decay, beta1, beta2, eps):
    return adam_ok(theta * (1 - lr * weight_decay), g, m, s, t, lr, beta1, beta2, eps)


def adam_in_place(theta, g, m, s, t, lr, beta1, beta2, eps):
    """Right, but updates its inputs in place (the checker copies them, so this must still pass)."""
    m *= beta1
    m += (1 - beta1) * g
    s *= beta2
    s += (1 - beta2) * g * g
    theta -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(s / (1 - beta2 ** t)) + eps)
    return theta, m, s


RIGHT = [(check.momentum, momentum_ok, {}), (check.nesterov, nesterov_ok, {}), (check.adagrad, adagrad_ok, {}),
         (check.rmsprop, rmsprop_ok, {}), (check.adam, adam_ok, {}), (check.adam, adam_in_place, {}),
         (check.adam, adam_keras_ok, {"eps_mode": "keras"}), (check.adamw, adamw_ok, {})]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("checker,fn,kw", RIGHT, ids=[f"{c.__name__}-{f.__name__}" for c, f, _ in RIGHT])
def test_right_answers_pass(checker, fn, kw, seed):
    r = checker(fn, seed=seed, show=False, **kw)
    assert r, r.message
    assert r.passed == r.total == 6 and "✓ 6/6" in r.message


@pytest.mark.parametrize("checker", [check.momentum, check.nesterov, check.adagrad, check.rmsprop, check.adam,
                                     check.adamw])
def test_a_stub_is_reported_not_raised(checker):
    def my_step(*args):
        raise NotImplementedError("implement this: the body of my_step(), then run the check below")

    r = checker(my_step, seed=0, show=False)
    assert not r and "not implemented yet" in r.message and "my_step" in r.message


# --- plausible wrong answers --------------------------------------------------------------------------------

def momentum_torch(theta, g, v, lr, beta):  # PyTorch's form: lr applied after the sum
    v = beta * v + g
    return theta - lr * v, v


def momentum_ema(theta, g, m, lr, beta):  # Adam-style average instead of a sum
    m = beta * m + (1 - beta) * g
    return theta - lr * m, m


def nesterov_is_momentum(theta, g, m, lr, beta):
    m = beta * m - lr * g
    return theta + m, m


def adagrad_eps_outside(theta, g, s, lr, eps):
    s = s + g * g
    return theta - lr * g / (np.sqrt(s) + eps), s


def adagrad_times(theta, g, s, lr, eps):  # the lecture slide's misprint
    s = s + g * g
    return theta - lr * g * np.sqrt(s + eps), s


def rmsprop_eps_outside(theta, g, s, lr, rho, eps):
    s = rho * s + (1 - rho) * g * g
    return theta - lr * g / (np.sqrt(s) + eps), s


def adam_no_bias_correction(theta, g, m, s, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g * g
    return theta - lr * m / (np.sqrt(s) + eps), m, s


def adam_eps_inside(theta, g, m, s, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g * g
    return theta - lr * (m / (1 - beta1 ** t)) / np.sqrt(s / (1 - beta2 ** t) + eps), m, s


def adam_returns_corrected_state(theta, g, m, s, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g * g
    m, s = m / (1 - beta1 ** t), s / (1 - beta2 ** t)
    return theta - lr * m / (np.sqrt(s) + eps), m, s


def adamw_l2(theta, g, m, s, t, lr, weight_decay, beta1, beta2, eps):
    return adam_ok(theta, g + weight_decay * theta, m, s, t, lr, beta1, beta2, eps)


def adamw_decay_after(theta, g, m, s, t, lr, weight_decay, beta1, beta2, eps):
    theta, m, s = adam_ok(theta, g, m, s, t, lr, beta1, beta2, eps)
    return theta - lr * weight_decay * theta, m, s


WRONG = [
    # (checker, wrong answer, kwargs, a phrase of the hint it must get, or None for the generic hint)
    (check.momentum, momentum_torch, {}, "PyTorch's form"),
    (check.momentum, momentum_ema, {}, None),
    (check.nesterov, nesterov_is_momentum, {}, "plain momentum"),
    (check.adagrad, adagrad_eps_outside, {}, "inside* the square root"),
    (check.adagrad, adagrad_times, {}, "divided"),
    (check.rmsprop, rmsprop_eps_outside, {}, "inside* the square root"),
    (check.adam, adam_no_bias_correction, {}, "no bias correction"),
    (check.adam, adam_eps_inside, {}, "ε goes outside the root"),
    (check.adam, adam_keras_ok, {}, "keras placement"),
    (check.adam, adam_ok, {"eps_mode": "keras"}, "paper placement"),
    (check.adam, adam_returns_corrected_state, {}, None),
    (check.adamw, adamw_l2, {}, "L2 regularization"),
    (check.adamw, adamw_decay_after, {}, "decay the *old* θ first"),
    (check.adamw, lambda *a: adamw_ok(*a[:6], 0.0, *a[7:]), {}, None),  # forgot the decay altogether
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("checker,fn,kw,hint", WRONG, ids=[f"{c.__name__}-{f.__name__}-{i}"
                                                           for i, (c, f, _, _) in enumerate(WRONG)])
def test_wrong_answers_fail_with_a_precise_message(checker, fn, kw, hint, seed):
    r = checker(fn, seed=seed, show=False, **kw)
    assert not r, f"{fn.__name__} passed {checker.__name__}"
    assert "θ first differs after step" in r.message and "expected" in r.message and "got" in r.message
    assert f"pass seed={seed} to replay" in r.message
    assert "hint:" in r.message
    if hint:
        assert hint in r.message, r.message


def test_momentum_lr_placement_is_only_visible_with_a_schedule():
    """Why the checker varies η per step: PyTorch's momentum equals Keras' for a constant η."""
    cases = C._cases(0, 4, C._beta("beta"))
    for case in cases:
        case["lrs"] = np.full_like(case["lrs"], case["lrs"][0])
        torch_form = C._drive(momentum_torch, case, ("m",), C._call_momentum)
        keras_form = C._drive(momentum_ok, case, ("m",), C._call_momentum)
        np.testing.assert_allclose(torch_form, keras_form, rtol=1e-12, atol=1e-12)
    assert not check.momentum(momentum_torch, seed=0, show=False)


def test_eps_placement_matters_in_the_cases():
    """The cases use a visible ε, so ε outside instead of inside the root fails in most of them, not just one."""
    r = check.rmsprop(rmsprop_eps_outside, seed=0, show=False)
    assert r.total - r.passed >= 4


def test_broken_functions_are_reported_not_raised():
    r = check.momentum(lambda theta, g, m, lr, beta: theta, seed=0, show=False)
    assert not r and "return the tuple (theta, m)" in r.message

    def crashes(theta, g, m, lr, beta):
        raise ValueError("shapes do not match")

    r = check.momentum(crashes, seed=0, show=False)
    assert not r and "step 1 raised ValueError: shapes do not match" in r.message

    r = check.adagrad(lambda theta, g, s, lr, eps: (theta[:1], s), seed=0, show=False)
    assert not r and "returned theta of shape (1,)" in r.message

    r = check.adam(lambda *a: (a[0] * np.nan, a[2], a[3]), seed=0, show=False)
    assert not r and "not finite" in r.message


def test_unknown_eps_mode_is_refused():
    with pytest.raises(ValueError, match="eps_mode"):
        check.adam(adam_ok, eps_mode="lecture")


def test_checkers_are_listed():
    assert {"momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"} <= set(check.checkers())


# --- the notebook ------------------------------------------------------------------------------------------

def _definition_cells(nb) -> list[str]:
    """The code cells that only define functions (the rules in view and the exercises)."""
    out = []
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type != "code" or "def " not in src:
            continue
        tree = ast.parse(src)
        if all(isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom)) for node in tree.body):
            out.append(src)
    return out


def _checker_calls(nb) -> list[tuple[str, str]]:
    calls = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            calls += re.findall(r"labkit\.check\.(\w+)\((\w+)", cell.source)
    return calls


def _run(nb) -> dict[str, bool]:
    from labkit import optim as O

    ns = {"np": np, "O": O}
    for src in _definition_cells(nb):
        exec(compile(src, "<notebook 01>", "exec"), ns)  # noqa: S102 - the project's own notebook
    return {fn: bool(getattr(check, name)(ns[fn], seed=0, show=False)) for name, fn in _checker_calls(nb)}


def test_the_notebook_rules_and_solutions_pass_their_checks():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    results = _run(nb)
    assert {"momentum_step", "nesterov_step", "rmsprop_step", "adam_step", "adagrad_step", "adamw_step"} <= set(results)
    assert all(results.values()), results


def test_the_student_version_keeps_the_rules_and_stubs_the_exercises():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    stu, n = student.student_version(nb, name=NOTEBOOK.name)
    assert n == 5  # two implementations, three written predictions
    results = _run(stu)
    assert results.pop("adagrad_step") is False and results.pop("adamw_step") is False
    assert all(results.values()), results  # the rules in view are not exercises
    # a stubbed function is used only by its own check, so the student version still runs top to bottom
    for name in ("adagrad_step", "adamw_step"):
        users = [c for c in stu.cells if c.cell_type == "code" and name in c.source]
        assert len(users) == 2, [u.source[:60] for u in users]
