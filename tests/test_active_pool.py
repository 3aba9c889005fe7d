"""labkit.active.pool and the resumable loop: atomic manifest, consistency checks, crash/resume equivalence."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from labkit.active import pool as P
from labkit.active.loop import LoopConfig, SharedTrainer, loop_steps, run_experiment, run_loop, train_once
from labkit.active.strategies import Predictions


def _files(tmp_path, n, sub="src", boxes=None):
    img_dir = tmp_path / sub / "images" / "train"
    lab_dir = tmp_path / sub / "labels" / "train"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    out = []
    for i in range(n):
        im = img_dir / f"im{i:03d}.jpg"
        im.write_bytes(f"fake image {i}".encode())
        k = (i % 4) if boxes is None else boxes[i]
        (lab_dir / f"im{i:03d}.txt").write_text("".join(f"0 0.5 0.5 0.1 0.1\n" for _ in range(k)))
        out.append(str(im))
    return out


@pytest.fixture
def data(tmp_path):
    pool = _files(tmp_path, 24, "pool")
    val = _files(tmp_path, 4, "valset")
    return pool, val


def test_label_path_rule_and_box_count(tmp_path):
    pool = _files(tmp_path, 5, boxes=[0, 1, 2, 3, 4])
    assert P.label_path(pool[2]) == Path(pool[2].replace("/images/", "/labels/").replace(".jpg", ".txt"))
    assert P.count_boxes(pool) == 10
    assert P.count_boxes(pool[3:]) == 7


def test_create_counts_and_reload(tmp_path, data):
    pool, val = data
    m = P.PoolManifest.create(tmp_path / "m.json", pool, val, ["a"], initial=5, seed=3)
    assert len(m.labelled) == 5 and len(m.unlabelled) == 19
    assert set(m.labelled) | set(m.unlabelled) == set(pool)
    assert m.current["n_boxes"] == P.count_boxes(m.labelled)
    m2 = P.PoolManifest.load(tmp_path / "m.json")
    assert m2.data == m.data
    # same seed -> same initial set; another seed -> (almost surely) another
    m3 = P.PoolManifest.create(tmp_path / "m3.json", pool, val, ["a"], initial=5, seed=3)
    m4 = P.PoolManifest.create(tmp_path / "m4.json", pool, val, ["a"], initial=5, seed=4)
    assert m3.labelled == m.labelled and m4.labelled != m.labelled


def test_add_round_and_dataset_yaml(tmp_path, data):
    import yaml

    pool, val = data
    m = P.PoolManifest.create(tmp_path / "m.json", pool, val, ["a", "b"], initial=4)
    m.set_metrics({"map50": 0.1, "map50_95": 0.05}, "w.pt")
    sel = m.unlabelled[:3]
    m.add_round(sel, {s: 1.0 for s in sel})
    assert len(m.rounds) == 2 and len(m.labelled) == 7 and set(sel) <= set(m.labelled)
    y = m.dataset_yaml(tmp_path / "ds")
    d = yaml.safe_load(y.read_text())
    assert d["names"] == {0: "a", 1: "b"}
    train = (tmp_path / "ds" / d["train"]).read_text().split()
    assert sorted(train) == sorted(m.labelled)
    assert (tmp_path / "ds" / d["val"]).read_text().split() == m.val
    with pytest.raises(P.ManifestError, match="not unlabelled"):
        m.add_round([m.labelled[0]])
    assert P.PoolManifest.load(tmp_path / "m.json").table()[0]["map50"] == pytest.approx(0.1)


def test_atomic_write_keeps_old_version_on_failure(tmp_path, data, monkeypatch):
    pool, val = data
    m = P.PoolManifest.create(tmp_path / "m.json", pool, val, ["a"], initial=4)
    before = (tmp_path / "m.json").read_bytes()

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(P.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        m.add_round(m.unlabelled[:2])
    monkeypatch.undo()
    assert (tmp_path / "m.json").read_bytes() == before  # the old manifest is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left
    assert len(P.PoolManifest.load(tmp_path / "m.json").rounds) == 1


@pytest.mark.parametrize("initial, msg", [(0, "initial labelled set of 0"), (99, "pool holds 24")])
def test_bad_initial(tmp_path, data, initial, msg):
    pool, val = data
    with pytest.raises(P.ManifestError, match=msg):
        P.PoolManifest.create(tmp_path / "m.json", pool, val, ["a"], initial=initial)
    assert not (tmp_path / "m.json").exists()


def test_empty_pool_and_overlap(tmp_path, data):
    pool, val = data
    with pytest.raises(P.ManifestError, match="pool is empty"):
        P.PoolManifest.create(tmp_path / "m.json", [], val, ["a"], initial=1)
    with pytest.raises(P.ManifestError, match="both in the pool and in val"):
        P.PoolManifest.create(tmp_path / "m.json", pool, val + pool[:1], ["a"], initial=1)
    with pytest.raises(P.ManifestError, match="do not exist"):
        P.PoolManifest.create(tmp_path / "m.json", pool + [str(tmp_path / "nope.jpg")], val, ["a"], initial=1)


def _edit(path, fn):
    d = json.loads(Path(path).read_text())
    fn(d)
    Path(path).write_text(json.dumps(d))


@pytest.mark.parametrize("edit, msg", [
    (lambda d: d["rounds"][1]["unlabelled"].append(d["rounds"][1]["labelled"][0]), "both labelled and unlabelled"),
    (lambda d: d["rounds"][1]["labelled"].pop(), "in neither list"),
    (lambda d: d["rounds"][1]["labelled"].append("/elsewhere/x.jpg"), "not in 'pool'"),
    (lambda d: d["rounds"][0].__setitem__("selected", d["rounds"][0]["selected"][:1]), "do not match"),
    (lambda d: d["val"].append(d["pool"][0]), "in both 'pool' and 'val'"),
    (lambda d: d["rounds"][1].__setitem__("round", 5), "'round' field says 5"),
    (lambda d: d.pop("val"), "missing key 'val'"),
])
def test_hand_edited_manifest_is_refused_with_file_and_problem(tmp_path, data, edit, msg):
    pool, val = data
    path = tmp_path / "m.json"
    m = P.PoolManifest.create(path, pool, val, ["a"], initial=4)
    m.add_round(m.unlabelled[:3])
    _edit(path, edit)
    with pytest.raises(P.ManifestError) as e:
        P.PoolManifest.load(path)
    assert str(path) in str(e.value) and msg in str(e.value)


def test_unlabelling_is_refused(tmp_path, data):
    pool, val = data
    path = tmp_path / "m.json"
    m = P.PoolManifest.create(path, pool, val, ["a"], initial=4)
    m.add_round(m.unlabelled[:3])

    def swap(d):  # round 1 drops an image labelled in round 0 and labels another instead
        r0, r1 = d["rounds"]
        gone = r0["labelled"][0]
        new = r1["unlabelled"][0]
        r1["labelled"] = [p for p in r1["labelled"] if p != gone] + [new]
        r1["unlabelled"] = [p for p in r1["unlabelled"] if p != new] + [gone]
    _edit(path, swap)
    with pytest.raises(P.ManifestError, match="unlabelled again"):
        P.PoolManifest.load(path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(P.ManifestError, match="bad.json: not valid JSON"):
        P.PoolManifest.load(tmp_path / "bad.json")


# ------------------------------------------------------------------------------------------------
# Resume equivalence with deterministic fake trainer/scorer
# ------------------------------------------------------------------------------------------------
class Crash(RuntimeError):
    pass


def _h(*parts) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


class Fakes:
    """Deterministic stand-ins for training and scoring; ``crash_at`` raises at that step (0-based)."""

    def __init__(self, crash_at=None):
        self.crash_at, self.calls = crash_at, 0

    def _tick(self):
        if self.calls == self.crash_at:
            self.calls += 1
            raise Crash(f"simulated crash at step {self.crash_at}")
        self.calls += 1

    def trainer(self, data_yaml, rnd, init, out_dir, seed):
        self._tick()
        train = sorted(Path(p).name for p in (Path(data_yaml).parent / "train.txt").read_text().split())
        prev = Path(init).read_text() if init else ""
        out_dir.mkdir(parents=True, exist_ok=True)
        w = out_dir / "last.pt"
        w.write_text(prev + ",".join(train) + f";{seed}\n")
        return {"map50": (_h(w.read_text()) % 1000) / 1000, "map50_95": len(train) / 100}, str(w)

    def scorer(self, weights, paths, committee=()):
        self._tick()
        wt = Path(weights).read_text()

        def preds(tag):
            probs = [np.array([[(_h(tag, Path(p).name, j) % 997) / 997, (_h(tag, p, j, 1) % 991) / 991]
                               for j in range(_h(p) % 3)]).reshape(-1, 2) for p in paths]
            boxes = [np.tile([0, 0, 10, 10.0], (len(pr), 1)) for pr in probs]
            emb = np.array([[_h(tag, Path(p).name, d) % 101 for d in range(4)] for p in paths], dtype=float)
            return Predictions(list(paths), boxes, probs, emb)

        out = preds(wt)
        out.committee = [preds(Path(w).read_text() + f"c{flip}") for w, flip in committee]
        return out


def _state(m):
    """The manifest's content without absolute folders (two runs live in two folders)."""
    rows = []
    for r in m.rounds:
        rows.append((r["round"], [Path(p).name for p in r["labelled"]], r["n_boxes"], r["metrics"],
                     None if r["selected"] is None else [Path(p).name for p in r["selected"]],
                     None if r["scores"] is None else sorted((Path(k).name, v) for k, v in r["scores"].items())))
    return rows


