"""Optimizers and learning-rate schedules written from scratch in NumPy.

Every update rule here is written exactly as the formula in ``notebooks/01_optimizers.ipynb``
(θ are the parameters, g = ∇θ J(θ) the gradient, η the learning rate, ⊙ / ⊘ element-wise
product / division, t the step number starting at 1):

==========  =====================================================================================
SGD         θ ← θ − η g
Momentum    m ← β m − η g ;  θ ← θ + m                          (lecture = Keras ``SGD(momentum=β)``)
Nesterov    lecture: m ← β m − η ∇J(θ + β m) ;  θ ← θ + m
            Keras:   m ← β m − η g(θ) ;  θ ← θ + β m − η g(θ)   (the same method, with θ_keras = θ + β m)
AdaGrad     s ← s + g ⊙ g ;  θ ← θ − η g ⊘ √(s + ε)            (Keras: s₀ = 0.1, ε = 1e-7, ε inside √)
RMSProp     s ← ρ s + (1 − ρ) g ⊙ g ;  θ ← θ − η g ⊘ √(s + ε)   (Keras: ρ = 0.9, ε = 1e-7, ε inside √)
Adam        m ← β₁ m + (1 − β₁) g ;  s ← β₂ s + (1 − β₂) g ⊙ g ;  m̂ = m / (1 − β₁ᵗ) ;  ŝ = s / (1 − β₂ᵗ)
            ``eps_mode="lecture"``: θ ← θ + η m̂ ⊘ √(ŝ + ε) with m kept with the *opposite* sign
                                    (m ← β₁ m − (1 − β₁) g), as the lecture writes it;
            ``eps_mode="paper"``:   θ ← θ − η m̂ ⊘ (√ŝ + ε)          (Kingma & Ba, PyTorch);
            ``eps_mode="keras"``:   θ ← θ − η_t m ⊘ (√s + ε),  η_t = η √(1 − β₂ᵗ) / (1 − β₁ᵗ)
                                    (= "paper" with ε replaced by ε / √(1 − β₂ᵗ); TF/Keras)
AdamW       θ ← θ − η λ θ first (decoupled weight decay, with the current η), then the Adam step
            with the gradient that was computed at the old θ (Keras order; PyTorch does the same).
==========  =====================================================================================

The classes take one NumPy array of any shape.  ``step(theta, grad)`` returns the new parameters
(the input is not modified).  ``eval_point(theta)`` says where the gradient must be computed: θ for
every method except the lecture form of Nesterov, which evaluates it at θ + β m.

Learning-rate schedules are plain functions of the 0-based optimizer step (Keras calls a schedule
with ``optimizer.iterations`` *before* it is incremented), and :class:`PlateauScheduler` repeats the
logic of ``keras.callbacks.ReduceLROnPlateau``.  ``tests/test_optim.py`` checks all of them against
Keras; :func:`compare_with_keras` is the same check in a form a notebook can print.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from labkit.env import import_keras

__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "AdamW",
    "OPTIMIZERS", "make_optimizer", "keras_optimizer", "run_numpy", "run_keras", "compare_with_keras",
    "with_float32_hparams", "relative_error", "numpy_schedule",
    "piecewise_constant", "exponential_decay", "power_decay", "cosine_decay", "ultralytics_cosine",
    "PlateauScheduler", "keras_schedule", "schedule_values",
    "TestFunction", "ravine", "rosenbrock", "saddle", "TEST_FUNCTIONS", "optimize_path",
]

LR = float | Callable[[int], float]


def _lr_at(lr: LR, step0: int) -> float:
    """Learning rate for the 0-based step ``step0`` (a number or a schedule)."""
    return float(lr(step0)) if callable(lr) else float(lr)


class Optimizer:
    """Base class: keeps the step counter ``t`` and the state arrays of one parameter tensor."""

    name = "base"

    def __init__(self, lr: LR = 0.01):
        self.lr = lr
        self.reset()

    def reset(self) -> None:
        """Forget the state (moments, accumulators, step counter)."""
        self.t = 0
        self.state: dict[str, np.ndarray] = {}

    def eval_point(self, theta: np.ndarray) -> np.ndarray:
        """Point at which the caller must evaluate the gradient for the next step."""
        return theta

    def _zeros(self, key: str, theta: np.ndarray, value: float = 0.0) -> np.ndarray:
        if key not in self.state:
            self.state[key] = np.full_like(np.asarray(theta, dtype=float), value)
        return self.state[key]

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Apply one update; return the new parameters."""
        theta = np.asarray(theta, dtype=float)
        grad = np.asarray(grad, dtype=float)
        if theta.shape != grad.shape:
            raise ValueError(f"{self.name}: gradient shape {grad.shape} != parameter shape {theta.shape}")
        eta = _lr_at(self.lr, self.t)
        self.t += 1
        return self._update(theta, grad, eta)

    def _update(self, theta, g, eta):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        hp = {k: v for k, v in vars(self).items() if k not in ("state", "t")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in hp.items())})"


