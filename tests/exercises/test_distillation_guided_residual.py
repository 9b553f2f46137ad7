"""The distillation-guided residual chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.exercises import distillation_guided_residual as ex
from qteach.papers import distillation_guided_residual as dgr

SLUG = "ex-distillation_guided_residual"


def overhead_solution(channels, k):
    return 2 * k / channels, 2 * k * channels * 32 / channels**2


def overhead_from_module(channels, k):  # another correct answer: the module's exact counts
    o = dgr.overhead(channels, k, blocks=1)
    return o["branch_params"] / o["binary_params"], o["branch_bits"] / o["binary_bits"]


def normalized_solution(student, teacher):
    return sum(((F.normalize(s, dim=1) - F.normalize(t, dim=1)) ** 2).sum(dim=1).mean()
               for s, t in zip(student, teacher))


def normalized_cosine(student, teacher):  # ||a - b||^2 = 2 - 2 cos for unit vectors
    return sum((2 - 2 * F.cosine_similarity(s, t, dim=1)).mean() for s, t in zip(student, teacher))


@pytest.mark.parametrize("answer", [overhead_solution, overhead_from_module])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert f"{SLUG}-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda c, k: (k / c, 32 * k / c), "one of the branch's two matrices"),
    (lambda c, k: (2 * k / c, 2 * k / c), "equals the parameter fraction"),
    (lambda c, k: (2 * k / c, 32 * k / c), "64 k / C"),
    (lambda c, k: 2 * k / c, "two numbers"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match=f"{SLUG}-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


@pytest.mark.parametrize("answer", [normalized_solution, normalized_cosine])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert f"{SLUG}-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda s_, t_: sum(((s - t) ** 2).sum(dim=1).mean() for s, t in zip(s_, t_)), "not normalized"),
    (lambda s_, t_: sum(((s / s.norm() - t / t.norm()) ** 2).sum() for s, t in zip(s_, t_)), "whole batch"),
    (lambda s_, t_: normalized_solution(s_, t_) / len(s_), "averaged over the blocks"),
    (lambda s_, t_: torch.tensor([normalized_solution(s_, t_)] * 2), "one number"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match=f"{SLUG}-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
