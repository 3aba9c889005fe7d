"""Checkers for the notebooks' exercises: ``labkit.check.<name>(your_function)``.

A checker runs the student's function on fresh random cases against a verified reference (Keras, pycocotools,
torchvision, Ultralytics or labkit's own tested code) and prints one line: how many cases matched, or exactly
what went wrong in the first case that did not (the inputs, expected vs got, and a hint). It returns a
:class:`Report`, which is truthy when every case matched. It never raises for a wrong answer, so a student
notebook still runs top to bottom; a stub that still raises ``NotImplementedError`` is reported as
"not implemented yet".

Checkers live in this package's submodules, one per topic (``labkit.check.optim``, ``labkit.check.detection``
...), each made with :func:`run_cases`; ``labkit.check.<name>`` finds them all.
"""
from __future__ import annotations

import importlib
import pkgutil
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["Report", "run_cases", "compare_arrays", "describe", "checkers"]


@dataclass
class Report:
    """What a checker found. ``bool(report)`` is True when every case matched."""

    name: str
    ok: bool
    passed: int
    total: int
    message: str
    seed: int | None = None
    failures: list[str] = field(default_factory=list)
    shown: bool = False

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message

    def _repr_pretty_(self, p, cycle):  # IPython: show the message, not the dataclass
        p.text(self.message)

    def _ipython_display_(self):
        """The checker has already printed the message: a check cell's last line adds no second copy."""
        if not self.shown:
            print(self.message)


