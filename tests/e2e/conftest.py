"""Fixtures for the browser end-to-end suite: a JupyterLab server and a headless Chromium page.

The notebooks are copied into a scratch folder first, with the `e2e` profile's parameters injected (tiny
settings, so running every notebook in the browser stays quick); the repository's notebooks are never touched.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from labkit import runner

from .lab import CHROMIUM_ARGS, LabServer, chromium_path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_out():
    """Screenshots and saved notebooks of this e2e run: runs/e2e/<timestamp>/."""
    return runner.new_run_dir("e2e", root=ROOT / "runs")


def prepare(nb_path: Path, dest: Path, profile: str | None = "tiny") -> Path:
    """Copy a notebook into dest, with the profile's parameters injected (papermill-style)."""
    from papermill.parameterize import parameterize_notebook

    os.environ["LABKIT_NOTEBOOKS"] = str(ROOT / "notebooks")
    params = {}
    if profile and (ROOT / "notebooks" / "profiles" / f"{profile}.yaml").exists():
        params = runner.resolve_parameters(nb_path, profile=profile)
    nb = nbformat.read(str(nb_path), as_version=4)
    if params:
        for cell in nb.cells:
            cell.metadata.setdefault("tags", [])
        nb.metadata["papermill"] = {"parameters": {}}
        nb = parameterize_notebook(nb, params, report_mode=False)
    out = dest / nb_path.name
    nbformat.write(nb, str(out))
    return out


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    if not chromium_path():
        pytest.skip("Chromium not installed: run `make e2e` (scripts/install_e2e.sh installs it)")
    pytest.importorskip("playwright")
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("labkit_home")
    env = {"LABKIT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    server_env = {k: v for k, v in env.items()}
    os.environ.pop("MPLBACKEND", None)  # kernels must use the inline backend so widgets can draw plots
    server = LabServer(root=root, log=root / "jupyter.log").start(env=server_env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if not path:
        pytest.skip("Chromium not installed: run `make e2e`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()
