"""Installing labkit on Colab and Kaggle without touching the platform's packages, and checking its versions.

Colab pins the kernel side (ipykernel 6.17.1, ipython 7.34, ipywidgets 7.7.1, ...) and Kaggle its own set; an
unconstrained ``pip install labkit`` there upgrades some of them, which is the known cause of Colab's "your runtime
repeatedly crashes". So every notebook's first code cell is :data:`SETUP_CELL` (one text, written here once;
``scripts/update_setup_cells.py`` puts it into the notebooks and ``tests/test_setup_cell.py`` checks it). On Colab
or Kaggle, when labkit is missing, it

1. installs labkit itself with ``--no-deps`` (nothing else changes yet);
2. calls :func:`install_requirements`: ``pip list --format=freeze`` into a constraints file, one line per platform
   package whose version is outside labkit's range (:func:`out_of_range`) naming it and what to do, then
   ``pip install -c CONSTRAINTS`` of labkit's run-time requirements. pip installs only what is missing (e.g.
   ultralytics, pycocotools) and, bound by the constraints, never upgrades or downgrades a package the platform
   has: if that were the only way, pip stops with an error instead.

Locally the cell only imports labkit. :func:`out_of_range` also feeds :func:`labkit.env.banner`, which flags
out-of-range versions in the style of Ultralytics' ``checks()``.
"""
from __future__ import annotations

import importlib.metadata as _md
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["SETUP_CELL", "LEGACY_SETUP_CELL", "requirements", "out_of_range", "platform_freeze",
           "install_requirements"]

# The canonical first code cell of every notebook. Keep it short: it runs before labkit exists on the platform.
SETUP_CELL = '''\
# Setup: on Colab/Kaggle installs labkit once, keeping every package the platform has at its version; prints versions.
import importlib.util, os, sys
ON_COLAB, ON_KAGGLE = "google.colab" in sys.modules, "KAGGLE_KERNEL_RUN_TYPE" in os.environ
if (ON_COLAB or ON_KAGGLE) and importlib.util.find_spec("labkit") is None:
    LABKIT_REPO = os.environ.get("LABKIT_REPO", "labkit-course/labkit")  # OWNER/NAME of your copy
    %pip install -q --no-deps "labkit @ git+https://github.com/{LABKIT_REPO}"
    importlib.invalidate_caches()  # let this running kernel see the package pip just added
    import labkit.platform_setup
    labkit.platform_setup.install_requirements()  # pip install -c <the platform's own pip freeze>
import labkit
print(labkit.env.banner())'''

# The cell the notebooks had before issue 15 (an unconstrained `%pip install`); the rewrite script replaces it.
LEGACY_SETUP_CELL = '''\
# Setup: installs labkit only on Colab/Kaggle when missing; prints versions and the device.
import importlib.util, os, sys
ON_COLAB, ON_KAGGLE = "google.colab" in sys.modules, "KAGGLE_KERNEL_RUN_TYPE" in os.environ
if (ON_COLAB or ON_KAGGLE) and importlib.util.find_spec("labkit") is None:
    LABKIT_REPO = os.environ.get("LABKIT_REPO", "labkit-course/labkit")  # OWNER/NAME of your copy
    %pip install -q "labkit @ git+https://github.com/{LABKIT_REPO}"
import labkit
print(labkit.env.banner())'''


def requirements(dist: str = "labkit"):
    """The run-time (core) requirements of an installed distribution, as ``packaging`` Requirement objects.

    Requirements that belong to an extra (``[lab]``, ``[dev]``, ...) or whose marker does not hold here are left out.
    """
    from packaging.requirements import Requirement

    out = []
    for text in _md.requires(dist) or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        out.append(req)
    return out


def _installed(name: str) -> str | None:
    try:
        return _md.version(name)
    except _md.PackageNotFoundError:
        return None


def out_of_range(dist: str = "labkit", installed=_installed) -> list[tuple[str, str, str]]:
    """``(name, installed version, wanted specifier)`` for every installed package outside ``dist``'s range.

    Missing packages are not listed (installing them changes nothing the platform has). ``installed`` maps a name
    to its version or None (a stand-in for tests). Pre-releases and local versions (``2.11.0+cu128``) count as in
    range when their public version is.
    """
    from packaging.version import InvalidVersion, Version

    bad = []
    for req in requirements(dist):
        have = installed(req.name)
        if have is None or not str(req.specifier):
            continue
        try:
            public = Version(Version(have).public)
        except InvalidVersion:
            continue
        if not req.specifier.contains(public, prereleases=True):
            bad.append((req.name, have, str(req.specifier)))
    return bad


def fix_hint(name: str, spec: str, platform: str) -> str:
    """What to do about one out-of-range platform package (one sentence)."""
    where = {"colab": "Runtime > Change runtime type > Runtime version", "kaggle": "Settings > Environment"}
    pick = f"pick another runtime ({where[platform]}) or " if platform in where else ""
    return (f"{pick}run `%pip install \"{name}{spec}\"` and restart the kernel "
            f"(this changes a package the platform installed)")


def platform_freeze(python: str | None = None) -> list[str]:
    """``pip list --format=freeze`` of the running interpreter: ``name==version`` lines (editable installs dropped)."""
    r = subprocess.run([python or sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                       text=True, check=True)
    return [line.strip() for line in r.stdout.splitlines() if "==" in line and not line.startswith("-e")]


def install_requirements(dist: str = "labkit", platform: str | None = None, dry_run: bool = False,
                         python: str | None = None, installed=_installed) -> list[str]:
    """Install ``dist``'s run-time requirements with the platform's own packages as pip constraints.

    Prints one line per platform package outside ``dist``'s range (name, version, range, what to do) and leaves
    that requirement out, so pip never changes it. Returns the pip command it ran (``dry_run`` adds
    ``--dry-run``). pip's own output is shown only when it fails. ``python`` is the interpreter whose pip is used
    (default: this one); ``installed`` as in :func:`out_of_range`.
    """
    from labkit import env

    where = platform or env.platform()
    bad = out_of_range(dist, installed)
    for name, have, spec in bad:
        print(f"labkit: {where} has {name} {have}, outside labkit's range {spec}; kept as it is. "
              f"To change it: {fix_hint(name, spec, where)}.")
    skip = {name.lower() for name, _, _ in bad}
    reqs = [str(r) for r in requirements(dist) if r.name.lower() not in skip]
    fd, cfile = tempfile.mkstemp(prefix="platform-constraints-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(platform_freeze(python)) + "\n")
    cmd = [python or sys.executable, "-m", "pip", "install", "-q", "-c", cfile, *reqs]
    if dry_run:
        cmd.insert(cmd.index("-q"), "--dry-run")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        print(f"{tail}\nlabkit: pip could not add labkit's requirements without changing a package this platform "
              f"has (constraints: {cfile}); the lines above name it.")
    if r.returncode == 0:
        Path(cfile).unlink(missing_ok=True)
    return cmd
