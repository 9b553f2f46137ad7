"""The self-checks of the BinaryNet chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import binarynet as ex

LABEL = "ex-binarynet-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def fixed_dot(a_words, b_words, k):
    words = a_words.tolist()
    p = 0
    for j, (x, y) in enumerate(zip(words, b_words.tolist())):
        valid = min(32, k - 32 * j)
        p += (~(x ^ y) & ((1 << valid) - 1)).bit_count()
    return 2 * p - k


def fixed_by_subtracting(a_words, b_words, k):
    """Another correct answer: keep the buggy count and remove the padding agreements afterwards."""
    pad = 32 * a_words.numel() - k
    return ex.buggy_dot(a_words, b_words, k) - 2 * pad


def fixed_with_torch(a_words, b_words, k):
    """Another correct answer: unpack the bits and compare them (a tensor result)."""
    bits = lambda w: ((w[:, None] >> torch.arange(32)) & 1).flatten()[:k]
    return 2 * (bits(a_words) == bits(b_words)).sum() - k


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(fixed_dot)
    assert "✅ ex-binarynet-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("right", [fixed_by_subtracting, fixed_with_torch])
def test_check_1_accepts_other_fixes(right):
    ex.check_1(right)


def test_the_bug_is_real():
    a, b = torch.ones(70), torch.ones(70)
    from qteach.papers.binarynet import concatenate
    assert ex.buggy_dot(concatenate(a), concatenate(b), 70) == 70 + 2 * 26


@pytest.mark.parametrize("wrong,hint", [
    (ex.buggy_dot, "that is what buggy_dot returns"),
    (lambda a, b, k: fixed_by_subtracting(a, b, k) + (32 * a.numel() - k), "half-way there"),
    (lambda a, b, k: fixed_by_subtracting(a, b, k) - 2 * (32 * a.numel() - k), "or twice"),
    (lambda a, b, k: fixed_dot(a, b, k) + k, "mask the padding"),
    (lambda a, b, k: 0.5, "return an integer"),
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
