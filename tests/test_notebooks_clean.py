"""Every committed notebook follows the conventions in docs/CONTRIBUTING.md."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from labkit import nbtools
from labkit.runner import notebook_parameters

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))


def test_there_are_notebooks_in_order():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_setup_and_tour.ipynb"
    assert all(re.match(r"\d\d_[a-z0-9_]+\.ipynb$", p.name) for p in NOTEBOOKS)
    numbers = [p.name[:2] for p in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), "two notebooks share a number"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
    assert nbtools.problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "start with a title"
    assert code[0].source == nbtools.SETUP_CELL, "the first code cell must be labkit.nbtools.SETUP_CELL"
    assert "parameters" in code[1].metadata.get("tags", []), "the second code cell must be the parameters cell"
    assert "#@param" in code[1].source, "parameters carry Colab #@param annotations"
    params = notebook_parameters(path)
    assert {"SEED", "DEVICE"} <= set(params)
    assert "labkit.env.setup(" in code[2].source
    assert any(nbtools.is_checked(c) for c in code), "at least one # NBVAL_CHECK_OUTPUT cell checks real values"
    for c in code:
        if nbtools.is_checked(c):
            assert c.outputs, f"checked cell without a recorded output:\n{c.source[:200]}"


def test_strip_keeps_only_checked_outputs():
    from nbformat import v4

    nb = v4.new_notebook()
    keep = v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=3)
    keep.outputs = [v4.new_output("stream", name="stdout", text="1\n")]
    drop = v4.new_code_cell("print(2)", execution_count=4)
    drop.outputs = [v4.new_output("stream", name="stdout", text="2\n")]
    drop.metadata["execution"] = {"iopub.status.busy": "2026"}
    nb.cells = [keep, drop]
    nb.metadata["papermill"] = {"duration": 1.0}
    out = nbtools.strip_notebook(nb)
    assert out.cells[0].outputs[0]["text"] == "1\n" and out.cells[0].execution_count == 1  # nbval needs a count
    assert out.cells[1].outputs == [] and "execution" not in out.cells[1].metadata
    assert "papermill" not in out.metadata



def test_strip_drops_figures_from_checked_cells():
    """make test runs nbval with MPLBACKEND=Agg, where plt.show() displays nothing: a figure kept in a checked
    cell failed nbval on a missing output (02's deep-net cell, 2026-12-03)."""
    from nbformat import v4

    from labkit import nbtools

    cell = v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nplt.show(); print(1)")
    cell.outputs = [v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"}),
                    v4.new_output("stream", name="stdout", text="1\n")]
    out = nbtools.strip_notebook(v4.new_notebook(cells=[cell]))
    assert [o["output_type"] for o in out.cells[0].outputs] == ["stream"]