class SGD(Optimizer):
    """Plain gradient descent: θ ← θ − η g."""

    name = "sgd"

    def _update(self, theta, g, eta):
        return theta - eta * g


class Momentum(Optimizer):
    """Momentum: m ← β m − η g ; θ ← θ + m (the lecture's form, identical to Keras ``SGD(momentum=β)``).

    PyTorch writes v ← β v + g ; θ ← θ − η v, which is the same for a constant η (m = −η v).
    """

    name = "momentum"

    def __init__(self, lr: LR = 0.01, momentum: float = 0.9):
        self.momentum = momentum
        super().__init__(lr)

    def _update(self, theta, g, eta):
        m = self._zeros("m", theta)
        m[...] = self.momentum * m - eta * g
        return theta + m


class Nesterov(Optimizer):
    """Nesterov accelerated gradient.

    ``form="lecture"``: m ← β m − η ∇J(θ + β m) ; θ ← θ + m. The gradient is taken at the look-ahead
    point, so the caller evaluates it at :meth:`eval_point` (θ + β m).

    ``form="keras"`` (Keras, also PyTorch up to the sign of m): the stored parameters are the
    look-ahead point φ = θ + β m, and the gradient is taken there:
    m ← β m − η g(φ) ; φ ← φ + β m − η g(φ). Both forms produce the same sequence (φ_t = θ_t + β m_t).
    """

    name = "nesterov"

    def __init__(self, lr: LR = 0.01, momentum: float = 0.9, form: str = "keras"):
        if form not in ("keras", "lecture"):
            raise ValueError(f"Nesterov form must be 'keras' or 'lecture', got {form!r}")
        self.momentum = momentum
        self.form = form
        super().__init__(lr)

    def eval_point(self, theta):
        if self.form == "lecture" and "m" in self.state:
            return theta + self.momentum * self.state["m"]
        return theta

    def _update(self, theta, g, eta):
        m = self._zeros("m", theta)
        m[...] = self.momentum * m - eta * g
        if self.form == "lecture":
            return theta + m
        return theta + self.momentum * m - eta * g


class AdaGrad(Optimizer):
    """AdaGrad: s ← s + g ⊙ g ; θ ← θ − η g ⊘ √(s + ε).

    Keras: ``initial_accumulator_value=0.1`` (s starts at 0.1, not 0) and ε = 1e-7 *inside* the root.
    The lecture starts from s = 0 (pass ``initial_accumulator=0``); PyTorch starts at 0 and puts
    ε = 1e-10 outside the root.
    """

    name = "adagrad"

    def __init__(self, lr: LR = 0.001, eps: float = 1e-7, initial_accumulator: float = 0.1):
        self.eps = eps
        self.initial_accumulator = initial_accumulator
        super().__init__(lr)

    def _update(self, theta, g, eta):
        s = self._zeros("s", theta, self.initial_accumulator)
        s[...] = s + g * g
        return theta - eta * g / np.sqrt(s + self.eps)


