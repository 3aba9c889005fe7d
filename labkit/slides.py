"""Lecture mode: slide metadata for the course notebooks, and offline reveal.js decks.

Two pieces:

* :func:`add_slide_metadata` gives every cell ``metadata.slideshow.slide_type``, so a notebook presents as a
  deck of lecture-sized sections, live in JupyterLab (RISE, from ``jupyterlab-rise`` in the ``[lab]`` extra)
  or as a static deck. The title cell and each ``## `` section start a **slide**; a ``### `` heading, prose that
  follows code, and a long code cell start a **subslide** (a vertical step inside the section); the setup,
  parameters and environment cells, empty cells and exercise solutions are **skipped**; everything else joins
  the current (sub)slide (``-``). A ``slide_type`` the author set is kept. ``scripts/add_slide_metadata.py``
  applies it to notebook files.
* :func:`write_deck` (``labkit slides NOTEBOOK``) writes a reveal.js deck with nbconvert's ``SlidesExporter``
  that works **offline**: reveal.js 4.0.2 (the version nbconvert's reveal template names), its notes plugin and,
  when the notebook has math, MathJax 3 (SVG output, so no web fonts) are inlined from ``labkit/assets``. The
  template's other CDN scripts are dropped: require.js (only used to load reveal.js), jQuery (only used by its
  scroll helper, replaced by a few lines without it), mermaid (no course notebook has a diagram) and the widget
  html-manager (the saved widget state is removed, so each widget output shows the static picture that
  :mod:`labkit.widgets` stores beside it). The themes' web-font ``@import`` lines are dropped too (the themes
  fall back to the system's sans-serif fonts). The deck is one self-contained HTML file.
"""
from __future__ import annotations

import copy
import re
import warnings
from importlib import resources as _res
from pathlib import Path

from labkit.errors import UserError
from labkit.student import CODE_BEGIN as _SOLUTION_CODE  # nbgrader's markers, as labkit student reads them
from labkit.student import MD_BEGIN as _SOLUTION_MD

__all__ = ["add_slide_metadata", "slide_types", "count_slides", "render_deck", "write_deck", "DEFAULT_THEME",
           "THEMES", "LONG_CODE_LINES"]

#: Slide types that RISE and nbconvert understand.
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")
#: Themes shipped in labkit/assets/reveal.js/dist/theme (nbconvert's default is ``simple``).
THEMES = ("white", "simple")
DEFAULT_THEME = "white"
#: A code cell with more non-blank lines than this gets a (scrollable) subslide of its own.
LONG_CODE_LINES = 25

_SENTINEL = "labkit-inline-reveal"  # the reveal_url_prefix that labkit swaps for inline CSS
_MATH = re.compile(r"\$[^$\n]+\$|\$\$|\\\(|\\\[|\\begin\{")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _has_marker(src: str, marker: str) -> bool:
    """A line that is the marker (prose that only mentions it, e.g. in backticks, does not count)."""
    return any(line.strip().startswith(marker) for line in src.splitlines())


def _is_setup_code(cell, code_index: int) -> bool:
    """The setup, parameters and environment cells (CONTRIBUTING conventions 2-4): plumbing, not lecture."""
    src = _source(cell)
    if "parameters" in cell.get("metadata", {}).get("tags", []):
        return True
    if code_index == 0 and ("platform_setup" in src or src.lstrip().startswith("# Setup")):
        return True
    return code_index <= 2 and "env.setup(" in src


def _auto_type(cell, code_index: int, first_visible: bool, after_code: bool) -> str:
    src = _source(cell)
    kind = cell.get("cell_type")
    if kind == "markdown":
        if _has_marker(src, _SOLUTION_MD):
            return "skip"
        head = _first_line(src)
        if first_visible or head.startswith("# ") or head.startswith("## "):
            return "slide"
        if head.startswith("### ") or after_code:
            return "subslide"
        return "-"
    if kind == "code":
        if not src.strip() or _has_marker(src, _SOLUTION_CODE) or _is_setup_code(cell, code_index):
            return "skip"
        if sum(1 for line in src.splitlines() if line.strip()) > LONG_CODE_LINES:
            return "subslide"
        return "-"
    return "skip"  # raw cells


