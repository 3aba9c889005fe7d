"""The active-learning pool: a JSON manifest is the single source of truth.

The source notebook moved the user's images between folders with ``shutil.move``: a crash in the middle
of a round left a split nobody could reconstruct. Here nothing is moved. One manifest file records, for
every round, which pool images are labelled and which are not, plus the fixed validation list; the
training set of a round is a *list file* of image paths built from the manifest (Ultralytics finds each
label by its images -> labels path rule). The manifest is written atomically (temporary file +
``os.replace``), so a crash leaves either the old or the new version, never half of one.

Layout of the manifest (``version`` 1)::

    {"version": 1, "seed": 0, "names": ["circle", ...],
     "pool": [abs image paths], "val": [abs image paths],
     "rounds": [{"round": 0, "labelled": [...], "unlabelled": [...], "n_boxes": 17,
                 "metrics": {"map50": .., "map50_95": ..} | null, "weights": path | null,
                 "selected": [...] | null, "scores": {path: score} | null}, ...]}
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from labkit.data.formats import IMG_SUFFIXES  # noqa: F401 - the one list of image suffixes (loop.py reads it here)

__all__ = ["ManifestError", "PoolManifest", "SimulatedAnnotator", "atomic_write_text", "label_path", "count_boxes",
           "checksums",
           "write_dataset_yaml", "caches_in"]

VERSION = 1


class ManifestError(ValueError):
    """A manifest (or the request made of it) is inconsistent; the message names the file and the problem."""


def _umask() -> int:
    """The process umask (read without changing it where Linux allows; else the set-and-restore idiom)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, then ``os.replace``.

    The file gets the permissions a plain ``open(path, "w")`` would give: an existing file keeps its mode, a new
    one gets ``0o666`` minus the umask (``mkstemp`` alone would leave 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:  # Windows: only the read-only bit exists
                os.chmod(tmp, mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _short(v, n: int = 40) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _is_int(v) -> bool:
    return type(v) is int


def _is_number(v) -> bool:
    return type(v) in (int, float)  # NaN/inf allowed: json writes them for a metric or score that is undefined


def _str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _expect(path, what: str, value, ok, expected: str) -> None:
    if not ok(value):
        raise ManifestError(f"{path}: {what} must be {expected}, got {_short(value)}")


@contextlib.contextmanager
def caches_in(folder: str | os.PathLike):
    """Within the block, Ultralytics writes (and reads) its dataset label caches in ``folder``, never next to the
    user's labels, and never rewrites a source image.

    Ultralytics keeps a ``labels/<name>.cache`` beside the first label file of a dataset (``labels/train.cache``
    for a list of ``.../images/train/*.jpg``): inside the user's source dataset, which labkit only reads. It also
    "restores" a JPEG without an end marker by writing a new file over the source image. Here the cache path is
    mapped to ``folder/<hash of the original path>-<name>`` and the image restore is skipped (the truncated image
    is read as it is; :func:`labkit.data.bkai.convert` reports such files). Not thread-safe: it patches two
    functions of ``ultralytics.data`` for the duration of the block.
    """
    import ultralytics.data.dataset as uds
    import ultralytics.data.utils as udu

    folder = Path(folder)

    def moved(p) -> Path:
        p = Path(p)
        if folder.resolve() in p.resolve().parents:
            return p
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]}-{p.name}"

    load, save = uds.load_dataset_cache_file, uds.save_dataset_cache_file
    replace = getattr(udu, "_replace_image", None)
    uds.load_dataset_cache_file = lambda path: load(moved(path))
    uds.save_dataset_cache_file = lambda prefix, path, x, version: save(prefix, moved(path), x, version)
    if replace is not None:
        udu._replace_image = lambda im_file, write: None  # sources are only read
    try:
        yield folder
    finally:
        uds.load_dataset_cache_file, uds.save_dataset_cache_file = load, save
        if replace is not None:
            udu._replace_image = replace


