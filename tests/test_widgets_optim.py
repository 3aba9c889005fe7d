"""The notebook 01/02 widgets, without a browser: drawing functions and widget wiring."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labkit import optim as O  # noqa: E402
from labkit.widgets import deepnets as DW  # noqa: E402
from labkit.widgets import optim as OW  # noqa: E402


def test_draw_path_controls_draws_the_optimizers_path():
    fig, ax = plt.subplots()
    path = OW.draw_path_controls(ax, "adam", "rosenbrock", lr=0.05, beta1=0.9, beta2=0.999, steps=50)
    ref = O.optimize_path(O.Adam(0.05, 0.9, 0.999), "rosenbrock", steps=50)
    np.testing.assert_array_equal(path, ref)
    lines = [l for l in ax.get_lines() if len(l.get_xdata()) == len(path)]
    assert lines and np.allclose(lines[0].get_xdata(), path[:, 0])
    assert "adam" in ax.get_title()
    plt.close(fig)


def test_diverging_path_is_reported():
    fig, ax = plt.subplots()
    path = OW.draw_path_controls(ax, "sgd", "ravine", lr=0.5, steps=100)
    assert len(path) < 101 and "diverged" in ax.get_title()
    plt.close(fig)


def test_layer_histograms():
    fig, ax = plt.subplots()
    r = DW.draw_layer_histograms(ax, depth=10, init="he_normal", activation="relu", width=32, n=64, n_layers=4)
    assert len(r["a"]) == 10
    assert len(ax.get_legend().get_texts()) == 4
    plt.close(fig)


def _recorder(monkeypatch, module, name):
    """Wrap ``module.<name>`` so each call's keyword values, result and axis title are kept."""
    calls, draw = [], getattr(module, name)

    def rec(ax, **kw):
        r = draw(ax, **kw)
        calls.append((kw, r, ax.get_title()))
        return r

    monkeypatch.setattr(module, name, rec)
    return calls


def _shown_png(box) -> bytes:
    import base64

    (shown,) = box.output.outputs
    return base64.b64decode(shown["data"]["image/png"])


def test_widgets_wire_controls_to_the_drawing(monkeypatch):
    """Each control change redraws with the controls' current values, and the Output shows the new picture.

    Mutations caught (each run against this test and seen to fail): a control not observed (no redraw: the call
    count stays at one), the batch-norm checkbox left out of what the drawing gets (``batchnorm`` False), the
    Output not updated after a redraw (it still shows the first PNG), and ``draw_layer_histograms`` ignoring
    ``batchnorm`` (its activations are then those of the run without batch norm)."""
    import ipywidgets  # noqa: F401  (a hard dependency: a broken install fails here)

    from labkit import deepnets as D

    paths = _recorder(monkeypatch, OW, "draw_path_controls")
    box = OW.path_widget()
    controls = box.children[0].children
    assert [c.description for c in controls][:3] == ["optimizer", "function", "lr"]
    controls[0].value = "nesterov"
    assert len(paths) == 2 and paths[-1][0]["optimizer"] == "nesterov" and "nesterov" in paths[-1][2]
    np.testing.assert_array_equal(paths[-1][1], O.optimize_path(O.make_optimizer("nesterov", lr=0.01, beta1=0.9, beta2=0.999),
                                                                 "ravine", steps=200))
    assert _shown_png(box) == box.static_png

    hists = _recorder(monkeypatch, DW, "draw_layer_histograms")
    box2 = DW.init_widget(depth=5)
    first = box2.static_png
    c2 = {c.description: c for c in box2.children[0].children}
    c2["activation"].value = "tanh"
    c2["batch norm"].value = True
    assert len(hists) == 3  # the first draw, then one redraw per change
    kw, r, title = hists[-1]
    assert kw == {"depth": 5, "init": "he_normal", "activation": "tanh", "batchnorm": True}
    assert title == "tanh · he_normal · BN · depth 5"
    ref = D.signal_propagation(5, 128, "tanh", "he_normal", n=256, batchnorm=True, seed=0, keep_activations=True)
    for a, b in zip(r["a"], ref["a"]):
        np.testing.assert_array_equal(a, b)
    assert box2.static_png != first and _shown_png(box2) == box2.static_png
    plt.close("all")