CFG = dict(rounds=3, budget=3, initial=4, epochs=1, seed=7, subset=12)


@pytest.mark.parametrize("strategy", ["hybrid", "random", "qbc"])
def test_resume_after_crash_at_every_step_reaches_same_state(tmp_path, data, strategy):
    pool, val = data
    cfg = LoopConfig(strategy=strategy, **CFG)
    ref_f = Fakes()
    ref = run_loop(tmp_path / "ref", pool, val, ["a", "b"], cfg, ref_f.trainer, ref_f.scorer, log=None)
    ref_state = _state(ref)
    assert len(ref.rounds) == cfg.rounds + 1 and len(ref.labelled) == 4 + 3 * 3
    n_steps = ref_f.calls if strategy != "random" else cfg.rounds + 1
    if strategy != "random":
        assert n_steps == len(loop_steps(cfg.rounds))
    for crash_at in range(n_steps):
        wd = tmp_path / f"crash{crash_at}"
        f = Fakes(crash_at)
        with pytest.raises(Crash):
            run_loop(wd, pool, val, ["a", "b"], cfg, f.trainer, f.scorer, log=None)
        P.PoolManifest.load(wd / "manifest.json")  # the manifest on disk is always consistent
        f2 = Fakes()  # "kernel restart": fresh objects, only the folder survives
        m = run_loop(wd, pool, val, ["a", "b"], cfg, f2.trainer, f2.scorer, log=None)
        assert _state(m) == ref_state, f"crash at step {crash_at}"
        # only the unfinished steps were redone
        assert f2.calls == n_steps - crash_at
    # resuming a finished loop does nothing
    f3 = Fakes()
    run_loop(tmp_path / "ref", pool, val, ["a", "b"], cfg, f3.trainer, f3.scorer, log=None)
    assert f3.calls == 0


