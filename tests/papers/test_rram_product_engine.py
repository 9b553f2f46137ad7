"""BDPE (VLSI-SoC 2019): kernel codes, store, hit counts, engine table, bit-exact routed convolution, cost model."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.papers import rram_product_engine as rp


def test_kernel_codes_by_hand():
    w = torch.ones(2, 1, 3, 3)
    w[1, 0, 0, 0] = -1.0                      # tap 0 negative -> bit 0
    w[1, 0, 2, 2] = -0.5                      # tap 8 negative -> bit 8
    codes = rp.kernel_codes(w)
    assert codes.dtype == torch.int64 and codes.shape == (2, 1)
    assert codes.tolist() == [[0], [1 + 256]]
    assert rp.kernel_codes(-torch.ones(1, 1, 3, 3)).item() == 511
    assert rp.kernel_codes(torch.zeros(1, 1, 3, 3)).item() == 0      # sign(0) = +1


def test_histogram_store_and_hits_by_hand():
    codes = torch.tensor([[5, 5, 7], [7, 5, 0]])
    counts = rp.kernel_histogram(codes, taps=3)
    assert counts.tolist() == [1, 0, 0, 0, 0, 3, 0, 2]
    assert rp.build_store(counts, 2).tolist() == [5, 7]
    assert rp.build_store(counts, 4).tolist() == [5, 7, 0, 1]        # ties: smaller code first
    assert rp.hit_counts(counts).tolist() == [0, 3, 5, 6, 6, 6, 6, 6, 6]
    assert rp.kernel_histogram(codes, 3).sum() == codes.numel()


def test_engine_table_by_hand():
    table = rp.engine_table(torch.tensor([0, 511]), taps=9)
    assert table.shape == (2, 512)
    assert table[0, 0] == 9 and table[0, 511] == -9 and table[1, 511] == 9
    assert table[0, 0b11] == 9 - 4                                   # two taps disagree


@pytest.mark.parametrize("shape", [
    (2, 3, 8, 8, 4, 3, 3, 1, 1), (1, 1, 5, 7, 1, 3, 3, 2, 2), (2, 5, 6, 6, 3, 1, 1, 1, 0),
    (1, 2, 4, 9, 2, 2, 3, (1, 2), (0, 1)), (3, 4, 3, 3, 5, 3, 3, 1, 0), (1, 2, 9, 5, 3, 3, 3, 3, 1)])
def test_bdpe_conv_equals_binary_conv(shape):
    n, c, h, w, o, kh, kw, stride, padding = shape
    g = torch.Generator().manual_seed(sum(shape[:7]))
    x, wt = torch.randn(n, c, h, w, generator=g), torch.randn(o, c, kh, kw, generator=g)
    x[0, 0, 0, 0] = 0.0                                              # sign(0) = +1 on both paths
    plain = bitops.binary_conv2d(x, wt, stride, padding)
    counts = rp.kernel_histogram(rp.kernel_codes(wt), kh * kw)
    for entries in sorted({0, 1, min(3, 2 ** (kh * kw)), 2 ** (kh * kw) // 2, 2 ** (kh * kw)}):
        y, engine, cpu = rp.bdpe_conv2d(x, wt, rp.build_store(counts, entries), stride, padding)
        assert y.dtype == torch.int32 and torch.equal(y, plain)
        assert engine + cpu == o * c * n * plain.shape[2] * plain.shape[3]
    assert cpu == 0                                                  # the full store serves every kernel


def test_bdpe_hits_follow_the_store():
    w = torch.ones(2, 2, 3, 3)
    w[1, 1] = -1.0                                                   # codes 0, 0, 0, 511
    x = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    _, engine, cpu = rp.bdpe_conv2d(x, w, torch.tensor([0]), padding=1)
    assert (engine, cpu) == (3 * 16, 1 * 16)
    _, engine, cpu = rp.bdpe_conv2d(x, w, torch.tensor([], dtype=torch.int64), padding=1)
    assert (engine, cpu) == (0, 64)


def test_cost_model_by_hand():
    cost = rp.layer_cost(30, 70)
    a = rp.ASSUMED_COSTS
    assert cost["cpu"]["loads"] == 100 * a["cpu_loads"] == 200
    assert cost["bdpe"]["loads"] == 70 * 2 + 30 * 1 == 170
    assert cost["bdpe"]["instructions"] == 70 * 6 + 30 * 4
    assert cost["cpu"]["energy_pj"] == pytest.approx(200 * 20 + 600 * 10)
    assert cost["bdpe"]["energy_pj"] == pytest.approx(170 * 20 + 540 * 10 + 30 * 5)
    assert rp.layer_cost(0, 10)["cpu"] == rp.layer_cost(0, 10)["bdpe"]
    free = rp.layer_cost(10, 0, {"engine_read_pj": 0.0})["bdpe"]["energy_pj"]
    assert free == pytest.approx(10 * 20 + 40 * 10)


def test_network_gain():
    assert rp.network_gain(0.9, 0.0) == 0.0
    assert rp.network_gain(1.0, 0.5) == pytest.approx(1.0)
    f = rp.PAPER_ABSTRACT["convolution_share"]
    s = (1 - 1 / 1.113) / f                                          # the saving that gives +11.3%
    assert rp.network_gain(f, s) == pytest.approx(0.113)


def test_bad_inputs():
    with pytest.raises(ValueError, match="w"):
        rp.kernel_codes(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="taps"):
        rp.kernel_codes(torch.zeros(1, 1, 5, 5))
    with pytest.raises(ValueError, match="w"):
        rp.kernel_codes(torch.full((1, 1, 3, 3), float("nan")))
    with pytest.raises(ValueError, match="codes"):
        rp.kernel_histogram(torch.tensor([512]), 9)
    with pytest.raises(TypeError, match="codes"):
        rp.kernel_histogram(torch.tensor([1.0]), 9)
    with pytest.raises(ValueError, match="entries"):
        rp.build_store(torch.zeros(8, dtype=torch.int64), 9)
    with pytest.raises(ValueError, match="store"):
        rp.bdpe_conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="store"):
        rp.bdpe_conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3), torch.tensor([600]))
    with pytest.raises(ValueError, match="w"):
        rp.bdpe_conv2d(torch.randn(1, 2, 4, 4), torch.randn(1, 1, 3, 3), torch.tensor([1]))
    with pytest.raises(ValueError, match="engine_dots"):
        rp.layer_cost(-1, 0)
    with pytest.raises(ValueError, match="costs"):
        rp.layer_cost(1, 0, {"unknown": 1.0})
    with pytest.raises(ValueError, match="convolution_share"):
        rp.network_gain(1.5, 0.1)
