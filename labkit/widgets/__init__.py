"""Every widget of the course, in one package; this module holds the shared helpers.

The topic widgets are submodules, imported explicitly (``from labkit.widgets import optim as OW``), so that
``import labkit.widgets`` stays light (NumPy only):

* :mod:`labkit.widgets.optim` — notebooks 01 and 02: optimizer paths, schedules, per-layer activation histograms;
* :mod:`labkit.widgets.flops` — notebook 04: the YOLOv8 scale picker;
* :mod:`labkit.widgets.metrics` — notebook 05: the P-R explorer;
* :mod:`labkit.widgets.finetune` — notebook 06: the confidence-threshold slider over predictions.

A widget module imports its topic module (the computation lives there); a topic module never imports a widget.

Each widget is a thin ipywidgets shell around a plain function that does the work and is unit-tested
without a browser; the widget only wires controls to that function and redraws an ``Output``.

**Static renders.** Every labkit widget is a :func:`static_vbox`: besides ipywidgets' live view
(``application/vnd.jupyter.widget-view+json``) its display bundle carries the picture it currently shows as
``image/png`` (or, for a text widget, the text as ``text/plain``). A reader with a kernel sees the live widget
only: JupyterLab ranks the widget renderer above images and renders one MIME type per output. A reader without
one sees the picture: nbconvert (HTML, nbviewer, GitHub's renderer) skips a widget view whose state was not
saved and takes the next type in its priority list (``image/png``), and JupyterLab shows the image for an
untrusted notebook, where the widget renderer is not used. So an executed notebook (``labkit run``, papermill,
nbclient) keeps each widget's figure in its output.
"""
from __future__ import annotations

import base64
import functools
import io
from typing import Callable

import numpy as np


@functools.lru_cache(maxsize=None)
def _static_vbox_class():
    import ipywidgets as W

    class StaticVBox(W.VBox):
        """A VBox whose display bundle also holds a static render: ``static_png`` (PNG bytes) and/or
        ``static_text`` (shown by renderers that have neither widgets nor the PNG)."""

        static_png: bytes | None = None
        static_text: str | None = None

        def _static_bundle(self) -> dict:
            extra = {}
            if self.static_text:
                extra["text/plain"] = self.static_text
            if self.static_png:
                extra["image/png"] = base64.b64encode(self.static_png).decode("ascii")
            return extra

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            return {**data, **self._static_bundle()} if isinstance(data, dict) else data

        if hasattr(W.VBox, "_ipython_display_"):  # ipywidgets 7 (Colab) displays through this, not the bundle
            def _ipython_display_(self, **kwargs):
                from IPython.display import display

                plaintext = repr(self)
                data = {"text/plain": plaintext[:110] + ("…" if len(plaintext) > 110 else "")}
                if self._view_name is not None:
                    data["application/vnd.jupyter.widget-view+json"] = {
                        "version_major": 2, "version_minor": 0, "model_id": self._model_id}
                display({**data, **self._static_bundle()}, raw=True)
                if self._view_name is not None:
                    self._handle_displayed(**kwargs)

    return StaticVBox


def static_vbox(children=()):
    """An ipywidgets ``VBox`` that also leaves a static render of itself in the notebook (module docstring).

    Set ``box.static_png`` (PNG bytes, e.g. from :func:`figure_png`) or ``box.static_text`` whenever the widget
    redraws; the bundle takes the value current at display time.
    """
    return _static_vbox_class()(list(children))


def figure_png(fig, dpi: float | None = None) -> bytes:
    """PNG bytes of a matplotlib figure, tightly cropped (as Jupyter's inline backend shows it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def show_png(out, png: bytes) -> None:
    """Replace what the ``Output`` widget ``out`` shows by one PNG image.

    The outputs are set directly instead of capturing ``plt.show()`` inside ``with out:``: no pyplot figure is
    left for the inline backend to show a second time, and no ``clear_output(wait=True)`` can leave nbclient
    waiting (see ``conf_widget`` in :mod:`labkit.widgets.finetune`).
    """
    from IPython.display import Image

    out.outputs = ()
    out.append_display_data(Image(data=png, format="png"))


def damped_wave(frequency: float = 1.0, damping: float = 0.2, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """The tour's demo curve: ``exp(-damping t) sin(2 pi f t)`` on ``t`` in [0, 10]."""
    t = np.linspace(0.0, 10.0, n)
    return t, np.exp(-damping * t) * np.sin(2 * np.pi * frequency * t)


def interactive_plot(draw: Callable[..., object], controls: dict, title: str | None = None,
                     figsize: tuple[float, float] = (6, 3)):
    """Build a VBox of ``controls`` and an Output that re-runs ``draw(ax, **values)`` on every change.

    ``draw`` gets a fresh matplotlib axis (of a figure outside pyplot) and the current control values. Returns
    the box (:func:`static_vbox`); its ``.redraw()`` method re-draws (handy in tests), ``.output`` is the Output
    widget and ``.static_png`` the PNG it shows now, which the box's display bundle carries for renderers
    without widgets.
    """
    import ipywidgets as W
    from matplotlib.figure import Figure

    out = W.Output()
    box = static_vbox([W.HBox(list(controls.values())), out])

    def redraw(*_):
        values = {k: c.value for k, c in controls.items()}
        fig = Figure(figsize=figsize)
        ax = fig.subplots()
        draw(ax, **values)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        box.static_png = figure_png(fig)
        show_png(out, box.static_png)

    for c in controls.values():
        c.observe(redraw, names="value")
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
