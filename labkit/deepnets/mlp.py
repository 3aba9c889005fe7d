"""A Keras MLP to experiment with: build, train, and look inside (dead units, per-layer gradient norms).

:func:`build_mlp` stacks Dense → (BatchNorm) → activation → (Dropout) blocks with any activation of
:mod:`labkit.deepnets.activations` and any initialization of :mod:`labkit.deepnets.initialization`;
:func:`train` fits it on a :class:`labkit.data.classification.Data` set. Used by notebooks 01 and 02.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from labkit.data.classification import Data
from labkit.deepnets.activations import activation_layer
from labkit.deepnets.initialization import keras_initializer
from labkit.env import import_keras

__all__ = ["build_mlp", "train", "dense_layers", "dead_unit_fraction", "layer_gradient_norms"]


def build_mlp(n_in: int, n_out: int, depth: int = 2, width: int = 64, activation: str = "relu",
              init: str = "he_normal", batchnorm: bool = False, dropout: float = 0.0, l2: float = 0.0,
              seed: int | None = 0, name: str | None = None, bn_momentum: float = 0.9):
    """A Keras MLP: ``depth`` × [Dense(width) → (BatchNorm) → activation → (Dropout)] → Dense(n_out) logits.

    The Dense layers are linear (the activation is a separate layer, so its outputs can be read);
    with batch norm the Dense layers have no bias (BN's β replaces it), as the lecture's recipe does,
    and BN's moving averages use ``momentum=0.9`` as in the lecture (Keras' default 0.99 needs
    many more steps before the inference-time statistics are usable).
    """
    keras = import_keras()
    L = keras.layers
    reg = keras.regularizers.L2(l2) if l2 else None
    layers = [keras.Input((n_in,))]
    for i in range(depth):
        s = None if seed is None else seed + i
        layers.append(L.Dense(width, kernel_initializer=keras_initializer(init, s), use_bias=not batchnorm,
                              kernel_regularizer=reg, name=f"dense_{i}"))
        if batchnorm:
            layers.append(L.BatchNormalization(momentum=bn_momentum, name=f"bn_{i}"))
        layers.append(activation_layer(activation, name=f"act_{i}"))
        if dropout:
            layers.append(L.Dropout(dropout, seed=s, name=f"dropout_{i}"))
    layers.append(L.Dense(n_out, kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                          kernel_regularizer=reg, name="logits"))
    return keras.Sequential(layers, name=name)


def train(model, data: Data, optimizer="adam", epochs: int = 10, batch_size: int = 32, callbacks=None,
          augment: Callable | None = None, seed: int = 0, verbose: int = 0, compile: bool = True) -> dict:
    """Compile (sparse categorical cross-entropy on logits, accuracy) and fit; return the history dict.

    The test split is the validation data (``val_loss``/``val_accuracy``). ``augment(X, rng)`` makes a
    new version of the training images every epoch. ``compile=False`` keeps the model's optimizer.
    """
    keras = import_keras()
    if compile:
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    val = (data.X_test, data.y_test)
    if augment is None:
        h = model.fit(data.X_train, data.y_train, validation_data=val, epochs=epochs, batch_size=batch_size,
                      callbacks=callbacks, verbose=verbose, shuffle=True)
        return {k: list(map(float, v)) for k, v in h.history.items()}
    rng = np.random.default_rng(seed)
    hist: dict[str, list] = {}
    for ep in range(epochs):
        Xa = augment(data.X_train, rng)
        h = model.fit(Xa, data.y_train, validation_data=val, epochs=ep + 1, initial_epoch=ep,
                      batch_size=batch_size, callbacks=callbacks, verbose=verbose, shuffle=True)
        for k, v in h.history.items():
            hist.setdefault(k, []).extend(map(float, v))
    return hist


def dense_layers(model):
    """The model's Dense layers, in order."""
    keras = import_keras()
    return [l for l in model.layers if isinstance(l, keras.layers.Dense)]


def _act_layers(model):
    return [l for l in model.layers if l.name.startswith("act_")]


def dead_unit_fraction(model, X) -> np.ndarray:
    """Per hidden layer: fraction of units whose activation output is exactly 0 for every row of X."""
    keras = import_keras()
    acts = _act_layers(model)
    probe = keras.Model(model.inputs[0], [l.output for l in acts])
    outs = probe(np.asarray(X, dtype="float32"), training=False)
    outs = [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]
    return np.array([float(np.mean(np.all(o == 0, axis=0))) for o in outs])


def layer_gradient_norms(model, X, y) -> np.ndarray:
    """‖∂L/∂W‖_F of every Dense kernel (input side first) for the cross-entropy on (X, y), training mode."""
    keras = import_keras()
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kernels = [l.kernel for l in dense_layers(model)]
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(np.asarray(X, dtype="float32"), training=True))
    grads = tape.gradient(loss, kernels)
    return np.array([float(tf.norm(g)) if g is not None else 0.0 for g in grads])
