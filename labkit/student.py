"""Student versions of the course notebooks: every exercise's solution replaced by a stub.

Solutions sit in the instructor's notebook between marker lines (nbgrader's convention):

* in a code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become one line,
  ``raise NotImplementedError("implement this: ...")``, at the indentation of the ``BEGIN`` marker;
* in a markdown cell, the lines between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` become
  ``*Your answer here.*``.

Every output is cleared (a student version is not an executed notebook), and so are the outputs the
``# NBVAL_CHECK_OUTPUT`` cells recorded. The checkers in :mod:`labkit.check` report a stub's
``NotImplementedError`` as "not implemented yet" instead of raising, so a student version runs top to bottom.

``labkit student NOTEBOOK... --out DIR`` (``make student``) writes the student versions into a folder of their
own; the instructor's notebooks are only read.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from labkit.errors import UserError

CODE_BEGIN, CODE_END = "### BEGIN SOLUTION", "### END SOLUTION"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
MD_PLACEHOLDER = "*Your answer here.*"
STUB_TEMPLATE = 'raise NotImplementedError("implement this: {what}, then run the check below")'

_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)|^\s*class\s+(\w+)")


def _enclosing_name(lines: list[str], i: int) -> str | None:
    """The function (or class) a marker at line ``i`` sits in: the nearest less-indented ``def`` above it."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    for line in reversed(lines[:i]):
        m = _DEF.match(line)
        if m and len(line) - len(line.lstrip()) < indent:
            return m.group(1) or m.group(2)
    return None


def stub_source(source: str, *, begin: str = CODE_BEGIN, end: str = CODE_END, md: bool = False,
                where: str = "a cell") -> tuple[str, int]:
    """Replace each marked solution in ``source``; returns the new source and the number of solutions replaced.

    Raises :class:`~labkit.errors.UserError` for a marker without its partner (naming ``where``).
    """
    lines = source.splitlines()
    out, n, i = [], 0, 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == begin:
            j = next((k for k in range(i + 1, len(lines)) if lines[k].strip() == end), None)
            if j is None:
                raise UserError(f"{where}: {begin!r} without a matching {end!r}; add the end marker")
            indent = line[: len(line) - len(line.lstrip())]
            if md:
                out.append(indent + MD_PLACEHOLDER)
            else:
                name = _enclosing_name(lines, i)
                what = f"the body of {name}()" if name else "this part"
                out.append(indent + STUB_TEMPLATE.format(what=what))
            n += 1
            i = j + 1
            continue
        if line.strip() == end:
            raise UserError(f"{where}: {end!r} without a {begin!r} above it; add the begin marker")
        out.append(line)
        i += 1
    return "\n".join(out) + ("\n" if source.endswith("\n") else ""), n


def student_version(nb, *, name: str = "the notebook"):
    """A copy of the notebook ``nb`` with every solution stubbed and every output cleared.

    Returns ``(notebook, count)``, ``count`` being the number of solutions replaced.
    """
    nb = nbformat.from_dict(nb)  # deep copy; the instructor's notebook object is left as it was
    total = 0
    for k, cell in enumerate(nb.cells):
        where = f"{name}, cell {k}"
        if cell.cell_type == "code":
            cell.source, n = stub_source(cell.source, where=where)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source, n = stub_source(cell.source, begin=MD_BEGIN, end=MD_END, md=True, where=where)
        else:
            n = 0
        total += n
    nb.metadata.setdefault("labkit", {})["student_version"] = True
    return nb, total


def write_student_versions(notebooks, out, *, force: bool = False) -> list[tuple[Path, int]]:
    """Write the student version of each notebook into the folder ``out``; returns ``(path, solutions)`` pairs.

    ``out`` must not be a folder that holds any of the source notebooks. An existing student file is refused
    unless ``force`` (it may hold a student's work).
    """
    out = Path(out).expanduser()
    paths = [Path(p).expanduser() for p in notebooks]
    if not paths:
        raise UserError("no notebook given; pass NOTEBOOK.ipynb paths, e.g. notebooks/0*.ipynb")
    for p in paths:
        if not p.is_file():
            raise UserError(f"{p}: no such notebook; pass the path of an .ipynb file")
        if p.suffix != ".ipynb":
            raise UserError(f"{p}: not a notebook (.ipynb); pass the path of an .ipynb file")
        if out.resolve() == p.parent.resolve():
            raise UserError(f"--out {out} is the folder of {p.name}; choose another folder so the instructor's "
                            f"notebooks are never overwritten (e.g. --out student)")
    targets = [out / p.name for p in paths]
    if not force:
        existing = [t for t in targets if t.exists()]
        if existing:
            raise UserError(f"{existing[0]} already exists (it may hold a student's work); choose a new --out "
                            f"folder, or pass --force to replace it")
    written = []
    for p, t in zip(paths, targets):
        try:
            nb = nbformat.read(p, as_version=4)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the user's input
            raise UserError(f"{p}: not a readable notebook ({type(err).__name__}); pass a valid .ipynb file") from err
        student, n = student_version(nb, name=p.name)
        out.mkdir(parents=True, exist_ok=True)
        tmp = t.with_name(f".{t.name}.tmp")
        nbformat.write(student, tmp)
        tmp.replace(t)
        written.append((t, n))
    # the profiles travel with the notebooks, so `labkit run` works on the student folder too
    prof = paths[0].parent / "profiles"
    if prof.is_dir() and not (out / "profiles").exists():
        import shutil

        shutil.copytree(prof, out / "profiles")
    return written
