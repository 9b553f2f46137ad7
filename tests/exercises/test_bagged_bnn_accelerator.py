"""The self-checks of the BBNA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import bagged_bnn_accelerator as ex

LABEL = "ex-bagged_bnn_accelerator-{}"


def vote(labels, num_classes):
    counts = torch.nn.functional.one_hot(labels, num_classes).sum(dim=0)  # (N, C)
    return counts.argmax(dim=1)  # torch's argmax returns the first maximum


def vote_loop(labels, num_classes):
    out = []
    for column in labels.T.tolist():
        counts = [column.count(c) for c in range(num_classes)]
        out.append(counts.index(max(counts)))
    return torch.tensor(out)


def vote_largest_on_tie(labels, num_classes):
    counts = torch.nn.functional.one_hot(labels, num_classes).sum(dim=0)
    return num_classes - 1 - counts.flip(1).argmax(1)


def vote_wrong_axis(labels, num_classes):
    return torch.nn.functional.one_hot(labels, num_classes).sum(dim=1).argmax(1)


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(vote).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


def test_check_1_passes_another_correct_answer():
    ex.check_1(vote_loop)


@pytest.mark.parametrize("wrong, hint", [
    (vote_largest_on_tie, "smallest class"),
    (vote_wrong_axis, "over the members"),
    (lambda labels, c: labels[0], "plurality vote"),
    (lambda labels, c: 3, "should be a Tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def test_check_2_passes_the_solution_and_other_forms(capsys):
    assert ex.check_2(lambda n: 1 - (1 - 1 / n) ** n).startswith("✅ " + LABEL.format(2))
    ex.check_2(lambda n: -math.expm1(n * math.log1p(-1 / n)) if n > 1 else 1.0)
    ex.check_2(lambda n: torch.tensor(1 - (1 - 1 / n) ** n, dtype=torch.float64))


@pytest.mark.parametrize("wrong, hint", [
    (lambda n: (1 - 1 / n) ** n, "left OUT"),
    (lambda n: 1 - math.exp(-1), "limit 1 - 1/e"),
    (lambda n: 1 / n, "probability 1 - 1/n"),
    (lambda n: "0.63", "should be a number"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
