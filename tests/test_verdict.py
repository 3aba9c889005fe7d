"""labkit.verdict: the line format nbval's sanitizer relies on, its record, and the sanitizer itself."""
import json
import re
from pathlib import Path

import pytest

import labkit
from labkit.record import split_verdicts

ROOT = Path(__file__).resolve().parents[1]


def _sanitize(text: str) -> str:
    """Apply notebooks/nbval_sanitize.cfg with nbval's own parser, then re.sub per pair as nbval does."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "notebooks" / "nbval_sanitize.cfg").read_text())
    assert patterns, "nbval found no regex/replace pair in the file"
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def test_verdict_line_and_record(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_RUN_DIR", str(tmp_path))
    assert labkit.verdict("Adam beats SGD on the sparse problem", 0.3 < 0.5, "0.30 vs 0.50") is True
    assert labkit.verdict("dropout narrows the gap", False) is False
    out = capsys.readouterr().out.splitlines()
    assert out == ["verdict: Adam beats SGD on the sparse problem: True | 0.30 vs 0.50",
                   "verdict: dropout narrows the gap: False"]
    records = json.loads((tmp_path / "records.json").read_text())
    plain, verdicts = split_verdicts({**records, "mAP50": 0.7})
    assert plain == {"mAP50": 0.7}
    assert verdicts == {"Adam beats SGD on the sparse problem": True, "dropout narrows the gap": False}


def test_verdict_rejects_a_claim_the_sanitizer_could_not_parse():
    with pytest.raises(ValueError):
        labkit.verdict("a | b", True)
    with pytest.raises(ValueError):
        labkit.verdict("  ", True)


def test_sanitizer_masks_numbers_but_not_the_boolean():
    a = "x = 1\nverdict: fine-tuning beats scratch: True | 0.91 vs 0.72\nverdict: no detail: True\n"
    b = "x = 1\nverdict: fine-tuning beats scratch: True | 0.90 vs 0.74\nverdict: no detail: True\n"
    flipped = "x = 1\nverdict: fine-tuning beats scratch: False | 0.70 vs 0.74\nverdict: no detail: True\n"
    assert _sanitize(a) == _sanitize(b)          # float noise in the detail is masked
    assert _sanitize(a) != _sanitize(flipped)    # a flipped verdict is not (mutation: a regex that eats "True")
    assert _sanitize("x = 1\n") == "x = 1\n"     # other output is untouched
