"""The RPR chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import random_partition_relaxation as ex
from qteach.papers import random_partition_relaxation as rpr


def scale_solution(w):
    return w.abs().mean()


def scale_by_search(w):  # another correct answer: the chapter's grid search
    return rpr.optimal_scale(w, 2)


def scale_by_lstsq(w):  # another: least squares of w on sign(w)
    s = torch.sign(w).reshape(-1, 1)
    return float(torch.linalg.lstsq(s, w.reshape(-1, 1)).solution[0, 0])


@pytest.mark.parametrize("answer", [scale_solution, scale_by_search, scale_by_lstsq])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-random_partition_relaxation-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda w: w.abs().max(), "max |w|"),
    (lambda w: w.mean().abs(), "signed weights"),
    (lambda w: w.pow(2).mean().sqrt(), "root mean square"),
    (lambda w: w.abs().median(), "median"),
    (lambda w: 0.7 * w.abs().mean(), "derivative vanishes"),
    (lambda w: torch.ones(2), "single number"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-random_partition_relaxation-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


def never_solution(schedule):
    return math.prod(schedule)


def never_by_loop(schedule):  # another correct answer: skip the final FF = 1
    p = 1.0
    for f in schedule:
        if f < 1:
            p *= f
    return torch.tensor(p)


@pytest.mark.parametrize("answer", [never_solution, never_by_loop])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-random_partition_relaxation-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda s: 1 - math.prod(s), "relaxed at least once"),
    (lambda s: max(0.0, 1 - sum(1 - f for f in s)), "never overlap"),
    (lambda s: min(s), "min(FF)"),
    (lambda s: math.prod(1 - f for f in s), "independently at each step"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-random_partition_relaxation-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)


def test_stub_prints_not_attempted(capsys):
    def stub(_):
        raise NotImplementedError("Exercise 1")

    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted yet") == 2
