"""The self-checks of "Bitwise Neural Networks": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach import binary, bitops
from qteach.exercises import bitwise_nn as ex

LABEL = "ex-bitwise_nn-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def bitwise_layer(z, w, b):
    return binary.sign(bitops.xnor_matmul(z, w) + b.to(torch.int32))


def bitwise_layer_float(z, w, b):
    return torch.where(z @ w.T + b >= 0, 1.0, -1.0)


@pytest.mark.parametrize("solution", [bitwise_layer, bitwise_layer_float])
def test_check_1_passes_the_solutions(solution, capsys):
    line = ex.check_1(solution)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda z, w, b: bitops.xnor_matmul(z, w) + b.to(torch.int32), "pre-activation"),
    (lambda z, w, b: torch.sign(bitops.xnor_matmul(z, w) + b.to(torch.int32)), "sign(0) = +1"),
    (lambda z, w, b: binary.sign(bitops.xnor_matmul(z, w)), "ignores the bias"),
    (lambda z, w, b: -binary.sign(bitops.xnor_matmul(z, w) + b.to(torch.int32)), "sign flipped"),
    (lambda z, w, b: binary.sign(bitops.xnor_matmul(z, w) + 2 * b.to(torch.int32)), "xnor_matmul"),
])
def test_check_1_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(err.value) and hint in str(err.value)


def test_check_1_rejects_a_non_tensor_and_a_wrong_shape():
    with pytest.raises(AssertionError, match="torch.Tensor"):
        ex.check_1(lambda z, w, b: bitwise_layer(z, w, b).tolist())
    with pytest.raises(AssertionError, match="shape"):
        ex.check_1(lambda z, w, b: bitwise_layer(z, w, b).T)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(None)


# --- exercise 2 ---------------------------------------------------------------------------------------------

def ternary_dot(z, t):
    t_plus = torch.where(t >= 0, 1.0, -1.0)
    t_minus = torch.where(t > 0, 1.0, -1.0)
    return (bitops.xnor_matmul(z, t_plus) + bitops.xnor_matmul(z, t_minus)) // 2


def ternary_dot_library(z, t):
    from qteach.papers.bitwise_nn import ternary_xnor_matmul

    return ternary_xnor_matmul(z, t)


@pytest.mark.parametrize("solution", [ternary_dot, ternary_dot_library])
def test_check_2_passes_the_solutions(solution, capsys):
    line = ex.check_2(solution)
    assert line.startswith("✅ " + LABEL.format(2))
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda z, t: bitops.xnor_matmul(z, t), "counts every zero weight as +1"),
    (lambda z, t: bitops.xnor_matmul(z, torch.where(t >= 0, 1.0, -1.0))
     + bitops.xnor_matmul(z, torch.where(t > 0, 1.0, -1.0)), "twice the answer"),
    (lambda z, t: bitops.xnor_matmul(z, torch.where(t > 0, 1.0, -1.0)), "differs from z @ t.T"),
    (lambda z, t: (z @ t.T) / 3, "non-integer"),
])
def test_check_2_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(err.value) and hint in str(err.value)
