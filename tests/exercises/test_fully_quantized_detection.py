"""The self-checks of the FQN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qteach.exercises import fully_quantized_detection as ex

LABEL = "ex-fully_quantized_detection-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def ink_levels(hi, bits):
    step = hi / (2**bits - 1)
    return sum(k * step <= 1 for k in range(2**bits))


def ink_levels_closed_form(hi, bits):
    """Another correct answer: a closed form with NumPy, returned as a 0-d tensor."""
    return torch.tensor(int(np.minimum(2**bits - 1, np.floor((2**bits - 1) / hi))) + 1)


def test_check_1_accepts_correct_answers(capsys):
    ex.check_1(ink_levels)
    ex.check_1(ink_levels_closed_form)
    assert "3 of the 16 levels" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda hi, bits: math.floor((2**bits - 1) / hi), "count level 0"),
    (lambda hi, bits: 2**bits, "every level"),
    (lambda hi, bits: min(2**bits - 1, math.floor(2**bits / hi)) + 1, r"2\^b - 1 steps"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def fold(weight, gamma, beta, mean, var, eps):
    factor = gamma / torch.sqrt(var + eps)
    return weight * factor[:, None], beta - mean * factor


def fold_rsqrt(weight, gamma, beta, mean, var, eps):
    """Another correct answer: rsqrt, diag matrix product, a list."""
    factor = gamma * torch.rsqrt(var + eps)
    return [torch.diag(factor) @ weight, beta - factor * mean]


def test_check_2_accepts_correct_answers(capsys):
    ex.check_2(fold)
    ex.check_2(fold_rsqrt)
    assert "fold_batch_norm" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, g, b, m, v, e: (w * (g / v.sqrt())[:, None], b - m * g / v.sqrt()), "without eps"),
    (lambda w, g, b, m, v, e: (w * (g / (v + e))[:, None], b - m * g / (v + e)), "divides by the variance"),
    (lambda w, g, b, m, v, e: (w * (g / (v + e).sqrt())[:, None], b), "b_fold is beta"),
    (lambda w, g, b, m, v, e: (w * (g / (v + e).sqrt())[:, None], b + m * g / (v + e).sqrt()), "wrong sign"),
    (lambda w, g, b, m, v, e: w * (g / (v + e).sqrt())[:, None], "pair"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
