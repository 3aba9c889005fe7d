"""Training deep nets: activations, initialization, batch norm, clipping, transfer, regularization.

Two halves:

* **NumPy** — the activations (with their derivatives), the weight initializations (including the
  lecture's wrong table, to show what goes wrong) and :func:`signal_propagation`, a 50-layer MLP
  run forward and backward by hand that records per-layer activation variance, gradient norm and
  dead-ReLU fraction (optionally with batch normalization). Fast enough for a widget.
* **Keras** — data (:func:`load_dataset`: scikit-learn digits offline, MNIST/Fashion-MNIST online),
  :func:`build_mlp`, :func:`train`, and helpers for dead units, gradient norms, transfer learning and
  augmentation, used by ``notebooks/02_init_activations_bn.ipynb`` (and ``01``).

``tests/test_deepnets.py`` checks activations and derivatives against ``keras.activations`` /
``tf.GradientTape``, the initializers against ``keras.initializers``, the hand-written backward
pass (with and without BN) against TensorFlow autodiff, and the expected behaviour (He + ReLU keeps
the variance over 50 layers, N(0, 1) + sigmoid does not).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from labkit.optim import import_keras

__all__ = [
    "ACTIVATIONS", "activation", "activation_grad", "INITS", "init_std", "init_weights", "THEORY_TABLE",
    "LECTURE_TABLE", "signal_propagation", "mean_profile", "variance_grid",
    "Data", "load_dataset", "build_mlp", "train", "dense_layers", "dead_unit_fraction", "layer_gradient_norms",
    "reuse_lower_layers", "set_trainable", "activation_layer", "keras_initializer", "subset_classes", "shift_augment",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# ------------------------------------------------------------------------------------ activations

def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # numerically stable logistic


def _phi(z):  # standard normal pdf
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _Phi(z):  # standard normal cdf
    from scipy.special import erf

    return 0.5 * (1.0 + erf(z / math.sqrt(2.0)))


def _rrelu(z, lower=1 / 8, upper=1 / 3, training=False, rng=None):
    if not training:
        a = 0.5 * (lower + upper)
        return np.where(z >= 0, z, a * z)
    rng = np.random.default_rng() if rng is None else rng
    a = rng.uniform(lower, upper, size=np.shape(z))
    return np.where(z >= 0, z, a * z)


#: name → (forward f(z, **kw), derivative f'(z, **kw)). Defaults: leaky α = 0.01 (lecture), ELU α = 1,
#: RReLU α ~ U[1/8, 1/3] while training (Xu et al. 2015; PyTorch), its mean at inference;
#: PReLU is a leaky ReLU whose α is learned (``alpha=`` here, 0.25 at init as in PyTorch/He et al.).
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda z, alpha=0.01: np.where(z >= 0, z, alpha * z),
                   lambda z, alpha=0.01: np.where(z >= 0, 1.0, alpha)),
    "rrelu": (_rrelu, lambda z, lower=1 / 8, upper=1 / 3: np.where(z >= 0, 1.0, 0.5 * (lower + upper))),
    "prelu": (lambda z, alpha=0.25: np.where(z >= 0, z, alpha * z),
              lambda z, alpha=0.25: np.where(z >= 0, 1.0, alpha)),
    "elu": (lambda z, alpha=1.0: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))),
            lambda z, alpha=1.0: np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0)))),
    "selu": (lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
             lambda z: SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0)))),
    "gelu": (lambda z: z * _Phi(z), lambda z: _Phi(z) + z * _phi(z)),
    "silu": (lambda z: z * _sigmoid(z), lambda z: _sigmoid(z) * (1 + z * (1 - _sigmoid(z)))),
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]


def activation(name: str, z, **kw):
    """Apply activation ``name`` (see :data:`ACTIVATIONS`) to ``z``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name][0](np.asarray(z, dtype=float), **kw)


