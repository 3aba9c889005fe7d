"""labkit.record and collecting recorded values from executed notebooks."""
from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
from nbformat import v4

import labkit
from labkit.record import MIME, collect


def test_record_converts_and_writes_sidecar(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_RUN_DIR", str(tmp_path))
    assert labkit.record("mAP50", np.float32(0.5)) == 0.5
    assert labkit.record("curve", np.array([1, 2])) == [1, 2]
    assert labkit.record("bad", float("nan")) == "nan"
    assert "mAP50 = 0.5" in capsys.readouterr().out
    assert json.loads((tmp_path / "records.json").read_text()) == {"mAP50": 0.5, "curve": [1, 2], "bad": "nan"}


def test_record_rejects_empty_name():
    with pytest.raises(ValueError):
        labkit.record("", 1)


def test_collect_reads_mime_outputs_last_wins():
    nb = v4.new_notebook()
    out1 = v4.new_output("display_data", data={MIME: {"name": "a", "value": 1}, "text/plain": "a = 1"})
    out2 = v4.new_output("display_data", data={MIME: {"name": "a", "value": 2}, "text/plain": "a = 2"})
    out3 = v4.new_output("stream", name="stdout", text="noise")
    c1, c2 = v4.new_code_cell("x"), v4.new_code_cell("y")
    c1.outputs, c2.outputs = [out1, out3], [out2]
    nb.cells = [c1, c2, v4.new_markdown_cell("m")]
    assert collect(nb) == {"a": 2}