def add_slide_metadata(nb, overwrite: bool = False):
    """Give every cell of ``nb`` a ``metadata.slideshow.slide_type``; returns ``nb`` (changed in place).

    The rules (see the module docstring): the first shown cell (the title) and each markdown cell opening
    with ``# ``/``## `` start a ``slide``; ``### ``, markdown right after code, and code cells longer than
    :data:`LONG_CODE_LINES` non-blank lines start a ``subslide``; setup/parameters/environment cells, empty code
    cells, solutions (``### BEGIN SOLUTION`` in code, ``<!-- BEGIN SOLUTION -->`` in markdown) and raw cells
    are ``skip``; the rest is ``-``. A cell that already has a slide type keeps it unless ``overwrite``, so
    the function is idempotent and an author's choice survives a re-run.
    """
    code_index = -1
    seen_visible = False
    after_code = False
    for cell in nb["cells"]:  # a NotebookNode or the plain dict of a notebook's JSON
        if cell.get("cell_type") == "code":
            code_index += 1
        meta = cell.setdefault("metadata", {})
        show = meta.get("slideshow")
        current = show.get("slide_type") if isinstance(show, dict) else None
        if current not in SLIDE_TYPES or overwrite:
            current = _auto_type(cell, code_index, not seen_visible, after_code)
            if not isinstance(show, dict):
                meta["slideshow"] = {}  # (a NotebookNode copies a dict on assignment: read it back)
            meta["slideshow"]["slide_type"] = current
        if current not in ("skip", "notes"):
            seen_visible = True
            after_code = cell.get("cell_type") == "code"
    return nb


def slide_types(nb) -> list[str]:
    """Each cell's slide type (``-`` where none is set)."""
    return [((c.get("metadata", {}).get("slideshow") or {}).get("slide_type") or "-") for c in nb["cells"]]


def count_slides(nb) -> tuple[int, int]:
    """``(slides, subslides)`` the deck of ``nb`` shows, as nbconvert and RISE build it.

    ``slides`` are the horizontal sections; ``subslides`` counts every page, the first page of each slide
    included (what ``Reveal.getTotalSlides()`` reports). The first shown cell always starts a slide.
    """
    slides = pages = 0
    for t in slide_types(nb):
        if t in ("skip", "notes"):
            continue
        if slides == 0 or t == "slide":
            slides += 1
            pages += 1
        elif t == "subslide":
            pages += 1
    return slides, pages


# ---------------------------------------------------------------------------------------------------------
# Offline reveal.js decks
# ---------------------------------------------------------------------------------------------------------
def _asset(*parts: str) -> Path:
    return Path(str(_res.files("labkit").joinpath("assets", *parts)))


def _script_safe(js: str) -> str:
    """JavaScript that can sit inside ``<script>...</script>``: ``<!--``, ``<script``, ``</script`` (only in
    strings and regular expressions in the vendored files) get their ``<`` written as ``\\x3C``, which means
    the same character in both."""
    return re.sub(r"<(?=!--|/?script)", r"\\x3C", js, flags=re.IGNORECASE)


def _css(path: Path) -> str:
    """A vendored style sheet, without its ``@import`` lines (web fonts: a request the deck cannot make)."""
    return re.sub(r"@import\s+url\([^)]*\)\s*;?", "", path.read_text(encoding="utf-8")).replace("</style", "<\\/style")


def has_math(nb) -> bool:
    """True when a markdown cell or a text/latex output holds TeX math (the deck then includes MathJax)."""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown" and _MATH.search(_source(cell)):
            return True
        for out in cell.get("outputs", []):
            if "text/latex" in out.get("data", {}):
                return True
    return False


