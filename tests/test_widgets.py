"""Widget logic, tested without a browser: the controls call the plain function that does the work."""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from labkit import widgets


def test_damped_wave_values():
    t, y = widgets.damped_wave(frequency=0.25, damping=0.0, n=5)
    np.testing.assert_allclose(t, [0, 2.5, 5, 7.5, 10])
    np.testing.assert_allclose(y, np.sin(2 * np.pi * 0.25 * t), atol=1e-12)
    _, yd = widgets.damped_wave(frequency=0.25, damping=1.0, n=5)
    np.testing.assert_allclose(yd, np.exp(-t) * y, atol=1e-12)


def test_interactive_plot_redraws_with_new_values():
    calls = []

    def draw(ax, a, b):
        calls.append((a, b))
        ax.plot([0, 1], [a, b])

    sa, sb = W.FloatSlider(value=1.0), W.IntSlider(value=2)
    box = widgets.interactive_plot(draw, {"a": sa, "b": sb})
    assert calls == [(1.0, 2)]  # drawn once on creation
    sa.value = 3.0
    sb.value = 5
    assert calls == [(1.0, 2), (3.0, 2), (3.0, 5)]
    assert isinstance(box.output, W.Output) and sa in box.children[0].children


def test_wave_demo_builds():
    box = widgets.wave_demo()
    sliders = box.children[0].children
    assert [s.description for s in sliders] == ["frequency", "damping"]
    sliders[0].value = 1.5  # must not raise
