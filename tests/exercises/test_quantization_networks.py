"""The self-checks of the Quantization Networks chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import quantization_networks as ex

LABEL = "ex-quantization_networks-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def soft_quantize(x, levels, biases, T):
    s = levels[1:] - levels[:-1]
    return (s * torch.sigmoid(T * (x[:, None] - biases))).sum(1) + levels[0]


def soft_quantize_loop(x, levels, biases, T):
    """Another correct answer: a loop over the sigmoids, 1 / (1 + exp(-z)) written out, offset subtracted."""
    y = torch.zeros_like(x)
    for i in range(len(biases)):
        y = y + (levels[i + 1] - levels[i]) / (1 + torch.exp(-T * (x - biases[i])))
    return y - (-levels[0])


def no_offset(x, levels, biases, T):
    return soft_quantize(x, levels, biases, T) - levels[0]


def no_gaps(x, levels, biases, T):
    return torch.sigmoid(T * (x[:, None] - biases)).sum(1) + levels[0]


def bias_sign(x, levels, biases, T):
    return ((levels[1:] - levels[:-1]) * torch.sigmoid(T * (x[:, None] + biases))).sum(1) + levels[0]


def no_temperature(x, levels, biases, T):
    return soft_quantize(x, levels, biases, 1.0)


def test_check_1_passes(capsys):
    ex.check_1(soft_quantize)
    assert f"✅ {LABEL.format(1)} passed" in capsys.readouterr().out
    ex.check_1(soft_quantize_loop)


@pytest.mark.parametrize("wrong,hint", [
    (no_offset, "offset is missing"),
    (no_gaps, "weighted by its gap"),
    (bias_sign, "sign of the bias"),
    (no_temperature, "temperature is missing"),
    (lambda x, levels, biases, T: x[:3], "one value per input"),
    (lambda x, levels, biases, T: torch.round(x).clamp(levels[0], levels[-1]), "expected sum_i"),
    (lambda x, levels, biases, T: 3, "the result"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def min_temperature(delta, eps):
    return math.log((1 - eps) / eps) / delta


def min_temperature_logit(delta, eps):
    """Another correct answer: the logit of 1 - eps, with torch."""
    return (torch.logit(torch.tensor(1 - eps, dtype=torch.float64)) / delta).item()


def test_check_2_passes(capsys):
    ex.check_2(min_temperature)
    assert f"✅ {LABEL.format(2)} passed" in capsys.readouterr().out
    ex.check_2(min_temperature_logit)


@pytest.mark.parametrize("wrong,hint", [
    (lambda d, e: math.log(1 / e) / d, "not ln(1/eps)"),
    (lambda d, e: math.log((1 - e) / e) * d, "divide by delta"),
    (lambda d, e: math.log10((1 - e) / e) / d, "natural logarithm"),
    (lambda d, e: math.log(e / (1 - e)) / d, "the sign"),
    (lambda d, e: 1 / d, "solve"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)


def test_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")
    ex.check_1(stub)
    ex.check_2(stub)
    assert "not attempted" in capsys.readouterr().out
