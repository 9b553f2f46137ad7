"""The self-checks of the information-capacity chapter: solutions pass, other correct answers pass, plausible
mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import information_capacity as ex
from qteach.papers import information_capacity as ic

LABEL = "ex-information_capacity-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def entropy_bits(w):
    p = (w >= 0).flatten(1).double().mean(dim=1)
    return -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)) / math.log(2)


def entropy_bits_loop(w):
    """Another correct answer: a Python loop over the filters, float32."""
    out = []
    for row in w.flatten(1):
        p = float((row >= 0).sum()) / row.numel()
        out.append(sum(-q * math.log2(q) for q in (p, 1 - p) if q > 0))
    return torch.tensor(out, dtype=torch.float32)


def test_check_1_passes(capsys):
    ex.check_1(entropy_bits)
    assert "✅ ex-information_capacity-1 passed" in capsys.readouterr().out
    ex.check_1(entropy_bits_loop)
    ex.check_1(ic.filter_entropy)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w: entropy_bits(w) * math.log(2), "nats"),
    (lambda w: _strict_positive(w), "sign(0) is +1"),
    (lambda w: entropy_bits(w).mean(), "one entropy per filter"),
    (lambda w: -((w >= 0).flatten(1).double().mean(1) * (w >= 0).flatten(1).double().mean(1).log2()
                 + (1 - (w >= 0).flatten(1).double().mean(1)) * (1 - (w >= 0).flatten(1).double().mean(1)).log2()),
     "NaN"),
    (lambda w: (w >= 0).flatten(1).double().mean(dim=1), "H = -p log2 p"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as error:
        ex.check_1(wrong)
    assert hint in str(error.value)


def _strict_positive(w):
    p = (w > 0).flatten(1).double().mean(dim=1)
    return -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)) / math.log(2)


def test_check_1_not_attempted(capsys):
    def stub(w):
        raise NotImplementedError("Exercise 1")
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out


# --- exercise 2 ---------------------------------------------------------------------------------------------


def pattern_bits(n, k):
    return math.log2(math.comb(n, k))


def pattern_bits_lgamma(n, k):
    """Another correct answer: through the log-gamma function, as a tensor."""
    return torch.tensor((math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2),
                        dtype=torch.float64)


def test_check_2_passes(capsys):
    ex.check_2(pattern_bits)
    assert "✅ ex-information_capacity-2 passed" in capsys.readouterr().out
    ex.check_2(pattern_bits_lgamma)


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, k: n * float(ic.binary_entropy(torch.tensor([k]), n)), "upper bound"),
    (lambda n, k: math.log(math.comb(n, k)), "natural log"),
    (lambda n, k: n, "count only those with exactly k ones"),
    (lambda n, k: math.log2(math.comb(n, k) + 1), "should be log2(comb("),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as error:
        ex.check_2(wrong)
    assert hint in str(error.value)