def describe(x: Any, limit: int = 160) -> str:
    """A short, readable description of a value: arrays show shape, dtype and (if small) their values."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if isinstance(x, np.ndarray):
        with np.printoptions(formatter=None, linewidth=75):  # whatever another library set (Ultralytics does)
            body = np.array2string(x, precision=4, threshold=12, edgeitems=2, suppress_small=True)
        text = f"array{tuple(x.shape)} {body}" if x.ndim else body
    elif isinstance(x, dict):
        text = "{" + ", ".join(f"{k}={describe(v, 60)}" for k, v in x.items()) + "}"
    elif isinstance(x, (list, tuple)):
        text = ("(" if isinstance(x, tuple) else "[") + ", ".join(describe(v, 60) for v in x) + (
            ")" if isinstance(x, tuple) else "]")
    elif isinstance(x, float):
        text = f"{x:.6g}"
    else:
        text = repr(x)
    return _one_line(text, limit)


def _one_line(text: str, limit: int) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters (e.g. torch's error listing every
    missing key of a state_dict)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_array(x):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=float)


def compare_arrays(expected, got, *, rtol: float = 1e-6, atol: float = 1e-8) -> str | None:
    """None when ``got`` equals ``expected`` to the tolerance; else a one-line description of the difference."""
    try:
        e, g = _as_array(expected), _as_array(got)
    except (TypeError, ValueError) as err:
        return f"could not read the result as numbers ({err})"
    if e.shape != g.shape:
        return f"shape {g.shape}, expected {e.shape}"
    if e.size == 0:
        return None
    if not np.all(np.isfinite(g) == np.isfinite(e)):
        bad = np.argwhere(np.isfinite(g) != np.isfinite(e))[0]
        return f"non-finite value at index {tuple(int(i) for i in bad)}: got {g[tuple(bad)]}, expected {e[tuple(bad)]}"
    close = np.isclose(g, e, rtol=rtol, atol=atol) | (~np.isfinite(e) & (g == e))
    if close.all():
        return None
    idx = tuple(int(i) for i in np.argwhere(~close)[0])
    where = f" at index {idx}" if e.ndim else ""
    diff = np.abs(g - e)[np.isfinite(e)]
    return (f"{int((~close).sum())} of {e.size} values differ{where}: got {g[idx]:.6g}, expected {e[idx]:.6g} "
            f"(largest difference {diff.max():.3g})")


def run_cases(name: str, fn: Callable, cases: Iterable[dict], reference: Callable[..., Any], *,
              compare: Callable[[Any, Any], str | None] = compare_arrays, reference_name: str = "the reference",
              hint: str | Callable[[dict, Any, Any], str | None] | None = None, seed: int | None = None,
              show: bool = True) -> Report:
    """Run ``fn(**case)`` and ``reference(**case)`` on every case; report the first mismatch precisely.

    ``cases`` is an iterable of keyword-argument dicts (build them from ``seed`` so a failure can be replayed).
    ``compare(expected, got)`` returns None when they agree, else a short description of the difference.
    ``hint`` (a string, or a function of the case, expected and got returning one) is added to a failure.
    Arguments are copied before each call, so a function that changes its inputs in place cannot fool the check.
    """
    import copy

    fname = getattr(fn, "__name__", "your function")
    cases = list(cases)
    passed, failures = 0, []
    for k, case in enumerate(cases, 1):
        expected = reference(**copy.deepcopy(case))
        got = None
        try:
            got = fn(**copy.deepcopy(case))
        except NotImplementedError:
            msg = (f"check {name}: ✗ not implemented yet: {fname} still raises NotImplementedError; write your code "
                   f"in place of the `raise` line, then run this cell again")
            return _finish(Report(name, False, 0, len(cases), msg, seed), show)
        except Exception as err:  # noqa: BLE001 - the student's code may raise anything; report it
            got = err  # what a callable hint sees for this case
            diff = f"raised {type(err).__name__}: {_one_line(str(err), 300)}"
        else:
            diff = compare(expected, got)
        if diff is None:
            passed += 1
            continue
        inputs = ", ".join(f"{k_}={describe(v, 90)}" for k_, v in case.items())
        text = f"case {k} of {len(cases)}: {fname}({inputs})\n    {diff}\n    expected: {describe(expected)}"
        if not diff.startswith("raised"):
            text += f"\n    got:      {describe(got)}"
        h = hint(case, expected, got) if callable(hint) else hint
        if h:
            text += f"\n    hint: {h}"
        failures.append(text)
    if not failures:
        msg = f"check {name}: ✓ {passed}/{len(cases)} random cases match {reference_name}"
        return _finish(Report(name, True, passed, len(cases), msg, seed), show)
    msg = (f"check {name}: ✗ {len(failures)} of {len(cases)} cases differ from {reference_name}"
           + (f" (seed {seed}; pass seed={seed} to replay)" if seed is not None else "") + "\n  " + failures[0])
    return _finish(Report(name, False, passed, len(cases), msg, seed, failures), show)


def _finish(report: Report, show: bool) -> Report:
    if show:
        print(report.message)
        report.shown = True
    return report


def fresh_seed(seed: int | None) -> int:
    """The seed to build cases from: the one given, else a fresh one (printed on failure so it can be replayed)."""
    return int(seed) if seed is not None else secrets.randbelow(2**31)


#: Where each checker lives: ``labkit.check.<name>`` imports only that one submodule (01's optimizer checks must not
#: wait for torch, and one broken submodule must not break every notebook). ``tests/test_student.py`` checks that
#: this table lists exactly the submodules' ``__all__``.
CHECKERS: dict[str, str] = {
    **dict.fromkeys(["momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"], "optim"),
    **dict.fromkeys(["init_std", "variance_propagation", "batchnorm_forward", "max_norm"], "init"),
    **dict.fromkeys(["yolo_encode", "yolo_decode", "yolo_cell_iou", "yolo_loss"], "yolov1"),
    **dict.fromkeys(["conv_block", "c2f_block", "sppf_block", "dfl_block", "detect_head", "tal_assign",
                     "dfl_decode", "align_metric"], "yolov8"),
    **dict.fromkeys(["box_iou", "giou", "nms", "envelope", "ap_area", "ap_coco"], "detection"),
    **dict.fromkeys(["bkai_parse_line", "quad_to_yolo", "quad_to_yolo_polygon", "yolo_line_to_xyxy"], "text"),
    **dict.fromkeys(["box_binary_entropy", "box_margin", "image_score", "image_score_topk"], "active"),
}


def _submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def checkers() -> dict[str, Callable]:
    """Every checker, by name (imports every submodule: for listings and tests, not for notebooks)."""
    found = {}
    for mod in _submodules():
        m = importlib.import_module(f"{__name__}.{mod}")
        for n in getattr(m, "__all__", ()):
            found[n] = getattr(m, n)
    return found


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    if name in CHECKERS:
        return getattr(importlib.import_module(f"{__name__}.{CHECKERS[name]}"), name)
    raise AttributeError(f"labkit.check has no checker {name!r}; available: {', '.join(sorted(CHECKERS))}")


def __dir__():
    return sorted(set(globals()) | set(CHECKERS))