class RMSProp(Optimizer):
    """RMSProp: s ← ρ s + (1 − ρ) g ⊙ g ; θ ← θ − η g ⊘ √(s + ε).

    Keras: ρ = 0.9, ε = 1e-7 inside the root (as in the lecture). PyTorch: ρ ("alpha") = 0.99 and
    ε = 1e-8 outside the root.
    """

    name = "rmsprop"

    def __init__(self, lr: LR = 0.001, rho: float = 0.9, eps: float = 1e-7):
        self.rho = rho
        self.eps = eps
        super().__init__(lr)

    def _update(self, theta, g, eta):
        s = self._zeros("s", theta)
        s[...] = self.rho * s + (1 - self.rho) * g * g
        return theta - eta * g / np.sqrt(s + self.eps)


class Adam(Optimizer):
    """Adam with a choice of the ε convention (see the module docstring).

    ``eps_mode="keras"`` (default) matches ``keras.optimizers.Adam``;
    ``"paper"`` matches Kingma & Ba and ``torch.optim.Adam``;
    ``"lecture"`` is the lecture's form (negative m, ε inside the root of the corrected ŝ).
    For ε → 0 all three coincide.
    """

    name = "adam"
    EPS_MODES = ("keras", "paper", "lecture")

    def __init__(self, lr: LR = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7,
                 eps_mode: str = "keras"):
        if eps_mode not in self.EPS_MODES:
            raise ValueError(f"Adam eps_mode must be one of {self.EPS_MODES}, got {eps_mode!r}")
        self.beta1, self.beta2, self.eps, self.eps_mode = beta1, beta2, eps, eps_mode
        super().__init__(lr)

    def _adam(self, theta, g, eta):
        b1, b2, t = self.beta1, self.beta2, self.t
        m = self._zeros("m", theta)
        s = self._zeros("s", theta)
        if self.eps_mode == "lecture":
            m[...] = b1 * m - (1 - b1) * g
            s[...] = b2 * s + (1 - b2) * g * g
            m_hat = m / (1 - b1 ** t)
            s_hat = s / (1 - b2 ** t)
            return theta + eta * m_hat / np.sqrt(s_hat + self.eps)
        m[...] = b1 * m + (1 - b1) * g
        s[...] = b2 * s + (1 - b2) * g * g
        if self.eps_mode == "paper":
            m_hat = m / (1 - b1 ** t)
            s_hat = s / (1 - b2 ** t)
            return theta - eta * m_hat / (np.sqrt(s_hat) + self.eps)
        eta_t = eta * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return theta - eta_t * m / (np.sqrt(s) + self.eps)

    def _update(self, theta, g, eta):
        return self._adam(theta, g, eta)


class AdamW(Adam):
    """AdamW: θ ← θ − η λ θ (decoupled weight decay, current η), then the Adam step with g.

    Keras (``keras.optimizers.AdamW``, default λ = 0.004) and PyTorch (default λ = 0.01) both decay
    first and then apply the Adam update with the gradient computed at the old θ.
    """

    name = "adamw"

    def __init__(self, lr: LR = 0.001, weight_decay: float = 0.004, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-7, eps_mode: str = "keras"):
        self.weight_decay = weight_decay
        super().__init__(lr, beta1, beta2, eps, eps_mode)

    def _update(self, theta, g, eta):
        theta = theta - eta * self.weight_decay * theta
        return self._adam(theta, g, eta)


OPTIMIZERS = {c.name: c for c in (SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW)}


