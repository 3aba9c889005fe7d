"""Lecture mode: slide metadata (labkit.slides.add_slide_metadata) and offline decks (`labkit slides`).

The browser check (the deck starts in Chromium with the network cut off) is tests/e2e/test_slides_in_chromium.py.
"""
from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from labkit import slides
from labkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

SETUP = "# Setup: on Colab/Kaggle installs labkit once\nfrom labkit import platform_setup\nplatform_setup.run()"


def _lecture():
    """A small course-shaped notebook: title, setup/parameters/env cells, two sections, an exercise."""
    params = v4.new_code_cell("SEED = 0\nDEVICE = 'cpu'")
    params.metadata["tags"] = ["parameters"]
    long_code = "\n".join(f"x{i} = {i}" for i in range(slides.LONG_CODE_LINES + 1))
    cells = [
        v4.new_markdown_cell("# 99 · A lecture\n\nWhat you will learn."),            # 0 slide (title)
        v4.new_code_cell(SETUP),                                                     # 1 skip (setup)
        params,                                                                      # 2 skip (parameters)
        v4.new_code_cell("import labkit\nDEV = labkit.env.setup(seed=SEED)"),         # 3 skip (environment)
        v4.new_markdown_cell("## 1 · First section\n\n$g = \\nabla J$"),              # 4 slide
        v4.new_code_cell("print(1)"),                                                # 5 -
        v4.new_markdown_cell("Read the result."),                                    # 6 subslide (prose after code)
        v4.new_markdown_cell("More prose."),                                         # 7 -
        v4.new_markdown_cell("### A detail"),                                        # 8 subslide
        v4.new_code_cell(long_code),                                                 # 9 subslide (long)
        v4.new_markdown_cell("## 2 · Exercises\n\n1. Implement `f`."),               # 10 slide
        v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x + 777001\n    ### END SOLUTION"),  # 11 skip
        v4.new_markdown_cell("**Answer.**\n<!-- BEGIN SOLUTION -->\nIt is 777002.\n<!-- END SOLUTION -->"),  # 12 skip
        v4.new_code_cell(""),                                                        # 13 skip (empty)
        v4.new_code_cell("check(f)"),                                                # 14 -
        v4.new_markdown_cell("Solutions sit between `### BEGIN SOLUTION` markers."),  # 15 subslide (mentions)
    ]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


EXPECTED = ["slide", "skip", "skip", "skip", "slide", "-", "subslide", "-", "subslide", "subslide", "slide", "skip",
            "skip", "skip", "-", "subslide"]


def _sections(nb) -> int:
    """Markdown cells that open with a `## ` heading."""
    return sum(1 for c in nb.cells if c.cell_type == "markdown" and slides._first_line(c.source).startswith("## "))


def test_slide_types_follow_the_lecture_structure():
    nb = slides.add_slide_metadata(_lecture())
    assert slides.slide_types(nb) == EXPECTED
    assert slides.count_slides(nb) == (_sections(nb) + 1, 7)  # title + sections; + 4 subslides


def test_idempotent_and_keeps_the_authors_choice():
    nb = _lecture()
    nb.cells[5].metadata["slideshow"] = {"slide_type": "fragment"}
    nb.cells[7].metadata["slideshow"] = {"slide_type": "notes", "data": {"x": 1}}
    once = slides.add_slide_metadata(copy.deepcopy(nb))
    twice = slides.add_slide_metadata(copy.deepcopy(once))
    assert once == twice
    assert once.cells[5].metadata.slideshow == {"slide_type": "fragment"}
    assert once.cells[7].metadata.slideshow == {"slide_type": "notes", "data": {"x": 1}}
    again = slides.add_slide_metadata(copy.deepcopy(once), overwrite=True)
    assert slides.slide_types(again) == EXPECTED


