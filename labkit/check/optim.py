"""Checkers for the optimizer update rules of notebook 01, against :mod:`labkit.optim`.

Each checker takes a *step function* written the way notebook 01 writes it: it receives the parameters θ, the
gradient g, the optimizer's state and the hyperparameters of one step, and returns the new θ and the new state::

    momentum_step(theta, g, m, lr, beta)                                  -> (theta, m)
    nesterov_step(theta, g, m, lr, beta)                                  -> (theta, m)   (Keras' form)
    adagrad_step(theta, g, s, lr, eps)                                    -> (theta, s)
    rmsprop_step(theta, g, s, lr, rho, eps)                               -> (theta, s)
    adam_step(theta, g, m, s, t, lr, beta1, beta2, eps)                   -> (theta, m, s)   (t counts from 1)
    adamw_step(theta, g, m, s, t, lr, weight_decay, beta1, beta2, eps)    -> (theta, m, s)

The checker starts the state at Keras' initial values (zeros; AdaGrad's accumulator at ``s0``), calls the
function once per step on a fresh random gradient sequence (gradients of very different scales per coordinate)
with a learning rate that changes from step to step (a schedule), and compares the whole trajectory of θ with
the same optimizer in :mod:`labkit.optim`, whose every rule ``tests/test_optim.py`` checks step by step against
``keras.optimizers`` (and the paper form of Adam against ``torch.optim.Adam``). The cases use a visible ε
(up to 0.1) and small gradients, so where ε goes (inside or outside the root) changes the result.

On a mismatch the report names the case, the first step at which θ differs, expected against got, and a hint;
where the answer matches a known wrong variant (Adam without bias correction, ε outside the root, the learning
rate applied after the momentum sum instead of inside it ...) the hint names that mistake.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from labkit import optim as O
from labkit.check import Report, fresh_seed, run_cases

__all__ = ["momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]

RTOL, ATOL = 1e-7, 1e-10  # float64 on both sides: only the order of operations differs


class _Failed:
    """What the student's function did instead of returning a usable result (so run_cases never sees a raise)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _cases(seed: int, n: int, extra: Callable[[np.random.Generator, dict], None]) -> list[dict]:
    """``n`` random cases: θ₀, a gradient sequence of mixed scales, a per-step learning rate, and the
    hyperparameters that ``extra(rng, case)`` adds."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        dim, steps = int(rng.integers(3, 7)), int(rng.integers(8, 16))
        scales = 10.0 ** rng.uniform(-3, 0.5, dim)                 # per-coordinate gradient scales
        grads = rng.normal(size=(steps, dim)) * scales
        lr0 = float(10 ** rng.uniform(-2.5, -1))
        if k % 2 == 0:                                             # a decaying schedule
            lrs = lr0 * 0.8 ** np.arange(steps)
        else:                                                      # a noisy one (warm-up-like jumps)
            lrs = lr0 * rng.uniform(0.3, 1.5, steps)
        case = {"theta0": rng.normal(size=dim), "grads": grads, "lrs": lrs}
        extra(rng, case)
        out.append(case)
    return out


def _beta(key):
    def add(rng, case):
        case[key] = float(0.9 if rng.uniform() < 0.5 else rng.uniform(0.5, 0.99))
    return add


def _eps(rng, case):
    """A visible ε most of the time (so its placement matters), sometimes Keras' default 1e-7."""
    case["eps"] = float(10 ** rng.uniform(-4, -1)) if rng.uniform() < 0.75 else 1e-7


def _both(*adders):
    def add(rng, case):
        for a in adders:
            a(rng, case)
    return add


