"""Colab: every notebook's parameters cell is a valid Colab form; Drive as the default LABKIT_HOME when mounted;
the GPU hints (Kaggle's T4 x2, no P100)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from labkit import env

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Colab's form grammar (its "Forms" example notebook): `NAME = VALUE  #@param SPEC`, SPEC one of
#   {type:"string"|"integer"|"number"|"boolean"|"date"|"raw"}    {type:"slider", min:A, max:B, step:C}
#   ["a", "b", ...]   or   ["a", "b"] {allow-input: true}
# and nothing after it on the line (Colab reads the rest of the line as the spec).
_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>.+?)\s*#@param\s*(?P<spec>.*?)\s*$")
_TYPES = {"string", "integer", "number", "boolean", "date", "raw", "slider"}


def _js_object(text: str) -> dict:
    """Colab's `{type:"slider", min:0}` (unquoted keys) as a dict; ValueError if it is not one."""
    quoted = re.sub(r'([{,]\s*)([A-Za-z_][\w-]*)\s*:', r'\1"\2":', text)
    obj = json.loads(quoted)
    if not isinstance(obj, dict):
        raise ValueError(text)
    return obj


def check_param_line(line: str) -> str | None:
    """None if ``line`` is a valid Colab form field, else what is wrong with it."""
    m = _LINE.match(line)
    if not m:
        return "not `NAME = VALUE  #@param SPEC`"
    try:
        value = ast.literal_eval(m["value"])
    except (ValueError, SyntaxError):
        return f"default {m['value']!r} is not a literal"
    spec = m["spec"]
    if spec.startswith("["):
        lm = re.fullmatch(r"(\[.*?\])\s*(\{.*\})?", spec)
        if not lm:
            return f"text after the option list: {spec!r}"
        try:
            options = ast.literal_eval(lm[1])
            extra = _js_object(lm[2]) if lm[2] else {}
        except (ValueError, SyntaxError, json.JSONDecodeError):
            return f"option list or its settings do not parse: {spec!r}"
        if set(extra) - {"allow-input"}:
            return f"unknown setting in {lm[2]!r}"
        if value not in options and not extra.get("allow-input"):
            return f"default {value!r} is not one of the options {options}"
        return None
    try:
        obj = _js_object(spec)
    except (ValueError, json.JSONDecodeError):
        return f"spec {spec!r} is neither {{type:...}} nor [options] alone on the line"
    kind = obj.get("type")
    if kind not in _TYPES:
        return f"unknown type {kind!r}"
    expect = {"integer": int, "number": (int, float), "boolean": bool, "string": str, "date": str,
              "slider": (int, float)}.get(kind)
    if expect and (not isinstance(value, expect) or (kind in ("integer", "number") and isinstance(value, bool))):
        return f"default {value!r} does not fit type {kind}"
    if kind == "slider":
        if not all(isinstance(obj.get(k), (int, float)) for k in ("min", "max", "step")):
            return "slider needs numeric min, max and step"
        if not obj["min"] <= value <= obj["max"]:
            return f"default {value} outside the slider's [{obj['min']}, {obj['max']}]"
    return None


def _parameters_cell(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    src = cells[0]["source"]
    return "".join(src) if isinstance(src, list) else src


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_parameters_cell_is_a_colab_form(nb):
    """Every assignment in the parameters cell is a form field with a valid spec whose default fits it."""
    problems = []
    for line in _parameters_cell(nb).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "#@param" not in line:
            problems.append(f"{line.strip()!r}: no #@param (Colab shows it as code, not in the form)")
            continue
        why = check_param_line(line)
        if why:
            problems.append(f"{line.split('=')[0].strip()}: {why}")
    assert not problems, f"{nb.name}: " + "; ".join(problems)


@pytest.mark.parametrize("line, ok", [
    ('SEED = 0  #@param {type:"integer"}', True),
    ('CONF = 0.3  #@param {type:"slider", min:0.05, max:0.95, step:0.05}', True),
    ('DEVICE = "auto"  #@param ["auto", "cpu", "cuda"]', True),
    ('MODEL = "x.pt"  #@param ["a.pt"] {allow-input: true}', True),
    ('FREEZE = None  #@param {type:"raw"}', True),
    ('SEED = 0.5  #@param {type:"integer"}', False),                      # wrong type
    ('DEVICE = "tpu"  #@param ["auto", "cpu"]', False),                   # default not an option
    ('CONF = 2.0  #@param {type:"slider", min:0, max:1, step:0.1}', False),  # outside the slider
    ('NAMING = "auto"  #@param ["auto", "x"]  # file names only', False),   # trailing comment
    ('SEED = 0  #@param {type:"int"}', False),                            # unknown type
    ('SEED = 0  #@param {type:integer}', False),                          # unquoted type name
])
def test_param_line_checker(line, ok):
    """The checker itself: each bad line is one plausible mistake it must catch."""
    assert (check_param_line(line) is None) is ok, check_param_line(line)


# ---------------------------------------------------------------------------------------------- Drive
def test_colab_home_is_on_drive_when_mounted(tmp_path, monkeypatch):
    """On Colab with Drive mounted, runs go to MyDrive/labkit (a disconnect loses nothing); without Drive, or
    off Colab, or with LABKIT_HOME set, the home is as before. Catches a Drive home that ignores LABKIT_HOME
    or that is used on Kaggle/locally."""
    mount = tmp_path / "drive"
    monkeypatch.setattr(env, "COLAB_DRIVE_MOUNT", mount)
    monkeypatch.delenv("LABKIT_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(env, "platform", lambda: "colab")
    assert env.colab_drive_home() is None
    assert env.paths().home == tmp_path.resolve()  # no Drive: the working folder
    (mount / "MyDrive").mkdir(parents=True)
    p = env.paths()
    assert p.home == (mount / "MyDrive" / "labkit").resolve() and p.runs.is_dir()
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "mine"))
    assert env.paths().home == (tmp_path / "mine").resolve()
    monkeypatch.delenv("LABKIT_HOME")
    monkeypatch.setattr(env, "platform", lambda: "kaggle")
    assert env.paths().home == tmp_path.resolve()


def test_drive_mount_point_is_colabs():
    """The one place the mount point is named: Colab's documented drive.mount("/content/drive")."""
    assert env.COLAB_DRIVE_MOUNT.as_posix() == "/" + "/".join(("content", "drive"))


def test_gpu_hints_name_t4_x2_and_rule_out_the_p100():
    hint = env.gpu_hint("kaggle")
    assert "GPU T4 x2" in hint and "not the P100" in hint
    assert "T4" in env.gpu_hint("colab")