def test_loop_refuses_bad_budget_and_other_settings(tmp_path, data):
    pool, val = data
    f = Fakes()
    with pytest.raises(P.ManifestError, match="budget larger than the pool: 4 initial \\+ 3 rounds x 8 = 28"):
        run_loop(tmp_path / "a", pool, val, ["a"], LoopConfig(rounds=3, budget=8, initial=4), f.trainer, f.scorer)
    assert not (tmp_path / "a" / "manifest.json").exists()
    with pytest.raises(P.ManifestError, match="pool is empty"):
        run_loop(tmp_path / "b", [], val, ["a"], LoopConfig(), f.trainer, f.scorer)
    run_loop(tmp_path / "c", pool, val, ["a"], LoopConfig(rounds=1, budget=2, initial=3), f.trainer, f.scorer, log=None)
    with pytest.raises(P.ManifestError, match="made with seed=0, asked to continue with seed=1"):
        run_loop(tmp_path / "c", pool, val, ["a"], LoopConfig(rounds=1, budget=2, initial=3, seed=1),
                 f.trainer, f.scorer)


def test_loop_never_touches_source_files(tmp_path, data):
    pool, val = data
    lab = [str(P.label_path(p)) for p in pool + val]
    before = P.checksums(pool + val + lab)
    listing = sorted(str(p) for p in tmp_path.rglob("*") if "work" not in p.parts)
    f = Fakes()
    run_loop(tmp_path / "work", pool, val, ["a", "b"], LoopConfig(strategy="hybrid", **CFG), f.trainer, f.scorer,
             log=None)
    assert P.checksums(pool + val + lab) == before
    assert sorted(str(p) for p in tmp_path.rglob("*") if "work" not in p.parts) == listing