def _drive(fn: Callable, case: dict, state_names: tuple[str, ...], call: Callable) -> np.ndarray | _Failed:
    """Run ``fn`` step by step over the case; the trajectory of θ, shape (steps + 1, dim), or a :class:`_Failed`."""
    theta = np.array(case["theta0"], dtype=float)
    state = {k: np.full_like(theta, case.get("s0", 0.0) if k == "s" else 0.0) for k in state_names}
    traj = [theta.copy()]
    names = ("theta",) + state_names
    for t, (g, lr) in enumerate(zip(case["grads"], case["lrs"]), 1):
        args = [theta.copy(), np.array(g, dtype=float)] + [state[k].copy() for k in state_names]
        try:
            out = call(fn, args, t, float(lr), case)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 - the student's code may raise anything; report it
            return _Failed(f"step {t} raised {type(err).__name__}: {err}")
        if not isinstance(out, (tuple, list)) or len(out) != len(names):
            what = f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list)) else \
                type(out).__name__
            return _Failed(f"step {t} returned {what}; return the tuple ({', '.join(names)})")
        try:
            arrays = [np.asarray(v, dtype=float) for v in out]
        except (TypeError, ValueError) as err:
            return _Failed(f"step {t} returned something that is not numbers ({err})")
        for name, v in zip(names, arrays):
            if v.shape != theta.shape:
                return _Failed(f"step {t} returned {name} of shape {v.shape}, expected {theta.shape}")
        theta = arrays[0]
        state = dict(zip(state_names, arrays[1:]))
        traj.append(theta.copy())
    return np.stack(traj)


def _reference(make: Callable[[dict], O.Optimizer]) -> Callable[..., np.ndarray]:
    def ref(**case):
        lrs = np.asarray(case["lrs"], dtype=float)
        opt = make(case)
        opt.lr = lambda step0: float(lrs[step0])  # labkit calls a schedule with the 0-based step
        return O.run_numpy(opt, case["theta0"], len(lrs), grads=case["grads"])
    return ref


def _compare(expected, got) -> str | None:
    if isinstance(got, _Failed):
        return got.text
    bad = ~np.isfinite(got).all(axis=1)
    if bad.any():
        step = int(np.argwhere(bad)[0][0])
        return f"θ is not finite after step {step}: {got[step]}"
    close = np.isclose(got, expected, rtol=RTOL, atol=ATOL)
    if close.all():
        return None
    step = int(np.argwhere(~close.all(axis=1))[0][0])
    if step == 0:
        return "θ₀ changed before any step"
    return (f"θ first differs after step {step} of {len(expected) - 1}: "
            f"got {np.array2string(got[step], precision=6)}, expected {np.array2string(expected[step], precision=6)}")


def _check(name: str, fn: Callable, *, state: tuple[str, ...], call: Callable, make: Callable, extra: Callable,
           wrong: list[tuple[Callable, str]], generic: str, reference_name: str, seed, n: int, show: bool) -> Report:
    """Run ``fn`` against ``make(case)``'s labkit optimizer on ``n`` fresh cases; on a mismatch the hint is the
    first known wrong variant in ``wrong`` that reproduces the student's trajectory, else ``generic``."""
    seed = fresh_seed(seed)

    def runner(**case):
        return _drive(fn, case, state, call)

    def hint(case, expected, got):
        if isinstance(got, _Failed):
            return generic
        for variant, text in wrong:
            alt = _drive(variant, case, state, call)
            if not isinstance(alt, _Failed) and np.allclose(alt, got, rtol=RTOL, atol=ATOL, equal_nan=True):
                return text
        return generic

    runner.__name__ = getattr(fn, "__name__", "your function")
    return run_cases(name, runner, _cases(seed, n, extra), _reference(make), compare=_compare,
                     reference_name=reference_name, hint=hint, seed=seed, show=show)


# --- momentum and Nesterov ---------------------------------------------------------------------------------

def _call_momentum(fn, args, t, lr, case):
    return fn(*args, lr, case["beta"])


def _torch_momentum(theta, g, m, lr, beta):  # PyTorch's form: v <- beta v + g ; theta <- theta - lr v
    m = beta * m + g
    return theta - lr * m, m


def _ema_momentum(theta, g, m, lr, beta):  # an exponential average of the gradients instead of a sum
    m = beta * m - (1 - beta) * lr * g
    return theta + m, m


