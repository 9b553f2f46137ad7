"""Self-checks of the improved BNN training chapter (notebooks/2019/improved_bnn_training.ipynb).

Each check calls the student's function (or reads the student's number), compares it with a closed form, and
either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math
import numbers

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "improved_bnn_training"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the derivative of the smooth sign -------------------------------------------------------------


def _grad(x, lam):
    s = torch.sigmoid(lam * x)
    return 2 * lam * s * (1 - s)


@self_check
def check_1(smooth_sign_grad) -> str:
    """Check ``smooth_sign_grad(x, lam)``: the derivative of 2 sigmoid(lam x) - 1 with respect to x."""
    label = _label(1)
    expect(callable(smooth_sign_grad), label, "pass your function itself, e.g. check_1(smooth_sign_grad)")
    x = torch.linspace(-3, 3, 121)
    for lam in (3.0, 5.0, 30.0):  # not 0.5, 1 or 2, where the wrong forms below coincide with the right one
        got = smooth_sign_grad(x.clone(), lam)
        expect_type(got, torch.Tensor, label, "smooth_sign_grad(x, lam)")
        expect(got.shape == x.shape, label, f"the derivative has one value per input: shape {tuple(x.shape)}")
        s = torch.sigmoid(lam * x)
        if torch.allclose(got, s * (1 - s), atol=1e-5) or torch.allclose(got, 2 * s * (1 - s), atol=1e-5):
            fail(label, "the chain rule: d/dx sigmoid(lam x) = lam sigmoid(lam x)(1 - sigmoid(lam x)); the "
                        "factor lam is missing.")
        if torch.allclose(got, lam * s * (1 - s), atol=1e-5):
            fail(label, "the factor 2 of 2 sigmoid(lam x) - 1 is missing.")
        expect(torch.allclose(got, _grad(x, lam), rtol=1e-4, atol=1e-4), label,
               "d/dx [2 sigmoid(lam x) - 1] = 2 lam sigmoid(lam x) (1 - sigmoid(lam x)) "
               "(equivalently lam / 2 (1 - tanh(lam x / 2)^2)).")
    return passed(label, "the peak lam / 2 at x = 0 grows with lam while the tails vanish")


# --- exercise 2: how large must lambda be? --------------------------------------------------------------------


def lam_for(coverage: float = 0.99, closeness: float = 0.1) -> float:
    """The lam for which ``coverage`` of unit-normal inputs give |2 sigmoid(lam x) - 1| >= 1 - closeness."""
    t = math.sqrt(2) * torch.special.erfinv(torch.tensor(1 - coverage, dtype=torch.float64)).item()
    return 2 * math.atanh(1 - closeness) / t


_CASES = ((0.99, 0.1), (0.95, 0.05), (0.9, 0.2))


@self_check
def check_2(needed_lambda) -> str:
    """Check ``needed_lambda(coverage, closeness)``: the lam for which ``coverage`` of unit-normal inputs give a
    smooth sign within ``closeness`` of their sign."""
    label = _label(2)
    expect(callable(needed_lambda), label, "pass your function itself, e.g. check_2(needed_lambda)")
    for coverage, closeness in _CASES:
        lam = needed_lambda(coverage, closeness)
        expect(isinstance(lam, numbers.Real) and not isinstance(lam, bool), label,
               f"needed_lambda should return a number, got {type(lam).__name__}")
        target = lam_for(coverage, closeness)
        if abs(lam - target / 2) / target < 0.015:
            fail(label, "2 sigmoid(lam x) - 1 = tanh(lam x / 2): the threshold is 2 atanh(1 - closeness) / lam, "
                        "not atanh(1 - closeness) / lam.")
        wrong = 2 * math.atanh(1 - closeness) / (math.sqrt(2) * torch.special.erfinv(
            torch.tensor(coverage, dtype=torch.float64)).item())
        if abs(lam - wrong) / wrong < 0.03:
            fail(label, "the inputs near 0 are the problem: a fraction 1 - coverage of the inputs may have |x| "
                        "below the threshold t, so P(|x| < t) = 1 - coverage, not coverage.")
        expect(abs(lam - target) / target < 0.03, label,
               f"for coverage {coverage} and closeness {closeness}: |2 sigmoid(lam x) - 1| >= 1 - closeness means "
               "|x| >= t = 2 atanh(1 - closeness) / lam; for a unit normal P(|x| < t) = 1 - coverage gives "
               "t = sqrt(2) erfinv(1 - coverage); then lam = 2 atanh(1 - closeness) / t.")
    return passed(label, f"99 % within 0.1 needs lam of about {lam_for():.0f}: far above the 30 our schedule "
                         "ends with")
