"""The self-checks of the MetaQuant chapter: solutions pass, other correct answers pass, plausible mistakes fail
with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach.exercises import metaquant as ex

LABEL = "ex-metaquant-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------------


def factor_by_matrices(meta):
    linears = [m for m in meta.net if isinstance(m, nn.Linear)]
    product = linears[0].weight
    for m in linears[1:]:
        product = m.weight @ product
    return product.item()


def factor_by_evaluation(meta):
    """Another correct answer: evaluate the network at W~ = 1 (or divide its output at any w != 0 by w)."""
    with torch.no_grad():
        return (meta(torch.tensor([0.5])) / 0.5).item()


def factor_sum(meta):
    return sum(m.weight.sum() for m in meta.net if isinstance(m, nn.Linear)).item()


def factor_outer_sums(meta):
    linears = [m for m in meta.net if isinstance(m, nn.Linear)]
    return (linears[0].weight.sum() * linears[-1].weight.sum()).item()


def test_check_1_passes(capsys):
    ex.check_1(factor_by_matrices)
    assert "✅ ex-metaquant-1 passed" in capsys.readouterr().out
    ex.check_1(factor_by_evaluation)


@pytest.mark.parametrize("wrong,hint", [(factor_sum, "compose"), (factor_outer_sums, "W2 @ W1"),
                                        (lambda meta: 1.0, "multiply all the weight matrices")])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as info:
        ex.check_1(wrong)
    assert hint in str(info.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------------


def uphill_fraction(c, w_tilde):
    return (c * w_tilde < 0).float().mean().item()


def uphill_fraction_by_signs(c, w_tilde):
    """Another correct answer: compare the signs of the two gradients for a gradient of ones."""
    g = torch.ones_like(w_tilde)
    meta_grad, ste_grad = c * g * w_tilde, g * (w_tilde.abs() <= 1)
    return float((torch.sign(meta_grad) * torch.sign(ste_grad) < 0).sum()) / w_tilde.numel()


def test_check_2_passes(capsys):
    ex.check_2(uphill_fraction)
    assert "✅ ex-metaquant-2 passed" in capsys.readouterr().out
    ex.check_2(uphill_fraction_by_signs)


@pytest.mark.parametrize("wrong,hint", [
    (lambda c, w: (c * w <= 0).float().mean().item(), "W~ = 0"),
    (lambda c, w: (w < 0).float().mean().item(), "sign of c"),
    (lambda c, w: float((c * w < 0).sum()), "not a count"),
    (lambda c, w: (c * w > 0).float().mean().item(), "opposite"),
    (lambda c, w: 0.5, "agree in sign"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as info:
        ex.check_2(wrong)
    assert hint in str(info.value)


def test_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")

    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
