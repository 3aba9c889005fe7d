"""The notebook 01/02 widgets, without a browser: drawing functions and widget wiring."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labkit import optim as O  # noqa: E402
from labkit import optim_widgets as OW  # noqa: E402


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
    r = OW.draw_layer_histograms(ax, depth=10, init="he_normal", activation="relu", width=32, n=64, n_layers=4)
    assert len(r["a"]) == 10
    assert len(ax.get_legend().get_texts()) == 4
    plt.close(fig)


def test_widgets_wire_controls_to_the_drawing():
    pytest.importorskip("ipywidgets")
    box = OW.path_widget()
    controls = box.children[0].children
    names = [c.description for c in controls]
    assert names[:3] == ["optimizer", "function", "lr"]
    controls[0].value = "nesterov"  # triggers a redraw without error
    box.redraw()
    box2 = OW.init_widget(depth=5)
    c2 = {c.description: c for c in box2.children[0].children}
    c2["activation"].value = "tanh"
    c2["batch norm"].value = True
    assert box2.output is not None
    plt.close("all")