def make_optimizer(name: str, lr: LR = 0.01, beta1: float = 0.9, beta2: float = 0.999,
                   **kwargs) -> Optimizer:
    """Build an optimizer by name with one shared set of knobs (used by the widgets).

    ``beta1`` is the momentum β for momentum/Nesterov, ρ for RMSProp and β₁ for Adam/AdamW;
    ``beta2`` is used by Adam/AdamW only. Extra keyword arguments go to the class.
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    if key == "sgd":
        return SGD(lr, **kwargs)
    if key in ("momentum", "nesterov"):
        return OPTIMIZERS[key](lr, momentum=beta1, **kwargs)
    if key == "adagrad":
        return AdaGrad(lr, **kwargs)
    if key == "rmsprop":
        return RMSProp(lr, rho=beta1, **kwargs)
    return OPTIMIZERS[key](lr, beta1=beta1, beta2=beta2, **kwargs)


def keras_optimizer(opt: Optimizer):
    """The ``keras.optimizers`` object with the same hyperparameters as the NumPy ``opt``.

    Only the Keras conventions can be mirrored: Nesterov ``form="keras"``, Adam ``eps_mode="keras"``.
    A schedule (callable ``lr``) must be a ``keras.optimizers.schedules`` object or a plain number.
    """
    keras = import_keras()

    if isinstance(opt, Nesterov) and opt.form != "keras":
        raise ValueError("Keras implements Nesterov in its 'keras' form only")
    if isinstance(opt, Adam) and opt.eps_mode != "keras":
        raise ValueError(f"Keras implements Adam's eps_mode='keras' only, not {opt.eps_mode!r}")
    lr = opt.lr
    ko = keras.optimizers
    if type(opt) is SGD:
        return ko.SGD(learning_rate=lr)
    if type(opt) is Momentum:
        return ko.SGD(learning_rate=lr, momentum=opt.momentum)
    if type(opt) is Nesterov:
        return ko.SGD(learning_rate=lr, momentum=opt.momentum, nesterov=True)
    if type(opt) is AdaGrad:
        return ko.Adagrad(learning_rate=lr, initial_accumulator_value=opt.initial_accumulator, epsilon=opt.eps)
    if type(opt) is RMSProp:
        return ko.RMSprop(learning_rate=lr, rho=opt.rho, epsilon=opt.eps)
    if type(opt) is Adam:
        return ko.Adam(learning_rate=lr, beta_1=opt.beta1, beta_2=opt.beta2, epsilon=opt.eps)
    if type(opt) is AdamW:
        return ko.AdamW(learning_rate=lr, weight_decay=opt.weight_decay, beta_1=opt.beta1,
                        beta_2=opt.beta2, epsilon=opt.eps)
    raise TypeError(f"no Keras counterpart for {opt!r}")


def run_numpy(opt: Optimizer, theta0, steps: int = 100, grads: Sequence | None = None,
              grad_fn: Callable | None = None) -> np.ndarray:
    """Trajectory (steps+1, *shape) of ``opt`` from ``theta0``.

    Either ``grads`` (a fixed gradient sequence, fed as is) or ``grad_fn(theta)`` (closed loop,
    evaluated at ``opt.eval_point``) must be given.
    """
    if (grads is None) == (grad_fn is None):
        raise ValueError("give exactly one of grads= or grad_fn=")
    opt.reset()
    theta = np.array(theta0, dtype=float)
    out = [theta.copy()]
    for k in range(steps):
        g = grads[k] if grads is not None else grad_fn(opt.eval_point(theta))
        theta = opt.step(theta, g)
        out.append(theta.copy())
    return np.stack(out)


def run_keras(opt: Optimizer, theta0, steps: int = 100, grads: Sequence | None = None,
              grad_fn: Callable | None = None, dtype: str = "float64") -> np.ndarray:
    """Same as :func:`run_numpy` with the matching ``keras.optimizers`` object on a Keras variable.

    Uses float64 by default (the variable, and ``keras.config.floatx`` while the optimizer is built,
    because Keras stores the learning rate in a floatx variable) so that the comparison is limited
    by arithmetic, not by float32 rounding. ``floatx`` is restored afterwards.
    """
    keras = import_keras()

    if (grads is None) == (grad_fn is None):
        raise ValueError("give exactly one of grads= or grad_fn=")
    old_floatx = keras.config.floatx()
    keras.config.set_floatx(dtype)  # Keras stores the learning rate in a floatx variable
    try:
        kopt = keras_optimizer(opt)
        var = keras.Variable(np.array(theta0, dtype=dtype), dtype=dtype)
        kopt.build([var])
        out = [np.array(var.numpy())]
        for k in range(steps):
            g = grads[k] if grads is not None else grad_fn(np.array(var.numpy(), dtype=float))
            kopt.apply([keras.ops.convert_to_tensor(np.asarray(g, dtype=dtype))], [var])
            out.append(np.array(var.numpy()))
    finally:
        keras.config.set_floatx(old_floatx)
    return np.stack(out).astype(float)


def relative_error(a: np.ndarray, ref: np.ndarray) -> float:
    """max |a − ref| / max |ref| over a whole trajectory (0 if both are all zero)."""
    scale = float(np.max(np.abs(ref)))
    diff = float(np.max(np.abs(np.asarray(a) - np.asarray(ref))))
    return diff / scale if scale > 0 else diff


def with_float32_hparams(opt: Optimizer) -> Optimizer:
    """A fresh copy of ``opt`` whose float hyperparameters are rounded to the nearest float32.

    Keras casts Python-float hyperparameters with ``ops.cast(0.9, "float64")``, which goes through
    a float32 tensor: β = 0.9 becomes 0.89999997615814. With float32-representable values both
    sides use exactly the same numbers, so a float64 comparison is limited by arithmetic only.
    """
    import copy

    new = copy.copy(opt)
    for k, v in vars(opt).items():
        if isinstance(v, float):
            setattr(new, k, float(np.float32(v)))
    new.reset()
    return new


def compare_with_keras(opt: Optimizer, theta0, steps: int = 100, grads=None, grad_fn=None,
                       float32_hparams: bool = True) -> float:
    """Max relative trajectory difference between the NumPy ``opt`` and Keras (see :func:`relative_error`).

    With ``float32_hparams=True`` both sides get the float32-rounded hyperparameters
    (:func:`with_float32_hparams`); with ``False`` the NumPy side keeps the exact decimal values
    and the difference shows Keras' float32 cast of β, ρ, ε (about 1e-7 … 1e-6 relative).
    """
    if float32_hparams:
        opt = with_float32_hparams(opt)
    a = run_numpy(opt, theta0, steps, grads=grads, grad_fn=grad_fn)
    b = run_keras(opt, theta0, steps, grads=grads, grad_fn=grad_fn)
    return relative_error(a, b)


# --------------------------------------------------------------------------- schedules

def piecewise_constant(boundaries: Sequence[float], values: Sequence[float]) -> Callable[[int], float]:
    """η = values[0] for step ≤ b₀, values[i] for b_{i−1} < step ≤ b_i, values[−1] after the last boundary.

    Same as ``keras.optimizers.schedules.PiecewiseConstantDecay`` (boundaries are inclusive on the right).
    """
    b = list(boundaries)
    v = list(values)
    if len(v) != len(b) + 1:
        raise ValueError(f"piecewise_constant needs len(values) == len(boundaries) + 1, got {len(v)} and {len(b)}")

    def lr(step: int) -> float:
        for bound, val in zip(b, v):
            if step <= bound:
                return float(val)
        return float(v[-1])

    return lr


def exponential_decay(lr0: float, decay_steps: float, decay_rate: float = 0.1,
                      staircase: bool = False) -> Callable[[int], float]:
    """η(t) = η₀ · r^(t/s) (``keras.optimizers.schedules.ExponentialDecay``); η drops by r every s steps."""
    def lr(step: int) -> float:
        p = step / decay_steps
        return lr0 * decay_rate ** (math.floor(p) if staircase else p)
    return lr


def power_decay(lr0: float, decay_steps: float, c: float = 1.0, decay_rate: float = 1.0,
                staircase: bool = False) -> Callable[[int], float]:
    """Power scheduling η(t) = η₀ / (1 + k·t/s)^c (Géron's form with k = 1).

    With c = 1 it is ``keras.optimizers.schedules.InverseTimeDecay(η₀, s, k)``.
    """
    def lr(step: int) -> float:
        p = step / decay_steps
        if staircase:
            p = math.floor(p)
        return lr0 / (1 + decay_rate * p) ** c
    return lr


def cosine_decay(lr0: float, decay_steps: int, alpha: float = 0.0, warmup_target: float | None = None,
                 warmup_steps: int = 0) -> Callable[[int], float]:
    """Cosine decay with optional linear warm-up, as ``keras.optimizers.schedules.CosineDecay``.

    Without warm-up: η(t) = η₀ · ((1 − α) · ½(1 + cos(π · min(t, T)/T)) + α).
    With warm-up: η rises linearly from ``lr0`` to ``warmup_target`` over ``warmup_steps`` steps,
    then decays from ``warmup_target`` to ``alpha · warmup_target`` over ``decay_steps`` steps.
    """
    def cos_part(t, start):
        t = min(t, decay_steps)
        return start * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / decay_steps)) + alpha)

    def lr(step: int) -> float:
        if warmup_target is None:
            return cos_part(step, lr0)
        t = min(step, decay_steps + warmup_steps)
        if t < warmup_steps:
            return (warmup_target - lr0) * t / warmup_steps + lr0
        return cos_part(t - warmup_steps, warmup_target)

    return lr


def ultralytics_cosine(lr0: float, lrf: float, epochs: int) -> Callable[[int], float]:
    """YOLOv8's ``cos_lr=True`` factor per epoch: η(e) = η₀ · (½(1 − cos(π e/E)) · (lrf − 1) + 1).

    Ultralytics computes it with ``one_cycle(1, lrf, epochs)``; it equals Keras
    ``CosineDecay(η₀, decay_steps=E, alpha=lrf)``. Ultralytics' warm-up (linear from 0 over
    ``warmup_epochs`` × batches) is applied on top of it per iteration.
    """
    def lr(epoch: int) -> float:
        return lr0 * (max((1 - math.cos(epoch * math.pi / epochs)) / 2, 0) * (lrf - 1) + 1)
    return lr


@dataclass
class PlateauScheduler:
    """Performance scheduling: the logic of ``keras.callbacks.ReduceLROnPlateau`` in plain Python.

    Call :meth:`update` with the monitored value (e.g. validation loss) once per epoch; it returns
    the learning rate to use next. A value counts as an improvement when it beats the best one by
    more than ``min_delta``; after ``patience`` epochs without improvement η ← max(η · factor, min_lr),
    then ``cooldown`` epochs are skipped.
    """

    lr: float
    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    mode: str = "min"
    best: float | None = field(default=None, init=False)
    wait: int = field(default=0, init=False)
    cooldown_counter: int = field(default=0, init=False)

    def __post_init__(self):
        if self.factor >= 1.0:
            raise ValueError(f"PlateauScheduler factor must be < 1, got {self.factor}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"PlateauScheduler mode must be 'min' or 'max', got {self.mode!r}")

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value + abs(self.min_delta) < self.best
        return value - abs(self.min_delta) > self.best

    def update(self, value: float) -> float:
        """Feed one epoch's monitored value; return the (possibly reduced) learning rate."""
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best = value
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and self.lr > np.float32(self.min_lr):
                self.lr = max(self.lr * self.factor, self.min_lr)
                self.cooldown_counter = self.cooldown
                self.wait = 0
        return self.lr


