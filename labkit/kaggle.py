"""Kaggle: a notebook bundle for ``kaggle kernels push``, and push / status / pull of it as a labkit run.

- :func:`bundle_kaggle` writes, into a fresh run folder (``runs/bundles/<notebook>/<timestamp>``), the notebook
  with its parameters injected (papermill), ``params.yaml`` and a ``kernel-metadata.json`` that passes
  :data:`KAGGLE_METADATA_SCHEMA`, including ``machine_shape`` (default ``NvidiaTeslaT4``: Kaggle's "GPU T4 x2").
  Everything is checked before anything is written; an existing bundle is never overwritten.
- :func:`push`, :func:`status`, :func:`pull` drive that folder through the official ``kaggle`` package
  (``pip install 'labkit[kaggle]'``; credentials from ``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME`` /
  ``KAGGLE_KEY``). :func:`pull` downloads the kernel's outputs into ``RUN/output/`` and collects the records as
  :func:`labkit.runner.run` does for a local run: ``records.json`` (the bundle makes the notebook write it into
  Kaggle's working folder) and the values recorded in any executed notebook, merged into ``RUN/records.json``,
  and a ``RUN/run.json`` of the same shape as a local run's.

The P100 is not offered: Kaggle retired it (its API substitutes a T4) and current PyTorch builds (CUDA 12.8) have no
kernels for its compute capability 6.0.

The Kaggle client reads ``KAGGLE_API_ENVIRONMENT`` (``LOCALHOST`` sends every call to ``http://localhost/api/v1``)
and, through ``requests``, ``HTTP_PROXY``: the tests use both to talk to a stand-in server on 127.0.0.1.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from labkit import runner
from labkit.runner import ParameterError

__all__ = ["KAGGLE_METADATA_SCHEMA", "MACHINE_SHAPES", "DEFAULT_MACHINE_SHAPE", "bundle_kaggle", "check_user",
           "check_dataset", "check_accelerator", "push", "status", "pull"]

# Kaggle's accelerators for `kaggle kernels push --accelerator` / "machine_shape" (Kaggle's CLI documentation,
# docs/kernels.md, "Accelerators available as of Feb 2026"), less the retired ones below. Some are only open to
# particular competitions; Kaggle decides at push time.
MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaT4Highmem", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaA100",
                  "NvidiaH100", "NvidiaRtxPro6000", "TpuV5E8", "TpuV6E8")
DEFAULT_MACHINE_SHAPE = "NvidiaTeslaT4"  # "GPU T4 x2" in Kaggle's notebook settings
RETIRED_MACHINE_SHAPES = {
    "NvidiaTeslaP100": "retired by Kaggle (sessions run on a T4 instead), and current PyTorch images have no "
                       "kernels for the P100 (sm_60)",
    "TpuV38": "retired by Kaggle (sessions run on TpuV5E8 instead)",
    "Tpu1VmV38": "retired by Kaggle (sessions run on TpuV5E8 instead)",
}
PLACEHOLDER_USER = "your-kaggle-username"

# Kaggle's naming rules, as its client and documentation state them: a kernel slug is the title lower-cased,
# non-alphanumerics turned into dashes, at least 5 characters (the client refuses shorter) and at most 50 (the
# title's limit); a user or dataset owner is one path segment of letters, digits, '-' or '_'; a dataset slug is
# lower-case letters, digits and dashes, at most 50 characters.
_USER = r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}"
_SLUG = r"[a-z0-9]+(?:-[a-z0-9]+)*"
KERNEL_ID = re.compile(rf"^{_USER}/(?=.{{5,50}}$){_SLUG}$")
DATASET = re.compile(rf"^{_USER}/(?=.{{1,50}}(?:/\d+)?$){_SLUG}(?:/\d+)?$")

KAGGLE_METADATA_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Kaggle kernel-metadata.json (fields documented for `kaggle kernels push`)",
    "type": "object",
    "required": ["id", "title", "code_file", "language", "kernel_type"],
    "properties": {
        "id": {"type": "string", "pattern": KERNEL_ID.pattern},
        "title": {"type": "string", "minLength": 5, "maxLength": 50},
        "code_file": {"type": "string", "pattern": r"\.ipynb$"},
        "language": {"enum": ["python", "r", "rmarkdown"]},
        "kernel_type": {"enum": ["script", "notebook"]},
        "is_private": {"type": "boolean"},
        "enable_gpu": {"type": "boolean"},
        "enable_tpu": {"type": "boolean"},
        "enable_internet": {"type": "boolean"},
        "machine_shape": {"enum": list(MACHINE_SHAPES)},
        "dataset_sources": {"type": "array", "items": {"type": "string", "pattern": DATASET.pattern}},
        "competition_sources": {"type": "array", "items": {"type": "string"}},
        "kernel_sources": {"type": "array", "items": {"type": "string"}},
        "model_sources": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}

METADATA = "kernel-metadata.json"
PUSH_RECORD = "kaggle.json"


def _slug(text: str) -> str:
    """Kaggle's kernel slug for a title: lower case, runs of other characters as one dash, 5-50 characters."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:50].strip("-").ljust(5, "x")


