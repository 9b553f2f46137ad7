"""Tests of qteach.papers.binarynet: the paper's XNOR-popcount product, checked by hand and against bitops."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.binary import sign
from qteach.papers import binarynet as bn


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_concatenate_hand_computed():
    # bit i = 1 for x_i >= 0 (the kernel's convention), little-endian within the 32-bit word
    x = torch.tensor([[1.0, -1.0, 0.0, -2.0, 5.0]])
    words = bn.concatenate(x)
    assert words.dtype == torch.int64 and words.shape == (1, 1)
    assert words.item() == 0b10101  # bits 0, 2, 4 set; padding bits 5..31 are 0
    full = bn.concatenate(torch.ones(1, 32))
    assert full.item() == 2**32 - 1
    assert bn.concatenate(-torch.ones(2, 33)).tolist() == [[0, 0], [0, 0]]


def test_xnor_gemm_hand_computed():
    # a = [+1, -1, +1, -1], b = [+1, +1, -1, -1]: agreements at positions 0 and 3 -> p = 2, dot = 2 * 2 - 4 = 0
    a = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    b = torch.tensor([[1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    assert bn.xnor_gemm(bn.concatenate(a), bn.concatenate(b), 4).tolist() == [[0, 4]]


@pytest.mark.parametrize("k", [1, 31, 32, 33, 64, 100])
def test_xnor_gemm_equals_float_product_and_bitops(k):
    a, b = randn(7, k, seed=k), randn(5, k, seed=k + 1)
    a[0, : k // 2] = 0.0  # sign(0) = +1
    expected = (sign(a).double() @ sign(b).double().T).to(torch.int64)
    got = bn.xnor_dot(a, b)
    assert torch.equal(got, expected)
    assert torch.equal(got, bitops.xnor_matmul(a, b).to(torch.int64))  # K - 2 popcount(xor), other convention


def test_the_mask_is_needed_when_k_is_not_a_multiple_of_32():
    # without the mask the 31 padding bits of the last word would count as agreements
    a, b = -torch.ones(1, 33), torch.ones(1, 33)
    words_a, words_b = bn.concatenate(a), bn.concatenate(b)
    assert bn.xnor_gemm(words_a, words_b, 33).item() == -33
    unmasked = 2 * sum(bin(~(int(x) ^ int(y)) & 0xFFFFFFFF).count("1") for x, y in zip(words_a[0], words_b[0])) - 33
    assert unmasked == -33 + 2 * 31


def test_bad_input():
    with pytest.raises(ValueError, match="x"):
        bn.concatenate(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="x"):
        bn.concatenate(torch.tensor(1.0))
    with pytest.raises(TypeError, match="x"):
        bn.concatenate(torch.tensor([True]))
    with pytest.raises(ValueError, match="words"):
        bn.xnor_gemm(torch.zeros(1, 1, dtype=torch.int64), torch.zeros(1, 2, dtype=torch.int64), 40)
    with pytest.raises(TypeError, match="a_words"):
        bn.xnor_gemm(torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="k"):
        bn.xnor_gemm(torch.zeros(1, 1, dtype=torch.int64), torch.zeros(1, 1, dtype=torch.int64), 0)
    with pytest.raises(ValueError, match="same K"):
        bn.xnor_dot(torch.ones(2, 3), torch.ones(2, 4))


def test_xnor_gemm_checks_both_operands_before_computing():
    from qteach import display

    shown = display.show_source(bn.xnor_gemm).text.split("<details>")[0]
    assert "raise" not in shown and shown.count(display.CHECKS_OMITTED) == 1
    good = bn.concatenate(torch.randn(2, 40))
    with pytest.raises(TypeError, match="a_words"):
        bn.xnor_gemm(good.to(torch.int32), good, 40)
    with pytest.raises(ValueError, match="b_words must have ceil"):
        bn.xnor_gemm(good, good[:, :1], 40)
    with pytest.raises(ValueError, match="a_words must have ceil"):  # a_words first
        bn.xnor_gemm(good[:, :1], good[:, :1], 40)
