"""Shared fixtures: tiny notebooks for runner tests, isolated LABKIT_HOME."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Loading libtriton (PyTorch loads it lazily, e.g. on a first torch.optim step) after TensorFlow segfaults on an
# LLVM symbol clash; tests mix both in one process, so load it first (see labkit.optim.import_keras).
try:
    import triton  # noqa: F401
except Exception:
    pass

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def labkit_home(tmp_path, monkeypatch):
    """A fresh LABKIT_HOME so tests never touch the repository's data/ and runs/."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LABKIT_HOME", str(home))
    monkeypatch.delenv("LABKIT_RUN_DIR", raising=False)
    return home


@pytest.fixture
def tiny_notebooks(tmp_path, monkeypatch, labkit_home):
    """A notebooks/ folder with a tiny parameterized notebook (and a failing one) for runner tests."""
    import nbformat
    from nbformat import v4

    folder = tmp_path / "notebooks"
    (folder / "profiles").mkdir(parents=True)

    def make(name, code):
        nb = v4.new_notebook()
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        p = v4.new_code_cell("X = 1\nNAME = 'a'\nSEED = 0")
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, v4.new_code_cell(code)]
        nbformat.write(nb, str(folder / name))

    make("90_tiny.ipynb", "import labkit\nlabkit.record('double', X * 2)\nlabkit.record('name', NAME)")
    make("91_fails.ipynb", "import labkit\nlabkit.record('before', X)\nraise ValueError('boom ' + NAME)")
    (folder / "profiles" / "big.yaml").write_text("_all:\n  SEED: 7\n'90':\n  X: 10\n91_fails:\n  X: 3\n")
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(folder))
    return folder


def pytest_collection_modifyitems(config, items):
    """The lessons' seed sweeps (tests/test_lessons_*.py, parametrized by seed, directly or via a fixture) are
    `extended`: `make test` (CI) checks the default seed through nbval's verdict lines, `make test-extended`
    re-runs every lesson on seeds 0, 1 and 2 (the seeds took 7 min of 7.7 on 2 cores, measured 2026-12-03)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if item.path.name.startswith("test_lessons_") and callspec is not None:  # every one is by seed
            item.add_marker(pytest.mark.extended)
