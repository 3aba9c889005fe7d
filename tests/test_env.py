"""labkit.env: platform, device, seeds, paths, offline handling, doctor."""
from __future__ import annotations

import random
import socket
import time

import numpy as np
import pytest
import torch

from labkit import env


def test_platform_detection(monkeypatch):
    for k in ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "COLAB_RELEASE_TAG", "COLAB_GPU"):
        monkeypatch.delenv(k, raising=False)
    assert env.platform() == "local"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert env.platform() == "kaggle"
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-x")
    assert env.platform() == "colab"
    assert "Runtime" in env.gpu_hint("colab") and "Accelerator" in env.gpu_hint("kaggle")


def test_select_device_cpu_and_missing_gpu(monkeypatch, capsys):
    monkeypatch.delenv("DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert env.select_device("cpu") == "cpu"
    assert env.select_device("auto") in ("cpu", "mps")
    assert env.select_device("cuda") == "cpu"
    assert "asked for a GPU, but none is available" in capsys.readouterr().out
    assert env.select_device("0") == "cpu"
    monkeypatch.setenv("DEVICE", "cpu")
    assert env.select_device("auto") == "cpu"
    with pytest.raises(ValueError, match="unknown DEVICE"):
        env.select_device("tpu9")


def test_select_device_gpu_list_means_the_first_gpu_here(monkeypatch, capsys):
    """DEVICE "0,1" (DDP training in a subprocess): this process uses the first GPU listed; without CUDA, the CPU
    with the usual message. Catches: the list rejected as an unknown DEVICE (07 could not start with "0,1"), the
    last GPU taken, the list handed on as a torch device string."""
    monkeypatch.delenv("DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert env.select_device("2,3") == "cuda:2" and env.select_device(" 0, 1 ") == "cuda:0"
    assert "DDP in a subprocess" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert env.select_device("0,1") == "cpu"
    assert "none is available" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown DEVICE"):
        env.select_device("0,x")


def test_ultralytics_device_names():
    assert env.ultralytics_device("cuda") == "0"
    assert env.ultralytics_device("cuda:1") == "1"
    assert env.ultralytics_device("cpu") == "cpu"


def test_seed_everything_reproduces_python_numpy_torch_tf():
    import tensorflow as tf  # imported first, as notebooks do, so seed_everything seeds it

    def draw():
        return (random.random(), np.random.rand(), torch.rand(1).item(), float(tf.random.uniform(())))

    env.seed_everything(123)
    a = draw()
    env.seed_everything(123)
    b = draw()
    env.seed_everything(124)
    c = draw()
    assert a == b
    assert all(x != y for x, y in zip(a, c))


def test_paths_follow_labkit_home(labkit_home):
    p = env.paths()
    assert p.home == labkit_home.resolve()
    assert p.data == p.home / "data" and p.runs == p.home / "runs"
    assert p.data.is_dir() and p.runs.is_dir()


def test_is_online_forced_offline(monkeypatch):
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    assert env.is_online() is False


def test_is_online_never_hangs(monkeypatch):
    """A network that never answers (black-holed) must give 'offline' after the timeout, not hang."""
    monkeypatch.delenv("LABKIT_OFFLINE", raising=False)

    def hang(*a, **k):
        time.sleep(30)
        raise socket.timeout("black hole")

    monkeypatch.setattr(socket, "create_connection", hang)
    t0 = time.perf_counter()
    assert env.is_online(timeout=0.5, refresh=True) is False
    assert time.perf_counter() - t0 < 5  # a hang guard, not a speed test
    env.is_online(refresh=True)  # restore the real cached answer for other tests


def test_fonts_are_local_for_ultralytics():
    env.configure_offline()
    from ultralytics.utils.checks import check_font

    f = check_font("Arial.ttf")
    assert f is not None and str(f).endswith("Arial.ttf")
    assert check_font("Arial.Unicode.ttf") is not None


def test_yolo_model_offline_falls_back_to_yaml(monkeypatch, capsys, labkit_home):
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    monkeypatch.chdir(labkit_home)
    m = env.yolo_model("yolov8n.pt")
    out = capsys.readouterr().out
    notice = [line for line in out.splitlines() if line.startswith("labkit:")]
    assert len(notice) == 1 and "yolov8n.pt not available (offline)" in notice[0] and "yolov8n.yaml" in notice[0]
    # the same architecture: YOLOv8n with 80 classes has 3,157,200 parameters (unfused)
    assert sum(p.numel() for p in m.model.parameters()) == 3_157_200


def test_yolo_model_uses_local_weights(monkeypatch, capsys, labkit_home, tmp_path):
    monkeypatch.setenv("LABKIT_OFFLINE", "1")
    from ultralytics import YOLO

    src = YOLO("yolov8n.yaml")
    w = labkit_home / "weights"
    w.mkdir()
    src.save(str(w / "yolov8n.pt"))
    m = env.yolo_model("yolov8n.pt")
    assert "not available" not in capsys.readouterr().out
    assert sum(p.numel() for p in m.model.parameters()) == 3_157_200


def test_doctor_reports(capsys, labkit_home):
    info = env.doctor()
    out = capsys.readouterr().out
    for key in ("python", "torch", "ultralytics", "tensorflow", "torch_device", "online", "LABKIT_HOME", "plot_fonts"):
        assert key in info and key in out
    assert info["LABKIT_HOME"] == str(labkit_home.resolve())
    assert "labkit" in env.banner() and "device" in env.banner()
