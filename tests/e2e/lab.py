"""Drive JupyterLab in headless Chromium with Playwright: open a notebook, run all cells, poke its widgets.

Used by tests/e2e. Kept small and explicit so a failing step says what the browser was doing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# Flags for a closed network (see the machine notes): without them Chromium keeps trying to reach Google.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    return os.environ.get("LABKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A JupyterLab server on a free localhost port with a random token."""

    root: Path
    log: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: os.urandom(12).hex())
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict | None = None, timeout: float = 90) -> "LabServer":
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--ServerApp.open_browser=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # CI containers run as root
        # window.jupyterapp lets the tests read the notebook model (execution counts, outputs) instead of
        # scraping prompts; user settings in a scratch folder turn off windowed rendering, so every cell and
        # widget is in the page, and never touch the user's own JupyterLab settings.
        cmd.append("--LabApp.expose_app_in_browser=True")
        settings = self.root.parent / (self.root.name + "-lab-settings")
        tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        env = {**(env or {}), "JUPYTERLAB_SETTINGS_DIR": str(settings),
               "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces")}
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root,
                                     env={**os.environ, **(env or {})})
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "_log", None):
            self._log.close()


def _wait(cond, timeout: float, what: str, interval: float = 0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def open_notebook(page, server: LabServer, name: str, timeout: float = 120) -> None:
    """Open a notebook and wait until its kernel is idle."""
    # ?reset: start from an empty workspace, so notebooks opened earlier are not restored beside this one
    page.goto(f"{server.url}/lab/tree/{name}?reset&token={server.token}", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    # JupyterLab may ask which kernel to start; accept its preselected choice (the notebook's python3).
    deadline = time.time() + 10
    while time.time() < deadline:
        dialog = page.locator(".jp-Dialog:has-text('Select Kernel') .jp-Dialog-button.jp-mod-accept")
        if dialog.count():
            dialog.first.click()
            break
        time.sleep(0.5)
    _wait(lambda: _kernel_status(page) == "idle", timeout, f"kernel of {name} to become idle")


ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _kernel_status(page) -> str | None:
    p = progress(page)
    return p["status"] if p else None


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()


_PROGRESS_JS = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!w || !w.content || !w.content.model) return null;
    const cells = w.content.model.cells;
    let total = 0, pending = 0, errors = 0;
    for (let i = 0; i < cells.length; i++) {
        const c = cells.get(i);
        if (c.type !== 'code') continue;
        total++;
        if (c.executionCount === null) pending++;
        const outs = c.outputs.toJSON();
        if (outs.some(o => o.output_type === 'error')) errors++;
    }
    const k = w.sessionContext.session && w.sessionContext.session.kernel;
    return {total, pending, errors, status: k ? k.status : null};
}"""


def progress(page) -> dict | None:
    """Code cells of the active notebook: total, not yet run, with an error output; and the kernel status."""
    return page.evaluate(_PROGRESS_JS)


def run_all(page, timeout: float) -> dict:
    """Run > Run All Cells, then wait until every code cell ran (or one raised: Run All stops there) and the
    kernel is idle. Reads JupyterLab's notebook model, so cells scrolled out of view count too."""
    _menu(page, "Run", "Run All Cells")
    time.sleep(1.0)
    streak = [0]

    def done():
        p = progress(page)
        ok = bool(p) and p["status"] == "idle" and (p["pending"] == 0 or p["errors"] > 0)
        streak[0] = streak[0] + 1 if ok else 0
        return p if streak[0] >= 3 else None  # idle three polls in a row: not just between two cells

    try:
        return _wait(done, timeout, "all cells to finish", interval=1.0)
    except TimeoutError as e:
        shot = Path(os.environ.get("TMPDIR", "/tmp")) / f"e2e-timeout-{int(time.time())}.png"
        page.screenshot(path=str(shot))
        raise TimeoutError(f"{e}; progress={progress(page)}, screenshot: {shot}") from None


