"""Put the canonical setup cell (labkit.platform_setup.SETUP_CELL) into every notebook's first code cell.

    python scripts/update_setup_cells.py [--check] [--nbtools] [NOTEBOOK ...]     (default: notebooks/*.ipynb)

Only cell index 1 (the first code cell, after the title) changes: its source becomes SETUP_CELL, its outputs and
execution count are cleared; every other byte of the notebook stays as it was (the file is written back in
nbformat's own layout: indent 1, sorted keys, UTF-8). ``--check`` changes nothing and exits 1 when a notebook
differs. A notebook whose cell 1 is not a code cell is refused (exit 2), never guessed at.

``--nbtools`` (once, with the first rewrite) also replaces the old text that ``labkit/nbtools.py`` kept as its own
``SETUP_CELL`` (tests/test_notebooks_clean.py compares the notebooks with it) by an import of this one, so that the
cell is written in one place only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labkit.platform_setup import SETUP_CELL  # noqa: E402

SETUP_INDEX = 1


def source_lines(text: str) -> list[str]:
    """A cell source the way nbformat stores it: lines keeping their newline, the last one without."""
    return text.splitlines(keepends=True)


def cell_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def rewrite(path: Path, check: bool = False) -> bool:
    """Rewrite one notebook's setup cell; returns True when it differed (and, unless ``check``, was rewritten)."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    cells = nb.get("cells", [])
    if len(cells) <= SETUP_INDEX or cells[SETUP_INDEX].get("cell_type") != "code":
        raise SystemExit(f"{path}: cell {SETUP_INDEX} is not a code cell; put the setup cell there by hand first")
    cell = cells[SETUP_INDEX]
    if cell_text(cell) == SETUP_CELL and not cell.get("outputs") and cell.get("execution_count") is None:
        return False
    if not check:
        cell["source"] = source_lines(SETUP_CELL)
        cell["outputs"] = []
        cell["execution_count"] = None
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return True


def adopt_in_nbtools(path: Path = ROOT / "labkit" / "nbtools.py") -> bool:
    """Make ``labkit.nbtools.SETUP_CELL`` an import of the canonical cell; True if the file changed."""
    s = path.read_text(encoding="utf-8")
    if "from labkit.platform_setup import SETUP_CELL" in s:
        return False
    start = s.index("#: The first code cell of every course notebook")
    end_mark = 'print(labkit.env.banner())"""\n'
    end = s.index(end_mark, start) + len(end_mark)
    s = s[:start] + ("#: The first code cell of every course notebook (tests/test_notebooks_clean.py checks it is identical),\n"
                     "#: written once in labkit.platform_setup (what it does on Colab/Kaggle is described there).\n"
                     "from labkit.platform_setup import SETUP_CELL  # noqa: E402\n") + s[end:]
    path.write_text(s, encoding="utf-8")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--check", action="store_true", help="report notebooks that differ; change nothing")
    ap.add_argument("--nbtools", action="store_true", help="also make labkit.nbtools.SETUP_CELL import this one")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for p in paths:
        if not p.is_file():
            print(f"update_setup_cells: {p}: no such notebook", file=sys.stderr)
            return 2
    try:
        changed = [p for p in paths if rewrite(p, check=args.check)]
    except SystemExit as e:
        print(f"update_setup_cells: {e}", file=sys.stderr)
        return 2
    if args.nbtools and not args.check and adopt_in_nbtools():
        print("labkit/nbtools.py: SETUP_CELL now imported from labkit.platform_setup")
    for p in changed:
        print(f"{p}: {'differs' if args.check else 'setup cell rewritten'}")
    if not changed:
        print(f"{len(paths)} notebook(s): setup cell already canonical")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
