"""The scale picker of notebook 04: an ipywidgets shell around :func:`labkit.yolov8.flops.scale_summary`."""
from __future__ import annotations

from labkit.widgets import static_vbox
from labkit.yolov8.flops import format_summary, scale_summary
from labkit.yolov8.model import SCALES

__all__ = ["scale_widget"]


def scale_widget(default: str = "n", nc: int = 80, latency: bool = True):
    """An ipywidgets scale picker (n ... x) showing :func:`labkit.yolov8.flops.scale_summary`; returns the widget box.

    The logic is ``scale_summary`` / ``format_summary`` (tested without a browser); this
    function only wires a ``ToggleButtons`` to an ``Output``. The summary shown also goes into the box's
    display bundle as ``text/plain`` (``box.static_text``), so a notebook read without a kernel shows it
    (:func:`labkit.widgets.static_vbox`).
    """
    import ipywidgets as widgets

    picker = widgets.ToggleButtons(options=list(SCALES), value=default, description="scale")
    out = widgets.Output()
    box = static_vbox([picker, out])
    cache: dict[str, dict] = {}

    def show(change=None):
        s = picker.value
        if s not in cache:
            cache[s] = scale_summary(s, nc=nc, latency=latency)
        text = format_summary(cache[s])
        box.static_text = f"scale {s} (of {' '.join(SCALES)}):\n{text}"
        out.clear_output()
        with out:
            print(text)

    picker.observe(show, names="value")
    show()
    box.summary = lambda: cache[picker.value]  # for tests / programmatic use
    return box
