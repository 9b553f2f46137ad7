"""The self-checks of the BitFlow chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest

from qteach import bitops
from qteach.exercises import bitflow as ex

LABEL = "ex-bitflow-{}"


# --- exercise 1 -----------------------------------------------------------------------------------------------

def pressed(x):
    return bitops.pack_bits(x.movedim(1, -1))


def pressed_permute(x):
    return bitops.pack_bits(x.permute(0, 2, 3, 1).contiguous())


def test_check_1_accepts_solutions(capsys):
    ex.check_1(pressed)
    ex.check_1(pressed_permute)
    assert capsys.readouterr().out.count(LABEL.format(1)) == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda x: bitops.pack_bits(x), "spatial packing"),
    (lambda x: x.movedim(1, -1), "not packed"),
    (lambda x: bitops.pack_bits(-x.movedim(1, -1)), "inverted"),
    (lambda x: bitops.pack_bits(x.transpose(1, 3)), "swapped"),
    (lambda x: bitops.pack_bits(x.movedim(1, -1)).to(int), "uint8"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_stub():
    def stub(x):
        raise NotImplementedError("Exercise 1")

    assert "not attempted" in ex.check_1(stub)


# --- exercise 2 -----------------------------------------------------------------------------------------------

def _pair(k):
    return (k, k) if isinstance(k, int) else tuple(k)


def better_layout(channels, kernel_size):
    kh, kw = _pair(kernel_size)
    channel = kh * kw * -(-channels // 64)
    spatial = channels * -(-(kh * kw) // 64)
    return "spatial" if spatial < channel else "channel"


def better_layout_math(channels, kernel_size):
    kh, kw = _pair(kernel_size)
    return "channel" if kh * kw * math.ceil(channels / 64) <= channels * math.ceil(kh * kw / 64) else "spatial"


def test_check_2_accepts_solutions(capsys):
    ex.check_2(better_layout)
    ex.check_2(better_layout_math)
    assert capsys.readouterr().out.count(LABEL.format(2)) == 2


def _size_only(channels, kernel_size):
    kh, kw = _pair(kernel_size)
    return "channel" if channels >= kh * kw else "spatial"


def _tie_spatial(channels, kernel_size):
    kh, kw = _pair(kernel_size)
    return "spatial" if channels * -(-(kh * kw) // 64) <= kh * kw * -(-channels // 64) else "channel"


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, k: "channel", "words"),
    (_tie_spatial, "tie"),
    (lambda c, k: "both", "'channel' or 'spatial'"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_check_2_size_only_is_wrong():
    # comparing C with kh * kw ignores the ceilings: wrong for (64, 11), where 121 taps need two words per
    # window (128 spatial words) against 121 channel words.
    with pytest.raises(AssertionError, match="better_layout"):
        ex.check_2(_size_only)
