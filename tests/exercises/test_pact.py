"""The self-checks of the PACT chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import pact as ex
from qteach.papers import pact

LABEL = "ex-pact-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def alpha_grad(x, alpha, g):
    return (g * (x >= alpha)).sum()


def alpha_grad_autograd(x, alpha, g):
    """Another correct answer: let autograd run the module's backward."""
    a = torch.tensor(float(alpha), requires_grad=True)
    pact.pact_quantize(x, a, 3).backward(g)
    return a.grad.item()


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(alpha_grad)
    assert "✅ ex-pact-1 passed" in capsys.readouterr().out


def test_check_1_accepts_other_forms():
    ex.check_1(alpha_grad_autograd)
    ex.check_1(lambda x, a, g: float(g[x >= a].sum()))


@pytest.mark.parametrize("wrong,hint", [
    (lambda x, a, g: (x >= a).sum(), "number of clipped inputs"),
    (lambda x, a, g: (g * ((x >= 0) & (x < a))).sum(), "input* gradient"),
    (lambda x, a, g: (g * (x >= 0)).sum(), "only the clipped inputs"),
    (lambda x, a, g: g * (x >= a), "sum the per-input terms"),
    (lambda x, a, g: (g * (x < a)).sum(), "expected sum"),
    (lambda x, a, g: "1", "should be a number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def best_alpha(x, bits):
    grid = torch.linspace(0.05, float(x.max()), 300)
    errors = torch.stack([((pact.pact_quantize(x, a, bits) - x) ** 2).mean() for a in grid])
    return grid[errors.argmin()]


def best_alpha_golden(x, bits):
    """Another correct answer: a golden-section search (the error is close to unimodal in alpha)."""
    lo, hi = 0.05, 5.0
    f = lambda a: ((pact.pact_quantize(x, a, bits) - x) ** 2).mean().item()
    for _ in range(60):
        m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, m2) if f(m1) < f(m2) else (m1, hi)
    return (lo + hi) / 2


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(best_alpha)
    assert "✅ ex-pact-2 passed" in capsys.readouterr().out


def test_check_2_accepts_another_search():
    ex.check_2(best_alpha_golden)


def against_clipped(x, bits):
    grid = torch.linspace(0.05, float(x.max()), 300)
    errors = torch.stack([((pact.pact_quantize(x, a, bits) - torch.clamp(x, 0, a)) ** 2).mean() for a in grid])
    return grid[errors.argmin()]


@pytest.mark.parametrize("wrong,hint", [
    (lambda x, bits: x.max(), "clips nothing"),
    (lambda x, bits: 1.0, "same alpha for every bit width"),
    (against_clipped, "not against the clipped x"),
    (lambda x, bits: -1.0, "must be > 0"),
    (lambda x, bits: torch.ones(2), "single number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
