"""Resolve labkit's core requirements against a hosted platform's package list (Colab, Kaggle), offline-safe.

    python scripts/platform_resolve.py [FREEZE.txt ...]      (default: every tests/platforms/*.txt)

For each freeze: build labkit's wheel from a temporary copy of the checkout (nothing is written into the tree),
then ask pip for what it *would* install on that runtime (``--dry-run --report``) for the freeze's Python version
(``-py3.13.txt`` in the file name) on Linux x86-64, with the freeze as constraints, and compare pip's install
list with the freeze. Every package the platform has must come out at its version; the only additions allowed
are packages the platform does not have. ``nvidia-*``, ``cuda-*`` and ``triton`` are left out of the constraints
and of the comparison: the freezes come from Colab's CPU runtime, whose torch is a ``+cpu`` build that needs none
of them, while PyPI's torch pins its own (tests/platforms/README.md).

The machine's own pip configuration (local indexes, a torch cap) is set aside: ``PIP_CONFIG_FILE=/dev/null``,
``PIP_FIND_LINKS`` and ``PIP_CONSTRAINT`` unset. Exit status 1 when a freeze fails, 2 on bad input.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ROOT / "tests" / "platforms"
# Colab and Kaggle run Ubuntu 22.04 (glibc 2.35); pip does not widen a manylinux tag to older ones, so all are given
MANYLINUX = [f"manylinux_2_{m}_x86_64" for m in range(35, 16, -1)] + \
            ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
NOT_CONSTRAINED = re.compile(r"^(nvidia-|cuda-|triton$)")


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def python_version(freeze: Path) -> str:
    """The runtime's Python ``3.X`` from a freeze file name such as ``colab-2026-08-19-py3.13.txt``."""
    m = re.search(r"py(3\.\d+)\.txt$", freeze.name)
    if not m:
        raise ValueError(f"{freeze.name}: the file name must end in -py3.X.txt (the runtime's Python)")
    return m.group(1)


def read_freeze(freeze: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a constraints file (``name==version`` lines)."""
    out = {}
    for line in freeze.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[canonical(name)] = version.strip()
    return out


def constrained(pins: dict[str, str]) -> dict[str, str]:
    """The pins passed to pip: all but nvidia-*, cuda-* and triton."""
    return {n: v for n, v in pins.items() if not NOT_CONSTRAINED.match(n)}


def build_wheel(dest: Path, root: Path = ROOT) -> Path:
    """labkit's wheel, built from a temporary copy of pyproject.toml, README.md and labkit/ (no build isolation:
    the running interpreter's setuptools; nothing is downloaded and the checkout is left untouched)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for f in ("pyproject.toml", "README.md"):
            shutil.copy(root / f, src / f)
        shutil.copytree(root / "labkit", src / "labkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(dest), str(src)], check=True, env=pip_env(), capture_output=True, text=True)
    return next(dest.glob("labkit-*.whl"))


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_INDEX_URL",
                                                                "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def resolve_command(wheel: Path, freeze: Path, work: Path) -> tuple[list[str], Path]:
    """The pip command for one freeze (constraints file written into ``work``) and the report's path."""
    work.mkdir(parents=True, exist_ok=True)
    cfile = work / f"constraints-{freeze.stem}.txt"
    cfile.write_text("".join(f"{n}=={v}\n" for n, v in constrained(read_freeze(freeze)).items()))
    report = work / f"report-{freeze.stem}.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "-q", "--report", str(report), "--ignore-installed",
           "--target", str(work / "target"), "--python-version", python_version(freeze), "--only-binary=:all:",
           *[a for p in MANYLINUX for a in ("--platform", p)], "-c", str(cfile), str(wheel)]
    return cmd, report


def platform_changes(report: dict, pins: dict[str, str]) -> tuple[list[str], list[str]]:
    """Compare pip's install list with the freeze: ``(changed, added)``.

    ``changed``: ``"name: platform X -> Y"`` for each platform package pip would install at another version
    (nvidia-*, cuda-*, triton excepted); ``added``: ``name==version`` of packages the platform does not have.
    """
    changed, added = [], []
    for item in report.get("install", []):
        name, version = canonical(item["metadata"]["name"]), item["metadata"]["version"]
        if NOT_CONSTRAINED.match(name):
            continue
        if name in pins:
            if pins[name] != version:
                changed.append(f"{name}: platform {pins[name]} -> {version}")
        else:
            added.append(f"{name}=={version}")
    return changed, added


def resolve_all(freezes: list[Path], work: Path, timeout: float = 1200) -> dict[Path, dict]:
    """Resolve every freeze at once (the resolves wait on PyPI, not on the CPU; pip's HTTP cache is shared).

    Returns ``{freeze: {"rc", "stderr", "report", "changed", "added"}}``.
    """
    wheel = build_wheel(work / "wheel")
    procs = {}
    for fz in freezes:
        cmd, report = resolve_command(wheel, fz, work / fz.stem)
        procs[fz] = (subprocess.Popen(cmd, env=pip_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True), report)
    out = {}
    for fz, (p, report) in procs.items():
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            err = f"timed out after {timeout:.0f} s\n{err}"
        res = {"rc": p.returncode, "stderr": err, "report": None, "changed": [], "added": []}
        if p.returncode == 0 and report.exists():
            res["report"] = json.loads(report.read_text())
            res["changed"], res["added"] = platform_changes(res["report"], read_freeze(fz))
        out[fz] = res
    return out


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    freezes = [Path(a) for a in args] or sorted(PLATFORMS.glob("*.txt"))
    for fz in freezes:
        if not fz.is_file():
            print(f"platform_resolve: {fz}: no such file", file=sys.stderr)
            return 2
        try:
            python_version(fz)
        except ValueError as e:
            print(f"platform_resolve: {e}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        results = resolve_all(freezes, Path(tmp))
    bad = 0
    for fz, r in results.items():
        if r["rc"] != 0 or r["changed"]:
            bad += 1
            why = "; ".join(r["changed"]) or "\n".join(r["stderr"].strip().splitlines()[-8:])
            print(f"{fz.name}: FAILS: {why}")
        else:
            print(f"{fz.name}: resolves, no platform package changed; adds {len(r['added'])}: "
                  + ", ".join(r["added"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