def activation_grad(name: str, z, **kw):
    """Derivative of activation ``name`` at ``z`` (RReLU: its inference-time slope)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name][1](np.asarray(z, dtype=float), **kw)


# --------------------------------------------------------------------------------- initializers

#: name → (distribution, variance as a function of fan_in, fan_out).
#: Correct values: Glorot σ² = 2/(n_in+n_out) (uniform limit r = √(6/(n_in+n_out)), since Var U[−r, r] = r²/3),
#: He σ² = 2/n_in, LeCun σ² = 1/n_in. ``glorot_x4`` is Glorot × 4 (the logistic-sigmoid row of the
#: Glorot & Bengio / Theano table). ``lecture_*`` are the lecture's normal-distribution entries,
#: which use the *uniform* constant 6 (variance 3× too large), and ×4 for tanh.
INITS: dict[str, tuple[str, Callable[[int, int], float]]] = {
    "normal_1": ("normal", lambda i, o: 1.0),
    "normal_0.01": ("normal", lambda i, o: 1e-4),
    "lecun_normal": ("normal", lambda i, o: 1.0 / i),
    "glorot_normal": ("normal", lambda i, o: 2.0 / (i + o)),
    "glorot_uniform": ("uniform", lambda i, o: 2.0 / (i + o)),
    "glorot_x4": ("normal", lambda i, o: 16 * 2.0 / (i + o)),
    "he_normal": ("normal", lambda i, o: 2.0 / i),
    "he_uniform": ("uniform", lambda i, o: 2.0 / i),
    "lecture_logistic": ("normal", lambda i, o: 6.0 / (i + o)),
    "lecture_tanh": ("normal", lambda i, o: 16 * 6.0 / (i + o)),
    "lecture_relu": ("normal", lambda i, o: 2 * 6.0 / (i + o)),
}

#: The corrected table (std of the normal, limit r of the uniform), as formulas.
THEORY_TABLE = {
    "logistic (sigmoid)": ("r = 4·√(6/(n_in+n_out))", "σ = 4·√(2/(n_in+n_out))"),
    "tanh": ("r = √(6/(n_in+n_out))", "σ = √(2/(n_in+n_out))"),
    "ReLU (and variants)": ("r = √2·√(6/(n_in+n_out)) (He: √(6/n_in))", "σ = √2·√(2/(n_in+n_out)) (He: √(2/n_in))"),
}
#: What the lecture prints (wrong: 6 under the root for σ, and the ×4 row attached to tanh).
LECTURE_TABLE = {
    "logistyczna": ("r = √(6/(n_in+n_out))", "σ = √(6/(n_in+n_out))"),
    "tang. hiperboliczny": ("r = 4·√(6/(n_in+n_out))", "σ = 4·√(6/(n_in+n_out))"),
    "typu ReLU": ("r = √2·√(6/(n_in+n_out))", "σ = √2·√(6/(n_in+n_out))"),
}


def init_std(kind: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of the weights for initialization ``kind`` (see :data:`INITS`)."""
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}; choose one of {sorted(INITS)}")
    return math.sqrt(INITS[kind][1](fan_in, fan_out))


