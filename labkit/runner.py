"""Run notebooks with parameters (papermill), into run folders that never overwrite each other.

- :func:`run` — one notebook, one run folder: ``runs/<notebook>/<timestamp>[-N]/`` holding the executed
  notebook, ``params.yaml``, ``run.json`` (status, start/end, wall time, versions, device, recorded values).
- :func:`sweep` — a grid of parameter values; writes ``comparison.csv`` and ``comparison.png``.
- :func:`course` — every notebook in order on the defaults; writes ``summary.json``/``summary.csv`` and
  prints the table.
- :func:`bundle_kaggle` — a parameterized notebook plus ``kernel-metadata.json`` for ``kaggle kernels push``.

Parameters are checked against the notebook's ``parameters`` cell: an unknown name is an error that lists
the valid ones (papermill itself only warns). Profiles live in ``notebooks/profiles/<name>.yaml`` and map a
notebook stem (``03_yolov1_from_scratch``) or its number (``"03"``) to a parameter set; ``_all`` applies to
every notebook.
"""
from __future__ import annotations

import csv
import datetime as _dt
import itertools
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from labkit import env
from labkit.record import collect, split_verdicts


class ParameterError(ValueError):
    """A parameter name or value that the notebook does not accept."""


# ----------------------------------------------------------------------------------------------
# Locating notebooks and profiles
# ----------------------------------------------------------------------------------------------
def notebooks_dir() -> Path:
    """The course's ``notebooks/`` folder (``$LABKIT_NOTEBOOKS`` overrides)."""
    if os.environ.get("LABKIT_NOTEBOOKS"):
        return Path(os.environ["LABKIT_NOTEBOOKS"]).resolve()
    return env.paths(create=False).home / "notebooks"


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """Course notebooks in order (``NN_*.ipynb``)."""
    folder = folder or notebooks_dir()
    return sorted(p for p in folder.glob("*.ipynb") if re.match(r"\d\d_", p.name))


def resolve_notebook(name: str | os.PathLike) -> Path:
    """Find a notebook by path, file name, stem or number (``"00"``, ``"00_setup_and_tour"``)."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.is_file():
        return p.resolve()
    folder = notebooks_dir()
    stem = p.name[:-6] if p.name.endswith(".ipynb") else p.name
    cands = [q for q in list_notebooks(folder) if q.stem == stem or q.stem.split("_")[0] == stem]
    if len(cands) == 1:
        return cands[0].resolve()
    names = ", ".join(q.stem for q in list_notebooks(folder)) or "(none)"
    raise FileNotFoundError(f"no notebook {str(name)!r} in {folder}; available: {names}")


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """Parameters declared in the notebook's ``parameters`` cell: name -> {default, inferred_type_name, help}."""
    import papermill as pm

    params = pm.inspect_notebook(str(notebook))
    if not params:
        raise ParameterError(f"{notebook.name} has no cell tagged 'parameters'")
    return params