def test_shared_trainer_trains_identical_rounds_once(tmp_path, data):
    """Round 0 is the same for every strategy of a seed: trained once, reused, and the loops' results unchanged."""
    pool, val = data
    cfg = LoopConfig(rounds=2, budget=3, initial=4, epochs=1, seed=3)
    plain = {}
    for s in ("random", "least_confidence"):
        f = Fakes()
        plain[s] = _state(run_loop(tmp_path / "plain" / s, pool, val, ["a", "b"],
                                   LoopConfig(**{**cfg.__dict__, "strategy": s}), f.trainer, f.scorer, log=None))
    f = Fakes()
    calls = []

    def counting(*a):
        calls.append(a[1])
        return f.trainer(*a)

    shared = {}
    for s in ("random", "least_confidence"):
        tr = SharedTrainer(counting, tmp_path / "cache", {"epochs": 1})
        shared[s] = _state(run_loop(tmp_path / "shared" / s, pool, val, ["a", "b"],
                                    LoopConfig(**{**cfg.__dict__, "strategy": s}), tr, f.scorer, log=None))
    assert shared == plain  # same tables, same picks
    assert calls.count(0) == 1 and len(calls) == 2 * 3 - 1  # round 0 trained once for two strategies
    # another setting (here: epochs) is another training
    tr = SharedTrainer(counting, tmp_path / "cache", {"epochs": 2})
    run_loop(tmp_path / "other", pool, val, ["a", "b"], LoopConfig(**{**cfg.__dict__, "rounds": 0}), tr, f.scorer,
             log=None)
    assert calls.count(0) == 2 and tr.hits == 0


def test_run_experiment_with_fakes_and_train_once_cache(tmp_path, data):
    pool, val = data
    cfg = LoopConfig(rounds=1, budget=2, initial=3, epochs=1)
    fakes = {}

    def factory(c):
        return fakes.setdefault(c.strategy + str(c.seed), Fakes()).trainer

    out = run_experiment(tmp_path / "exp", pool, val, ["a", "b"], ["random", "binary_entropy-sum"], [0, 1], cfg,
                         trainer_factory=factory, scorer_factory=lambda c: Fakes().scorer, progress=False, log=None)
    assert sorted(out["loops"]) == ["binary_entropy-sum", "random"]
    assert [len(t) for t in out["loops"]["random"]] == [2, 2]
    assert [f["images"] for f in out["full"]] == [24, 24] and all(f["epochs"] == 2 for f in out["full"])
    assert all(Path(f["weights"]).is_file() for f in out["full"])
    f = Fakes()
    res = train_once(tmp_path / "seed", pool[:5], val, ["a"], cfg, epochs=3, trainer=f.trainer)
    assert (res["images"], res["epochs"], f.calls) == (5, 3, 1)
    assert train_once(tmp_path / "seed", pool[:5], val, ["a"], cfg, epochs=3, trainer=f.trainer) == res
    assert f.calls == 1  # cached


def test_drop_tensorboard_keeps_other_callbacks():
    from types import SimpleNamespace

    from labkit.active.loop import _drop_tensorboard

    def mine(trainer):
        pass

    def tb(trainer):
        pass

    tb.__module__ = "ultralytics.utils.callbacks.tensorboard"
    tr = SimpleNamespace(callbacks={"on_train_start": [mine, tb], "on_fit_epoch_end": [tb]})
    _drop_tensorboard(tr)
    assert tr.callbacks == {"on_train_start": [mine], "on_fit_epoch_end": []}


# ------------------------------------------------------------------------------------------------
# issue 14 #12: the manifest is created whole; atomic writes honour the umask
# ------------------------------------------------------------------------------------------------
class Kill(BaseException):
    """A kill -9 stand-in: raised from inside os.replace, so nothing after it runs."""


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_kill_during_creation_always_leaves_a_resumable_folder(tmp_path, data, monkeypatch, kill_at):
    # Catches: create() saving the manifest first and the loop adding 'config' in a second save (a kill in
    # between left a manifest that could never be resumed: "made with strategy=None").
    pool, val = data
    cfg = LoopConfig(strategy="hybrid", **CFG)
    real, n = os.replace, [0]

    def replace(src, dst):
        real(src, dst)
        n[0] += 1
        if n[0] == kill_at:  # killed right after the kill_at-th atomic write landed
            raise Kill()

    monkeypatch.setattr(P.os, "replace", replace)
    f = Fakes()
    with pytest.raises(Kill):
        run_loop(tmp_path / "w", pool, val, ["a", "b"], cfg, f.trainer, f.scorer, log=None)
    monkeypatch.undo()
    written = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert written["config"] == cfg.identity()  # complete from its first write
    ref_f, f2 = Fakes(), Fakes()
    ref = run_loop(tmp_path / "ref", pool, val, ["a", "b"], cfg, ref_f.trainer, ref_f.scorer, log=None)
    assert _state(run_loop(tmp_path / "w", pool, val, ["a", "b"], cfg, f2.trainer, f2.scorer, log=None)) == \
        _state(ref)


