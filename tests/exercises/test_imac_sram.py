"""The self-checks of the IMAC chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import imac_sram as ex

LABEL = "ex-imac_sram-{}"


def adc_bits_analog(rows, a_bits, w_bits):
    return (rows * (2**a_bits - 1) * (2**w_bits - 1)).bit_length()


def adc_bits_log(rows, a_bits, w_bits):           # another correct answer: ceil(log2(F + 1)), as a tensor
    return torch.tensor(math.ceil(math.log2(rows * (2**a_bits - 1) * (2**w_bits - 1) + 1)))


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(adc_bits_analog).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out
    assert ex.check_1(adc_bits_log).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda r, a, w: (r * (2**a - 1)).bit_length(), "per-column ADC"),
    (lambda r, a, w: math.floor(math.log2(r * (2**a - 1) * (2**w - 1))), "F \\+ 1 values"),
    (lambda r, a, w: a + w, "bits of a product add"),
    (lambda r, a, w: "ten", "should be a number"),
    (lambda r, a, w: 12, "every integer from 0"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        ex.check_1(wrong)
    assert str(err.value).startswith(LABEL.format(1))


def dequantized_dot(dot, row_sum, a_bits, w_bits):
    return (2 * dot / (2**w_bits - 1) - row_sum) / (2**a_bits - 1)


def dequantized_dot_affine(dot, row_sum, a_bits, w_bits):   # another correct answer: low and step named
    low, step = -1.0, 2.0 / (2**w_bits - 1)
    return torch.tensor((step * dot + low * row_sum) / (2**a_bits - 1))


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(dequantized_dot).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    assert ex.check_2(dequantized_dot_affine).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda d, s, a, w: 2 * d / (2**w - 1) / (2**a - 1), "subtract the row sum"),
    (lambda d, s, a, w: 2 * d / (2**w - 1) - s, "divide by 2\\^A - 1"),
    (lambda d, s, a, w: (d / (2**w - 1) - s) / (2**a - 1), "not 1 / \\(2\\^W - 1\\)"),
    (lambda d, s, a, w: None, "should be a number"),
    (lambda d, s, a, w: d + 1.0, "low = -1"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint) as err:
        ex.check_2(wrong)
    assert str(err.value).startswith(LABEL.format(2))
