"""The self-checks of the BCGD chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import blended_coarse_gradient_descent as ex
from qteach.papers import blended_coarse_gradient_descent as bcgd

SIGN = lambda w: torch.where(w >= 0, 1.0, -1.0)  # noqa: E731


def bcgd_step(w_f, grad, lr, rho):
    w = w_f.abs().mean() * torch.where(w_f >= 0, 1.0, -1.0)
    return (1 - rho) * w_f + rho * w - lr * grad


def test_check_1_passes(capsys):
    ex.check_1(bcgd_step)
    ex.check_1(lambda w_f, grad, lr, rho: w_f + rho * (bcgd.quantize_binary(w_f) - w_f) - lr * grad)
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, g, lr, rho: (1 - rho) * w + rho * SIGN(w) - lr * g, "scale is missing"),
    (lambda w, g, lr, rho: (1 - rho) * w + rho * w.abs().mean() * torch.sign(w) - lr * g, "torch.sign"),
    (lambda w, g, lr, rho: rho * w + (1 - rho) * w.abs().mean() * SIGN(w) - lr * g, "swapped"),
    (lambda w, g, lr, rho: (1 - rho) * w + rho * w.abs().mean() * SIGN(w) + lr * g, "uphill"),
])
def test_check_1_wrong_answers_fail(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def rest_distance(grad_norm, lr, rho):
    return math.inf if rho == 0 else lr / rho * grad_norm


def test_check_2_passes(capsys):
    ex.check_2(rest_distance)
    ex.check_2(lambda n, lr, rho: torch.tensor(lr * n / rho) if rho else float("inf"))
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, lr, rho: rho / lr * n, "swapped"),
    (lambda n, lr, rho: lr / rho if rho else math.inf, "norm"),
    (lambda n, lr, rho: lr * n, "divide by rho"),
    (lambda n, lr, rho: lr / rho * n if rho else 0.0, "rho = 0"),
])
def test_check_2_wrong_answers_fail(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