def render_deck(nb, name: str = "notebook", theme: str = DEFAULT_THEME) -> str:
    """The reveal.js deck of ``nb`` as one self-contained HTML string (no network needed to view it)."""
    from nbconvert import SlidesExporter

    if theme not in THEMES:
        raise UserError(f"theme {theme!r}: choose one of {', '.join(THEMES)}")
    nb = copy.deepcopy(nb)
    if not any(t not in ("skip", "notes") for t in slide_types(nb)):
        raise UserError(f"{name}: every cell is skipped (slide_type 'skip'): nothing to show")
    # Without the saved widget state nbconvert shows each widget output's static image/png instead of a live
    # view that would need the html-manager from a CDN (see nbconvert's WidgetsDataTypeFilter).
    nb.metadata.pop("widgets", None)
    reveal = _asset("reveal.js")
    labkit_res = {
        "reveal_js": _script_safe((reveal / "dist" / "reveal.js").read_text(encoding="utf-8")),
        "notes_js": _script_safe((reveal / "plugin" / "notes" / "notes.js").read_text(encoding="utf-8")),
        "mathjax_js": (_script_safe((_asset("mathjax", "es5") / "tex-svg-full.js").read_text(encoding="utf-8"))
                       if has_math(nb) else ""),
    }
    exporter = SlidesExporter(template_name="labkit_reveal", extra_template_basedirs=[str(_asset("nbconvert"))],
                              reveal_url_prefix=_SENTINEL, reveal_theme=theme, embed_images=True)
    with warnings.catch_warnings():
        # outputs with only labkit's record MIME type have nothing to show in HTML (the value is printed beside)
        warnings.filterwarnings("ignore", message="Your element with mimetype", category=UserWarning)
        html, _ = exporter.from_notebook_node(nb, resources={"labkit": labkit_res, "metadata": {"name": name}})

    def inline(m: re.Match) -> str:
        path = reveal.joinpath(*m.group(1).split("/"))
        if not path.is_file():
            raise RuntimeError(f"the deck asks for {m.group(1)}, which labkit/assets/reveal.js does not ship")
        return f'<style type="text/css">\n{_css(path)}\n</style>'

    html = re.sub(rf'<link\b[^>]*\bhref="{_SENTINEL}/([^"]+\.css)"[^>]*>', inline, html)
    if _SENTINEL in html:  # nbconvert's reveal template changed how it loads reveal.js
        raise RuntimeError(f"nbconvert's reveal template loads reveal.js in a way labkit.slides does not inline "
                           f"({_SENTINEL!r} left in the HTML); update labkit/assets/nbconvert/labkit_reveal")
    return html


def write_deck(notebook, out=None, force: bool = False, theme: str = DEFAULT_THEME) -> Path:
    """Write ``<out>/<notebook stem>.slides.html`` and return its path.

    ``notebook``: a path, name, stem or number (as ``labkit run`` takes). ``out``: a folder (default
    ``<LABKIT_HOME>/runs/slides``). An existing deck is never overwritten unless ``force``: the call raises
    :class:`~labkit.errors.UserError` naming it. Cells without slide metadata get it from
    :func:`add_slide_metadata` in memory (the notebook file is only read). Executed notebooks show their outputs;
    run one first (``labkit run``) for a deck with results.
    """
    from labkit import env, nbtools, runner

    path = runner.resolve_notebook(notebook)
    nb = nbtools.read_notebook(path)
    add_slide_metadata(nb)
    folder = Path(out) if out is not None else env.paths().runs / "slides"
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder}: is a file; give a folder")
    stem = path.name[:-len(".ipynb")] if path.name.endswith(".ipynb") else path.stem
    dest = folder / f"{stem}.slides.html"
    if dest.exists() and not force:
        raise UserError(f"{dest} exists; not overwritten (pass --force to replace it, or --out another folder)")
    html = render_deck(nb, name=stem, theme=theme)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(dest)
    return dest
