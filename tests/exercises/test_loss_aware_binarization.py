"""The self-checks of the loss-aware binarization chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import loss_aware_binarization as ex
from qteach.papers import loss_aware_binarization as lab

LABEL = "ex-loss_aware_binarization-{}"


# --- exercise 1 -----------------------------------------------------------------------------------------------


def official_alpha(w, acc):
    L = acc.sqrt() + 1e-8
    return (L * w).abs().sum() / L.sum()


def official_alpha_numpy(w, acc):
    """Another correct answer: numpy, returns a float."""
    import numpy as np

    L = np.sqrt(acc.numpy()) + 1e-8
    return float(np.abs(L * w.numpy()).sum() / L.sum())


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(official_alpha)
    assert "✅ ex-loss_aware_binarization-1 passed" in capsys.readouterr().out


def test_check_1_accepts_other_forms():
    ex.check_1(official_alpha_numpy)
    ex.check_1(lambda w, acc: lab.lab_binarize(w, acc.sqrt() + 1e-8)[0])


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, acc: w.abs().mean(), "BWN's mean |w|"),
    (lambda w, acc: ((acc + 1e-8) * w.abs()).sum() / (acc + 1e-8).sum(), "not acc"),
    (lambda w, acc: (acc.sqrt() * w.abs()).sum() / acc.sqrt().sum(), "not finite"),
    (lambda w, acc: ((acc.sqrt() + 1e-8) * w.abs()).sum(), "divide the weighted sum"),
    (lambda w, acc: w.abs().max(), "expected alpha"),
    (lambda w, acc: w.abs(), "one alpha"),
    (lambda w, acc: "0.1", "tensor or a number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 -----------------------------------------------------------------------------------------------


def prox_newton_step(w_hat, grad, d):
    w = w_hat - grad / d
    alpha = (d * w.abs()).sum() / d.sum()
    return alpha, sign(w)


def prox_newton_step_by_minimizing(w_hat, grad, d):
    """Another correct answer: alpha from the weighted least squares of b = sign(w), as a float."""
    w = w_hat - grad / d
    b = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    return float((d * w * b).sum() / (d * b * b).sum()), b


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(prox_newton_step)
    assert "✅ ex-loss_aware_binarization-2 passed" in capsys.readouterr().out


def test_check_2_accepts_other_forms():
    ex.check_2(prox_newton_step_by_minimizing)
    ex.check_2(lambda w_hat, grad, d: lab.lab_binarize(w_hat - grad / d, d))


@pytest.mark.parametrize("wrong,hint", [
    (lambda w_hat, grad, d: lab.lab_binarize(w_hat - grad * d, d), "divides the gradient by the curvature"),
    (lambda w_hat, grad, d: lab.lab_binarize(w_hat - grad, d), "scale the gradient by 1 / d"),
    (lambda w_hat, grad, d: lab.lab_binarize(w_hat - grad / d), "BWN's mean |w|"),
    (lambda w_hat, grad, d: (lab.lab_binarize(w_hat - grad / d, d)[0], torch.sign(w_hat - grad / d)), "sign(0)"),
    (lambda w_hat, grad, d: lab.lab_binarize(w_hat, d), "stepped weights"),
    (lambda w_hat, grad, d: (0.5 * lab.lab_binarize(w_hat - grad / d, d)[0], sign(w_hat - grad / d)), "expected alpha"),
    (lambda w_hat, grad, d: (1.0,), "return a pair"),
    (lambda w_hat, grad, d: (torch.ones(2), sign(w_hat)), "one number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