def test_works_on_a_notebooks_plain_json():
    nb = json.loads(nbformat.writes(_lecture()))
    slides.add_slide_metadata(nb)
    assert slides.slide_types(nb) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_course_notebook_gets_a_sensible_deck(path):
    """On each course notebook (read only): one slide per `## ` section plus the title, the setup and
    parameters cells skipped, every solution skipped, and at least one page per slide."""
    nb = slides.add_slide_metadata(nbformat.read(str(path), as_version=4))
    types = slides.slide_types(nb)
    n_slides, n_pages = slides.count_slides(nb)
    assert types[0] == "slide" and n_slides == _sections(nb) + 1
    assert n_pages >= n_slides
    code = [t for c, t in zip(nb.cells, types) if c.cell_type == "code"]
    assert code[0] == code[1] == "skip", "setup and parameters cells are plumbing, not lecture"
    marker = {"code": "### BEGIN SOLUTION", "markdown": "<!-- BEGIN SOLUTION -->"}
    for c, t in zip(nb.cells, types):
        if any(line.strip().startswith(marker.get(c.cell_type, "\0")) for line in c.source.splitlines()):
            assert t == "skip", c.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_slide_metadata(path):
    """The committed notebooks carry their slide metadata (RISE reads it live). To (re)apply:
    `python scripts/add_slide_metadata.py notebooks/[0-9][0-9]_*.ipynb`."""
    nb = nbformat.read(str(path), as_version=4)
    missing = [i for i, c in enumerate(nb.cells) if (c.metadata.get("slideshow") or {}).get("slide_type")
               not in slides.SLIDE_TYPES]
    assert not missing, (f"cells {missing} have no slide_type: run "
                         f"`python scripts/add_slide_metadata.py {path.relative_to(ROOT)}`")


class _Tags(HTMLParser):
    """Sections (with their depth) and every external resource a page would load."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.sections = []
        self.loads = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.depth += 1
            self.sections.append(self.depth)
        for key in ("src", "href") if tag in ("script", "link", "img", "iframe", "source", "embed") else ():
            if a.get(key):
                self.loads.append((tag, a[key]))

    def handle_endtag(self, tag):
        if tag == "section":
            self.depth -= 1


def _parse(html: str) -> _Tags:
    t = _Tags()
    t.feed(html)
    return t


def test_deck_has_one_section_per_slide_and_loads_nothing(tmp_path):
    nb = slides.add_slide_metadata(_lecture())
    src = tmp_path / "lecture.ipynb"
    nbformat.write(nb, str(src))
    deck = slides.write_deck(src, out=tmp_path / "decks")
    assert deck == tmp_path / "decks" / "lecture.slides.html"
    html = deck.read_text(encoding="utf-8")
    tags = _parse(html)
    n_slides, n_pages = slides.count_slides(nb)
    # nbconvert nests every page in its slide's <section>: slides at depth 1, pages at depth 2
    assert tags.sections.count(1) == n_slides and tags.sections.count(2) == n_pages
    assert tags.loads == [], f"the deck loads external resources: {tags.loads}"
    assert "Reveal.initialize" in html and "window.MathJax" in html  # the notebook has math
    assert "777001" not in html and "777002" not in html  # solutions skipped
    assert "Solutions sit between" in html  # prose that only mentions a marker stays


def test_stock_nbconvert_deck_would_fail_the_check():
    """The check above has teeth: nbconvert's own deck loads reveal.js, require.js and MathJax from CDNs."""
    from nbconvert import SlidesExporter

    html, _ = SlidesExporter().from_notebook_node(slides.add_slide_metadata(_lecture()))
    assert any(url.startswith("https://") for _, url in _parse(html).loads)


def test_deck_without_math_leaves_mathjax_out(tmp_path):
    nb = slides.add_slide_metadata(_lecture())
    nb.cells[4].source = "## 1 · First section"
    html = slides.render_deck(nb)
    assert "window.MathJax" not in html and len(html) < 1_000_000


def test_widget_state_is_dropped_so_the_static_png_shows():
    nb = slides.add_slide_metadata(_lecture())
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    nb.cells[5].outputs = [v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "image/png": png, "text/plain": "VBox()"})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"abc": {}}, "version_major": 2, "version_minor": 0}}
    html = slides.render_deck(nb)
    assert png in html and "html-manager" not in html and "embed-amd" not in html


def test_cli_writes_a_deck_and_never_overwrites(tmp_path, capsys):
    src = tmp_path / "lecture.ipynb"
    nbformat.write(_lecture(), str(src))
    original = src.read_bytes()
    out = tmp_path / "decks"
    assert main(["slides", str(src), "--out", str(out)]) == 0
    first = (out / "lecture.slides.html").read_text()
    (out / "lecture.slides.html").write_text("mine")
    assert main(["slides", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--force" in err and "Traceback" not in err
    assert (out / "lecture.slides.html").read_text() == "mine"
    assert main(["slides", str(src), "--out", str(out), "--force"]) == 0
    assert (out / "lecture.slides.html").read_text() == first
    assert src.read_bytes() == original  # the notebook is only read (its slide metadata added in memory)


@pytest.mark.parametrize("argv", [["slides", "no_such_notebook"], ["slides", "missing.ipynb"]])
def test_cli_bad_notebook_is_one_line_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit slides: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_not_a_notebook_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    assert main(["slides", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit slides: error: ") and err.count("\n") == 1
