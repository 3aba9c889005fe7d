"""Widgets and plots for notebook 01: optimizer paths on test functions, learning-rate schedules.

Each widget is a thin ipywidgets shell (:func:`labkit.widgets.interactive_plot`) around a drawing
function that works on a plain matplotlib axis and is unit-tested without a browser
(``tests/test_widgets_optim.py``). The optimizers are :mod:`labkit.optim`.
"""
from __future__ import annotations

import numpy as np

from labkit import optim as O
from labkit.widgets import interactive_plot

__all__ = ["draw_paths", "draw_path_controls", "path_widget", "draw_schedules"]

PATH_COLORS = {"sgd": "tab:gray", "momentum": "tab:blue", "nesterov": "tab:cyan", "adagrad": "tab:green",
               "rmsprop": "tab:orange", "adam": "tab:red", "adamw": "tab:purple"}


def draw_paths(ax, fn, paths: dict, title: str | None = None, levels: int = 30):
    """Contours of the 2-D test function ``fn`` (log-spaced levels) and one line per path.

    ``paths`` maps a label to an (n, 2) array (from :func:`labkit.optim.optimize_path`). Returns ``ax``.
    """
    if isinstance(fn, str):
        fn = O.TEST_FUNCTIONS[fn]
    X, Y, Zv = fn.grid(150)
    zmin = np.nanmin(Zv)
    ax.contour(X, Y, np.log1p(Zv - zmin), levels=levels, cmap="Greys", linewidths=0.6, alpha=0.7)
    for label, p in paths.items():
        color = PATH_COLORS.get(str(label).split()[0].lower())
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=1, label=f"{label} ({len(p) - 1} steps)", color=color)
    ax.plot(*fn.start, "ko", ms=5)
    if fn.minimum is not None:
        ax.plot(*fn.minimum, "k*", ms=10)
    ax.set_xlim(fn.xlim)
    ax.set_ylim(fn.ylim)
    ax.set_title(title or fn.name)
    ax.legend(fontsize=7, loc="lower right")
    return ax


def draw_path_controls(ax, optimizer: str = "momentum", function: str = "ravine", lr: float = 0.01,
                       beta1: float = 0.9, beta2: float = 0.999, steps: int = 200):
    """What the path widget draws: one optimizer's path with the given knobs; returns the path."""
    opt = O.make_optimizer(optimizer, lr=lr, beta1=beta1, beta2=beta2)
    path = O.optimize_path(opt, function, steps=steps)
    fn = O.TEST_FUNCTIONS[function]
    end = f"f(end) = {fn.f(path[-1]):.3g}"
    if len(path) - 1 < steps:
        end += " — diverged, stopped"
    draw_paths(ax, fn, {optimizer: path}, title=f"{function}: {optimizer}, lr={lr:.3g} · {end}")
    return path


def path_widget(optimizer: str = "momentum", function: str = "ravine"):
    """Widget: optimizer, test function, learning rate, β₁ (momentum/ρ), β₂ and steps → the path."""
    import ipywidgets as W

    controls = {
        "optimizer": W.Dropdown(options=list(O.OPTIMIZERS), value=optimizer, description="optimizer"),
        "function": W.Dropdown(options=list(O.TEST_FUNCTIONS), value=function, description="function"),
        "lr": W.FloatLogSlider(value=0.01, base=10, min=-4, max=0, step=0.1, description="lr"),
        "beta1": W.FloatSlider(value=0.9, min=0.0, max=0.999, step=0.01, description="β1/mom/ρ"),
        "beta2": W.FloatSlider(value=0.999, min=0.9, max=0.9999, step=0.0001, readout_format=".4f",
                               description="β2"),
        "steps": W.IntSlider(value=200, min=10, max=1000, step=10, description="steps"),
    }
    return interactive_plot(draw_path_controls, controls)


def draw_schedules(ax, schedules: dict, steps: int):
    """Plot several learning-rate schedules (callables of the 0-based step) on one axis."""
    for name, sch in schedules.items():
        ax.plot(np.arange(steps), O.schedule_values(sch, steps), label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=8)
    return ax
