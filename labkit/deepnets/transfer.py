"""Transfer learning with Keras: reuse a trained net's lower layers under a new head, frozen or not (notebook 02).
"""
from __future__ import annotations

from labkit.env import import_keras

__all__ = ["reuse_lower_layers", "set_trainable"]


def reuse_lower_layers(base, n_reuse: int, n_out: int, freeze: bool = True, seed: int = 0):
    """A new model made of *copies* of ``base``'s first ``n_reuse`` hidden blocks plus a new head.

    A block is Dense → (BN) → activation → (Dropout). The copied layers get the trained weights
    and ``trainable = not freeze``; ``base`` itself is left untouched. The new head is
    Dense(n_out) with fresh weights.
    """
    keras = import_keras()
    cloned = keras.models.clone_model(base)
    cloned.set_weights(base.get_weights())
    layers, blocks = [], 0
    for layer in cloned.layers:
        if isinstance(layer, keras.layers.Dense):
            if blocks == n_reuse or layer.name == "logits":
                break
            blocks += 1
        layer.trainable = not freeze
        layers.append(layer)
    head = keras.layers.Dense(n_out, kernel_initializer=keras.initializers.GlorotUniform(seed=seed), name="new_logits")
    return keras.Sequential([keras.Input(base.inputs[0].shape[1:])] + layers + [head])


def set_trainable(model, trainable: bool = True):
    """Set ``trainable`` on every layer (recompile afterwards, as Keras requires)."""
    for layer in model.layers:
        layer.trainable = trainable
    return model
