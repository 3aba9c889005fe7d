"""Environment: platform, device, seeds, paths, offline handling and ``doctor``.

Every notebook calls :func:`setup` right after its parameters cell::

    DEV = labkit.env.setup(seed=SEED, device=DEVICE)

Offline is the normal case here. :func:`is_online` answers within ~2 s (and is cached);
:func:`configure_offline` makes Ultralytics stop reaching out (fonts come from matplotlib's DejaVu,
analytics are off, pretrained weights are optional); :func:`yolo_model` builds the same architecture
from its yaml, with a one-line notice, when pretrained weights are not available.
"""
from __future__ import annotations

import importlib
import importlib.util
import importlib.metadata as _md
import os
import platform as _platform
import random
import shutil
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "platform", "is_online", "select_device", "seed_everything", "setup", "paths", "Paths",
    "configure_offline", "yolo_model", "versions", "doctor", "gpu_hint", "import_keras",
]

_ONLINE_CACHE: bool | None = None
# the host the course downloads weights from; it answering means "online"
_PROBE_HOST = ("github.com", 443)


# ----------------------------------------------------------------------------------------------
# Keras
# ----------------------------------------------------------------------------------------------
def import_keras():
    """Import Keras 3 on the TensorFlow backend, quietly, and return the module.

    Sets ``KERAS_BACKEND=tensorflow`` and ``TF_CPP_MIN_LOG_LEVEL=2`` unless already set. If Triton
    (installed with PyTorch) is present and TensorFlow is not loaded yet, Triton is imported first:
    loading ``libtriton`` *after* TensorFlow segfaults (LLVM symbol clash), and PyTorch loads it
    lazily, e.g. on the first ``torch.optim`` step — so a process that uses Keras and then PyTorch
    would crash without this.
    """
    import os
    import sys

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules:
        try:
            import triton  # noqa: F401
        except Exception:  # not installed or broken: nothing to protect
            pass
    import keras

    return keras


# ----------------------------------------------------------------------------------------------
# Platform
# ----------------------------------------------------------------------------------------------
def platform() -> str:
    """Return ``"colab"``, ``"kaggle"`` or ``"local"``, detected from the running environment."""
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or "KAGGLE_URL_BASE" in os.environ:
        return "kaggle"
    return "local"


def gpu_hint(where: str | None = None) -> str:
    """How to turn a GPU on, for the given platform."""
    where = where or platform()
    if where == "colab":
        return "Colab: Runtime > Change runtime type > Hardware accelerator: T4 GPU, then re-run."
    if where == "kaggle":
        return ("Kaggle: Settings (right panel) > Accelerator > GPU T4 x2 (not the P100: current PyTorch images have "
                "no kernels for it); phone verification is required.")
    return "Local: install a CUDA build of PyTorch/TensorFlow and check `nvidia-smi`; the defaults run on CPU."


# ----------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------
def _probe(host: str, port: int, timeout: float) -> bool:
    result = [False]

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[0] = True
        except Exception:  # any failure (refused, timed out, odd resolver) means "offline"
            pass

    # getaddrinfo takes no timeout: run the whole attempt in a thread and stop waiting after `timeout`.
    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    return result[0]


def is_online(timeout: float = 2.0, refresh: bool = False) -> bool:
    """True if the internet (beyond package registries) answers within ``timeout`` seconds.

    ``LABKIT_OFFLINE=1`` forces offline. The answer is cached for the process; ``refresh=True`` asks again.
    """
    global _ONLINE_CACHE
    if os.environ.get("LABKIT_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    if _ONLINE_CACHE is None or refresh:
        _ONLINE_CACHE = _probe(*_PROBE_HOST, timeout)
    return _ONLINE_CACHE


# ----------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paths:
    """Folders labkit uses. ``home`` is ``$LABKIT_HOME`` or the project root (or the working folder)."""

    home: Path
    data: Path
    runs: Path
    weights: Path


def _project_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / "pyproject.toml").is_file() and (d / "labkit").is_dir():
            return d
    return None


# Google Drive on Colab. Colab's documentation mounts it with ``google.colab.drive.mount`` at the folder ``drive``
# inside Colab's working folder ``content`` at the file-system root; the user's files are then under ``MyDrive``.
# That mount point is built from its parts here, once, so that no machine-specific path literal sits in labkit's
# code, and tests can point it at a temporary folder.
COLAB_DRIVE_MOUNT = Path("/", "content", "drive")


