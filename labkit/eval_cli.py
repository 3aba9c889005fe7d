"""``labkit eval``: detection metrics from files, in any of the four conventions.

    labkit eval --gt instances_val.json --pred results.json [--convention coco] [--out metrics.json]
    labkit eval --gt path/to/data.yaml --pred runs/detect/predict/labels [--split val]
    labkit eval --gt instances_val.json --pred results.json --engine hotcoco   # coco only, if installed

Ground truth: a COCO JSON file, or a YOLO dataset (``data.yaml``, a folder holding one, or a folder
with ``images/`` and ``labels/``). Predictions: a COCO results JSON (list of ``image_id``,
``category_id``, ``bbox``, ``score``) or a folder of YOLO txt files with a confidence column
(``class cx cy w h conf``, as ``model.predict(save_txt=True, save_conf=True)`` writes them), matched
to the images by file name. YOLO class k maps to the k-th category id of the ground truth (sorted).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
from pathlib import Path

from labkit import errors
from labkit.errors import UserError

__all__ = ["register", "run_eval", "load_inputs"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand to an argparse ``subparsers`` object (``func=run_eval``)."""
    p = subparsers.add_parser(
        "eval", help="detection metrics (COCO / VOC / Ultralytics conventions)",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__.count("\n\n") >= 2 else None)
    p.add_argument("--gt", required=True, help="COCO GT json, or YOLO data.yaml / dataset folder")
    p.add_argument("--pred", required=True, help="COCO results json, or folder of YOLO txt predictions with conf")
    p.add_argument("--convention", default="coco", choices=["coco", "voc07", "voc", "ultralytics"],
                   help="AP definition (default: coco = pycocotools)")
    p.add_argument("--engine", default="labkit", choices=["labkit", "hotcoco"],
                   help="labkit (default, every convention) or hotcoco (coco only, faster; pip install hotcoco)")
    p.add_argument("--split", default="val", help="split of a YOLO dataset (default: val)")
    p.add_argument("--conf", type=float, default=0.25, help="confidence for the reported P/R/F1 (default 0.25)")
    p.add_argument("--out", default=None, help="write the metrics as JSON to this file")
    p.add_argument("--curves", action="store_true", help="include the P-R curves in --out")
    p.set_defaults(func=run_eval)
    return p


def _read_json(path: Path, flag: str):
    """JSON from a file, or a one-line :class:`UserError` naming the file (bad bytes, deep nesting, ...)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{flag} {path}: not UTF-8 text; give a JSON file") from None
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot read it ({e.strerror or e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{flag} {path}: not valid JSON ({e})") from None
    except RecursionError:
        raise UserError(f"{flag} {path}: JSON nested too deeply to be COCO data") from None
    except ValueError as e:  # e.g. an integer with too many digits
        raise UserError(f"{flag} {path}: unreadable JSON value ({str(e).splitlines()[0][:80]})") from None


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_inputs(gt, pred, split: str = "val"):
    """Resolve ``--gt`` / ``--pred`` to a COCO GT dict and a COCO results list.

    Raises :class:`labkit.errors.UserError` (one line naming the file) for a missing or unreadable file, JSON of
    the wrong shape, a non-finite score, or a prediction folder without ``.txt`` files.
    """
    from labkit.data import convert as C

    gt, pred = Path(gt), Path(pred)
    if not gt.exists():
        raise UserError(f"--gt not found: {gt}; check the path")
    if not pred.exists():
        raise UserError(f"--pred not found: {pred}; check the path")
    if gt.is_file() and gt.suffix == ".json":
        gt_dict = _read_json(gt, "--gt")
        if not isinstance(gt_dict, dict) or not isinstance(gt_dict.get("images"), list):
            raise UserError(f"--gt {gt}: expected a COCO ground-truth object with an 'images' list (and "
                            "'annotations', 'categories'), got " + type(gt_dict).__name__)
    else:
        images_dir, labels_dir, names = C.yolo_dataset(gt, split)
        gt_dict = C.yolo_to_coco(images_dir, labels_dir, names=names)
    if pred.is_dir():
        if not any(pred.rglob("*.txt")):
            raise UserError(f"--pred {pred}: no .txt prediction files in this folder; give the labels/ folder that "
                            "model.predict(save_txt=True, save_conf=True) wrote (if the model detected nothing at "
                            "all, pass a JSON file holding [])")
        cats = gt_dict.get("categories", [])
        cat_ids = sorted(c["id"] for c in cats) if isinstance(cats, list) else []
        preds = C.yolo_preds_to_coco(pred, gt_dict, category_ids=cat_ids)
    else:
        preds = _read_json(pred, "--pred")
        if not isinstance(preds, list):
            raise UserError(f"--pred {pred}: expected a COCO results list of {{image_id, category_id, bbox, score}}, "
                            f"got {type(preds).__name__}")
    for j, p in enumerate(preds):
        if isinstance(p, dict) and "score" in p and not _finite(p["score"]):
            raise UserError(f"--pred {pred}: prediction {j} (image {str(p.get('image_id'))[:20]}) has the score "
                            f"{str(p['score'])[:20]}; scores must be finite numbers")
    return gt_dict, preds


def _check_out(out: Path, gt: Path, pred: Path) -> None:
    """Refuse an ``--out`` that is a folder, or that would overwrite or land inside an input."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'metrics.json'}")
    o = out.resolve()
    for flag, src in (("--gt", gt), ("--pred", pred)):
        s = src.resolve()
        if o == s or (s.is_dir() and s in o.parents) or (src.is_file() and src.suffix in (".yaml", ".yml")
                                                          and s.parent in o.parents):
            raise UserError(f"--out {out} would write over or into the input {flag} {src}; inputs are only read, "
                            "choose another file")


