"""Static renders: every labkit widget's display bundle also holds the picture (or text) it shows, so an executed
notebook read without a kernel (GitHub, nbviewer, nbconvert HTML, a papermill output) still shows it."""
from __future__ import annotations

import base64
import re

import ipywidgets as W
import nbformat
import numpy as np
import pytest
from nbformat import v4

from labkit import widgets

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _png(bundle) -> bytes:
    assert WIDGET_VIEW in bundle, "the live widget view must stay in the bundle"
    data = base64.b64decode(bundle["image/png"])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


def _bundle(box) -> dict:
    """What IPython publishes when the box is displayed (ipywidgets 8: the bundle; 7: _ipython_display_)."""
    if not hasattr(W.Widget, "_repr_mimebundle_"):  # ipywidgets 7 (Colab): scripts/check_ipywidgets7.sh
        from unittest import mock

        with mock.patch("IPython.display.display") as d1, mock.patch("ipywidgets.widgets.widget.display") as d2:
            box._ipython_display_()
        (call,) = d1.call_args_list + d2.call_args_list
        return call.args[0]
    return box._repr_mimebundle_()


def test_wave_demo_bundle_holds_its_figure_and_follows_the_controls():
    box = widgets.wave_demo()
    first = _png(_bundle(box))
    assert box.static_png == first
    # the Output shows the same picture, once (no pyplot figure left for the inline backend to add)
    assert [o["data"].keys() & {"image/png"} for o in box.output.outputs] == [{"image/png"}]
    box.children[0].children[0].value = 1.5
    assert _png(_bundle(box)) != first


def test_plain_vbox_has_no_static_render():
    """The control: ipywidgets' own VBox bundle has no picture (what the static_vbox adds)."""
    bundle = _bundle(W.VBox([W.IntSlider()]))
    assert WIDGET_VIEW in bundle and "image/png" not in bundle


def test_optimizer_and_init_widgets_bundle_their_figure():
    from labkit.widgets import optim as OW

    _png(_bundle(OW.path_widget()))
    from labkit.widgets import deepnets as DW

    _png(_bundle(DW.init_widget(depth=4)))


def test_conf_widget_bundles_its_figure(tmp_path):
    from PIL import Image

    from labkit.widgets.finetune import conf_widget

    img = tmp_path / "a.jpg"
    Image.new("RGB", (64, 48)).save(img)
    quads = np.array([[[1, 1], [10, 1], [10, 10], [1, 10]], [[20, 20], [30, 20], [30, 30], [20, 30]]])
    box = conf_widget({str(img): {"quads": quads, "scores": np.array([0.9, 0.3])}}, conf=0.2)
    first = _png(_bundle(box))
    box.slider.value = 0.5
    assert _png(_bundle(box)) != first


def test_scale_widget_bundles_its_summary_as_text():
    from labkit.widgets.flops import scale_widget
    from labkit.yolov8.flops import format_summary

    box = scale_widget("n", latency=False)
    bundle = _bundle(box)
    assert WIDGET_VIEW in bundle
    assert bundle["text/plain"].startswith("scale n (of n s m l x):\n")
    assert format_summary(box.summary()) in bundle["text/plain"]


def _execute(tmp_path):
    from nbclient import NotebookClient

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [v4.new_code_cell("from labkit.widgets import wave_demo\nwave_demo()"),
                v4.new_code_cell("import ipywidgets as W\nW.VBox([W.IntSlider()])")]
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


@pytest.mark.timeout(300)
def test_executed_notebook_keeps_the_picture_and_html_shows_it(tmp_path):
    """nbclient (as papermill and `labkit run`) stores the PNG in the output; nbconvert's HTML without the widget
    state (what GitHub and nbviewer have for most notebooks) shows it as an <img>; a plain VBox shows none."""
    from nbconvert import HTMLExporter

    nb = _execute(tmp_path)
    (widget_out,) = nb.cells[0].outputs
    (plain_out,) = nb.cells[1].outputs
    assert WIDGET_VIEW in widget_out["data"] and "image/png" in widget_out["data"]
    assert "image/png" not in plain_out["data"]
    nbformat.validate(nb)
    nb.metadata.pop("widgets", None)  # nbclient saved the state; a static reader without it
    html, _ = HTMLExporter().from_notebook_node(nb)
    imgs = re.findall(r'<img\b[^>]*\bsrc="data:image/png;base64,([^"]+)"', html)
    assert [i[:200] for i in imgs] == [widget_out["data"]["image/png"][:200]]
