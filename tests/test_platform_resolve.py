"""labkit's core requirements resolve on Colab (Python 3.13 and 3.12) and Kaggle (3.12) without changing any
package the platform has: pip --dry-run --report against the platform's own package list (tests/platforms/, sources
in its README), for that Python and Linux x86-64. The resolve needs PyPI; offline it is skipped with the reason.
The three resolves run at once and wait on PyPI: 1 min 45 s for one resolve alone, 9 min for the three together on
this shared 2-core machine at load average 16 (both measured while other work ran), so the resolves are marked slow."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import platform_resolve as R  # noqa: E402

FREEZES = sorted((ROOT / "tests" / "platforms").glob("*.txt"))


def _pypi_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=timeout):
            return True
    except OSError:
        return False


def test_the_platform_lists_are_there():
    """Colab's two current runtimes and Kaggle's, each with its Python version in the file name."""
    names = {f.name for f in FREEZES}
    assert {"colab-2026-08-19-py3.13.txt", "colab-2026-08-14-py3.12.txt", "kaggle-2026-08-12-py3.12.txt"} <= names
    for f in FREEZES:
        pins = R.read_freeze(f)
        assert len(pins) > 500, f.name
        assert "ipykernel" in pins and "ipywidgets" in pins and "torch" in pins
    assert R.read_freeze(ROOT / "tests/platforms/colab-2026-08-19-py3.13.txt")["ipywidgets"] == "7.7.1"
    assert R.python_version(Path("x-py3.13.txt")) == "3.13"


def test_platform_changes_flags_a_changed_platform_package():
    """The comparison itself, on a made-up report: an upgraded ipykernel (what the old core did on Colab) is a
    change; a new package is an addition; nvidia-*/cuda-*/triton are not compared. Catches a comparison that
    only looks at names, or that skips packages the platform already has."""
    pins = {"ipykernel": "6.17.1", "numpy": "2.1.3", "nvidia-nccl-cu13": "2.31.2"}
    report = {"install": [{"metadata": {"name": n, "version": v}} for n, v in
                          [("ipykernel", "7.1.0"), ("NumPy", "2.1.3"), ("ultralytics", "8.4.190"),
                           ("nvidia_nccl_cu13", "2.28.9"), ("triton", "3.6.0")]]}
    changed, added = R.platform_changes(report, pins)
    assert changed == ["ipykernel: platform 6.17.1 -> 7.1.0"]
    assert added == ["ultralytics==8.4.190"]
    assert set(R.constrained(pins)) == {"ipykernel", "numpy"}


@pytest.fixture(scope="module")
def resolved(tmp_path_factory):
    if not _pypi_reachable():
        pytest.skip("pypi.org:443 does not answer: the platform resolve needs PyPI (CI has it)")
    return R.resolve_all(FREEZES, tmp_path_factory.mktemp("resolve"))


@pytest.mark.slow
@pytest.mark.parametrize("freeze", FREEZES, ids=[f.stem for f in FREEZES])
def test_core_resolves_without_changing_the_platform(resolved, freeze):
    """pip finds a solution with the freeze as constraints, and its install list keeps every platform package at
    the freeze's version; labkit's [lab] side (jupyterlab, papermill) is not pulled in. With the pre-issue-15
    core (ipykernel>=6.25 added back to it) the Colab 3.13 resolve fails with ResolutionImpossible (checked by hand
    for issue 15)."""
    r = resolved[freeze]
    tail = "\n".join(r["stderr"].strip().splitlines()[-12:])
    assert r["rc"] == 0, f"{freeze.name}: pip could not resolve labkit against the platform:\n{tail}"
    assert r["changed"] == [], f"{freeze.name}: platform packages changed: {r['changed']}"
    added = {a.split("==")[0] for a in r["added"]}
    assert {"labkit", "ultralytics"} <= added
    assert not added & {"jupyterlab", "papermill", "nbclient", "ipykernel", "pytest", "nbval", "kaggle"}, \
        f"a [lab]/[dev]/[kaggle] package leaked into the core: {sorted(added)}"


def test_refresh_converts_a_freeze_as_the_lists_were_made():
    """scripts/refresh_platform_freezes.py: local labels dropped, URL installs read from the wheel's file name,
    git installs dropped. Catches keeping `+cpu` (PyPI has no such build, every resolve would fail)."""
    import refresh_platform_freezes as F

    freeze = ("torch @ https://download.pytorch.org/whl/cpu/torch-2.11.0%2Bcpu-cp313-cp313-manylinux_2_28_x86_64.whl\n"
              "numpy==2.1.3\nnvidia-nccl-cu13==2.31.2\ntorchaudio==2.11.0+cpu\n"
              "jupyter_kernel_gateway @ git+https://github.com/googlecolab/kernel_gateway@b134e99\n")
    lines, notes = F.to_constraints(freeze)
    assert lines == ["torch==2.11.0", "numpy==2.1.3", "nvidia-nccl-cu13==2.31.2", "torchaudio==2.11.0"]
    assert any("jupyter_kernel_gateway" in n for n in notes)
    assert F.python_of("Ubuntu 22.04\nPython 3.13.15\n") == "3.13"
