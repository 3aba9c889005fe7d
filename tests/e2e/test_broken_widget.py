"""The e2e checks have teeth: a widget whose callback raises, or a notebook that raises, is caught."""
from __future__ import annotations

import nbformat
import pytest
from nbformat import v4

from . import lab as L

WIDGET = '''
import ipywidgets as W
import matplotlib.pyplot as plt
out = W.Output()
s = W.IntSlider(value=1, min=0, max=10, description="n")
def redraw(change=None):
    if change is not None and BROKEN:
        raise RuntimeError("callback is broken")
    with out:
        out.clear_output(wait=True)
        fig, ax = plt.subplots(figsize=(3, 2)); ax.plot(range(s.value + 2)); plt.show()
s.observe(redraw, names="value")
redraw()
W.VBox([s, out])
'''


def _write(lab, name, broken):
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [v4.new_code_cell(f"BROKEN = {broken}"), v4.new_code_cell(WIDGET)]
    nbformat.write(nb, str(lab.root / name))
    return name


def test_working_widget_passes(lab, page):
    L.open_notebook(page, lab, _write(lab, "widget_ok.ipynb", False))
    L.run_all(page, timeout=120)
    (view,) = L.widget_views(page)
    before, after = L.poke(view, timeout=30)
    assert before != after


def test_broken_widget_callback_fails_the_check(lab, page):
    L.open_notebook(page, lab, _write(lab, "widget_broken.ipynb", True))
    L.run_all(page, timeout=120)
    (view,) = L.widget_views(page)
    with pytest.raises(AssertionError, match="widget did not respond"):
        L.poke(view, timeout=10)


def test_raising_notebook_is_caught(lab, page):
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [v4.new_code_cell("1 / 0")]
    nbformat.write(nb, str(lab.root / "raises.ipynb"))
    L.open_notebook(page, lab, "raises.ipynb")
    L.run_all(page, timeout=120)
    L.save(page)
    assert L.error_outputs(lab.root / "raises.ipynb") == ["cell 0: ZeroDivisionError: division by zero"]


def test_error_midway_stops_the_run_and_is_caught(lab, page):
    """Run All stops at a raising cell; the later cells never run, and the wait must not hang on them."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [v4.new_code_cell("x = 1"), v4.new_code_cell("raise ValueError('bad input')"), v4.new_code_cell("y = 2")]
    nbformat.write(nb, str(lab.root / "midway.ipynb"))
    L.open_notebook(page, lab, "midway.ipynb")
    p = L.run_all(page, timeout=120)
    assert (p["total"], p["pending"], p["errors"]) == (3, 1, 1)
    L.save(page)
    assert L.error_outputs(lab.root / "midway.ipynb") == ["cell 1: ValueError: bad input"]
