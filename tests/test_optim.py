"""labkit.optim against keras.optimizers / keras.optimizers.schedules (and Ultralytics, PyTorch).

Tolerances:
- optimizers: float64 Keras variables, same float32-representable hyperparameters, same gradient
  sequence → trajectories agree to 1e-6 relative (max |Δθ| / max |θ| over 100 steps); in practice
  the difference is ~1e-15.
- schedules: Keras evaluates them in float32 → 1e-6 relative.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import math

import numpy as np
import pytest

from labkit import optim as O
from labkit.env import import_keras

STEPS = 100
# What the comparisons really achieve, measured over every optimizer and case below: trajectories (float64 on
# both sides, float32-rounded hyperparameters) differ by at most 7.4e-16 relative (Nesterov, fixed gradients);
# the schedules, which Keras computes in float32, by at most 1.3e-7 (about float32's eps, 1.19e-7). Each
# tolerance sits a small factor above its measure. At the old 1e-6 a wrong AdaGrad (Keras' defaults with ε
# outside the root, 7e-9 away) passed: see test_tolerance_rejects_adagrad_with_eps_outside_the_root.
TOL = 1e-14
SCHEDULE_TOL = 3e-7


def _optimizers():
    return [
        O.SGD(0.1),
        O.Momentum(0.05, momentum=0.9),
        O.Nesterov(0.05, momentum=0.9),
        O.AdaGrad(0.1),                       # Keras defaults: s0 = 0.1, eps = 1e-7
        O.AdaGrad(0.1, initial_accumulator=0.0),  # the lecture's s0 = 0
        O.RMSProp(0.01, rho=0.9),
        O.Adam(0.01, beta1=0.9, beta2=0.999),
        O.Adam(0.02, beta1=0.8, beta2=0.99, eps=1e-3),  # large eps: the convention matters
        O.AdamW(0.01, weight_decay=0.1),
    ]


@pytest.fixture(scope="module")
def grads():
    rng = np.random.default_rng(42)
    # gradients of changing scale so that the adaptive methods really adapt
    return rng.normal(size=(STEPS, 6)) * np.logspace(-2, 1, 6)


@pytest.mark.parametrize("opt", _optimizers(), ids=lambda o: repr(o))
def test_fixed_gradient_sequence_matches_keras(opt, grads):
    theta0 = np.linspace(-1.0, 2.0, 6)
    err = O.compare_with_keras(opt, theta0, STEPS, grads=grads)
    assert err < TOL, f"{opt!r}: max relative trajectory error {err:.3g}"


@pytest.mark.parametrize("opt", [o for o in _optimizers() if o.name in ("momentum", "nesterov", "adam", "adamw")],
                         ids=lambda o: o.name)
def test_closed_loop_on_ravine_matches_keras(opt):
    """Gradients computed at each side's own iterate (closed loop) on the ravine."""
    err = O.compare_with_keras(opt, O.ravine.start, STEPS, grad_fn=O.ravine.grad)
    assert err < TOL, f"{opt!r}: {err:.3g}"


class _AdaGradEpsOutside(O.AdaGrad):
    """A wrong AdaGrad: Keras' defaults (s0 = 0.1, ε = 1e-7) but θ ← θ − η g ⊘ (√s + ε), ε outside the root."""

    def _update(self, theta, g, eta):
        s = self._zeros("s", theta, self.initial_accumulator)
        s[...] = s + g * g
        return theta - eta * g / (np.sqrt(s) + self.eps)


def test_tolerance_rejects_adagrad_with_eps_outside_the_root(grads):
    """The mutation the tolerance must catch: ε outside the root is 7e-9 away from Keras, under the old 1e-6."""
    theta0 = np.linspace(-1.0, 2.0, 6)
    ours = O.run_numpy(O.with_float32_hparams(_AdaGradEpsOutside(0.1)), theta0, STEPS, grads=grads)
    ref = O.run_keras(O.with_float32_hparams(O.AdaGrad(0.1)), theta0, STEPS, grads=grads)
    err = O.relative_error(ours, ref)
    assert TOL < err < 1e-6, err


