"""Notebook hygiene: strip volatile outputs, check a notebook is clean, re-record checked outputs.

The rule (see docs/CONTRIBUTING.md): a committed notebook keeps outputs only in cells whose first line is
``# NBVAL_CHECK_OUTPUT`` (nbval compares those, with ``--nbval-lax``); everything else — plots, progress
bars, timings, widget state, execution counts — is removed. ``labkit strip`` applies the rule,
``labkit refresh`` executes a notebook in place and then strips it, and ``tests/test_notebooks_clean.py``
fails when a committed notebook breaks it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"

#: The first code cell of every course notebook (tests/test_notebooks_clean.py checks it is identical),
#: written once in labkit.platform_setup (what it does on Colab/Kaggle is described there).
from labkit.platform_setup import SETUP_CELL  # noqa: E402


def new_notebook(cells) -> "nbformat.NotebookNode":
    """Build a course notebook from ``[("md", text) | ("code", text) | ("params", text), ...]``.

    The setup cell is prepended; ``"params"`` makes the cell tagged ``parameters``. Used to author notebooks.
    """
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    first_code = True
    for kind, text in cells:
        text = text.strip("\n")
        if kind == "md":
            out.append(v4.new_markdown_cell(text))
            continue
        if first_code:
            out.append(v4.new_code_cell(SETUP_CELL))
            first_code = False
        cell = v4.new_code_cell(text)
        if kind == "params":
            cell.metadata["tags"] = ["parameters"]
        out.append(cell)
    for i, cell in enumerate(out):  # stable ids: rebuilding a notebook does not churn its diff
        cell["id"] = f"cell-{i:02d}"
    nb.cells = out
    return nb
_VOLATILE_CELL_META = ("execution", "papermill", "collapsed", "scrolled", "jupyter", "ExecuteTime")
_VOLATILE_NB_META = ("papermill", "widgets", "vscode", "colab", "accelerator")


def is_checked(cell) -> bool:
    """True if a code cell's outputs are compared by nbval (first line ``# NBVAL_CHECK_OUTPUT``)."""
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(src)
    return cell.get("cell_type") == "code" and src.lstrip().startswith(CHECK_MARK)


def parameters_cell(nb):
    """The cell tagged ``parameters`` (or None)."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def strip_notebook(nb):
    """Return a copy of ``nb`` with volatile outputs and metadata removed (checked cells keep outputs)."""
    nb = copy.deepcopy(nb)
    n_code = 0
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        for key in _VOLATILE_CELL_META:
            meta.pop(key, None)
        tags = [t for t in meta.get("tags", []) if t != "injected-parameters"]
        if "tags" in meta:
            if tags:
                meta["tags"] = tags
            else:
                meta.pop("tags")
        if cell.get("cell_type") != "code":
            continue
        n_code += 1
        if is_checked(cell):
            # nbval skips (and fails) reference cells without an execution count, so checked cells keep a
            # deterministic one: their position among the code cells.
            cell["execution_count"] = n_code
            # figures are not compared: under MPLBACKEND=Agg (make test) plt.show() displays none, and a stored
            # one would make nbval fail on a missing output
            cell["outputs"] = [o for o in cell.get("outputs", []) if not (
                o.get("output_type") == "display_data" and any(k.startswith("image/") for k in o.get("data", {})))]
            for out in cell["outputs"]:
                if "execution_count" in out:
                    out["execution_count"] = n_code
                if isinstance(out.get("metadata"), dict):
                    out["metadata"] = {}
        else:
            cell["execution_count"] = None
            cell["outputs"] = []
    for key in _VOLATILE_NB_META:
        nb.metadata.pop(key, None)
    li = nb.metadata.get("language_info")
    if isinstance(li, dict):
        nb.metadata["language_info"] = {"name": li.get("name", "python")}
    # papermill-injected parameter cells are run artefacts, never source
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    return nb


def read_notebook(path) -> "nbformat.NotebookNode":
    """Read a notebook file; anything that is not one (README.md, a folder, binary data) raises a one-line
    :class:`labkit.errors.UserError` that names the file."""
    from labkit.errors import UserError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such notebook; give the path of an .ipynb file")
    if not path.is_file():
        raise UserError(f"{path} is not a file; give the path of an .ipynb file")
    try:
        return nbformat.read(str(path), as_version=4)
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - whatever the parser trips on, the file is not a notebook
        # nbformat raises NotJSONError (a ValueError) for README.md, validation errors for odd JSON
        why = str(e).splitlines()[0][:80] if str(e) else type(e).__name__
        raise UserError(f"{path} is not a Jupyter notebook ({why}); give the path of an .ipynb file") from None


def problems(path) -> list[str]:
    """Why a committed notebook is not clean (empty list when it is)."""
    path = Path(path)
    nb = read_notebook(path)
    out = []
    if parameters_cell(nb) is None:
        out.append(f"{path.name}: no cell tagged 'parameters'")
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("execution_count") is not None and not is_checked(cell):
            out.append(f"{path.name}: cell {i} has an execution count")
        outs = cell.get("outputs", [])
        if outs and not is_checked(cell):
            out.append(f"{path.name}: cell {i} stores outputs but is not a {CHECK_MARK} cell")
        for o in outs:
            if o.get("output_type") == "error":
                out.append(f"{path.name}: cell {i} stores an error output")
    if nbformat.writes(strip_notebook(nb)) != nbformat.writes(nb):
        out.append(f"{path.name}: volatile outputs or metadata present (run `labkit strip {path}`)")
    return out


def strip(path) -> bool:
    """Strip a notebook file in place; returns True if it changed."""
    path = Path(path)
    nb = read_notebook(path)
    clean = strip_notebook(nb)
    before = path.read_text(encoding="utf-8")
    after = nbformat.writes(clean) + "\n"
    if before != after:
        path.write_text(after, encoding="utf-8")
        return True
    return False


def refresh(path, timeout: int = 1800, kernel_name: str = "python3") -> None:
    """Execute a notebook in place (cwd = its folder) to re-record checked outputs, then strip it."""
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = read_notebook(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    path.write_text(nbformat.writes(strip_notebook(nb)) + "\n", encoding="utf-8")
