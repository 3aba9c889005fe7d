"""Give every cell of the course notebooks slide metadata (lecture mode: RISE in JupyterLab, `labkit slides`).

    python scripts/add_slide_metadata.py notebooks/0*.ipynb           # add where missing, keep the rest
    python scripts/add_slide_metadata.py --check notebooks/0*.ipynb   # exit 1 if a cell has none
    python scripts/add_slide_metadata.py --overwrite NOTEBOOK...      # recompute every cell's slide type

The rules are :func:`labkit.slides.add_slide_metadata`'s. A slide type already set is kept (unless
``--overwrite``), so re-running changes nothing. Only ``metadata.slideshow`` changes; the file is written in the
notebooks' own JSON layout (indent 1, sorted keys), and only when something changed.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from labkit.slides import add_slide_metadata, count_slides


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a notebook would change")
    ap.add_argument("--overwrite", action="store_true", help="recompute slide types the notebook already has")
    args = ap.parse_args(argv)
    stale = []
    for path in args.notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        before = copy.deepcopy(nb)
        add_slide_metadata(nb, overwrite=args.overwrite)
        slides, pages = count_slides(nb)
        changed = nb != before
        if changed and not args.check:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        if changed:
            stale.append(path)
        state = ("missing slide metadata" if args.check else "updated") if changed else "unchanged"
        print(f"{path}: {state}; {slides} slides, {pages} pages")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