def label_path(image: str | os.PathLike) -> Path:
    """The YOLO label file of an image, by Ultralytics' rule: the last ``/images/`` becomes ``/labels/``, ``.txt``."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([str(image)])[0])


def count_boxes(images: Iterable[str | os.PathLike]) -> int:
    """Number of labelled boxes (non-empty lines of the label files) of ``images``; a missing label file counts 0."""
    n = 0
    for im in images:
        lp = label_path(im)
        if lp.is_file():
            n += sum(1 for line in lp.read_text().splitlines() if line.strip())
    return n


class SimulatedAnnotator:
    """The annotator of a simulated loop: it reveals the labels of the images it is asked to label, and only those.

    The pool's label files exist on disk (the data are fully annotated), but an active-learning experiment must behave
    as if they did not: a strategy that peeks at an unselected image's labels, or a box count taken over the whole
    pool, would be cheating. :class:`PoolManifest` asks the annotator for the labels of the initial set and of each
    round's selection; nothing else in the loop opens a pool label (Ultralytics reads the labels of the round's
    training list, which are all revealed, and those of the val split). ``reads`` lists every label file it opened,
    ``ledger`` the cost of each request in images and in boxes (the cost that matters for detection: boxes).
    """

    def __init__(self, label_rule=None):
        self.label_rule = label_rule or label_path
        self.reads: list[str] = []
        self.ledger: list[dict] = []
        self._boxes: dict[str, int] = {}

    def annotate(self, images: Iterable[str | os.PathLike]) -> int:
        """Label ``images`` (reveal their label files); returns the number of boxes in them and records the cost."""
        n = 0
        imgs = [str(p) for p in images]
        for im in imgs:
            if im not in self._boxes:
                lp = self.label_rule(im)
                self.reads.append(str(lp))
                self._boxes[im] = (sum(1 for line in Path(lp).read_text().splitlines() if line.strip())
                                   if Path(lp).is_file() else 0)
            n += self._boxes[im]
        self.ledger.append({"images": len(imgs), "boxes": n})
        return n

    def boxes(self, images: Iterable[str | os.PathLike]) -> int:
        """Boxes in already-revealed ``images``; asking about an image that was never labelled is an error."""
        imgs = [str(p) for p in images]
        hidden = [p for p in imgs if p not in self._boxes]
        if hidden:
            raise ManifestError(f"{hidden[0]} was never labelled: its labels are not revealed")
        return sum(self._boxes[p] for p in imgs)

    @property
    def cost(self) -> dict:
        """Total cost so far: ``{"images", "boxes"}``."""
        return {"images": sum(r["images"] for r in self.ledger), "boxes": sum(r["boxes"] for r in self.ledger)}


def checksums(files: Iterable[str | os.PathLike]) -> dict[str, str]:
    """SHA-256 of each file (used by the tests to prove the loop never modifies the sources)."""
    out = {}
    for f in files:
        out[str(f)] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
    return out


def write_dataset_yaml(folder: str | os.PathLike, train: Sequence[str], val: Sequence[str],
                       names: Sequence[str]) -> Path:
    """Write ``train.txt``, ``val.txt`` (one absolute image path a line) and ``data.yaml`` into ``folder``.

    Ultralytics accepts a ``.txt`` list of images as ``train``/``val``; labels are found by the path rule
    (``.../images/x.jpg`` -> ``.../labels/x.txt``), so no image or label is copied, linked or moved.
    """
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "train.txt", "".join(f"{p}\n" for p in train))
    atomic_write_text(folder / "val.txt", "".join(f"{p}\n" for p in val))
    data = {"path": str(folder.resolve()), "train": "train.txt", "val": "val.txt",
            "names": {i: n for i, n in enumerate(names)}}
    return atomic_write_text(folder / "data.yaml", yaml.safe_dump(data, sort_keys=False))


def _abs(paths: Iterable[str | os.PathLike]) -> list[str]:
    return [str(Path(p).expanduser().resolve()) for p in paths]


class PoolManifest:
    """The pool's state: which images are labelled, per round, and the fixed validation list.

    Create with :meth:`create` (picks the initial labelled set with ``seed``), reopen with :meth:`load`
    (which checks consistency), change with :meth:`add_round` / :meth:`set_metrics`; every change is saved
    atomically at once.
    """

    def __init__(self, path: str | os.PathLike, data: dict):
        self.path = Path(path)
        self.data = data

    # -- creation and loading -------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, pool: Sequence[str | os.PathLike], val: Sequence[str | os.PathLike],
               names: Sequence[str], initial: int, seed: int = 0, check_files: bool = True,
               config: dict | None = None, annotator: SimulatedAnnotator | None = None) -> "PoolManifest":
        """Start a new pool: ``initial`` images drawn at random (``seed``) are labelled in round 0.

        ``annotator`` (a :class:`SimulatedAnnotator`) reveals the labels of the initial set (default: their label files
        are counted directly, which reads the same files). ``config`` (the loop's settings, stored under ``"config"``) is part of the manifest from its first write:
        the file is written whole, in one atomic write, so a kill at any moment leaves either no manifest or a
        complete one that can be resumed.

        Raises :class:`ManifestError` for an empty pool, duplicates, overlap between pool and val,
        missing files, or ``initial`` outside ``1..len(pool)``; nothing is written then.
        """
        path = Path(path)
        pool, val = _abs(pool), _abs(val)
        if not pool:
            raise ManifestError(f"{path}: the pool is empty (no unlabelled images given); nothing to learn from")
        if not val:
            raise ManifestError(f"{path}: the validation list is empty; a fixed val split is required")
        for what, lst in (("pool", pool), ("val", val)):
            if len(set(lst)) != len(lst):
                dup = next(p for p in lst if lst.count(p) > 1)
                raise ManifestError(f"{path}: {what} lists {dup} more than once")
        both = sorted(set(pool) & set(val))
        if both:
            raise ManifestError(f"{path}: {len(both)} image(s) are both in the pool and in val, e.g. {both[0]}; "
                                "the validation split must stay separate from the pool")
        if check_files:
            missing = [p for p in pool + val if not Path(p).is_file()]
            if missing:
                raise ManifestError(f"{path}: {len(missing)} image file(s) do not exist, e.g. {missing[0]}")
        if not 1 <= int(initial) <= len(pool):
            raise ManifestError(f"{path}: initial labelled set of {initial} images asked for, "
                                f"but the pool holds {len(pool)}")
        rng = np.random.default_rng([int(seed), 0])
        chosen = set(rng.choice(len(pool), size=int(initial), replace=False).tolist())
        labelled = [p for i, p in enumerate(pool) if i in chosen]
        data = {"version": VERSION, "seed": int(seed), "names": list(names), "pool": pool, "val": val,
                "rounds": []}
        if config is not None:
            data["config"] = dict(config)
        m = cls(path, data)
        m._append_round(labelled, annotator.annotate(labelled) if annotator is not None else None)
        m.save()
        return m

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PoolManifest":
        """Read and check a manifest; an inconsistent one raises :class:`ManifestError` naming file and problem."""
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"{path}: no manifest here")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON (not UTF-8 text at byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from None
        except RecursionError:
            raise ManifestError(f"{path}: nested too deeply to be a manifest") from None
        except OSError as e:
            raise ManifestError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
        m = cls(path, data)
        m.validate()
        return m

    def validate(self) -> None:
        """Check the invariants; raises :class:`ManifestError` with the file name and the first problem found."""
        p, d = self.path, self.data
        if not isinstance(d, dict):
            raise ManifestError(f"{p}: the manifest must be a JSON object")
        for key in ("version", "seed", "names", "pool", "val", "rounds"):
            if key not in d:
                raise ManifestError(f"{p}: missing key {key!r}")
        if d["version"] != VERSION or type(d["version"]) is not int:
            raise ManifestError(f"{p}: manifest version {_short(d['version'])}, this labkit reads version {VERSION}")
        _expect(p, "'seed'", d["seed"], _is_int, "an integer")
        for key in ("names", "pool", "val"):
            _expect(p, repr(key), d[key], _str_list, "a list of strings")
        _expect(p, "'rounds'", d["rounds"], lambda v: isinstance(v, list), "a list")
        if "config" in d:
            _expect(p, "'config'", d["config"], lambda v: isinstance(v, dict), "an object")
        for i, r in enumerate(d["rounds"]):
            where = f"round {i}"
            _expect(p, where, r, lambda v: isinstance(v, dict), "an object")
            _expect(p, f"{where} 'round'", r.get("round"), _is_int, "an integer")
            for key in ("labelled", "unlabelled"):
                _expect(p, f"{where} {key!r}", r.get(key), _str_list, "a list of strings")
            _expect(p, f"{where} 'n_boxes'", r.get("n_boxes"), _is_int, "an integer")
            _expect(p, f"{where} 'metrics'", r.get("metrics"),
                    lambda v: v is None or (isinstance(v, dict) and all(_is_number(x) for x in v.values())),
                    "null or an object of numbers")
            _expect(p, f"{where} 'weights'", r.get("weights"), lambda v: v is None or isinstance(v, str),
                    "null or a path")
            _expect(p, f"{where} 'selected'", r.get("selected"), lambda v: v is None or _str_list(v),
                    "null or a list of strings")
            _expect(p, f"{where} 'scores'", r.get("scores"),
                    lambda v: v is None or (isinstance(v, dict) and all(_is_number(x) for x in v.values())),
                    "null or an object of numbers")
        pool, val = d["pool"], d["val"]
        if not pool:
            raise ManifestError(f"{p}: 'pool' is empty")
        pset = set(pool)
        if len(pset) != len(pool):
            raise ManifestError(f"{p}: 'pool' lists an image more than once")
        if pset & set(val):
            raise ManifestError(f"{p}: {_short(sorted(pset & set(val))[0], 160)} is in both 'pool' and 'val'")
        if not d["rounds"]:
            raise ManifestError(f"{p}: 'rounds' is empty (round 0 holds the initial labelled set)")
        prev: set[str] = set()
        for i, r in enumerate(d["rounds"]):
            where = f"{p}: round {i}"
            if r.get("round") != i:
                raise ManifestError(f"{where}: its 'round' field says {_short(r.get('round'))}")
            lab, unl = r.get("labelled"), r.get("unlabelled")
            if not isinstance(lab, list) or not isinstance(unl, list):
                raise ManifestError(f"{where}: 'labelled' and 'unlabelled' must be lists")
            ls, us = set(lab), set(unl)
            if len(ls) != len(lab) or len(us) != len(unl):
                raise ManifestError(f"{where}: an image is listed twice")
            if ls & us:
                raise ManifestError(f"{where}: {_short(sorted(ls & us)[0], 160)} is both labelled and unlabelled")
            if ls | us != pset:
                extra = sorted((ls | us) - pset)
                gone = sorted(pset - (ls | us))
                what = (f"{_short(extra[0], 160)} is not in 'pool'" if extra
                        else f"{_short(gone[0], 160)} of 'pool' is in neither list")
                raise ManifestError(f"{where}: labelled + unlabelled must be exactly the pool; {what}")
            if not prev <= ls:
                raise ManifestError(f"{where}: {_short(sorted(prev - ls)[0], 160)} was labelled in round {i - 1} "
                                    "and is unlabelled again (labels are never taken back)")
            if i > 0:
                sel = d["rounds"][i - 1].get("selected")
                if sel is None or set(sel) != ls - prev:
                    raise ManifestError(f"{where}: the images added since round {i - 1} do not match "
                                        f"round {i - 1}'s 'selected' list")
            if i < len(d["rounds"]) - 1 and r.get("selected") is None:
                raise ManifestError(f"{where}: a later round exists but this round has no 'selected' list")
            prev = ls

    # -- accessors --------------------------------------------------------------------------------
    @property
    def rounds(self) -> list[dict]:
        return self.data["rounds"]

    @property
    def current(self) -> dict:
        """The last round (the one being worked on)."""
        return self.data["rounds"][-1]

    @property
    def pool(self) -> list[str]:
        return self.data["pool"]

    @property
    def val(self) -> list[str]:
        return self.data["val"]

    @property
    def names(self) -> list[str]:
        return self.data["names"]

    @property
    def seed(self) -> int:
        return self.data["seed"]

    @property
    def labelled(self) -> list[str]:
        return self.current["labelled"]

    @property
    def unlabelled(self) -> list[str]:
        return self.current["unlabelled"]

    # -- changes (each one saved atomically) ---------------------------------------------------------
    def save(self) -> Path:
        """Write the manifest atomically (tmp file + ``os.replace``)."""
        return atomic_write_text(self.path, json.dumps(self.data, indent=1))

    def _append_round(self, labelled: Sequence[str], n_boxes: int | None = None) -> None:
        lab = set(labelled)
        self.data["rounds"].append({
            "round": len(self.data["rounds"]),
            "labelled": [p for p in self.pool if p in lab],
            "unlabelled": [p for p in self.pool if p not in lab],
            "n_boxes": count_boxes(labelled) if n_boxes is None else int(n_boxes),
            "metrics": None, "weights": None, "selected": None, "scores": None,
        })

    def set_metrics(self, metrics: dict, weights: str | None = None) -> None:
        """Record the current round's validation metrics (and the trained weights' path); saves."""
        self.current["metrics"] = {k: float(v) for k, v in metrics.items()}
        self.current["weights"] = None if weights is None else str(weights)
        self.save()

    def add_round(self, selected: Sequence[str], scores: dict | None = None,
                  annotator: SimulatedAnnotator | None = None) -> dict:
        """Label ``selected`` (unlabelled images of the current round): record them and open the next round; saves.

        With an ``annotator`` only the selected images' labels are revealed (the labelled boxes so far are the last
        round's count plus theirs)."""
        sel = list(selected)
        unl = set(self.unlabelled)
        bad = [s for s in sel if s not in unl]
        if bad:
            raise ManifestError(f"{self.path}: cannot label {bad[0]}: it is not unlabelled in round "
                                f"{self.current['round']}")
        if len(set(sel)) != len(sel):
            raise ManifestError(f"{self.path}: the selection lists an image twice")
        if not sel:
            raise ManifestError(f"{self.path}: empty selection")
        self.current["selected"] = sel
        self.current["scores"] = None if scores is None else {k: float(v) for k, v in scores.items()}
        new_boxes = None if annotator is None else self.current["n_boxes"] + annotator.annotate(sel)
        self._append_round(self.labelled + sel, new_boxes)
        self.save()
        return self.current

    def dataset_yaml(self, folder: str | os.PathLike) -> Path:
        """Write the current round's ``train.txt``/``val.txt``/``data.yaml`` into ``folder``; returns data.yaml."""
        return write_dataset_yaml(folder, self.labelled, self.val, self.names)

    def table(self) -> list[dict]:
        """One row per round: round, labelled images, labelled boxes, mAP50, mAP50-95 (None until trained)."""
        rows = []
        for r in self.rounds:
            m = r.get("metrics") or {}
            rows.append({"round": r["round"], "images": len(r["labelled"]), "boxes": r["n_boxes"],
                         "map50": m.get("map50"), "map50_95": m.get("map50_95")})
        return rows