def parse_value(text: str) -> Any:
    """Parse a command-line value the way YAML would: ``2`` -> int, ``1e-3`` -> float, ``SGD`` -> str."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", value):
        return float(value)  # YAML 1.1 reads 1e-3 as a string
    return value


def load_profile(profile: str, notebook: Path) -> dict[str, Any]:
    """Parameters that profile ``profile`` sets for ``notebook``."""
    folder = notebooks_dir() / "profiles"
    path = Path(profile) if profile.endswith((".yaml", ".yml")) else folder / f"{profile}.yaml"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "(none)"
        raise FileNotFoundError(f"profile {profile!r} not found at {path}; available profiles: {have}")
    data = _read_yaml(path)
    out = dict(data.get("_all", {}) or {})
    number = notebook.stem.split("_")[0]
    for key in (number, notebook.stem):
        out.update(data.get(key, {}) or {})
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ParameterError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping of NAME: value")
    return data


def resolve_parameters(notebook: Path, params: Mapping[str, Any] | None = None, param_file: str | None = None,
                       profile: str | None = None) -> dict[str, Any]:
    """Merge profile < file < explicit parameters and check every name against the notebook."""
    merged: dict[str, Any] = {}
    if profile:
        merged.update(load_profile(profile, notebook))
    if param_file:
        merged.update(_read_yaml(Path(param_file)))
    merged.update(params or {})
    declared = notebook_parameters(notebook)
    unknown = sorted(set(merged) - set(declared))
    if unknown:
        valid = ", ".join(f"{k} (default {v['default']})" for k, v in declared.items())
        raise ParameterError(f"{notebook.name}: unknown parameter(s) {', '.join(unknown)}. Valid parameters: {valid}")
    return merged


# ----------------------------------------------------------------------------------------------
# Run folders
# ----------------------------------------------------------------------------------------------
def new_run_dir(kind: str, root: Path | None = None) -> Path:
    """Create and return a fresh folder ``<runs>/<kind>/<YYYYmmdd-HHMMSS>[-N]``; never reuses one.

    Inside a ``labkit run`` (``$LABKIT_RUN_DIR`` set) the folder goes inside that run's folder, so a notebook's
    training outputs stay with the executed notebook.
    """
    if root is None and os.environ.get("LABKIT_RUN_DIR"):
        root = Path(os.environ["LABKIT_RUN_DIR"])
    root = Path(root) if root else env.paths().runs
    base = root / kind
    base.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in itertools.count(1):
        d = base / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            d.mkdir()  # atomic: two runs started in the same second get different folders
            return d
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


@dataclass
class RunResult:
    """What one notebook run produced."""

    notebook: str
    run_dir: str
    status: str
    parameters: dict
    started: str
    ended: str
    wall_s: float
    records: dict = field(default_factory=dict)
    error: str | None = None
    device: str = ""
    versions: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def run(notebook: str | os.PathLike, params: Mapping[str, Any] | None = None, param_file: str | None = None,
        profile: str | None = None, run_dir: Path | None = None, kind: str | None = None,
        timeout: int | None = None, progress: bool = True, raise_on_error: bool = False) -> RunResult:
    """Execute one notebook with papermill into its own run folder and return a :class:`RunResult`.

    The folder gets ``params.yaml`` before the run, the executed notebook, ``records.json`` as values are
    recorded, and ``run.json`` at the end (also when the notebook fails).
    """
    import papermill as pm

    nb = resolve_notebook(notebook)
    parameters = resolve_parameters(nb, params, param_file, profile)
    run_dir = Path(run_dir) if run_dir else new_run_dir(kind or nb.stem)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.yaml").write_text(yaml.safe_dump({"notebook": nb.name, "profile": profile,
                                                         "parameters": parameters}, sort_keys=False))
    out_nb = run_dir / nb.name
    started, t0 = _now(), time.perf_counter()
    status, error = "ok", None
    old = os.environ.get("LABKIT_RUN_DIR")
    os.environ["LABKIT_RUN_DIR"] = str(run_dir)
    try:
        pm.execute_notebook(str(nb), str(out_nb), parameters=parameters, cwd=str(nb.parent),
                            kernel_name="python3", progress_bar=progress, execution_timeout=timeout,
                            report_mode=False)
    except pm.PapermillExecutionError as e:
        status, error = "failed", f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    except Exception as e:  # kernel died, timeout, ...
        status, error = "failed", f"{type(e).__name__}: {e}"
    finally:
        if old is None:
            os.environ.pop("LABKIT_RUN_DIR", None)
        else:
            os.environ["LABKIT_RUN_DIR"] = old
    wall = time.perf_counter() - t0
    records = collect(out_nb) if out_nb.exists() else {}
    sidecar = run_dir / "records.json"
    if sidecar.exists():  # values recorded before a crash
        records = {**json.loads(sidecar.read_text()), **records}
    result = RunResult(notebook=nb.stem, run_dir=str(run_dir), status=status, parameters=parameters,
                       started=started, ended=_now(), wall_s=round(wall, 2), records=records, error=error,
                       device=env.device_info().get("torch_device", "cpu"), versions=env.versions())
    (run_dir / "run.json").write_text(json.dumps(asdict(result), indent=1, default=str))
    if raise_on_error and not result.ok:
        raise RuntimeError(f"{nb.name} failed: {error} (see {out_nb})")
    return result


# ----------------------------------------------------------------------------------------------
# Sweeps
# ----------------------------------------------------------------------------------------------
def grid(values: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of parameter values, in a stable order."""
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(values[n]) for n in names))]


