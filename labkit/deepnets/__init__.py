"""Training deep nets (notebook 02, and the MLP of notebook 01): one concept per module.

* :mod:`~labkit.deepnets.activations` — activation functions and derivatives in NumPy, the Keras layers;
* :mod:`~labkit.deepnets.initialization` — the variance rules (LeCun, Glorot, He), the lecture's wrong table,
  Keras initializers;
* :mod:`~labkit.deepnets.propagation` — a deep MLP forward and backward by hand (variance, gradient norms,
  dead units, batch norm): what the Glorot/He analysis is about;
* :mod:`~labkit.deepnets.mlp` — a Keras MLP to build, train and look inside;
* :mod:`~labkit.deepnets.transfer` — reusing a trained net's lower layers;
* :mod:`~labkit.deepnets.regularization` — L1, L2, max-norm, dropout, early stopping where overfitting shows;
* :mod:`~labkit.deepnets.mc_dropout` — MC dropout uncertainty;
* :mod:`~labkit.deepnets.fastfit` — fitting a small Keras model without Keras' per-epoch overhead.

The names of the first five are available here too (``from labkit import deepnets as D; D.init_std(...)``).
The data the nets train on comes from :mod:`labkit.data.classification`. ``tests/test_deepnets.py`` checks
the activations and derivatives against Keras/TensorFlow, the initializers against ``keras.initializers`` and
the hand-written backward pass (with and without BN) against TensorFlow's autodiff.
"""
from .activations import ACTIVATIONS, SELU_ALPHA, SELU_SCALE, activation, activation_grad, activation_layer
from .initialization import INITS, LECTURE_TABLE, THEORY_TABLE, init_std, init_weights, keras_initializer
from .mlp import build_mlp, dead_unit_fraction, dense_layers, layer_gradient_norms, train
from .propagation import mean_profile, signal_propagation, variance_grid
from .transfer import reuse_lower_layers, set_trainable

__all__ = [
    "ACTIVATIONS", "SELU_ALPHA", "SELU_SCALE", "activation", "activation_grad", "activation_layer",
    "INITS", "LECTURE_TABLE", "THEORY_TABLE", "init_std", "init_weights", "keras_initializer",
    "build_mlp", "dead_unit_fraction", "dense_layers", "layer_gradient_norms", "train",
    "mean_profile", "signal_propagation", "variance_grid", "reuse_lower_layers", "set_trainable",
]
