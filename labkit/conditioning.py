"""Where adaptive optimizers help: softmax regression on badly scaled features, every optimizer at its best
learning rate.

On a well-scaled problem a tuned SGD with momentum is as good as Adam. Adaptive methods (AdaGrad, RMSProp, Adam,
AdamW) win where **different parameters need very different step sizes**: here each input feature j is multiplied
by its own scale ``s_j`` (log-uniform over ``spread`` decades), as raw features in different units are. The
curvature of the loss along the weights of feature j grows like ``s_j²``, so one global learning rate must be
small enough for the largest scale (or it diverges) and then barely moves the weights of the small-scale features.
Dividing each coordinate's step by its own running RMS gradient (AdaGrad/RMSProp/Adam) undoes that scale.

The model is convex (softmax regression), so "which optimizer reaches the lower training loss" is a question
about optimization only: no local minima, no architecture. The optimizers are ``labkit.optim``'s NumPy ones
(checked step by step against ``keras.optimizers`` in ``tests/test_optim.py``), the gradient is written by hand
(checked against finite differences in ``tests/test_conditioning.py``). Each optimizer gets the best learning rate
of the same log-spaced grid (:data:`LR_GRID`): a fair comparison, not one learning rate per family by habit.
Used by ``notebooks/01_optimizers.ipynb`` §5 and ``tests/test_lessons_01_02.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labkit import optim as O

__all__ = ["LR_GRID", "ADAPTIVE", "NON_ADAPTIVE", "feature_scales", "softmax_loss_grad", "train_softmax",
           "best_lr_run", "Comparison", "compare_optimizers"]

#: The learning-rate grid every optimizer is tuned on (half-decade steps, 1e-4 … 10).
LR_GRID = tuple(float(x) for x in np.logspace(-4, 1, 11))
ADAPTIVE = ("adagrad", "rmsprop", "adam", "adamw")
NON_ADAPTIVE = ("sgd", "momentum", "nesterov")


def feature_scales(n_features: int, spread: float = 4.0, seed: int = 0) -> np.ndarray:
    """Scales ``s_j = 10**u_j``, ``u_j`` uniform in ``[-spread/2, spread/2]`` (``spread`` decades in all)."""
    rng = np.random.default_rng(seed)
    return 10.0 ** rng.uniform(-spread / 2, spread / 2, size=n_features)


def softmax_loss_grad(theta: np.ndarray, X: np.ndarray, y: np.ndarray, n_classes: int):
    """Mean cross-entropy of softmax regression and its gradient.

    ``theta`` packs the weights and biases: shape ``((d + 1) * k,)``, ``W = theta[:d*k].reshape(d, k)``,
    ``b = theta[d*k:]``. Returns ``(loss, grad)`` with ``grad`` shaped like ``theta``.
    """
    n, d = X.shape
    k = n_classes
    W, b = theta[:d * k].reshape(d, k), theta[d * k:]
    logits = X @ W + b
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(np.clip(p[np.arange(n), y], 1e-300, None)))
    p[np.arange(n), y] -= 1.0
    p /= n
    return float(loss), np.concatenate([(X.T @ p).ravel(), p.sum(axis=0)])


def train_softmax(opt: O.Optimizer, X, y, n_classes: int, epochs: int = 10, batch: int = 64, seed: int = 0,
                  max_loss: float = 1e3) -> np.ndarray:
    """Mini-batch training from θ = 0; returns the full-data training loss after each epoch (``epochs`` values).

    The mini-batch order depends on ``seed`` only, so every optimizer sees the same batches. A run whose loss
    is not finite or exceeds ``max_loss`` has diverged: its remaining epochs are set to ``inf``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    theta = np.zeros((X.shape[1] + 1) * n_classes)
    opt.reset()
    rng = np.random.default_rng(seed)
    losses = np.full(epochs, np.inf)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for ep in range(epochs):
            order = rng.permutation(len(X))
            for start in range(0, len(X), batch):
                idx = order[start:start + batch]
                _, g = softmax_loss_grad(opt.eval_point(theta), X[idx], y[idx], n_classes)
                theta = opt.step(theta, g)
            loss = softmax_loss_grad(theta, X, y, n_classes)[0]
            if not np.isfinite(loss) or loss > max_loss:
                break
            losses[ep] = loss
    return losses


def best_lr_run(name: str, X, y, n_classes: int, lrs=LR_GRID, **kw) -> tuple[float, np.ndarray]:
    """Train optimizer ``name`` with every learning rate in ``lrs``; return ``(best lr, its loss curve)``.

    Best = lowest final training loss (ties: the smaller learning rate).
    """
    best = None
    for lr in lrs:
        curve = train_softmax(O.make_optimizer(name, lr=lr), X, y, n_classes, **kw)
        if best is None or curve[-1] < best[1][-1]:
            best = (float(lr), curve)
    return best


@dataclass
class Comparison:
    """Result of :func:`compare_optimizers`: best learning rate and loss curve per optimizer and problem."""

    lrs: dict = field(default_factory=dict)      # problem -> {optimizer: best lr}
    curves: dict = field(default_factory=dict)   # problem -> {optimizer: per-epoch training loss}

    def final(self, problem: str) -> dict:
        """Final training loss per optimizer on ``problem``."""
        return {k: float(v[-1]) for k, v in self.curves[problem].items()}

    def gap(self, problem: str) -> float:
        """Best non-adaptive final loss divided by the best adaptive one (> 1: the adaptive methods win)."""
        f = self.final(problem)
        return min(f[k] for k in NON_ADAPTIVE) / min(f[k] for k in ADAPTIVE)

    def adaptive_all_better(self, problem: str) -> bool:
        """Every adaptive optimizer ends below every non-adaptive one."""
        f = self.final(problem)
        return max(f[k] for k in ADAPTIVE) < min(f[k] for k in NON_ADAPTIVE)


def compare_optimizers(X, y, n_classes: int, spread: float = 4.0, epochs: int = 8, batch: int = 128,
                       seed: int = 0, lrs=LR_GRID, names=NON_ADAPTIVE + ADAPTIVE, progress=None) -> Comparison:
    """Every optimizer at its best learning rate on two versions of the same data.

    ``"standardized"``: each feature scaled to mean 0, std 1 (a well-conditioned problem).
    ``"badly scaled"``: the standardized features times :func:`feature_scales` (``spread`` decades).
    ``progress`` (e.g. a tqdm bar) is updated once per (problem, optimizer).
    """
    X = np.asarray(X, dtype=np.float64)
    mu, sd = X.mean(0), X.std(0)
    Xs = (X - mu) / np.where(sd > 0, sd, 1.0)
    problems = {"standardized": Xs, "badly scaled": Xs * feature_scales(X.shape[1], spread, seed)}
    out = Comparison()
    try:  # small matrices: one BLAS thread is several times faster than two fighting over shared cores
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(1)
    except ImportError:  # pragma: no cover
        limit = None
    try:
        _compare(problems, names, y, n_classes, lrs, epochs, batch, seed, progress, out)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    return out


def _compare(problems, names, y, n_classes, lrs, epochs, batch, seed, progress, out):
    for pname, Xp in problems.items():
        out.lrs[pname], out.curves[pname] = {}, {}
        for name in names:
            lr, curve = best_lr_run(name, Xp, y, n_classes, lrs=lrs, epochs=epochs, batch=batch, seed=seed)
            out.lrs[pname][name], out.curves[pname][name] = lr, curve
            if progress is not None:
                progress.update()
