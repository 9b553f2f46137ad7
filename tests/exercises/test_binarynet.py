"""The self-checks of the BinaryNet chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import binarynet as ex

LABEL = "ex-binarynet-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def to_int(x):
    return sum(1 << i for i, v in enumerate(x.tolist()) if v >= 0)


def xnor_popcount_dot(a, b):
    k = a.numel()
    xnor = ~(to_int(a) ^ to_int(b)) & ((1 << k) - 1)
    return 2 * bin(xnor).count("1") - k


def agreements_only(a, b):
    k = a.numel()
    return bin(~(to_int(a) ^ to_int(b)) & ((1 << k) - 1)).count("1")


def no_minus_k(a, b):
    return xnor_popcount_dot(a, b) + a.numel()


def torch_sign(a, b):
    return int((torch.sign(a) * torch.sign(b)).sum())


def unmasked(a, b):  # Python's ~ on an int gives a negative number: bin() counts a '-' and the wrong bits
    k = a.numel()
    return 2 * bin(~(to_int(a) ^ to_int(b))).count("1") - k


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(xnor_popcount_dot)
    assert "✅ ex-binarynet-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (agreements_only, "the number of agreements p"),
    (no_minus_k, "subtract K"),
    (torch_sign, "exactly 0 must count as +1"),
    (unmasked, "among the first K bits"),
    (lambda a, b: 0.5, "return an integer"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def fold(mean, var, gamma, beta, eps):
    if gamma == 0:
        return 1, (-(10**9) if beta >= 0 else 10**9)
    t = mean - beta * math.sqrt(var + eps) / gamma
    if gamma > 0:
        return 1, math.ceil(t)
    return -1, math.ceil(-t)


def fold_floor(mean, var, gamma, beta, eps):
    flip, tau = fold(mean, var, gamma, beta, eps)
    if gamma == 0:
        return flip, tau
    t = mean - beta * math.sqrt(var + eps) / gamma
    return (1, math.floor(t)) if gamma > 0 else (-1, math.floor(-t))


def fold_no_flip(mean, var, gamma, beta, eps):
    if gamma == 0:
        return fold(mean, var, gamma, beta, eps)
    return 1, math.ceil(mean - beta * math.sqrt(var + eps) / gamma)


def fold_divides(mean, var, gamma, beta, eps):
    t = mean - beta * math.sqrt(var + eps) / gamma
    return (1, math.ceil(t)) if gamma > 0 else (-1, math.ceil(-t))


def fold_gamma_zero_wrong(mean, var, gamma, beta, eps):
    if gamma == 0:
        return 1, 0
    return fold(mean, var, gamma, beta, eps)


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(fold)
    assert "✅ ex-binarynet-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (fold_floor, "off by one"),
    (fold_no_flip, "inequality turns round"),
    (fold_divides, "divides by zero"),
    (fold_gamma_zero_wrong, "sign(beta)"),
    (lambda *args: (1, 0.5), "tau must be an integer"),
    (lambda *args: 3, "return a pair"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
