"""The self-checks of the trained-binarization chapter: solutions pass, other correct answers pass, plausible
mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import trained_binarization as ex
from qteach.papers import trained_binarization as tb

LABEL = "ex-trained_binarization-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def scale_grad(w, grad_w_tilde, alpha, lam):
    return (grad_w_tilde * torch.sign(w)).sum(dim=1, keepdim=True) + 2 * lam * alpha


def scale_grad_by_autograd(w, grad_w_tilde, alpha, lam):
    """Another correct answer: autograd through the module's quantizer, returned flat."""
    q = tb.TrainedScaleWeight(w.shape[0]).double()
    q.initialised.fill_(True)
    with torch.no_grad():
        q.alpha.copy_(alpha)
    ((q(w) * grad_w_tilde).sum() + lam * q.alpha.pow(2).sum()).backward()
    return q.alpha.grad.flatten()


def test_check_1_passes(capsys):
    ex.check_1(scale_grad)
    assert "✅ ex-trained_binarization-1 passed" in capsys.readouterr().out
    ex.check_1(scale_grad_by_autograd)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, g, a, lam: (g * torch.sign(w)).sum(dim=1, keepdim=True), "left it out"),
    (lambda w, g, a, lam: (g * torch.sign(w)).sum(dim=1, keepdim=True) + lam * a, "not lam * alpha"),
    (lambda w, g, a, lam: (g * w).sum(dim=1, keepdim=True) + 2 * lam * a, "not by W"),
    (lambda w, g, a, lam: ((g * torch.sign(w)).sum(dim=1, keepdim=True) + 2 * lam * a).sum(), "per output"),
    (lambda w, g, a, lam: g.sum(dim=1, keepdim=True), "sum_i dL/dW~_oi"),
    (lambda w, g, a, lam: 1.0, "return a tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def gap(order):
    return 2 / (order + 1)


def gap_numerical(order):
    """Another correct answer: integrate |sign - F_k| with the module's F_k on a fine grid."""
    x = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    return torch.trapezoid((torch.sign(x) - tb.polynomial_sign(x, order)).abs(), x).item()


def test_check_2_passes(capsys):
    ex.check_2(gap)
    assert "✅ ex-trained_binarization-2 passed" in capsys.readouterr().out
    ex.check_2(gap_numerical)


@pytest.mark.parametrize("wrong,hint", [
    (lambda k: 1 / (k + 1), "one side only"),
    (lambda k: 2.0, "area under the derivative"),
    (lambda k: -2 / (k + 1), "positive"),
    (lambda k: 2 / k, "integrate it and double it"),
    (lambda k: "two", "number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