def _momentum_without_beta(theta, g, m, lr, beta):
    m = m - lr * g
    return theta + m, m


def momentum(fn: Callable, *, seed: int | None = None, cases: int = 6, show: bool = True) -> Report:
    """Check ``fn(theta, g, m, lr, beta) -> (theta, m)``: momentum as Keras writes it,
    m ← β m − η g ; θ ← θ + m (against :class:`labkit.optim.Momentum`), with η changing every step."""
    wrong = [
        (_torch_momentum, "this is PyTorch's form (v ← βv + g, θ ← θ − ηv): it equals m ← βm − ηg, θ ← θ + m only "
                          "while η is constant. Here η changes every step (a schedule), and Keras and labkit put "
                          "each step's η into the velocity when its gradient is added: m ← βm − ηg"),
        (_ema_momentum, "momentum *sums* the past steps with weights βᵏ (m ← βm − ηg); the factor (1 − β) belongs "
                        "to Adam's moving average, and makes the steps about 1/(1 − β) times too small"),
        (_momentum_without_beta, "the old velocity must decay: multiply m by β before adding −ηg"),
    ]
    return _check("momentum", fn, state=("m",), call=_call_momentum, extra=_beta("beta"),
                  make=lambda c: O.Momentum(0.0, momentum=c["beta"]), wrong=wrong,
                  generic="m ← β·m − lr·g, then θ ← θ + m; return (theta, m)",
                  reference_name="labkit.optim.Momentum (= keras.optimizers.SGD(momentum=β))",
                  seed=seed, n=cases, show=show)


def _plain_momentum(theta, g, m, lr, beta):  # momentum, without Nesterov's look-ahead
    m = beta * m - lr * g
    return theta + m, m


def _nesterov_torch(theta, g, m, lr, beta):  # PyTorch's nesterov: v <- beta v + g ; theta <- theta - lr (g + beta v)
    m = beta * m + g
    return theta - lr * (g + beta * m), m


def _nesterov_old_m(theta, g, m, lr, beta):  # look-ahead with the old velocity
    new_m = beta * m - lr * g
    return theta + beta * m - lr * g, new_m


def nesterov(fn: Callable, *, seed: int | None = None, cases: int = 6, show: bool = True) -> Report:
    """Check ``fn(theta, g, m, lr, beta) -> (theta, m)``: Nesterov in Keras' form (θ is stored at the
    look-ahead point), m ← β m − η g ; θ ← θ + β m − η g (against :class:`labkit.optim.Nesterov`)."""
    wrong = [
        (_plain_momentum,
         "this is plain momentum: Nesterov (Keras' form) steps θ ← θ + β·m − lr·g with the *new* m, i.e. one "
         "momentum step further ahead"),
        (_nesterov_old_m, "use the *updated* velocity in the look-ahead: first m ← βm − lr·g, then "
                          "θ ← θ + βm − lr·g"),
        (_nesterov_torch, "this is PyTorch's form (v ← βv + g, θ ← θ − η(g + βv)): equal to Keras' only while η is "
                          "constant; here η changes every step, so keep η inside m: m ← βm − ηg"),
    ]
    return _check("nesterov", fn, state=("m",), call=_call_momentum, extra=_beta("beta"),
                  make=lambda c: O.Nesterov(0.0, momentum=c["beta"], form="keras"), wrong=wrong,
                  generic="m ← β·m − lr·g, then θ ← θ + β·m − lr·g; return (theta, m)",
                  reference_name="labkit.optim.Nesterov (= keras.optimizers.SGD(momentum=β, nesterov=True))",
                  seed=seed, n=cases, show=show)


# --- AdaGrad and RMSProp -----------------------------------------------------------------------------------

_EPS_OUTSIDE = ("ε goes *inside* the square root here (Keras' convention, which labkit follows): "
                "g / √(s + ε), not g / (√s + ε); with a small s and a visible ε the two differ a lot")


def _call_adagrad(fn, args, t, lr, case):
    return fn(*args, lr, case["eps"])


