"""Loading model weights safely: a ``.pt`` file is a pickle, and unpickling a pickle can run any code.

Ultralytics 8.4 loads checkpoints with ``torch.load(weights_only=False)`` unless ``ULTRALYTICS_SAFE_LOAD`` is
set, so a ``weights/yolov8n.pt`` downloaded from anywhere could run a shell command the moment
``YOLO("yolov8n.pt")`` opened it. labkit turns Ultralytics' restricted loading on for every checkpoint it
loads (:func:`install` wraps ``ultralytics.nn.tasks.torch_safe_load``, which ``YOLO(...)``, training, validation
and prediction all go through): ``torch.load(weights_only=True)`` plus Ultralytics' allow-list of its own and
torch's model classes. Official Ultralytics weights and every checkpoint Ultralytics or labkit writes load as
before; a file that references anything else is refused with :class:`UntrustedWeightsError`, which names the
file and the opt-in. :func:`protect` (run by every notebook's ``labkit.env.setup``) also sets
``ULTRALYTICS_SAFE_LOAD=1`` for the process, so a direct ``YOLO("x.pt")`` call is restricted too.

Opting in, for a file you trust (you made it, or its source is trustworthy) that is refused only because it is an
old or custom format:

* ``LABKIT_TRUST_WEIGHTS=1`` in the environment (the whole process), or
* ``trust_weights=True`` on :func:`labkit.env.yolo_model`, :func:`labkit.finetune.train`,
  :func:`labkit.finetune.predict_quads`, :func:`labkit.active.scoring.predict_pool`, or
* ``with labkit.weights.trusted(): ...`` around any other code.

A trusted load is Ultralytics' plain, unrestricted load: the file can run code. Never opt in for a file you
would not run as a program.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import sys
import threading
from pathlib import Path

__all__ = ["TRUST_ENV", "UntrustedWeightsError", "install", "protect", "trusted", "is_trusted", "OPT_IN"]

#: environment variable that opts in to unrestricted (code-running) loading for the whole process
TRUST_ENV = "LABKIT_TRUST_WEIGHTS"
#: how to opt in, as error messages say it
OPT_IN = (f"if you trust this file, opt in with {TRUST_ENV}=1 (environment), trust_weights=True, "
          "or `with labkit.weights.trusted():`")

_lock = threading.Lock()
_trust_depth = 0
_original = None  # Ultralytics' own torch_safe_load, once install() has wrapped it


class UntrustedWeightsError(ValueError):
    """A weights file was refused: loading it would unpickle objects outside the known model types."""

    def __init__(self, file, reason: str):
        self.file = str(file)
        super().__init__(f"{file}: refused to load these weights: {reason}; unpickling it could run code. {OPT_IN}")


def is_trusted() -> bool:
    """True inside :func:`trusted` or when ``LABKIT_TRUST_WEIGHTS`` is 1/true/yes."""
    return _trust_depth > 0 or os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def trusted(on: bool = True):
    """Inside this block, weights load without restriction (the explicit opt-in). ``on=False`` is a no-op, so
    functions can write ``with trusted(trust_weights):``."""
    global _trust_depth
    install()
    if not on:
        yield
        return
    with _lock:
        _trust_depth += 1
    try:
        yield
    finally:
        with _lock:
            _trust_depth -= 1


def _name(weight) -> str:
    p = Path(str(weight))
    return str(p.resolve()) if p.exists() else str(weight)


def _guarded_load(weight, safe_only=None):
    """``torch_safe_load`` with restricted loading forced on, unless the caller opted in (see module doc)."""
    from ultralytics.nn import tasks

    if is_trusted():
        return _original(weight, safe_only=False)
    if not tasks._SafeLoad.SUPPORTED:  # older torch: Ultralytics would silently fall back to a full unpickle
        import torch

        raise UntrustedWeightsError(_name(weight), f"torch {torch.__version__} cannot restrict unpickling "
                                    "(torch >= 2.6 can)")
    try:
        return _original(weight, safe_only=True)
    except TypeError as e:
        cause = e.__cause__
        if isinstance(cause, pickle.UnpicklingError) or "outside the supported" in str(e):
            detail = str(cause or e).splitlines()[0].strip()
            raise UntrustedWeightsError(_name(weight), "it references Python objects outside the known PyTorch/"
                                        f"Ultralytics model types ({detail[:160]})") from None
        raise


def install() -> None:
    """Make every Ultralytics checkpoint load in this process restricted unless opted in (idempotent).

    Also sets ``ULTRALYTICS_SAFE_LOAD=1`` (unless already set) so that processes Ultralytics starts (multi-GPU
    DDP training) load with its restricted loader too.
    """
    global _original
    if _original is not None:
        return
    with _lock:
        if _original is not None:
            return
        from ultralytics.nn import tasks

        _original = tasks.torch_safe_load
        tasks.torch_safe_load = _guarded_load
        if not is_trusted():
            os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")


def protect() -> None:
    """Cheap process-wide protection, called by :func:`labkit.env.configure_offline` (every notebook's setup).

    Sets ``ULTRALYTICS_SAFE_LOAD=1`` (unless opted in), so an Ultralytics imported afterwards loads restricted by
    default even for a direct ``YOLO("x.pt")`` call; wraps the loader at once (:func:`install`) if Ultralytics'
    model code is already imported. labkit's own load sites call :func:`install` themselves, so importing
    Ultralytics' model code is not paid for by notebooks that never load a checkpoint.
    """
    if not is_trusted():
        os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    if "ultralytics.nn.tasks" in sys.modules:
        install()
