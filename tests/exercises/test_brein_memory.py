"""The self-checks of the BRein Memory chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import brein_memory as ex


def flip_probability(margin, sigma):
    if sigma == 0:
        return torch.zeros(margin.shape)
    return 0.5 * torch.erfc(margin.abs().double() / (sigma * math.sqrt(2)))


def flip_probability_other(margin, sigma):        # another correct form: the normal CDF of torch.distributions
    if sigma == 0:
        return torch.zeros(len(margin), dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, sigma)
    return torch.where(margin >= 0, normal.cdf(-margin.float()), 1 - normal.cdf(-margin.float()))


def test_check_1_accepts_solutions(capsys):
    assert "passed" in ex.check_1(flip_probability)
    assert "passed" in ex.check_1(flip_probability_other)


@pytest.mark.parametrize("wrong,hint", [
    (lambda m, s: 2 * flip_probability(m, s), "one side"),
    (lambda m, s: 1 - flip_probability(m, s), "stays the same"),
    (lambda m, s: flip_probability(m, s ** 2), "standard deviation"),
    (lambda m, s: 0.5 * torch.erfc(m.double() / (s * math.sqrt(2))), "both signs"),
    (lambda m, s: 0.5, "Tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_sigma_zero_must_not_divide(capsys):
    def naive(m, s):
        return 0.5 * torch.erfc(m.abs().double() / (s * math.sqrt(2)))
    with pytest.raises((AssertionError, ZeroDivisionError)):
        ex.check_1(naive)


def fj_per_op(tops, watts):
    return watts / (tops * 1e12) * 1e15


def test_check_2_accepts_solutions(capsys):
    assert "passed" in ex.check_2(fj_per_op)
    assert "passed" in ex.check_2(lambda tops, watts: torch.tensor(1000.0 / (tops / watts)))


@pytest.mark.parametrize("wrong,hint", [
    (lambda t, w: t / w, "inverse"),
    (lambda t, w: fj_per_op(t, w) / 1000, "picojoules"),
    (lambda t, w: w / (t * 1e12), "joules"),
    (lambda t, w: w / t * 1e15, "tera-operation"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_stubs_are_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError
    assert "not attempted" in ex.check_1(stub)
    assert "not attempted" in ex.check_2(stub)
