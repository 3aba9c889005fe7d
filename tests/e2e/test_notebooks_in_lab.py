"""Every notebook opens in JupyterLab in a real browser, runs without error, and its widgets respond."""
from __future__ import annotations

import pytest

from . import lab as L
from .conftest import NOTEBOOKS, prepare

CELL_TIMEOUT_S = 1200


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_widgets_respond(nb_path, lab, page, e2e_out):
    nb_file = prepare(nb_path, lab.root)
    L.open_notebook(page, lab, nb_file.name)
    progress = L.run_all(page, timeout=CELL_TIMEOUT_S)
    L.save(page)
    errors = L.error_outputs(nb_file)
    page.screenshot(path=str(e2e_out / f"{nb_path.stem}_page.png"))
    assert not errors, f"{nb_path.name} raised in the browser: {errors}"
    assert progress["pending"] == 0, f"{nb_path.name}: {progress['pending']} code cell(s) never ran"
    # A loop over the widget areas found passes on zero of them: the count must reach what the notebook's code
    # displays. Mutation caught: widget_views' selector matching nothing (or the widgets never rendering), which
    # the loop alone let through.
    views = L.widget_views(page)
    expected = L.expected_widget_areas(nb_file)
    assert len(views) >= expected, (f"{nb_path.name}: {len(views)} widget area(s) in the browser, "
                                    f"{expected} expected from the notebook's widget calls")
    for i, view in enumerate(views):
        before, after = L.poke(view)
        assert before != after
        view.screenshot(path=str(e2e_out / f"{nb_path.stem}_widget{i}.png"))
    (e2e_out / f"{nb_path.stem}.txt").write_text(f"{len(views)} widget area(s) poked, all responded\n")
