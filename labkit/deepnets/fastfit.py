"""Train a small Keras model on a small data set without Keras' per-epoch overhead.

``model.fit(epochs=E)`` on a few dozen images spends most of its time starting and ending epochs (iterators,
callbacks, validation), not in the gradient steps. :func:`fit_steps` gives Keras the same mini-batches in **one**
epoch: the training set reshuffled ``epochs`` times and concatenated, so it takes exactly the steps of ``epochs``
ordinary epochs (the last batch of each pass may mix two passes). ``chunks`` splits the run into that many
``fit`` calls so that the test loss can be recorded along the way (a learning curve in ``chunks`` points).
Used by :mod:`labkit.deepnets.regularization` and :mod:`labkit.deepnets.mc_dropout`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from labkit.env import import_keras

__all__ = ["compile_classifier", "chunk_bounds", "fit_steps", "evaluate"]


def compile_classifier(model, optimizer):
    """Compile ``model`` for integer labels and logits: sparse categorical cross-entropy, accuracy."""
    keras = import_keras()
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def evaluate(model, X, y) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of a logits model on ``(X, y)``, in inference mode."""
    logits = np.asarray(model(np.asarray(X, dtype="float32"), training=False), dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    y = np.asarray(y)
    return float(-logp[np.arange(len(y)), y].mean()), float((logp.argmax(1) == y).mean())


def chunk_bounds(epochs: int, chunks: int) -> np.ndarray:
    """Epoch boundaries ``0 = b_0 < b_1 < ... = epochs`` of at most ``chunks`` chunks, never an empty one."""
    return np.linspace(0, epochs, max(1, min(int(chunks), int(epochs))) + 1).round().astype(int)


def fit_steps(model, X, y, epochs: int, batch_size: int = 32, seed: int = 0, chunks: int = 1,
              augment: Callable | None = None, eval_data=None) -> dict:
    """Train a compiled model for ``epochs`` passes over ``(X, y)`` in ``chunks`` ``fit`` calls.

    ``augment(X, rng)`` returns a new version of the images for every pass. ``eval_data=(X_test, y_test)``
    records the test loss and accuracy after each chunk. Returns ``{"epoch": [...], "train_loss": [...],
    "train_acc": [...], "test_loss": [...], "test_acc": [...]}`` (one value per chunk; test keys only with
    ``eval_data``), the train values measured on the chunk's last pass over the training set (augmented, if
    ``augment`` is given) in inference mode.
    """
    if int(epochs) < 1:
        raise ValueError(f"fit_steps needs epochs >= 1, got epochs={epochs}")
    X = np.asarray(X, dtype="float32")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    bounds = chunk_bounds(epochs, chunks)
    hist: dict[str, list] = {"epoch": [], "train_loss": [], "train_acc": []}
    if eval_data is not None:
        hist["test_loss"], hist["test_acc"] = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        xs, ys = [], []
        for _ in range(b - a):
            order = rng.permutation(len(X))
            xs.append(augment(X, rng)[order] if augment is not None else X[order])
            ys.append(y[order])
        model.fit(np.concatenate(xs).astype("float32"), np.concatenate(ys), epochs=1, batch_size=batch_size,
                  shuffle=False, verbose=0)
        hist["epoch"].append(int(b))
        tl, ta = evaluate(model, xs[-1], ys[-1])
        hist["train_loss"].append(tl)
        hist["train_acc"].append(ta)
        if eval_data is not None:
            vl, va = evaluate(model, *eval_data)
            hist["test_loss"].append(vl)
            hist["test_acc"].append(va)
    return hist