def colab_drive_home(mount: Path | None = None) -> Path | None:
    """``<mount>/MyDrive/labkit`` when Google Drive is mounted (``MyDrive`` exists there), else None."""
    my_drive = Path(mount or COLAB_DRIVE_MOUNT) / "MyDrive"
    return my_drive / "labkit" if my_drive.is_dir() else None


def paths(create: bool = True) -> Paths:
    """Data, runs and weights folders under ``LABKIT_HOME`` (default: the labkit checkout, else the cwd).

    On Colab with Google Drive mounted the default home is ``MyDrive/labkit`` on Drive (:func:`colab_drive_home`),
    so a disconnected runtime loses no run; otherwise, on Colab/Kaggle, the working folder (``/content``,
    ``/kaggle/working``) is the default home. ``LABKIT_HOME``
    is only where labkit writes; the course notebooks are looked up separately (``$LABKIT_NOTEBOOKS``, see
    :func:`labkit.runner.notebooks_dir`). With ``create=True`` a home that cannot be written raises a
    :class:`labkit.errors.UserError` naming it.
    """
    home_env = os.environ.get("LABKIT_HOME")
    if home_env:
        home = Path(home_env).expanduser()
    elif platform() == "colab" and colab_drive_home() is not None:
        home = colab_drive_home()
    else:
        home = _project_root(Path.cwd().resolve()) or Path.cwd()
    home = home.resolve()
    p = Paths(home=home, data=home / "data", runs=home / "runs", weights=home / "weights")
    if create:
        for d in (p.data, p.runs):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                from labkit.errors import UserError

                raise UserError(f"LABKIT_HOME {home}: cannot create {d.name}/ ({e.strerror or e}); set LABKIT_HOME "
                                "to a writable folder") from None
    return p


