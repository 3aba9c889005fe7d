"""labkit never rewrites the user's global Ultralytics settings file (issue 14 #14): its settings (analytics off,
TensorBoard on/off) apply to this process only.

Mutation caught: ``SETTINGS.update(...)`` (which saves the JSON file) instead of an in-memory update, in
``env.configure_offline`` or in ``finetune.enable_tensorboard``.
"""
from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from ultralytics.utils import SETTINGS

    f = tmp_path / "settings.json"  # where a save would land; it must never appear
    monkeypatch.setattr(SETTINGS, "file_path", f)
    saved = dict(SETTINGS)
    yield SETTINGS, f
    dict.clear(SETTINGS)
    dict.update(SETTINGS, saved)


def test_configure_offline_changes_settings_in_memory_only(settings, monkeypatch):
    from labkit import env

    S, f = settings
    dict.update(S, {"sync": True, "wandb": True})
    monkeypatch.setattr(env, "_CONFIGURED", False)
    env.configure_offline(force=True)
    assert S["sync"] is False and S["wandb"] is False  # this process's trainers see them
    assert not f.exists()


def test_enable_tensorboard_changes_settings_in_memory_only(settings):
    from labkit import finetune

    S, f = settings
    dict.update(S, {"tensorboard": True})
    assert finetune.enable_tensorboard(False, verbose=False) is False
    assert S["tensorboard"] is False
    if importlib.util.find_spec("tensorboard") is not None:
        assert finetune.enable_tensorboard(True, verbose=False) is True and S["tensorboard"] is True
    assert not f.exists()
