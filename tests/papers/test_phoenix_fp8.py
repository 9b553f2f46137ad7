"""Tests of qteach.papers.phoenix_fp8: the float formats bit-exact against PyTorch's float8 casts, hand-computed
values, the full-precision-product multiplier, the gate counts, bad input."""

import pytest
import torch

from qteach import data
from qteach.papers import phoenix_fp8 as p

_TORCH = [(p.E4M3FN, torch.float8_e4m3fn), (p.E5M2, torch.float8_e5m2)]


def _same(a, b):
    return bool((((a == b) & (torch.signbit(a) == torch.signbit(b))) | (torch.isnan(a) & torch.isnan(b))).all())


def _probe(fmt):
    """Every finite value, every midpoint (ties), one float32 ulp either side, and 10^5 random magnitudes."""
    table = p.decode(torch.arange(256), fmt)
    values = table[torch.isfinite(table)].float().unique()
    mids = ((values[1:].double() + values[:-1].double()) / 2).float()
    gen = torch.Generator().manual_seed(0)
    rand = torch.exp2(torch.empty(100_000).uniform_(-30, 20, generator=gen)) * (torch.rand(100_000, generator=gen) - .5)
    return torch.cat([values, mids, torch.nextafter(mids, torch.tensor(1e9)), torch.nextafter(mids, torch.tensor(-1e9)),
                      rand, torch.tensor([0.0, -0.0, float("nan"), -1e-30, 1e-30])])


@pytest.mark.parametrize("fmt, dtype", _TORCH)
def test_value_table_equals_torch(fmt, dtype):
    codes = torch.arange(256)
    assert _same(p.decode(codes, fmt), codes.to(torch.uint8).view(dtype).double())


@pytest.mark.parametrize("fmt, dtype", _TORCH)
def test_rounding_bit_exact_against_torch_where_in_range(fmt, dtype):
    x = _probe(fmt)
    x = x[~(x.abs() > p.max_finite(fmt))]           # overflow is tested below
    ours = p.quantize_float(x, fmt)
    theirs = x.to(dtype)
    assert _same(ours, theirs.float())
    finite = ~torch.isnan(ours)
    assert torch.equal(p.encode(ours[finite], fmt), theirs[finite].view(torch.uint8).long())


def test_overflow_policies_and_torch():
    big = torch.tensor([449.0, 464.0, 465.0, 480.0, 1e6, float("inf"), -1e6, -float("inf")])
    assert p.quantize_float(big, p.E4M3FN).tolist() == [448.0] * 6 + [-448.0] * 2
    nan = p.quantize_float(big, p.E4M3FN, saturate=False)
    assert nan[:2].tolist() == [448.0, 448.0] and bool(torch.isnan(nan[2:]).all())   # 464 is a tie: to even, 448
    # PyTorch's e4m3fn cast: older releases give NaN past the range, 2.x releases saturate; it must be one of ours.
    theirs = big.to(torch.float8_e4m3fn).float()
    assert _same(theirs, p.quantize_float(big, p.E4M3FN)) or _same(theirs[:-2], nan[:-2])
    e5 = torch.tensor([57344.0, 61439.0, 61440.0, 1e6, float("inf"), -float("inf")])
    ours = p.quantize_float(e5, p.E5M2, saturate=False)
    assert ours.tolist() == [57344.0, 57344.0, float("inf"), float("inf"), float("inf"), -float("inf")]
    assert _same(ours, e5.to(torch.float8_e5m2).float())        # PyTorch's e5m2 cast does not saturate
    assert p.quantize_float(e5, p.E5M2).tolist()[:4] == [57344.0] * 4
    assert p.quantize_float(e5, p.E5M2).tolist()[4:] == [float("inf"), -float("inf")]   # inf stays inf


def test_hand_computed_values():
    # E4M3FN, bias 7: 1.0625 lies halfway between 1 and 1.125 -> even mantissa 000 -> 1.0; 1.1875 -> 1.25.
    x = torch.tensor([1.0625, 1.1875, 2 ** -9, 2 ** -10, 1.5 * 2 ** -10, 3 * 2 ** -10, -0.0, 0.3])
    assert p.quantize_float(x, p.E4M3FN).tolist() == [1.0, 1.25, 2 ** -9, 0.0, 2 ** -9, 2 ** -8, -0.0, 0.3125]
    assert torch.signbit(p.quantize_float(torch.tensor([-2 ** -11]), p.E4M3FN)).item()      # -0 keeps its sign
    assert p.max_finite(p.E4M3FN) == 448 and p.max_finite(p.E5M2) == 57344 and p.min_subnormal(p.E5M2) == 2 ** -16
    assert p.max_finite(p.float_format(4, 3)) == 480      # all codes finite: 1.875 * 2^8
    assert p.max_finite(p.float_format(3, 4, bias=3)) == 31.0      # 2^(7-3) * (1 + 15/16)
    assert p.encode(torch.tensor([1.0, -448.0, 2 ** -9]), p.E4M3FN).tolist() == [0b0_0111_000, 0b1_1111_110, 1]


