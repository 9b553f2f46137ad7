"""The survey chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import statistics

import pytest

from qteach.exercises import bnn_survey as ex
from qteach.papers import bnn_survey as paper


def gain_solution(accuracy):
    groups = {}
    for slug, value in accuracy.items():
        groups.setdefault(paper.category_of(slug), []).append(value)
    naive = sum(groups[paper.NAIVE]) / len(groups[paper.NAIVE])
    return {c: sum(v) / len(v) - naive for c, v in groups.items()}


def gain_statistics(accuracy):  # another correct answer
    categories = {paper.CHAPTERS[s][0] for s in accuracy}
    mean = {c: statistics.fmean(v for s, v in accuracy.items() if paper.CHAPTERS[s][0] == c) for c in categories}
    return {c: m - mean[paper.NAIVE] for c, m in mean.items()}


def gain_sums(accuracy):
    sums = {}
    for slug, value in accuracy.items():
        sums[paper.category_of(slug)] = sums.get(paper.category_of(slug), 0.0) + value
    return {c: v - sums[paper.NAIVE] for c, v in sums.items()}


def gain_no_subtraction(accuracy):  # the categories' mean accuracies, the naive mean not subtracted
    categories = {paper.category_of(s) for s in accuracy}
    return {c: statistics.fmean(v for s, v in accuracy.items() if paper.category_of(s) == c) for c in categories}


@pytest.mark.parametrize("answer", [gain_solution, gain_statistics])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-bnn_survey-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda a: {c: -g for c, g in gain_solution(a).items()}, "flipped"),
    (gain_sums, "sums, not means"),
    (gain_no_subtraction, "subtract the mean of the naive"),
    (lambda a: {c: g + 0.01 for c, g in gain_solution(a).items()}, "should be"),
    (lambda a: {paper.NAIVE: 0.0}, "keys"),
    (lambda a: [1, 2], "dict"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-bnn_survey-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


SOLUTION = {"a": paper.GRADIENT, "b": paper.LOSS, "c": paper.QUANTIZATION_ERROR, "d": paper.HARDWARE,
            "e": paper.TRICKS}


@pytest.mark.parametrize("answer", [SOLUTION, {k: v.upper().replace(" ", "_") for k, v in SOLUTION.items()}])
def test_check_2_accepts(answer, capsys):
    ex.check_2(lambda: answer)
    assert "ex-bnn_survey-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    ({**SOLUTION, "a": paper.TRICKS}, "backward pass of the sign"),
    ({**SOLUTION, "b": paper.STRUCTURE}, "teacher term"),
    ({**SOLUTION, "c": paper.NAIVE}, "quantization error"),
    ({**SOLUTION, "d": paper.STRUCTURE}, "hardware-friendly"),
    ({**SOLUTION, "e": paper.NAIVE}, "only the recipe"),
    ({**SOLUTION, "a": "gradients"}, "not a category"),
    ({"a": paper.GRADIENT}, "keys"),
    ([paper.GRADIENT], "dict"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-bnn_survey-2") as error:
        ex.check_2(lambda: answer)
    assert hint in str(error.value)


def test_check_2_wants_the_function():
    with pytest.raises(AssertionError, match="check_2\\(place\\)"):
        ex.check_2(SOLUTION)
