"""The self-checks of the XNOR-Net chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import xnor_net as ex

LABEL = "ex-xnor_net-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def predicted_errors():
    return math.sqrt(1 - 2 / math.pi), math.sqrt(1 - 4 / math.pi**2)


def simulated_errors():
    """Another correct answer: measure it (float64, many long windows)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 256, generator=g, dtype=torch.float64)
    w = torch.randn(20000, 256, generator=g, dtype=torch.float64)
    exact = (x * w).sum(1)
    alpha, beta = w.abs().mean(1), x.abs().mean(1)
    bwn = (x * sign(w)).sum(1) * alpha
    xnor = (sign(x) * sign(w)).sum(1) * alpha * beta
    rel = lambda approx: ((approx - exact).norm() / exact.norm()).item()
    return rel(bwn), rel(xnor)


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(predicted_errors)
    assert "✅ ex-xnor_net-1 passed" in capsys.readouterr().out


def test_check_1_accepts_a_measurement_and_other_forms():
    ex.check_1(simulated_errors)
    ex.check_1(lambda: [torch.tensor(0.60), 0.77])  # rounded, a list, a 0-d tensor


@pytest.mark.parametrize("wrong,hint", [
    (lambda: (1 - 2 / math.pi, 1 - 4 / math.pi**2), "squared errors"),
    (lambda: (math.sqrt(1 - 4 / math.pi**2), math.sqrt(1 - 2 / math.pi)), "swapped"),
    (lambda: (math.sqrt(1 - 2 / math.pi),) * 2, "bwn is right; for xnor"),
    (lambda: (math.sqrt(1 - 2 / math.pi), 1 - 4 / math.pi**2), "bwn is right; for xnor"),
    (lambda: (math.sqrt(1 - 2 / math.pi), 0.9), "bwn is right; for xnor"),
    (lambda: (math.sqrt(2 / math.pi), 0.9), "optimal alpha, not the error"),
    (lambda: (0.3, 0.4), "terms of the sum are independent"),
    (lambda: 0.6, "return a pair"),
    (lambda: ("0.6", 0.77), "should be a number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def binary_filter(w):
    dims = tuple(range(1, w.dim()))
    return w.abs().mean(dim=dims, keepdim=True), sign(w)


def bf_torch_sign(w):
    alpha, _ = binary_filter(w)
    return alpha, torch.sign(w)


def bf_one_alpha(w):
    return w.abs().mean(), sign(w)


def bf_mean_not_abs(w):
    dims = tuple(range(1, w.dim()))
    return w.mean(dim=dims, keepdim=True), sign(w)


def bf_l1_not_divided(w):
    dims = tuple(range(1, w.dim()))
    return w.abs().sum(dim=dims, keepdim=True), sign(w)


def bf_no_keepdim(w):
    dims = tuple(range(1, w.dim()))
    return w.abs().mean(dim=dims), sign(w)


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(binary_filter)
    assert "✅ ex-xnor_net-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (bf_torch_sign, "torch.sign(0) is 0"),
    (bf_one_alpha, "one value per filter"),
    (bf_mean_not_abs, "mean of |W|"),
    (bf_l1_not_divided, "divide the L1 norm by n"),
    (bf_no_keepdim, "keepdim=True"),
    (lambda w: sign(w), "return a pair"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
