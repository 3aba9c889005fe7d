"""The real import graph of labkit against the rules of docs/ARCHITECTURE.md.

The layer of each module and the known exceptions are read from the tables in the doc, and every ``import`` in
``labkit/**/*.py`` (module level and inside functions) is parsed with ``ast``; nothing is imported or run.

Mutations checked (in a scratch copy of ``labkit/`` and ``docs/``, the test run on it with ``LABKIT_ARCH_ROOT``
pointing there):
* ``from labkit import metrics`` added inside a function of ``labkit/boxes.py`` -> ``test_layers`` fails
  (a base module importing a topic module);
* ``from labkit.metrics._engine import evaluate`` added to ``labkit/nms.py`` -> ``test_internal_modules`` fails;
* ``from labkit import nms`` added to ``labkit/metrics/ap.py`` (nms already imports metrics) ->
  ``test_no_cycles`` fails;
* ``from labkit.widgets.metrics import interactive_pr`` inside a function of ``labkit/nms.py`` ->
  ``test_widgets_only_at_the_top`` fails;
* ``from labkit.widgets import static_vbox`` inside a function of ``labkit/finetune/runs.py`` (a topic module importing
  a widget) -> ``test_widgets_only_at_the_top`` fails;
* a new file ``labkit/newmod.py`` with no row in the doc -> ``test_every_module_has_a_row`` fails.
"""

from __future__ import annotations

import ast
import os
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(os.environ.get("LABKIT_ARCH_ROOT", Path(__file__).resolve().parents[1]))
LAYERS = ("base", "service", "topic", "tool")
WIDGET_PACKAGE = "labkit.widgets"  # every widget module: the package and its submodules


@lru_cache(maxsize=None)
def _doc_tables():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    layer = {m: l for m, l in re.findall(r"^\| `(labkit[\w.]*)` \| (\w+) \|", text, flags=re.M)}
    exceptions = set(re.findall(r"^\| `(labkit[\w.]*)` \| `(labkit[\w.]*)` \|", text, flags=re.M))
    return layer, exceptions


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=None)
def _graph():
    """{module: {(imported module, external name or None)}} over labkit, resolved to modules that exist."""
    files = sorted((ROOT / "labkit").rglob("*.py"))
    mods = {_module_name(p): p for p in files}
    edges, external = {}, {}
    for name, p in mods.items():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        pkg = name if p.name == "__init__.py" else name.rpartition(".")[0]
        out, ext = set(), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # "from labkit import env" imports the module labkit.env
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] != "labkit":
                    ext.add(t.split(".")[0])
                    continue
                while t not in mods:  # labkit.metrics.evaluate -> labkit.metrics
                    t = t.rpartition(".")[0]
                if t != name:
                    out.add(t)
        edges[name], external[name] = out, ext
    return mods, edges, external


def test_every_module_has_a_row():
    layer, _ = _doc_tables()
    mods, _, _ = _graph()
    assert sorted(set(mods) - set(layer)) == [], "modules missing from docs/ARCHITECTURE.md"
    assert sorted(set(layer) - set(mods)) == [], "rows in docs/ARCHITECTURE.md for modules that do not exist"
    assert set(layer.values()) <= set(LAYERS)


def test_layers():
    layer, exceptions = _doc_tables()
    _, edges, _ = _graph()
    rank = {l: i for i, l in enumerate(LAYERS)}
    bad = sorted(f"{a} ({layer[a]}) imports {b} ({layer[b]})" for a, bs in edges.items() for b in bs
                 if a in layer and b in layer  # a module without a row fails test_every_module_has_a_row
                 and rank[layer[b]] > rank[layer[a]] and (a, b) not in exceptions)
    assert bad == []


def _is_widget(module: str) -> bool:
    return module == WIDGET_PACKAGE or module.startswith(WIDGET_PACKAGE + ".")


def test_widgets_only_at_the_top():
    layer, _ = _doc_tables()
    _, edges, external = _graph()
    bad = sorted(f"{a} imports {b}" for a, bs in edges.items() for b in bs
                 if _is_widget(b) and not _is_widget(a))
    bad += sorted(f"{a} imports ipywidgets" for a, ext in external.items()
                  if "ipywidgets" in ext and layer.get(a) in ("base", "service"))
    assert bad == []


def test_internal_modules():
    _, edges, _ = _graph()
    bad = []
    for a, bs in edges.items():
        for b in bs:
            parts = b.split(".")
            if any(p.startswith("_") and p != "__main__" for p in parts):
                owner = ".".join(parts[: next(i for i, p in enumerate(parts) if p.startswith("_"))])
                if not (a == owner or a.startswith(owner + ".")):
                    bad.append(f"{a} imports internal {b}")
    assert bad == []


def test_no_cycles():
    _, exceptions = _doc_tables()
    _, edges, _ = _graph()
    g = {a: {b for b in bs if (a, b) not in exceptions} for a, bs in edges.items()}
    cycles, state, stack = [], {}, []

    def visit(a):
        state[a] = 1
        stack.append(a)
        for b in sorted(g[a]):
            if state.get(b) == 1:
                cycles.append(" -> ".join(stack[stack.index(b):] + [b]))
            elif b not in state:
                visit(b)
        stack.pop()
        state[a] = 2

    for a in sorted(g):
        if a not in state:
            visit(a)
    assert cycles == []


def test_exceptions_are_real():
    """Every listed exception is an import that exists (a fixed wart must leave the table)."""
    _, exceptions = _doc_tables()
    _, edges, _ = _graph()
    assert sorted(f"{a} -> {b}" for a, b in exceptions if b not in edges.get(a, ())) == []
