"""The self-checks of the FBNA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import binary
from qteach.exercises import fbna as ex
from qteach.papers import fbna

LABEL = "ex-fbna-{}"


def zero_from_binary(x, w, padding):
    plus = fbna.padded_binary_conv2d(x, w, padding, "plus").long()
    minus = fbna.padded_binary_conv2d(x, w, padding, "minus").long()
    return (plus + minus) // 2


def zero_from_binary_float(x, w, padding):        # another correct form: plain torch, floats
    a = F.conv2d(fbna.binary_pad(binary.sign(x), padding, "plus"), binary.sign(w))
    b = F.conv2d(fbna.binary_pad(binary.sign(x), padding, "minus"), binary.sign(w))
    return (a + b) / 2


def zero_from_plus_and_offset(x, w, padding):     # another correct form: subtract the border's contribution
    plus = fbna.padded_binary_conv2d(x, w, padding, "plus").long()
    return plus - fbna.pad_contribution(w, x.shape[2], x.shape[3], padding, "plus")


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(zero_from_binary).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("other", [zero_from_binary_float, zero_from_plus_and_offset])
def test_check_1_passes_other_correct_forms(other):
    ex.check_1(other)


def _plus(x, w, p):
    return fbna.padded_binary_conv2d(x, w, p, "plus").long()


def _minus(x, w, p):
    return fbna.padded_binary_conv2d(x, w, p, "minus").long()


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w, p: _plus(x, w, p) + _minus(x, w, p), "halve it"),
    (_plus, "one binary padding alone"),
    (lambda x, w, p: (_plus(x, w, p) - _minus(x, w, p)) // 2, "border's own contribution"),
    (lambda x, w, p: _plus(x, w, p) + 1, "mean of the +1-padded"),
    (lambda x, w, p: _plus(x, w, p)[..., 1:], "should have the shape"),
    (lambda x, w, p: 3, "should be a Tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def bitplane_dot(q, w, bits):
    total = 0
    for n in range(bits):
        plane = (q >> n) & 1
        total = total + (2**n) * (plane.long() @ w.long().T)
    return total


def bitplane_dot_pm(q, w, bits):                  # another correct form: ±1 planes plus the row-sum correction
    total = torch.zeros(q.shape[0], w.shape[0], dtype=torch.float64)
    for n in range(bits):
        plane = ((q >> n) & 1).double()
        total += 2**n * ((2 * plane - 1) @ w.double().T + w.double().sum(1)) / 2
    return total


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(bitplane_dot).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


def test_check_2_passes_another_correct_form():
    ex.check_2(bitplane_dot_pm)


@pytest.mark.parametrize("wrong, hint", [
    (lambda q, w, b: sum(((q >> n) & 1).long() @ w.long().T for n in range(b)), "weight 2**n"),
    (lambda q, w, b: sum(2**n * ((2 * ((q >> n) & 1) - 1).long() @ w.long().T) for n in range(b)), "not ±1"),
    (lambda q, w, b: sum(2 ** (b - 1 - n) * (((q >> n) & 1).long() @ w.long().T) for n in range(b)), "reverse"),
    (lambda q, w, b: q.long() @ w.long().T + 1, "sum_n 2**n"),
    (lambda q, w, b: q.long(), "should have the shape"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
