"""The self-checks of the self-binarizing networks chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import self_binarizing_networks as ex

LABEL = "ex-self_binarizing_networks-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def bn_as_comparison(x, gamma, beta, mean, var, eps):
    tau = mean - beta * torch.sqrt(var + eps) / gamma
    return torch.where(gamma > 0, sign(x - tau), sign(tau - x))


def bn_flip_form(x, gamma, beta, mean, var, eps):
    """Another correct answer: flip * x >= flip * tau, as a bool turned into +-1."""
    flip = torch.where(gamma < 0, -1.0, 1.0).to(x.dtype)
    tau = mean - beta * (var + eps).sqrt() / gamma
    return (flip * x >= flip * tau).to(x.dtype) * 2 - 1


def no_flip(x, gamma, beta, mean, var, eps):
    return sign(x - (mean - beta * torch.sqrt(var + eps) / gamma))


def beta_sign(x, gamma, beta, mean, var, eps):
    tau = mean + beta * torch.sqrt(var + eps) / gamma
    return torch.where(gamma > 0, sign(x - tau), sign(tau - x))


def torch_sign(x, gamma, beta, mean, var, eps):
    return torch.zeros_like(x)


def test_check_1_passes(capsys):
    ex.check_1(bn_as_comparison)
    assert f"✅ {LABEL.format(1)} passed" in capsys.readouterr().out
    ex.check_1(bn_flip_form)


@pytest.mark.parametrize("wrong,hint", [
    (no_flip, "flips the comparison"),
    (beta_sign, "wrong sign of beta"),
    (torch_sign, "contains 0"),
    (lambda x, g, b, m, v, e: g * (x - m) / torch.sqrt(v + e) + b, "return +-1"),
    (lambda x, g, b, m, v, e: x[:1], "one +-1 per input"),
    (lambda x, g, b, m, v, e: sign(x - m), "solve gamma"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def fraction_not_binary(v, delta):
    return math.erf(math.atanh(1 - delta) / (v * math.sqrt(2)))


def simulated(v, delta):
    """Another correct answer: Monte Carlo in float64."""
    x = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return ((torch.tanh(v * x).abs() < 1 - delta).double().mean()).item()


def test_check_2_passes(capsys):
    ex.check_2(fraction_not_binary)
    assert f"✅ {LABEL.format(2)} passed" in capsys.readouterr().out
    ex.check_2(simulated)


@pytest.mark.parametrize("wrong,hint", [
    (lambda v, d: math.erf(math.atanh(1 - d) / v), "erf(a / sqrt(2))"),
    (lambda v, d: 1 - fraction_not_binary(v, d), "IS within delta"),
    (lambda v, d: math.erf(math.atanh(d) / (v * math.sqrt(2))), "not atanh(delta)"),
    (lambda v, d: 1 / v, "expected about"),
    (lambda v, d: "x", "should be a"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
