"""Tests of qteach.papers.fpga_accelerator_survey: hand-computed roofline numbers, invariants, bad input."""

from __future__ import annotations

import math

import pytest

from qteach import hw
from qteach.papers import finn_r
from qteach.papers import fpga_accelerator_survey as fs


def test_pynq_z1_constants():
    # 2 transfers per clock x 525 MHz x 16 bits / 8 = 2.1 GB/s (pynqZ1-Z2.tcl lines 91, 448)
    assert fs.PYNQ_Z1.dram_bytes_per_s == 2.1e9
    assert (fs.PYNQ_Z1.luts, fs.PYNQ_Z1.dsps, fs.PYNQ_Z1.clock_hz) == (53_200, 220, 100e6)


def test_lane_luts_matches_finn_formula():
    # c1 * ((2 ceil((W+A)/6) - 1)(W+A) + 2(W+A)); the accumulator does not grow between 64 and 128 lanes
    # except by one bit (log2 of MW): mvau_luts truncates to int, so compare within 1/64 LUT per lane
    for w, a in [(1, 1), (2, 2), (4, 4), (8, 8), (1, 8)]:
        wa = w + a
        formula = 1.1 * ((2 * math.ceil(wa / 6) - 1) * wa + 2 * wa)
        assert fs.lane_luts(w, a) == pytest.approx(formula, abs=2 / 64)


def test_lane_luts_grow_with_bits():
    costs = [fs.lane_luts(b, b) for b in (1, 2, 4, 8, 16)]
    assert costs == sorted(costs) and costs[0] < costs[-1] / 50


def test_peak_ops_hand_computed():
    d = fs.Device("toy", luts=1000, dsps=10, clock_hz=1e6, dram_bytes_per_s=1e6)
    lanes = int(0.5 * 1000 / fs.lane_luts(1, 1))
    assert fs.peak_ops(d, 1, 1) == 2 * 1e6 * (10 + lanes)
    # above 18 bits the DSP rule gives no lanes
    assert fs.peak_ops(d, 16, 16) == 2 * 1e6 * (10 + int(500 / fs.lane_luts(16, 16)))
    assert fs.peak_ops(d, 24, 24) == 2 * 1e6 * int(500 / fs.lane_luts(24, 24))


def test_fc_intensity_hand_computed():
    # 4 x 2 layer, 8 bits, batch 1: ops 16, bytes 8 + 4 + 2 = 14
    assert fs.fc_intensity(4, 2, 8, 8) == pytest.approx(16 / 14)
    # weights on chip: only activations move
    assert fs.fc_intensity(4, 2, 8, 8, weights_on_chip=True) == pytest.approx(16 / 6)
    # batch 3, 1-bit weights, 8-bit activations: ops 48, bytes 1 + 3*4 + 3*2 = 19
    assert fs.fc_intensity(4, 2, 1, 8, batch=3) == pytest.approx(48 / 19)


def test_fc_intensity_tends_to_two_ops_per_weight_byte():
    # large layer, batch 1: I -> 16 / b_w ops per byte
    for b in (1, 2, 4, 8):
        assert fs.fc_intensity(9216, 4096, b, b) == pytest.approx(16 / b, rel=1e-3)


def test_layer_roofline_agrees_with_hw():
    d = fs.PYNQ_Z1
    for intensity in (0.5, 10.0, 1000.0):
        r = fs.layer_roofline(intensity, d, 8, 8)
        assert r["attainable"] == hw.roofline(intensity, r["peak"], d.dram_bytes_per_s)
        assert r["bound"] == ("memory" if intensity < r["ridge"] else "compute")


def test_precision_flips_a_batched_layer():
    # AlexNet-fc6-sized layer at batch 24: compute-bound at 8 bits, memory-bound at 1 bit
    d = fs.PYNQ_Z1
    assert fs.layer_roofline(fs.fc_intensity(9216, 4096, 8, 8, 24), d, 8, 8)["bound"] == "compute"
    assert fs.layer_roofline(fs.fc_intensity(9216, 4096, 1, 1, 24), d, 1, 1)["bound"] == "memory"


def test_uses_finn_r_cost_model():
    layer = finn_r.Layer("x", 1, 128, 1, 2, 2)
    assert fs.lane_luts(2, 2) == (finn_r.mvau_luts(layer, 1, 128) - finn_r.mvau_luts(layer, 1, 64)) / 64


def test_bad_inputs():
    with pytest.raises(TypeError, match="device"):
        fs.peak_ops("pynq", 1, 1)
    with pytest.raises(ValueError, match="lut_fraction"):
        fs.peak_ops(fs.PYNQ_Z1, 1, 1, lut_fraction=1.5)
    with pytest.raises(ValueError, match="n_in"):
        fs.fc_intensity(0, 4, 1, 1)
    with pytest.raises(ValueError, match="batch"):
        fs.fc_intensity(4, 4, 1, 1, batch=0)
    with pytest.raises(TypeError, match="weights_on_chip"):
        fs.fc_intensity(4, 4, 1, 1, weights_on_chip="yes")
    with pytest.raises(ValueError, match="bus_bits"):
        fs.ddr_bandwidth(1e8, 4)
    with pytest.raises(ValueError, match="ddr_clock_hz"):
        fs.ddr_bandwidth(-1.0, 16)
    with pytest.raises((TypeError, ValueError), match="w_bits"):
        fs.lane_luts(0, 1)
