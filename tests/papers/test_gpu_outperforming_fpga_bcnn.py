"""Streaming binary-CNN FPGA vs GPU (Li et al., 2018): workload, throughput models, line-buffer convolution."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from qteach import binary, bitops
from qteach.papers import gpu_outperforming_fpga_bcnn as g


def test_binarynet_workload_by_hand():
    layers = g.binarynet_cifar10()
    assert [l.name for l in layers] == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2", "fc3"]
    assert layers[0].macs == 32 * 32 * 128 * 27 == 3_538_944
    assert layers[1].macs == 32 * 32 * 128 * 128 * 9
    assert layers[6].macs == 8192 * 1024 and layers[6].inputs == 512 * 4 * 4
    assert sum(l.macs for l in layers) == 616_966_144          # about 1.23 G binary operations per image
    assert layers[5].weights == 512 * 512 * 9


def test_streaming_throughput_by_hand():
    layers = [g.StreamLayer("a", 100, 10, 0, 0), g.StreamLayer("b", 50, 10, 0, 0)]
    r = g.streaming_throughput(layers, [10, 5], clock_hz=1e6)
    assert r["cycles"] == [10, 10] and r["ii"] == 10
    assert r["images_per_s"] == pytest.approx(1e5) and r["ops_per_s"] == pytest.approx(2 * 150 * 1e5)
    assert r["utilization"] == pytest.approx(1.0)
    r = g.streaming_throughput(layers, [5, 10], clock_hz=1e6)        # misallocated: stage a is the bottleneck
    assert r["cycles"] == [20, 5] and r["bottleneck"] == 0 and r["utilization"] == pytest.approx(150 / 300)


def _optimal_ii(layers, total):
    best = None
    for units in itertools.product(range(1, total + 1), repeat=len(layers)):
        if sum(units) == total:
            ii = max(-(-l.macs // u) for l, u in zip(layers, units))
            best = ii if best is None else min(best, ii)
    return best


@pytest.mark.parametrize("macs, total", [([7, 20, 3], 8), ([100, 1, 1], 5), ([9, 9, 9, 1], 12), ([50, 3], 6)])
def test_allocation_is_optimal_on_small_cases(macs, total):
    layers = [g.StreamLayer(str(i), m, 1, 1, 1) for i, m in enumerate(macs)]
    units = g.allocate_units(layers, total)
    assert sum(units) == total and min(units) >= 1
    assert g.streaming_throughput(layers, units, 1.0)["ii"] == _optimal_ii(layers, total)


def test_reported_fpga_implies_a_balanced_cifar_pipeline():
    layers = g.binarynet_cifar10()
    units = round(g.FPGA_REPORTED["ops_per_s"] / (2 * g.FPGA_REPORTED["clock_hz"]))
    assert units == 42_572                                            # 7.663e12 / (2 * 90e6)
    r = g.streaming_throughput(layers, g.allocate_units(layers, units), g.FPGA_REPORTED["clock_hz"])
    assert r["utilization"] > 0.99
    assert r["ops_per_s"] == pytest.approx(g.FPGA_REPORTED["ops_per_s"], rel=0.01)


def test_gpu_model_by_hand():
    layer = [g.StreamLayer("l", 10**6, 10**6, 0, 0)]
    # batch 1: 2e6 ops, 4e6 bytes -> intensity 0.5 < ridge 10 -> 5e10 ops/s -> 40 us + 10 us launch
    r = g.gpu_throughput(layer, 1, peak_ops_per_s=1e12, bandwidth_bytes_per_s=1e11, launch_s=1e-5)
    assert r["intensity"] == [pytest.approx(0.5)] and r["time_s"] == pytest.approx(5e-5)
    assert r["images_per_s"] == pytest.approx(2e4)
    # batch 100: intensity 50 > ridge -> peak: 2e8 / 1e12 = 200 us + 10 us
    r = g.gpu_throughput(layer, 100, 1e12, 1e11, 1e-5)
    assert r["time_s"] == pytest.approx(2.1e-4) and r["images_per_s"] == pytest.approx(100 / 2.1e-4)


def test_gpu_throughput_grows_with_batch_and_fpga_does_not_depend_on_it():
    layers = g.binarynet_cifar10()
    rates = [g.gpu_throughput(layers, b, 11e12, 480e9, 20e-6)["images_per_s"] for b in (1, 4, 16, 64, 256)]
    assert all(x < y for x, y in zip(rates, rates[1:]))
    assert "batch" not in g.streaming_throughput.__code__.co_varnames


def test_line_buffer_bits_by_hand():
    assert g.line_buffer_bits(width=7, channels=3, kernel=3) == (2 * 7 + 3) * 3 == 51
    assert g.line_buffer_bits(32, 128, 3) == 67 * 128
    assert g.line_buffer_bits(10, 1, 1) == 1


@pytest.mark.parametrize("shape, kernel", [((5, 3, 9, 7), 3), ((2, 16, 6, 6), 3), ((3, 4, 5, 5), 1),
                                           ((2, 2, 4, 6), 4), ((1, 70, 5, 5), 2)])
def test_streaming_conv_is_exact(shape, kernel):
    g_ = torch.Generator().manual_seed(sum(shape) + kernel)
    x = torch.randn(shape, generator=g_)
    w = torch.randn(6, shape[1], kernel, kernel, generator=g_)
    out, stats = g.streaming_binary_conv2d(x, w)
    assert out.dtype == torch.int32
    assert torch.equal(out, bitops.binary_conv2d(x, w))
    assert torch.equal(out.float(), F.conv2d(binary.sign(x), binary.sign(w)))
    n, c, h, width = shape
    assert stats["steps"] == h * width and stats["outputs"] == (h - kernel + 1) * (width - kernel + 1)
    assert stats["max_buffered"] * c == g.line_buffer_bits(width, c, kernel)


def test_bad_input():
    with pytest.raises(ValueError, match="layers"):
        g.streaming_throughput([], [], 1.0)
    with pytest.raises(ValueError, match="units"):
        g.streaming_throughput(g.binarynet_cifar10(), [1, 2], 1.0)
    with pytest.raises(ValueError, match="total_units"):
        g.allocate_units(g.binarynet_cifar10(), 3)
    with pytest.raises(ValueError, match="batch"):
        g.gpu_throughput(g.binarynet_cifar10(), 0, 1e12, 1e11, 0.0)
    with pytest.raises(ValueError, match="launch_s"):
        g.gpu_throughput(g.binarynet_cifar10(), 1, 1e12, 1e11, -1.0)
    with pytest.raises(ValueError, match="kernel"):
        g.line_buffer_bits(2, 1, 3)
    with pytest.raises(ValueError, match="w must be"):
        g.streaming_binary_conv2d(torch.randn(1, 3, 5, 5), torch.randn(2, 2, 3, 3))
    with pytest.raises(TypeError, match="x"):
        g.streaming_binary_conv2d(torch.ones(1, 1, 3, 3, dtype=torch.bool), torch.randn(1, 1, 3, 3))
