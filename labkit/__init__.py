"""labkit: the helper package behind the course notebooks.

Import is light (no torch/tensorflow): topic modules are imported where they are used, e.g.
``from labkit import metrics`` or ``import labkit.yolov8``.

Public entry points:

- :func:`labkit.record` — record a key value for run summaries;
- :func:`labkit.verdict` — print and record a lesson's computed verdict line;
- :mod:`labkit.env` — ``setup()``, ``doctor()``, device, seeds, paths, offline handling;
- :mod:`labkit.data.synthetic` — the embedded default detection data;
- :mod:`labkit.runner` — ``run``/``sweep``/``course`` (also the ``labkit`` command).
"""
from importlib.metadata import PackageNotFoundError, version as _version

from labkit import env
from labkit.record import record, verdict

try:
    __version__ = _version("labkit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"


def __getattr__(name):
    """Import topic submodules on first use, so ``labkit.widgets`` works without an explicit import."""
    import importlib

    try:
        return importlib.import_module(f"labkit.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"labkit.{name}":
            raise AttributeError(f"module 'labkit' has no attribute {name!r}") from None
        raise


def doctor():
    """Print versions, device, offline status and cache folders (see :func:`labkit.env.doctor`)."""
    return env.doctor()


__all__ = ["env", "record", "verdict", "doctor", "__version__"]
