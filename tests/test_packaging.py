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


def _name(dep: str) -> str:
    return re.split(r"[<>=!~\[ ;]", dep)[0].lower().replace("_", "-")


def _meta():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_core_stack_declared():
    names = {_name(d) for d in _deps()}
    for core in ("jupyterlab", "ipywidgets", "ultralytics", "tensorflow", "torch", "torchvision", "matplotlib",
                 "nbval", "papermill", "pycocotools"):
        assert core in names


def test_core_leaves_the_platform_kernel_side_alone():
    """Colab pins ipykernel 6.17.1 / ipywidgets 7.7.1, Kaggle jupyter-lsp 1.5.1: the Jupyter server side lives in
    [lab], never in the core that the setup cell installs there. Catches jupyterlab/ipykernel/papermill moved
    back into `dependencies` (the resolve against the platforms' lists then fails) or ipywidgets capped at 8.1+."""
    from packaging.requirements import Requirement

    meta = _meta()
    core = {_name(d): Requirement(d) for d in meta["dependencies"]}
    for server_side in ("jupyterlab", "ipykernel", "nbformat", "nbclient", "papermill", "notebook",
                        "jupyter-client", "ipython"):
        assert server_side not in core, f"{server_side} belongs in the [lab] extra, not the core"
    assert core["ipywidgets"].specifier.contains("7.7.1") and core["ipywidgets"].specifier.contains("8.1.5")
    extras = meta["optional-dependencies"]
    assert {"lab", "dev", "e2e", "kaggle"} <= set(extras)
    assert {"jupyterlab", "ipykernel", "papermill", "nbclient", "nbformat", "jupyterlab-rise"} <= \
        {_name(d) for d in extras["lab"]}
    assert "kaggle" in {_name(d) for d in extras["kaggle"]}


def test_python_versions_are_consistent():
    """requires-python, the classifiers and the README's Quick start name the same minor versions. Catches
    `>=3.10` (tests import tomllib) or a classifier/README version that no test backs."""
    from packaging.specifiers import SpecifierSet

    meta = _meta()
    spec = SpecifierSet(meta["requires-python"])
    allowed = [f"3.{m}" for m in range(8, 16) if spec.contains(f"3.{m}.0")]
    classified = [c.rsplit(":: ", 1)[1] for c in meta["classifiers"]
                  if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert allowed == classified == ["3.11", "3.12", "3.13"]
    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"Python (3\.\d+)", quick)) | set(re.findall(r"(?<![\d.])(3\.1\d)(?![\d.])", quick))
    assert named <= set(allowed), f"README Quick start names Python {sorted(named - set(allowed))}"


def test_make_install_installs_lab_and_dev():
    """`make course`/`make test` need JupyterLab, papermill and the test tooling: the install rule must pull the
    [lab] and [dev] extras (catches the old `pip install -e '.[dev]'`, which now lacks papermill)."""
    make = (ROOT / "Makefile").read_text()
    rule = make.split("$(STAMP): pyproject.toml", 1)[1].split("\ninstall:", 1)[0]
    m = re.search(r"pip install -e '\.\[([a-z0-9,]+)\]'", rule)
    assert m, rule
    assert {"lab", "dev"} <= set(m.group(1).split(","))


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


def test_notebook_runtime_needs_no_lab_extra(tmp_path):
    """On Colab/Kaggle only the core is installed: what the notebooks call (labkit.record/verdict, env.doctor,
    runner.new_run_dir, the widget modules) must import and run with JupyterLab, ipykernel, nbformat, nbclient and
    papermill absent. Catches a module-level `import papermill`/`import nbformat` in labkit.runner or labkit.record."""
    script = tmp_path / "blocked.py"
    script.write_text(textwrap.dedent(f"""\
        import importlib.abc, io, sys
        from pathlib import Path
        BLOCK = {{"jupyterlab", "ipykernel", "nbformat", "nbclient", "papermill", "jupyter_server", "notebook"}}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in BLOCK:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        sys.meta_path.insert(0, Block())
        import labkit, labkit.runner, labkit.record, labkit.env, labkit.platform_setup, labkit.widgets
        import labkit.widgets.optim, labkit.widgets.metrics, labkit.widgets.finetune, labkit.widgets.flops
        labkit.record("x", 1)
        labkit.verdict("a claim", True, "detail")
        labkit.runner.new_run_dir("t", root=Path({str(tmp_path)!r}))
        labkit.env.doctor(file=io.StringIO())
        print("runtime ok")
        """))
    env = {**__import__("os").environ, "LABKIT_HOME": str(tmp_path / "home"), "LABKIT_OFFLINE": "1"}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env,
                       cwd=str(ROOT))
    assert r.returncode == 0 and "runtime ok" in r.stdout, r.stderr[-2000:]
