"""With the network black-holed (lookups answer, connections hang), no notebook may wait on a download.

Each notebook runs with the `tiny` profile (notebooks/profiles/tiny.yaml), so the code paths run but quickly.
What runs is the notebook's *student version* (`labkit student`: every exercise's solution replaced by a stub), so
the same run also shows that a student version runs top to bottom and that each stub is reported by its checker
("not implemented yet") instead of stopping the notebook. nbval runs the instructor's version.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import nbformat

from labkit import runner, student

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).resolve().parent / "netguard"


NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_in_a_black_hole(stem, labkit_home, tmp_path, monkeypatch):
    log = tmp_path / "net.log"
    monkeypatch.setenv("LABKIT_NETGUARD_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]))
    folder = tmp_path / "student"
    student.write_student_versions(sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), folder)
    path = folder / f"{stem}.ipynb"
    stubs = sum("implement this" in c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(folder))
    for var in ("LABKIT_OFFLINE", "YOLO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    res = runner.run(stem, profile="tiny", progress=False)
    assert res.ok, res.error
    executed = nbformat.read(Path(res.run_dir) / f"{stem}.ipynb", as_version=4)
    texts = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    reported = sum("not implemented yet" in t for t in texts)
    assert (reported > 0) == (stubs > 0), f"{stubs} code cells with stubs, {reported} checks said 'not implemented yet'"
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert any(a["kind"] == "dns" for a in attempts), "the guard was not active in the kernel"
    connects = [a for a in attempts if a["kind"] == "connect"]
    # only labkit's own bounded online probe may try to connect; everything else must have stood down
    assert connects and all(a["waited_s"] <= 2.0 for a in connects), connects
    assert all(any("labkit/env.py" in s for s in a["stack"]) for a in connects), connects
    assert sum(a["waited_s"] for a in connects) <= 4.0
