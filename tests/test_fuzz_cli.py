"""Fuzz-style inputs for `labkit eval` and the parameter-file / profile loaders (issue 14).

Random bytes, deep nesting, wrong types, huge and non-finite values and unicode file names. Each case must end
with exit code 0 or 2; a 2 must be exactly one stderr line ``labkit <cmd>: error: ...`` with no traceback; an
exception escaping ``main()`` fails the test; and every input file is byte-identical afterwards. Seeded, so a
failure reproduces. Mutations caught: dropping any of the except clauses in ``eval_cli.run_eval`` /
``runner._read_yaml`` / ``runner.load_profile`` lets a RecursionError, UnicodeDecodeError or TypeError escape.
"""
from __future__ import annotations

import json
import random
import shutil
import pytest

from labkit.cli import main

N_CASES = 60


def _random_json_value(rng: random.Random, depth: int = 0):
    kinds = ["int", "float", "str", "bool", "null", "list", "dict", "huge", "nonfinite"]
    k = rng.choice(kinds if depth < 4 else kinds[:5])
    if k == "int":
        return rng.randint(-10, 10)
    if k == "float":
        return rng.uniform(-1e3, 1e3)
    if k == "str":
        return rng.choice(["", "x", "ünïcødé ✓", "0", "1e400", "\u202e", "a" * 300])
    if k == "bool":
        return rng.random() < 0.5
    if k == "null":
        return None
    if k == "huge":
        return rng.choice([10**30, -(10**30), 1e308, 5e-324, 2**63, -(2**63) - 1])
    if k == "nonfinite":
        return rng.choice([float("inf"), float("-inf"), float("nan")])
    if k == "list":
        return [_random_json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["images", "annotations", "categories", "id", "bbox", "score", "image_id", "category_id",
                        "file_name", "width", "height", "x"]): _random_json_value(rng, depth + 1)
            for _ in range(rng.randint(0, 5))}


def _valid_pair(rng: random.Random):
    from coco_random import random_coco

    return random_coco(rng.randint(0, 10_000), n_images=3)


def _mutate(rng: random.Random, gt: dict, dets: list):
    """One kind of damage to a valid GT/prediction pair; returns (gt_text, pred_text) or bytes."""
    kind = rng.choice(["bytes", "deep", "wrong_type_field", "random_json", "nonfinite", "huge", "truncate",
                       "swap", "bigint"])
    g, d = json.dumps(gt), json.dumps(dets)
    if kind == "bytes":
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400)))
        return (blob, d) if rng.random() < 0.5 else (g, blob)
    if kind == "deep":
        n = rng.choice([1_000, 50_000])
        deep = rng.choice(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n])
        return (deep, d) if rng.random() < 0.5 else (g, deep)
    if kind == "wrong_type_field":
        if dets and rng.random() < 0.5:
            j = rng.randrange(len(dets))
            field = rng.choice(["bbox", "score", "image_id", "category_id"])
            dets[j][field] = _random_json_value(rng)
            return g, json.dumps(dets)
        key = rng.choice(["images", "annotations", "categories"])
        gt[key] = _random_json_value(rng)
        return json.dumps(gt), d
    if kind == "random_json":
        v = json.dumps(_random_json_value(rng))
        return (v, d) if rng.random() < 0.5 else (g, v)
    if kind == "nonfinite":
        if dets:
            dets[rng.randrange(len(dets))][rng.choice(["score", "bbox"])] = rng.choice(
                [float("nan"), float("inf"), [0, 0, float("inf"), 1]])
        return g, json.dumps(dets)
    if kind == "huge":
        if dets:
            dets[0]["bbox"] = [1e308, 1e308, 1e308, 1e308]
            dets[0]["image_id"] = 10**40
        return g, json.dumps(dets)
    if kind == "truncate":
        return g[: rng.randint(0, len(g))], d
    if kind == "swap":
        return d, g
    return g, d.replace("1", "1" * 5000, 1)  # an integer longer than Python's int-from-text limit


