"""Checkers for active learning (notebook 07): per-box uncertainty from YOLOv8's class sigmoids, and image scores.

The references are :mod:`labkit.active.strategies` (tested in ``tests/test_active_strategies.py``).
"""
from __future__ import annotations

import numpy as np

from labkit.check import compare_arrays, fresh_seed, Report, run_cases

__all__ = ["box_binary_entropy", "box_margin", "image_score", "image_score_topk"]


def _probs(rng: np.random.Generator, n: int, nc: int) -> np.ndarray:
    """``(n, nc)`` class sigmoids of kept boxes: mostly small, one class sometimes high (as YOLOv8 gives them)."""
    p = rng.uniform(0, 0.3, (n, nc))
    if n:
        top = rng.integers(0, nc, n)
        p[np.arange(n), top] = rng.uniform(0.01, 0.99, n)
    return p


def _probs_cases(rng, n: int) -> list[dict]:
    cases = []
    for k in range(n):
        if k == 0:  # an image without any kept box
            probs = np.zeros((0, 3))
        elif k == 1:  # one class (single_cls training)
            probs = _probs(rng, 4, 1)
        elif k == 2:  # saturated sigmoids: exactly 1.0 and 0.0 (float32 sigmoids do reach them)
            probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.1, 0.2], [0.0, 0.0, 0.0]])
        elif k == 3:  # a box torn between two classes
            probs = np.array([[0.62, 0.60, 0.02], [0.97, 0.02, 0.01]])
        else:
            probs = _probs(rng, int(rng.integers(1, 7)), int(rng.integers(1, 5)))
        cases.append({"probs": probs})
    return cases


def _vector_compare(e, g):
    return compare_arrays(e, g, rtol=1e-6, atol=1e-8)


def box_binary_entropy(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(probs) -> (n,) array``: per box, the binary entropy (bits) of its top class sigmoid.

    ``probs`` is ``(n_boxes, n_classes)``: each kept box's full vector of class sigmoids (independent, not summing
    to 1). Per box ``p = max_c probs[c]`` and ``H(p) = -p log2 p - (1-p) log2 (1-p)``, with ``0 log 0 = 0``. An
    image without boxes gives an empty array. Reference: ``labkit.active.strategies`` (``binary_entropy``)."""
    from labkit.active import strategies as S

    seed = fresh_seed(seed)
    cases = _probs_cases(np.random.default_rng(seed), n)

    def hint(case, expected, got):
        if len(case["probs"]) == 0:
            return "an image without kept boxes has no box scores: return an empty array"
        try:
            g = None if isinstance(got, Exception) else np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            return "return one number per box (a NumPy array of shape (n_boxes,))"
        if g is not None and g.shape == np.shape(expected) and not np.isfinite(g).all():
            return "log 0 is -inf: clip p to [1e-12, 1 - 1e-12] first (0 log 0 counts as 0)"
        return ("YOLOv8's class scores are independent sigmoids, not a softmax: take each box's top sigmoid p and "
                "the entropy of the yes/no question, -p log2 p - (1-p) log2(1-p); no softmax, no sum over classes")

    return run_cases("box_binary_entropy", fn, cases, lambda probs: S.BOX_SCORES["binary_entropy"](probs),
                     compare=_vector_compare, reference_name="labkit.active.strategies", hint=hint, seed=seed,
                     show=show)


def box_margin(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(probs) -> (n,) array``: per box, the margin uncertainty ``1 - (p_top1 - p_top2)`` over its class
    sigmoids; with a single class, the margin against "not this class", ``1 - |2p - 1|``. An image without boxes
    gives an empty array. Reference: ``labkit.active.strategies.class_margin``."""
    from labkit.active import strategies as S

    seed = fresh_seed(seed)
    cases = _probs_cases(np.random.default_rng(seed), n)

    def hint(case, expected, got):
        probs = case["probs"]
        if probs.ndim == 2 and probs.shape[1] == 1 and len(probs):
            return "with one class there is no second score: compare p with 1 - p, i.e. 1 - |2p - 1|"
        return "sort each box's sigmoids in decreasing order, margin = 1 - (largest - second largest)"

    return run_cases("box_margin", fn, cases, lambda probs: S.class_margin(probs), compare=_vector_compare,
                     reference_name="labkit.active.strategies.class_margin", hint=hint, seed=seed, show=show)


