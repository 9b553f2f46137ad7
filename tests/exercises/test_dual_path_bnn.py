"""The self-checks of the Dual Path BNN chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import binary
from qteach.exercises import dual_path_bnn as ex


def merged_weight(w1, w2):
    return binary.sign(w1) + binary.sign(w2)


def merged_weight_where(w1, w2):
    """Another correct answer: 2 where both signs are +, -2 where both are -, 0 elsewhere."""
    same = (w1 >= 0) == (w2 >= 0)
    return torch.where(same, 2 * torch.where(w1 >= 0, 1, -1), 0).long()


def test_check_1_passes(capsys):
    ex.check_1(merged_weight)
    assert "✅ ex-dual_path_bnn-1 passed" in capsys.readouterr().out
    ex.check_1(merged_weight_where)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w1, w2: w1 + w2, "binarized"),
    (lambda w1, w2: binary.sign(w1 + w2), "three values"),
    (lambda w1, w2: (binary.sign(w1) + binary.sign(w2)) / 2, "averaged"),
    (lambda w1, w2: binary.sign(w1) * binary.sign(w2), "read off W"),
    (lambda w1, w2: w1[0], "one weight per pair"),
    (lambda w1, w2: 2, "return a tensor"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def zero_fraction(delta):
    return math.erf(delta / math.sqrt(2))


def zero_fraction_sampled(delta):
    """Another correct answer: a Monte-Carlo estimate, returned as a tensor."""
    h = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    return ((binary.sign(h + delta) + binary.sign(h - delta)) == 0).double().mean()


def test_check_2_passes(capsys):
    ex.check_2(zero_fraction)
    assert "✅ ex-dual_path_bnn-2 passed" in capsys.readouterr().out
    ex.check_2(zero_fraction_sampled)


def _phi(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("wrong,hint", [
    (lambda d: _phi(d) - 0.5, "half the answer"),
    (lambda d: 1 - zero_fraction(d), "agree"),
    (lambda d: zero_fraction(d / 2), "band of width"),
    (lambda d: 1 + d, "between 0 and 1"),
    (lambda d: d / 3, "integrate"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_stub_prints_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")

    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
