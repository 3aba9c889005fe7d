"""With the network black-holed (lookups answer, connections hang), the tour notebook must not wait on a download."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labkit import runner

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).resolve().parent / "netguard"


@pytest.mark.slow
def test_tour_notebook_in_a_black_hole(labkit_home, tmp_path, monkeypatch):
    log = tmp_path / "net.log"
    monkeypatch.setenv("LABKIT_NETGUARD_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(ROOT / "notebooks"))
    for var in ("LABKIT_OFFLINE", "YOLO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    res = runner.run("00_setup_and_tour", {"EPOCHS": 1, "N_TRAIN": 16, "N_VAL": 8}, progress=False)
    assert res.ok, res.error
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert any(a["kind"] == "dns" for a in attempts), "the guard was not active in the kernel"
    connects = [a for a in attempts if a["kind"] == "connect"]
    # only labkit's own bounded online probe may try to connect; everything else must have stood down
    assert connects and all(a["waited_s"] <= 2.0 for a in connects), connects
    assert all(any("labkit/env.py" in s for s in a["stack"]) for a in connects), connects
    assert sum(a["waited_s"] for a in connects) <= 4.0
