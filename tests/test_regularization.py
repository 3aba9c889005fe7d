"""labkit.deepnets.regularization: max-norm and the penalties against Keras (float32: 1e-6 relative)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from labkit.deepnets import regularization as R
from labkit.env import import_keras

keras = import_keras()


def test_max_norm_matches_keras_constraint():
    # catches: normalising rows instead of columns (axis), or rescaling every column, not only the long ones
    rng = np.random.default_rng(0)
    W = (rng.normal(size=(20, 7)) * np.array([0.05, 0.1, 0.3, 1, 2, 3, 5])).astype("float32")
    ours = R.max_norm_project(W, 1.0, axis=0)
    ref = np.asarray(keras.constraints.MaxNorm(max_value=1.0, axis=0)(W))
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)
    norms = np.linalg.norm(ours, axis=0)
    assert norms.max() <= 1.0 + 1e-6
    short = np.linalg.norm(W, axis=0) < 1
    np.testing.assert_allclose(ours[:, short], W[:, short], rtol=1e-6)


def test_penalties_match_keras_regularizers():
    # catches: L2 with a factor 1/2 or L1 of squared weights
    W = [np.random.default_rng(1).normal(size=(5, 4)).astype("float32"), np.ones((4, 2), "float32")]
    assert np.isclose(R.l1_penalty(W, 0.01), sum(float(keras.regularizers.L1(0.01)(w)) for w in W), rtol=1e-6)
    assert np.isclose(R.l2_penalty(W, 0.01), sum(float(keras.regularizers.L2(0.01)(w)) for w in W), rtol=1e-6)


def test_regularized_mlp_applies_the_constraint_during_training():
    # catches: the constraint not attached to the hidden kernels
    keras.utils.set_random_seed(0)
    m = R.build_regularized_mlp(8, 3, width=16, max_norm=0.5, seed=0)
    m.compile(optimizer=keras.optimizers.SGD(1.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    X = np.random.default_rng(0).normal(size=(64, 8)).astype("float32") * 5
    m.fit(X, np.arange(64) % 3, epochs=2, batch_size=16, verbose=0)
    for layer in m.layers:
        if layer.name.startswith("dense_"):
            assert np.linalg.norm(np.asarray(layer.kernel), axis=0).max() <= 0.5 + 1e-5


def test_fewer_epochs_than_chunks_still_trains_every_epoch():
    """5 epochs in the default 10 chunks (the tiny profile) used to call fit on an empty chunk (ValueError)."""
    from labkit.data.classification import load_dataset

    data = load_dataset("digits", seed=0)
    specs = {k: R.REG_SPECS[k] for k in ("none", "early stopping")}
    res = R.overfit_experiment(data, n_train=60, n_val=20, width=16, epochs=5, seed=0, specs=specs)
    assert res.curves["none"]["epoch"] == [1, 2, 3, 4, 5]
    assert 1 <= res.final["early stopping"]["stopped_at"] <= 5
