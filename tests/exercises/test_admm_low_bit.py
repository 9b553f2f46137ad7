"""The self-checks of the ADMM low-bit chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import admm_low_bit as ex
from qteach.papers import admm_low_bit as admm


# --- exercise 1 ---------------------------------------------------------------------------------------------

def project_pow2(v):
    levels = torch.tensor([0.0, 1.0, 2.0, 4.0])
    alpha, q = v.abs().mean(), None
    for _ in range(50):
        x = v / alpha
        q_new = torch.sign(x) * levels[(x.abs().unsqueeze(-1) - levels).abs().argmin(-1)]
        if q is not None and torch.equal(q, q_new):
            break
        q = q_new
        alpha = (v * q).sum() / (q * q).sum()
    return alpha * q, alpha


def project_pow2_other_start(v):
    """Another correct answer: start from the largest magnitude / 4 and use the library's rounding."""
    return admm.project(v, admm.POWERS_OF_TWO, alpha=v.abs().max() / 4, iters=100)


def test_check_1_passes(capsys):
    ex.check_1(project_pow2)
    ex.check_1(project_pow2_other_start)
    assert capsys.readouterr().out.count("✅ ex-admm_low_bit-1 passed") == 2


def test_check_1_ternary_levels_fail():
    with pytest.raises(AssertionError, match="ternary"):
        ex.check_1(lambda v: admm.project(v, admm.TERNARY))


def test_check_1_one_round_without_alternating_fails():
    def one_round(v):  # rounds with alpha = mean|V| and never refits alpha
        alpha = v.abs().mean()
        return alpha * admm.nearest_levels(v / alpha, admm.POWERS_OF_TWO), alpha

    with pytest.raises(AssertionError, match="least-squares|NEAREST"):
        ex.check_1(one_round)


def test_check_1_off_the_set_fails():
    with pytest.raises(AssertionError, match="0, \\+-1, \\+-2, \\+-4"):
        ex.check_1(lambda v: (v.clone(), v.abs().mean()))


# --- exercise 2 ---------------------------------------------------------------------------------------------

def proximal_step(w, g, lam, grad_f, rho, lr):
    return w - lr * (grad_f + rho * (w - g + lam))


def test_check_2_passes(capsys):
    ex.check_2(proximal_step)
    ex.check_2(lambda w, g, lam, grad_f, rho, lr: w - lr * admm.proximal_gradient(grad_f, w, g, lam, rho))
    assert capsys.readouterr().out.count("✅ ex-admm_low_bit-2 passed") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, g, lam, gf, rho, lr: w - lr * (gf + rho * (w - g - lam)), "plus sign"),
    (lambda w, g, lam, gf, rho, lr: w - lr * (gf + (w - g + lam)), "multiply by rho"),
    (lambda w, g, lam, gf, rho, lr: w - lr * rho * (w - g + lam), "grad_f is missing"),
    (lambda w, g, lam, gf, rho, lr: w + lr * (gf + rho * (w - g + lam)), "uphill"),
])
def test_check_2_wrong_answers_fail(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