def init_weights(kind: str, fan_in: int, fan_out: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix. Normal kinds are untruncated; uniform ones use r = √3·σ."""
    rng = np.random.default_rng() if rng is None else rng
    std = init_std(kind, fan_in, fan_out)
    if INITS[kind][0] == "uniform":
        r = math.sqrt(3.0) * std
        return rng.uniform(-r, r, size=(fan_in, fan_out))
    return rng.normal(0.0, std, size=(fan_in, fan_out))


# --------------------------------------------------------------------- signal propagation (NumPy)

def signal_propagation(depth: int = 50, width: int = 128, activation_name: str = "relu", init: str = "he_normal",
                       n: int = 256, batchnorm: bool = False, seed: int = 0, bn_eps: float = 1e-5,
                       keep_activations: bool = False, x=None, weights=None, backward: bool = True,
                       grad_out=None) -> dict:
    """Run a depth-layer MLP (no biases) forward and backward on N(0, 1) inputs, by hand.

    Layer l: z_l = a_{l−1} W_l, [BN: ẑ = (z − mean)/√(var + ε), γ = 1, β = 0], a_l = f(ẑ or z).
    The loss is L = Σ(a_depth ⊙ R)/n with a fixed random R, so ∂L/∂a_depth = R/n.

    Returns a dict of per-layer arrays (index 0 = first layer): ``act_var`` (variance of a_l over
    batch and units), ``pre_var`` (of z_l), ``grad_norm`` (‖∂L/∂W_l‖_F), ``dead`` (fraction of units
    whose pre-activation is ≤ 0 for every sample: a dead ReLU), and the inputs' variance ``in_var``.
    ``keep_activations=True`` adds the lists ``a`` and ``z``. ``x``/``weights`` override the random ones
    (used by the tests to compare with TensorFlow). ``backward=False`` skips the backward pass
    (``grad_norm`` is then NaN). ``grad_out`` overrides the loss gradient ∂L/∂a_depth (default R/n).
    """
    if activation_name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation_name!r}; choose one of {sorted(ACTIVATIONS)}")
    try:  # small matrices: one BLAS thread is faster than several fighting over shared cores
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return _signal_propagation(depth, width, activation_name, init, n, batchnorm, seed, bn_eps,
                                       keep_activations, x, weights, backward, grad_out)
    except ImportError:  # pragma: no cover
        return _signal_propagation(depth, width, activation_name, init, n, batchnorm, seed, bn_eps,
                                   keep_activations, x, weights, backward, grad_out)


def _signal_propagation(depth, width, activation_name, init, n, batchnorm, seed, bn_eps, keep_activations,
                        x, weights, backward, grad_out=None):
    rng = np.random.default_rng(seed)
    f, df = ACTIVATIONS[activation_name]
    x = rng.normal(size=(n, width)) if x is None else np.asarray(x, dtype=float)
    if weights is None:
        weights = [init_weights(init, x.shape[1] if l == 0 else width, width, rng) for l in range(depth)]
    depth = len(weights)
    R = rng.normal(size=(x.shape[0], weights[-1].shape[1]))
    a, zs, zhats, stds, acts = x, [], [], [], [x]
    with np.errstate(over="ignore", invalid="ignore"):
        for W in weights:
            z = a @ W
            zs.append(z)
            if batchnorm:
                mu, var = z.mean(0), z.var(0)
                std = np.sqrt(var + bn_eps)
                zh = (z - mu) / std
                stds.append(std)
            else:
                zh = z
            zhats.append(zh)
            a = f(zh)
            acts.append(a)
        # backward
        grads = [np.full((1, 1), np.nan)] * depth
        g = R / x.shape[0] if grad_out is None else np.asarray(grad_out, dtype=float)  # dL/da_L
        for l in (range(depth - 1, -1, -1) if backward else ()):
            gz = g * df(zhats[l])  # dL/dẑ
            if batchnorm:
                m = gz.shape[0]
                zh = zhats[l]
                gz = (m * gz - gz.sum(0) - zh * (gz * zh).sum(0)) / (m * stds[l])
            grads[l] = acts[l].T @ gz
            g = gz @ weights[l].T
    out = {
        "in_var": float(x.var()),
        "act_var": np.array([float(np.var(a)) for a in acts[1:]]),
        "pre_var": np.array([float(np.var(z)) for z in zs]),
        "grad_norm": np.array([float(np.linalg.norm(gw)) for gw in grads]),
        "dead": np.array([float(np.mean(np.all(z <= 0, axis=0))) for z in zhats]),
        "input_grad": g,
    }
    if keep_activations:
        out["a"] = acts[1:]
        out["z"] = zs
    return out


def mean_profile(n_nets: int = 4, seed: int = 0, **kw) -> dict:
    """:func:`signal_propagation` averaged over ``n_nets`` independent random nets (seeds seed, seed+1, …).

    The Glorot/He derivations are statements about the *expected* variance over random weights; one
    finite-width net fluctuates around it (a random walk in log-variance, step ~ 1/√width).
    """
    runs = [signal_propagation(seed=seed + k, **kw) for k in range(n_nets)]
    keys = ("act_var", "pre_var", "grad_norm", "dead")
    out = {k: np.mean([r[k] for r in runs], axis=0) for k in keys}
    out["in_var"] = float(np.mean([r["in_var"] for r in runs]))
    return out


def variance_grid(inits, activations, depth: int = 50, width: int = 128, n: int = 256, seed: int = 0,
                  batchnorm: bool = False):
    """A pandas DataFrame: one row per (init, activation) with the first/last-layer variance and gradient norm.

    Columns: ``var_first``, ``var_last``, ``var_ratio`` (last/first), ``grad_first``, ``grad_last``,
    ``grad_ratio`` (first/last layer: > 1 exploding towards the input, < 1 vanishing), ``dead_last``.
    """
    import pandas as pd

    rows = []
    for ini in inits:
        for act in activations:
            r = signal_propagation(depth, width, act, ini, n=n, seed=seed, batchnorm=batchnorm)
            rows.append(dict(init=ini, activation=act, var_first=r["act_var"][0], var_last=r["act_var"][-1],
                             var_ratio=r["act_var"][-1] / r["act_var"][0], grad_first=r["grad_norm"][0],
                             grad_last=r["grad_norm"][-1], grad_ratio=r["grad_norm"][0] / r["grad_norm"][-1],
                             dead_last=r["dead"][-1]))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- data

@dataclass
class Data:
    """A classification data set as float32 arrays; images flattened to vectors."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def __repr__(self) -> str:
        return (f"Data({self.name!r}: train {self.X_train.shape}, test {self.X_test.shape}, "
                f"{self.n_classes} classes, images {self.image_shape})")


DATASETS = ("digits", "mnist", "fashion_mnist")


def _keras_cached(name: str) -> bool:
    import os
    from pathlib import Path

    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    if name == "mnist":
        return (home / "mnist.npz").exists()
    return (home / "fashion-mnist").is_dir()


def load_dataset(name: str = "digits", test_size: float = 0.25, seed: int = 0, n_train: int | None = None) -> Data:
    """Load a small image classification set, scaled to [0, 1], flattened.

    ``"digits"`` (default): scikit-learn's 8×8 digits, 1,797 images, shipped with scikit-learn
    (offline), split stratified into train/test with ``test_size``. ``"mnist"`` / ``"fashion_mnist"``:
    28×28 from ``keras.datasets`` — downloaded on first use, so offline (and not cached) they raise a
    clear ``RuntimeError`` right away instead of hanging. ``n_train`` keeps a random subset of the
    training images.
    """
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown DATASET {name!r}; choose one of {DATASETS}")
    rng = np.random.default_rng(seed)
    if key == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        X = (d.data / 16.0).astype("float32")
        Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=test_size, random_state=seed, stratify=d.target)
        shape = (8, 8)
    else:
        if not _keras_cached(key):
            from labkit import env

            if not env.is_online():
                raise RuntimeError(
                    f"DATASET={name!r} needs a download from keras.datasets, but this machine is offline "
                    f"and no cached copy is in ~/.keras/datasets. Use DATASET='digits' (ships with "
                    f"scikit-learn) or run once online.")
        keras = import_keras()
        mod = keras.datasets.mnist if key == "mnist" else keras.datasets.fashion_mnist
        (Xtr, ytr), (Xte, yte) = mod.load_data()
        Xtr = (Xtr.reshape(len(Xtr), -1) / 255.0).astype("float32")
        Xte = (Xte.reshape(len(Xte), -1) / 255.0).astype("float32")
        shape = (28, 28)
    if n_train is not None and n_train < len(Xtr):
        idx = rng.permutation(len(Xtr))[:n_train]
        Xtr, ytr = Xtr[idx], ytr[idx]
    return Data(key, Xtr, np.asarray(ytr, dtype="int64"), Xte, np.asarray(yte, dtype="int64"), shape,
                int(max(ytr.max(), yte.max()) + 1))


