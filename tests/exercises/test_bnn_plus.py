"""The self-checks of the BNN+ chapter: solutions pass, other correct answers pass, plausible mistakes fail with a
hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import bnn_plus as ex
from qteach.papers import bnn_plus as bp

LABEL = "ex-bnn_plus-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def best_alpha(w, kind):
    return w.abs().mean() if kind == "l2" else w.abs().median()


def best_alpha_by_descent(w, kind):
    """Another correct answer: minimise the regularizer numerically (gradient descent for l2, a grid for l1)."""
    if kind == "l2":
        alpha = torch.tensor(0.0, requires_grad=True)
        opt = torch.optim.SGD([alpha], lr=0.4)
        for _ in range(300):
            opt.zero_grad()
            bp.regularizer(w, alpha, "l2").backward()
            opt.step()
        return alpha.item()
    grid = w.abs().sort().values  # the minimum of a piecewise-linear convex function lies on a kink
    values = torch.stack([bp.regularizer(w, a.item(), "l1") for a in grid])
    return grid[values.argmin()].item()


def best_alpha_upper_median(w, kind):
    """Another correct answer for even sizes: the upper median also minimises R_1."""
    a = w.abs().sort().values
    return a.mean().item() if kind == "l2" else a[len(a) // 2].item()


def test_check_1_passes(capsys):
    ex.check_1(best_alpha)
    assert "✅ ex-bnn_plus-1 passed" in capsys.readouterr().out
    ex.check_1(best_alpha_by_descent)
    ex.check_1(best_alpha_upper_median)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, kind: w.abs().median(), "mean of |w|, not the median"),
    (lambda w, kind: w.abs().mean(), "median of |w|, not the mean"),
    (lambda w, kind: w.mean() if kind == "l2" else w.median(), "use the magnitudes"),
    (lambda w, kind: 1.0, "larger regularizer"),
    (lambda w, kind: w.abs(), "single number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def turning_point(beta):
    lo, hi = 1.0, 4.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * math.tanh(mid / 2) < 2 else (lo, mid)
    return lo / beta


def turning_point_from_gradient(beta):
    """Another correct answer: the first grid point where the module's derivative turns negative."""
    x = torch.linspace(0, 10 / beta, 200001, dtype=torch.float64)
    d = bp.sign_swish_derivative(x, beta)
    return x[(d < 0).nonzero()[0]].item()


def test_check_2_passes(capsys):
    ex.check_2(turning_point)
    assert "✅ ex-bnn_plus-2 passed" in capsys.readouterr().out
    ex.check_2(turning_point_from_gradient)


@pytest.mark.parametrize("wrong,hint", [
    (lambda beta: 2.3994, "divide by beta"),
    (lambda beta: 2.3994 * beta, "multiplied instead of divided"),
    (lambda beta: 2 / beta, "tanh(t / 2) is not 1"),
    (lambda beta: -2.3994 / beta, "positive crossing"),
    (lambda beta: 1 / beta, "bisection on [1, 4]"),
    (lambda beta: "2.4", "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
