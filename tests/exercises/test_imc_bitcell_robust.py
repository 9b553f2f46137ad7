"""The self-checks of the IMC bit-cell chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import imc_bitcell_robust as ex

LABEL = "ex-imc_bitcell_robust-{}"


def tuned_pulse(pulse, corner):
    return pulse * math.exp(corner)


def tuned_pulse_solved(pulse, corner):          # another correct answer: solve numerically, as a tensor
    target = -math.expm1(-pulse)
    return torch.tensor(-math.exp(corner) * math.log1p(-target), dtype=torch.float64)


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(tuned_pulse).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out
    assert ex.check_1(tuned_pulse_solved).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, c: t * math.exp(-c), "direction is reversed"),
    (lambda t, c: t * (1 + c), "first-order"),
    (lambda t, c: t + c, "multiplies the time constant"),
    (lambda t, c: "long", "should be a number"),
    (lambda t, c: 2 * t, "T / tau only"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        ex.check_1(wrong)
    assert str(err.value).startswith(LABEL.format(1))


def match_threshold(gamma, beta, mean, var, eps, bias, k):
    return (k - bias + mean - beta * math.sqrt(var + eps) / gamma) / 2


def match_threshold_other_form(gamma, beta, mean, var, eps, bias, k):   # s-threshold first, then m
    s_threshold = mean - beta * (var + eps) ** 0.5 / gamma
    return torch.tensor((s_threshold - bias + k) / 2)


def test_check_2_passes_the_solution():
    assert ex.check_2(match_threshold).startswith("✅ " + LABEL.format(2))
    assert ex.check_2(match_threshold_other_form).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda g, b, m, v, e, c, k: k - c + m - b * math.sqrt(v + e) / g, "divide by 2"),
    (lambda g, b, m, v, e, c, k: (k + c + m - b * math.sqrt(v + e) / g) / 2, "subtract it"),
    (lambda g, b, m, v, e, c, k: (k - c + m + b * math.sqrt(v + e) / g) / 2, "beta pushes"),
    (lambda g, b, m, v, e, c, k: (k - c + m - b * math.sqrt(v) / g) / 2, "keep eps"),
    (lambda g, b, m, v, e, c, k: (k - c + m - b * g / math.sqrt(v + e)) / 2, "move beta across"),
    (lambda g, b, m, v, e, c, k: None, "should be a number"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        ex.check_2(wrong)
    assert str(err.value).startswith(LABEL.format(2))