def save(page) -> None:
    """Save the active notebook and wait until the file is written."""
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
    _wait(lambda: page.evaluate("() => !window.jupyterapp.shell.currentWidget.context.model.dirty"), 30,
          "the notebook to be saved")


def error_outputs(path: Path) -> list[str]:
    """Error outputs stored in the saved notebook file."""
    nb = nbformat.read(str(path), as_version=4)
    errs = []
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                errs.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}")
    return errs


def _widget_output_fingerprint(view) -> str:
    """What a widget view displays, controls excluded: its images and the text outside the controls.

    The controls' own readouts (a slider's number) are left out, so a change means the *output* responded.
    """
    return view.evaluate("""el => {
        const c = el.cloneNode(true);
        c.querySelectorAll('.widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-readout, '
                           + '.widget-checkbox, .widget-text, .widget-button').forEach(e => e.remove());
        const imgs = Array.from(c.querySelectorAll('img')).map(i => i.src.length + ':' + i.src.slice(-300));
        return JSON.stringify([imgs, c.textContent]);
    }""")


# A call that builds and displays one of labkit's widgets in a notebook cell (not a ``def`` of one).
WIDGET_CALL = re.compile(r"(?<!def )\b(?:\w+_widget|interactive_pr|interactive_plot|wave_demo)\(")


def expected_widget_areas(nb_file) -> int:
    """How many widget areas the notebook must show: its code cells that call a widget builder (``*_widget(``,
    ``interactive_pr(``, ``interactive_plot(``, ``wave_demo(``), comments left out. Read from the notebook
    itself, so a notebook that gains or loses a widget needs no edit here."""
    nb = nbformat.read(str(nb_file), as_version=4)
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = "\n".join(line.split("#", 1)[0] for line in cell.source.splitlines())
            n += bool(WIDGET_CALL.search(code))
    return n


def widget_views(page):
    """The widget areas of the open notebook (one per cell output that holds ipywidgets controls)."""
    # ipywidgets 8 puts `jupyter-widgets` on a slider's or dropdown's own element but not on ToggleButtons' (04's
    # scale picker): match the control's class inside a widget output, whichever element carries which class.
    sel = ", ".join(f"{ACTIVE} .jp-OutputArea-output:has(.jupyter-widgets .{kind}, .jupyter-widgets.{kind})"
                    for kind in ("widget-slider", "widget-dropdown", "widget-toggle-buttons"))
    return page.locator(sel).all()


def poke(view, timeout: float = 60) -> tuple[str, str]:
    """Move the first slider (or change the first dropdown) of a widget view; wait for its display to change.

    Returns (before, after) fingerprints; raises AssertionError if nothing changed within ``timeout``.
    """
    view.scroll_into_view_if_needed()
    _wait(lambda: view.locator("img").count() > 0 or view.inner_text().strip(), 30, "the widget to render")
    time.sleep(1.0)
    before = _widget_output_fingerprint(view)
    slider = view.locator(".widget-slider .noUi-handle").first
    dropdown = view.locator(".widget-dropdown select").first
    if slider.count():
        slider.focus()
        for _ in range(3):
            slider.press("ArrowRight")
            time.sleep(0.2)
        what = "slider"
    elif dropdown.count():
        options = dropdown.locator("option").all_inner_texts()
        current = dropdown.input_value()
        values = dropdown.locator("option").evaluate_all("els => els.map(e => e.value)")
        target = next(v for v in values if v != current)
        dropdown.select_option(target)
        what = f"dropdown {options}"
    else:
        buttons = view.locator(".widget-toggle-buttons button:not(.mod-active)")
        buttons.first.click()
        what = "toggle buttons"
    try:
        _wait(lambda: _widget_output_fingerprint(view) != before, timeout, f"the display to change after moving the {what}")
    except TimeoutError as e:
        raise AssertionError(f"widget did not respond: {e}") from None
    time.sleep(1.0)
    return before, _widget_output_fingerprint(view)
