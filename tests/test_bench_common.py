"""benchmarks/_common.py: one timing rule for every side of a comparison, and results saved with machine info."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import interleaved, save, timed  # noqa: E402


def test_interleaved_takes_the_sides_in_turn_with_the_same_warmup_and_runs():
    """Mutations caught: timing one side after the other (a, a, b, b: a load change hits one side only), a warm-up
    for one side only, or counting warm-up calls as timed runs."""
    calls = []
    setups = []
    fns = {"a": lambda: calls.append("a") or "A", "b": lambda: calls.append("b") or "B"}
    res = interleaved(fns, repeat=3, warmup=2, setup=lambda: setups.append(1) or ())
    assert calls == ["a", "b"] * 5  # 2 warm-up rounds, then 3 timed rounds, always in turn
    assert len(setups) == 10  # fresh arguments before every call
    for name, out in (("a", "A"), ("b", "B")):
        r = res[name]
        assert len(r["times"]) == 3 and r["out"] == out
        assert r["best"] == min(r["times"]) <= r["median"] <= max(r["times"])


def test_timed_is_best_of_repeat_after_warmup():
    calls = []
    best, out = timed(lambda x: calls.append(x) or x * 2, repeat=4, warmup=1, setup=lambda: (len(calls),))
    assert len(calls) == 5 and out == 8 and best >= 0


def test_save_writes_settings_results_and_machine(tmp_path):
    path = save("bench_x", {"n": 3}, {"seconds": {"a": 0.5}}, packages=("no-such-package",), out_dir=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("bench_x-") and path.suffix == ".json"
    rec = json.loads(path.read_text())
    assert rec["benchmark"] == "bench_x" and rec["settings"] == {"n": 3} and rec["results"]["seconds"]["a"] == 0.5
    m = rec["machine"]
    assert m["cpu_count"] >= 1 and m["python"] and m["versions"]["no-such-package"] is None
    assert m["versions"]["numpy"]