def _value_cases(rng, n: int, hows) -> list[dict]:
    cases = []
    for k in range(n):
        how = hows[k % len(hows)]
        if k < len(hows):  # every aggregation on an image without boxes, with either policy
            values, empty = [], [1.0, 0.0][k % 2]
        else:
            values = [round(float(v), 4) for v in rng.uniform(0, 1, int(rng.integers(1, 8)))]
            empty = [1.0, 0.0][int(rng.integers(2))]
        cases.append({"values": values, "how": how, "empty": empty})
    return cases


def _scalar_compare(e, g):
    if isinstance(g, (list, tuple)) or (isinstance(g, np.ndarray) and g.ndim):
        return f"expected one number, got {type(g).__name__} of length {len(g)}"
    return compare_arrays(e, g, rtol=1e-9, atol=1e-12)


def _empty_hint(case, expected, got):
    if not case["values"]:
        return (f"an image without boxes scores `empty` ({case['empty']}): test len(values) == 0 first "
                "(max of nothing raises, the mean of nothing is NaN)")
    return None


def image_score(fn, *, hows=("max", "mean", "sum"), n: int = 20, seed: int | None = None,
                show: bool = True) -> Report:
    """Check ``fn(values, how, empty) -> float``: one image score from its boxes' uncertainties.

    ``how`` is one of ``hows`` (``"max"``, ``"mean"``, ``"sum"``, and ``"min"`` if you add it); an image without any
    box (``values == []``) scores ``empty``. Reference: ``labkit.active.strategies.aggregate``."""
    from labkit.active import strategies as S

    seed = fresh_seed(seed)
    cases = _value_cases(np.random.default_rng(seed), n, tuple(hows))

    def hint(case, expected, got):
        return _empty_hint(case, expected, got) or (
            f"{case['how']}: max = the largest value, mean = sum / count, sum = the total, min = the smallest")

    return run_cases("image_score", fn, cases, lambda values, how, empty: S.aggregate(values, how, empty=empty),
                     compare=_scalar_compare, reference_name="labkit.active.strategies.aggregate", hint=hint,
                     seed=seed, show=show)


def image_score_topk(fn, *, n: int = 20, seed: int | None = None, show: bool = True) -> Report:
    """Check ``fn(values, k, empty) -> float``: the mean of the ``k`` largest box uncertainties (all of them when
    the image has fewer than ``k`` boxes); ``empty`` for an image without boxes. Reference:
    ``labkit.active.strategies.aggregate(values, "topk", topk=k, empty=empty)``."""
    from labkit.active import strategies as S

    seed = fresh_seed(seed)
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(n):
        if k == 0:
            values = []
        elif k == 1:  # fewer boxes than k
            values = [0.3, 0.9]
        else:
            values = [round(float(v), 4) for v in rng.uniform(0, 1, int(rng.integers(1, 9)))]
        cases.append({"values": values, "k": 3 if k == 1 else int(rng.integers(1, 5)),
                      "empty": [1.0, 0.0][int(rng.integers(2))]})

    def hint(case, expected, got):
        return _empty_hint(case, expected, got) or (
            "sort the values in decreasing order, keep the first k (fewer if the image has fewer boxes), average them")

    return run_cases("image_score_topk", fn, cases,
                     lambda values, k, empty: S.aggregate(values, "topk", topk=k, empty=empty),
                     compare=_scalar_compare, reference_name="labkit.active.strategies.aggregate", hint=hint,
                     seed=seed, show=show)
