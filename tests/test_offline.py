"""With the network black-holed (lookups answer, connections hang), no notebook may wait on a download.

Each notebook runs with the `tiny` profile (notebooks/profiles/tiny.yaml), so the code paths run but quickly.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labkit import runner

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).resolve().parent / "netguard"


NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_in_a_black_hole(stem, labkit_home, tmp_path, monkeypatch):
    log = tmp_path / "net.log"
    monkeypatch.setenv("LABKIT_NETGUARD_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(ROOT / "notebooks"))
    for var in ("LABKIT_OFFLINE", "YOLO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    res = runner.run(stem, profile="tiny", progress=False)
    assert res.ok, res.error
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert any(a["kind"] == "dns" for a in attempts), "the guard was not active in the kernel"
    connects = [a for a in attempts if a["kind"] == "connect"]
    # only labkit's own bounded online probe may try to connect; everything else must have stood down
    assert connects and all(a["waited_s"] <= 2.0 for a in connects), connects
    assert all(any("labkit/env.py" in s for s in a["stack"]) for a in connects), connects
    assert sum(a["waited_s"] for a in connects) <= 4.0