def check_user(user: str) -> str:
    """``user`` if it is a valid Kaggle user name, else a :class:`ParameterError` naming the fix."""
    if not isinstance(user, str) or not re.fullmatch(_USER, user):
        raise ParameterError(f"--user {user!r}: not a Kaggle user name (letters, digits, '-' or '_', as in "
                             f"kaggle.com/USER); give yours")
    return user


def check_dataset(dataset: str) -> str:
    """``dataset`` if it is ``OWNER/SLUG`` (or ``OWNER/SLUG/VERSION``) by Kaggle's rules."""
    if not isinstance(dataset, str) or not DATASET.match(dataset):
        raise ParameterError(f"--dataset {dataset!r}: expected OWNER/SLUG as in kaggle.com/datasets/OWNER/SLUG "
                             f"(slug: lower-case letters, digits and dashes, at most 50)")
    return dataset


def check_accelerator(shape: str) -> str:
    """``shape`` if Kaggle offers it; a retired one (the P100) is refused with the reason."""
    if shape in RETIRED_MACHINE_SHAPES:
        raise ParameterError(f"--accelerator {shape}: {RETIRED_MACHINE_SHAPES[shape]}; use "
                             f"{DEFAULT_MACHINE_SHAPE} (GPU T4 x2)")
    if shape not in MACHINE_SHAPES:
        raise ParameterError(f"--accelerator {shape!r}: not a Kaggle machine shape; choose one of "
                             f"{', '.join(MACHINE_SHAPES)}")
    return shape


def _default_user() -> str:
    return os.environ.get("KAGGLE_USERNAME") or PLACEHOLDER_USER


# Appended to the injected-parameters cell: on Kaggle the notebook runs in its working folder, whose files are the
# kernel's outputs; labkit.record() then keeps records.json there, as it does in a local run folder.
_RUN_DIR_LINE = ('import os  # labkit: on Kaggle, records.json goes to the outputs\n'
                 'if "KAGGLE_KERNEL_RUN_TYPE" in os.environ: os.environ.setdefault("LABKIT_RUN_DIR", os.getcwd())')


