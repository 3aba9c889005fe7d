"""The ``labkit`` command.

    labkit doctor                                   versions, device, offline status, folders
    labkit run NOTEBOOK [-p NAME VALUE]... [-f params.yaml] [--profile NAME]
    labkit sweep NOTEBOOK -p lr0 0.01,0.001 -p optimizer SGD,AdamW
    labkit course [--profile NAME] [NOTEBOOK ...]   every notebook in order, then a summary table
    labkit bundle kaggle NOTEBOOK [-p NAME VALUE]... --dataset OWNER/SLUG
    labkit params NOTEBOOK                          the parameters a notebook accepts
    labkit strip NOTEBOOK...                        remove volatile outputs (keeps NBVAL_CHECK_OUTPUT cells)
    labkit refresh NOTEBOOK...                      execute in place, then strip
    labkit links [--repo OWNER/NAME]                README table of Open-in-Colab/Kaggle links
    labkit data shapes [--n-train N ...]            generate the synthetic shapes data
    labkit eval --gt GT --pred PRED                 detection metrics (COCO / VOC / Ultralytics conventions)
"""
from __future__ import annotations

import argparse
import ast
import importlib
import sys


def _params(pairs) -> dict:
    from labkit.runner import parse_value

    return {name: parse_value(value) for name, value in (pairs or [])}


def _add_param_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a notebook parameter (repeatable); values are parsed as YAML")
    p.add_argument("-f", "--file", dest="param_file", help="YAML file of NAME: value parameters")
    p.add_argument("--profile", help="parameter profile in notebooks/profiles/ (e.g. gpu)")


def cmd_doctor(args) -> int:
    from labkit import env

    env.doctor()
    return 0


def cmd_run(args) -> int:
    from labkit import runner

    res = runner.run(args.notebook, _params(args.parameter), args.param_file, args.profile)
    print(f"{res.notebook}: {res.status} in {res.wall_s:.1f} s -> {res.run_dir}")
    for k, v in res.records.items():
        print(f"  {k} = {v}")
    if res.error:
        print(f"error: {res.error}", file=sys.stderr)
    return 0 if res.ok else 1


def cmd_sweep(args) -> int:
    from labkit import runner

    values = {name: [runner.parse_value(v) for v in text.split(",")] for name, text in (args.parameter or [])}
    if not values:
        print("labkit sweep: give at least one -p NAME v1,v2,...", file=sys.stderr)
        return 2
    fixed = _params(args.set)
    runner.sweep(args.notebook, values, fixed=fixed, profile=args.profile)
    return 0


def cmd_course(args) -> int:
    from labkit import runner

    root = runner.course(args.notebooks or None, profile=args.profile, stop_on_error=args.stop_on_error)
    import json

    results = json.loads((root / "summary.json").read_text())
    return 0 if all(r["status"] == "ok" for r in results) else 1


def cmd_bundle(args) -> int:
    from labkit import runner

    out = runner.bundle_kaggle(args.notebook, _params(args.parameter), datasets=args.dataset or [],
                               user=args.user, out=args.out, profile=args.profile, gpu=not args.no_gpu)
    print(f"Kaggle bundle written to {out}\npush it with:  kaggle kernels push -p {out}")
    return 0


def cmd_params(args) -> int:
    from labkit import runner

    nb = runner.resolve_notebook(args.notebook)
    def type_of(v):
        if v["inferred_type_name"] not in (None, "None"):
            return v["inferred_type_name"]
        try:  # papermill infers types only from annotations; fall back to the default's type
            return type(ast.literal_eval(v["default"])).__name__
        except (ValueError, SyntaxError):
            return "?"

    rows = [{"name": k, "type": type_of(v), "default": v["default"], "help": v["help"]}
            for k, v in runner.notebook_parameters(nb).items()]
    print(runner.format_table(rows))
    return 0


def cmd_strip(args) -> int:
    from labkit import nbtools

    for nb in args.notebooks:
        changed = nbtools.strip(nb)
        print(f"{nb}: {'stripped' if changed else 'already clean'}")
    return 0


