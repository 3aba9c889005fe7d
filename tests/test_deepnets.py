"""labkit.deepnets against Keras/TensorFlow, and the behaviour the Glorot/He analysis predicts.

Tolerances: activations and derivatives vs Keras/TF in float64: 1e-10 (GELU 1e-7 because of
erf implementations); initializer variances vs Keras samples: 5 % (240,000 draws); hand-written
backward pass vs tf.GradientTape: 1e-8 relative (GELU 1e-6: erf).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import math

import numpy as np
import pytest

from labkit import deepnets as D
from labkit.data import classification as CD
from labkit.env import import_keras

keras = import_keras()
import tensorflow as tf  # noqa: E402  (after import_keras: Triton first)

Z = np.linspace(-6, 6, 241)

KERAS_ACTS = {
    "relu": lambda x: keras.activations.relu(x),
    "sigmoid": lambda x: keras.activations.sigmoid(x),
    "tanh": lambda x: keras.activations.tanh(x),
    "elu": lambda x: keras.activations.elu(x),
    "selu": lambda x: keras.activations.selu(x),
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "silu": lambda x: keras.activations.silu(x),
    # 0.125 is exact in float32 (Keras casts a Python 0.01 through float32)
    "leaky_relu": lambda x: keras.activations.leaky_relu(x, negative_slope=0.125),
}
OUR_KW = {"leaky_relu": {"alpha": 0.125}}


@pytest.mark.parametrize("name", sorted(KERAS_ACTS))
def test_activation_and_derivative_match_tensorflow(name):
    x = tf.constant(Z, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = KERAS_ACTS[name](x)
    dy = tape.gradient(y, x).numpy()
    tol = 1e-7 if name == "gelu" else 1e-10
    kw = OUR_KW.get(name, {})
    np.testing.assert_allclose(D.activation(name, Z, **kw), y.numpy(), rtol=tol, atol=tol)
    mask = np.abs(Z) > 1e-9  # relu-like kinks at 0 are conventions
    np.testing.assert_allclose(D.activation_grad(name, Z, **kw)[mask], dy[mask], rtol=tol, atol=tol)


def test_prelu_matches_keras_layer_and_rrelu_behaves():
    layer = D.activation_layer("prelu", alpha=0.3)
    out = layer(tf.constant(Z[None, :], dtype=tf.float32)).numpy()[0]
    np.testing.assert_allclose(D.activation("prelu", Z, alpha=0.3), out, rtol=1e-6, atol=1e-6)
    # RReLU: mean slope at inference, random slopes in [lower, upper] while training
    neg = -np.ones(20000)
    ev = D.activation("rrelu", neg)
    np.testing.assert_allclose(ev, -(1 / 8 + 1 / 3) / 2)
    tr = -D.activation("rrelu", neg, training=True, rng=np.random.default_rng(0))
    assert 1 / 8 <= tr.min() and tr.max() <= 1 / 3 and abs(tr.mean() - (1 / 8 + 1 / 3) / 2) < 0.005
    k = D.activation_layer("rrelu", seed=1)
    kt = -k(tf.constant(neg, dtype=tf.float32), training=True).numpy()
    assert 1 / 8 - 1e-6 <= kt.min() and kt.max() <= 1 / 3 + 1e-6 and kt.std() > 0.05
    np.testing.assert_allclose(k(tf.constant([-1.0]), training=False).numpy(), [-(1 / 8 + 1 / 3) / 2], rtol=1e-6)


@pytest.mark.parametrize("kind", ["lecun_normal", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
                                  "lecture_logistic", "glorot_x4"])
def test_initializer_variance_matches_keras(kind):
    fan_in, fan_out = 400, 600
    ours = D.init_weights(kind, fan_in, fan_out, np.random.default_rng(0))
    ref = np.asarray(D.keras_initializer(kind, seed=0)((fan_in, fan_out)))
    expected = D.init_std(kind, fan_in, fan_out) ** 2
    assert ours.var() == pytest.approx(expected, rel=0.05)
    assert ref.var() == pytest.approx(expected, rel=0.05)
    if "uniform" in kind:  # the limit is r = √3 σ = √(6/(n_in+n_out)) (Glorot) or √(6/n_in) (He)
        r = math.sqrt(6 / (fan_in + fan_out)) if kind.startswith("glorot") else math.sqrt(6 / fan_in)
        assert np.abs(ref).max() <= r and np.abs(ref).max() > 0.99 * r
        assert np.abs(ours).max() <= r and np.abs(ours).max() > 0.99 * r


def test_lecture_table_is_three_times_glorot():
    assert D.init_std("lecture_logistic", 100, 300) ** 2 == pytest.approx(3 * D.init_std("glorot_normal", 100, 300) ** 2)


@pytest.mark.parametrize("act,bn", [("tanh", False), ("elu", False), ("gelu", True), ("relu", True)])
def test_manual_backward_matches_gradient_tape(act, bn):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 8))
    Ws = [rng.normal(0, 0.5, size=(8, 8)) for _ in range(4)]
    ours = D.signal_propagation(activation_name=act, x=x, weights=Ws, batchnorm=bn, seed=5)
    R = np.random.default_rng(5).normal(size=(16, 8))  # the same R signal_propagation draws
    tW = [tf.Variable(W) for W in Ws]
    with tf.GradientTape() as tape:
        a = tf.constant(x)
        for W in tW:
            z = a @ W
            if bn:
                mu, var = tf.nn.moments(z, axes=[0])
                z = (z - mu) / tf.sqrt(var + 1e-5)
            a = KERAS_ACTS[act](z)
        loss = tf.reduce_sum(a * R) / x.shape[0]
    grads = tape.gradient(loss, tW)
    ref = np.array([np.linalg.norm(g.numpy()) for g in grads])
    np.testing.assert_allclose(ours["grad_norm"], ref, rtol=1e-6 if act == "gelu" else 1e-8)


# ------------------------------------------------------------------ the behaviour the theory predicts

def test_he_relu_keeps_the_variance_over_50_layers():
    prof = D.mean_profile(8, seed=0, depth=50, width=512, activation_name="relu", init="he_normal", n=16,
                          backward=False)
    v = prof["pre_var"]
    assert v.max() / v.min() < 2.0, v
    # and the first layer has the predicted Var(z₁) = 2 Var(x) (He: σ² = 2/n_in on N(0, 1) inputs)
    assert v[0] / prof["in_var"] == pytest.approx(2.0, rel=0.1)


def test_bad_scales_do_not():
    # N(0,1) + sigmoid: Var(z) ≈ n·E[a²] ≫ 1 in every layer → saturated units (σ' ≈ 0)
    r = D.signal_propagation(50, 128, "sigmoid", "normal_1", n=128, seed=0, keep_activations=True)
    assert np.all(r["pre_var"] / r["in_var"] > 10)
    assert np.mean(np.abs(r["z"][-1]) > 4) > 0.5
    # Glorot (1/n_in for equal fans) + ReLU halves the variance per layer: it vanishes
    r = D.signal_propagation(50, 128, "relu", "glorot_normal", n=128, seed=0)
    assert r["act_var"][-1] / r["act_var"][0] < 1e-6
    # Glorot + sigmoid: the gradient vanishes towards the input (σ' ≤ 1/4 per layer)
    r = D.signal_propagation(50, 128, "sigmoid", "glorot_normal", n=128, seed=0)
    assert r["grad_norm"][0] / r["grad_norm"][-1] < 1e-6
    # ×4 (the logistic row of Glorot & Bengio) makes the sigmoid's gradient vanish far less
    r4 = D.signal_propagation(50, 128, "sigmoid", "glorot_x4", n=128, seed=0)
    assert r4["grad_norm"][0] / r4["grad_norm"][-1] > 1e6 * r["grad_norm"][0] / r["grad_norm"][-1]
    # N(0,1) + tanh: the gradient explodes towards the input
    r = D.signal_propagation(50, 128, "tanh", "normal_1", n=128, seed=0)
    assert r["grad_norm"][0] / r["grad_norm"][-1] > 1e6


def test_selu_self_normalizes_and_batchnorm_rescues_a_bad_init():
    r = D.signal_propagation(50, 128, "selu", "lecun_normal", n=128, seed=0)
    assert 0.5 < r["act_var"][-1] / r["act_var"][0] < 2
    bad = D.signal_propagation(50, 128, "relu", "normal_1", n=128, seed=0)
    bn = D.signal_propagation(50, 128, "relu", "normal_1", n=128, seed=0, batchnorm=True)
    assert bad["act_var"][-1] / bad["act_var"][0] > 1e20
    assert 0.5 < bn["act_var"][-1] / bn["act_var"][0] < 2


def test_variance_grid_has_one_row_per_pair():
    g = D.variance_grid(["he_normal", "glorot_normal"], ["relu", "tanh"], depth=5, width=16, n=32)
    assert len(g) == 4 and {"var_ratio", "grad_ratio", "dead_last"} <= set(g.columns)


# ------------------------------------------------------------------------------------ Keras side

@pytest.fixture(scope="module")
def digits():
    return CD.load_dataset("digits", seed=0)


def test_mlp_training_dead_units_gradients_and_transfer(digits):
    """Training, dead units, gradient norms and transfer by reusing the lower layers.

    Mutations caught (each run against this test and seen to fail): ``reuse_lower_layers`` without
    ``set_weights`` (the reused layers start from a fresh initialization, not base's trained weights),
    reusing base's own layer objects instead of copies (fine-tuning the new model then moves base), and
    ``freeze`` ignored (the reused layers are trainable and move in the first training)."""
    a = CD.subset_classes(digits, [0, 1, 2, 3, 4])
    b = CD.subset_classes(digits, [5, 6, 7, 8, 9], n_per_class=20)
    base = D.build_mlp(64, 5, depth=2, width=32, seed=0)
    h = D.train(base, a, optimizer=keras.optimizers.Adam(0.01), epochs=3)
    assert h["val_accuracy"][-1] > 0.8
    dead = D.dead_unit_fraction(base, a.X_test)
    assert dead.shape == (2,) and np.all((0 <= dead) & (dead <= 1))
    g = D.layer_gradient_norms(base, a.X_train[:64], a.y_train[:64])
    assert g.shape == (3,) and np.all(g > 0)
    base_before = [w.copy() for w in base.get_weights()]
    new = D.reuse_lower_layers(base, n_reuse=2, n_out=5)
    assert len(D.dense_layers(new)) == 3  # two reused blocks and the new head
    for reused, trained in zip(D.dense_layers(new)[:2], D.dense_layers(base)[:2]):
        assert reused.trainable is False and reused is not trained
        for w_new, w_base in zip(reused.get_weights(), trained.get_weights(), strict=True):
            np.testing.assert_array_equal(w_new, w_base)  # base's trained weights, copied
    frozen_before = [w.copy() for w in new.get_weights()[:-2]]
    D.train(new, b, optimizer=keras.optimizers.Adam(0.01), epochs=2)
    for w0, w1 in zip(frozen_before, new.get_weights()[:-2]):
        np.testing.assert_array_equal(w0, w1)  # frozen layers did not move
    D.set_trainable(new, True)
    D.train(new, b, optimizer=keras.optimizers.Adam(1e-3), epochs=1)
    assert not np.array_equal(frozen_before[0], new.get_weights()[0])  # fine-tuning moves them
    for w0, w1 in zip(base_before, base.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)  # ... and leaves base untouched: the layers are copies
