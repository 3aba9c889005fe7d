"""labkit.ddp_launch: multi-GPU training in a subprocess (tested without GPUs: the decision, command, env, and
a real round trip through the child process with a fake trainer)."""
from __future__ import annotations

import json
import sys

import pytest

from labkit import ddp_launch as dl


@pytest.mark.parametrize("device,want", [("0,1", True), ([0, 1], True), ("0, 1, 2", True), ("0", False),
                                         ("cpu", False), (None, False), ("", False), ("mps", False), ([3], False)])
def test_needs_subprocess_only_for_several_gpus(device, want):
    """Catches: a single GPU or 'cpu' sent to a subprocess, a list of GPUs not recognised."""
    assert dl.needs_subprocess(device) is want


def test_command_and_env():
    """Catches: the kernel's inline Matplotlib backend leaking into the child, CUDA_VISIBLE_DEVICES dropped."""
    assert dl.command("/x/spec.json") == [sys.executable, "-m", "labkit.ddp_launch", "/x/spec.json"]
    env = dl.child_env({"MPLBACKEND": "module://matplotlib_inline.backend_inline", "CUDA_VISIBLE_DEVICES": "0,1",
                        "LABKIT_RUN_DIR": "/r"})
    assert env["MPLBACKEND"] == "Agg" and env["PYTHONUNBUFFERED"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["LABKIT_RUN_DIR"] == "/r"


def test_train_round_trip_through_child(tmp_path, monkeypatch, capsys):
    """A fake trainer in a child process gets the model and kwargs, its output is streamed, its result returned;
    a failing child raises with its last lines. Catches: kwargs not passed, result not read, failures swallowed."""
    (tmp_path / "faketrainer.py").write_text(
        "import os\n"
        "def fit(model, train_kwargs):\n"
        "    print('training', model, train_kwargs['device'])\n"
        "    if train_kwargs.get('boom'): raise ValueError('boom in child')\n"
        "    return {'save_dir': 'runs/x', 'metrics': {'mAP50': 0.5}, 'backend': os.environ['MPLBACKEND']}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    out = dl.train("yolov8n.yaml", {"device": "0,1", "epochs": 1}, workdir=tmp_path / "w", target="faketrainer:fit")
    assert out == {"save_dir": "runs/x", "metrics": {"mAP50": 0.5}, "backend": "Agg"}
    assert "training yolov8n.yaml 0,1" in capsys.readouterr().out
    assert json.loads((tmp_path / "w" / "spec.json").read_text())["kwargs"]["train_kwargs"]["epochs"] == 1
    with pytest.raises(RuntimeError, match="boom in child"):
        dl.train("m", {"device": "0,1", "boom": True}, workdir=tmp_path / "w2", target="faketrainer:fit", stream=False)
    with pytest.raises(dl.UserError, match="plain values"):
        dl.write_spec(tmp_path / "w3", {"x": object()})


def test_finetune_train_uses_the_subprocess_for_several_gpus(tmp_path, monkeypatch, capsys):
    """labkit.finetune.train with DEVICE "0,1" hands the whole Ultralytics call to ddp_launch.train (never building the
    model in the kernel) and returns its metrics; one device trains in the kernel. Catches: the multi-GPU path not
    wired (Ultralytics' DDP would then try to relaunch the notebook), a .pt name the child would download."""
    from labkit import env, finetune
    from labkit.finetune import training

    calls = []
    monkeypatch.setattr(dl, "train", lambda model, kwargs, workdir=None: calls.append((model, kwargs, workdir))
                        or {"save_dir": kwargs["project"], "metrics": {"metrics/mAP50(B)": 0.5}})
    monkeypatch.setattr(training, "parse_device", lambda device, verbose=True: str(device))
    monkeypatch.setattr(training, "enable_tensorboard", lambda on=True, verbose=True: False)

    def no_kernel_model(*a, **k):
        raise AssertionError("the model must not be built in the kernel for DDP")

    monkeypatch.setattr(env, "yolo_model", no_kernel_model)
    monkeypatch.setattr(env, "_find_local_weights", lambda name: None)
    data = tmp_path / "data.yaml"
    data.write_text("path: .\n")
    run = finetune.train(data, model="yolov8n.pt", name="stage1", epochs=2, device="0,1", run_root=tmp_path, nbs=4)
    (model, kwargs, workdir), = calls
    assert model == "yolov8n.yaml"  # no local weights: the child builds the architecture, never downloads
    assert kwargs["device"] == "0,1" and kwargs["data"] == str(data) and kwargs["epochs"] == 2 and kwargs["nbs"] == 4
    assert kwargs["name"] == "stage1" and run.dir == tmp_path.joinpath(kwargs["project"], "stage1")
    assert run.final == {"metrics/mAP50(B)": 0.5} and "DDP in a subprocess" in capsys.readouterr().out
    json.dumps(kwargs)  # the spec must be plain JSON
    best = tmp_path / "best.pt"
    best.write_bytes(b"")
    finetune.train(data, model=best, device="0,1", run_root=tmp_path)
    assert calls[-1][0] == str(best)
    with pytest.raises(AssertionError, match="must not be built"):  # one device: the kernel path, as before
        finetune.train(data, model="yolov8n.pt", device="0", run_root=tmp_path)


@pytest.mark.parametrize("device,want", [("0,1", "cuda:0"), ("2, 3", "cuda:2"), ([1, 0], "cuda:1"), ("cpu", "cpu"),
                                         ("cuda:1", "cuda:1"), ("mps", "mps")])
def test_first_device_is_the_one_device_for_the_kernel(device, want):
    """Catches: "0,1" handed to in-kernel validation/prediction, the first GPU listed ignored, one device changed."""
    assert dl.first_device(device) == want


def test_child_model_never_hands_the_child_a_name_to_download(tmp_path, monkeypatch, capsys):
    """A .pt name without a local file becomes its yaml (with a notice); a local file, a path or a yaml pass through.
    Catches: the child given "yolov8n.pt", which Ultralytics would download."""
    from labkit import env

    monkeypatch.setattr(env, "_find_local_weights", lambda name: None)
    assert dl.child_model("yolov8s.pt") == "yolov8s.yaml" and "not available locally" in capsys.readouterr().out
    assert dl.child_model("yolov8n.yaml") == "yolov8n.yaml"
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"")
    assert dl.child_model(str(ckpt)) == str(ckpt) and dl.child_model(ckpt) == str(ckpt)
    monkeypatch.setattr(env, "_find_local_weights", lambda name: tmp_path / name)
    assert dl.child_model("yolov8n.pt") == str(tmp_path / "yolov8n.pt")


def test_ultralytics_train_hands_trainer_class_and_callbacks_to_ultralytics(monkeypatch):
    """The names in the spec become the trainer class and callbacks of YOLO.train (Ultralytics pickles both into its
    DDP workers). Catches: callbacks or trainer dropped in the child, names not resolved."""
    import ultralytics

    seen = {}

    class FakeYOLO:
        def __init__(self, model):
            seen["model"], seen["callbacks"] = model, []
            self.trainer = type("T", (), {"save_dir": "runs/x", "metrics": {"mAP50": 0.5, "note": "text"}})()

        def add_callback(self, event, fn):
            seen["callbacks"].append((event, fn))

        def train(self, **kw):
            seen["train"] = kw

    monkeypatch.setattr(ultralytics, "YOLO", FakeYOLO)
    out = dl.ultralytics_train("m.pt", {"device": "0,1"}, callbacks={"on_train_end": ["json:dumps"]},
                               trainer="json:JSONDecoder")
    assert out == {"save_dir": "runs/x", "metrics": {"mAP50": 0.5}}
    assert seen["callbacks"] == [("on_train_end", json.dumps)]
    assert seen["train"] == {"device": "0,1", "trainer": json.JSONDecoder}
    dl.ultralytics_train("m.pt", {"device": "0,1"})
    assert seen["train"] == {"device": "0,1"} and seen["callbacks"] == []


def test_train_passes_extra_arguments_and_environment_to_the_child(tmp_path, monkeypatch):
    """Catches: ``extra`` not written into the spec's kwargs, ``env`` not given to the child (or replacing the rest
    of its environment)."""
    (tmp_path / "faketrainer2.py").write_text(
        "import os\n"
        "def fit(model, train_kwargs, trainer=None):\n"
        "    return {'trainer': trainer, 'model': model, 'quiet': os.environ['YOLO_VERBOSE'],\n"
        "            'kept': os.environ['LABKIT_X'], 'backend': os.environ['MPLBACKEND']}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("LABKIT_X", "kept")
    out = dl.train("m", {"device": "0,1"}, workdir=tmp_path / "w", target="faketrainer2:fit", stream=False,
                   extra={"trainer": "pkg:Cls"}, env={"YOLO_VERBOSE": "False"})
    assert out == {"trainer": "pkg:Cls", "model": "m", "quiet": "False", "kept": "kept", "backend": "Agg"}