# ----------------------------------------------------------------------------------------------
# Device and seeds
# ----------------------------------------------------------------------------------------------
def select_device(preference: str | None = "auto", verbose: bool = True) -> str:
    """Pick a torch device string: ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``.

    ``preference`` is ``"auto"`` (best available), ``"cpu"``, ``"cuda"``/``"cuda:N"``/``"0"``, ``"mps"``, or a
    list of GPUs such as ``"0,1"``: training then runs on all of them through DDP in a subprocess
    (:mod:`labkit.ddp_launch`), and what runs in this process (validation, prediction) uses the first one, which is
    what this returns. ``$DEVICE`` overrides ``"auto"``. Asking for a GPU that is absent prints a clear message and
    falls back to CPU.
    """
    pref = (preference or "auto").strip().lower()
    if pref == "auto" and os.environ.get("DEVICE"):
        pref = os.environ["DEVICE"].strip().lower()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "cpu"
    has_cuda = torch.cuda.is_available()
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if pref == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if pref == "cpu":
        return "cpu"
    gpus = [g.strip() for g in pref.split(",")]
    if len(gpus) > 1 and all(g.isdigit() for g in gpus):
        if verbose and has_cuda:
            print(f"labkit: DEVICE={preference!r}: several GPUs are for training through DDP in a subprocess; "
                  f"this process uses cuda:{gpus[0]}.")
        pref = gpus[0]
    if pref.isdigit():
        pref = f"cuda:{pref}"
    if pref.startswith("cuda"):
        if has_cuda:
            idx = int(pref.split(":")[1]) if ":" in pref else 0
            if idx < torch.cuda.device_count():
                return pref
            if verbose:
                print(f"labkit: {pref} asked for, but only {torch.cuda.device_count()} CUDA device(s); using cuda:0.")
            return "cuda:0"
        if verbose:
            print(f"labkit: DEVICE={preference!r} asked for a GPU, but none is available; running on CPU. {gpu_hint()}")
        return "cpu"
    if pref == "mps":
        if has_mps:
            return "mps"
        if verbose:
            print("labkit: DEVICE='mps' asked for, but Apple MPS is not available; running on CPU.")
        return "cpu"
    raise ValueError(f"unknown DEVICE {preference!r}: use 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or GPU ids like '0,1'")


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python, NumPy, torch and TensorFlow/Keras (the frameworks that are installed).

    TensorFlow is only seeded if it is already imported (importing it costs seconds and memory);
    notebooks that use TensorFlow import it before calling :func:`setup`.
    """
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
        if "keras" in sys.modules:
            import keras

            keras.utils.set_random_seed(seed)
    return seed


# ----------------------------------------------------------------------------------------------
# Offline handling for Ultralytics
# ----------------------------------------------------------------------------------------------
_CONFIGURED = False


def _ultralytics_config_dir() -> Path:
    from ultralytics.utils import USER_CONFIG_DIR

    return Path(USER_CONFIG_DIR)


def _ensure_fonts() -> list[Path]:
    """Put a local font where Ultralytics looks for Arial, so plotting never downloads one.

    Ultralytics' ``check_font`` first looks in its config folder; we copy matplotlib's DejaVu Sans
    (free licence, covers Vietnamese) there under the names it asks for.
    """
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    out = []
    cfg = _ultralytics_config_dir()
    cfg.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        dst = cfg / name
        if not dst.exists() and src.exists():
            shutil.copyfile(src, dst)
        out.append(dst)
    return out


def configure_offline(force: bool | None = None) -> bool:
    """Make Ultralytics (and hub libraries) work without internet; returns True when offline.

    - fonts: local DejaVu copies for Ultralytics' Arial (always, online too: it saves a download);
    - analytics/sync off;
    - offline: ``YOLO_OFFLINE=1`` and ``HF_HUB_OFFLINE=1`` so libraries skip downloads at once.
    """
    global _CONFIGURED
    offline = (not is_online()) if force is None else bool(force)
    if offline:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if importlib.util.find_spec("ultralytics") is not None:
        from labkit import weights

        weights.protect()  # every checkpoint load restricted unless opted in (labkit.weights)
    if importlib.util.find_spec("ultralytics") is not None and not _CONFIGURED:
        import ultralytics.utils as uu

        _ensure_fonts()
        wanted = {"sync": False, "clearml": False, "comet": False, "dvc": False, "mlflow": False,
                  "raytune": False, "wandb": False}
        # in memory only: this process's trainers read SETTINGS per run, and the user's global settings file
        # (SETTINGS.update would rewrite it) stays as it was
        dict.update(uu.SETTINGS, wanted)
        if offline:
            uu.ONLINE = False
        _CONFIGURED = True
    return offline


def _find_local_weights(name: str) -> Path | None:
    cands = [Path(name), paths(create=False).weights / Path(name).name]
    try:
        from ultralytics.utils import SETTINGS

        cands.append(Path(SETTINGS["weights_dir"]) / Path(name).name)
    except Exception:
        pass
    return next((c for c in cands if c.is_file()), None)


def yolo_model(name: str = "yolov8n.pt", verbose: bool = True, trust_weights: bool = False):
    """An Ultralytics ``YOLO`` model: pretrained when the weights are available, else built from yaml.

    ``name`` is a ``.pt`` file/name or a ``.yaml`` architecture. Weights are looked up as a path, in
    ``<LABKIT_HOME>/weights`` and in Ultralytics' weights folder; when absent and offline (or the download
    fails) a one-line notice is printed and the same architecture is built from its yaml (random init).

    Weights load safely (:mod:`labkit.weights`): a file that would unpickle anything but known model types raises
    :class:`labkit.weights.UntrustedWeightsError` naming it; ``trust_weights=True`` (or
    ``LABKIT_TRUST_WEIGHTS=1``) is the explicit opt-in for a trusted legacy file.
    """
    configure_offline()
    from ultralytics import YOLO

    from labkit import weights

    if not name.endswith(".pt"):
        return YOLO(name)
    local = _find_local_weights(name)
    if local is not None:
        with weights.trusted(trust_weights):
            return YOLO(str(local))
    yaml_name = Path(name).with_suffix(".yaml").name
    if is_online():
        try:
            with weights.trusted(trust_weights):
                return YOLO(name)
        except weights.UntrustedWeightsError:
            raise
        except Exception as e:  # download refused or failed
            reason = f"download failed ({type(e).__name__})"
    else:
        reason = "offline"
    if verbose:
        print(f"labkit: pretrained {Path(name).name} not available ({reason}); building {yaml_name} from scratch (random init).")
    return YOLO(yaml_name)


# ----------------------------------------------------------------------------------------------
# Versions, setup, doctor
# ----------------------------------------------------------------------------------------------
_PACKAGES = ("labkit", "numpy", "torch", "torchvision", "ultralytics", "tensorflow", "keras", "matplotlib",
             "ipywidgets", "papermill", "nbval", "pycocotools")


def versions(packages=_PACKAGES) -> dict[str, str]:
    """Installed versions of the course's packages (read from metadata; nothing is imported)."""
    out = {"python": _platform.python_version()}
    for p in packages:
        try:
            out[p] = _md.version(p)
        except _md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def device_info() -> dict[str, str]:
    """Device facts: the torch device picked by ``auto`` and the GPU names, if any."""
    info = {"cpu_count": str(os.cpu_count())}
    try:
        import torch

        info["torch_device"] = select_device("auto", verbose=False)
        if torch.cuda.is_available():
            info["gpus"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        else:
            info["gpus"] = "none"
    except ImportError:  # pragma: no cover
        info["torch_device"] = "cpu"
    return info


def banner() -> str:
    """One line: Python and key package versions, platform and device (the setup cell prints it)."""
    v = versions(("labkit", "torch", "ultralytics", "tensorflow"))
    d = device_info()
    gpu = d.get("gpus", "none")
    parts = [f"Python {v['python']}"] + [f"{k} {v[k]}" for k in ("labkit", "torch", "ultralytics", "tensorflow")]
    parts.append(f"platform {platform()}")
    parts.append(f"device {d['torch_device']}" + (f" ({gpu})" if gpu != "none" else " (no GPU)"))
    line = " | ".join(parts)
    if gpu == "none" and platform() != "local":
        line += "\nhint: " + gpu_hint()
    try:  # versions outside labkit's ranges, flagged as Ultralytics' checks() does
        from labkit.platform_setup import out_of_range

        for name, have, spec in out_of_range():
            line += f"\nWARNING ⚠️ {name}{spec} is required by labkit, but {name}=={have} is currently installed"
    except (ImportError, _md.PackageNotFoundError):  # no `packaging`, or labkit run from a checkout, not installed
        pass
    return line


#: In a labkit run's folder: the device :func:`setup` chose, for the run's ``run.json``.
DEVICE_FILE = "device.txt"


def setup(seed: int = 0, device: str | None = "auto", quiet: bool = False) -> str:
    """Seed everything, configure offline handling, choose the device; returns the torch device string.

    In a labkit run (``LABKIT_RUN_DIR`` set by :func:`labkit.runner.run`), the device is also written to the run
    folder's :data:`DEVICE_FILE`, so the run's summary says which device the notebook really used."""
    configure_offline()
    dev = select_device(device, verbose=True)
    seed_everything(seed)
    run_dir = os.environ.get("LABKIT_RUN_DIR")
    if run_dir:  # a labkit run: its run.json names the device the notebook used (labkit.runner reads this file)
        try:
            (Path(run_dir) / DEVICE_FILE).write_text(dev)
        except OSError:
            pass
    if not quiet:
        where = platform()
        msg = f"labkit {versions(('labkit',))['labkit']} | platform={where} | device={dev} | seed={seed}"
        msg += " | online" if is_online() else " | offline"
        print(msg)
        if dev == "cpu" and where in ("colab", "kaggle"):
            print("hint:", gpu_hint(where))
    return dev


def doctor(file=None) -> dict:
    """Print (and return) versions, device, offline status and cache folders (also when LABKIT_HOME is read-only)."""
    p = paths(create=False)
    info: dict[str, object] = {"platform": platform()}
    info.update(versions())
    info.update(device_info())
    info["online"] = is_online()
    nearest = next((d for d in (p.home, *p.home.parents) if d.exists()), p.home)
    writable = nearest.is_dir() and os.access(nearest, os.W_OK)
    info["LABKIT_HOME"] = str(p.home) + ("" if writable else "  (not writable: set LABKIT_HOME to a writable folder)")
    from labkit.runner import notebooks_dir

    info["notebooks"] = str(notebooks_dir())
    info["data"] = str(p.data)
    info["runs"] = str(p.runs)
    info["weights"] = str(p.weights)
    if importlib.util.find_spec("ultralytics") is not None:
        configure_offline()
        info["ultralytics_config"] = str(_ultralytics_config_dir())
        fonts = [f for f in _ensure_fonts() if f.exists()]
        info["plot_fonts"] = "local (" + ", ".join(f.name for f in fonts) + ")" if fonts else "missing"
    width = max(len(k) for k in info)
    for k, v in info.items():
        print(f"{k:<{width}}  {v}", file=file)
    if info.get("torch_device") == "cpu":
        print(f"{'hint':<{width}}  {gpu_hint()}", file=file)
    return info


def ultralytics_device(device: str) -> str:
    """Translate a torch device string (``cuda:1``) into Ultralytics' form (``1``; ``cpu``, ``mps`` unchanged)."""
    if device.startswith("cuda"):
        return device.split(":")[1] if ":" in device else "0"
    return device
