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


VERDICT_PREFIX = "verdict:"


def verdict(claim: str, ok: bool, detail: str = "") -> bool:
    """Print and record a lesson's verdict: one line ``verdict: <claim>: True | <detail>``.

    Every experiment in the course ends with one. ``claim`` is the lesson in words (no numbers in it), ``ok``
    the boolean computed from the experiment's own results, ``detail`` the numbers behind it (e.g.
    ``"0.91 vs 0.72"``). nbval compares the claim and the boolean exactly; the detail after ``|`` is masked by
    ``notebooks/nbval_sanitize.cfg``, so small float differences between machines do not fail the suite, while
    a flipped verdict does. The verdict is also recorded (``verdict:<claim>`` -> bool) so ``labkit course``
    lists every notebook's verdicts in its summary.
    """
    if not isinstance(claim, str) or not claim.strip() or "|" in claim:
        raise ValueError("verdict() needs a non-empty claim without '|'")
    ok = bool(ok)
    print(f"{VERDICT_PREFIX} {claim}: {ok}" + (f" | {detail}" if detail else ""))
    record(f"{VERDICT_PREFIX}{claim}", ok, display=False)
    try:  # keep it in the notebook too, so collect() finds it in an executed notebook
        from IPython import get_ipython
        from IPython.display import display as ipy_display

        if get_ipython() is not None:
            ipy_display({MIME: {"name": f"{VERDICT_PREFIX}{claim}", "value": ok}}, raw=True)
    except ImportError:  # pragma: no cover
        pass
    return ok


def split_verdicts(records: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """Split a run's records into (plain values, verdicts by claim)."""
    plain = {k: v for k, v in records.items() if not k.startswith(VERDICT_PREFIX)}
    verdicts = {k[len(VERDICT_PREFIX):]: bool(v) for k, v in records.items() if k.startswith(VERDICT_PREFIX)}
    return plain, verdicts