def _s0(rng, case):
    u = rng.uniform()
    case["s0"] = 0.1 if u < 0.4 else 0.0 if u < 0.6 else float(rng.uniform(0.01, 1.0))


def _adagrad_eps_outside(theta, g, s, lr, eps):
    s = s + g * g
    return theta - lr * g / (np.sqrt(s) + eps), s


def _adagrad_old_s(theta, g, s, lr, eps):
    return theta - lr * g / np.sqrt(s + eps), s + g * g


def _adagrad_times(theta, g, s, lr, eps):  # the slide's misprint: ⊗ instead of ⊘
    s = s + g * g
    return theta - lr * g * np.sqrt(s + eps), s


def adagrad(fn: Callable, *, seed: int | None = None, cases: int = 6, show: bool = True) -> Report:
    """Check ``fn(theta, g, s, lr, eps) -> (theta, s)``: s ← s + g⊙g ; θ ← θ − η g ⊘ √(s + ε)
    (against :class:`labkit.optim.AdaGrad`, Keras' convention). The checker starts s at Keras' 0.1, at 0 (the
    lecture) or at another value, so the function must not assume a start value."""
    wrong = [
        (_adagrad_eps_outside, _EPS_OUTSIDE),
        (_adagrad_old_s, "add g·g to s *first*, then divide by √(s + ε) with the new s"),
        (_adagrad_times, "the gradient is *divided* by √(s + ε) (⊘); the lecture's slide prints ⊗ by mistake"),
    ]
    return _check("adagrad", fn, state=("s",), call=_call_adagrad, extra=_both(_eps, _s0),
                  make=lambda c: O.AdaGrad(0.0, eps=c["eps"], initial_accumulator=c["s0"]), wrong=wrong,
                  generic="s ← s + g·g, then θ ← θ − lr·g / √(s + ε); return (theta, s)",
                  reference_name="labkit.optim.AdaGrad (= keras.optimizers.Adagrad)", seed=seed, n=cases, show=show)


def _call_rmsprop(fn, args, t, lr, case):
    return fn(*args, lr, case["rho"], case["eps"])


def _rmsprop_eps_outside(theta, g, s, lr, rho, eps):
    s = rho * s + (1 - rho) * g * g
    return theta - lr * g / (np.sqrt(s) + eps), s


def _rmsprop_sum(theta, g, s, lr, rho, eps):
    s = rho * s + g * g
    return theta - lr * g / np.sqrt(s + eps), s


def _rmsprop_swapped(theta, g, s, lr, rho, eps):
    s = (1 - rho) * s + rho * g * g
    return theta - lr * g / np.sqrt(s + eps), s


def rmsprop(fn: Callable, *, seed: int | None = None, cases: int = 6, show: bool = True) -> Report:
    """Check ``fn(theta, g, s, lr, rho, eps) -> (theta, s)``: s ← ρ s + (1 − ρ) g⊙g ; θ ← θ − η g ⊘ √(s + ε)
    (against :class:`labkit.optim.RMSProp`, Keras' convention)."""
    wrong = [
        (_rmsprop_eps_outside, _EPS_OUTSIDE),
        (_rmsprop_sum, "s is a moving *average*: the new g·g gets the weight (1 − ρ)"),
        (_rmsprop_swapped, "ρ weights the *old* s (ρ·s), and (1 − ρ) the new g·g"),
    ]
    return _check("rmsprop", fn, state=("s",), call=_call_rmsprop, extra=_both(_beta("rho"), _eps),
                  make=lambda c: O.RMSProp(0.0, rho=c["rho"], eps=c["eps"]), wrong=wrong,
                  generic="s ← ρ·s + (1 − ρ)·g·g, then θ ← θ − lr·g / √(s + ε); return (theta, s)",
                  reference_name="labkit.optim.RMSProp (= keras.optimizers.RMSprop)", seed=seed, n=cases, show=show)


# --- Adam and AdamW ----------------------------------------------------------------------------------------