def bundle_kaggle(notebook: str | os.PathLike, params: Mapping[str, Any] | None = None, datasets: Iterable[str] = (),
                  user: str | None = None, out: Path | None = None, profile: str | None = None,
                  param_file: str | None = None, gpu: bool = True, internet: bool = True, private: bool = True,
                  accelerator: str | None = None) -> Path:
    """Write a parameterized notebook, ``params.yaml`` and ``kernel-metadata.json`` for ``kaggle kernels push``.

    ``user`` defaults to ``$KAGGLE_USERNAME`` (else a placeholder that :func:`push` refuses). ``accelerator`` is a
    Kaggle machine shape (default :data:`DEFAULT_MACHINE_SHAPE`); ``gpu=False`` asks for none (CPU). ``out``
    must not exist yet or be empty; default: a new ``runs/bundles/<notebook>/<timestamp>``. Every input is
    checked before anything is written.
    """
    import nbformat
    from papermill.parameterize import parameterize_notebook

    user = check_user(_default_user() if user is None else user)
    datasets = [check_dataset(d) for d in datasets]
    if not gpu and accelerator:
        raise ParameterError(f"--accelerator {accelerator} with --no-gpu: give one of them")
    shape = check_accelerator(accelerator or DEFAULT_MACHINE_SHAPE) if gpu else None
    if param_file is not None and not Path(param_file).is_file():
        raise ParameterError(f"-f {param_file}: no such parameter file")
    nb_path = runner.resolve_notebook(notebook)
    parameters = runner.resolve_parameters(nb_path, params, param_file, profile)
    if out is not None:
        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            what = "a bundle" if (out / METADATA).exists() else "files"
            raise ParameterError(f"--out {out}: already holds {what}; give a new folder (bundles are never "
                                 f"overwritten)")
    title = f"labkit {nb_path.stem.replace('_', ' ')}"[:50]
    meta = {
        "id": f"{user}/{_slug(title)}",
        "title": title,
        "code_file": nb_path.name,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": private,
        "enable_gpu": bool(shape and shape.startswith("Nvidia")),
        "enable_tpu": bool(shape and shape.startswith("Tpu")),
        "enable_internet": internet,
        "dataset_sources": datasets,
        "competition_sources": [],
        "kernel_sources": [],
        "model_sources": [],
    }
    if shape:
        meta["machine_shape"] = shape

    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:  # papermill expects every cell to carry a tags list, and its own metadata
        cell.metadata.setdefault("tags", [])
    nb.metadata["papermill"] = {"parameters": {}}
    nb = parameterize_notebook(nb, parameters, report_mode=False)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.rstrip("\n") + "\n" + _RUN_DIR_LINE + "\n"
        if not cell.metadata.get("tags"):
            cell.metadata.pop("tags", None)

    out = out or runner.new_run_dir(f"bundles/{nb_path.stem}")
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out / nb_path.name))
    (out / "params.yaml").write_text(yaml.safe_dump({"notebook": nb_path.name, "profile": profile,
                                                     "parameters": parameters}, sort_keys=False))
    (out / METADATA).write_text(json.dumps(meta, indent=2))
    return out


