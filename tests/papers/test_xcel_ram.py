"""Xcel-RAM: charge-sharing popcount with a b-bit ADC, in-SRAM dot products and the sectioning cost model."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import bitops
from qteach.papers import bn_free_fpga
from qteach.papers import xcel_ram as xr


def test_charge_share_voltage_is_the_fraction_of_matches():
    v = xr.charge_share_voltage(torch.tensor([0, 16, 32, 64]), 64, vdd=0.8)
    assert torch.allclose(v, torch.tensor([0.0, 0.2, 0.4, 0.8], dtype=torch.float64))


def test_adc_read_hand_computed():
    # C = 4, b = 1: levels 0 and 1; q = round(m/4), m_hat = round(4q) -> 0, 0, 4 (2 rounds half up), 4, 4
    assert xr.adc_read(torch.arange(5), 4, 1).tolist() == [0, 0, 4, 4, 4]
    # C = 8, b = 2: q = round(3m/8) = 0,0,1,1,2,2,2,3,3 ; m_hat = round(8q/3) = 0,0,3,3,5,5,5,8,8
    assert xr.adc_read(torch.arange(9), 8, 2).tolist() == [0, 0, 3, 3, 5, 5, 5, 8, 8]


@pytest.mark.parametrize("columns", [1, 2, 3, 7, 8, 9, 31, 63, 64, 65, 128, 255, 256])
def test_adc_exact_iff_enough_levels(columns):
    m = torch.arange(columns + 1)
    for bits in range(1, 11):
        exact = bool((xr.adc_read(m, columns, bits) == m).all())
        assert exact == (2**bits >= columns + 1)
    assert xr.min_exact_bits(columns) == math.ceil(math.log2(columns + 1))


def test_adc_error_stats_exact_count():
    stats = xr.adc_error_stats(4, 1)                  # readings 0,0,4,4,4 -> errors 0,1,2,1,0
    assert stats["worst"] == 2 and stats["misread_counts"] == 3
    assert stats["mean_abs"] == pytest.approx((4 * 1 + 6 * 2 + 4 * 1) / 16)
    assert xr.adc_error_stats(64, 7) == {"worst": 0, "mean_abs": 0.0, "misread_counts": 0}
    worst = [xr.adc_error_stats(64, b)["worst"] for b in range(1, 8)]
    assert worst == sorted(worst, reverse=True)


@pytest.mark.parametrize("b, n, k, columns", [(5, 3, 1, 1), (7, 4, 64, 64), (3, 9, 100, 64), (2, 5, 130, 7),
                                               (1, 1, 9, 16)])
def test_in_sram_matmul_equals_xnor_matmul(b, n, k, columns):
    g = torch.Generator().manual_seed(k)
    a, w = torch.randn(b, k, generator=g), torch.randn(n, k, generator=g)
    ref = bitops.xnor_matmul(a, w).to(torch.int64)
    assert torch.equal(xr.in_sram_xnor_matmul(a, w, columns), ref)
    assert torch.equal(xr.in_sram_xnor_matmul(a, w, columns, xr.min_exact_bits(columns)), ref)
    assert torch.equal(xr.in_sram_xnor_matmul(a, w, columns, 20), ref)


def test_in_sram_matmul_low_bits_errs_and_stays_in_range():
    g = torch.Generator().manual_seed(0)
    a, w = torch.randn(50, 256, generator=g), torch.randn(20, 256, generator=g)
    ref = bitops.xnor_matmul(a, w).to(torch.int64)
    low = xr.in_sram_xnor_matmul(a, w, 64, 2)
    assert not torch.equal(low, ref)
    assert bool((low.abs() <= 256).all()) and bool(((low + 256) % 2 == 0).all())


def test_in_sram_forward_exact_equals_model():
    torch.manual_seed(0)
    model = bn_free_fpga.bnn_mlp(16, 24, 3).eval()
    x = torch.randn(10, 16)
    with torch.no_grad():
        ref = model(x)
    assert torch.equal(xr.in_sram_forward(model, x, 8, 4), ref)
    assert torch.equal(xr.in_sram_forward(model, x, 8), ref)
    assert not torch.equal(xr.in_sram_forward(model, x, 24, 1), ref)


def test_sectioning_model():
    assert xr.section_energy_factor(1, 0.8) == pytest.approx(1.0)
    # the paper's 2.5x energy at 4 sections <=> 80 % bit-line share under this model
    assert 1 / xr.section_energy_factor(4, 0.8) == pytest.approx(2.5)
    one = xr.sectioned_layer_cost(128, 1152, 64, 4, 1)
    four = xr.sectioned_layer_cost(128, 1152, 64, 4, 4)
    assert one["partial_popcounts"] == 128 * 18 == four["partial_popcounts"]
    assert one["accesses"] == 576 and four["accesses"] == 144
    assert one["time_ns"] == pytest.approx(576 * 45.0)
    assert one["time_ns"] / four["time_ns"] == pytest.approx(4.0)
    assert one["energy_pj"] == pytest.approx(2304 * 1.914)
    assert one["energy_pj"] / four["energy_pj"] == pytest.approx(2.5)
    assert xr.sectioned_layer_cost(3, 10, 64, 1, 2)["accesses"] == 2      # ceil(3 / 2)


@pytest.mark.parametrize("call, kind, word", [
    (lambda: xr.adc_read(torch.tensor([5]), 4, 2), ValueError, "matches"),
    (lambda: xr.adc_read(torch.tensor([1.0]), 4, 2), ValueError, "matches"),
    (lambda: xr.adc_read(torch.tensor([1]), 4, 0), ValueError, "bits"),
    (lambda: xr.adc_read([1], 4, 2), TypeError, "matches"),
    (lambda: xr.charge_share_voltage(torch.tensor([1]), 0), ValueError, "columns"),
    (lambda: xr.min_exact_bits(2.0), TypeError, "columns"),
    (lambda: xr.adc_error_stats(4, 2, p=1.5), ValueError, "p"),
    (lambda: xr.in_sram_xnor_matmul(torch.ones(2, 3), torch.ones(2, 4), 4), ValueError, "a and w"),
    (lambda: xr.in_sram_xnor_matmul(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3), 4), TypeError, "a"),
    (lambda: xr.in_sram_xnor_matmul(torch.ones(2, 3), torch.ones(2, 3), 4, bits=1.5), TypeError, "bits"),
    (lambda: xr.in_sram_forward(torch.nn.Linear(2, 2), torch.ones(1, 2), 4), TypeError, "model"),
    (lambda: xr.section_energy_factor(0, 0.5), ValueError, "sections"),
    (lambda: xr.section_energy_factor(2, 0.0), ValueError, "bitline_share"),
    (lambda: xr.sectioned_layer_cost(1, 1, 1, 1, 1, access_ns=-1), ValueError, "access_ns"),
])
def test_bad_input(call, kind, word):
    with pytest.raises(kind, match=word):
        call()
