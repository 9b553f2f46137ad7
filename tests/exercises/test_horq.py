"""The self-checks of "High-Order Residual Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import horq as ex
from qteach.papers import horq

LABEL = "ex-horq-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def horq_expand(x, order):
    terms, residual = [], x
    for _ in range(order):
        h = sign(residual)
        beta = residual.abs().mean()
        terms.append((beta, h))
        residual = residual - beta * h
    return terms


def torch_sign(x, order):
    terms, residual = [], x
    for _ in range(order):
        h = torch.sign(residual)
        beta = residual.abs().mean()
        terms.append((beta, h))
        residual = residual - beta * h
    return terms


def beta_of_x(x, order):
    terms, residual = [], x
    for _ in range(order):
        h = sign(residual)
        beta = x.abs().mean()
        terms.append((beta, h))
        residual = residual - beta * h
    return terms


def sign_of_x(x, order):
    return [(x.abs().mean() if i == 0 else (x - x.abs().mean() * sign(x)).abs().mean(), sign(x))
            for i in range(order)]


def beta_max(x, order):
    terms, residual = [], x
    for _ in range(order):
        h = sign(residual)
        beta = residual.abs().max()
        terms.append((beta, h))
        residual = residual - beta * h
    return terms


def beta_sum(x, order):
    terms, residual = [], x
    for _ in range(order):
        h = sign(residual)
        beta = residual.abs().sum()
        terms.append((beta, h))
        residual = residual - beta * h
    return terms


def test_check_1_passes_the_solutions(capsys):
    line = ex.check_1(horq_expand)
    assert line.startswith("✅ " + LABEL.format(1)) and "passed" in capsys.readouterr().out
    ex.check_1(lambda x, k: list(zip(*horq.residual_binarize(x, k))))


@pytest.mark.parametrize("wrong, hint", [
    (torch_sign, "torch.sign"),
    (beta_of_x, "*residual* R_(i-1), not of x"),
    (sign_of_x, "sign of the *residual*"),
    (beta_max, "not the maximum"),
    (beta_sum, "beta_i is a mean"),
    (lambda x, k: horq_expand(x, k)[:-1], "pairs"),
    (lambda x, k: [(b, h.tolist()) for b, h in horq_expand(x, k)], "Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


# --- exercise 2 ---------------------------------------------------------------------------------------------

def order_needed(x, tolerance):
    norms = horq.residual_norms(x, 32)
    return next(k for k in range(1, 33) if norms[k] <= tolerance * norms[0])


def test_check_2_passes_the_solution(capsys):
    line = ex.check_2(order_needed)
    assert line.startswith("✅ " + LABEL.format(2)) and "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, t: order_needed(x, t) + 1, "not ||R_(K+1)||^2"),
    (lambda x, t: order_needed(x, t) - 1, "R_0 = x"),
    (lambda x, t: 7, "residual norms"),
    (lambda x, t: float(order_needed(x, t)), "int"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message