# ----------------------------------------------------------------------------------------------
# push / status / pull through the official client
# ----------------------------------------------------------------------------------------------
def _bundle(run: str | os.PathLike) -> tuple[Path, dict]:
    folder = Path(run)
    meta_path = folder / METADATA
    if not meta_path.is_file():
        raise ParameterError(f"{folder}: no {METADATA} there; make a bundle with `labkit bundle kaggle NOTEBOOK`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ParameterError(f"{meta_path}: not valid JSON ({e.msg}, line {e.lineno}); rebuild the bundle") from None
    return folder, meta


def _api():
    """An authenticated ``kaggle.api.KaggleApi``; a missing package or missing credentials is one clear error."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # `import kaggle` authenticates and may print help
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise ParameterError("the Kaggle client is not installed: pip install 'labkit[kaggle]'") from None
    api = KaggleApi()
    # The client decides "--local" (KAGGLE_API_ENVIRONMENT=LOCALHOST) once, when `kaggle` is first imported; decide
    # it again now, so that the environment of this call counts, as it does for the client's other settings.
    local = os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST"
    api.args = [a for a in getattr(api, "args", []) if a != "--local"] + (["--local"] if local else [])
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except SystemExit:
        raise ParameterError("no Kaggle credentials: put kaggle.json (kaggle.com > Settings > API > Create New "
                             "Token) in ~/.kaggle/, or set KAGGLE_USERNAME and KAGGLE_KEY") from None
    return api


@contextlib.contextmanager
def _kaggle_errors(what: str):
    """Turn the client's network/HTTP/validation errors into one-line ParameterErrors."""
    import requests

    try:
        yield
    except requests.HTTPError as e:
        code = e.response.status_code if e.response is not None else "?"
        raise ParameterError(f"kaggle {what}: Kaggle answered HTTP {code} ({e}); check the kernel id and your "
                             f"credentials") from None
    except requests.RequestException as e:
        raise ParameterError(f"kaggle {what}: Kaggle API not reachable ({type(e).__name__}); check the network") \
            from None
    except ValueError as e:  # the client's own checks (metadata, kernel string)
        if isinstance(e, ParameterError):
            raise
        raise ParameterError(f"kaggle {what}: {e}") from None


def _record(folder: Path, **fields) -> dict:
    path = folder / PUSH_RECORD
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(fields)
    path.write_text(json.dumps(data, indent=1, default=str))
    return data


def push(run: str | os.PathLike, api=None) -> dict:
    """Push a bundle folder (``kaggle kernels push``); returns and stores ``RUN/kaggle.json`` (ref, url, version)."""
    folder, meta = _bundle(run)
    if meta.get("id", "").split("/")[0] == PLACEHOLDER_USER:
        raise ParameterError(f"{folder / METADATA}: the kernel id has the placeholder user; rebuild the bundle "
                             f"with --user YOUR_KAGGLE_NAME (or KAGGLE_USERNAME set)")
    api = api or _api()
    with _kaggle_errors("push"):
        resp = api.kernels_push(str(folder))
    if getattr(resp, "error", None):
        raise ParameterError(f"kaggle push: Kaggle refused the bundle: {resp.error}")
    return _record(folder, id=meta["id"], ref=resp.ref, url=resp.url, version=resp.version_number,
                   machine_shape=meta.get("machine_shape"), pushed=runner._now())


def status(run: str | os.PathLike, api=None) -> dict:
    """Ask Kaggle for the kernel's status; returns ``{"status": "queued|running|complete|error|...",
    "failure": message or None}`` and stores it in ``RUN/kaggle.json``."""
    folder, meta = _bundle(run)
    api = api or _api()
    with _kaggle_errors("status"):
        resp = api.kernels_status(meta["id"])
    st = getattr(resp.status, "name", str(resp.status)).lower()
    return _record(folder, status=st, failure=resp.failure_message or None, checked=runner._now())


def pull(run: str | os.PathLike, api=None, wait: float = 0, poll_s: float = 30) -> runner.RunResult:
    """Download the kernel's outputs into ``RUN/output/`` and collect its records as for a local run.

    ``wait`` > 0 polls the status (every ``poll_s`` s, up to ``wait`` s) until the kernel is done. Writes
    ``RUN/records.json`` and ``RUN/run.json``; returns the :class:`labkit.runner.RunResult`.
    """
    from labkit.record import collect

    folder, meta = _bundle(run)
    api = api or _api()
    st = status(folder, api)
    deadline = time.monotonic() + wait
    while st["status"] in ("queued", "running", "new_script") and time.monotonic() < deadline:
        time.sleep(poll_s)
        st = status(folder, api)
    if st["status"] in ("queued", "running", "new_script"):
        raise ParameterError(f"kaggle pull: {meta['id']} is still {st['status']}; pull again later (or --wait S)")
    outdir = folder / "output"
    with _kaggle_errors("pull"):
        files, _ = api.kernels_output(meta["id"], str(outdir), force=True, quiet=True)
    records: dict[str, Any] = {}
    sidecar = outdir / "records.json"
    if sidecar.is_file():
        records.update(json.loads(sidecar.read_text()))
    for nb in sorted(outdir.rglob("*.ipynb")):
        records.update(collect(nb))
    (folder / "records.json").write_text(json.dumps(records, indent=1))
    params = yaml.safe_load((folder / "params.yaml").read_text()) if (folder / "params.yaml").exists() else {}
    pushed = _record(folder).get("pushed") or runner._now()
    result = runner.RunResult(
        notebook=Path(meta.get("code_file", "")).stem, run_dir=str(folder),
        status="ok" if st["status"] == "complete" else "failed", parameters=(params or {}).get("parameters", {}),
        started=pushed, ended=runner._now(), wall_s=0.0, records=records,
        error=None if st["status"] == "complete" else (st.get("failure") or f"Kaggle status {st['status']}"),
        device=f"kaggle:{meta.get('machine_shape') or 'cpu'}", versions={})
    (folder / "run.json").write_text(json.dumps(asdict(result), indent=1, default=str))
    _record(folder, pulled=result.ended, files=[str(Path(f).relative_to(folder)) for f in files])
    return result