def test_the_trajectories_are_not_trivial(grads):
    """Guard against a comparison that passes because nothing moves."""
    theta0 = np.linspace(-1.0, 2.0, 6)
    for opt in _optimizers():
        traj = O.run_numpy(opt, theta0, STEPS, grads=grads)
        assert np.max(np.abs(traj[-1] - theta0)) > 0.05, opt


def test_decimal_hyperparameters_show_kerass_float32_cast(grads):
    """Keras casts β = 0.9 through float32; with exact decimals the error is 1e-9…1e-5, not 1e-15."""
    theta0 = np.linspace(-1.0, 2.0, 6)
    exact = O.compare_with_keras(O.Adam(0.01), theta0, STEPS, grads=grads, float32_hparams=False)
    rounded = O.compare_with_keras(O.Adam(0.01), theta0, STEPS, grads=grads, float32_hparams=True)
    assert 1e-10 < exact < 1e-4
    assert rounded < 1e-12


def test_lecture_nesterov_is_keras_nesterov_at_the_lookahead_point():
    """Lecture form (gradient at θ + βm) and Keras form give the same sequence φ = θ + βm."""
    lec = O.with_float32_hparams(O.Nesterov(0.02, 0.9, form="lecture"))  # Keras' β, so only arithmetic differs
    lec.reset()
    theta = np.array(O.ravine.start)
    phis = [theta.copy()]
    for _ in range(STEPS):
        theta = lec.step(theta, O.ravine.grad(lec.eval_point(theta)))
        phis.append(theta + lec.momentum * lec.state["m"])
    keras_form = O.run_keras(O.with_float32_hparams(O.Nesterov(0.02, 0.9)), O.ravine.start, STEPS,
                             grad_fn=O.ravine.grad)
    err = O.relative_error(np.stack(phis), keras_form)
    assert err < TOL, err  # measured 1.1e-16 (with the exact decimal β on our side: 9e-8)


def test_adam_conventions():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(50, 4)) * 1e-3
    th0 = np.ones(4)
    # with eps = 0 the lecture's sign convention is the same method as Keras
    a = O.run_numpy(O.with_float32_hparams(O.Adam(0.01, eps=0.0, eps_mode="lecture")), th0, 50, grads=g)
    b = O.run_keras(O.with_float32_hparams(O.Adam(0.01, eps=0.0)), th0, 50, grads=g)
    assert O.relative_error(a, b) < TOL  # measured 0 (with the exact decimal β on our side: 5e-7)
    # with a visible eps the three placements differ
    trajs = {m: O.run_numpy(O.Adam(0.01, eps=1e-3, eps_mode=m), th0, 50, grads=g) for m in O.Adam.EPS_MODES}
    assert O.relative_error(trajs["lecture"], trajs["keras"]) > 1e-4
    assert O.relative_error(trajs["paper"], trajs["keras"]) > 1e-4


def test_keras_adam_is_paper_adam_with_eps_divided_by_sqrt_one_minus_beta2_t():
    """Keras' ε placement = the paper's with ε / √(1 − β₂ᵗ) (not ε · √(1 − β₂ᵗ)); checked step by step."""
    rng = np.random.default_rng(2)
    g = rng.normal(size=(10, 4)) * 1e-3
    eps, b2 = 1e-3, 0.999
    keras_form = O.Adam(0.01, eps=eps, beta2=b2)
    theta = np.ones(4)
    for t in range(1, 11):
        # a fresh paper-form Adam with the same state, stepping with ε_t = ε / √(1 − β₂ᵗ)
        paper = O.Adam(0.01, eps=eps / math.sqrt(1 - b2 ** t), beta2=b2, eps_mode="paper")
        paper.t, paper.state = keras_form.t, {k: v.copy() for k, v in keras_form.state.items()}
        expected = paper.step(theta, g[t - 1])
        theta = keras_form.step(theta, g[t - 1])
        np.testing.assert_allclose(theta, expected, rtol=1e-12, atol=0)
    # the lecture's ε inside the root acts like an ε of √ε where √ŝ is small
    lec = O.Adam(0.01, eps=1e-7, eps_mode="lecture").step(np.zeros(1), np.array([1e-9]))
    pap = O.Adam(0.01, eps=math.sqrt(1e-7), eps_mode="paper").step(np.zeros(1), np.array([1e-9]))
    np.testing.assert_allclose(lec, pap, rtol=1e-2)


