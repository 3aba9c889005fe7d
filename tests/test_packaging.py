"""Dependencies: ranges (never exact pins) and environment.yml mirroring pyproject.toml."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
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


def test_install_e2e_script_installs_chromium_with_apt_get_as_root(tmp_path):
    """scripts/install_e2e.sh on a machine without Chromium, as root (no sudo): apt-get is really called, with
    DEBIAN_FRONTEND=noninteractive in its environment. (An empty ``$SUDO`` before the assignment once turned
    ``DEBIAN_FRONTEND=noninteractive`` into the command name: a fresh machine never installed Chromium and the
    browser suite was skipped.)"""
    stubs, venv, log = tmp_path / "bin", tmp_path / "venv", tmp_path / "apt.log"
    (venv / "bin").mkdir(parents=True)
    stubs.mkdir()

    def stub(path, body):
        path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
        path.chmod(0o755)

    (stubs / "env").symlink_to(shutil.which("env"))  # real env (and chmod, by absolute path); the rest are stubs
    stub(stubs / "id", "echo 0\n")
    # apt-get logs its environment and arguments; "installing" drops a chromium stub onto the PATH
    stub(stubs / "apt-get", f"""\
        echo "DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}} $*" >> {log}
        if [ "$1" = install ]; then printf '#!/bin/bash\\necho Chromium 1.0\\n' > {stubs}/chromium; {shutil.which("chmod")} +x {stubs}/chromium; fi
        """)
    stub(venv / "bin" / "python", "exit 0\n")  # playwright 'already importable'
    env = {"PATH": str(stubs), "VENV": str(venv), "HOME": str(tmp_path)}
    script = Path(__file__).resolve().parents[1] / "scripts" / "install_e2e.sh"
    r = subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert calls[0].endswith("update -q")
    assert calls[1] == "DEBIAN_FRONTEND=noninteractive install -y -q chromium"
    assert "e2e ready: Chromium 1.0" in r.stdout
