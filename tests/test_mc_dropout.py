"""labkit.deepnets.mc_dropout: the uncertainty formulas on hand-made pass sets, the passes really being stochastic, and
the scores in the form labkit.active.strategies consumes."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from labkit.deepnets import mc_dropout as M
from labkit.active import strategies as S


def _passes():
    # sample 0: every pass says class 0 (certain); sample 1: passes split between 0 and 1 (disagreement);
    # sample 2: every pass says 50/50 (ambiguous, but the passes agree)
    certain = np.array([[1.0, 0.0]] * 4)
    split = np.array([[1.0, 0.0], [0.0, 1.0]] * 2)
    ambiguous = np.array([[0.5, 0.5]] * 4)
    return np.stack([certain, split, ambiguous], axis=1)  # (T=4, N=3, C=2)


def test_formulas_on_hand_made_passes():
    # catches: BALD computed as the predictive entropy alone (sample 2 would score ln 2), or with the entropies
    # swapped (negative), or entropy in bits instead of nats
    p = _passes()
    np.testing.assert_allclose(M.predictive_entropy(p), [0, np.log(2), np.log(2)], atol=1e-9)
    np.testing.assert_allclose(M.expected_entropy(p), [0, 0, np.log(2)], atol=1e-9)
    np.testing.assert_allclose(M.mutual_information(p), [0, np.log(2), 0], atol=1e-9)
    np.testing.assert_allclose(M.variation_ratio(p), [0, 0.5, 0.5], atol=1e-12)


@pytest.fixture(scope="module")
def dropout_net():
    from labkit.env import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential([keras.Input((6,)), L.Dense(32, activation="relu"), L.Dropout(0.5, seed=1), L.Dense(3)])


def test_passes_are_stochastic_and_reproducible(dropout_net):
    # catches: calling the model with training=False (dropout off: all passes equal, BALD = 0 everywhere)
    X = np.random.default_rng(0).normal(size=(20, 6)).astype("float32")
    p = M.mc_predict(dropout_net, X, T=8, seed=3)
    assert p.shape == (8, 20, 3)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-9)
    assert np.ptp(p, axis=0).max() > 1e-3
    assert M.mutual_information(p).min() >= 0 and M.mutual_information(p).max() > 1e-4
    np.testing.assert_array_equal(p, M.mc_predict(dropout_net, X, T=8, seed=3))   # seeded: catches a generator not reset per call


def test_scores_plug_into_the_active_learning_strategies(dropout_net):
    X = np.random.default_rng(1).normal(size=(30, 6)).astype("float32")
    probs = M.mc_predict(dropout_net, X, T=10, seed=0)
    scores = M.mc_dropout_scores(dropout_net, X, kind="bald", probs=probs)
    assert scores.shape == (30,) and scores.dtype == np.float64
    preds = M.as_predictions(probs.mean(0))
    # the score array is what a Strategy's score returns; select takes the k highest
    idx, s = M.ScoreStrategy(scores).select(preds, 5, rng=np.random.default_rng(0))
    assert set(idx) == set(np.argsort(-scores)[:5]) and np.array_equal(s, scores)
    # the MC-mean probabilities as Predictions: the existing entropy strategy scores the normalized
    # predictive entropy (catches as_predictions passing one pass instead of the mean)
    ent = S.make_strategy("entropy").score(preds)
    np.testing.assert_allclose(ent, M.predictive_entropy(probs) / np.log(3), atol=1e-9)
    with pytest.raises(ValueError, match="scores for a pool"):
        M.ScoreStrategy(scores[:3]).score(preds)
    with pytest.raises(ValueError, match="unknown MC-dropout score"):
        M.mc_dropout_scores(dropout_net, X, kind="nope", probs=probs)