def test_paper_adam_matches_torch():
    import torch
    rng = np.random.default_rng(2)
    g = rng.normal(size=(STEPS, 5))
    th0 = rng.normal(size=5)
    ours = O.run_numpy(O.Adam(0.01, eps=1e-3, eps_mode="paper"), th0, STEPS, grads=g)
    p = torch.nn.Parameter(torch.tensor(th0, dtype=torch.float64))
    topt = torch.optim.Adam([p], lr=0.01, eps=1e-3)
    traj = [p.detach().numpy().copy()]
    for k in range(STEPS):
        p.grad = torch.tensor(g[k], dtype=torch.float64)
        topt.step()
        traj.append(p.detach().numpy().copy())
    assert O.relative_error(ours, np.stack(traj)) < 1e-12


def test_optimizer_errors_name_the_problem():
    with pytest.raises(ValueError, match="eps_mode"):
        O.Adam(eps_mode="torch")
    with pytest.raises(ValueError, match="shape"):
        O.SGD(0.1).step(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="unknown optimizer"):
        O.make_optimizer("lbfgs")
    with pytest.raises(ValueError, match="Keras implements"):
        O.keras_optimizer(O.Adam(eps_mode="lecture"))


# ----------------------------------------------------------------------------- schedules

SCHEDULES = {
    "piecewise": dict(boundaries=[20, 50], values=[0.1, 0.05, 0.01]),
    "exponential": dict(lr0=0.1, decay_steps=30, decay_rate=0.1),
    "exponential_staircase": dict(lr0=0.1, decay_steps=30, decay_rate=0.5, staircase=True),
    "power": dict(lr0=0.1, decay_steps=10, decay_rate=1.0),
    "cosine": dict(lr0=0.1, decay_steps=100, alpha=0.01),
    "cosine_warmup": dict(lr0=0.0, decay_steps=80, alpha=0.01, warmup_target=0.1, warmup_steps=20),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_keras(name):
    kind = name.split("_")[0]
    kw = SCHEDULES[name]
    ours = O.schedule_values(O.numpy_schedule(kind, **kw), 150)
    ref = O.schedule_values(O.keras_schedule(kind, **kw), 150)
    assert np.max(np.abs(ours - ref)) / np.max(np.abs(ref)) < SCHEDULE_TOL
    assert ours.max() > 2 * ours.min() + 1e-12  # it does change


def test_piecewise_boundaries_are_inclusive():
    lr = O.piecewise_constant([10], [1.0, 0.5])
    assert (lr(10), lr(11)) == (1.0, 0.5)


def test_power_schedule_general_c():
    lr = O.power_decay(0.1, decay_steps=10, c=0.5)
    assert math.isclose(lr(30), 0.1 / 2.0)


def test_optimizer_follows_a_schedule_like_keras(grads):
    theta0 = np.linspace(-1.0, 2.0, 6)
    kw = SCHEDULES["cosine_warmup"]
    ours = O.run_numpy(O.Momentum(O.cosine_decay(**kw), 0.875), theta0, STEPS, grads=grads)
    opt = O.Momentum(O.keras_schedule("cosine", **kw), 0.875)
    ref = O.run_keras(opt, theta0, STEPS, grads=grads)
    assert O.relative_error(ours, ref) < SCHEDULE_TOL  # the learning rates come from Keras' float32 schedule


def test_plateau_scheduler_matches_keras_callback():
    keras = import_keras()

    losses = [1.0, 0.9, 0.85, 0.86, 0.85, 0.8499, 0.87, 0.7, 0.71, 0.72, 0.73, 0.74, 0.69, 0.69, 0.7,
              0.71, 0.72, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65]
    ours = O.PlateauScheduler(lr=0.1, factor=0.5, patience=2, min_delta=1e-3, cooldown=1, min_lr=0.01)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    cb = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_delta=1e-3,
                                           cooldown=1, min_lr=0.01, mode="min")
    cb.set_model(model)
    cb.on_train_begin()
    seen_ours, seen_keras = [], []
    for epoch, v in enumerate(losses):
        seen_ours.append(ours.update(v))
        cb.on_epoch_end(epoch, {"val_loss": v})
        seen_keras.append(float(np.asarray(model.optimizer.learning_rate)))
    np.testing.assert_allclose(seen_ours, seen_keras, rtol=SCHEDULE_TOL)  # Keras keeps the lr in float32
    # the sequence exercises reductions, cooldown and the min_lr clamp
    assert min(seen_ours) == pytest.approx(0.01) and len(set(np.round(seen_ours, 6))) >= 4