def subset_classes(data: Data, classes, n_per_class: int | None = None, seed: int = 0) -> Data:
    """Keep only ``classes`` (relabelled 0…k−1 in the given order); optionally n training images per class."""
    classes = list(classes)
    rng = np.random.default_rng(seed)
    lut = {c: i for i, c in enumerate(classes)}

    def pick(X, y, n):
        idx = []
        for c in classes:
            ids = np.flatnonzero(y == c)
            if n is not None:
                ids = rng.permutation(ids)[:n]
            idx.append(ids)
        idx = np.sort(np.concatenate(idx))
        return X[idx], np.array([lut[v] for v in y[idx]], dtype="int64")

    Xtr, ytr = pick(data.X_train, data.y_train, n_per_class)
    Xte, yte = pick(data.X_test, data.y_test, None)
    return Data(f"{data.name}{classes}", Xtr, ytr, Xte, yte, data.image_shape, len(classes))


def shift_augment(X: np.ndarray, image_shape, max_shift: int = 1, rng=None) -> np.ndarray:
    """Shift each flattened image by a random (dy, dx) in [−max_shift, max_shift], filling with zeros."""
    rng = np.random.default_rng() if rng is None else rng
    h, w = image_shape
    imgs = X.reshape(len(X), h, w)
    out = np.zeros_like(imgs)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(X), 2))
    for i, (dy, dx) in enumerate(shifts):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, yd, xd] = imgs[i, ys, xs]
    return out.reshape(len(X), -1)


