"""labkit.check's active-learning checkers (notebook 07): they pass on labkit.active's reference and on the
notebook's own code, report a stub as not implemented, and name the case, expected and got for plausible wrong
answers (softmax entropy, no empty-image case, the single-class margin, the k smallest)."""
from __future__ import annotations

import numpy as np
import pytest

from labkit import check
from labkit.active import strategies as S


# --- the notebook's code (07: code in view, exercises 5 and 6's solutions) ------------------------------------
def box_binary_entropy(probs):
    probs = np.asarray(probs, dtype=float)
    if len(probs) == 0:  # an image without kept boxes
        return np.zeros(0)
    p = probs.max(axis=1)  # each box's top class sigmoid: "is it an object of this class?"
    p = np.clip(p, 1e-12, 1 - 1e-12)  # 0 log 0 = 0
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))  # bits: 0 when sure, 1 at p = 0.5


def image_score(values, how="max", empty=1.0):
    values = np.asarray(values, dtype=float)
    if values.size == 0:  # no box kept: max of nothing raises, the mean of nothing is NaN
        return float(empty)
    if how == "max":
        return float(values.max())  # the most uncertain box
    if how == "mean":
        return float(values.mean())  # one hard box among many easy ones is diluted
    if how == "sum":
        return float(values.sum())  # grows with the number of boxes: prefers crowded images
    raise ValueError(f"unknown aggregation {how!r}")


def box_margin(probs):
    probs = np.asarray(probs, dtype=float)
    if len(probs) == 0:
        return np.zeros(0)
    if probs.shape[1] == 1:  # one class: its rival is "not this class", 1 - p
        return 1 - np.abs(2 * probs[:, 0] - 1)
    top = -np.sort(-probs, axis=1)  # each box's sigmoids, largest first
    return 1 - (top[:, 0] - top[:, 1])


def image_score_topk(values, k=3, empty=1.0):
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float(empty)
    return float(np.sort(values)[::-1][:k].mean())  # the k largest (all, if fewer)


def stub(*args, **kwargs):
    raise NotImplementedError("implement this: ...")


# --- plausible wrong answers -----------------------------------------------------------------------------------
def softmax_entropy(probs):  # treats the sigmoids as logits of one softmax distribution
    probs = np.asarray(probs, dtype=float)
    q = np.exp(probs) / np.exp(probs).sum(axis=1, keepdims=True)
    return -(q * np.log2(q)).sum(axis=1)


def normalised_class_entropy(probs):  # entropy of p / sum p: "which class?", not "is it an object?"
    probs = np.clip(np.asarray(probs, dtype=float), 1e-12, None)
    q = probs / probs.sum(axis=1, keepdims=True)
    return -(q * np.log2(q)).sum(axis=1)


def entropy_unclipped(probs):
    p = np.asarray(probs, dtype=float).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def score_no_empty_case(values, how="max", empty=1.0):
    with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        return float({"max": np.max, "mean": np.mean, "sum": np.sum}[how](np.asarray(values, dtype=float)))


def score_empty_is_zero(values, how="max", empty=1.0):
    return 0.0 if len(values) == 0 else image_score(values, how, empty)


def margin_no_single_class(probs):
    top = -np.sort(-np.asarray(probs, dtype=float), axis=1)
    return 1 - (top[:, 0] - top[:, 1])


def margin_unsorted(probs):  # the first two classes, not the top two
    probs = np.asarray(probs, dtype=float)
    if len(probs) == 0:
        return np.zeros(0)
    if probs.shape[1] == 1:
        return 1 - np.abs(2 * probs[:, 0] - 1)
    return 1 - np.abs(probs[:, 0] - probs[:, 1])


def topk_smallest(values, k=3, empty=1.0):
    return float(np.sort(values)[:k].mean()) if len(values) else float(empty)


GOOD = [
    (check.box_binary_entropy, box_binary_entropy),
    (check.box_binary_entropy, lambda probs: S.binary_entropy(np.asarray(probs).max(axis=1))
     if len(probs) else np.zeros(0)),
    (check.image_score, image_score),
    (check.image_score, lambda values, how, empty: S.aggregate(values, how, empty=empty)),
    (check.box_margin, box_margin),
    (check.box_margin, S.class_margin),
    (check.image_score_topk, image_score_topk),
]


@pytest.mark.parametrize("checker, fn", GOOD, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("seed", [0, 1, None])
def test_passes_on_reference_and_notebook_code(checker, fn, seed, capsys):
    report = checker(fn, seed=seed)
    assert report and report.passed == report.total == 20
    out = capsys.readouterr().out
    assert out.startswith(f"check {report.name}: ✓ 20/20 random cases match") and "seed" not in out


def test_image_score_with_min():
    def with_min(values, how, empty):
        return float(np.min(values)) if how == "min" and len(values) else image_score(values, how, empty)

    assert check.image_score(with_min, hows=("max", "mean", "sum", "min"), show=False)
    assert not check.image_score(image_score, hows=("min",), show=False)  # raises ValueError: reported, not raised


@pytest.mark.parametrize("checker", [check.box_binary_entropy, check.image_score, check.box_margin,
                                     check.image_score_topk], ids=lambda c: c.__name__)
def test_stub_is_not_implemented(checker):
    report = checker(stub, show=False)
    assert not report and "not implemented yet" in report.message and "NotImplementedError" in report.message


@pytest.mark.parametrize("checker, wrong, words", [
    (check.box_binary_entropy, softmax_entropy, ["independent sigmoids, not a softmax"]),
    (check.box_binary_entropy, normalised_class_entropy, ["independent sigmoids, not a softmax"]),
    (check.box_binary_entropy, entropy_unclipped, ["non-finite value", "clip p"]),
    (check.image_score, score_no_empty_case, ["values=[]", "without boxes scores `empty`"]),
    (check.image_score, score_empty_is_zero, ["values=[]", "without boxes scores `empty`"]),
    (check.box_margin, margin_no_single_class, ["raised IndexError", "with one class"]),
    (check.box_margin, margin_unsorted, ["largest - second largest"]),
    (check.image_score_topk, topk_smallest, ["decreasing order"]),
], ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("seed", [0, 7])
def test_fails_on_plausible_wrong_answers(checker, wrong, words, seed):
    report = checker(wrong, seed=seed, show=False)
    assert not report and report.failures
    msg = report.message
    assert f"seed {seed}" in msg and "case " in msg and "expected:" in msg and "hint:" in msg
    assert wrong.__name__ + "(" in msg
    assert "got:" in msg or "raised" in msg
    for w in words:
        assert w in msg, (w, msg)


def test_no_detections_nan_is_named():
    msg = check.image_score(score_no_empty_case, seed=0, show=False).message
    assert "values=[]" in msg and ("nan" in msg or "raised ValueError" in msg)


def test_checkers_are_found():
    assert {"box_binary_entropy", "box_margin", "image_score", "image_score_topk"} <= set(check.checkers())