def cmd_refresh(args) -> int:
    from labkit import nbtools

    for nb in args.notebooks:
        print(f"executing {nb} ...", flush=True)
        nbtools.refresh(nb)
        print(f"{nb}: refreshed")
    return 0


def cmd_data(args) -> int:
    from labkit.data.synthetic import make_shapes

    ds = make_shapes(root=args.root, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                     imgsz=args.imgsz, n_classes=args.n_classes, seed=args.seed)
    print(ds)
    return 0


def cmd_links(args) -> int:
    from labkit import links, runner

    if args.update_readme:
        readme = runner.notebooks_dir().parent / "README.md"
        changed = links.update_readme(readme, runner.list_notebooks(), args.repo, args.branch)
        print(f"{readme}: {'updated' if changed else 'already current'}")
        return 0
    print(links.badges_table(runner.list_notebooks(), args.repo, args.branch))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description="Run and manage the labkit course notebooks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("doctor", help="print versions, device, offline status and folders")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("run", help="execute one notebook with parameters into a new run folder")
    p.add_argument("notebook", help="path, name, stem or number (e.g. 00_setup_and_tour or 00)")
    _add_param_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run a grid of parameter values and compare")
    p.add_argument("notebook")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "V1,V2,..."),
                   help="a swept parameter and its comma-separated values (repeatable)")
    p.add_argument("--set", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a fixed parameter")
    p.add_argument("--profile")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("course", help="run every notebook in order and print a summary")
    p.add_argument("notebooks", nargs="*", help="only these notebooks (default: all)")
    p.add_argument("--profile")
    p.add_argument("--stop-on-error", action="store_true")
    p.set_defaults(func=cmd_course)

    p = sub.add_parser("bundle", help="package a parameterized notebook for a platform")
    bsub = p.add_subparsers(dest="platform", metavar="PLATFORM")
    bsub.required = True
    k = bsub.add_parser("kaggle", help="notebook + kernel-metadata.json for `kaggle kernels push`")
    k.add_argument("notebook")
    _add_param_args(k)
    k.add_argument("--dataset", action="append", metavar="OWNER/SLUG", help="Kaggle dataset to attach (repeatable)")
    k.add_argument("--user", default="your-kaggle-username", help="your Kaggle user name (kernel id owner)")
    k.add_argument("--out", help="output folder (default: runs/bundles/<notebook>/<timestamp>)")
    k.add_argument("--no-gpu", action="store_true", help="do not request a GPU")
    k.set_defaults(func=cmd_bundle)

    p = sub.add_parser("params", help="list a notebook's parameters")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("strip", help="remove volatile outputs from notebooks")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_strip)

    p = sub.add_parser("refresh", help="execute notebooks in place, then strip")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("links", help="print the README's Open-in-Colab/Kaggle table for a repository")
    p.add_argument("--repo", help="OWNER/NAME or GitHub URL (default: $LABKIT_REPO or labkit-course/labkit)")
    p.add_argument("--branch", default="main")
    p.add_argument("--update-readme", action="store_true", help="rewrite the table in README.md in place")
    p.set_defaults(func=cmd_links)

    p = sub.add_parser("data", help="generate embedded data sets")
    dsub = p.add_subparsers(dest="dataset", metavar="DATASET")
    dsub.required = True
    s = dsub.add_parser("shapes", help="synthetic coloured shapes (YOLO, VOC and COCO layouts)")
    s.add_argument("--root")
    s.add_argument("--n-train", type=int, default=64)
    s.add_argument("--n-val", type=int, default=32)
    s.add_argument("--n-test", type=int, default=0)
    s.add_argument("--imgsz", type=int, default=128)
    s.add_argument("--n-classes", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_data)

    # Subcommands contributed by topic modules: each exposes register(subparsers).
    for mod in ("labkit.eval_cli",):
        try:
            importlib.import_module(mod).register(sub)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return parser


def main(argv=None) -> int:
    """Entry point of the ``labkit`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from labkit.runner import ParameterError

    try:
        return int(args.func(args) or 0)
    except (ParameterError, FileNotFoundError, FileExistsError) as e:
        print(f"labkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
