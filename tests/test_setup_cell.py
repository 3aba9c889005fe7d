"""The notebooks' setup cell: one canonical text (labkit.platform_setup.SETUP_CELL), put there by
scripts/update_setup_cells.py, and what it does on Colab/Kaggle (install with the platform's packages as pip
constraints) and locally (only import labkit)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labkit import env, platform_setup as P

ROOT = Path(__file__).resolve().parents[1]
# LABKIT_NOTEBOOKS_DIR checks another copy (e.g. a rewritten one in /tmp) instead of notebooks/
NB_DIR = Path(os.environ.get("LABKIT_NOTEBOOKS_DIR", ROOT / "notebooks"))
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))


def _cell1(path: Path) -> str:
    src = json.loads(path.read_text(encoding="utf-8"))["cells"][1]["source"]
    return "".join(src) if isinstance(src, list) else src


def test_every_notebook_has_the_canonical_setup_cell():
    """Cell 1 of every notebook is SETUP_CELL: catches a hand-edited setup cell in one notebook and the
    pre-issue-15 cell (an unconstrained `%pip install labkit`) coming back."""
    assert NOTEBOOKS, f"no notebooks in {NB_DIR}"
    legacy = [nb.name for nb in NOTEBOOKS if _cell1(nb) == P.LEGACY_SETUP_CELL]
    wrong = [nb.name for nb in NOTEBOOKS if _cell1(nb) != P.SETUP_CELL]
    assert not legacy, f"the old setup cell is back in {legacy}"
    assert not wrong, f"setup cell differs from labkit.platform_setup.SETUP_CELL in {wrong}: " \
                      f"run `python scripts/update_setup_cells.py --nbtools`"


def test_rewrite_script_changes_only_the_setup_cell(tmp_path):
    """The script rewrites cell 1 to SETUP_CELL, leaves every other cell and the metadata as they were, keeps
    nbformat's file layout, and is idempotent; --check exits 1 before and 0 after."""
    import update_setup_cells as U

    copies = []
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        shutil.copy(nb, tmp_path / nb.name)
        copies.append(tmp_path / nb.name)
    # one notebook made to differ for sure (its setup cell replaced by another text, with an output)
    nb0 = json.loads(copies[0].read_text(encoding="utf-8"))
    nb0["cells"][1]["source"], nb0["cells"][1]["outputs"] = ["print('old')"], [{"output_type": "stream",
                                                                            "name": "stdout", "text": ["old\n"]}]
    copies[0].write_text(json.dumps(nb0, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    before = {p: json.loads(p.read_text(encoding="utf-8")) for p in copies}

    assert U.main(["--check", *map(str, copies)]) == 1
    assert U.main([str(p) for p in copies]) == 0
    for p in copies:
        raw = p.read_text(encoding="utf-8")
        after = json.loads(raw)
        assert raw == json.dumps(after, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        assert _cell1(p) == P.SETUP_CELL
        assert after["cells"][1]["outputs"] == [] and after["cells"][1]["execution_count"] is None
        old = before[p]
        assert after["metadata"] == old["metadata"]
        assert [c for i, c in enumerate(after["cells"]) if i != 1] == [c for i, c in enumerate(old["cells"]) if i != 1]
    assert U.main(["--check", *map(str, copies)]) == 0
    snapshot = {p: p.read_bytes() for p in copies}
    assert U.main([str(p) for p in copies]) == 0
    assert all(p.read_bytes() == b for p, b in snapshot.items())


def test_rewrite_script_refuses_a_notebook_without_a_code_cell_1(tmp_path, capsys):
    import update_setup_cells as U

    nb = tmp_path / "00_x.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# t"]},
                                        {"cell_type": "markdown", "metadata": {}, "source": ["x"]}],
                              "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert U.main([str(nb)]) == 2
    assert "cell 1 is not a code cell" in capsys.readouterr().err


def _transformed_cell() -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(P.SETUP_CELL)


class _FakeShell:
    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line, *a, **k):
        self.magics.append((name, line))


def test_setup_cell_on_colab_installs_labkit_without_deps_then_constrained(monkeypatch, capsys):
    """Run the cell as Colab would, with labkit 'missing': the %pip line installs labkit alone (--no-deps: an
    unconstrained install would upgrade Colab's ipykernel/ipywidgets), then install_requirements() runs.
    Catches the old cell (`%pip install -q "labkit @ ..."` with its dependencies) and a cell that skips the
    constrained step."""
    import importlib.util

    shell, calls = _FakeShell(), []
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "labkit" else real_find_spec(n, *a))
    monkeypatch.setattr(P, "install_requirements", lambda *a, **k: calls.append("constrained"))
    monkeypatch.setattr(env, "banner", lambda: "BANNER")
    monkeypatch.delenv("LABKIT_REPO", raising=False)
    exec(compile(_transformed_cell(), "<setup cell>", "exec"), {"get_ipython": lambda: shell})
    assert len(shell.magics) == 1
    name, line = shell.magics[0]
    assert name == "pip"
    assert line.split()[:3] == ["install", "-q", "--no-deps"]
    assert '"labkit @ git+https://github.com/{LABKIT_REPO}"' in line  # IPython expands {LABKIT_REPO} itself
    assert calls == ["constrained"]
    assert capsys.readouterr().out.strip() == "BANNER"