def _call_adam(fn, args, t, lr, case):
    theta, g, m, s = args
    return fn(theta, g, m, s, t, lr, case["beta1"], case["beta2"], case["eps"])


def _call_adamw(fn, args, t, lr, case):
    theta, g, m, s = args
    return fn(theta, g, m, s, t, lr, case["weight_decay"], case["beta1"], case["beta2"], case["eps"])


def _betas(rng, case):
    case["beta1"] = float(0.9 if rng.uniform() < 0.5 else rng.uniform(0.5, 0.95))
    case["beta2"] = float(0.999 if rng.uniform() < 0.5 else rng.uniform(0.9, 0.999))


def _weight_decay(rng, case):
    case["weight_decay"] = float(10 ** rng.uniform(-1.5, 0.5))  # large enough to show within a few steps


def _adam_variant(bias_correction: bool = True, eps_mode: str = "paper", t_offset: int = 0):
    """Adam with a chosen ε convention, or one of the usual mistakes (used for the hints)."""
    def step(theta, g, m, s, t, lr, beta1, beta2, eps):
        t = t + t_offset
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * g * g
        if not bias_correction:
            return theta - lr * m / (np.sqrt(s) + eps), m, s
        with np.errstate(divide="ignore", invalid="ignore"):
            m_hat, s_hat = m / (1 - beta1 ** t), s / (1 - beta2 ** t)
            if eps_mode == "inside":
                return theta - lr * m_hat / np.sqrt(s_hat + eps), m, s
            if eps_mode == "keras":
                lr_t = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                return theta - lr_t * m / (np.sqrt(s) + eps), m, s
            return theta - lr * m_hat / (np.sqrt(s_hat) + eps), m, s
    return step


_ADAM_FORMS = {"paper": "θ ← θ − lr·m̂ / (√ŝ + ε)",
               "keras": "θ ← θ − lr_t·m / (√s + ε) with lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)"}


def _adam_wrong(eps_mode: str) -> list[tuple[Callable, str]]:
    other = "keras" if eps_mode == "paper" else "paper"
    return [
        (_adam_variant(bias_correction=False),
         "no bias correction: m and s start at 0, so early on they are too small; divide by (1 − β₁ᵗ) and (1 − β₂ᵗ) "
         "(m̂ and ŝ). Without it the first step is (1 − β₁)/√(1 − β₂) times lr per coordinate (≈3.2 with the "
         "default betas) instead of lr"),
        (_adam_variant(eps_mode=eps_mode, t_offset=1), "use the t you are given (1 on the first step), not t + 1"),
        (_adam_variant(eps_mode="inside"),
         "ε goes outside the root: m̂ / (√ŝ + ε) (the paper, PyTorch); m̂ / √(ŝ + ε) is the lecture's form"),
        (_adam_variant(eps_mode=other),
         f"this is the {other} placement of ε ({_ADAM_FORMS[other]}); this check compares with "
         f"eps_mode={eps_mode!r} ({_ADAM_FORMS[eps_mode]}); pass eps_mode={other!r} to the checker if you meant it"),
    ]


def adam(fn: Callable, *, eps_mode: str = "paper", seed: int | None = None, cases: int = 6,
         show: bool = True) -> Report:
    """Check ``fn(theta, g, m, s, t, lr, beta1, beta2, eps) -> (theta, m, s)`` against
    :class:`labkit.optim.Adam` (``t`` is the step number, from 1; ``m``, ``s`` are the uncorrected moments).

    ``eps_mode="paper"`` (default; Kingma & Ba, PyTorch): m̂ = m/(1 − β₁ᵗ), ŝ = s/(1 − β₂ᵗ),
    θ ← θ − η m̂ ⊘ (√ŝ + ε). ``eps_mode="keras"``: θ ← θ − η_t m ⊘ (√s + ε), η_t = η √(1 − β₂ᵗ)/(1 − β₁ᵗ).
    """
    if eps_mode not in _ADAM_FORMS:
        raise ValueError(f"eps_mode must be 'paper' or 'keras', got {eps_mode!r}")
    return _check("adam", fn, state=("m", "s"), call=_call_adam, extra=_both(_betas, _eps),
                  make=lambda c: O.Adam(0.0, beta1=c["beta1"], beta2=c["beta2"], eps=c["eps"], eps_mode=eps_mode),
                  wrong=_adam_wrong(eps_mode),
                  generic=("m ← β₁m + (1 − β₁)g, s ← β₂s + (1 − β₂)g·g, m̂ = m/(1 − β₁ᵗ), ŝ = s/(1 − β₂ᵗ), "
                           f"{_ADAM_FORMS[eps_mode]}; return (theta, m, s) with the uncorrected m and s"),
                  reference_name=f"labkit.optim.Adam(eps_mode={eps_mode!r})", seed=seed, n=cases, show=show)