def test_float16_matches_torch_half_and_one_exponent_bit_is_int8():
    x = _probe(p.E5M2)
    x = x[~(x.abs() > 60000)]
    half = p.float_format(5, 10, special="ieee")
    assert _same(p.quantize_float(x, half), x.half().float())
    w = data.weight_samples(5000, "laplace", seed=1)
    assert torch.allclose(p.normalized_quantize(w, p.float_format(1, 6)), p.int8_quantize(w), rtol=0, atol=1e-7)


def test_normalized_quantize_per_channel_and_int8():
    w = torch.tensor([[0.01, -0.02, 0.04], [3.0, -1.0, 0.5]])
    q = p.normalized_quantize(w, p.E4M3FN, axis=0)
    assert q[0, 2] == 0.04 and q[1, 0] == 3.0                                       # the peaks are exact
    assert torch.equal(p.normalized_quantize(torch.zeros(3), p.E4M3FN), torch.zeros(3))
    i = p.int8_quantize(w, axis=0)
    assert torch.allclose(i[1], torch.round(w[1] / (3 / 127)) * (3 / 127))
    assert p.sqnr_db(w, w) == float("inf")
    assert abs(p.sqnr_db(torch.tensor([1.0, 1.0]), torch.tensor([1.1, 0.9])) - 20.0) < 1e-4


def test_heavy_tails_favour_floating_point():
    g = data.weight_samples(20000, "gaussian", seed=0)
    o = g.clone()
    o[::100] *= 30
    assert p.sqnr_db(g, p.int8_quantize(g)) > p.sqnr_db(g, p.normalized_quantize(g, p.E4M3FN)) + 5
    assert p.sqnr_db(o, p.normalized_quantize(o, p.E4M3FN)) > p.sqnr_db(o, p.int8_quantize(o)) + 5


@pytest.mark.parametrize("fmt", [p.E4M3FN, p.E5M2, p.float_format(3, 4), p.float_format(2, 5, bias=4)])
def test_fp_product_is_exact(fmt):
    table = p.decode(torch.arange(256), fmt)
    codes = torch.arange(256)[torch.isfinite(table)]
    a, b = torch.meshgrid(codes, codes, indexing="ij")
    s, e, m = p.fp_product(a, b, fmt)
    value = torch.where(s == 1, -1.0, 1.0).double() * m.double() * torch.exp2(e.double())
    assert torch.equal(value.abs(), (p.decode(a, fmt) * p.decode(b, fmt)).abs())
    assert torch.equal(value == 0, (p.decode(a, fmt) * p.decode(b, fmt)) == 0)
    assert int(m.max()) < 2 ** (2 * (fmt.mantissa_bits + 1))                 # fits a 2(M+1)-bit product


def test_gate_counts():
    assert p.array_multiplier_cells(8) == {"and": 64, "half_adder": 8, "full_adder": 48}
    assert p.array_multiplier_cells(4) == {"and": 16, "half_adder": 4, "full_adder": 8}
    assert p.array_multiplier_cells(1) == {"and": 1, "half_adder": 0, "full_adder": 0}
    assert p.multiplier_gates("int")["gates"] == 64 + 2 * 8 + 5 * 48
    f = p.multiplier_gates("float", 4, 3)
    assert f["gates"] == 16 + 2 * 4 + 5 * (8 + 4) + 1
    assert p.multiplier_gates("float", 5, 2)["gates"] < f["gates"] < p.multiplier_gates("int")["gates"]


def test_bad_input():
    with pytest.raises(TypeError, match="x"):
        p.quantize_float([1.0], p.E4M3FN)
    with pytest.raises(TypeError, match="fmt"):
        p.quantize_float(torch.ones(2), (4, 3))
    with pytest.raises(ValueError, match="NaN"):
        p.quantize_float(torch.tensor([float("nan")]), p.float_format(4, 3))
    with pytest.raises(ValueError, match="special"):
        p.float_format(4, 3, special="ocp")
    with pytest.raises(ValueError, match="exponent_bits"):
        p.float_format(0, 7)
    with pytest.raises(ValueError, match="codes"):
        p.decode(torch.tensor([256]), p.E4M3FN)
    with pytest.raises(ValueError, match="represent"):
        p.encode(torch.tensor([0.3]), p.E4M3FN)
    with pytest.raises(ValueError, match="axis"):
        p.normalized_quantize(torch.ones(2, 2), p.E4M3FN, axis=2)
    with pytest.raises(ValueError, match="kind"):
        p.multiplier_gates("fixed")
    with pytest.raises(ValueError, match="finite"):
        p.fp_product(torch.tensor([0x7F]), torch.tensor([1]), p.E4M3FN)
    with pytest.raises(ValueError, match="shape"):
        p.sqnr_db(torch.ones(2), torch.ones(3))
