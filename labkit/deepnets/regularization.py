"""Regularization where overfitting shows: few training images with noisy labels, a wide MLP, and L1, L2,
max-norm, dropout and early stopping side by side (noise augmentation is available as a spec too).

* **L2** adds ``λ Σ w²`` to the loss (weights shrink in proportion to their size), **L1** adds ``λ Σ |w|``
  (a constant pull towards 0: it drives unneeded weights to 0, a sparse net).
* **Max-norm** (Srivastava et al. 2014, with dropout) is a constraint, not a penalty: after every step, each
  unit's incoming weight vector is rescaled to norm ``c`` if it is longer: ``w ← w · min(1, c/‖w‖)``.
  :func:`max_norm_project` is that projection in NumPy (``keras.constraints.MaxNorm`` is checked against it).
* **Dropout** zeroes each hidden unit with probability ``rate`` while training (scaling the others by
  ``1/(1 - rate)``); **early stopping** keeps the weights of the epoch with the lowest loss on a validation split
  held out from the training images; **noise augmentation** adds fresh Gaussian pixel noise (σ = ``noise``) to the
  training images every epoch (a one-pixel shift, the usual image augmentation, moves an 8×8 digit by an eighth
  of its width and changes it more than it regularizes).

:func:`overfit_experiment` trains one net per regularizer from the same initial weights on the same batches and
records the test loss along the way. Used by ``notebooks/02_init_activations_bn.ipynb`` and
``tests/test_lessons_01_02.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labkit.data.classification import Data
from labkit.deepnets import fastfit as F
from labkit.env import import_keras

__all__ = ["max_norm_project", "l1_penalty", "l2_penalty", "build_regularized_mlp", "SPECS", "REG_SPECS", "with_label_noise", "RegResult",
           "overfit_experiment"]


def max_norm_project(W, c: float, axis: int = 0, eps: float = 1e-7) -> np.ndarray:
    """Rescale the slices of ``W`` along ``axis`` (for a Dense kernel ``(n_in, n_out)``, ``axis=0``: each unit's
    incoming weights) whose L2 norm exceeds ``c`` to norm ``c`` (Keras' formula, with its ``eps``)."""
    W = np.asarray(W, dtype=np.float64)
    norms = np.sqrt((W ** 2).sum(axis=axis, keepdims=True))
    return W * (np.clip(norms, 0.0, c) / (eps + norms))


def l1_penalty(weights, lam: float) -> float:
    """``λ Σ |w|`` over a list of weight arrays."""
    return float(lam * sum(np.abs(np.asarray(w, dtype=np.float64)).sum() for w in weights))


def l2_penalty(weights, lam: float) -> float:
    """``λ Σ w²`` over a list of weight arrays (Keras' ``L2(λ)``: no factor 1/2)."""
    return float(lam * sum((np.asarray(w, dtype=np.float64) ** 2).sum() for w in weights))


def build_regularized_mlp(n_in: int, n_out: int, depth: int = 2, width: int = 512, l1: float = 0.0,
                          l2: float = 0.0, max_norm: float | None = None, dropout: float = 0.0, seed: int = 0):
    """A ReLU/He MLP like :func:`labkit.deepnets.build_mlp`, with L1 and/or L2 penalties on every kernel, a
    max-norm constraint on every hidden kernel (per unit, ``axis=0``) and dropout after each hidden layer.

    The initial weights depend on ``seed`` only, so every variant starts from the same weights.
    """
    keras = import_keras()
    L = keras.layers
    reg = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    cons = keras.constraints.MaxNorm(max_value=max_norm, axis=0) if max_norm else None
    layers = [keras.Input((n_in,))]
    for i in range(depth):
        layers.append(L.Dense(width, kernel_initializer=keras.initializers.HeNormal(seed=seed + i),
                              kernel_regularizer=reg, kernel_constraint=cons, name=f"dense_{i}"))
        layers.append(L.Activation("relu", name=f"act_{i}"))
        if dropout:
            layers.append(L.Dropout(dropout, seed=seed + i, name=f"dropout_{i}"))
    layers.append(L.Dense(n_out, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                          kernel_regularizer=reg, name="logits"))
    return keras.Sequential(layers)


#: The variants compared: name -> keyword arguments (``build``: for the MLP, ``early``/``augment``: flags).
#: Strengths chosen for few (300) noisy training labels and a 2 x 256 MLP.
REG_SPECS = {
    "none": {},
    "L2": dict(build=dict(l2=3e-3)),
    "L1": dict(build=dict(l1=1e-3)),
    "max-norm": dict(build=dict(max_norm=1.0)),
    "dropout": dict(build=dict(dropout=0.5)),
    "early stopping": dict(early=True),
}
SPECS = REG_SPECS


def with_label_noise(data: Data, fraction: float, seed: int = 0) -> Data:
    """A copy of ``data`` in which a random ``fraction`` of the *training* labels is replaced by a wrong class
    (uniform over the other classes). The test labels stay clean."""
    if not 0 <= fraction < 1:
        raise ValueError(f"LABEL_NOISE must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed + 7)
    y = data.y_train.copy()
    flip = rng.random(len(y)) < fraction
    y[flip] = (y[flip] + rng.integers(1, data.n_classes, int(flip.sum()))) % data.n_classes
    return Data(data.name, data.X_train, y, data.X_test, data.y_test, data.image_shape, data.n_classes)


@dataclass
class RegResult:
    """Per variant: the learning curves (``epoch``, ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc``
    per chunk), the final ``test_loss``/``test_acc``/``train_acc``, and the trained models."""

    curves: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)

    def table(self):
        """A pandas DataFrame: one row per variant (train accuracy, test accuracy, test loss)."""
        import pandas as pd

        return pd.DataFrame(self.final).T[["train_acc", "test_acc", "test_loss"]]


def overfit_experiment(data: Data, n_train: int = 300, n_val: int = 100, width: int = 256, epochs: int = 100,
                       chunks: int = 10, lr: float = 3e-3, batch_size: int = 32, noise: float = 0.2, seed: int = 0,
                       specs=None, progress=None) -> RegResult:
    """Train one wide MLP per variant in :data:`SPECS` on ``n_train`` training images; test on the test split.

    ``n_val`` further training images are held out as the validation split of early stopping (the other
    variants do not use them). Every variant starts from the same weights and sees the same batches.
    ``progress`` (e.g. a tqdm bar) is updated once per variant.
    """
    keras = import_keras()
    specs = SPECS if specs is None else specs
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(data.X_train))
    tr, va = idx[:n_train], idx[n_train:n_train + n_val]
    Xtr, ytr, Xva, yva = data.X_train[tr], data.y_train[tr], data.X_train[va], data.y_train[va]
    test = (data.X_test, data.y_test)
    out = RegResult()
    for name, spec in specs.items():
        keras.utils.set_random_seed(seed)
        model = build_regularized_mlp(data.n_features, data.n_classes, width=width, seed=seed,
                                      **spec.get("build", {}))
        F.compile_classifier(model, keras.optimizers.Adam(lr))
        augment = ((lambda X, r: (X + noise * r.normal(size=X.shape)).astype("float32"))
                   if spec.get("augment") else None)
        hist = {k: [] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}
        best = (np.inf, None, None)
        bounds = F.chunk_bounds(epochs, chunks)
        for c, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            h = F.fit_steps(model, Xtr, ytr, epochs=int(b - a), batch_size=batch_size, seed=seed * 1000 + c,
                            augment=augment, eval_data=test)
            h["epoch"] = [int(b)]
            for k in hist:
                hist[k].extend(h[k])
            if spec.get("early"):
                vl = F.evaluate(model, Xva, yva)[0]
                if vl < best[0]:
                    best = (vl, model.get_weights(), c)
        if spec.get("early"):
            model.set_weights(best[1])
        tl, ta = F.evaluate(model, *test)
        out.curves[name] = hist
        out.final[name] = dict(train_acc=F.evaluate(model, Xtr, ytr)[1], test_acc=ta, test_loss=tl,
                               stopped_at=int(bounds[best[2] + 1]) if spec.get("early") else epochs)
        out.models[name] = model
        if progress is not None:
            progress.update()
    return out
