"""The self-checks of the Xcel-RAM chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest

from qteach.exercises import xcel_ram as ex

LABEL = "ex-xcel_ram-{}"


def min_bits(columns):
    return columns.bit_length()


def min_bits_loop(columns):                       # another correct answer
    bits = 0
    while 2**bits < columns + 1:
        bits += 1
    return float(bits)


def min_bits_forgets_zero(columns):
    return math.ceil(math.log2(columns)) if columns > 1 else 0


def min_bits_one_too_many(columns):
    return columns.bit_length() + 1


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(min_bits).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out
    assert ex.check_1(min_bits_loop).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (min_bits_forgets_zero, r"C \+ 1 values"),
    (min_bits_one_too_many, "one bit too many"),
    (lambda c: str(c), "should return an int"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        ex.check_1(wrong)
    assert str(err.value).startswith(LABEL.format(1))


def bitline_share(gain, sections):
    return (1 - 1 / gain) / (1 - 1 / sections)


def bitline_share_other_form(gain, sections):     # the same formula, rearranged
    return sections * (gain - 1) / (gain * (sections - 1))


def test_check_2_passes_the_solution():
    assert ex.check_2(bitline_share).startswith("✅ " + LABEL.format(2))
    assert ex.check_2(bitline_share_other_form).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda g, n: 1 - 1 / g, "divide it by"),
    (lambda g, n: (g - 1) / (n - 1), "not gain ="),
    (lambda g, n: g / n, "not a share"),
    (lambda g, n: 0.8, "solve 1 / gain"),
    (lambda g, n: "0.8", "should return a number"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        ex.check_2(wrong)
    assert str(err.value).startswith(LABEL.format(2))