def keras_schedule(kind: str, **kw):
    """The Keras schedule object that corresponds to one of the functions above.

    ``kind`` is ``"piecewise"``, ``"exponential"``, ``"power"`` (c must be 1) or ``"cosine"``;
    keyword arguments use the names of the NumPy functions.
    """
    S = import_keras().optimizers.schedules

    if kind == "piecewise":
        return S.PiecewiseConstantDecay(list(kw["boundaries"]), list(kw["values"]))
    if kind == "exponential":
        return S.ExponentialDecay(kw["lr0"], kw["decay_steps"], kw.get("decay_rate", 0.1),
                                  staircase=kw.get("staircase", False))
    if kind == "power":
        if kw.get("c", 1.0) != 1.0:
            raise ValueError("Keras' InverseTimeDecay is the power schedule with c = 1 only")
        return S.InverseTimeDecay(kw["lr0"], kw["decay_steps"], kw.get("decay_rate", 1.0),
                                  staircase=kw.get("staircase", False))
    if kind == "cosine":
        return S.CosineDecay(kw["lr0"], kw["decay_steps"], alpha=kw.get("alpha", 0.0),
                             warmup_target=kw.get("warmup_target"), warmup_steps=kw.get("warmup_steps", 0))
    raise ValueError(f"unknown schedule kind {kind!r}")