def test_setup_cell_locally_only_imports_labkit(monkeypatch, capsys):
    shell = _FakeShell()
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setattr(env, "banner", lambda: "BANNER")
    exec(compile(_transformed_cell(), "<setup cell>", "exec"), {"get_ipython": lambda: shell})
    assert shell.magics == []
    assert capsys.readouterr().out.strip() == "BANNER"


def _stub_python(tmp_path: Path, freeze: str) -> tuple[Path, Path]:
    """A fake interpreter: `-m pip list --format=freeze` prints ``freeze``; `-m pip install` logs its arguments
    and a copy of the constraints file."""
    log = tmp_path / "pip.log"
    exe = tmp_path / "python"
    exe.write_text("#!/bin/bash\n" + textwrap.dedent(f"""\
        if [ "$3" = list ]; then printf '%s' '{freeze}'; exit 0; fi
        echo "ARGS $*" >> {log}
        prev=""; for a in "$@"; do if [ "$prev" = "-c" ]; then cat "$a" >> {log}; fi; prev="$a"; done
        """))
    exe.chmod(0o755)
    return exe, log


def test_install_requirements_constrains_to_the_platform_freeze(tmp_path, capsys):
    """install_requirements() passes the platform's whole `pip list --format=freeze` to pip as `-c`, asks for
    labkit's core requirements, leaves an out-of-range package out and names it in one line with the fix.
    Catches: no -c (pip free to upgrade), a requirement list that still holds the out-of-range package (pip would
    then change it, or fail), the [lab] extra leaking into the core list."""
    freeze = "ipywidgets==7.6.5\ntorch==2.11.0+cu128\nipykernel==6.17.1\n"
    exe, log = _stub_python(tmp_path, freeze)
    versions = {"ipywidgets": "7.6.5", "torch": "2.11.0+cu128", "numpy": "2.1.3"}
    cmd = P.install_requirements(platform="colab", python=str(exe), installed=versions.get)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("labkit: colab has ipywidgets 7.6.5, outside labkit's range <9,>=7.7; kept as it is.")
    assert "Runtime version" in out[0] and '%pip install "ipywidgets<9,>=7.7"' in out[0]
    logged = log.read_text()
    args = logged.splitlines()[0].split()
    assert args[:6] == ["ARGS", "-m", "pip", "install", "-q", "-c"]
    assert logged.splitlines()[1:] == freeze.strip().splitlines()  # the constraints file is the freeze
    reqs = {a.split("<")[0].split(">")[0].split("=")[0] for a in args[7:]}
    assert "ipywidgets" not in reqs
    assert {"numpy", "torch", "ultralytics", "tensorflow", "packaging"} <= reqs
    assert not reqs & {"jupyterlab", "ipykernel", "papermill", "pytest", "kaggle"}
    assert cmd[1:] == args[1:]


def test_out_of_range_and_banner_warning(monkeypatch):
    """Colab's torch 2.11.0+cu128 and a release candidate are in range, a missing package is not flagged, a real
    out-of-range version is, and the banner shows it in Ultralytics' WARNING style. Catches listing missing
    packages (ultralytics is missing on every platform before the install) and a banner without the warnings."""
    have = {"torch": "2.11.0+cu128", "numpy": "1.24.4", "keras": "3.14.0rc1", "ultralytics": None}
    bad = P.out_of_range(installed=have.get)
    assert bad == [("numpy", "1.24.4", "<3,>=1.26")]
    monkeypatch.setattr(P, "out_of_range", lambda *a, **k: bad)
    monkeypatch.setattr(env, "device_info", lambda: {"torch_device": "cpu", "gpus": "none"})
    lines = env.banner().splitlines()
    assert "WARNING ⚠️ numpy<3,>=1.26 is required by labkit, but numpy==1.24.4 is currently installed" in lines


def test_nbtools_adoption_makes_one_setup_cell(tmp_path):
    """`update_setup_cells.py --nbtools` turns labkit.nbtools' own copy of the cell (which
    tests/test_notebooks_clean.py compares the notebooks with) into an import of SETUP_CELL, keeps the rest of the
    module, and does it once. Catches an edit that leaves the old text (the clean-notebooks test would then fail
    on every rewritten notebook) or cuts into the code after it."""
    import importlib.util

    import update_setup_cells as U
    from labkit import nbtools

    copy = tmp_path / "nbtools.py"
    shutil.copy(ROOT / "labkit" / "nbtools.py", copy)
    first = U.adopt_in_nbtools(copy)
    assert U.adopt_in_nbtools(copy) is False  # idempotent
    spec = importlib.util.spec_from_file_location("nbtools_adopted", copy)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.SETUP_CELL is P.SETUP_CELL
    assert first == (nbtools.SETUP_CELL is not P.SETUP_CELL)
    public = {n for n in dir(nbtools) if not n.startswith("_")}
    assert public <= {n for n in dir(mod) if not n.startswith("_")} | {"P"}
    assert mod.new_notebook([("md", "# t"), ("code", "x = 1")]).cells[1].source == P.SETUP_CELL
