"""The self-checks of "High-Order Residual Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import horq as ex
from qteach.papers import horq

LABEL = "ex-horq-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def order_needed(x, tolerance):
    norms = horq.residual_norms(x, 32)
    return next(k for k in range(1, 33) if norms[k] <= tolerance * norms[0])


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(order_needed)
    assert line.startswith("✅ " + LABEL.format(1)) and "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, t: order_needed(x, t) + 1, "not ||R_(K+1)||^2"),
    (lambda x, t: order_needed(x, t) - 1, "R_0 = x"),
    (lambda x, t: 7, "residual norms"),
    (lambda x, t: float(order_needed(x, t)), "int"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


# --- exercise 2 ---------------------------------------------------------------------------------------------

def refit_betas(x, signs):
    h = torch.stack(signs, dim=1)
    return torch.linalg.lstsq(h, x[:, None]).solution.flatten()


def normal_equations(x, signs):  # a list of floats, float64, solved with solve()
    h = torch.stack(signs, dim=1).double()
    return torch.linalg.solve(h.T @ h, h.T @ x.double()).tolist()


def greedy(x, signs):
    betas, _ = horq.residual_binarize(x, len(signs), dims=0)
    return [b.item() for b in betas]


def test_check_2_passes_the_solutions(capsys):
    line = ex.check_2(refit_betas)
    assert line.startswith("✅ " + LABEL.format(2)) and "order 2: greedy" in capsys.readouterr().out
    ex.check_2(normal_equations)
    ex.check_2(lambda x, signs: torch.linalg.pinv(torch.stack(signs, dim=1)) @ x)


@pytest.mark.parametrize("wrong, hint", [
    (greedy, "greedy scales"),
    (lambda x, signs: [(x * s).mean() for s in signs], "not orthogonal"),
    (lambda x, signs: [x.abs().mean()] * len(signs), "least-squares problem"),
    (lambda x, signs: refit_betas(x, signs)[:1], "one per sign tensor"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message, message