def numpy_schedule(kind: str, **kw) -> Callable[[int], float]:
    """The NumPy schedule for ``kind`` with the same keyword arguments as :func:`keras_schedule`."""
    funcs = {"piecewise": piecewise_constant, "exponential": exponential_decay,
             "power": power_decay, "cosine": cosine_decay}
    if kind not in funcs:
        raise ValueError(f"unknown schedule kind {kind!r}")
    return funcs[kind](**kw)


def schedule_values(schedule, steps: int) -> np.ndarray:
    """Evaluate a NumPy or Keras schedule at steps 0 … steps−1 (float64 array)."""
    return np.array([float(np.asarray(schedule(k))) for k in range(steps)], dtype=float)


# --------------------------------------------------------------------------- 2-D test functions

@dataclass(frozen=True)
class TestFunction:
    """A 2-D objective with its gradient, a start point, a plotting window and its minimum (if any)."""

    name: str
    f: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    minimum: tuple[float, float] | None

    def grid(self, n: int = 200):
        """(X, Y, Z) on the plotting window, for contour plots."""
        x = np.linspace(*self.xlim, n)
        y = np.linspace(*self.ylim, n)
        X, Y = np.meshgrid(x, y)
        return X, Y, self.f(np.stack([X, Y]))


def _ravine_f(p):
    return 0.5 * (p[0] ** 2 + 20.0 * p[1] ** 2)


