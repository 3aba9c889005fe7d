"""Write environment.yml from pyproject.toml, so the two never drift (tests/test_packaging.py checks).

    python scripts/sync_environment.py
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"] + [d for group in meta["optional-dependencies"].values() for d in group]
    lines = [
        "# Conda environment for labkit. Generated from pyproject.toml by scripts/sync_environment.py: edit that, then re-run.",
        "#   conda env create -f environment.yml && conda activate labkit",
        "name: labkit",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    lines += [f'      - "{d}"' for d in deps]
    lines.append('      - "-e ."')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    out = ROOT / "environment.yml"
    out.write_text(render())
    print(f"wrote {out}", file=sys.stderr)
