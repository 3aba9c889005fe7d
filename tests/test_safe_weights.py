"""Untrusted weights cannot run code (issue 14 #9): every path that loads a ``.pt`` refuses a malicious pickle by
default, names the file and the opt-in; the opt-in is explicit (and then the payload really runs, which shows the
test file is a real attack, not a file that fails for another reason).

Mutations these tests catch: ``labkit.weights.install`` not called (Ultralytics' default unpickles anything), the
guard loading with ``safe_only=False``, a load site that bypasses the guard (``yolo_model``, ``finetune.train``,
``predict_quads``, ``predict_pool``, the loop's warm start), and a trust flag that is on by default.
"""
from __future__ import annotations

import json

import pytest
import torch

from labkit import weights as W


class _Payload:
    """Unpickling this opens (creates) a marker file: the stand-in for 'runs a shell command'."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Payload(marker), "train_args": {}}, path)
    return path


@pytest.fixture
def evil(tmp_path, monkeypatch):
    monkeypatch.delenv(W.TRUST_ENV, raising=False)
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    return _evil(tmp_path / "weights" / "yolov8n.pt", marker), marker


def _refused(excinfo, path):
    msg = str(excinfo.value)
    assert str(path.resolve()) in msg and f"{W.TRUST_ENV}=1" in msg and "trust_weights=True" in msg
    assert "\n" not in msg  # one line


def test_yolo_model_refuses_by_default_and_opt_in_is_explicit(evil):
    from labkit import env

    path, marker = evil
    with pytest.raises(W.UntrustedWeightsError) as e:
        env.yolo_model("yolov8n.pt")  # found in <LABKIT_HOME>/weights, as the README tells users to do
    _refused(e, path)
    assert not marker.exists()
    # the explicit opt-in runs Ultralytics' plain load, so the payload runs (then the load fails: no model)
    with pytest.raises(Exception):
        env.yolo_model("yolov8n.pt", trust_weights=True)
    assert marker.exists()


def test_env_opt_in(evil, monkeypatch):
    from labkit import env

    path, marker = evil
    monkeypatch.setenv(W.TRUST_ENV, "1")
    with pytest.raises(Exception) as e:
        env.yolo_model(str(path))
    assert not isinstance(e.value, W.UntrustedWeightsError) and marker.exists()


def test_every_load_site_refuses(evil, tmp_path):
    from labkit import finetune
    from labkit.active.scoring import predict_pool

    path, marker = evil
    img = tmp_path / "a.png"
    img.write_bytes(b"")
    for call in (lambda: finetune.train(tmp_path / "data.yaml", model=path, run_root=tmp_path / "runs"),
                 lambda: finetune.train(tmp_path / "data.yaml", model=str(path), run_root=tmp_path / "runs"),
                 lambda: finetune.predict_quads(path, [img]),
                 lambda: predict_pool(str(path), [str(img)], progress=False)):
        with pytest.raises(W.UntrustedWeightsError) as e:
            call()
        _refused(e, path)
    assert not marker.exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.csv"))


def test_loop_warm_start_from_manifest_path_refuses(evil, tmp_path):
    """A manifest.json whose round-0 weights point at a malicious file: resuming refuses to load it."""
    from labkit.active.loop import LoopConfig, run_loop

    path, marker = evil
    (tmp_path / "ds" / "images").mkdir(parents=True)
    pool = []
    for i in range(6):
        p = tmp_path / "ds" / "images" / f"{i}.png"
        p.write_bytes(b"x")
        pool.append(str(p))
    val = [pool.pop()]
    cfg = LoopConfig(strategy="random", rounds=1, budget=2, initial=2, epochs=1, imgsz=32, model="yolov8n.yaml")

    def fake_trainer(data_yaml, rnd, init, out_dir, seed):
        return {"map50": 0.0, "map50_95": 0.0}, str(path)  # what a tampered manifest would record

    work = tmp_path / "work"
    with pytest.raises(RuntimeError, match="stop"):
        def stop(*a):
            if a[1] == 1:
                raise RuntimeError("stop")
            return fake_trainer(*a)
        run_loop(work, pool, val, ["a"], cfg, trainer=stop, log=None)
    assert json.loads((work / "manifest.json").read_text())["rounds"][0]["weights"] == str(path)
    with pytest.raises(W.UntrustedWeightsError) as e:  # the real trainer warm-starts from round 0's weights
        run_loop(work, pool, val, ["a"], cfg, progress=False, log=None)
    _refused(e, path)
    assert not marker.exists()


def test_real_checkpoints_still_load_safely(tmp_path, monkeypatch):
    from ultralytics import YOLO

    from labkit import env

    monkeypatch.delenv(W.TRUST_ENV, raising=False)
    w = tmp_path / "mine.pt"
    YOLO("yolov8n.yaml").save(str(w))
    m = env.yolo_model(str(w), verbose=False)
    assert sum(p.numel() for p in m.model.parameters()) > 1e6


def test_torch_without_restricted_loading_is_refused(tmp_path, monkeypatch):
    from ultralytics import YOLO
    from ultralytics.nn import tasks

    from labkit import env

    monkeypatch.delenv(W.TRUST_ENV, raising=False)
    w = tmp_path / "mine.pt"
    YOLO("yolov8n.yaml").save(str(w))
    env.configure_offline()
    monkeypatch.setattr(tasks._SafeLoad, "SUPPORTED", False)  # Ultralytics would fall back to a full unpickle
    with pytest.raises(W.UntrustedWeightsError, match="cannot restrict unpickling"):
        env.yolo_model(str(w), verbose=False)
    with W.trusted():
        assert env.yolo_model(str(w), verbose=False) is not None


def test_direct_yolo_call_after_setup_is_restricted_too(tmp_path, monkeypatch):
    """A notebook that calls ``YOLO("x.pt")`` itself after ``labkit.env.setup`` (fresh process: Ultralytics imported
    after labkit's setup, as in every notebook). Catches: protection that covers only labkit's own load sites."""
    import subprocess
    import sys

    monkeypatch.delenv(W.TRUST_ENV, raising=False)
    monkeypatch.delenv("ULTRALYTICS_SAFE_LOAD", raising=False)
    marker = tmp_path / "PWNED"
    path = _evil(tmp_path / "x.pt", marker)
    code = ("import labkit, sys\nlabkit.env.configure_offline(force=True)\nfrom ultralytics import YOLO\n"
            f"try:\n    YOLO({str(path)!r})\nexcept Exception as e:\n    print('refused', type(e).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "refused" in out.stdout, out.stderr[-2000:]
    assert not marker.exists()