def _ravine_g(p):
    return np.array([p[0], 20.0 * p[1]])


def _rosen_f(p):
    return (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def _rosen_g(p):
    x, y = p[0], p[1]
    return np.array([-2 * (1 - x) - 400.0 * x * (y - x ** 2), 200.0 * (y - x ** 2)])


def _saddle_f(p):
    return 0.5 * (p[0] ** 2 - p[1] ** 2)


def _saddle_g(p):
    return np.array([p[0], -p[1]])


#: Elongated quadratic ravine f = ½(x² + 20 y²): condition number 20.
ravine = TestFunction("ravine", _ravine_f, _ravine_g, (-4.0, 1.0), (-4.5, 4.5), (-1.5, 1.5), (0.0, 0.0))
#: Rosenbrock's banana f = (1 − x)² + 100 (y − x²)², minimum at (1, 1).
rosenbrock = TestFunction("rosenbrock", _rosen_f, _rosen_g, (-1.2, 1.0), (-1.6, 1.6), (-0.6, 1.6), (1.0, 1.0))
#: Saddle f = ½(x² − y²) started almost on the ridge: escaping needs y to grow from 1e-3.
saddle = TestFunction("saddle", _saddle_f, _saddle_g, (-2.0, 1e-3), (-2.2, 2.2), (-2.2, 2.2), None)

TEST_FUNCTIONS = {fn.name: fn for fn in (ravine, rosenbrock, saddle)}


def optimize_path(opt: Optimizer, fn: TestFunction | str, steps: int = 200, start=None,
                  max_norm: float = 1e6) -> np.ndarray:
    """Path (n, 2) of ``opt`` on a 2-D test function; stops early if the iterate diverges."""
    if isinstance(fn, str):
        if fn not in TEST_FUNCTIONS:
            raise ValueError(f"unknown test function {fn!r}; choose one of {sorted(TEST_FUNCTIONS)}")
        fn = TEST_FUNCTIONS[fn]
    opt.reset()
    theta = np.array(start if start is not None else fn.start, dtype=float)
    path = [theta.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            theta = opt.step(theta, fn.grad(opt.eval_point(theta)))
            if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > max_norm:
                break
            path.append(theta.copy())
    return np.stack(path)