def sweep(notebook: str | os.PathLike, values: Mapping[str, Iterable[Any]], fixed: Mapping[str, Any] | None = None,
          profile: str | None = None, progress: bool = False) -> Path:
    """Run a notebook once per grid point; write ``comparison.csv`` and ``comparison.png``; return the folder."""
    nb = resolve_notebook(notebook)
    points = grid(values)
    # validate every name before running anything
    resolve_parameters(nb, {**(fixed or {}), **points[0]}, profile=profile)
    root = new_run_dir(f"sweeps/{nb.stem}")
    rows = []
    from tqdm.auto import tqdm

    for i, point in enumerate(tqdm(points, desc=f"sweep {nb.stem}")):
        label = ",".join(f"{k}={v}" for k, v in point.items())
        safe = re.sub(r"[^A-Za-z0-9_.=,-]", "_", label)
        res = run(nb, {**(fixed or {}), **point}, profile=profile, run_dir=root / f"{i:02d}_{safe}", progress=progress)
        rows.append({**point, "status": res.status, "wall_s": res.wall_s,
                     **{k: v for k, v in res.records.items() if not isinstance(v, (list, dict))}})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(root / "comparison.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    _plot_sweep(rows, list(values), root / "comparison.png")
    print(format_table(rows, columns))
    print(f"\nsweep results: {root / 'comparison.csv'}")
    return root


def _plot_sweep(rows: list[dict], swept: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    metrics = [k for k in rows[0] if k not in swept and k != "status"
               and all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
    if not metrics:
        return
    labels = [",".join(f"{k}={r[k]}" for k in swept) for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        ax.barh(range(len(rows)), [r[m] for r in rows], color="tab:blue")
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_title(m)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# The whole course
# ----------------------------------------------------------------------------------------------
def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain-text table (no extra dependency), numbers shown with 4 significant digits."""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line, sep] + ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells])


def course(notebooks: list[str] | None = None, profile: str | None = None, stop_on_error: bool = False) -> Path:
    """Run every course notebook in order into ``runs/course/<timestamp>/``; print and save the summary."""
    nbs = [resolve_notebook(n) for n in notebooks] if notebooks else list_notebooks()
    if not nbs:
        raise FileNotFoundError(f"no notebooks found in {notebooks_dir()}")
    root = new_run_dir("course")
    rows, results = [], []
    for nb in nbs:
        print(f"[course] running {nb.name} ...", flush=True)
        res = run(nb, profile=profile, run_dir=root / nb.stem, progress=False)
        results.append(asdict(res))
        plain, verdicts = split_verdicts(res.records)
        rec = ", ".join(f"{k}={_short(v)}" for k, v in plain.items())
        n_true = sum(verdicts.values())
        vtext = f"{n_true}/{len(verdicts)} True" if verdicts else "-"
        rows.append({"notebook": nb.stem, "status": res.status, "wall_s": res.wall_s, "verdicts": vtext,
                     "recorded": rec})
        for claim, ok in verdicts.items():
            if not ok:
                print(f"[course] {nb.stem}: verdict False: {claim}", flush=True)
        print(f"[course] {nb.stem}: {res.status} in {res.wall_s:.1f} s" + (f" — {res.error}" if res.error else ""), flush=True)
        if stop_on_error and not res.ok:
            break
    (root / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    with open(root / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["notebook", "status", "wall_s", "verdicts", "recorded"])
        w.writeheader()
        w.writerows(rows)
    total = sum(r["wall_s"] for r in rows)
    print()
    print(format_table(rows))
    print(f"\ntotal {total:.1f} s; executed notebooks and summary in {root}")
    return root


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    s = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


# ----------------------------------------------------------------------------------------------
# Kaggle bundles
# ----------------------------------------------------------------------------------------------
KAGGLE_METADATA_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Kaggle kernel-metadata.json (fields documented for `kaggle kernels push`)",
    "type": "object",
    "required": ["id", "title", "code_file", "language", "kernel_type"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+/[a-z0-9-]{5,50}$"},
        "title": {"type": "string", "minLength": 5, "maxLength": 50},
        "code_file": {"type": "string", "pattern": r"\.ipynb$"},
        "language": {"enum": ["python", "r", "rmarkdown"]},
        "kernel_type": {"enum": ["script", "notebook"]},
        "is_private": {"type": "boolean"},
        "enable_gpu": {"type": "boolean"},
        "enable_tpu": {"type": "boolean"},
        "enable_internet": {"type": "boolean"},
        "dataset_sources": {"type": "array", "items": {"type": "string", "pattern": r"^[^/\s]+/[^/\s]+$"}},
        "competition_sources": {"type": "array", "items": {"type": "string"}},
        "kernel_sources": {"type": "array", "items": {"type": "string"}},
        "model_sources": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:50].strip("-").ljust(5, "x")


def bundle_kaggle(notebook: str | os.PathLike, params: Mapping[str, Any] | None = None, datasets: Iterable[str] = (),
                  user: str = "your-kaggle-username", out: Path | None = None, profile: str | None = None,
                  gpu: bool = True, internet: bool = True, private: bool = True) -> Path:
    """Write a parameterized notebook and ``kernel-metadata.json`` ready for ``kaggle kernels push -p OUT``."""
    import nbformat
    from papermill.parameterize import parameterize_notebook

    nb_path = resolve_notebook(notebook)
    parameters = resolve_parameters(nb_path, params, profile=profile)
    for d in datasets:
        if not re.fullmatch(r"[^/\s]+/[^/\s]+", d):
            raise ParameterError(f"--dataset {d!r}: expected OWNER/SLUG, as in kaggle.com/datasets/OWNER/SLUG")
    out = Path(out) if out else new_run_dir(f"bundles/{nb_path.stem}")
    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:  # papermill expects every cell to carry a tags list, and its own metadata
        cell.metadata.setdefault("tags", [])
    nb.metadata["papermill"] = {"parameters": {}}
    nb = parameterize_notebook(nb, parameters, report_mode=False)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        if not cell.metadata.get("tags"):
            cell.metadata.pop("tags", None)
    nbformat.write(nb, str(out / nb_path.name))
    title = f"labkit {nb_path.stem.replace('_', ' ')}"[:50]
    meta = {
        "id": f"{user}/{_slug(title)}",
        "title": title,
        "code_file": nb_path.name,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": private,
        "enable_gpu": gpu,
        "enable_tpu": False,
        "enable_internet": internet,
        "dataset_sources": list(datasets),
        "competition_sources": [],
        "kernel_sources": [],
        "model_sources": [],
    }
    (out / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
    return out
