"""The MeliusNet chapter's self-checks: solutions pass, other correct answers pass, wrong answers fail with a hint."""

import pytest
import torch
import torch.nn.functional as F

from qteach.exercises import meliusnet as ex
from qteach.papers import meliusnet


def _pad_solution(x, y):
    return x + F.pad(y, (0, 0, 0, 0, x.shape[1] - y.shape[1], 0))


def _cat_solution(x, y):
    zeros = torch.zeros(x.shape[0], x.shape[1] - y.shape[1], *x.shape[2:])
    return x + torch.cat([zeros, y], dim=1)


def test_check_1_accepts_solutions(capsys):
    ex.check_1(_pad_solution)
    ex.check_1(_cat_solution)
    ex.check_1(meliusnet.improve_last)
    assert "ex-meliusnet-1" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, y: x + F.pad(y, (0, 0, 0, 0, 0, x.shape[1] - y.shape[1])), "FIRST k channels"),
    (lambda x, y: torch.cat([x, y], dim=1), "keeps the shape"),
    (lambda x, y: x - _pad_solution(torch.zeros_like(x), y), "zeros for the first"),
    (lambda x, y: "x", "Tensor"),
])
def test_check_1_rejects_wrong(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def _cost(c, k, pattern, kernel):
    weights = 0
    for block in pattern:
        weights += c * k * kernel[0] * kernel[1]
        c += k if block == "D" else 0
    return c, weights


def _cost_closed_form(c, k, pattern, kernel):
    # block i reads c + k * (number of D before it) channels
    reads = [c + k * pattern[:i].count("D") for i in range(len(pattern))]
    return c + k * pattern.count("D"), sum(reads) * k * kernel[0] * kernel[1]


def test_check_2_accepts_solutions(capsys):
    ex.check_2(_cost)
    ex.check_2(_cost_closed_form)
    ex.check_2(lambda c, k, p, kernel: [_cost(c, k, p, kernel)[0], float(_cost(c, k, p, kernel)[1])])
    assert "ex-meliusnet-2" in capsys.readouterr().out


def _improvement_grows(c, k, pattern, kernel):
    weights = 0
    for _ in pattern:
        weights += c * k * kernel[0] * kernel[1]
        c += k
    return c, weights


def _no_kernel(c, k, pattern, kernel):
    return _cost(c, k, pattern, (1, 1))


def _counts_as_dense(c, k, pattern, kernel):
    return _cost(c, k, pattern, kernel)[0], _cost(c, k, pattern.replace("I", "D"), kernel)[1]


def _reads_only_base(c, k, pattern, kernel):
    return c + k * pattern.count("D"), len(pattern) * c * k * kernel[0] * kernel[1]


@pytest.mark.parametrize("wrong, hint", [
    (_improvement_grows, "does not add channels"),
    (_no_kernel, "kernel is missing"),
    (_counts_as_dense, "dense blocks only"),
    (_reads_only_base, "ALL current channels"),
    (lambda c, k, p, kernel: 3, "pair"),
])
def test_check_2_rejects_wrong(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
