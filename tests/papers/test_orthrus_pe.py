"""OrthrusPE (Fasfous et al., DATE 2020): the bit-level DSP48E2 model in its two modes, checked bit for bit."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.papers import fp_bnn
from qteach.papers import orthrus_pe as op

MASK = (1 << 48) - 1


def test_dsp_widths_are_ug579s():
    assert op.DSP48E2 == {"alu_bits": 48, "mult_a_bits": 27, "mult_b_bits": 18, "preadder_bits": 27}
    assert op.PAPER_HEADLINE == {"dynamic_power": 0.67, "luts": 0.39}


def test_logic_unit_by_hand():
    a, b = torch.tensor([0b1100]), torch.tensor([0b1010])
    assert op.dsp_logic(a, b, "xor").item() == 0b0110
    assert op.dsp_logic(a, b, "and").item() == 0b1000
    assert op.dsp_logic(a, b, "or").item() == 0b1110
    assert op.dsp_logic(a, b, "xnor").item() == MASK ^ 0b0110          # 48 bits, upper ones set
    assert op.dsp_logic(torch.tensor([MASK]), torch.tensor([MASK])).item() == MASK
    assert op.dsp_logic(torch.tensor([0]), torch.tensor([MASK])).item() == 0


def test_logic_unit_matches_python_ints():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 1 << 48, (200,), generator=g, dtype=torch.int64)
    b = torch.randint(0, 1 << 48, (200,), generator=g, dtype=torch.int64)
    got = op.dsp_logic(a, b, "xnor")
    assert [int(x) for x in got] == [~(int(x) ^ int(y)) & MASK for x, y in zip(a, b)]


def test_multiply_add_by_hand_and_wraps():
    assert op.dsp_multiply_add(torch.tensor([3]), torch.tensor([-5]), torch.tensor([7])).item() == -8
    assert op.dsp_multiply_add(torch.tensor([3]), torch.tensor([4]), torch.tensor([1]), torch.tensor([2])).item() == 21
    big = (1 << 47) - 1                                                 # largest 48-bit value; +1 wraps
    assert op.dsp_multiply_add(torch.tensor([1]), torch.tensor([1]), torch.tensor([big])).item() == -(1 << 47)


def test_multiply_add_equals_integer_arithmetic():
    g = torch.Generator().manual_seed(2)
    a = torch.randint(-(1 << 25), 1 << 25, (500,), generator=g)
    d = torch.randint(-(1 << 25), 1 << 25, (500,), generator=g)
    b = torch.randint(-(1 << 17), 1 << 17, (500,), generator=g)
    c = torch.randint(-(1 << 40), 1 << 40, (500,), generator=g)
    assert torch.equal(op.dsp_multiply_add(a, b, c, d), (d + a) * b + c)   # no overflow in this range


def test_pack_words_layout():
    x = torch.ones(50)
    x[0], x[47], x[48] = -1, -1, -1
    words = op.pack_words(x)
    assert words.tolist() == [1 | (1 << 47), 1]
    assert op.pack_words(torch.ones(3, 96)).shape == (3, 2)


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (3, 4, 47), (5, 7, 48), (4, 6, 49), (2, 3, 96), (8, 5, 300),
                                     (1, 9, 1152)])
def test_binary_mode_equals_xnor_matmul(m, n, k):
    g = torch.Generator().manual_seed(k)
    a, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    a[0, 0] = 0.0                                                      # sign(0) = +1 as in bitops
    dot, instructions = op.simd_binary_matmul(a, w)
    assert torch.equal(dot, bitops.xnor_matmul(a, w).to(torch.int64))
    assert torch.equal(dot, (torch.where(a >= 0, 1, -1) @ torch.where(w >= 0, 1, -1).T).to(torch.int64))
    assert instructions == m * n * -(-k // 48)


def test_multibase_layer_is_the_integer_computation_and_close_to_float():
    g = torch.Generator().manual_seed(3)
    w, x = torch.randn(16, 100, generator=g), torch.randn(5, 100, generator=g)
    b, alpha, a, beta = op.abc_weight_and_activation_bases(w, x, 2, 2)
    f = 12
    s = torch.round(2**f * alpha[:, None] * beta[None, :]).to(torch.int64)
    y, bin_ops, fix_ops = op.multibase_layer(a, b, s)
    plain = sum(s[m, n] * (a[n].long() @ b[m].long().T) for m in range(2) for n in range(2))
    assert torch.equal(y, plain)
    floating = sum(alpha[m] * beta[n] * (a[n] @ b[m].T) for m in range(2) for n in range(2))
    assert (y / 2**f - floating).abs().max() <= 4 * 0.5 * 2**-f * 100     # rounding of the 4 scales, |dot| <= K
    assert (bin_ops, fix_ops) == (4 * 5 * 16 * 3, 4 * 5 * 16)


def test_layer_instructions_by_hand():
    c = op.layer_instructions(128, 128, 3, 28, 2, 2)
    outputs = 128 * 28 * 28
    assert c["binary_instructions"] == 4 * outputs * 24                 # 1152 = 24 words of 48
    assert c["fixed_instructions"] == 4 * outputs + outputs
    assert c["binary_ops"] == 4 * outputs * 1152 and c["lane_use"] == 1.0
    assert op.layer_instructions(3, 8, 3, 4)["lane_use"] == pytest.approx(27 / 48)


def test_pe_luts_uses_fp_bnn_rules():
    popcount = fp_bnn.popcount_cost(48).luts
    assert op.pe_luts(48, 1152, True) == popcount + 2 * 11
    assert op.pe_luts(48, 1152, False) == 24 + popcount + 2 * 11


@pytest.mark.parametrize("call, match", [
    (lambda: op.dsp_logic(torch.tensor([1.0]), torch.tensor([1])), "a"),
    (lambda: op.dsp_logic(torch.tensor([1]), torch.tensor([1 << 48])), "b"),
    (lambda: op.dsp_logic(torch.tensor([1]), torch.tensor([1]), "nand"), "op"),
    (lambda: op.dsp_multiply_add(torch.tensor([1 << 26]), torch.tensor([1]), torch.tensor([0])), "a"),
    (lambda: op.dsp_multiply_add(torch.tensor([1]), torch.tensor([1 << 17]), torch.tensor([0])), "b"),
    (lambda: op.dsp_multiply_add(torch.tensor([(1 << 26) - 1]), torch.tensor([1]), torch.tensor([0]),
                                 torch.tensor([1])), "d \\+ a"),
    (lambda: op.pack_words(torch.tensor(1.0)), "x"),
    (lambda: op.pack_words(torch.tensor([float("nan")])), "x"),
    (lambda: op.simd_binary_matmul(torch.ones(2, 3), torch.ones(2, 4)), "same K"),
    (lambda: op.simd_binary_matmul(torch.ones(3), torch.ones(2, 3)), "a must be 2-D"),
    (lambda: op.multibase_layer(torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.ones(2, 1, dtype=torch.long)),
     "scales_q"),
    (lambda: op.multibase_layer(torch.ones(1, 2, 3), torch.ones(1, 2, 3), torch.tensor([[1 << 17]])), "scales_q"),
    (lambda: op.layer_instructions(0, 1, 3, 4), "in_channels"),
    (lambda: op.layer_instructions(1, 1, 3, 4, word_bits=49), "word_bits"),
    (lambda: op.pe_luts(48, 10, 1), "xnor_in_dsp"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