def _rc(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own (one-line) errors, e.g. a value that looks like an option
        return e.code


def _check(rc: int, err: str, cmd: str):
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err, err
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning")]
        assert len(lines) == 1 and lines[0].startswith(f"labkit {cmd}: error: "), err


@pytest.mark.parametrize("seed", range(N_CASES))
def test_fuzz_eval(seed, tmp_path, capsys):
    rng = random.Random(seed)
    gt, dets = _valid_pair(rng)
    a, b = _mutate(rng, gt, dets)
    names = ["gt.json", "ünï gt ✓.json", "😀.json"]
    g, p = tmp_path / rng.choice(names), tmp_path / ("pred-" + rng.choice(names))
    for path, content in ((g, a), (p, b)):
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = {x: x.read_bytes() for x in (g, p)}
    argv = ["eval", "--gt", str(g), "--pred", str(p), "--convention", rng.choice(["coco", "voc07", "voc",
                                                                                  "ultralytics"])]
    if rng.random() < 0.3:
        argv += ["--out", str(rng.choice([g, p, tmp_path, tmp_path / "m.json"]))]
    rc = main(argv)
    _check(rc, capsys.readouterr().err, "eval")
    assert {x: x.read_bytes() for x in (g, p)} == before


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from labkit.data.synthetic import make_shapes

    return make_shapes(root=tmp_path_factory.mktemp("fuzz") / "shapes", n_train=1, n_val=4, imgsz=64, seed=0)


@pytest.mark.parametrize("seed", range(20))
def test_fuzz_eval_yolo_folder(seed, tmp_path, capsys, shapes):
    """A YOLO prediction folder with random text and bytes in its .txt files."""
    rng = random.Random(1000 + seed)
    ds = shapes
    pred = tmp_path / "preds ✓"
    pred.mkdir()
    stems = [f.stem for f in sorted((ds.yolo_root / "images" / "val").iterdir())]
    for stem in rng.sample(stems, k=rng.randint(1, len(stems))):
        choice = rng.random()
        if choice < 0.3:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        elif choice < 0.6:
            data = " ".join(rng.choice(["0", "1", "0.5", "nan", "inf", "-1", "1e999", "x", "\n"])
                            for _ in range(rng.randint(0, 20))).encode()
        else:
            data = f"{rng.randint(0, 3)} 0.5 0.5 0.2 0.2 {rng.random():.3f}\n".encode()
        (pred / f"{stem}.txt").write_bytes(data)
    before = {f: f.read_bytes() for f in pred.iterdir()}
    rc = main(["eval", "--gt", str(ds.yolo_yaml), "--pred", str(pred)])
    _check(rc, capsys.readouterr().err, "eval")
    assert {f: f.read_bytes() for f in pred.iterdir()} == before


def _random_yaml(rng: random.Random) -> bytes:
    kind = rng.choice(["bytes", "deep", "scalars", "wrong", "unicode", "huge", "anchors", "good"])
    if kind == "bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
    if kind == "deep":
        n = rng.choice([200, 1_500])
        return ("[" * n + "]" * n).encode() if rng.random() < 0.5 else ("a:\n" + "".join(
            "  " * i + f"k{i}:\n" for i in range(1, n // 10))).encode()
    if kind == "scalars":
        return f"X: {rng.choice(['012', '1:30', 'no', '0x1f', '.inf', '-.inf', '.nan', '1e400', '~', 'abc'])}\n".encode()
    if kind == "wrong":
        return rng.choice([b"- 1\n- 2\n", b"just text\n", b"X: [1, 2]\n", b"X: {a: 1}\n", b"1: 2\n",
                           b"? [1, 2]\n: 3\n", b"X: !!python/object:os.system ls\n", b"X: 1\nX: 2\n"])
    if kind == "unicode":
        return "NAME: ünïcødé ✓ \u202e\nX: 1\n".encode()
    if kind == "huge":
        return f"X: {'9' * rng.choice([20, 5000])}\n".encode()
    if kind == "anchors":
        return b"a: &a [1, 2]\nb: *a\n"
    return b"X: 3\nNAME: ok\n"


@pytest.fixture
def fake_kernel(monkeypatch):
    """No kernel in the fuzz test: an accepted input 'runs' by copying the notebook."""
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda inp, out, **kw: shutil.copy(inp, out))


@pytest.mark.parametrize("seed", range(40))
def test_fuzz_param_file_and_profile(seed, tiny_notebooks, tmp_path, capsys, fake_kernel):
    rng = random.Random(2000 + seed)
    data = _random_yaml(rng)
    name = rng.choice(["p.yaml", "ünï ✓.yaml", "😀.yml"])
    if rng.random() < 0.5:
        f = tmp_path / name
        f.write_bytes(data)
        argv = ["run", "90", "-f", str(f)]
    else:  # the same content as a profile, under a notebook key or as the whole file
        body = data if rng.random() < 0.5 else b"'90':\n" + b"".join(b"  " + ln + b"\n" for ln in data.splitlines())
        f = tiny_notebooks / "profiles" / "fuzz.yaml"
        f.write_bytes(body)
        argv = ["run", "90", "--profile", "fuzz"]
    before = f.read_bytes()
    rc = main(argv)
    _check(rc, capsys.readouterr().err, "run")
    assert f.read_bytes() == before


@pytest.mark.parametrize("value", ["012", "1:30", "no", "1e400", "-.inf", ".nan", "9" * 5000, "[" * 1500,
                                   "{a: [", "ünï ✓", "\x00", "0x", "-x", "!!python/object:os.system ls"])
def test_fuzz_cli_values(value, tiny_notebooks, capsys, fake_kernel):
    rc = _rc(["run", "90", "-p", "X", value])
    _check(rc, capsys.readouterr().err, "run")
    rc = _rc(["run", "90", "-p", "NAME", value])  # a text parameter takes any text as typed
    _check(rc, capsys.readouterr().err, "run")
    assert rc == 0 or value.startswith("-")