def _hotcoco_stats(gt_dict, preds):
    """The 12 COCO stats from hotcoco (a Rust, pycocotools-compatible evaluator), its printout silenced."""
    import contextlib
    import io

    import numpy as np
    from hotcoco import COCO, COCOeval

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            cg = COCO(gt_dict)
            E = COCOeval(cg, cg.loadRes(preds), "bbox")
            E.evaluate()
            E.accumulate()
            E.summarize()
    except Exception as e:  # labkit validated the inputs first; anything left is reported in one line
        raise UserError(f"hotcoco could not evaluate these inputs ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:120] if str(e) else ''}); try --engine labkit") from None
    return np.asarray(E.stats[:12], dtype=np.float64)


def _engine_summary(stats, names) -> str:
    lines = ["engine=hotcoco  convention=coco"]
    lines += [f"  {n:14s} {v:.4f}" for n, v in zip(names, stats)]
    return "\n".join(lines)


def run_eval(args) -> int:
    """Handler of ``labkit eval``; returns the process exit code (0 ok, 2 bad input)."""
    import yaml

    from labkit.metrics import COCO_STAT_NAMES, MetricsInputError, evaluate_coco_json, load_coco_json

    gt, pred = Path(args.gt), Path(args.pred)
    out = Path(args.out) if getattr(args, "out", None) else None
    try:
        if out is not None:
            _check_out(out, gt, pred)
        engine = getattr(args, "engine", "labkit")
        if engine == "hotcoco":
            if args.convention != "coco":
                raise UserError(f"--engine hotcoco computes the coco convention only, not {args.convention!r}; "
                                "use --engine labkit (the default) for it")
            import importlib.util

            if importlib.util.find_spec("hotcoco") is None:
                raise UserError("--engine hotcoco: hotcoco is not installed; pip install hotcoco, "
                                "or use --engine labkit (the default)")
        gt_dict, preds = load_inputs(gt, pred, getattr(args, "split", "val"))
        names = {}
        if "pred_name" in inspect.signature(evaluate_coco_json).parameters:  # messages name the files
            names = {"gt_name": str(gt), "pred_name": str(pred)}
        if engine == "hotcoco":
            load_coco_json(gt_dict, preds, **names)  # labkit's checks: bad input gets its one-line message
            stats = _hotcoco_stats(gt_dict, preds)
            text = _engine_summary(stats, COCO_STAT_NAMES)
            payload = json.dumps({"engine": "hotcoco", "convention": "coco",
                                  "stats": dict(zip(COCO_STAT_NAMES, stats.tolist()))}, indent=1) if out else None
        else:
            res = evaluate_coco_json(gt_dict, preds, convention=args.convention, conf=getattr(args, "conf", 0.25),
                                     **names)
            text = res.summary()
            payload = json.dumps(res.to_dict(curves=getattr(args, "curves", False)), indent=1) if out else None
    except (UserError, MetricsInputError) as e:
        if errors.DEBUG:
            raise
        msg = str(e).replace("<ground-truth object>", str(gt)).replace("<prediction object>", str(pred))
        print(f"labkit eval: error: {msg.splitlines()[0] if msg else type(e).__name__}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            RecursionError, OSError, yaml.YAMLError) as e:
        # the inputs are untrusted: whatever their content trips on is reported as bad input, in one line
        if errors.DEBUG:
            raise
        why = str(e).splitlines()[0][:120] if str(e) else ""
        print(f"labkit eval: error: --gt {gt} / --pred {pred}: unexpected content ({type(e).__name__}: {why}); "
              "give COCO JSON files or a YOLO dataset and prediction folder", file=sys.stderr)
        return 2
    print(text)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(payload)
        except OSError as e:
            print(f"labkit eval: error: --out {out}: cannot write it ({e.strerror or e})", file=sys.stderr)
            return 2
        print(f"wrote {out}")
    return 0


def main(argv=None) -> int:  # standalone: python -m labkit.eval_cli ...
    parser = argparse.ArgumentParser(prog="labkit")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["eval", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
