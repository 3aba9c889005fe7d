"""The confidence-threshold widget of notebook 06: an ipywidgets shell around
:func:`labkit.finetune.filter_predictions` and :func:`labkit.finetune.draw_predictions`."""
from __future__ import annotations

from labkit.finetune import draw_predictions, filter_predictions
from labkit.widgets import show_png, static_vbox

__all__ = ["conf_widget"]


def conf_widget(preds: dict, conf: float = 0.25, ncols: int = 4):
    """A confidence-threshold slider over predictions made once at a low threshold; redraws the kept boxes.

    Predict with a low ``conf`` (e.g. 0.01) first, so that moving the slider only filters, never re-runs the model.
    Returns a VBox with ``.slider``, ``.output``, ``.redraw()`` and ``.kept`` (boxes kept at the current value);
    its ``.static_png`` (the picture shown now) stays in the notebook for readers without a kernel
    (:func:`labkit.widgets.static_vbox`).
    """
    import io

    import ipywidgets as W
    import matplotlib.pyplot as plt

    slider = W.FloatSlider(value=conf, min=0.0, max=0.95, step=0.05, description="conf",
                           continuous_update=False, readout_format=".2f")
    out = W.Output()
    box = static_vbox([slider, out])

    def redraw(*_):
        kept = filter_predictions(preds, slider.value)
        box.kept = sum(len(p["scores"]) for p in kept.values())
        fig = draw_predictions(kept, ncols=ncols)
        fig.suptitle(f"conf >= {slider.value:.2f}: {box.kept} boxes on {len(kept)} images", fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        # set the widget's outputs directly instead of capturing plt.show() inside `with out:` (clear_output(wait=True)
        # + a captured figure left nbclient -- papermill, nbval -- waiting forever on a loaded machine)
        box.static_png = buf.getvalue()
        show_png(out, box.static_png)

    slider.observe(redraw, names="value")
    box.slider, box.output, box.redraw = slider, out, redraw
    redraw()
    return box
