"""Recording key values from a notebook so runs can be summarised and compared.

``labkit.record("mAP50", 0.71)`` shows the value and emits display data with the MIME type
``application/vnd.labkit.record+json``; :func:`collect` reads these back from an executed notebook.
When ``$LABKIT_RUN_DIR`` is set (``labkit run`` sets it), the value is also appended to
``records.json`` there, so a run that dies midway still keeps what it recorded.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

MIME = "application/vnd.labkit.record+json"


def _jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars and small arrays into plain JSON values."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def record(name: str, value: Any, display: bool = True) -> Any:
    """Record a named value (e.g. the final mAP50) for run summaries; returns the JSON value.

    Args:
        name: key in the run summary; use the same name across notebooks for the same quantity.
        value: a number, string, bool, or a small list/dict of those (numpy/torch scalars are converted).
        display: show it in the notebook (``name = value``) and store it as display data.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("record() needs a non-empty string name")
    v = _jsonable(value)
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import display as ipy_display

            if get_ipython() is not None:
                ipy_display({MIME: {"name": name, "value": v}, "text/plain": f"{name} = {_fmt(v)}"}, raw=True)
            else:
                print(f"{name} = {_fmt(v)}")
        except ImportError:  # pragma: no cover
            print(f"{name} = {_fmt(v)}")
    run_dir = os.environ.get("LABKIT_RUN_DIR")
    if run_dir:
        path = Path(run_dir) / "records.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = v
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    return v


def collect(notebook) -> dict[str, Any]:
    """Values recorded in an executed notebook (path or ``nbformat`` node); later records win."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, os.PathLike)) else notebook
    out: dict[str, Any] = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if MIME in data:
                rec = data[MIME]
                if isinstance(rec, str):
                    rec = json.loads(rec)
                out[rec["name"]] = rec["value"]
    return out
