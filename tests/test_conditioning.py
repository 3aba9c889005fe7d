"""labkit.conditioning: the hand-written softmax-regression gradient and the optimizer comparison's bookkeeping.

Gradient vs central finite differences in float64: relative error < 1e-6 (the finite-difference error at
h = 1e-6 is ~1e-9 here). The lesson itself (adaptive methods win on badly scaled features) is asserted over
seeds in tests/test_lessons_01_02.py.
"""
import numpy as np

from labkit import conditioning as C
from labkit import optim as O


def _problem(seed=0, n=40, d=5, k=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([0.1, 1, 3, 0.5, 2])
    y = np.argmax(X @ rng.normal(size=(d, k)), axis=1)   # learnable labels
    theta = rng.normal(size=(d + 1) * k) * 0.3
    return X, y, k, theta


def test_softmax_gradient_matches_finite_differences():
    # catches: a gradient without the 1/n mean, a missing bias gradient, p - onehot with the wrong sign
    X, y, k, theta = _problem()
    loss, g = C.softmax_loss_grad(theta, X, y, k)
    h = 1e-6
    num = np.array([(C.softmax_loss_grad(theta + h * e, X, y, k)[0] - C.softmax_loss_grad(theta - h * e, X, y, k)[0])
                    / (2 * h) for e in np.eye(len(theta))])
    assert np.max(np.abs(g - num)) / np.max(np.abs(num)) < 1e-6
    # the loss is the mean cross-entropy: at theta = 0 it is log k
    assert abs(C.softmax_loss_grad(np.zeros_like(theta), X, y, k)[0] - np.log(k)) < 1e-12


def test_train_softmax_decreases_and_flags_divergence():
    X, y, k, _ = _problem(1, n=200)
    curve = C.train_softmax(O.SGD(0.1), X, y, k, epochs=5, batch=32)
    assert curve.shape == (5,) and curve[-1] < curve[0] < np.log(k)
    # a huge learning rate diverges: the curve ends in inf (catches a run whose divergence goes unnoticed)
    bad = C.train_softmax(O.SGD(1e4), X * 100, y, k, epochs=3, batch=32, max_loss=5.0)
    assert np.isinf(bad[-1])


def test_best_lr_run_picks_the_lowest_final_loss():
    X, y, k, _ = _problem(2, n=200)
    lrs = (1e-4, 1e-2, 1.0)
    lr, curve = C.best_lr_run("sgd", X, y, k, lrs=lrs, epochs=3, batch=32)
    finals = {l: C.train_softmax(O.SGD(l), X, y, k, epochs=3, batch=32)[-1] for l in lrs}
    assert lr == min(finals, key=finals.get) and curve[-1] == finals[lr]


def test_comparison_gap_and_ranking():
    cmp = C.Comparison(curves={"p": {**{n: np.array([1.0, 0.5]) for n in C.NON_ADAPTIVE},
                                     **{n: np.array([1.0, 0.25]) for n in C.ADAPTIVE}}})
    assert cmp.gap("p") == 2.0 and cmp.adaptive_all_better("p")
    cmp.curves["p"]["adam"] = np.array([1.0, 0.6])   # one adaptive optimizer above the non-adaptive ones
    assert not cmp.adaptive_all_better("p")


def test_feature_scales_span_the_spread():
    s = C.feature_scales(2000, spread=4.0, seed=0)
    assert 1e-2 <= s.min() < 0.02 and 50 < s.max() <= 1e2
