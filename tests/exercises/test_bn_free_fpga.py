"""The self-checks of the BN-free FPGA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import bn_free_fpga as ex

LABEL = "ex-bn_free_fpga-{}"


def _b(gamma, beta, mean, var, eps, acc_scale):
    return (beta.double() * torch.sqrt(var.double() + eps) / gamma.double() - mean.double()) / acc_scale


def integer_bias(gamma, beta, mean, var, eps, acc_scale):
    return torch.floor(_b(gamma, beta, mean, var, eps, acc_scale)).to(torch.int64)


def integer_bias_round(gamma, beta, mean, var, eps, acc_scale):
    return torch.round(_b(gamma, beta, mean, var, eps, acc_scale)).to(torch.int64)


def integer_bias_no_sqrt(gamma, beta, mean, var, eps, acc_scale):
    b = (beta.double() * (var.double() + eps) / gamma.double() - mean.double()) / acc_scale
    return torch.floor(b).to(torch.int64)


def integer_bias_no_scale(gamma, beta, mean, var, eps, acc_scale):
    return integer_bias(gamma, beta, mean, var, eps, 1.0)


def integer_bias_negated(gamma, beta, mean, var, eps, acc_scale):
    return torch.floor(-_b(gamma, beta, mean, var, eps, acc_scale)).to(torch.int64)


def integer_bias_float(gamma, beta, mean, var, eps, acc_scale):
    return torch.floor(_b(gamma, beta, mean, var, eps, acc_scale))


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(integer_bias)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (integer_bias_round, "Use torch.floor"),
    (integer_bias_no_sqrt, "sqrt(var + eps)"),
    (integer_bias_no_scale, "divide b' by acc_scale"),
    (integer_bias_negated, "sign is turned around"),
    (integer_bias_float, "integer tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def bias_bits(m):
    return math.ceil(math.log2(m + 1)) + 1


def bias_bits_log2_m(m):
    return math.ceil(math.log2(m)) + 1 if m > 1 else 1


def bias_bits_no_sign(m):
    return math.ceil(math.log2(m + 1))


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(bias_bits).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (bias_bits_log2_m, "one bit short"),
    (bias_bits_no_sign, "sign is missing"),
    (lambda m: 32, "smallest width"),
    (lambda m: "8", "should be a int"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)


def test_checks_refuse_non_callables():
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(3)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_2(None)
