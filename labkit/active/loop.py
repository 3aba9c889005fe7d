"""The active-learning loop: train -> validate on the fixed val split -> score -> select -> repeat, resumable.

Every step ends by saving the manifest atomically (see :mod:`labkit.active.pool`), so after a crash or a
kernel restart :func:`run_loop` simply starts again from the last completed step. Randomness is derived
from ``(seed, round)`` — never from the global RNG state — so a resumed run ends in exactly the same state
as an uninterrupted one.

Steps of a loop with ``rounds = R``::

    train 0, select 0, train 1, select 1, ..., select R-1, train R

``train r`` trains on round r's labelled images (re-initialised, or warm-started from round r-1's weights),
then validates on the **fixed val split** (never on the labelled set, as the source did) and reads mAP from
``metrics.box.map50`` / ``metrics.box.map``. ``select r`` scores the unlabelled pool (or a random subset)
in batches and labels the ``budget`` images the strategy picks.

The trainer and scorer are plain callables, so tests can swap the real (slow) YOLO training for fakes.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .pool import (ManifestError, PoolManifest, SimulatedAnnotator, atomic_write_text, caches_in, count_boxes,
                   write_dataset_yaml)
from .scoring import predict_pool, subset_indices
from .strategies import Predictions, Random, Strategy, make_strategy

__all__ = ["LoopConfig", "UltralyticsTrainer", "UltralyticsScorer", "SharedTrainer", "run_loop", "loop_steps",
           "train_once", "train_full_pool", "run_experiment", "curves", "plot_label_efficiency", "Protocol",
           "PROTOCOLS", "protocol_plan", "load_yolo_data", "experiment_rows", "sweep_rows", "budget_report",
           "budget_verdict", "paired_interval"]

# settings that define a loop; a manifest made with other values of these cannot be resumed
_IDENTITY = ("strategy", "how", "rounds", "budget", "initial", "epochs", "warm_start", "model", "imgsz", "seed",
             "subset", "conf")


@dataclass
class LoopConfig:
    """Settings of one active-learning loop.

    Attributes:
        strategy: a name known to :func:`~labkit.active.strategies.make_strategy`.
        how: per-image aggregation of per-box scores (``max``, ``mean``, ``sum``, ``topk``).
        rounds: selection rounds (the model is trained ``rounds + 1`` times).
        budget: images labelled per round.
        initial: randomly chosen labelled images of round 0.
        epochs: training epochs per round.
        warm_start: continue from the previous round's weights (else re-initialise every round).
        model: Ultralytics model name for :func:`labkit.env.yolo_model` (``.pt`` falls back to its yaml offline).
        imgsz, batch, workers, device: training/scoring settings (``device`` is a torch device string, or several
            GPUs ``"0,1"``: each round then trains with DDP in a subprocess, :mod:`labkit.ddp_launch`, and is
            validated and scores the pool in this process on the first GPU listed).
        seed: the loop's seed (initial set, random picks, subset, training seed per round).
        subset: score only a random subset of the unlabelled pool (count or fraction), or None for all.
        conf: NMS confidence threshold when scoring (low on purpose: uncertain boxes are the point).
        committee: for query-by-committee, how many earlier rounds' weights join the current model (which also
            votes a second time on horizontally flipped images).
        tensorboard: keep Ultralytics' TensorBoard logging for each round's run (off: it traces the model on
            every ``train`` call, seconds per round on a CPU).
        train_kwargs: extra keyword arguments for ``model.train`` (e.g. ``optimizer``, ``lr0``, ``nbs``).
    """

    strategy: str = "random"
    how: str = "max"
    rounds: int = 2
    budget: int = 8
    initial: int = 8
    epochs: int = 2
    warm_start: bool = True
    model: str = "yolov8n.pt"
    imgsz: int = 96
    batch: int = 16
    workers: int = 0
    device: str = "cpu"
    seed: int = 0
    subset: int | float | None = None
    conf: float = 0.01
    committee: int = 2
    tensorboard: bool = False
    train_kwargs: dict = field(default_factory=dict)

    def identity(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in _IDENTITY}


# ------------------------------------------------------------------------------------------------
# Default trainer and scorer (Ultralytics)
# ------------------------------------------------------------------------------------------------
def _drop_tensorboard(trainer) -> None:
    """Remove Ultralytics' TensorBoard callbacks from one trainer (the global setting stays as it is).

    With TensorBoard enabled, every ``train`` call traces the model to draw its graph (about 3 s on a CPU):
    more than a whole small round costs. A loop makes many tiny runs that nobody opens in TensorBoard."""
    for event, fns in trainer.callbacks.items():
        trainer.callbacks[event] = [f for f in fns if "tensorboard" not in getattr(f, "__module__", "")]


class UltralyticsTrainer:
    """``trainer(data_yaml, round, init_weights, out_dir, seed) -> (metrics, weights)`` with Ultralytics.

    A fresh ``model.train`` call every round (never ``resume=True``: resuming a *finished* run does not train
    further, which is what the source's loop silently did). The metrics come from the returned
    ``DetMetrics`` (``.box.map50``, ``.box.map``) on the data.yaml's ``val`` list — the fixed val split.

    ``val=False`` and ``save=False``: Ultralytics then validates and writes ``last.pt``/``best.pt`` only after
    the final epoch instead of after every epoch (a checkpoint write deep-copies the model, EMA and optimizer:
    about a fifth of a small CPU round). Training itself is unchanged, and a round interrupted half-way is
    trained again from its start on resume, so the per-epoch checkpoints would never be read.
    """

    def __init__(self, cfg: LoopConfig):
        self.cfg = cfg

    def __call__(self, data_yaml: Path, rnd: int, init_weights: str | None, out_dir: Path, seed: int):
        from labkit import ddp_launch, weights
        from labkit.env import ultralytics_device, yolo_model
        from ultralytics import YOLO

        c = self.cfg
        weights.install()  # the warm-start path comes from manifest.json: load it safely (labkit.weights)
        ddp = ddp_launch.needs_subprocess(c.device)
        kw = dict(data=str(data_yaml), epochs=c.epochs, imgsz=c.imgsz, batch=c.batch, workers=c.workers,
                  device=c.device if ddp else ultralytics_device(c.device), seed=int(seed), deterministic=True,
                  project=str(Path(out_dir).parent), name=Path(out_dir).name, exist_ok=True,
                  plots=False, verbose=False, val=False, save=False)
        kw.update(c.train_kwargs)
        if ddp:
            return self._train_ddp(kw, Path(data_yaml), init_weights, Path(out_dir))
        model = YOLO(init_weights) if init_weights else yolo_model(c.model, verbose=False)
        if not c.tensorboard:
            model.add_callback("on_pretrain_routine_start", _drop_tensorboard)
        from labkit.finetune import quiet_ultralytics

        # label caches go to the work folder, never into the user's dataset (pool.caches_in)
        with quiet_ultralytics(), caches_in(Path(data_yaml).parent / "label_cache"):
            metrics = model.train(**kw)
        weights = Path(model.trainer.last)
        return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}, str(weights)

    def _train_ddp(self, kw: dict, data_yaml: Path, init_weights: str | None, out_dir: Path):
        """Several GPUs: train with Ultralytics' DDP in a subprocess (:mod:`labkit.ddp_launch`) into ``out_dir``, then
        validate its ``last.pt`` in the kernel on the first GPU listed (:func:`labkit.ddp_launch.first_device`)."""
        from labkit import ddp_launch
        from labkit.env import ultralytics_device
        from labkit.finetune import quiet_ultralytics
        from ultralytics import YOLO

        from .ddp import TRAINER

        c = self.cfg
        events = [] if c.tensorboard else [f"{__name__}:_drop_tensorboard"]
        print(f"labkit: DEVICE={c.device!r}: training {out_dir} with DDP in a subprocess (python -m labkit.ddp_launch)")
        # the spec sits beside out_dir, not in it: Ultralytics empties the save folder before a DDP launch;
        # YOLO_VERBOSE=False: the child and its workers print errors only, as quiet_ultralytics does in the kernel
        ddp_launch.train(init_weights or ddp_launch.child_model(c.model), kw,
                         workdir=out_dir.parent / f".ddp-{out_dir.name}",
                         extra={"trainer": TRAINER, "callbacks": {"on_pretrain_routine_start": events}},
                         env={"YOLO_VERBOSE": "False"})
        weights = out_dir / "weights" / "last.pt"
        if not weights.is_file():
            raise RuntimeError(f"multi-GPU training of {out_dir} ended without writing {weights}")
        with quiet_ultralytics(), caches_in(data_yaml.parent / "label_cache"):
            metrics = YOLO(str(weights)).val(data=str(data_yaml), imgsz=c.imgsz, batch=c.batch, workers=c.workers,
                                             device=ultralytics_device(ddp_launch.first_device(c.device)),
                                             project=str(out_dir), name="val", exist_ok=True, plots=False,
                                             verbose=False)
        return {"map50": float(metrics.box.map50), "map50_95": float(metrics.box.map)}, str(weights)


class UltralyticsScorer:
    """``scorer(weights, paths, committee) -> Predictions``: batched scoring with :func:`predict_pool`.

    ``committee`` lists ``(weights, flip)`` members besides the current model: earlier rounds' weights and the
    current model on horizontally flipped images (boxes flipped back before matching).
    """

    def __init__(self, cfg: LoopConfig, progress: bool = True):
        self.cfg, self.progress = cfg, progress

    def __call__(self, weights: str, paths: Sequence[str], committee: Sequence[tuple[str, bool]] = ()) -> Predictions:
        from labkit.ddp_launch import first_device

        c = self.cfg
        kw = dict(imgsz=c.imgsz, batch=max(c.batch, 32), conf=c.conf, device=first_device(c.device),
                  progress=self.progress)
        preds = predict_pool(weights, paths, embed=True, **kw)
        preds.committee = [predict_pool(w, paths, embed=False, desc="committee", flip=f, **kw) for w, f in committee]
        return preds


class SharedTrainer:
    """Wraps a trainer so that identical trainings run once and are shared between loops.

    Every strategy of one seed starts from the same random initial set and trains round 0 identically, so
    ``S`` strategies would pay for the same round-0 training ``S`` times. A training is identified by what
    determines it — the labelled list, the val list, the initial weights (by content), the seed and the
    training settings — and its metrics and weights are stored under ``cache_dir/<key>``. Training is
    deterministic for fixed inputs (Ultralytics ``deterministic=True``), so reusing it changes nothing but the
    time. Weights in the cache are only ever read.
    """

    def __init__(self, trainer: Callable, cache_dir: str | Path, settings: dict | None = None):
        self.trainer, self.cache_dir, self.settings = trainer, Path(cache_dir), settings or {}
        self.hits = 0

    def key(self, data_yaml: Path, init_weights: str | None, seed: int) -> str:
        import hashlib

        d = Path(data_yaml).parent
        h = hashlib.sha256()
        for f in ("train.txt", "val.txt"):
            h.update(sorted((d / f).read_text().split()).__repr__().encode())
        if init_weights and Path(init_weights).is_file():
            h.update(hashlib.sha256(Path(init_weights).read_bytes()).digest())
        else:
            h.update(repr(init_weights).encode())
        h.update(json.dumps({"seed": int(seed), **self.settings}, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def __call__(self, data_yaml: Path, rnd: int, init_weights: str | None, out_dir: Path, seed: int):
        where = self.cache_dir / self.key(data_yaml, init_weights, seed)
        done = where / "done.json"
        if done.exists():
            rec = json.loads(done.read_text())
            if Path(rec["weights"]).is_file():
                self.hits += 1
                return rec["metrics"], rec["weights"]
        metrics, weights = self.trainer(data_yaml, rnd, init_weights, where / "train", seed)
        atomic_write_text(done, json.dumps({"metrics": metrics, "weights": str(weights)}, indent=1))
        return metrics, weights


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------
def loop_steps(rounds: int) -> list[str]:
    """The ordered step names of a loop: ``train0, select0, ..., train<rounds>``."""
    out = []
    for r in range(rounds + 1):
        out.append(f"train{r}")
        if r < rounds:
            out.append(f"select{r}")
    return out


def _next_step(m: PoolManifest, rounds: int) -> str | None:
    cur = m.current
    r = cur["round"]
    if cur["metrics"] is None:
        return f"train{r}"
    if r < rounds:
        return f"select{r}"
    return None


def _check_budget(where: Path, n_pool: int, cfg: LoopConfig) -> None:
    if n_pool == 0:
        raise ManifestError(f"{where}: the pool is empty; give it at least one image")
    need = cfg.initial + cfg.rounds * cfg.budget
    if cfg.initial < 1 or cfg.budget < 1 or cfg.rounds < 0:
        raise ManifestError(f"{where}: need initial >= 1, budget >= 1, rounds >= 0 (got {cfg.initial}, "
                            f"{cfg.budget}, {cfg.rounds})")
    if need > n_pool:
        raise ManifestError(f"{where}: budget larger than the pool: {cfg.initial} initial + {cfg.rounds} rounds x "
                            f"{cfg.budget} = {need} images, but the pool holds {n_pool}")
    if isinstance(cfg.subset, int) and cfg.subset < cfg.budget:
        raise ManifestError(f"{where}: a scored subset of {cfg.subset} images cannot supply a budget of {cfg.budget}")


def run_loop(workdir: str | Path, pool: Sequence[str], val: Sequence[str], names: Sequence[str],
             cfg: LoopConfig, trainer: Callable | None = None, scorer: Callable | None = None,
             strategy: Strategy | None = None, progress: bool = True, log: Callable[[str], None] | None = print,
             on_train: Callable[[int, dict], None] | None = None,
             annotator: SimulatedAnnotator | None = None) -> PoolManifest:
    """Run (or resume) one loop in ``workdir``; returns the final :class:`PoolManifest`.

    ``workdir/manifest.json`` is the state. If it exists the loop resumes from its last completed step
    (its settings must match ``cfg``; a different pool or seed is an error, not a silent restart).
    Source images and labels are only read. ``on_train(round, metrics)`` is called after each round's training
    (e.g. to move a progress bar); ``progress`` shows the scorer's bar per selection step.

    Labels are revealed by ``annotator`` (default a fresh :class:`~labkit.active.pool.SimulatedAnnotator`) for the
    initial set and each selection only: no step of the loop reads an unselected image's labels.
    """
    workdir = Path(workdir)
    mpath = workdir / "manifest.json"
    strategy = strategy or make_strategy(cfg.strategy, how=cfg.how)
    trainer = trainer or UltralyticsTrainer(cfg)
    scorer = scorer or UltralyticsScorer(cfg, progress=progress)
    say = log or (lambda s: None)
    annotator = annotator if annotator is not None else SimulatedAnnotator()

    if mpath.exists():
        m = PoolManifest.load(mpath)
        old = m.data.get("config")
        if old is None:
            raise ManifestError(f"{mpath}: records no loop settings ('config'); it was not made by run_loop, or an "
                                "older labkit was stopped while creating it: start again in a fresh folder")
        diff = {k: (old.get(k), v) for k, v in cfg.identity().items() if old.get(k) != v}
        if diff:
            k, (a, b) = next(iter(diff.items()))
            raise ManifestError(f"{mpath}: made with {k}={a!r}, asked to continue with {k}={b!r}; "
                                "use another folder for other settings")
        if [str(Path(p).resolve()) for p in pool] != m.pool:
            raise ManifestError(f"{mpath}: its pool differs from the pool given now; use another folder")
        say(f"resuming {workdir.name} at {_next_step(m, cfg.rounds) or 'the end (nothing left to do)'}")
    else:
        _check_budget(mpath, len(pool), cfg)
        # settings included in the first (atomic) write: a kill can never leave a manifest without them
        m = PoolManifest.create(mpath, pool, val, names, initial=cfg.initial, seed=cfg.seed, config=cfg.identity(),
                                annotator=annotator)

    while (step := _next_step(m, cfg.rounds)) is not None:
        r = m.current["round"]
        rdir = workdir / f"round{r:02d}"
        if step.startswith("train"):
            data_yaml = write_dataset_yaml(rdir / "data", m.labelled, m.val, m.names)
            init = None
            if cfg.warm_start and r > 0:
                init = m.rounds[r - 1]["weights"]
                if not init or not Path(init).is_file():
                    raise ManifestError(f"{mpath}: warm start needs round {r - 1}'s weights {init!r}, which are missing")
            metrics, weights = trainer(data_yaml, r, init, rdir / "train", cfg.seed * 1000 + r)
            m.set_metrics(metrics, weights)
            if on_train is not None:
                on_train(r, metrics)
            say(f"{workdir.name} round {r}: {len(m.labelled)} images, {m.current['n_boxes']} boxes, "
                f"mAP50 {metrics['map50']:.3f}, mAP50-95 {metrics['map50_95']:.3f}")
        else:
            unl = m.unlabelled
            rng = np.random.default_rng([cfg.seed, r, 1])
            cand_idx = subset_indices(len(unl), cfg.subset, seed=cfg.seed * 1000 + r)
            cand = [unl[i] for i in cand_idx]
            if len(cand) < cfg.budget:
                raise ManifestError(f"{mpath}: round {r}: only {len(cand)} candidates for a budget of {cfg.budget}")
            if isinstance(strategy, Random):
                preds = Predictions(cand, [np.zeros((0, 4))] * len(cand), [np.zeros((0, 1))] * len(cand))
                lab_emb = None
            else:
                extra = m.labelled if strategy.needs_embeddings else []
                committee = []
                if strategy.needs_committee:
                    # members: the current model on flipped images, and the last `committee` rounds' models
                    # (a committee of separately trained yolov8n/s/m, as in the source, costs a training each)
                    committee = [(m.current["weights"], True)] + [
                        (m.rounds[j]["weights"], False) for j in range(max(0, r - cfg.committee), r)]
                allp = scorer(m.current["weights"], cand + list(extra), committee)
                preds = allp.subset(range(len(cand)))
                lab_emb = (allp.embeddings[len(cand):] if strategy.needs_embeddings and allp.embeddings is not None
                           else None)
            picked, scores = strategy.select(preds, cfg.budget, labelled_embeddings=lab_emb, rng=rng)
            sel = [cand[i] for i in picked]
            m.add_round(sel, {c: s for c, s in zip(cand, scores)}, annotator=annotator)
    return m


# ------------------------------------------------------------------------------------------------
# Baseline, experiments, curves
# ------------------------------------------------------------------------------------------------
def train_once(workdir: str | Path, images: Sequence[str], val: Sequence[str], names: Sequence[str],
               cfg: LoopConfig, epochs: int, trainer: Callable | None = None, cache: str = "result.json") -> dict:
    """One training of ``cfg.model`` on ``images`` for ``epochs``, validated on ``val``; cached in
    ``workdir/<cache>``. Returns ``{"images", "boxes", "epochs", "seed", "map50", "map50_95", "weights"}``."""
    workdir = Path(workdir)
    out = workdir / cache
    if out.exists():
        return json.loads(out.read_text())
    c = LoopConfig(**{**asdict(cfg), "epochs": int(epochs)})
    trainer = trainer or UltralyticsTrainer(c)
    data_yaml = write_dataset_yaml(workdir / "data", [str(Path(p).resolve()) for p in images],
                                   [str(Path(p).resolve()) for p in val], names)
    metrics, weights = trainer(data_yaml, 0, None, workdir / "train", cfg.seed * 1000)
    res = {"images": len(images), "boxes": count_boxes(images), "epochs": int(epochs), "seed": cfg.seed, **metrics,
           "weights": str(weights)}
    atomic_write_text(out, json.dumps(res, indent=1))
    return res


def train_full_pool(workdir: str | Path, pool: Sequence[str], val: Sequence[str], names: Sequence[str],
                    cfg: LoopConfig, trainer: Callable | None = None, epochs: int | None = None) -> dict:
    """Train on the whole pool (every image labelled), validate on the same val split; cached in ``full.json``.

    ``epochs`` defaults to the total a warm-started loop's last model has seen, ``epochs * (rounds + 1)``
    (or ``epochs`` without warm start). Starts from ``cfg.model``, like round 0 of the loops.
    """
    ep = epochs or (cfg.epochs * (cfg.rounds + 1) if cfg.warm_start else cfg.epochs)
    return train_once(workdir, pool, val, names, cfg, ep, trainer=trainer, cache="full.json")


def run_experiment(root: str | Path, pool: Sequence[str], val: Sequence[str], names: Sequence[str],
                   strategies: Sequence[str], seeds: Sequence[int], cfg: LoopConfig, full_pool: bool = True,
                   trainer_factory: Callable | None = None, scorer_factory: Callable | None = None,
                   progress: bool = True, log=print, full_pool_seeds: int | None = None) -> dict:
    """Run every strategy with every seed (each its own resumable folder ``root/<strategy>-s<seed>``), plus
    the whole-pool baseline; returns ``{"loops": {strategy: [table per seed]}, "full": [dict per seed], "seeds": [..]}``
    (:func:`experiment_rows` turns it into long rows for :func:`budget_report`).

    Without a ``trainer_factory``, trainings are shared through :class:`SharedTrainer` (``root/trained``): the
    round-0 model of a seed is trained once for all strategies.

    ``full_pool_seeds``: train the whole-pool baseline for the first N seeds only (None: every seed; it costs as
    much as all of one seed's loops together).

    ``progress`` shows one bar over every loop's rounds (the scorer's own bars stay off); ``log`` gets a line per
    round (``None``: silent).
    """
    from tqdm.auto import tqdm

    root = Path(root)
    out = {"loops": {}, "full": []}
    jobs = [(s, seed) for s in strategies for seed in seeds]
    out["seeds"] = [int(x) for x in seeds]
    bar = tqdm(total=len(jobs) * (cfg.rounds + 1), desc="rounds trained", disable=not progress)
    for i, (s, seed) in enumerate(jobs):
        bar.set_postfix_str(f"{s} seed {seed}")
        c = LoopConfig(**{**asdict(cfg), "strategy": s, "seed": int(seed)})
        if trainer_factory:
            trainer = trainer_factory(c)
        else:
            shared = {k: v for k, v in asdict(c).items() if k not in ("strategy", "how", "rounds", "budget",
                                                                       "initial", "seed", "subset", "conf",
                                                                       "committee")}
            trainer = SharedTrainer(UltralyticsTrainer(c), root / "trained", shared)
        m = run_loop(root / f"{s}-s{seed}", pool, val, names, c, trainer=trainer,
                     scorer=scorer_factory(c) if scorer_factory else None, progress=False, log=log,
                     on_train=lambda r, metrics: bar.update(1))
        bar.update((i + 1) * (cfg.rounds + 1) - bar.n)  # rounds a resumed loop had done already
        out["loops"].setdefault(s, []).append(m.table())
    bar.close()
    if full_pool:
        for seed in list(seeds)[:full_pool_seeds]:
            c = LoopConfig(**{**asdict(cfg), "seed": int(seed)})
            out["full"].append(train_full_pool(root / f"full-s{seed}", pool, val, names, c,
                                               trainer=trainer_factory(c) if trainer_factory else None))
    return out


def curves(tables: Sequence[Sequence[dict]], x: str = "images", y: str = "map50") -> dict:
    """Mean and spread over seeds, per round: ``{"x", "x_lo", "x_hi", "y", "y_lo", "y_hi", "y_std"}`` arrays."""
    X = np.array([[row[x] for row in t] for t in tables], dtype=float)
    Y = np.array([[np.nan if row[y] is None else row[y] for row in t] for t in tables], dtype=float)
    return {"x": X.mean(0), "x_lo": X.min(0), "x_hi": X.max(0), "y": np.nanmean(Y, 0), "y_lo": np.nanmin(Y, 0),
            "y_hi": np.nanmax(Y, 0), "y_std": np.nanstd(Y, 0)}


def plot_label_efficiency(result: dict, y: str = "map50", axes=None):
    """mAP against labelled images (left) and labelled boxes (right), one line per strategy (mean over seeds,
    band = min..max over seeds), and the whole-pool model as a horizontal band."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = axes[0].figure
    from labkit.viz import colour

    for ax, x in zip(axes, ("images", "boxes")):
        for i, (s, tables) in enumerate(result["loops"].items()):
            cv = curves(tables, x, y)
            style = dict(color="black", linestyle="--") if s == "random" else dict(color=colour(i))
            ax.plot(cv["x"], cv["y"], marker="o", label=s, **style)
            ax.fill_between(cv["x"], cv["y_lo"], cv["y_hi"], alpha=0.2, color=style["color"])
        full = result.get("full") or []
        if full:
            v = np.array([f[y] for f in full])
            xs = np.mean([f[x] for f in full])
            ax.axhline(v.mean(), color="grey", linestyle=":", label=f"whole pool ({int(xs)} {x})")
            ax.axhspan(v.min(), v.max(), color="grey", alpha=0.15)
        ax.set_xlabel(f"labelled {x}")
        ax.set_ylabel({"map50": "val mAP50", "map50_95": "val mAP50-95"}.get(y, y))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Protocols of the literature, and results as papers report them
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Protocol:
    """A label-budget protocol: ``initial`` labelled images, then ``step`` more per round for ``rounds`` selection
    rounds (``rounds + 1`` training cycles, the budgets a paper's table reports), over ``seeds`` initial splits. ``initial``/``step`` below 1 are fractions of the pool, else image counts. ``published``
    holds the paper's own counts for its pool size (used when the pool has exactly that size: the papers round
    their fractions their own way)."""

    name: str
    initial: float
    step: float
    rounds: int
    seeds: tuple
    data: str
    source: str
    published: dict = field(default_factory=dict)

    def counts(self, n_pool: int) -> tuple[int, int]:
        """``(initial, step)`` in images for a pool of ``n_pool`` images."""
        if self.published and int(n_pool) == self.published["pool"]:
            return self.published["initial"], self.published["step"]

        def n(v):
            return max(1, int(round(v * n_pool))) if v < 1 else int(v)
        return n(self.initial), n(self.step)


PROTOCOLS = {
    "ppal-voc": Protocol(
        "ppal-voc", 0.05, 0.025, 6, (0, 1, 2), "Pascal VOC07+12 trainval pool (16,551 images), VOC07 test for mAP50",
        "PPAL, Yang et al., Plug and Play Active Learning for Object Detection, CVPR 2024 (github ChenhongyiYang/PPAL); "
        "the same protocol as MI-AOD, Yuan et al., CVPR 2021 (github yuantn/MI-AOD): 5% + 2.5% per cycle, 7 cycles "
        "(mAP at 5.0, 7.5, ..., 20.0%: 6 selection rounds), 3 initial splits", {"pool": 16551, "initial": 827, "step": 414}),
    "coco": Protocol(
        "coco", 0.02, 0.02, 4, (0, 1, 2), "COCO train2017 pool (118,287 images), val2017 for mAP50-95",
        "PPAL, Yang et al., CVPR 2024 (github ChenhongyiYang/PPAL): 2% + 2% per cycle, 5 cycles "
        "(mAP50-95 at 2, 4, ..., 10%: 4 selection rounds); 3 seeds here, as for VOC", {"pool": 118287, "initial": 2365, "step": 2365}),
    "cpu-demo": Protocol(
        "cpu-demo", 8, 8, 3, (0, 1, 2), "the synthetic shapes pool of notebook 07 (72 images, 48 val)",
        "this course: the same shape as the papers' protocols (a random start, equal steps, 3 seeds) at a size a "
        "2-core CPU runs in minutes; not comparable with published numbers"),
}


def protocol_plan(name: str, n_pool: int, initial: int = 0, budget: int = 0, rounds: int = 0,
                  seeds: str | Sequence[int] = "") -> dict:
    """The budgets of protocol ``name`` on a pool of ``n_pool`` images; non-zero ``initial``/``budget``/``rounds`` and a
    non-empty ``seeds`` override the preset. Returns ``{"protocol", "initial", "budget", "rounds", "seeds",
    "percent" (labelled % after each round), "source", "data"}``."""
    from labkit.errors import UserError

    if name not in PROTOCOLS:
        raise UserError(f"unknown protocol {name!r}: use one of {', '.join(PROTOCOLS)}")
    pr = PROTOCOLS[name]
    ini, step = pr.counts(n_pool)
    ini, step = int(initial) or ini, int(budget) or step
    rnd = int(rounds) or pr.rounds
    if isinstance(seeds, str):
        seeds = [int(x) for x in seeds.split(",") if x.strip()]
    seeds = list(seeds) or list(pr.seeds)
    if ini + rnd * step > n_pool:
        raise UserError(f"protocol {name}: {ini} + {rnd} x {step} images exceed the pool of {n_pool}")
    return {"protocol": name, "initial": ini, "budget": step, "rounds": rnd, "seeds": seeds,
            "percent": [100.0 * (ini + r * step) / n_pool for r in range(rnd + 1)], "source": pr.source,
            "data": pr.data}


def load_yolo_data(data_yaml: str | Path) -> tuple[list[str], list[str], list[str]]:
    """``(pool, val, names)`` from an Ultralytics data yaml of **your own copy** of a data set (e.g. the ``VOC.yaml``
    or ``coco.yaml`` layout): ``train`` becomes the pool, ``val`` the fixed val split. Entries may be folders of images,
    ``.txt`` lists or lists of either, relative to the yaml's ``path``. Nothing is downloaded: a ``download`` key is
    ignored, and a missing folder is an error naming it."""
    import yaml

    from labkit.errors import UserError

    from .pool import IMG_SUFFIXES

    data_yaml = Path(data_yaml).expanduser()
    if not data_yaml.is_file():
        raise UserError(f"DATA_YAML {data_yaml}: no such file; point it at the data yaml of your own copy")
    d = yaml.safe_load(data_yaml.read_text()) or {}
    root = Path(d.get("path") or data_yaml.parent).expanduser()
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()

    def images(entry) -> list[str]:
        out: list[str] = []
        for e in entry if isinstance(entry, (list, tuple)) else [entry]:
            q = Path(e) if Path(e).is_absolute() else root / e
            if q.is_dir():
                out += sorted(str(f.resolve()) for f in q.rglob("*") if f.suffix.lower() in IMG_SUFFIXES)
            elif q.is_file() and q.suffix == ".txt":
                for line in q.read_text().split():
                    f = Path(line) if Path(line).is_absolute() else root / line
                    out.append(str(f.resolve()))
            else:
                raise UserError(f"{data_yaml}: {e!r} -> {q} is neither a folder of images nor a .txt list "
                                "(nothing is downloaded: point 'path' at your own copy)")
        return out

    if "train" not in d or "val" not in d or "names" not in d:
        raise UserError(f"{data_yaml}: needs 'train', 'val' and 'names'")
    names = d["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    pool, val = images(d["train"]), images(d["val"])
    vs = set(val)
    return [p for p in pool if p not in vs], val, names


def experiment_rows(result: dict, seeds: Sequence[int] | None = None) -> list[dict]:
    """Long rows ``{"strategy", "SEED", "round", "images", "boxes", "map50", "map50_95"}`` from
    :func:`run_experiment`'s result: one row per strategy, seed and round. A sweep over strategies x seeds (one
    notebook run per point) gives the same rows from each point's tables; :func:`budget_report` takes either."""
    seeds = list(seeds if seeds is not None else result.get("seeds") or [])
    rows = []
    for s, tables in result["loops"].items():
        for i, t in enumerate(tables):
            for r in t:
                rows.append({"strategy": s, "SEED": seeds[i] if i < len(seeds) else i, **r})
    return rows


def sweep_rows(folder: str | Path, key: str = "budget_rows") -> list[dict]:
    """The long rows of every finished point of a sweep folder (``labkit sweep 07_active_learning -p STRATEGIES ...
    -p SEEDS ...``: one notebook run per point, each recording ``experiment_rows`` under ``key``), for
    :func:`budget_report`. A row seen in several points (random's loop, which every point runs) is kept once; points
    whose ``run.json`` is missing or not ``ok`` are skipped."""
    seen: dict[tuple, dict] = {}
    for run in sorted(Path(folder).glob("*/run.json")):
        try:
            info = json.loads(run.read_text())
        except (OSError, ValueError):
            continue
        if info.get("status") != "ok":
            continue
        for r in (info.get("records") or {}).get(key) or []:
            seen.setdefault((r["strategy"], r["SEED"], r["round"]), r)
    return list(seen.values())


def _mean_std(values) -> tuple[float | None, float | None, int]:
    """Mean, sample std (ddof=1; None below 2 values) and count: the statistics of ``labkit.sweep.aggregate``."""
    v = [float(x) for x in values if x is not None and np.isfinite(x)]
    if not v:
        return None, None, 0
    m = sum(v) / len(v)
    sd = float(np.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))) if len(v) > 1 else None
    return m, sd, len(v)


