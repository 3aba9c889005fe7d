"""MC dropout (Gal & Ghahramani 2016, arXiv:1506.02142): keep dropout on at test time, average T passes.

Each stochastic pass samples a thinned network; the spread of the T predictions is an estimate of the
model's uncertainty. With ``p_t`` the softmax of pass t and ``p̄`` their mean:

* **predictive entropy** ``H[p̄] = -Σ_c p̄_c log p̄_c`` — total uncertainty (high for ambiguous inputs too);
* **expected entropy** ``mean_t H[p_t]`` — the part every pass agrees is ambiguous (aleatoric);
* **mutual information** (BALD, Houlsby et al. 2011) ``H[p̄] - mean_t H[p_t]`` — the passes *disagree*
  (epistemic: more labels would help here);
* **variation ratio** ``1 - max_c p̄_c``.

:func:`mc_dropout_scores` returns one of them per sample as an ``(N,)`` float array, higher = more worth
labelling: the form ``labkit.active.strategies.Strategy.score`` returns and its ``select``/``_top`` consume.
:class:`ScoreStrategy` wraps such scores as a strategy; :func:`as_predictions` turns the MC-mean class
probabilities into a :class:`~labkit.active.strategies.Predictions` so the existing ``Uncertainty``
strategies (``entropy``, ``margin``, ``least_confidence``) score them too.
"""
from __future__ import annotations

import numpy as np

from labkit.active.strategies import Predictions, Strategy, _check_k, _top
from labkit.env import import_keras

__all__ = ["mc_predict", "predictive_entropy", "expected_entropy", "mutual_information", "variation_ratio",
           "SCORES", "mc_dropout_scores", "as_predictions", "ScoreStrategy"]

EPS = 1e-12


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mc_predict(model, X, T: int = 30, seed: int | None = 0, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities of ``T`` stochastic passes with dropout on: shape ``(T, N, n_classes)``.

    ``model`` returns logits (as :func:`labkit.deepnets.build_mlp` does). The passes call the model with
    ``training=True``, which switches dropout on; a model with batch norm would also use batch statistics
    then, so use this on dropout-only nets. With ``seed``, every layer's own seed generator (Keras 3
    ``Dropout`` layers keep one, whose state moves on with every call) is reset to ``(seed + i, 0)`` first, so the
    T masks are the same on every call with the same ``seed``.
    """
    if T < 1:
        raise ValueError(f"MC dropout needs T >= 1 passes, got T={T}")
    keras = import_keras()
    if seed is not None:
        keras.utils.set_random_seed(seed)
        for i, layer in enumerate(model.layers):
            gen = getattr(layer, "seed_generator", None)
            if gen is not None:
                gen.state.assign(np.array([seed + i, 0], dtype=gen.state.dtype))
    X = np.asarray(X, dtype="float32")
    out = np.empty((T, len(X), int(model.outputs[0].shape[-1])))
    for t in range(T):
        for s in range(0, len(X), batch_size):
            out[t, s:s + batch_size] = _softmax(np.asarray(model(X[s:s + batch_size], training=True), dtype=np.float64))
    return out


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """``H[mean_t p_t]`` in nats, per sample (``probs``: ``(T, N, C)``)."""
    return _entropy(np.asarray(probs, dtype=np.float64).mean(axis=0))


def expected_entropy(probs: np.ndarray) -> np.ndarray:
    """``mean_t H[p_t]`` in nats, per sample."""
    return _entropy(np.asarray(probs, dtype=np.float64)).mean(axis=0)


def mutual_information(probs: np.ndarray) -> np.ndarray:
    """BALD: ``H[mean_t p_t] - mean_t H[p_t]`` (≥ 0; 0 when all passes agree), per sample."""
    return np.maximum(predictive_entropy(probs) - expected_entropy(probs), 0.0)


def variation_ratio(probs: np.ndarray) -> np.ndarray:
    """``1 - max_c mean_t p_t[c]``, per sample."""
    return 1.0 - np.asarray(probs, dtype=np.float64).mean(axis=0).max(axis=-1)


SCORES = {"bald": mutual_information, "entropy": predictive_entropy, "variation_ratio": variation_ratio}


def mc_dropout_scores(model, X, T: int = 30, kind: str = "bald", seed: int | None = 0, probs=None) -> np.ndarray:
    """Per-sample MC-dropout uncertainty: an ``(N,)`` float64 array, higher = more worth labelling.

    ``kind``: ``"bald"`` (mutual information), ``"entropy"`` (predictive entropy) or ``"variation_ratio"``.
    Pass ``probs`` (from :func:`mc_predict`) to reuse passes already made. The array is what an active-learning
    strategy's ``score`` returns (see ``labkit.active.strategies``); ``ScoreStrategy(scores).select(preds, k)``
    picks the ``k`` highest.
    """
    if kind not in SCORES:
        raise ValueError(f"unknown MC-dropout score {kind!r}: use one of {sorted(SCORES)}")
    if probs is None:
        probs = mc_predict(model, X, T=T, seed=seed)
    return np.asarray(SCORES[kind](probs), dtype=np.float64)


def as_predictions(mean_probs, paths=None) -> Predictions:
    """MC-mean class probabilities ``(N, C)`` as active-learning :class:`Predictions`: one "box" per sample
    (the whole image), its class vector the mean probabilities. ``paths`` default to ``"0"``, ``"1"``, …"""
    mean_probs = np.asarray(mean_probs, dtype=np.float64)
    n = len(mean_probs)
    paths = [str(i) for i in range(n)] if paths is None else list(paths)
    if len(paths) != n:
        raise ValueError(f"as_predictions: {len(paths)} paths for {n} samples")
    return Predictions(paths, [np.array([[0.0, 0.0, 1.0, 1.0]]) for _ in range(n)],
                       [mean_probs[i:i + 1] for i in range(n)])


class ScoreStrategy(Strategy):
    """A strategy whose scores were computed elsewhere (e.g. by :func:`mc_dropout_scores`), one per pool item."""

    def __init__(self, scores, name: str = "mc_dropout"):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.name = name

    def score(self, preds, rng=None):
        if len(preds) != len(self.scores):
            raise ValueError(f"{self.name}: {len(self.scores)} scores for a pool of {len(preds)}")
        return self.scores.copy()

    def select(self, preds, k, labelled_embeddings=None, rng=None):
        _check_k(k, len(preds))
        s = self.score(preds, rng)
        return _top(s, k, rng), s