# ---------------------------------------------------------------------------------------- Keras

def _rrelu_layer_class():
    keras = import_keras()

    class RReLU(keras.layers.Layer):
        """Randomized leaky ReLU: α ~ U[lower, upper] per element while training, its mean at inference."""

        def __init__(self, lower=1 / 8, upper=1 / 3, seed=None, **kw):
            super().__init__(**kw)
            self.lower, self.upper = lower, upper
            self.seed_gen = keras.random.SeedGenerator(seed)

        def call(self, x, training=False):
            if training:
                a = keras.random.uniform(keras.ops.shape(x), self.lower, self.upper, seed=self.seed_gen)
            else:
                a = 0.5 * (self.lower + self.upper)
            return keras.ops.where(x >= 0, x, a * x)

    return RReLU


def activation_layer(kind: str, **kw):
    """A Keras layer for activation ``kind`` (the names of :data:`ACTIVATIONS`)."""
    keras = import_keras()
    L = keras.layers
    if kind == "leaky_relu":
        return L.LeakyReLU(negative_slope=kw.pop("alpha", 0.01), **kw)
    if kind == "prelu":
        return L.PReLU(alpha_initializer=keras.initializers.Constant(kw.pop("alpha", 0.25)), **kw)
    if kind == "rrelu":
        return _rrelu_layer_class()(**kw)
    if kind == "swish":
        kind = "silu"
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; choose one of {sorted(ACTIVATIONS)}")
    return L.Activation(kind, **kw)


def keras_initializer(kind: str, seed: int | None = None):
    """Keras initializer for an :data:`INITS` name (Keras' own for the standard ones)."""
    keras = import_keras()
    I = keras.initializers
    std_ones = {"lecun_normal": I.LecunNormal, "glorot_normal": I.GlorotNormal, "glorot_uniform": I.GlorotUniform,
                "he_normal": I.HeNormal, "he_uniform": I.HeUniform}
    if kind in std_ones:
        return std_ones[kind](seed=seed)
    if kind not in INITS:
        raise ValueError(f"unknown init {kind!r}; choose one of {sorted(INITS)}")
    scale = INITS[kind][1](1, 1)  # variance for fan_in = fan_out = 1 … as a VarianceScaling factor:
    if kind.startswith("normal_"):
        return I.RandomNormal(stddev=math.sqrt(scale), seed=seed)
    factor = {"glorot_x4": 16.0, "lecture_logistic": 3.0, "lecture_tanh": 48.0, "lecture_relu": 6.0}[kind]
    return I.VarianceScaling(scale=factor, mode="fan_avg", distribution="untruncated_normal", seed=seed)


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
