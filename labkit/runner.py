"""Run notebooks with parameters (papermill), into run folders that never overwrite each other.

- :func:`run` — one notebook, one run folder: ``runs/<notebook>/<timestamp>[-N]/`` holding the executed
  notebook, ``params.yaml``, ``run.json`` (status, start/end, wall time, versions, device, recorded values) and
  ``kernel.log`` (the kernel process's own start-up lines, e.g. TensorFlow's, kept out of the terminal).
- :func:`sweep` — a grid of parameter values; writes ``comparison.csv`` and ``comparison.png`` (serial, parallel,
  on Ray, resumable, aggregated over seeds: :mod:`labkit.sweep`).
- :func:`course` — every notebook in order on the defaults; writes ``summary.json``/``summary.csv`` and
  prints the table.
- Kaggle bundles (a parameterized notebook plus ``kernel-metadata.json``) are :mod:`labkit.kaggle`'s.

Parameters are checked against the notebook's ``parameters`` cell before any kernel starts: an unknown name is
an error that lists the valid ones (papermill itself only warns); a value must have the type of the default
(or of the annotation) and lie in the range labkit knows for common names (:data:`PARAMETER_RANGES`). Values
are read with YAML 1.2 rules (:func:`parse_value`). Profiles live in ``notebooks/profiles/<name>.yaml`` and map
a notebook stem (``03_yolov1_from_scratch``) or its number (``"03"`` or ``03``) to a parameter set; ``_all``
applies to every notebook.

A run stopped with Ctrl-C records ``status: interrupted`` with its times; a sweep or course stopped that way still
writes the table of the points that finished, then raises :class:`RunInterrupted`.
"""
from __future__ import annotations

import ast
import csv
import datetime as _dt
import itertools
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from labkit import env
from labkit.errors import UserError
from labkit.record import collect, split_verdicts


class ParameterError(UserError):
    """A parameter name or value that the notebook does not accept."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, sweep or course; ``where`` is the folder that holds what was recorded."""

    def __init__(self, where: str | os.PathLike):
        super().__init__(str(where))
        self.where = str(where)


# ----------------------------------------------------------------------------------------------
# Locating notebooks and profiles
# ----------------------------------------------------------------------------------------------
def _package_checkout() -> Path | None:
    """The checkout labkit is installed from (editable install), when it holds ``notebooks/``."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def notebooks_dir() -> Path:
    """The course's ``notebooks/`` folder.

    ``$LABKIT_NOTEBOOKS`` overrides; else the ``notebooks/`` of the checkout holding the working folder, else of
    the checkout labkit is installed from, else ``./notebooks``. ``$LABKIT_HOME`` (where data, runs and weights
    go) does not move it.
    """
    if os.environ.get("LABKIT_NOTEBOOKS"):
        return Path(os.environ["LABKIT_NOTEBOOKS"]).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for root in (env._project_root(cwd), _package_checkout()):
        if root is not None and (root / "notebooks").is_dir():
            return root / "notebooks"
    return cwd / "notebooks"


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
    raise FileNotFoundError(f"no notebook {str(name)!r} in {folder}; available: {names} "
                            f"(set LABKIT_NOTEBOOKS to the folder holding the course notebooks)")


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """Parameters declared in the notebook's ``parameters`` cell: name -> {default, inferred_type_name, help}."""
    import papermill as pm

    try:
        params = pm.inspect_notebook(str(notebook))
    except Exception as e:  # not JSON, not a notebook, unreadable
        raise ParameterError(f"{notebook}: cannot read its parameters cell ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}); is it a Jupyter notebook?") from None
    if not params:
        raise ParameterError(f"{notebook.name} has no cell tagged 'parameters'")
    return params


