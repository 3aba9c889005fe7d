"""Small shared widget helpers. Topic widgets live beside their topic (e.g. ``labkit.optim``).

Each widget is a thin ipywidgets shell around a plain function that does the work and is unit-tested
without a browser; the widget only wires controls to that function and redraws an ``Output``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def damped_wave(frequency: float = 1.0, damping: float = 0.2, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """The tour's demo curve: ``exp(-damping t) sin(2 pi f t)`` on ``t`` in [0, 10]."""
    t = np.linspace(0.0, 10.0, n)
    return t, np.exp(-damping * t) * np.sin(2 * np.pi * frequency * t)


def interactive_plot(draw: Callable[..., object], controls: dict, title: str | None = None):
    """Build a VBox of ``controls`` and an Output that re-runs ``draw(ax, **values)`` on every change.

    ``draw`` gets a fresh matplotlib axis and the current control values. Returns the VBox; its
    ``.redraw()`` method re-draws (handy in tests), and ``.output`` is the Output widget.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    out = W.Output()

    def redraw(*_):
        values = {k: c.value for k, c in controls.items()}
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(6, 3))
            draw(ax, **values)
            if title:
                ax.set_title(title)
            fig.tight_layout()
            plt.show()

    for c in controls.values():
        c.observe(redraw, names="value")
    box = W.VBox([W.HBox(list(controls.values())), out])
    box.redraw = redraw
    box.output = out
    redraw()
    return box


def wave_demo():
    """The tour's widget demo: frequency and damping sliders redraw a damped sine."""
    import ipywidgets as W

    def draw(ax, frequency, damping):
        t, y = damped_wave(frequency, damping)
        ax.plot(t, y)
        ax.set_xlabel("t")
        ax.set_ylim(-1.05, 1.05)

    controls = {
        "frequency": W.FloatSlider(value=0.5, min=0.1, max=2.0, step=0.1, description="frequency"),
        "damping": W.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.05, description="damping"),
    }
    return interactive_plot(draw, controls, title="exp(-damping·t)·sin(2π·f·t)")
