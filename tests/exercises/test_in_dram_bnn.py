"""Self-checks of the in-DRAM BNN chapter: the solution passes, another correct answer passes, wrong answers fail
with the right hint."""

from __future__ import annotations

import math

import pytest

from qteach.exercises import in_dram_bnn as ex


def full_adder(a, b, c, maj3, inv):          # the notebook's solution
    carry = maj3(a, b, c)
    return maj3(inv(carry), c, maj3(a, b, inv(c))), carry


def full_adder_long(a, b, c, maj3, inv):     # another correct answer: XOR from AND/OR majorities, more TRAs
    zero = a & inv(a)                        # the constant rows C0 and C1 (in DRAM: reserved rows)
    one = inv(zero)

    def xor(x, y):
        return maj3(maj3(x, inv(y), zero), maj3(inv(x), y, zero), one)

    return xor(xor(a, b), c), maj3(a, b, c)


def test_check_1_accepts_correct_answers(capsys):
    ex.check_1(full_adder)
    ex.check_1(full_adder_long)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, b, c, m, i: (a ^ b, m(a, b, c)), "carry-in c is missing"),
    (lambda a, b, c, m, i: (~(a ^ b ^ c), m(a, b, c)), "inverted"),
    (lambda a, b, c, m, i: (a ^ b ^ c, a & b), "half adder"),
    (lambda a, b, c, m, i: (a ^ b ^ c, a | b), "exactly one majority"),
    (lambda a, b, c, m, i: (a ^ b ^ c, (a & b) | (c & (a | b))), "build the adder from maj3"),
    (lambda a, b, c, m, i: (m(a, b, c), m(a, b, c)), "XOR b XOR c"),
    (lambda a, b, c, m, i: a, "pair"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_2_accepts_correct_answers(capsys):
    ex.check_2(lambda k: k / (math.floor(math.log2(k)) + 1))
    ex.check_2(lambda k: k / len(bin(k)[2:]))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda k: k / math.log2(k) if k > 1 else 1.0, "or its ceiling"),
    (lambda k: k / math.ceil(math.log2(k)) if k > 1 else 1.0, "or its ceiling"),
    (lambda k: k.bit_length() / k, "upside down"),
    (lambda k: k, "host's bits only"),
    (lambda k: "many", "number"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