def test_ultralytics_cosine_is_keras_cosine_with_alpha_lrf():
    from ultralytics.utils.torch_utils import one_cycle

    lr0, lrf, epochs = 5e-4, 0.01, 150
    lf = one_cycle(1, lrf, epochs)
    ours = O.schedule_values(O.ultralytics_cosine(lr0, lrf, epochs), epochs + 1)
    ultra = np.array([lr0 * lf(e) for e in range(epochs + 1)])
    keras_vals = O.schedule_values(O.keras_schedule("cosine", lr0=lr0, decay_steps=epochs, alpha=lrf), epochs + 1)
    np.testing.assert_allclose(ours, ultra, rtol=1e-12)
    np.testing.assert_allclose(ours, keras_vals, rtol=0, atol=SCHEDULE_TOL * lr0)  # Keras computes in float32


# ----------------------------------------------------------------------------- test functions

@pytest.mark.parametrize("fn", list(O.TEST_FUNCTIONS.values()), ids=lambda f: f.name)
def test_gradients_of_test_functions(fn):
    rng = np.random.default_rng(3)
    for _ in range(5):
        p = rng.uniform(-1, 1, 2)
        h = 1e-6
        num = np.array([(fn.f(p + h * e) - fn.f(p - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(fn.grad(p), num, rtol=1e-5, atol=1e-6)


def test_paths_behave_as_the_lecture_says():
    # momentum crosses the ravine faster than plain SGD at the same lr
    sgd = O.optimize_path(O.SGD(0.02), "ravine", steps=100)
    mom = O.optimize_path(O.Momentum(0.02, 0.9), "ravine", steps=100)
    assert O.ravine.f(mom[-1]) < O.ravine.f(sgd[-1]) / 10
    # on Rosenbrock, momentum runs along the valley floor; SGD at the same lr crawls
    sgd = O.optimize_path(O.SGD(1e-3), "rosenbrock", steps=500)
    mom = O.optimize_path(O.Momentum(1e-3, 0.9), "rosenbrock", steps=500)
    assert O.rosenbrock.f(mom[-1]) < 0.01 < 1.0 < O.rosenbrock.f(sgd[-1])
    # at the saddle, Adam's per-coordinate scaling escapes fast; SGD stays near the ridge
    adam = O.optimize_path(O.Adam(0.05), "saddle", steps=300)
    sgd = O.optimize_path(O.SGD(1e-2), "saddle", steps=300)
    assert abs(adam[-1, 1]) > 1.0 and abs(sgd[-1, 1]) < 0.1
    # too large a learning rate diverges and the path stops early
    assert len(O.optimize_path(O.SGD(0.2), "ravine", steps=200)) < 201
