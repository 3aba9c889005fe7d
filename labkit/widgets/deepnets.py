"""Widget and plot for notebook 02: per-layer activation histograms of a deep MLP.

:func:`init_widget` is a thin ipywidgets shell (:func:`labkit.widgets.interactive_plot`) around
:func:`draw_layer_histograms`, which works on a plain matplotlib axis and is unit-tested without a browser
(``tests/test_widgets_optim.py``). The net is :func:`labkit.deepnets.signal_propagation`.
"""
from __future__ import annotations

import numpy as np

from labkit import deepnets as D
from labkit.widgets import interactive_plot

__all__ = ["draw_layer_histograms", "init_widget"]


def draw_layer_histograms(ax, depth: int = 50, init: str = "he_normal", activation: str = "relu",
                          batchnorm: bool = False, width: int = 128, n: int = 256, n_layers: int = 6,
                          seed: int = 0):
    """Histograms of the activations of ``n_layers`` evenly spaced layers of the NumPy deep MLP.

    Returns the :func:`labkit.deepnets.signal_propagation` result (with ``a``) so callers can check it.
    """
    r = D.signal_propagation(depth, width, activation, init, n=n, batchnorm=batchnorm, seed=seed,
                             keep_activations=True)
    layers = np.unique(np.linspace(0, depth - 1, min(n_layers, depth)).round().astype(int))
    acts = [np.asarray(r["a"][l]).ravel() for l in layers]
    finite = np.concatenate([a[np.isfinite(a)] for a in acts])
    lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (-1.0, 1.0))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        lo, hi = -1.0, 1.0
    bins = np.linspace(lo, hi, 60)
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0, 0.9, len(layers)))
    for l, a, c in zip(layers, acts, colors):
        ax.hist(np.clip(a[np.isfinite(a)], lo, hi), bins=bins, histtype="step", color=c, density=True,
                label=f"layer {l + 1}: var {np.var(a):.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("activation value")
    ax.set_title(f"{activation} · {init}{' · BN' if batchnorm else ''} · depth {depth}", fontsize=9)
    ax.legend(fontsize=7)
    return r


def init_widget(depth: int = 50, init: str = "he_normal", activation: str = "relu"):
    """Widget: depth, init, activation, batch norm → per-layer activation histograms."""
    import ipywidgets as W

    controls = {
        "depth": W.IntSlider(value=depth, min=2, max=100, step=1, description="depth"),
        "init": W.Dropdown(options=list(D.INITS), value=init, description="init"),
        "activation": W.Dropdown(options=[a for a in D.ACTIVATIONS if a != "swish"], value=activation,
                                 description="activation"),
        "batchnorm": W.Checkbox(value=False, description="batch norm"),
    }
    return interactive_plot(draw_layer_histograms, controls)
