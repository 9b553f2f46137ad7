"""The self-checks of the integer-arithmetic-only chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.exercises import integer_arithmetic_only as ex

LABEL = "ex-integer_arithmetic_only-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def fold(w, b, gamma, beta, mean, var, eps):
    factor = gamma / torch.sqrt(var + eps)
    return w * factor.reshape(-1, *([1] * (w.dim() - 1))), beta + (b - mean) * factor


def fold_alternative(w, b, gamma, beta, mean, var, eps):
    std = (var + eps) ** 0.5
    return torch.stack([w[o] * gamma[o] / std[o] for o in range(w.shape[0])]), gamma * b / std - gamma * mean / std + beta


def test_check_1_passes(capsys):
    ex.check_1(fold)
    assert "✅ ex-integer_arithmetic_only-1 passed" in capsys.readouterr().out
    ex.check_1(fold_alternative)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, b, g, be, m, v, e: (w * (g / v.sqrt()).reshape(-1, 1, 1, 1), be + (b - m) * g / v.sqrt()), "forgets eps"),
    (lambda w, b, g, be, m, v, e: (w * (g / (v + e)).reshape(-1, 1, 1, 1), be), "not by the variance"),
    (lambda w, b, g, be, m, v, e: (w * g / (v + e).sqrt(), be), "shape"),
    (lambda w, b, g, be, m, v, e: (fold(w, b, g, be, m, v, e)[0], be + b - m), "scaled like the weights"),
    (lambda w, b, g, be, m, v, e: (fold(w, b, g, be, m, v, e)[0], g * (b - m) / (v + e).sqrt()), "forgets beta"),
    (lambda w, b, g, be, m, v, e: (fold(w, b, g, be, m, v, e)[0], be - g * m / (v + e).sqrt()), "own bias"),
    (lambda w, b, g, be, m, v, e: w, "return a pair"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def requantize_once(acc, m0, shift):
    k = 31 - shift
    return (acc.to(torch.int64) * m0 + (1 << (k - 1))) >> k


def requantize_once_away(acc, m0, shift):
    """Another correct answer: ties away from zero, computed on magnitudes."""
    k = 31 - shift
    x = acc.to(torch.int64) * m0
    magnitude = (x.abs() + (1 << (k - 1))) >> k
    return torch.where(x < 0, -magnitude, magnitude).to(torch.int32)


def test_check_2_passes(capsys):
    ex.check_2(requantize_once)
    assert "✅ ex-integer_arithmetic_only-2 passed" in capsys.readouterr().out
    ex.check_2(requantize_once_away)


def _float32(acc, m0, shift):
    return torch.round(acc.float() * (m0 * 2.0 ** (shift - 31))).to(torch.int64)


@pytest.mark.parametrize("wrong,hint", [
    (lambda acc, m0, shift: bitops.requantize(acc, m0, shift), "rounds twice"),
    (lambda acc, m0, shift: (acc.to(torch.int64) * m0) >> (31 - shift), "truncate"),
    (lambda acc, m0, shift: (acc.to(torch.int64) * m0 + (1 << (30 + shift))) >> (31 + shift), "far off"),
    (_float32, "float32 loses bits"),
    (lambda acc, m0, shift: acc.double() * m0 * 2.0 ** (shift - 31), "integer dtype"),
    (lambda acc, m0, shift: requantize_once(acc, m0, shift)[:5], "one value per accumulator"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)


def test_checks_print_not_attempted_for_the_stub(capsys):
    def stub(*args):
        raise NotImplementedError
    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