# ----------------------------------------------------------------------------------------------
# Values: YAML 1.2 scalars, types from the parameters cell, known ranges
# ----------------------------------------------------------------------------------------------
class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema for plain scalars.

    YAML 1.1 (PyYAML's default) reads ``012`` as octal 10, ``1:30`` as 90 (base 60), ``no``/``on`` as booleans
    and ``1e-3`` as a string. Here ``012`` is 12, ``1:30`` and ``no`` are strings, ``1e-3`` is a float,
    ``0o17``/``0x1f`` are octal/hex ints, ``.inf``/``.nan`` are floats, ``true``/``false`` the only booleans,
    ``null``/``~``/empty the only null. Dates stay strings.
    """


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _rx, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+0123456789.")),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
]:
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_rx), _first)


def _yaml12_int(loader, node):
    text = loader.construct_scalar(node)
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits, 10)  # "012" is 12 in YAML 1.2


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)


def yaml12_load(text: str) -> Any:
    """Load YAML text with the YAML 1.2 core schema (see :class:`_Yaml12Loader`)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def parse_value(text: str) -> Any:
    """Parse a command-line value with YAML 1.2 rules: ``2`` -> int, ``1e-3`` -> float, ``SGD`` -> str.

    ``012`` is 12, ``1:30`` and ``no`` stay strings, ``true``/``false`` are booleans; text that is not valid YAML
    (``[unclosed``) stays a string.
    """
    try:
        return yaml12_load(text)
    except (yaml.YAMLError, RecursionError, ValueError):
        return text


class CliText(str):
    """A parameter value exactly as typed after ``-p NAME``; read according to the parameter's declared type."""


#: Ranges labkit knows for common parameter names: NAME -> (low, high, low_inclusive, high_inclusive); None = open.
#: A range is checked only where the notebook's own default lies in it (notebook 01's ``N_TRAIN = 0`` means
#: "all", so there 0 stays allowed). This is the one table; ``labkit params`` and the errors quote it.
PARAMETER_RANGES: dict[str, tuple] = {
    "BATCH": (1, None, True, None), "EPOCHS": (1, None, True, None), "N_TRAIN": (1, None, True, None),
    "N_VAL": (1, None, True, None), "N_TEST": (0, None, True, None), "IMGSZ": (32, None, True, None),
    "WORKERS": (0, None, True, None), "SEED": (0, 2**32 - 1, True, True), "PATIENCE": (0, None, True, None),
    "ROUNDS": (1, None, True, None), "BUDGET": (1, None, True, None), "INITIAL": (1, None, True, None),
    "HIDDEN": (1, None, True, None), "DEPTH": (1, None, True, None), "WIDTH": (1, None, True, None),
    "N_CLASSES": (1, None, True, None), "LR": (0, None, False, None), "LR0": (0, None, False, None),
    "CONF": (0, 1, True, True), "IOU_THRESHOLD": (0, 1, True, True), "DROPOUT": (0, 1, True, False),
    "MOSAIC": (0, 1, True, True), "WEIGHT_DECAY": (0, None, True, None),
}


def _in_range(value, rng) -> bool:
    lo, hi, lo_inc, hi_inc = rng
    if lo is not None and (value < lo if lo_inc else value <= lo):
        return False
    return not (hi is not None and (value > hi if hi_inc else value >= hi))


def range_text(rng) -> str:
    """``>= 1``, ``> 0``, ``in [0, 1)`` for a :data:`PARAMETER_RANGES` entry."""
    lo, hi, lo_inc, hi_inc = rng
    if hi is None:
        return f"{'>=' if lo_inc else '>'} {lo}"
    return f"in {'[' if lo_inc else '('}{lo}, {hi}{']' if hi_inc else ')'}"


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a mapping", tuple: "a list"}
_ANNOTATIONS = {"bool": bool, "int": int, "float": float, "str": str, "list": list, "dict": dict, "tuple": tuple}


def declared_type(decl: Mapping[str, Any]) -> tuple[type | None, bool]:
    """(type, None allowed) of a parameter, from its annotation, else from its default's type.

    ``type`` is None when labkit cannot tell (a default such as ``None`` or an expression): any value goes.
    """
    ann = str(decl.get("inferred_type_name") or "None").replace(" ", "")
    if ann not in ("None", ""):
        m = re.fullmatch(r"Optional\[(\w+)\]|(\w+)\|None|None\|(\w+)|(\w+)", ann)
        name = next((g for g in m.groups() if g), None) if m else None
        if name in _ANNOTATIONS:
            return _ANNOTATIONS[name], ann != name
    try:
        default = ast.literal_eval(str(decl.get("default")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, True
    return (None, True) if default is None else (type(default), False)


def check_value(notebook: Path, name: str, value: Any, decl: Mapping[str, Any]) -> Any:
    """Return ``value`` as the parameter's declared type, or raise a one-line :class:`ParameterError`."""
    typ, nullable = declared_type(decl)
    where = f"{notebook.name}: parameter {name}"
    if isinstance(value, CliText):
        value = str(value) if typ is str else parse_value(str(value))
    if value is None and (nullable or typ is None):
        return None
    if typ is None:
        return value
    want = f"{_TYPE_WORDS.get(typ, typ.__name__)} (its default is {decl.get('default')})"
    shown = repr(value) if not isinstance(value, str) else repr(value)[:60]
    if typ is bool:
        if not isinstance(value, bool):
            raise ParameterError(f"{where}={shown}: expected {want}")
    elif typ is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{where}={shown}: expected {want}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{where}={shown}: expected {want}")
        try:
            value = float(value)
        except OverflowError:
            raise ParameterError(f"{where}: {shown} is too large for a float") from None
        if not math.isfinite(value):
            raise ParameterError(f"{where}={shown}: expected a finite number (its default is {decl.get('default')})")
    elif typ is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # e.g. DEVICE: 0 in a YAML file
        if not isinstance(value, str):
            raise ParameterError(f"{where}={shown}: expected {want}; quote it in YAML")
    elif typ in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{where}={shown}: expected {want}, e.g. [1, 2]")
    elif typ is dict:
        if not isinstance(value, dict):
            raise ParameterError(f"{where}={shown}: expected {want}, e.g. {{a: 1}}")
    rng = PARAMETER_RANGES.get(name)
    if rng is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            default = ast.literal_eval(str(decl.get("default")))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = None
        applies = not isinstance(default, (int, float)) or isinstance(default, bool) or _in_range(default, rng)
        if applies and not _in_range(value, rng):
            raise ParameterError(f"{where}={shown}: must be {range_text(rng)}")
    return value


# ----------------------------------------------------------------------------------------------
# Profiles and parameter files
# ----------------------------------------------------------------------------------------------
_MAX_YAML_BYTES = 1_000_000


def _read_yaml(path: Path, what: str = "parameter file") -> dict:
    """A YAML mapping from ``path`` (YAML 1.2 scalars), or a one-line :class:`ParameterError`."""
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"{what} {path} not found; give an existing YAML file of NAME: value lines")
    if not path.is_file():
        raise ParameterError(f"{what} {path} is not a file; give a YAML file of NAME: value lines")
    try:
        if path.stat().st_size > _MAX_YAML_BYTES:
            raise ParameterError(f"{what} {path} is larger than {_MAX_YAML_BYTES // 1000} kB; "
                                 "give a YAML file of NAME: value lines")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ParameterError(f"{what} {path} is not UTF-8 text; give a YAML file of NAME: value lines") from None
    except OSError as e:
        raise ParameterError(f"{what} {path}: cannot read it ({e.strerror or e})") from None
    if "\x00" in text:
        raise ParameterError(f"{what} {path} is a binary file; give a YAML file of NAME: value lines")
    try:
        data = yaml12_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = str(getattr(e, "problem", None) or e).splitlines()[0]
        raise ParameterError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ParameterError(f"{what} {path}: nested too deeply; give NAME: value lines") from None
    except (ValueError, OverflowError) as e:
        raise ParameterError(f"{what} {path}: invalid value ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{what} {path}: expected a mapping of NAME: value, got {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad and what == "parameter file":
        raise ParameterError(f"{what} {path}: parameter names must be text, got {bad[0]!r}")
    return data


def _profile_key(key: Any) -> str:
    """``00`` (YAML reads it as the int 0), ``3`` and ``"03"`` all name notebook ``03``."""
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        return repr(key)
    return f"{key:02d}" if isinstance(key, int) and key >= 0 else str(key)


def load_profile(profile: str, notebook: Path) -> dict[str, Any]:
    """Parameters that profile ``profile`` sets for ``notebook``.

    Every key must name a course notebook (stem or number) or be ``_all``, and map to NAME: value pairs;
    otherwise this raises :class:`ParameterError` instead of silently dropping the entry.
    """
    folder = notebooks_dir() / "profiles"
    path = Path(profile) if str(profile).endswith((".yaml", ".yml")) else folder / f"{profile}.yaml"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "(none)"
        raise ParameterError(f"profile {profile!r} not found at {path}; available profiles: {have}")
    data = _read_yaml(path, "profile")
    known = {q.stem for q in list_notebooks()} | {q.stem.split("_")[0] for q in list_notebooks()}
    known.add(notebook.stem)
    known.add(notebook.stem.split("_")[0])
    entries: dict[str, dict] = {}
    for key, value in data.items():
        k = _profile_key(key)
        if k != "_all" and k not in known:
            raise ParameterError(f"profile {path}: key {key!r} names no notebook in {notebooks_dir()}; "
                                 f"use a notebook stem or number ({', '.join(sorted(known)) or 'none'}) or _all")
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ParameterError(f"profile {path}: {key!r} must map NAME: value pairs, got "
                                 f"{type(value).__name__} {str(value)[:40]!r}")
        bad = [n for n in value if not isinstance(n, str)]
        if bad:
            raise ParameterError(f"profile {path}: under {key!r}, parameter names must be text, got {bad[0]!r}")
        if k in entries:
            raise ParameterError(f"profile {path}: notebook {k} appears twice (as {key!r}); merge the entries")
        entries[k] = value
    out = dict(entries.get("_all", {}))
    for key in (notebook.stem.split("_")[0], notebook.stem):
        out.update(entries.get(key, {}))
    return out


def resolve_parameters(notebook: Path, params: Mapping[str, Any] | None = None, param_file: str | None = None,
                       profile: str | None = None) -> dict[str, Any]:
    """Merge profile < file < explicit parameters; check every name, type and known range against the notebook.

    Values given as :class:`CliText` (``-p NAME VALUE``) are read per the declared type: text for a string
    parameter, YAML 1.2 otherwise.
    """
    merged: dict[str, Any] = {}
    if profile:
        merged.update(load_profile(profile, notebook))
    if param_file:
        merged.update(_read_yaml(Path(param_file)))
    merged.update(params or {})
    declared = notebook_parameters(notebook)
    unknown = sorted(set(merged) - set(declared), key=str)
    if unknown:
        valid = ", ".join(f"{k} (default {v['default']})" for k, v in declared.items())
        raise ParameterError(f"{notebook.name}: unknown parameter(s) {', '.join(map(str, unknown))}. "
                             f"Valid parameters: {valid}")
    return {k: check_value(notebook, k, v, declared[k]) for k, v in merged.items()}


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
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the run folder {base} ({e.strerror or e}); set LABKIT_HOME to a "
                        "writable folder") from None
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in itertools.count(1):
        d = base / (stamp if i == 1 else f"{stamp}-{i}")
        try:
            d.mkdir()  # atomic: two runs started in the same second get different folders
            return d
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _fresh_dir(path: Path) -> Path:
    """``path`` if it does not exist yet, else ``path-2``, ``path-3``, ... (created atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for i in itertools.count(1):
        d = path if i == 1 else path.with_name(f"{path.name}-{i}")
        try:
            d.mkdir()
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


def _heading(cell) -> str | None:
    """The last markdown heading in a cell (``## 3. Training`` -> ``3. Training``), or None."""
    found = None
    for line in str(cell.get("source", "")).splitlines():
        m = re.match(r"\s{0,3}#{1,6}\s+(.*\S)", line)
        if m:
            found = m.group(1).strip("# ")
    return found


class _CellProgress:
    """A tqdm bar over a notebook's code cells that shows the current section heading (nbclient hook)."""

    def __init__(self, notebook: Path, enabled: bool, injected: bool = False):
        import nbformat

        self.enabled = enabled
        self.stem = notebook.stem
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            try:
                nb = nbformat.read(str(notebook), as_version=4)
                total = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip()) + int(injected)
            except Exception:  # noqa: BLE001 - the bar is cosmetic
                total = None
            self.bar = tqdm(total=total, desc=self.stem, unit="cell", leave=True, file=sys.stderr,
                            bar_format="{desc}: {n_fmt}/{total_fmt} cells [{elapsed}]")

    def on_cell_start(self, cell=None, cell_index=None, **_):
        if self.bar is None or cell is None:
            return
        if cell.get("cell_type") == "markdown":
            h = _heading(cell)
            if h:
                self.bar.set_description_str(f"{self.stem} | {h[:60]}", refresh=True)
        elif str(cell.get("source", "")).strip():
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _kernel_manager_class(log_path: Path, handles: list):
    """An nbclient kernel manager whose kernel process writes its stdout/stderr to ``log_path``.

    The kernel's own start-up lines (IPKernelApp's "running over TCP without encryption" warning, TensorFlow's
    cuInit and oneDNN lines) go there instead of the terminal; cell outputs still reach the notebook. The open
    log files are appended to ``handles`` for the caller to close once the kernel is gone.
    """
    from jupyter_client.manager import AsyncKernelManager

    class _LoggedKernelManager(AsyncKernelManager):
        async def _async_start_kernel(self, **kw):
            fh = open(log_path, "ab")  # noqa: SIM115 - closed by run() after the kernel has stopped
            handles.append(fh)
            kw.setdefault("stdout", fh)
            kw.setdefault("stderr", fh)
            return await super()._async_start_kernel(**kw)

        start_kernel = _async_start_kernel

    return _LoggedKernelManager


def _run_device(run_dir: Path) -> str:
    """The device the notebook used: what its ``labkit.env.setup`` wrote into the run folder, or ``""`` when it
    did not call it. Read from the file, not probed here: importing torch and asking CUDA in the process that
    runs the notebook would cost a point of a parallel sweep seconds, and could differ from the kernel's choice."""
    try:
        return (run_dir / env.DEVICE_FILE).read_text().strip()
    except OSError:
        return ""


def run(notebook: str | os.PathLike, params: Mapping[str, Any] | None = None, param_file: str | None = None,
        profile: str | None = None, run_dir: Path | None = None, kind: str | None = None,
        timeout: int | None = None, progress: bool = True, raise_on_error: bool = False,
        log_output: bool = False) -> RunResult:
    """Execute one notebook with papermill into its own run folder and return a :class:`RunResult`.

    The folder gets ``params.yaml`` before the run, the executed notebook, ``records.json`` as values are
    recorded, ``kernel.log`` (the kernel process's own output) and ``run.json`` at the end (also when the
    notebook fails, and when Ctrl-C stops it: then ``status`` is ``interrupted`` and :class:`RunInterrupted`
    is raised after ``run.json`` is written).

    Args:
        timeout: seconds one cell may run before the run fails (None: no limit).
        progress: show a progress bar over the cells with the current section heading.
        log_output: stream the notebook's stdout/stderr to the terminal while it runs.
    """
    import papermill as pm

    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                or not math.isfinite(timeout) or timeout <= 0):
        raise UserError(f"--timeout {timeout!r}: give a positive number of seconds per cell")
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
    bar = _CellProgress(nb, progress, injected=bool(parameters))  # papermill adds a cell only for parameters
    handles: list = []
    extra = {"stdout_file": sys.stdout, "stderr_file": sys.stderr} if log_output else {}
    try:
        pm.execute_notebook(str(nb), str(out_nb), parameters=parameters, cwd=str(nb.parent),
                            kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                            report_mode=False, on_cell_start=bar.on_cell_start,
                            kernel_manager_class=_kernel_manager_class(run_dir / "kernel.log", handles), **extra)
    except pm.PapermillExecutionError as e:
        status, error = "failed", f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    except KeyboardInterrupt:
        status, error = "interrupted", "stopped with Ctrl-C"
    except Exception as e:  # kernel died, timeout, ...
        status, error = "failed", f"{type(e).__name__}: {e}"
    finally:
        bar.close()
        for fh in handles:
            fh.close()
        if old is None:
            os.environ.pop("LABKIT_RUN_DIR", None)
        else:
            os.environ["LABKIT_RUN_DIR"] = old
    wall = time.perf_counter() - t0
    try:
        records = collect(out_nb) if out_nb.exists() else {}
    except Exception:  # noqa: BLE001 - a notebook cut short may be half written
        records = {}
    sidecar = run_dir / "records.json"
    if sidecar.exists():  # values recorded before a crash
        try:
            records = {**json.loads(sidecar.read_text()), **records}
        except (ValueError, OSError):
            pass
    result = RunResult(notebook=nb.stem, run_dir=str(run_dir), status=status, parameters=parameters,
                       started=started, ended=_now(), wall_s=round(wall, 2), records=records, error=error,
                       device=_run_device(run_dir), versions=env.versions())
    (run_dir / "run.json").write_text(json.dumps(asdict(result), indent=1, default=str))
    if status == "interrupted":
        raise RunInterrupted(run_dir)
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


def sweep(notebook: str | os.PathLike | None = None, values: Mapping[str, Iterable[Any]] | None = None,
          fixed: Mapping[str, Any] | None = None, profile: str | None = None, progress: bool = False,
          timeout: int | None = None, log_output: bool = False, **kw) -> Path:
    """Run a notebook once per grid point; write ``comparison.csv`` and ``comparison.png``; return the folder.

    Every point's values are checked before anything runs. The table has a ``status`` and an ``error`` column
    (the failed cell and its exception). Ctrl-C stops the sweep: the table of the points that finished (and the
    interrupted one) is still written, then :class:`RunInterrupted` is raised. Parallel points (``jobs``,
    ``gpus``), Ray (``executor="ray"``), resuming (``resume``) and the aggregation over seeds are
    :func:`labkit.sweep.sweep`'s; the keyword arguments go there.
    """
    from labkit import sweep as _sweep

    return _sweep.sweep(notebook, values, fixed=fixed, profile=profile, progress=progress, timeout=timeout,
                        log_output=log_output, **kw)


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


def course(notebooks: list[str] | None = None, profile: str | None = None, stop_on_error: bool = False,
           progress: bool = True, timeout: int | None = None, log_output: bool = False) -> Path:
    """Run every course notebook in order into ``runs/course/<timestamp>/``; print and save the summary.

    A notebook named twice runs twice, into ``<stem>`` and ``<stem>-2``: no run folder is reused. Ctrl-C stops
    the course: the summary of the notebooks that finished (and the interrupted one) is still written, then
    :class:`RunInterrupted` is raised.
    """
    nbs = [resolve_notebook(n) for n in notebooks] if notebooks else list_notebooks()
    if not nbs:
        raise FileNotFoundError(f"no notebooks found in {notebooks_dir()}")
    for nb in nbs:  # check the profile for every notebook before running any
        resolve_parameters(nb, profile=profile)
    root = new_run_dir("course")
    rows, results = [], []
    interrupted = False
    for nb in nbs:
        print(f"[course] running {nb.name} ...", flush=True)
        try:
            res = run(nb, profile=profile, run_dir=_fresh_dir(root / nb.stem), progress=progress, timeout=timeout,
                      log_output=log_output)
        except RunInterrupted as e:
            res = RunResult(**json.loads((Path(e.where) / "run.json").read_text()))
            interrupted = True
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
        if interrupted or (stop_on_error and not res.ok):
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
    if interrupted:
        raise RunInterrupted(root)
    return root


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    s = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."