def test_manifest_without_config_is_refused_with_the_fix(tmp_path, data):
    pool, val = data
    P.PoolManifest.create(tmp_path / "w" / "manifest.json", pool, val, ["a"], initial=4)
    f = Fakes()
    with pytest.raises(P.ManifestError, match="records no loop settings .*fresh folder"):
        run_loop(tmp_path / "w", pool, val, ["a"], LoopConfig(rounds=1, budget=2, initial=4), f.trainer, f.scorer)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_honours_umask_like_a_plain_write(tmp_path, umask):
    # Catches: mkstemp's 0600 left on the file (a plain open() gives 0o666 & ~umask).
    old = os.umask(umask)
    try:
        P.atomic_write_text(tmp_path / "a.json", "{}")
        (tmp_path / "b.json").write_text("{}")
    finally:
        os.umask(old)
    mode = lambda p: os.stat(p).st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.json") == 0o666 & ~umask
    os.chmod(tmp_path / "a.json", 0o640)  # an existing file keeps its mode, as with open(path, "w")
    P.atomic_write_text(tmp_path / "a.json", "[]")
    assert mode(tmp_path / "a.json") == 0o640


def test_caches_in_redirects_label_caches_and_never_rewrites_a_source_image(tmp_path):
    # Catches: Ultralytics' labels/*.cache written beside the user's labels, and its in-place "restore" of a
    # truncated JPEG. (The real loop is checked end to end in test_active_scoring.)
    import ultralytics.data.dataset as uds
    import ultralytics.data.utils as udu
    from PIL import Image

    src = tmp_path / "src" / "labels" / "train.cache"
    src.parent.mkdir(parents=True)
    img = tmp_path / "src" / "images" / "a.jpg"
    img.parent.mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(img)
    img.write_bytes(img.read_bytes() + b"\0\0")  # does not end with the end-of-image marker: Ultralytics "restores" it
    before = img.read_bytes()
    with P.caches_in(tmp_path / "work" / "cache"):
        uds.save_dataset_cache_file("", src, {"labels": [], "hash": "h"}, "1.0.3")
        assert uds.load_dataset_cache_file(src)["hash"] == "h"
        udu.check_image(str(img))
    assert not src.exists() and len(list((tmp_path / "work" / "cache").glob("*-train.cache"))) == 1
    assert img.read_bytes() == before
    udu.check_image(str(img))  # outside the block Ultralytics' own behaviour is back (it rewrites the file)
    assert img.read_bytes() != before


@pytest.mark.parametrize("edit, msg", [
    (lambda d: d.__setitem__("pool", {"a": 1}), "'pool' must be a list of strings"),
    (lambda d: d.__setitem__("seed", 1.5), "'seed' must be an integer"),
    (lambda d: d["rounds"].__setitem__(0, "x"), "round 0 must be an object"),
    (lambda d: d["rounds"][0].__setitem__("labelled", [1, 2]), "round 0 'labelled' must be a list of strings"),
    (lambda d: d["rounds"][0].__setitem__("metrics", {"map50": "high"}), "round 0 'metrics' must be null or"),
    (lambda d: d.__setitem__("config", []), "'config' must be an object"),
    (lambda d: d.__setitem__("version", True), "manifest version True"),
])
def test_wrong_types_in_a_manifest_are_one_clear_error(tmp_path, data, edit, msg):
    # Catches: TypeError/AttributeError tracebacks (unhashable list in set(), .get on a str) from validate().
    pool, val = data
    path = tmp_path / "m.json"
    P.PoolManifest.create(path, pool, val, ["a"], initial=4)
    _edit(path, edit)
    with pytest.raises(P.ManifestError) as e:
        P.PoolManifest.load(path)
    assert str(path) in str(e.value) and msg in str(e.value)
