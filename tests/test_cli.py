"""The labkit command: params, links (README in sync), strip, data."""
from __future__ import annotations

from pathlib import Path

from labkit import links, runner
from labkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_params_lists_tour_parameters(capsys, monkeypatch):
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(ROOT / "notebooks"))
    assert main(["params", "00"]) == 0
    out = capsys.readouterr().out
    assert "EPOCHS" in out and "DEVICE" in out and "int" in out


def test_links_for_a_fork():
    assert links.repo_slug("https://github.com/me/fork.git") == "me/fork"
    url = links.colab_url("00_setup_and_tour.ipynb", "me/fork", "dev")
    assert url == "https://colab.research.google.com/github/me/fork/blob/dev/notebooks/00_setup_and_tour.ipynb"
    assert links.kaggle_url("x.ipynb", "me/fork").endswith("github.com/me/fork/blob/main/notebooks/x.ipynb")


def test_readme_links_table_is_current(monkeypatch):
    """The README's table is exactly `labkit links` for the default repository: regenerate it when notebooks change."""
    monkeypatch.delenv("LABKIT_REPO", raising=False)
    monkeypatch.setenv("LABKIT_NOTEBOOKS", str(ROOT / "notebooks"))
    table = links.badges_table(runner.list_notebooks())
    assert table in (ROOT / "README.md").read_text(), "README links table is stale: run `labkit links` and paste it"


def test_data_shapes_command(tmp_path, capsys):
    assert main(["data", "shapes", "--root", str(tmp_path / "s"), "--n-train", "3", "--n-val", "2", "--imgsz", "64"]) == 0
    assert "train=3 images" in capsys.readouterr().out
    assert (tmp_path / "s" / "yolo" / "data.yaml").is_file()


def test_strip_command(tmp_path, capsys):
    import shutil

    nb = tmp_path / "00_setup_and_tour.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_setup_and_tour.ipynb", nb)
    assert main(["strip", str(nb)]) == 0
    assert "already clean" in capsys.readouterr().out
