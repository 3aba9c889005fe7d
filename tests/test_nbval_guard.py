"""The suite really fails when a notebook raises or a checked output changes (nbval --nbval-lax)."""
from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbformat import v4


def _nb(path, cells):
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = cells
    nbformat.write(nb, str(path))


def _nbval(path):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", str(path)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_nbval_catches_changed_output_and_errors(tmp_path):
    good = v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(6 * 7)", execution_count=1)
    good.outputs = [v4.new_output("stream", name="stdout", text="42\n")]
    _nb(tmp_path / "ok.ipynb", [good, v4.new_code_cell("print('unchecked', __import__('time').time())")])
    assert _nbval(tmp_path / "ok.ipynb").returncode == 0

    changed = v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(6 * 7 + 1)", execution_count=1)
    changed.outputs = [v4.new_output("stream", name="stdout", text="42\n")]
    _nb(tmp_path / "changed.ipynb", [changed])
    r = _nbval(tmp_path / "changed.ipynb")
    assert r.returncode == 1 and "43" in r.stdout

    _nb(tmp_path / "raises.ipynb", [v4.new_code_cell("raise RuntimeError('broken notebook')")])
    r = _nbval(tmp_path / "raises.ipynb")
    assert r.returncode == 1 and "broken notebook" in r.stdout
