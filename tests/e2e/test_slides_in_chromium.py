"""`labkit slides` decks open offline in headless Chromium: reveal.js starts, every slide is there, no request
leaves the page and nothing is logged as an error. A real course notebook (a temporary copy, slide metadata
added in memory) is rendered; the repository's notebooks are only read."""
from __future__ import annotations

import nbformat
import pytest

from labkit import slides

from .conftest import ROOT

pytest.importorskip("playwright")

# 01 has TeX math (MathJax is inlined) and the widget cell; 04 is the longest deck.
DECKS = ["01_optimizers", "04_yolov8_architecture"]


def _open_offline(browser, deck_path, wait: bool = True):
    """Open a deck with the network cut off; collect console errors, page errors and every request made."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    page = ctx.new_page()
    seen = {"requests": [], "failed": [], "errors": []}
    own = deck_path.as_uri()

    def route(r):
        if r.request.url == own:
            r.continue_()
        else:
            seen["requests"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: seen["failed"].append(f"{req.url}: {req.failure}"))
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(f"console: {m.text}"))
    page.on("pageerror", lambda e: seen["errors"].append(f"pageerror: {e}"))
    page.goto(own, wait_until="load")
    if wait:
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=30_000)
    return ctx, page, seen


@pytest.mark.parametrize("stem", DECKS)
def test_deck_opens_offline(stem, browser, tmp_path):
    nb = nbformat.read(str(ROOT / "notebooks" / f"{stem}.ipynb"), as_version=4)
    slides.add_slide_metadata(nb)
    n_slides, n_pages = slides.count_slides(nb)
    src = tmp_path / f"{stem}.ipynb"
    nbformat.write(nb, str(src))
    deck = slides.write_deck(src, out=tmp_path / "decks")
    ctx, page, seen = _open_offline(browser, deck)
    try:
        assert page.evaluate("Reveal.getHorizontalSlides().length") == n_slides
        assert page.evaluate("Reveal.getTotalSlides()") == n_pages
        page.evaluate("Reveal.slide(1, 0)")  # navigation works; the notes plugin registered
        assert page.evaluate("Reveal.getIndices().h") == 1
        assert page.evaluate("Reveal.hasPlugin('notes')")
        if slides.has_math(nb):
            page.wait_for_function("() => document.querySelectorAll('mjx-container svg').length > 0", timeout=30_000)
        page.wait_for_timeout(500)
        assert seen["requests"] == [] and seen["failed"] == [], f"the deck asked the network: {seen}"
        assert seen["errors"] == [], seen["errors"]
    finally:
        ctx.close()


def test_a_cdn_deck_fails_the_check(browser, tmp_path):
    """The check has teeth: nbconvert's stock deck (reveal.js, require.js, MathJax from CDNs) records blocked
    requests and never gets reveal.js ready offline."""
    from nbconvert import SlidesExporter

    nb = nbformat.read(str(ROOT / "notebooks" / "00_setup_and_tour.ipynb"), as_version=4)
    html, _ = SlidesExporter().from_notebook_node(slides.add_slide_metadata(nb))
    deck = tmp_path / "stock.slides.html"
    deck.write_text(html, encoding="utf-8")
    ctx, page, seen = _open_offline(browser, deck, wait=False)
    try:
        page.wait_for_timeout(2000)
        assert not page.evaluate("() => !!(window.Reveal && Reveal.isReady && Reveal.isReady())")
        assert any("require" in u for u in seen["requests"]), seen
    finally:
        ctx.close()


# --- live, in JupyterLab (the `lab` server fixture) ---------------------------------------------------------
def _lab_notebook(lab, name, cells):
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [v4.new_code_cell(c) if not c.startswith("#md ") else v4.new_markdown_cell(c[4:]) for c in cells]
    slides.add_slide_metadata(nb)
    nbformat.write(nb, str(lab.root / name))
    return nb


def test_widget_static_png_is_not_shown_twice_live(lab, page):
    """labkit.widgets puts the figure in the bundle for static readers; live, JupyterLab renders the widget view
    only (one image: the Output widget's), not the bundle's PNG beside it."""
    from . import lab as L

    _lab_notebook(lab, "static_widget.ipynb", ["from labkit.widgets import wave_demo\nwave_demo()"])
    L.open_notebook(page, lab, "static_widget.ipynb")
    L.run_all(page, timeout=180)
    (view,) = L.widget_views(page)
    view.locator(".jupyter-widgets img").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    outputs = page.locator(f"{L.ACTIVE} .jp-Cell-outputArea")
    assert outputs.locator("img").count() == 1, "the figure is shown twice"
    assert outputs.locator(".jupyter-widgets img").count() == 1  # and it is the live widget's


def test_rise_presents_the_notebook_live(lab, page):
    """jupyterlab-rise (the [lab] extra) serves /rise/<notebook>: the deck opens with a section per slide."""
    nb = _lab_notebook(lab, "rise_deck.ipynb", ["#md # Title", "#md ## One", "1 + 1", "#md ## Two", "2 + 2"])
    n_slides, _ = slides.count_slides(nb)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{lab.url}/rise/rise_deck.ipynb?token={lab.token}", wait_until="domcontentloaded")
    page.wait_for_function(f"() => document.querySelectorAll('.reveal .slides > section').length == {n_slides}",
                           timeout=120_000)
    assert errors == []
