"""The self-checks of the DSQ chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import differentiable_soft_quantization as ex


def parameters(alpha, delta):
    return math.log(2 / alpha - 1) / delta, 1 / (1 - alpha)


def parameters_atanh(alpha, delta):
    """Another correct answer: tensors, k from atanh(1 - alpha)."""
    a = torch.tensor(alpha, dtype=torch.float64)
    return [2 * torch.atanh(1 - a) / delta, 1 / (1 - a)]


def test_check_1_accepts_solutions(capsys):
    ex.check_1(parameters)
    ex.check_1(parameters_atanh)
    assert "ex-differentiable_soft_quantization-1" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, d: (math.log(2 / a - 1) / d, 1 / a), "1 / \\(1 - alpha\\)"),
    (lambda a, d: (math.log(2 / a - 1), 1 / (1 - a)), "divide by delta"),
    (lambda a, d: (0.5 * math.log(2 / a - 1) / d, 1 / (1 - a)), "factor 2"),
    (lambda a, d: (math.log(2 / a + 1) / d, 1 / (1 - a)), "check tanh"),
    (lambda a, d: 1.0, "pair"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def peak(alpha):
    return math.log(2 / alpha - 1) / (2 * (1 - alpha))


def peak_via_atanh(alpha):
    """Another correct answer: delta = 1 cancels, k s / 2 with k = 2 atanh(1 - alpha)."""
    return float(torch.atanh(torch.tensor(1 - alpha, dtype=torch.float64))) / (1 - alpha)


def test_check_2_accepts_solutions(capsys):
    ex.check_2(peak)
    ex.check_2(peak_via_atanh)
    assert "ex-differentiable_soft_quantization-2" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda a: math.log(2 / a - 1) / (1 - a), "twice"),
    (lambda a: 1.0, "STE"),
    (lambda a: math.log(2 / a - 1) / 2, "autograd"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
