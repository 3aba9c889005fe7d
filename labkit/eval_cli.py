"""``labkit eval``: detection metrics from files, in any of the four conventions.

    labkit eval --gt instances_val.json --pred results.json [--convention coco] [--out metrics.json]
    labkit eval --gt path/to/data.yaml --pred runs/detect/predict/labels [--split val]

Ground truth: a COCO JSON file, or a YOLO dataset (``data.yaml``, a folder holding one, or a folder
with ``images/`` and ``labels/``). Predictions: a COCO results JSON (list of ``image_id``,
``category_id``, ``bbox``, ``score``) or a folder of YOLO txt files with a confidence column
(``class cx cy w h conf``, as ``model.predict(save_txt=True, save_conf=True)`` writes them), matched
to the images by file name. YOLO class k maps to the k-th category id of the ground truth (sorted).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    p.add_argument("--split", default="val", help="split of a YOLO dataset (default: val)")
    p.add_argument("--conf", type=float, default=0.25, help="confidence for the reported P/R/F1 (default 0.25)")
    p.add_argument("--out", default=None, help="write the metrics as JSON to this file")
    p.add_argument("--curves", action="store_true", help="include the P-R curves in --out")
    p.set_defaults(func=run_eval)
    return p


def load_inputs(gt, pred, split: str = "val"):
    """Resolve ``--gt`` / ``--pred`` to a COCO GT dict and a COCO results list."""
    from labkit.data import convert as C

    gt, pred = Path(gt), Path(pred)
    if not gt.exists():
        raise FileNotFoundError(f"--gt not found: {gt}")
    if not pred.exists():
        raise FileNotFoundError(f"--pred not found: {pred}")
    if gt.is_file() and gt.suffix == ".json":
        try:
            gt_dict = json.loads(gt.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{gt}: not valid JSON ({e})") from None
    else:
        images_dir, labels_dir, names = C.yolo_dataset(gt, split)
        gt_dict = C.yolo_to_coco(images_dir, labels_dir, names=names)
    if pred.is_dir():
        cat_ids = sorted(c["id"] for c in gt_dict.get("categories", []))
        preds = C.yolo_preds_to_coco(pred, gt_dict, category_ids=cat_ids)
    else:
        try:
            preds = json.loads(pred.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{pred}: not valid JSON ({e})") from None
    return gt_dict, preds


def run_eval(args) -> int:
    """Handler of ``labkit eval``; returns the process exit code (0 ok, 2 bad input)."""
    from labkit.metrics import MetricsInputError, evaluate_coco_json

    try:
        gt, preds = load_inputs(args.gt, args.pred, getattr(args, "split", "val"))
        res = evaluate_coco_json(gt, preds, convention=args.convention, conf=getattr(args, "conf", 0.25))
    except (MetricsInputError, ValueError, FileNotFoundError, KeyError) as e:
        print(f"labkit eval: error: {e}", file=sys.stderr)
        return 2
    print(res.summary())
    if getattr(args, "out", None):
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res.to_dict(curves=getattr(args, "curves", False)), indent=1))
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