def _adamw_variant(adam_step: Callable, mode: str) -> Callable:
    """AdamW built on ``adam_step``: the right order (``"decoupled"``) or one of the usual mistakes."""
    def step(theta, g, m, s, t, lr, weight_decay, beta1, beta2, eps):
        if mode == "l2":      # L2 regularization: the decay goes through the gradient and Adam's scaling
            return adam_step(theta, g + weight_decay * theta, m, s, t, lr, beta1, beta2, eps)
        if mode == "after":   # decay applied to the new θ instead of the old one
            theta, m, s = adam_step(theta, g, m, s, t, lr, beta1, beta2, eps)
            return theta - lr * weight_decay * theta, m, s
        if mode == "no_lr":   # decay not scaled by the learning rate
            return adam_step(theta - weight_decay * theta, g, m, s, t, lr, beta1, beta2, eps)
        return adam_step(theta - lr * weight_decay * theta, g, m, s, t, lr, beta1, beta2, eps)
    return step


def adamw(fn: Callable, *, eps_mode: str = "paper", seed: int | None = None, cases: int = 6,
          show: bool = True) -> Report:
    """Check ``fn(theta, g, m, s, t, lr, weight_decay, beta1, beta2, eps) -> (theta, m, s)`` against
    :class:`labkit.optim.AdamW`: θ ← θ − η λ θ first (decoupled weight decay), then the Adam step (the ε
    convention of ``eps_mode``, as in :func:`adam`) with the gradient g, which was computed at the old θ."""
    if eps_mode not in _ADAM_FORMS:
        raise ValueError(f"eps_mode must be 'paper' or 'keras', got {eps_mode!r}")
    right = _adam_variant(eps_mode=eps_mode)
    wrong = [
        (_adamw_variant(right, "l2"), "this is Adam with L2 regularization (λθ added to the gradient, then rescaled "
                                      "by Adam like the gradient); AdamW *decouples* the decay: θ ← θ − lr·λ·θ, "
                                      "outside Adam's scaling"),
        (_adamw_variant(right, "after"), "decay the *old* θ first (θ ← θ − lr·λ·θ), then take the Adam step from "
                                         "the decayed θ (Keras and PyTorch do it in this order)"),
        (_adamw_variant(right, "no_lr"), "the decay is scaled by the learning rate: θ ← θ − lr·λ·θ"),
    ] + [(_adamw_variant(v, "decoupled"), "the weight decay is right; the Adam step itself is not: " + h)
         for v, h in _adam_wrong(eps_mode)]
    return _check("adamw", fn, state=("m", "s"), call=_call_adamw, extra=_both(_betas, _eps, _weight_decay),
                  make=lambda c: O.AdamW(0.0, weight_decay=c["weight_decay"], beta1=c["beta1"], beta2=c["beta2"],
                                         eps=c["eps"], eps_mode=eps_mode),
                  wrong=wrong,
                  generic="θ ← θ − lr·λ·θ, then the Adam step (your adam_step) with the same g; return (theta, m, s)",
                  reference_name=f"labkit.optim.AdamW(eps_mode={eps_mode!r})", seed=seed, n=cases, show=show)