def _aggregate(rows: Sequence[dict], by: Sequence[str], values: Sequence[str]) -> list[dict]:
    """Rows grouped by ``by``, each value as ``v_mean``, ``v_std``, ``v_n``, plus ``n``: the format of
    ``labkit.sweep.aggregate`` over seeds (a tool-layer module that topic modules may not import; the tests check the
    two agree)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, members in groups.items():
        row = dict(zip(by, key))
        row["n"] = len(members)
        for v in values:
            m, sd, n = _mean_std([x.get(v) for x in members])
            if n:
                row[f"{v}_mean"], row[f"{v}_std"], row[f"{v}_n"] = m, sd, n
        out.append(row)
    return out


def paired_interval(diffs: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of paired differences with a Student-t confidence interval: ``{"mean", "std", "n", "lo", "hi",
    "per_seed"}``. With fewer than two pairs the interval is unbounded (one seed says nothing about the spread)."""
    from scipy import stats

    d = np.asarray(list(diffs), dtype=float)
    n = len(d)
    if n == 0:
        return {"mean": None, "std": None, "n": 0, "lo": -np.inf, "hi": np.inf, "per_seed": []}
    m = float(d.mean())
    if n < 2:
        return {"mean": m, "std": None, "n": 1, "lo": -np.inf, "hi": np.inf, "per_seed": d.tolist()}
    sd = float(d.std(ddof=1))
    h = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / np.sqrt(n)
    return {"mean": m, "std": sd, "n": n, "lo": m - h, "hi": m + h, "per_seed": d.tolist()}


