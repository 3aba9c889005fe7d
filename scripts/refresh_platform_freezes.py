"""Refresh the platform package lists in tests/platforms/ (what Colab and Kaggle already have installed).

    python scripts/refresh_platform_freezes.py colab [--commit SHA] [--date YYYY-MM-DD]
        fetch Colab's pip-freeze.txt and os-info.txt from github.com/googlecolab/backend-info (default: main,
        i.e. the newest runtime), turn the freeze into constraints and write
        tests/platforms/colab-<date>-py3.X.txt (X from os-info.txt)
    python scripts/refresh_platform_freezes.py copy DIR
        copy every *.txt of a prepared folder (e.g. a Kaggle list derived as tests/platforms/README.md says) here

Then run `python scripts/platform_resolve.py` (or the slow test tests/test_platform_resolve.py) and record the new
file's source in tests/platforms/README.md. The conversion is the one the lists were made with:
``name==1.2.3+local`` -> ``name==1.2.3``; ``name @ URL`` -> ``name==VERSION`` read from the file name of the URL;
lines without a known version (``@ git+...``, ``-e``) are dropped and named on stderr. Network calls give up after
20 s; errors are one line with exit status 2.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import re
import shutil
import sys
import urllib.request
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "platforms"
BACKEND_INFO = "https://raw.githubusercontent.com/googlecolab/backend-info/{commit}/{file}"


def to_constraints(freeze: str) -> tuple[list[str], list[str]]:
    """``(constraint lines, notes)`` from the text of a ``pip freeze``."""
    out, notes = [], []
    for raw in freeze.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;+]+)(\+\S+)?", line)
        if m:
            out.append(f"{m.group(1)}=={m.group(2)}")
            if m.group(3):
                notes.append(f"local label dropped: {line} -> {m.group(1)}=={m.group(2)}")
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*(\S+)", line)
        if m and not m.group(2).startswith("git+"):
            fname = unquote(m.group(2).split("#")[0].rsplit("/", 1)[-1])
            version = None
            if fname.endswith(".whl"):  # {dist}-{version}(-{build})?-{py}-{abi}-{plat}.whl
                version = fname.split("-")[1]
            elif fname.endswith((".tar.gz", ".zip")):
                version = re.sub(r"\.(tar\.gz|zip)$", "", fname).rsplit("-", 1)[-1]
            if version and re.fullmatch(r"[0-9][0-9A-Za-z.!+]*", version):
                version = version.split("+")[0]
                out.append(f"{m.group(1)}=={version}")
                notes.append(f"url -> version: {line[:90]} -> {m.group(1)}=={version}")
                continue
        notes.append(f"dropped (no version known): {line[:120]}")
    return out, notes


def python_of(os_info: str) -> str:
    """``3.X`` from backend-info's os-info.txt (a line such as ``Python 3.13.15``)."""
    m = re.search(r"Python (3\.\d+)", os_info)
    if not m:
        raise ValueError("os-info.txt names no Python version")
    return m.group(1)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read().decode("utf-8")


def cmd_colab(args) -> Path:
    freeze = _get(BACKEND_INFO.format(commit=args.commit, file="pip-freeze.txt"))
    py = python_of(_get(BACKEND_INFO.format(commit=args.commit, file="os-info.txt")))
    lines, notes = to_constraints(freeze)
    date = args.date or _dt.date.today().isoformat()
    out = OUT / f"colab-{date}-py{py}.txt"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for n in notes:
        print(n, file=sys.stderr)
    print(f"wrote {out} ({len(lines)} packages, Python {py}, backend-info {args.commit})")
    return out


def cmd_copy(args) -> list[Path]:
    src = Path(args.dir)
    files = sorted(src.glob("*.txt"))
    if not files:
        raise ValueError(f"{src}: no *.txt package lists there")
    out = []
    for f in files:
        shutil.copy(f, OUT / f.name)
        out.append(OUT / f.name)
        print(f"copied {f.name}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("colab")
    c.add_argument("--commit", default="main", help="backend-info commit (default: main, the newest runtime)")
    c.add_argument("--date", help="date for the file name (default: today)")
    c.set_defaults(func=cmd_colab)
    k = sub.add_parser("copy")
    k.add_argument("dir")
    k.set_defaults(func=cmd_copy)
    args = ap.parse_args(argv)
    try:
        args.func(args)
    except (OSError, ValueError) as e:  # network down, 404, unreadable folder
        print(f"refresh_platform_freezes: {args.what}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
