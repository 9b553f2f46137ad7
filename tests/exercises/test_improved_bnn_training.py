"""The improved BNN training chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from qteach.exercises import improved_bnn_training as ex


def grad_solution(x, lam):
    s = torch.sigmoid(lam * x)
    return 2 * lam * s * (1 - s)


def grad_tanh(x, lam):  # another correct answer: 2 sigmoid(lam x) - 1 = tanh(lam x / 2)
    return lam / 2 * (1 - torch.tanh(lam * x / 2) ** 2)


def grad_autograd(x, lam):
    x = x.clone().requires_grad_(True)
    (2 * torch.sigmoid(lam * x) - 1).sum().backward()
    return x.grad


@pytest.mark.parametrize("answer", [grad_solution, grad_tanh, grad_autograd])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-improved_bnn_training-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda x, lam: torch.sigmoid(lam * x) * (1 - torch.sigmoid(lam * x)), "factor lam"),
    (lambda x, lam: lam * torch.sigmoid(lam * x) * (1 - torch.sigmoid(lam * x)), "factor 2"),
    (lambda x, lam: (x.abs() <= 1).float(), "2 lam sigmoid"),
    (lambda x, lam: 2.0, "smooth_sign_grad"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(answer)


def lam_solution(coverage, closeness):
    t = math.sqrt(2) * torch.special.erfinv(torch.tensor(1 - coverage, dtype=torch.float64)).item()
    return 2 * math.atanh(1 - closeness) / t


def lam_scipy(coverage, closeness):  # another correct answer: the normal quantile and tanh's inverse by name
    t = stats.norm.ppf(0.5 + (1 - coverage) / 2)
    return float(np.log((2 - closeness) / closeness) / t)


@pytest.mark.parametrize("answer", [lam_solution, lam_scipy])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-improved_bnn_training-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda c, d: lam_solution(c, d) / 2, "tanh"),
    (lambda c, d: 2 * math.atanh(1 - d) / (math.sqrt(2) * torch.special.erfinv(torch.tensor(c)).item()), "near 0"),
    (lambda c, d: 30.0, "erfinv"),
    (lambda c, d: "235", "number"),
    (235.0, "function"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(answer)