def _auc(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Area under a budget curve divided by its width: the mean mAP over the budget range (trapezoids)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or not np.isfinite(y).all() or x[-1] <= x[0]:
        return float(y[0]) if len(y) == 1 and np.isfinite(y[0]) else None
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))


def _reach(x, boxes, y, target) -> tuple[float | None, float | None]:
    """First point of the curve (linear between rounds) where ``y`` reaches ``target``: ``(% images, boxes)``."""
    for i in range(len(y)):
        if y[i] is not None and y[i] >= target:
            if i == 0 or y[i - 1] is None:
                return float(x[i]), float(boxes[i])
            f = (target - y[i - 1]) / (y[i] - y[i - 1])
            return float(x[i - 1] + f * (x[i] - x[i - 1])), float(boxes[i - 1] + f * (boxes[i] - boxes[i - 1]))
    return None, None


_LABEL = {"map50": "mAP50", "map50_95": "mAP50-95"}


def budget_report(rows: Sequence[dict], n_pool: int, full: Sequence[dict] | None = None, baseline: str = "random",
                  metric: str = "map50", metrics: Sequence[str] = ("map50", "map50_95"), confidence: float = 0.95,
                  plot: bool = True, axes=None) -> dict:
    """Label-budget results as active-learning papers report them, from long rows (:func:`experiment_rows`, or one
    row per strategy x seed x round from a sweep).

    - **curves**: per strategy and round, % of the pool labelled, labelled boxes and each metric as mean, std (ddof=1)
      and n over seeds (the ``v_mean``/``v_std``/``v_n`` format of ``labkit.sweep.aggregate``);
    - **auc**: per strategy and seed, the area under each metric's curve over the budget range, divided by its width
      (the mean mAP over the budgets);
    - **paired**: per strategy, the difference of its area from ``baseline``'s on the same seed (same initial split),
      with a Student-t ``confidence`` interval over seeds (:func:`paired_interval`);
    - **reach**: labels (% images and boxes) at which the mean curve first reaches 90% and 95% of the full-pool mAP
      (mean of ``full``'s runs), linear between rounds; None when not reached;
    - **table**: one row per strategy with the papers' columns: the ``metric`` at every budget (mean ± std), the area
      under each curve, the paired difference vs ``baseline`` with its interval, and the labels to 90% / 95% of full;
    - **fig**: each metric against % of images labelled (error bars: std over seeds) with labelled boxes on a second
      axis (mean over strategies and seeds at each budget), the full-pool mAP as a dotted line (``plot=False``: None).
    """
    import pandas as pd

    rows = [dict(r) for r in rows]
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    for r in rows:
        r["percent"] = 100.0 * r["images"] / n_pool
    curves = _aggregate(rows, ["strategy", "round"], ["percent", "images", "boxes", *metrics])
    by_s: dict[str, list[dict]] = {s: sorted([c for c in curves if c["strategy"] == s], key=lambda c: c["round"])
                                   for s in strategies}
    auc: dict = {}
    for s in strategies:
        for seed in dict.fromkeys(r["SEED"] for r in rows if r["strategy"] == s):
            t = sorted((r for r in rows if r["strategy"] == s and r["SEED"] == seed), key=lambda r: r["round"])
            auc.setdefault(s, {})[seed] = {m: _auc([r["percent"] for r in t], [np.nan if r[m] is None else r[m]
                                                                                for r in t]) for m in metrics}
    paired: dict = {}
    if baseline in auc:
        for s in strategies:
            if s == baseline:
                continue
            common = [sd for sd in auc[s] if sd in auc[baseline]]
            paired[s] = {m: paired_interval([auc[s][sd][m] - auc[baseline][sd][m] for sd in common
                                             if auc[s][sd][m] is not None and auc[baseline][sd][m] is not None],
                                            confidence) for m in metrics}
    full = list(full or [])
    full_map = {m: _mean_std([f.get(m) for f in full])[0] for m in metrics}
    reach: dict = {}
    for s, cs in by_s.items():
        for frac in (0.90, 0.95):
            for m in metrics:
                tgt = None if full_map[m] is None else frac * full_map[m]
                reach.setdefault(s, {})[(m, frac)] = (None, None) if tgt is None else _reach(
                    [c["percent_mean"] for c in cs], [c["boxes_mean"] for c in cs],
                    [c.get(f"{m}_mean") for c in cs], tgt)

    def ms(c, m):
        if f"{m}_mean" not in c:
            return ""
        sd = c.get(f"{m}_std")
        return f"{c[f'{m}_mean']:.3f} ± {'-' if sd is None else f'{sd:.3f}'}"

    def reach_text(s, m, frac):
        x, b = reach[s][(m, frac)]
        if full_map[m] is None:
            return "n/a (no full-pool run)"
        if x is None:
            return f"> {by_s[s][-1]['percent_mean']:.1f}%"
        return f"{x:.1f}% ({b:.0f} boxes)"

    lab = _LABEL.get(metric, metric)
    table = []
    for s in strategies:
        row = {"strategy": s, "seeds": max(c["n"] for c in by_s[s])}
        for c in by_s[s]:
            row[f"{lab} @ {c['percent_mean']:.1f}%"] = ms(c, metric)
        for m in metrics:
            a = _mean_std([auc[s][sd][m] for sd in auc[s]])
            row[f"AUC {_LABEL.get(m, m)}"] = "" if a[0] is None else (
                f"{a[0]:.3f} ± {'-' if a[1] is None else f'{a[1]:.3f}'}")
        for m in metrics:
            p = paired.get(s, {}).get(m)
            key = f"Δ AUC {_LABEL.get(m, m)} vs {baseline} [{confidence:.0%} CI]"
            row[key] = "—" if p is None else (
                f"{p['mean']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}]" if np.isfinite(p["lo"]) else
                f"{p['mean']:+.3f} [n={p['n']}: no interval]")
        for frac in (0.90, 0.95):
            row[f"labels to {frac:.0%} of full {lab}"] = reach_text(s, metric, frac)
        table.append(row)
    out = {"curves": curves, "auc": auc, "paired": paired, "reach": reach, "full": full_map, "n_pool": n_pool,
           "baseline": baseline, "metric": metric, "confidence": confidence, "strategies": strategies,
           "table": pd.DataFrame(table).set_index("strategy"), "fig": None}
    if plot:
        out["fig"] = _plot_budget(out, metrics, axes)
    return out


