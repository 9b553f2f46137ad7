"""The self-checks of the daBNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.exercises import dabnn as ex

LABEL = "ex-dabnn-{}"


def dabnn_reference(x, w, padding):
    return F.conv2d(F.pad(sign(x), [padding] * 4, value=-1.0), sign(w))


def dabnn_reference_bitops(x, w, padding):
    return bitops.binary_conv2d(F.pad(x, [padding] * 4, value=-1.0), w)


def test_check_1_accepts_solutions(capsys):
    ex.check_1(dabnn_reference)
    ex.check_1(dabnn_reference_bitops)
    assert capsys.readouterr().out.count(LABEL.format(1)) == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w, p: F.conv2d(sign(x), sign(w), padding=p), "padded with 0"),
    (lambda x, w, p: F.conv2d(F.pad(sign(x), [p] * 4, value=1.0), sign(w)), "padded with \\+1"),
    (lambda x, w, p: F.conv2d(F.pad(torch.sign(x), [p] * 4, value=-1.0), torch.sign(w)), "torch.sign"),
    (lambda x, w, p: F.conv2d(F.pad(sign(x), [p] * 4, value=-1.0), sign(w))[:, :, 1:], "shape"),
    (lambda x, w, p: 3, "Tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_stub():
    def stub(x, w, p):
        raise NotImplementedError("Exercise 1")

    assert "not attempted" in ex.check_1(stub)


def reductions(vectors):
    return -(-vectors // 31)


def reductions_math(vectors):
    return float(math.ceil(vectors / (255 // 8)))


def test_check_2_accepts_solutions(capsys):
    ex.check_2(reductions)
    ex.check_2(reductions_math)
    assert capsys.readouterr().out.count(LABEL.format(2)) == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda v: -(-v // 32), "256"),
    (lambda v: v // 31, "round up"),
    (lambda v: 1, "overflows"),
    (lambda v: v, "BGEMM"),
    (lambda v: 2.5, "whole number"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
