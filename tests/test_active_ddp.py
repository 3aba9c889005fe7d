"""Notebook 07 on several GPUs, tested without GPUs: with ``device="0,1"`` every round of the active-learning loop
trains through ``labkit.ddp_launch`` in a subprocess (launcher replaced by a fake here), then validates and scores the
pool in the kernel on the first GPU; one device trains in the kernel exactly as before."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from labkit import ddp_launch as dl
from labkit import env
from labkit.active import loop as L
from labkit.active.loop import LoopConfig, UltralyticsScorer, UltralyticsTrainer, run_loop
from labkit.active.strategies import Predictions


def _files(root: Path, n: int) -> list[str]:
    img_dir, lab_dir = root / "images" / "train", root / "labels" / "train"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    out = []
    for i in range(n):
        (img_dir / f"im{i:03d}.jpg").write_bytes(b"fake image")
        (lab_dir / f"im{i:03d}.txt").write_text("0 0.5 0.5 0.1 0.1\n" * (i % 3))
        out.append(str(img_dir / f"im{i:03d}.jpg"))
    return out


class FakeYOLO:
    """Stands in for ``ultralytics.YOLO`` in the kernel: records validations, refuses to train."""

    vals: list = []
    loaded: list = []

    def __init__(self, path):
        FakeYOLO.loaded.append(str(path))

    def add_callback(self, *a):
        pass

    def train(self, **kw):
        raise AssertionError("a multi-GPU round must not train in the kernel")

    def val(self, **kw):
        FakeYOLO.vals.append(kw)
        m = len(FakeYOLO.vals) / 10
        return type("M", (), {"box": type("B", (), {"map50": m, "map50_95": m / 2, "map": m / 2})()})()


@pytest.fixture
def gpus(tmp_path, monkeypatch):
    """A fake DDP launcher that writes the round's last.pt where Ultralytics would, a fake in-kernel YOLO and a fake
    scorer backend; building a model in the kernel or looking for downloadable weights fails the test."""
    import ultralytics

    launches, scored = [], []

    def fake_train(model, train_kwargs, workdir=None, target=dl.DEFAULT_TARGET, stream=True, extra=None, env=None):
        json.dumps({"model": model, "train_kwargs": train_kwargs, **(extra or {})})  # the spec must be plain JSON
        launches.append({"model": model, "kwargs": dict(train_kwargs), "workdir": Path(workdir),
                         "extra": extra, "env": dl.child_env({**os.environ, **(env or {})})})
        out = Path(train_kwargs["project"]) / train_kwargs["name"]
        (out / "weights").mkdir(parents=True, exist_ok=True)
        (out / "weights" / "last.pt").write_text(f"trained from {model}")
        return {"save_dir": str(out), "metrics": {}}

    def fake_predict_pool(weights, paths, embed=False, desc=None, flip=False, **kw):
        scored.append({"weights": weights, "device": kw["device"], "flip": flip})
        rng = np.random.default_rng(len(scored))
        probs = [rng.uniform(size=(1, 1)) for _ in paths]
        return Predictions(list(paths), [np.array([[0, 0, 8, 8.0]]) for _ in paths], probs,
                           rng.normal(size=(len(paths), 4)) if embed else None)

    def no_kernel_model(*a, **k):
        raise AssertionError("a multi-GPU round must not build its model in the kernel")

    FakeYOLO.vals, FakeYOLO.loaded = [], []
    monkeypatch.setattr(dl, "train", fake_train)
    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    monkeypatch.setattr(L, "predict_pool", fake_predict_pool)
    monkeypatch.setattr(env, "yolo_model", no_kernel_model)
    monkeypatch.setattr(env, "_find_local_weights", lambda name: None)  # no local yolov8n.pt: nothing to download
    monkeypatch.setattr(env, "is_online", lambda: True)  # even online, the child must not be handed a .pt name
    return launches, scored


@pytest.mark.parametrize("strategy", ["least_confidence", "qbc"])
def test_loop_on_several_gpus_trains_each_round_in_a_subprocess(tmp_path, gpus, strategy):
    """Each round goes through ddp_launch.train with device "0,1" into the round's folder; validation of its last.pt
    and every scoring pass (committee members included) get the single device cuda:0; the manifest records the
    in-kernel validation's metrics and the subprocess's weights.

    Catches: training in the kernel (FakeYOLO.train / env.yolo_model raise), "0,1" handed to the scorer or to the
    validation, the spec written inside the save folder that Ultralytics empties before a DDP launch, round r not
    warm-started from round r-1's last.pt, a ".pt" name the child would download, the label-cache trainer class or
    the TensorBoard callback not passed on, the child not loading weights safely (ULTRALYTICS_SAFE_LOAD) or printing
    Ultralytics' per-epoch logs (YOLO_VERBOSE)."""
    launches, scored = gpus
    pool, val = _files(tmp_path / "pool", 12), _files(tmp_path / "val", 3)
    cfg = LoopConfig(strategy=strategy, rounds=2, budget=2, initial=3, epochs=1, device="0,1", seed=5,
                     train_kwargs={"lr0": 0.01})
    m = run_loop(tmp_path / "work", pool, val, ["shape"], cfg, progress=False, log=None)

    assert len(launches) == cfg.rounds + 1
    for r, (launch, rnd) in enumerate(zip(launches, m.rounds)):
        kw, rdir = launch["kwargs"], tmp_path / "work" / f"round{r:02d}"
        out_dir = Path(kw["project"]) / kw["name"]
        assert kw["device"] == "0,1" and kw["data"] == str(rdir / "data" / "data.yaml") and out_dir == rdir / "train"
        assert kw["epochs"] == 1 and kw["seed"] == cfg.seed * 1000 + r and kw["lr0"] == 0.01 and kw["val"] is False
        assert out_dir not in launch["workdir"].parents and launch["workdir"] != out_dir
        assert launch["model"] == ("yolov8n.yaml" if r == 0 else m.rounds[r - 1]["weights"])
        assert launch["extra"]["trainer"] == "labkit.active.ddp:WorkCacheTrainer"
        assert launch["extra"]["callbacks"] == {"on_pretrain_routine_start": ["labkit.active.loop:_drop_tensorboard"]}
        assert launch["env"]["ULTRALYTICS_SAFE_LOAD"] == "1" and launch["env"]["MPLBACKEND"] == "Agg"
        assert launch["env"]["YOLO_VERBOSE"] == "False"  # as quiet as a round trained in the kernel
        assert rnd["weights"] == str(out_dir / "weights" / "last.pt")
        assert rnd["metrics"] == {"map50": (r + 1) / 10, "map50_95": (r + 1) / 20}
    assert [v["device"] for v in FakeYOLO.vals] == ["0"] * (cfg.rounds + 1)
    assert [v["data"] for v in FakeYOLO.vals] == [launch["kwargs"]["data"] for launch in launches]
    assert FakeYOLO.loaded == [r["weights"] for r in m.rounds]
    assert scored and {s["device"] for s in scored} == {"cuda:0"}
    if strategy == "qbc":
        assert any(s["flip"] for s in scored) and len({s["weights"] for s in scored}) > 1


