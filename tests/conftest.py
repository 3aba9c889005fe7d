"""Shared fixtures: tiny notebooks for runner tests, isolated LABKIT_HOME."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Loading libtriton (PyTorch loads it lazily, e.g. on a first torch.optim step) after TensorFlow segfaults on an
# LLVM symbol clash; tests mix both in one process, so load it first (see labkit.env.import_keras).
try:
    import triton  # noqa: F401
except Exception:
    pass

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def labkit_home(tmp_path, monkeypatch):
    """A fresh LABKIT_HOME so tests never touch the repository's data/ and runs/."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LABKIT_HOME", str(home))
    monkeypatch.delenv("LABKIT_RUN_DIR", raising=False)
    return home


@pytest.fixture
def tiny_notebooks(tmp_path, monkeypatch, labkit_home):
    """A notebooks/ folder with a tiny parameterized notebook (and a failing one) for runner tests."""
    import nbformat
    from nbformat import v4

    folder = tmp_path / "notebooks"
    (folder / "profiles").mkdir(parents=True)

    def make(name, code):
        nb = v4.new_notebook()
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        p = v4.new_code_cell("X = 1\nNAME = 'a'\nSEED = 0")
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, v4.new_code_cell(code)]
        nbformat.write(nb, str(folder / name))

    make("90_tiny.ipynb", "import labkit\nlabkit.record('double', X * 2)\nlabkit.record('name', NAME)")
    make("91_fails.ipynb", "import labkit\nlabkit.record('before', X)\nraise ValueError('boom ' + NAME)")
    (folder / "profiles" / "big.yaml").write_text("_all:\n  SEED: 7\n'90':\n  X: 10\n91_fails:\n  X: 3\n")
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(folder))
    return folder


#: The lesson seed sweeps that train a model (seconds to minutes per seed on 2 cores, measured 2026-12-03 under load:
#: 06 stage/optimizer 80-128 s, 03 60 s, 04 overfit 35 s, 00 smoke 24 s, 07 24 s, 02 regularization fixture 12-38 s).
#: `make test` leaves them to `make test-extended`; the fast sweeps (each seed under ~6 s) run in `make test`.
EXTENDED_LESSONS = {
    "test_lessons_00_04.py": {"test_overfit_verdict", "test_smoke_training_learns"},
    "test_lessons_01_02.py": {"test_02_regularizers_against_memorized_noisy_labels", "test_02_transfer_small_dense_net_loses_to_scratch",
                              "test_02_mc_dropout_uncertainty_finds_the_errors"},
    "test_lessons_03.py": {"test_tiny_set_paper_loss_memorizes_source_loss_does_not", "test_training_lessons_short_run"},
    "test_lessons_06_07.py": {"test_06_stage_and_optimizer_lessons", "test_07_hard_and_easy_scores",
                              "test_07_budget_curve_verdict"},
}


def pytest_collection_modifyitems(config, items):
    """The lessons' seed sweeps (tests/test_lessons_*.py, seeds 0, 1 and 2) that train a model are `extended`
    (`make test-extended`); the fast ones stay in `make test`, beside nbval's check of the default seed's verdicts.
    A seed-parametrized lesson test not in the fast list is extended, so a new slow sweep cannot slip into CI."""
    fast = {"test_anchor_verdict", "test_c2f_gradient_verdicts", "test_01_adaptive_methods_win_only_on_badly_scaled_features",
            "test_02_backward_gain_explains_the_lecture_tanh_x4", "test_conventions_verdict", "test_nms_verdicts",
            "test_nms_by_hand_vs_torchvision", "test_06_clipping_lesson"}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if not item.path.name.startswith("test_lessons_") or callspec is None:
            continue
        if item.originalname not in fast or item.originalname in EXTENDED_LESSONS.get(item.path.name, ()):
            item.add_marker(pytest.mark.extended)
