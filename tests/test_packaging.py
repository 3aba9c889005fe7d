"""Dependencies: ranges (never exact pins) and environment.yml mirroring pyproject.toml."""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def _deps():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return meta["dependencies"] + [d for ds in meta["optional-dependencies"].values() for d in ds]


def test_no_exact_pins():
    for d in _deps():
        assert "==" not in d and "===" not in d, f"exact pin {d!r}: use a range"
        assert re.search(r">=", d) and re.search(r"<", d), f"{d!r}: give a lower and an upper bound"


def test_environment_yml_mirrors_pyproject():
    import sync_environment

    assert (ROOT / "environment.yml").read_text() == sync_environment.render(), \
        "environment.yml is stale: run `python scripts/sync_environment.py`"
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert set(_deps()) <= set(pip)


def test_core_stack_declared():
    names = {re.split(r"[<>=!\[ ]", d)[0].lower() for d in _deps()}
    for core in ("jupyterlab", "ipywidgets", "ultralytics", "tensorflow", "torch", "torchvision", "matplotlib",
                 "nbval", "papermill", "pycocotools"):
        assert core in names