def test_one_device_trains_in_the_kernel_as_before(tmp_path, gpus, monkeypatch):
    """DEVICE "cpu" or "cuda:1": no subprocess, Ultralytics' device form, and the scorer gets the device unchanged.
    Catches: every device sent to the subprocess, the single-device path changed."""
    launches, scored = gpus
    trained = []

    class KernelYOLO(FakeYOLO):
        def __init__(self, path):
            super().__init__(path)
            self.trainer = type("T", (), {"last": "w/last.pt"})()

        def train(self, **kw):
            trained.append(kw)
            return type("M", (), {"box": type("B", (), {"map50": 0.3, "map": 0.1})()})()

    import ultralytics

    monkeypatch.setattr(ultralytics, "YOLO", KernelYOLO)
    for device, want in (("cpu", "cpu"), ("cuda:1", "1")):
        cfg = LoopConfig(device=device)
        data = tmp_path / device.replace(":", "") / "data.yaml"
        data.parent.mkdir()
        data.write_text("path: .\n")
        metrics, weights = UltralyticsTrainer(cfg)(data, 1, str(tmp_path / "start.pt"), data.parent / "train", 3)
        assert metrics == {"map50": 0.3, "map50_95": 0.1} and weights == "w/last.pt"
        assert trained[-1]["device"] == want and trained[-1]["save"] is False
        UltralyticsScorer(cfg, progress=False)("w.pt", ["a.jpg"])
        assert scored[-1]["device"] == device
    assert launches == [] and FakeYOLO.vals == []


def test_ddp_workers_build_datasets_with_caches_in_the_work_folder(tmp_path):
    """The trainer class the DDP workers unpickle (by reference) builds datasets with label caches in
    ``<data yaml folder>/label_cache``, none beside the user's labels. Catches: caches_in applied only in the kernel
    (Ultralytics' workers are other processes), a trainer class pickled by value or not importable."""
    import cloudpickle
    import yaml

    from labkit.active.ddp import TRAINER, WorkCacheTrainer
    from labkit.data.synthetic import make_shapes

    assert dl._resolve(TRAINER) is WorkCacheTrainer
    assert pickle.loads(cloudpickle.dumps(WorkCacheTrainer)) is WorkCacheTrainer
    src = make_shapes(n_train=4, n_val=0, imgsz=64, n_classes=1, max_objects=2, seed=1, root=tmp_path / "src")
    images = [str(p) for p in src.images("train")]
    work = tmp_path / "work" / "round00" / "data"
    work.mkdir(parents=True)
    (work / "train.txt").write_text("\n".join(images) + "\n")
    (work / "data.yaml").write_text(yaml.safe_dump({"path": str(work), "train": "train.txt", "val": "train.txt",
                                                    "names": {0: "shape"}}))
    t = WorkCacheTrainer(overrides=dict(model="yolov8n.yaml", data=str(work / "data.yaml"), imgsz=64, device="cpu",
                                        project=str(tmp_path / "runs"), name="t", exist_ok=True, verbose=False))
    t.model = t.get_model(cfg="yolov8n.yaml", verbose=False)
    ds = t.build_dataset(str(work / "train.txt"), mode="train", batch=2)
    assert len(ds) == 4
    assert list((work / "label_cache").glob("*.cache"))
    assert not list(Path(images[0]).parents[2].rglob("*.cache"))
