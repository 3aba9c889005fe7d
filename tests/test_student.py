"""Student versions (labkit/student.py, `labkit student`) and the checker framework (labkit/check)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from labkit import check, student
from labkit.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

SOLVED = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    y = x + x
    return y
    ### END SOLUTION

print("defined")
'''


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_code_solution_becomes_a_stub_at_the_marker_indent():
    src, n = student.stub_source(SOLVED)
    assert n == 1
    assert "x + x" not in src and "BEGIN SOLUTION" not in src
    ns = {}
    exec(compile(src, "<student>", "exec"), ns)  # the stub is valid Python, the rest of the cell still runs
    with pytest.raises(NotImplementedError, match=r"implement this: the body of double\(\)"):
        ns["double"](2)
    assert src.splitlines()[2] == '    raise NotImplementedError("implement this: the body of double(), then run the check below")'


def test_markdown_solution_and_outputs_are_removed():
    md = nbformat.v4.new_markdown_cell("**Answer.**\n<!-- BEGIN SOLUTION -->\nThe loss rises.\n<!-- END SOLUTION -->")
    code = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)")
    code.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    code.execution_count = 3
    nb = _nb(md, code)
    out, n = student.student_version(nb)
    assert n == 1
    assert "The loss rises" not in out.cells[0].source and student.MD_PLACEHOLDER in out.cells[0].source
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None
    assert nb.cells[1].outputs, "the instructor's notebook object must be left as it was"


@pytest.mark.parametrize("src", ["    ### BEGIN SOLUTION\n    x = 1\n", "x = 1\n### END SOLUTION\n"])
def test_unbalanced_markers_name_the_cell(src):
    with pytest.raises(UserError, match="nb.ipynb, cell 0"):
        student.student_version(_nb(nbformat.v4.new_code_cell(src)), name="nb.ipynb")


def test_cli_writes_a_new_folder_and_never_overwrites(tmp_path):
    src = tmp_path / "course" / "01_x.ipynb"
    src.parent.mkdir()
    nbformat.write(_nb(nbformat.v4.new_code_cell(SOLVED)), src)
    before = src.read_bytes()
    out = tmp_path / "student"
    cmd = [sys.executable, "-m", "labkit", "student", str(src), "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "1 solution replaced" in r.stdout
    assert "x + x" not in (out / src.name).read_text()
    assert src.read_bytes() == before
    (out / src.name).write_text("the student's work")
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "already exists" in r.stderr and "--force" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (out / src.name).read_text() == "the student's work"
    r = subprocess.run([sys.executable, "-m", "labkit", "student", str(src), "--out", str(src.parent)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "never overwritten" in r.stderr and src.read_bytes() == before
    r = subprocess.run([sys.executable, "-m", "labkit", "student", str(tmp_path / "nope.ipynb"), "--out",
                        str(tmp_path / "s2")], capture_output=True, text=True)
    assert r.returncode == 2 and "no such notebook" in r.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_course_notebook_has_a_valid_student_version(path):
    nb = nbformat.read(path, as_version=4)
    out, n = student.student_version(nb, name=path.name)
    for cell in out.cells:
        if cell.cell_type == "code":
            assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
            compile(TransformerManager().transform_cell(cell.source), path.name, "exec")  # every stubbed cell is still valid Python


# ---- the checker framework ----------------------------------------------------------------------------------

def _cases(seed):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=3)} for _ in range(5)]


def test_run_cases_passes_and_prints_one_line(capsys):
    r = check.run_cases("double", lambda x: 2 * x, _cases(0), lambda x: x + x, reference_name="x + x")
    assert r and r.passed == 5 and capsys.readouterr().out == "check double: ✓ 5/5 random cases match x + x\n"


def test_run_cases_names_the_case_expected_got_and_hint():
    def wrong(x):
        return 2 * x + (x > 1)

    cases = [{"x": np.array([0.0, 0.5])}, {"x": np.array([0.0, 2.0])}]
    r = check.run_cases("double", wrong, cases, lambda x: x + x, hint="no offsets", seed=7, show=False)
    assert not r and r.passed == 1
    assert "case 2 of 2" in r.message and "at index (1,)" in r.message
    assert "expected: array(2,) [0. 4.]" in r.message and "got:      array(2,) [0. 5.]" in r.message
    assert "hint: no offsets" in r.message and "seed=7" in r.message


def test_describe_ignores_global_print_options():
    """Ultralytics sets a global float formatter; the checker's messages must read the same after importing it."""
    with np.printoptions(formatter={"float_kind": "{:11.5g}".format}):
        assert check.describe(np.array([0.0, 4.0])) == "array(2,) [0. 4.]"


def test_run_cases_reports_a_stub_and_an_exception_without_raising():
    def stub(x):
        raise NotImplementedError("implement this")

    r = check.run_cases("double", stub, _cases(1), lambda x: x + x, show=False)
    assert not r and "not implemented yet" in r.message
    seen = []
    r = check.run_cases("double", lambda x: x.undefined, _cases(1), lambda x: x + x, show=False,
                        hint=lambda case, expected, got: seen.append(got) or "use arrays")
    assert not r and "raised AttributeError" in r.message and "hint: use arrays" in r.message
    assert all(isinstance(g, AttributeError) for g in seen)  # the hint sees this case's error, never a stale result


def test_run_cases_reports_a_long_error_on_one_short_line():
    """An error message of many lines (torch lists every missing key of a state_dict) is reported on the failure's
    one line, cut to 300 characters. Mutation caught: reporting ``str(err)`` as it is (multi-line, unbounded)."""
    def noisy(x):
        raise RuntimeError("Missing key(s) in state_dict:\n" + "\n".join(f'"layer{i}.weight"' for i in range(200)))

    r = check.run_cases("double", noisy, _cases(1), lambda x: x + x, show=False)
    line = next(ln for ln in r.message.splitlines() if "raised RuntimeError" in ln)
    assert "Missing key(s) in state_dict: \"layer0.weight\" \"layer1.weight\"" in line and line.endswith("...")
    assert len(line.strip()) <= len("raised RuntimeError: ") + 300


def test_run_cases_cannot_be_fooled_by_changing_inputs_in_place():
    def sneaky(x):
        x *= 2  # changes the caller's array: the reference must not see the changed value
        return x

    r = check.run_cases("double", sneaky, _cases(2), lambda x: x + x, show=False)
    assert r, r.message


def test_compare_arrays_shape_and_nan():
    assert "shape (2,), expected (3,)" in check.compare_arrays(np.zeros(3), np.zeros(2))
    assert "non-finite" in check.compare_arrays(np.zeros(2), np.array([0.0, np.nan]))
    assert check.compare_arrays(np.array([np.inf]), np.array([np.inf])) is None


def test_checker_table_matches_the_submodules():
    """labkit.check.CHECKERS (the lazy lookup table) lists exactly each submodule's __all__."""
    import importlib

    listed = {}
    for mod in check._submodules():
        for name in importlib.import_module(f"labkit.check.{mod}").__all__:
            listed[name] = mod
    assert check.CHECKERS == listed


def test_a_check_cell_shows_its_line_once():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    shell.user_ns.update(check=check, np=np, cases=_cases(0))
    with capture_output() as cap:
        shell.run_cell("check.run_cases('double', lambda x: 2 * x, cases, lambda x: x + x)")
    assert cap.stdout.count("check double: ✓") == 1 and not cap.outputs


def test_unknown_checker_lists_the_available_ones():
    with pytest.raises(AttributeError, match="available"):
        check.no_such_checker  # noqa: B018
