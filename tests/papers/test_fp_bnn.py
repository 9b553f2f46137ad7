"""FP-BNN (Liang et al., 2018): compressor-tree popcount, shift-based BN, throughput model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import bitops
from qteach.papers import fp_bnn as fb


# --- the 6:3 compressor ------------------------------------------------------------------------------------

def test_compressor_table_by_hand():
    table = fb.compressor_6_3_table()
    assert table.shape == (64, 3) and table.dtype == torch.uint8
    assert table[0].tolist() == [0, 0, 0]
    assert table[0b000111].tolist() == [1, 1, 0]      # three ones: 3 = 0b011
    assert table[0b111111].tolist() == [0, 1, 1]      # six ones: 6 = 0b110
    assert table[0b100000].tolist() == [1, 0, 0]
    weights = torch.tensor([1, 2, 4])
    counts = torch.tensor([bin(i).count("1") for i in range(64)])
    assert torch.equal((table.long() * weights).sum(-1), counts)


def test_compressor_on_bits():
    # b = 1,0,1,1,0,1 -> four ones -> (s0, s1, s2) = (0, 0, 1)
    assert fb.compressor_6_3(torch.tensor([1, 0, 1, 1, 0, 1])).tolist() == [0, 0, 1]
    out = fb.compressor_6_3(torch.tensor([[True] * 6, [False] * 6]))
    assert out.tolist() == [[0, 1, 1], [0, 0, 0]]


# --- trees: bit-exact against a plain popcount, and their cost ---------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 3, 5, 6, 7, 12, 13, 36, 64, 100, 257])
def test_trees_equal_plain_popcount(width):
    g = torch.Generator().manual_seed(width)
    bits = torch.randint(0, 2, (300, width), generator=g)
    bits[0] = 0
    bits[1] = 1                                            # the extremes: 0 and width
    plain = bits.sum(-1)
    compressed, _ = fb.compressor_tree_popcount(bits)
    added, _ = fb.adder_tree_popcount(bits)
    assert torch.equal(compressed, plain) and torch.equal(added, plain)
    assert compressed.dtype == torch.int64


def test_xnor_popcount_equals_xnor_matmul():
    g = torch.Generator().manual_seed(0)
    a, w = torch.randn(20, 75, generator=g), torch.randn(9, 75, generator=g)
    matches = (torch.sign(a)[:, None, :] == torch.sign(w)[None, :, :])          # XNOR of the sign bits
    count, _ = fb.compressor_tree_popcount(matches)
    assert torch.equal(2 * count - 75, bitops.xnor_matmul(a, w).to(torch.int64))


def test_costs_by_hand():
    # 6 bits: one compressor (3 LUTs), outputs in three different columns: no final adder.
    c6 = fb.popcount_cost(6)
    assert (c6.luts, c6.units, c6.stages, c6.final_adder_bits) == (3, 1, 1, 0)
    # 12 bits: two compressors -> columns of height 2, 2, 2 -> a 3-bit final adder: 6 + 3 = 9 LUTs.
    c12 = fb.popcount_cost(12)
    assert (c12.luts, c12.units, c12.stages, c12.final_adder_bits) == (9, 2, 1, 3)
    # adder tree of 6 bits: three 1-bit adders (3), one 2-bit adder (2), one 3-bit adder (3) = 8 LUTs in 3 levels
    a6 = fb.popcount_cost(6, "adder")
    assert (a6.luts, a6.units, a6.stages) == (8, 5, 3)
    assert fb.popcount_cost(1).luts == 0 and fb.popcount_cost(2).luts == 1 == fb.popcount_cost(2, "adder").luts
    assert fb.popcount_cost(3).luts == 2       # a 3-input compressor leaves s2 unused


def test_compressor_tree_is_about_half_the_adder_tree():
    for width in (64, 256, 1024):
        ratio = fb.popcount_cost(width).luts / fb.popcount_cost(width, "adder").luts
        assert 0.45 < ratio < 0.65, (width, ratio)
    assert 1.9 < fb.popcount_cost(1024, "adder").luts / 1024 < 2.0       # about 2N
    assert fb.popcount_cost(1024, "adder").units == 1023                  # N - 1 adders


def test_stage_heights_by_hand_and_against_the_simulation():
    assert fb.compressor_stage_heights([12]) == [2, 2, 2]
    assert fb.compressor_stage_heights([7]) == [2, 1, 1]
    assert fb.compressor_stage_heights([3]) == [1, 1]
    assert fb.compressor_stage_heights([5]) == [1, 1, 1]
    assert fb.compressor_stage_heights([0, 3]) == [0, 1, 1]
    assert fb.compressor_stage_heights([2, 1]) == [2, 1]
    for width in range(1, 200):
        heights, stages = [width], 0
        while max(heights) > 2:
            heights, stages = fb.compressor_stage_heights(heights), stages + 1
        assert stages == fb.popcount_cost(width).stages, width


def test_popcount_bad_input():
    with pytest.raises(TypeError, match="bits"):
        fb.compressor_tree_popcount(torch.rand(3, 4))
    with pytest.raises(ValueError, match="0 and 1"):
        fb.adder_tree_popcount(torch.tensor([[0, 2, 1]]))
    with pytest.raises(ValueError, match="6 bits"):
        fb.compressor_6_3(torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="design"):
        fb.popcount_cost(8, "wallace")
    with pytest.raises(ValueError, match="heights"):
        fb.compressor_stage_heights([])


# --- shift-based batch normalization -------------------------------------------------------------------------

def test_ap2_by_hand():
    x = torch.tensor([3.0, -0.3, 0.0, 1.0, 0.7, -6.0])
    # log2 3 = 1.58 -> 2 -> 4; log2 0.3 = -1.74 -> -2 -> -0.25; log2 0.7 = -0.51 -> -1 -> 0.5; log2 6 = 2.58 -> 8
    assert ap2_list(x) == [4.0, -0.25, 0.0, 1.0, 0.5, -8.0]


def ap2_list(x):
    return fb.ap2(x).tolist()


def test_shift_batch_norm_by_hand():
    # gamma 3, var 0, eps 1: scale 3 -> AP2 4; (5 - 2) * 4 + 1 = 13
    f = lambda *v: torch.tensor(v)  # noqa: E731
    y = fb.shift_batch_norm(f([5.0]), f(3.0), f(1.0), f(2.0), f(0.0), eps=1.0)
    assert y.tolist() == [[13.0]]


def test_shift_batch_norm_module_and_model_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU()).eval()
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 3.0)
    shifted = fb.with_shift_batch_norm(model)
    assert isinstance(shifted[1], fb.ShiftBatchNorm1d) and isinstance(model[1], nn.BatchNorm1d)
    x = torch.randn(5, 4)
    h = model[0](x)
    expected = fb.shift_batch_norm(h, model[1].weight, model[1].bias, model[1].running_mean, model[1].running_var)
    assert torch.allclose(shifted(x), torch.relu(expected))
    scale = fb.ap2(model[1].weight / torch.sqrt(model[1].running_var + 1e-5))
    assert torch.all(torch.log2(scale.abs()) == torch.round(torch.log2(scale.abs())))   # powers of two


def test_shift_bn_bad_input():
    with pytest.raises(TypeError, match="x"):
        fb.ap2(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="gamma"):
        fb.shift_batch_norm(torch.zeros(2, 3), torch.ones(2), torch.ones(3), torch.ones(3), torch.ones(3))
    with pytest.raises(TypeError, match="bn"):
        fb.ShiftBatchNorm1d(nn.Linear(2, 2))


# --- throughput model ---------------------------------------------------------------------------------------

def test_layer_cycles_by_hand():
    assert fb.layer_cycles(100, 10, pes=3, simd=32) == 4 * 4          # ceil(10/3) * ceil(100/32)
    assert fb.layer_cycles(64, 64, pes=64, simd=64) == 1
    with pytest.raises(ValueError, match="pes"):
        fb.layer_cycles(64, 64, pes=0, simd=8)


def test_pe_luts_by_hand():
    # 6 lanes: 3 LUTs of XNOR (two per LUT), a 3-LUT compressor, and 6-bit accumulator + comparator (fan-in 63)
    assert fb.pe_luts(6, 63) == 3 + 3 + 12
    assert fb.pe_luts(6, 63, "adder") == 3 + 8 + 12


def test_layer_throughput():
    small = fb.layer_throughput(1024, 256, lut_budget=10, simd=64, clock_hz=100e6)
    assert small["pes"] == 0 and small["gops"] == 0.0
    r = fb.layer_throughput(1024, 256, lut_budget=20_000, simd=64, clock_hz=100e6)
    assert r["pes"] == 20_000 // r["luts_per_pe"] and r["luts_used"] <= 20_000
    assert r["cycles"] == fb.layer_cycles(1024, 256, r["pes"], 64)
    assert r["gops"] == pytest.approx(2 * 1024 * 256 * 100e6 / r["cycles"] / 1e9)
    adder = fb.layer_throughput(1024, 256, lut_budget=20_000, simd=64, clock_hz=100e6, design="adder")
    assert adder["pes"] < r["pes"] and adder["gops"] <= r["gops"]
    capped = fb.layer_throughput(64, 8, lut_budget=10**7, simd=64, clock_hz=1e8)
    assert capped["pes"] == 8 and capped["cycles"] == 1
