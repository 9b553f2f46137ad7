"""The self-checks of the binary-weight CNN architecture chapter: solutions pass, plausible mistakes fail with a
hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import binary_weight_cnn_architecture as ex
from qteach.papers import binary_weight_cnn_architecture as bwa


def or_adder(a, b, k, width):
    lower = (a | b) & ((1 << k) - 1)
    upper = ((a >> k) + (b >> k)) << k
    return (upper | lower) & ((1 << width) - 1)


def or_adder_other(a, b, k, width):          # another correct answer: exact sum minus the lost carries a & b
    return (a + b - (a & b & ((1 << k) - 1))) % (1 << width)


def test_check_1_accepts_solutions(capsys):
    assert "passed" in ex.check_1(or_adder)
    assert "passed" in ex.check_1(or_adder_other)


@pytest.mark.parametrize("wrong,hint", [
    (bwa.loa_add, "AND carry"),
    (lambda a, b, k, w: (((a >> k) + (b >> k)) << k) | ((a | b) & ((1 << k) - 1)), "mask"),
    (lambda a, b, k, w: ((((a >> k) + (b >> k)) << k) | ((a ^ b) & ((1 << k) - 1))) & 63, "XOR"),
    (lambda a, b, k, w: (a + b) & 63, "exact sum"),
    (lambda a, b, k, w: a | b, "lower part"),
    (lambda a, b, k, w: torch.zeros(3), "shape"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def mean_error(k):
    return (2**k - 1) / 4


def mean_error_exhaustive(k):                 # another correct answer: average over every pair of low parts
    v = torch.arange(2**k)
    a, b = v[:, None], v[None, :]
    return ((a + b) - or_adder(a, b, k, k + 2)).double().mean()


def test_check_2_accepts_solutions(capsys):
    assert "passed" in ex.check_2(mean_error)
    assert "passed" in ex.check_2(mean_error_exhaustive)


@pytest.mark.parametrize("wrong,hint", [
    (lambda k: -(2**k - 1) / 4, "sign"),
    (lambda k: -0.25 if k else 0.0, "AND carry"),
    (lambda k: (2**k - 1) / 2, "probability"),
    (lambda k: 2**k / 4, "low k bit"),
    (lambda k: 10.0, "a & b"),
    (lambda k: "small", "number"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_stubs_are_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise")
    assert "not attempted" in ex.check_1(stub)
    assert "not attempted" in ex.check_2(stub)