def _plot_budget(rep: dict, metrics: Sequence[str], axes=None):
    import matplotlib.pyplot as plt

    from labkit.viz import colour

    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    allc = rep["curves"]
    rounds = sorted({c["round"] for c in allc})
    xs = [float(np.mean([c["percent_mean"] for c in allc if c["round"] == r])) for r in rounds]
    bx = [float(np.mean([c["boxes_mean"] for c in allc if c["round"] == r])) for r in rounds]
    for ax, m in zip(axes, metrics):
        for i, s in enumerate(rep["strategies"]):
            cs = sorted([c for c in allc if c["strategy"] == s and f"{m}_mean" in c], key=lambda c: c["round"])
            style = dict(color="black", linestyle="--") if s == rep["baseline"] else dict(color=colour(i))
            ax.errorbar([c["percent_mean"] for c in cs], [c[f"{m}_mean"] for c in cs],
                        yerr=[c[f"{m}_std"] or 0.0 for c in cs], marker="o", capsize=3,
                        label=f"{s} (n={max(c['n'] for c in cs)})", **style)
        if rep["full"].get(m) is not None:
            ax.axhline(rep["full"][m], color="grey", linestyle=":", label="full pool")
        ax.set_xlabel("% of pool images labelled")
        ax.set_ylabel(f"val {_LABEL.get(m, m)} (mean ± std over seeds)")
        ax.grid(alpha=0.3)
        top = ax.twiny()
        top.set_xlim(ax.get_xlim())
        top.set_xticks(xs)
        top.set_xticklabels([f"{b:.0f}" for b in bx], fontsize=8)
        top.set_xlabel("labelled boxes (mean over strategies and seeds)", fontsize=8)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def budget_verdict(report: dict, metric: str | None = None) -> tuple[str, bool, str]:
    """``(claim, ok, detail)``: no strategy beats the baseline beyond the confidence interval of its paired difference
    in area under the budget curve (``metric``, default the report's). ``ok`` is False as soon as one strategy's whole
    interval lies above zero; the detail gives every strategy's mean difference and interval."""
    metric = metric or report["metric"]
    ahead = [s for s, p in report["paired"].items() if p[metric]["n"] >= 2 and p[metric]["lo"] > 0]
    parts = []
    for s, p in report["paired"].items():
        q = p[metric]
        iv = f"[{q['lo']:+.3f}, {q['hi']:+.3f}]" if np.isfinite(q["lo"]) else "[no interval]"
        parts.append(f"{s} {q['mean']:+.3f} {iv}" if q["mean"] is not None else f"{s} no pairs")
    n = max((p[metric]["n"] for p in report["paired"].values()), default=0)
    claim = f"no strategy beats {report['baseline']} on the area under the budget curve beyond the interval over seeds"
    return (claim, not ahead, f"paired {_LABEL.get(metric, metric)} area vs {report['baseline']}, "
            f"{report['confidence']:.0%} CI over {n} seeds: " + "; ".join(parts))
