"""The ``labkit`` command.

    labkit doctor                                   versions, device, offline status, folders
    labkit run NOTEBOOK [-p NAME VALUE]... [-f params.yaml] [--profile NAME]
    labkit sweep NOTEBOOK -p lr0 0.01,0.001 -p optimizer SGD,AdamW
    labkit course [--profile NAME] [NOTEBOOK ...]   every notebook in order, then a summary table
    labkit bundle kaggle NOTEBOOK [-p NAME VALUE]... --dataset OWNER/SLUG [--accelerator SHAPE]
    labkit kaggle push|status|pull RUN              run a bundle on Kaggle, collect its outputs and records
    labkit params NOTEBOOK                          the parameters a notebook accepts
    labkit strip NOTEBOOK...                        remove volatile outputs (keeps NBVAL_CHECK_OUTPUT cells)
    labkit refresh NOTEBOOK...                      execute in place, then strip
    labkit slides NOTEBOOK [--out DIR] [--force]    offline reveal.js deck (one HTML file, no CDN)
    labkit links [--repo OWNER/NAME]                README table of Open-in-Colab/Kaggle links
    labkit data shapes [--n-train N ...]            generate the synthetic shapes data
    labkit eval --gt GT --pred PRED                 detection metrics (COCO / VOC / Ultralytics conventions)

Exit codes: 0 ok; 1 a notebook (or a sweep point) failed; 2 bad input (one line naming the input and the fix;
``--debug`` shows the traceback); 130 stopped with Ctrl-C (what finished is recorded).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys

VALUES_HELP = ("Values are read with YAML 1.2 rules and checked against the type of the notebook's default before "
               "any kernel starts: 012 is 12, 1e-3 a float, true/false the only booleans; 1:30 and no stay text. "
               "For a text parameter the value is taken as typed.")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``labkit run: error: ... (see labkit run --help)``, exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _params(pairs) -> dict:
    from labkit.runner import CliText

    return {name: CliText(value) for name, value in (pairs or [])}


def _add_param_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a notebook parameter (repeatable); " + VALUES_HELP)
    p.add_argument("-f", "--file", dest="param_file", help="YAML file of NAME: value parameters (YAML 1.2 rules)")
    p.add_argument("--profile", help="parameter profile in notebooks/profiles/ (e.g. gpu)")


def _add_exec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="fail the run when one cell runs longer than this (default: no limit)")
    p.add_argument("--log-output", action="store_true",
                   help="stream the notebook's printed output to the terminal while it runs")


def cmd_doctor(args) -> int:
    from labkit import env

    env.doctor()
    return 0


def cmd_run(args) -> int:
    from labkit import runner

    res = runner.run(args.notebook, _params(args.parameter), args.param_file, args.profile,
                     timeout=args.timeout, log_output=args.log_output)
    print(f"{res.notebook}: {res.status} in {res.wall_s:.1f} s -> {res.run_dir}")
    for k, v in res.records.items():
        print(f"  {k} = {v}")
    if res.error:
        print(f"error: {res.error}", file=sys.stderr)
    return 0 if res.ok else 1


def cmd_sweep(args) -> int:
    from labkit import runner

    values = {name: [runner.CliText(v) for v in text.split(",")] for name, text in (args.parameter or [])}
    gpus = args.gpus.split(",") if args.gpus is not None else None
    if args.resume:
        if values or args.set or args.notebook:
            raise runner.UserError(f"--resume {args.resume}: the folder's manifest gives the notebook and the "
                                   "points; drop the notebook, -p and --set")
    elif not args.notebook:
        raise runner.UserError("give a notebook to sweep (or --resume DIR)")
    elif not values:
        raise runner.UserError("give at least one swept parameter: -p NAME v1,v2,...")
    fixed = _params(args.set)
    root = runner.sweep(args.notebook, values, fixed=fixed, profile=args.profile, timeout=args.timeout,
                        log_output=args.log_output, jobs=args.jobs, gpus=gpus, executor=args.executor,
                        address=args.address, resume=args.resume, new=args.new)
    import csv

    with open(root / "comparison.csv", newline="") as f:
        statuses = [r["status"] for r in csv.DictReader(f)]
    return 0 if statuses and all(s == "ok" for s in statuses) else 1


def cmd_course(args) -> int:
    from labkit import runner

    root = runner.course(args.notebooks or None, profile=args.profile, stop_on_error=args.stop_on_error,
                         timeout=args.timeout, log_output=args.log_output)
    import json

    results = json.loads((root / "summary.json").read_text())
    return 0 if all(r["status"] == "ok" for r in results) else 1


def cmd_bundle(args) -> int:
    from labkit import kaggle

    out = kaggle.bundle_kaggle(args.notebook, _params(args.parameter), datasets=args.dataset or [],
                               user=args.user, out=args.out, profile=args.profile, param_file=args.param_file,
                               gpu=not args.no_gpu, accelerator=args.accelerator)
    print(f"Kaggle bundle written to {out}\npush it with:  labkit kaggle push {out}")
    return 0


def cmd_kaggle(args) -> int:
    from labkit import kaggle

    if args.action == "push":
        rec = kaggle.push(args.run)
        print(f"pushed {rec['id']} version {rec['version']}: {rec['url']}\nthen:  labkit kaggle status {args.run}")
    elif args.action == "status":
        rec = kaggle.status(args.run)
        print(f"{args.run}: {rec['status']}" + (f" ({rec['failure']})" if rec.get("failure") else ""))
    else:
        res = kaggle.pull(args.run, wait=args.wait)
        print(f"{res.notebook}: {res.status} on Kaggle -> {res.run_dir}")
        for k, v in res.records.items():
            print(f"  {k} = {v}")
        if res.error:
            print(f"error: {res.error}", file=sys.stderr)
        return 0 if res.ok else 1
    return 0


def cmd_params(args) -> int:
    from labkit import runner

    nb = runner.resolve_notebook(args.notebook)

    def type_of(v):
        typ, nullable = runner.declared_type(v)  # the annotation, else the default's type
        return "any" if typ is None else typ.__name__ + (" or None" if nullable else "")

    def range_of(name, v):
        rng = runner.PARAMETER_RANGES.get(name)
        try:
            default = ast.literal_eval(str(v["default"]))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            default = None
        if rng is None or (isinstance(default, (int, float)) and not runner._in_range(default, rng)):
            return ""
        return runner.range_text(rng)

    rows = [{"name": k, "type": type_of(v), "range": range_of(k, v), "default": v["default"], "help": v["help"]}
            for k, v in runner.notebook_parameters(nb).items()]
    print(runner.format_table(rows))
    return 0


def cmd_strip(args) -> int:
    from labkit import nbtools

    for nb in args.notebooks:  # check every file first: a bad one leaves all files untouched
        nbtools.read_notebook(nb)
    for nb in args.notebooks:
        changed = nbtools.strip(nb)
        print(f"{nb}: {'stripped' if changed else 'already clean'}")
    return 0


def cmd_student(args) -> int:
    from labkit import student

    written = student.write_student_versions(args.notebooks, args.out, force=args.force)
    for path, n in written:
        print(f"{path}: {n} solution{'s' if n != 1 else ''} replaced by stubs")
    return 0


def cmd_refresh(args) -> int:
    from labkit import nbtools

    for nb in args.notebooks:
        nbtools.read_notebook(nb)
    for nb in args.notebooks:
        print(f"executing {nb} ...", flush=True)
        nbtools.refresh(nb)
        print(f"{nb}: refreshed")
    return 0


def cmd_slides(args) -> int:
    from labkit import slides

    deck = slides.write_deck(args.notebook, out=args.out, force=args.force, theme=args.theme)
    print(f"{deck}: {deck.stat().st_size / 1e6:.1f} MB, opens offline in a browser")
    return 0


def cmd_data(args) -> int:
    from labkit.data.synthetic import make_shapes

    ds = make_shapes(root=args.root, n_train=args.n_train, n_val=args.n_val, n_test=args.n_test,
                     imgsz=args.imgsz, n_classes=args.n_classes, seed=args.seed)
    print(ds)
    return 0


def cmd_links(args) -> int:
    from labkit import links, runner

    links.repo_slug(args.repo)  # a bad --repo is an error before anything is read or written
    if args.update_readme:
        readme = runner.notebooks_dir().parent / "README.md"
        changed = links.update_readme(readme, runner.list_notebooks(), args.repo, args.branch)
        print(f"{readme}: {'updated' if changed else 'already current'}")
        return 0
    print(links.badges_table(runner.list_notebooks(), args.repo, args.branch))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="labkit", description="Run and manage the labkit course notebooks.",
                     epilog="Exit codes: 0 ok, 1 a notebook or sweep point failed, 2 bad input (one line; "
                            "--debug shows the traceback), 130 stopped with Ctrl-C.")
    parser.add_argument("--version", action="version", version=f"labkit {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("doctor", help="print versions, device, offline status and folders")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("run", help="execute one notebook with parameters into a new run folder",
                       description="Execute one notebook into a new run folder. " + VALUES_HELP)
    p.add_argument("notebook", help="path, name, stem or number (e.g. 00_setup_and_tour or 00)")
    _add_param_args(p)
    _add_exec_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run a grid of parameter values and compare",
                       description="Run a grid of parameter values; exit code 1 when any point fails. " + VALUES_HELP)
    p.add_argument("notebook", nargs="?")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "V1,V2,..."),
                   help="a swept parameter and its comma-separated values (repeatable; -p SEED 0,1,2 makes "
                        "aggregate.csv: every recorded value's mean, std and n over seeds)")
    p.add_argument("--set", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a fixed parameter")
    p.add_argument("--profile")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="points at the same time, each in its own process, the CPU cores split between them")
    p.add_argument("--gpus", metavar="0,1,...", help="one GPU per running point (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local processes (default) or Ray tasks (pip install 'labkit[ray]')")
    p.add_argument("--address", help="the Ray cluster's address (default: start a local Ray)")
    p.add_argument("--resume", metavar="DIR", help="continue a sweep folder: skip finished points, rerun the rest")
    p.add_argument("--new", action="store_true",
                   help="start a new sweep folder (by default the same sweep continues its latest folder)")
    _add_exec_args(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("course", help="run every notebook in order and print a summary")
    p.add_argument("notebooks", nargs="*", help="only these notebooks (default: all)")
    p.add_argument("--profile")
    p.add_argument("--stop-on-error", action="store_true")
    _add_exec_args(p)
    p.set_defaults(func=cmd_course)

    p = sub.add_parser("bundle", help="package a parameterized notebook for a platform")
    bsub = p.add_subparsers(dest="platform", metavar="PLATFORM")
    bsub.required = True
    k = bsub.add_parser("kaggle", help="notebook + kernel-metadata.json for `kaggle kernels push`")
    k.add_argument("notebook")
    _add_param_args(k)
    k.add_argument("--dataset", action="append", metavar="OWNER/SLUG", help="Kaggle dataset to attach (repeatable)")
    k.add_argument("--user", help="your Kaggle user name, the kernel id's owner (default: $KAGGLE_USERNAME)")
    k.add_argument("--out", help="new output folder (default: runs/bundles/<notebook>/<timestamp>)")
    k.add_argument("--accelerator", metavar="SHAPE",
                   help="Kaggle machine shape (default NvidiaTeslaT4 = GPU T4 x2; e.g. NvidiaL4, TpuV5E8)")
    k.add_argument("--no-gpu", action="store_true", help="do not request a GPU")
    k.set_defaults(func=cmd_bundle)

    p = sub.add_parser("kaggle", help="push a Kaggle bundle, poll it, pull its outputs into the run folder")
    p.add_argument("action", choices=("push", "status", "pull"))
    p.add_argument("run", metavar="RUN", help="bundle folder written by `labkit bundle kaggle`")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="pull: poll until done, at most this long")
    p.set_defaults(func=cmd_kaggle)

    p = sub.add_parser("params", help="list a notebook's parameters")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("strip", help="remove volatile outputs from notebooks")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_strip)

    p = sub.add_parser("student", help="write student versions (solutions replaced by stubs) into a new folder")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--out", default="student", help="folder for the student versions (default: student)")
    p.add_argument("--force", action="store_true", help="replace student versions already in --out")
    p.set_defaults(func=cmd_student)

    p = sub.add_parser("refresh", help="execute notebooks in place, then strip")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("slides", help="write a notebook as a reveal.js deck that works offline",
                       description="Write NOTEBOOK as one self-contained reveal.js HTML deck (reveal.js and MathJax "
                                   "inlined from labkit; no CDN). Cells without slide metadata get labkit's "
                                   "(labkit.slides.add_slide_metadata); the notebook is only read. Run it first "
                                   "(labkit run) for a deck with its outputs.")
    p.add_argument("notebook", help="path, name, stem or number (e.g. 01_optimizers or 01)")
    p.add_argument("--out", metavar="DIR", help="folder for the deck (default: runs/slides under LABKIT_HOME)")
    p.add_argument("--force", action="store_true", help="replace a deck already in the folder")
    p.add_argument("--theme", choices=("white", "simple"), default="white", help="reveal.js theme (default: white)")
    p.set_defaults(func=cmd_slides)

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
    s.add_argument("--n-train", type=_count(0), default=64)
    s.add_argument("--n-val", type=_count(0), default=32)
    s.add_argument("--n-test", type=_count(0), default=0)
    s.add_argument("--imgsz", type=_count(32), default=128, help="image side in pixels (>= 32)")
    s.add_argument("--n-classes", type=_count(1), default=3)
    s.add_argument("--seed", type=_count(0), default=0)
    s.set_defaults(func=cmd_data)

    # `labkit eval` lives in its own module
    from labkit import eval_cli

    eval_cli.register(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("labkit")
    except Exception:  # noqa: BLE001 - running from a source tree without install
        return "0+unknown"


def _count(minimum: int):
    """argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def user_error_message(e: BaseException) -> str | None:
    """One line for an exception caused by bad user input, or None when it is a bug (keeps its traceback)."""
    import yaml

    from labkit.errors import UserError

    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({e.reason}); give a text file"
    if isinstance(e, OSError):
        name = e.filename
        what = f"{name}: " if name else ""
        hint = {"FileNotFoundError": "check the path", "IsADirectoryError": "give a file, not a folder",
                "NotADirectoryError": "give a folder", "PermissionError": "check the permissions, or set "
                "LABKIT_HOME to a writable folder", "FileExistsError": "choose another name"}.get(type(e).__name__, "")
        text = e.strerror or str(e)
        return f"{what}{text}" + (f"; {hint}" if hint and hint not in text else "") if name or e.strerror else str(e)
    if isinstance(e, RecursionError):
        return "an input is nested too deeply to read"
    if isinstance(e, yaml.YAMLError):
        return f"invalid YAML: {str(e).splitlines()[0]}"
    if isinstance(e, ValueError):  # the commands' own checks (make_shapes, repo names, metrics inputs)
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def main(argv=None) -> int:
    """Entry point of the ``labkit`` command; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LABKIT_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    from labkit import errors

    errors.DEBUG = debug
    command = "labkit"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"labkit {args.command}"
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (labkit ... | head) surfaces here, not at exit
        return code
    except BrokenPipeError:
        try:  # the reader went away: stop quietly, as `cat` does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except Exception:  # noqa: BLE001 - stdout without a file descriptor
            pass
        return 141
    except KeyboardInterrupt as e:
        where = getattr(e, "where", None)
        if debug:
            import traceback

            traceback.print_exc()
        print(f"{command}: interrupted" + (f"; what finished is recorded in {where}" if where else ""),
              file=sys.stderr)
        return 130
    except Exception as e:
        msg = user_error_message(e)
        if msg is None or debug:
            raise
        print(f"{command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
