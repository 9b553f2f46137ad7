"""The self-checks of the Apprentice chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.exercises import apprentice as ex

LABEL = "ex-apprentice-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def distillation_term(z_t, z_a, tau):
    return -(F.softmax(z_t / tau, dim=1) * F.log_softmax(z_a / tau, dim=1)).sum(dim=1).mean()


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(distillation_term)
    assert "✅ ex-apprentice-1 passed" in capsys.readouterr().out


def test_check_1_accepts_other_forms():
    ex.check_1(lambda z_t, z_a, tau: F.cross_entropy(z_a / tau, F.softmax(z_t / tau, dim=1)))
    ex.check_1(lambda z_t, z_a, tau: float(distillation_term(z_t, z_a, tau)))


@pytest.mark.parametrize("wrong,hint", [
    (lambda z_t, z_a, tau: distillation_term(z_a, z_t, tau), "swapped"),
    (lambda z_t, z_a, tau: -(F.softmax(z_t / tau, 1) * F.log_softmax(z_a, 1)).sum(1).mean(), "student's logits by tau"),
    (lambda z_t, z_a, tau: -(F.softmax(z_t, 1) * F.log_softmax(z_a / tau, 1)).sum(1).mean(), "teacher's logits by tau"),
    (lambda z_t, z_a, tau: distillation_term(z_t, z_a, tau) * z_t.shape[0], "sum over the batch"),
    (lambda z_t, z_a, tau: distillation_term(z_t, z_a, tau) / z_t.shape[1], "mean over every entry"),
    (lambda z_t, z_a, tau: F.kl_div(F.log_softmax(z_a / tau, 1), F.softmax(z_t / tau, 1), reduction="batchmean"),
     "KL divergence"),
    (lambda z_t, z_a, tau: F.cross_entropy(z_a, z_t.argmax(1)), "expected"),
    (lambda z_t, z_a, tau: torch.zeros(3), "one number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def gradient(z_t, z_a, y, beta, gamma, tau):
    n, c = z_a.shape
    p_a = F.softmax(z_a, 1)
    return (beta * (p_a - F.one_hot(y, c).float())
            + gamma / tau * (F.softmax(z_a / tau, 1) - F.softmax(z_t / tau, 1))) / n


def autograd_answer(z_t, z_a, y, beta, gamma, tau):
    leaf = z_a.clone().requires_grad_(True)
    loss = beta * F.cross_entropy(leaf, y) + gamma * F.cross_entropy(leaf / tau, F.softmax(z_t / tau, 1))
    (grad,) = torch.autograd.grad(loss, leaf)
    return grad


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(gradient)
    assert "✅ ex-apprentice-2 passed" in capsys.readouterr().out


def test_check_2_accepts_autograd():
    ex.check_2(autograd_answer)


def _soft(z_t, z_a, tau):
    return (F.softmax(z_a / tau, 1) - F.softmax(z_t / tau, 1)) / z_a.shape[0]


def _label_part(z_a, y, beta):
    return beta * (F.softmax(z_a, 1) - F.one_hot(y, z_a.shape[1]).float()) / z_a.shape[0]


@pytest.mark.parametrize("wrong,hint", [
    (lambda z_t, z_a, y, b, g, t: gradient(z_t, z_a, y, b, g, t) * z_a.shape[0], "divide by N"),
    (lambda z_t, z_a, y, b, g, t: _label_part(z_a, y, b) + g * _soft(z_t, z_a, t), "factor 1/tau"),
    (lambda z_t, z_a, y, b, g, t: _label_part(z_a, y, b) + g * t * _soft(z_t, z_a, t), "not tau"),
    (lambda z_t, z_a, y, b, g, t: _label_part(z_a, y, b), "add the distillation"),
    (lambda z_t, z_a, y, b, g, t: g / t * _soft(z_t, z_a, t), "add the student's label term"),
    (lambda z_t, z_a, y, b, g, t: _label_part(z_a, y, b) - g / t * _soft(z_t, z_a, t), "sign"),
    (lambda z_t, z_a, y, b, g, t: torch.zeros_like(z_a) + 1.0, "compare with autograd"),
    (lambda z_t, z_a, y, b, g, t: torch.zeros(2), "shape"),
    (lambda z_t, z_a, y, b, g, t: 0.0, "should be a Tensor"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
