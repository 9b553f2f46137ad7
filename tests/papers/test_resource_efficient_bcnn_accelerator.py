"""Block-wise BCNN accelerator on a 1x1 datapath (idea of Choi, Shin and Kim, Journal of IEIE 2020)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import binary, bitops, deploy
from qteach.papers import resource_efficient_bcnn_accelerator as r

SHAPES = [  # n, c, h, w, o, kh, kw, stride, padding
    (2, 3, 7, 5, 4, 3, 3, 1, 1), (1, 70, 6, 9, 5, 2, 3, 2, (0, 2)), (3, 1, 5, 5, 2, 5, 5, 1, 2),
    (2, 65, 4, 4, 3, 1, 1, 2, 3), (1, 8, 1, 6, 2, 1, 3, (1, 3), 0), (2, 128, 3, 3, 7, 3, 3, 1, 0),
    (1, 5, 9, 4, 1, 4, 2, (2, 1), (1, 0)),
]


def _random(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("case", SHAPES)
def test_shifted_1x1_equals_binary_conv2d_and_f_conv2d(case):
    n, c, h, w_, o, kh, kw, s, p = case
    x, w = _random((n, c, h, w_), 1), _random((o, c, kh, kw), 2)
    y = r.shifted_1x1_conv2d(x, w, s, p)
    assert y.dtype == torch.int32
    assert torch.equal(y, bitops.binary_conv2d(x, w, s, p))
    assert torch.equal(y.float(), F.conv2d(binary.sign(x), binary.sign(w), stride=s, padding=p))


def test_shifted_1x1_by_hand():
    # 1 channel, 2x2 input of signs, 2x2 kernel, padding 1: every output is the sum of the taps inside.
    x = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])
    w = torch.tensor([[[[1.0, 1.0], [1.0, -1.0]]]])
    y = r.shifted_1x1_conv2d(x, w, padding=1)
    # corner (0, 0) sees only x[0,0] under w[1,1]: 1 * -1 = -1; centre sees all four: 1 - 1 - 1 - 1 = -2
    assert y[0, 0].tolist() == [[-1, 2, -1], [2, -2, 0], [-1, 0, 1]]


def test_zero_input_is_plus_one():
    x, w = torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 3, 3)
    assert torch.equal(r.shifted_1x1_conv2d(x, w), torch.full((1, 1, 1, 1), 18, dtype=torch.int32))


def test_conv1x1_and_fc():
    x, w = _random((3, 67, 2, 5), 3), _random((9, 67), 4)
    z = r.conv1x1(x, w)
    assert torch.equal(z, bitops.binary_conv2d(x, w[:, :, None, None]))
    v, wv = _random((5, 130), 5), _random((7, 130), 6)
    assert torch.equal(r.fc_as_1x1(v, wv), bitops.xnor_matmul(v, wv))
    m, wm = _random((4, 6, 3, 2), 7), _random((10, 36), 8)
    assert torch.equal(r.fc_on_feature_map(m, wm), bitops.xnor_matmul(m.flatten(1), wm))


def _threshold(o, seed):
    g = torch.Generator().manual_seed(seed)
    flip = torch.where(torch.rand(o, generator=g) < 0.5, 1, -1).to(torch.int8)
    return deploy.Threshold(flip, torch.randint(-15, 16, (o,), generator=g))


@pytest.mark.parametrize("c,h,w_,o,k,pad,pool", [(16, 8, 8, 24, 3, 1, 2), (3, 7, 9, 5, 3, 0, 2), (5, 9, 6, 4, 3, 2, 3),
                                                 (70, 4, 4, 6, 1, 0, 1), (2, 5, 5, 3, 2, 1, 2), (1, 6, 6, 2, 5, 4, 1)])
def test_block_wise_equals_layer_by_layer(c, h, w_, o, k, pad, pool):
    x, w = _random((3, c, h, w_), c + h), _random((o, c, k, k), o + k)
    th = _threshold(o, pool)
    ref, inter = r.block_layer_by_layer(x, w, th, pad, pool)
    out = r.block_wise(x, w, th, pad, pool)
    assert torch.equal(out, ref)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    conv = bitops.binary_conv2d(x, w, padding=pad)
    assert torch.equal(inter["conv"], conv)


def test_binary_pool_or_and():
    bits = torch.tensor([[[[1.0, -1.0], [-1.0, -1.0]], [[1.0, -1.0], [1.0, 1.0]]]])
    pooled = r.binary_pool(bits, torch.tensor([1, -1]), 2)
    assert pooled.flatten().tolist() == [1.0, -1.0]     # OR of +1s, AND of +1s


def test_accumulator_bits_by_hand():
    assert r.accumulator_bits(r.Block("b", 32, 64, 8)) == 10         # |s| <= 288 -> 9 + sign
    assert r.accumulator_bits(r.Block("b", 1, 32, 8, in_bits=8)) == 13   # |s| <= 9 * 255 = 2295 -> 12 + sign
    assert r.accumulator_bits(r.Block("b", 1, 1, 3, kernel=1, padding=0)) == 2


def test_buffer_bits_by_hand():
    b = r.Block("conv2 + pool", 32, 64, 8, pool=2)
    layer, block = r.buffer_bits(b, "layer"), r.buffer_bits(b, "block")
    assert layer["input"] == block["input"] == 32 * 64       # binary 8x8x32 input
    assert layer["output"] == block["output"] == 64 * 16     # binary 4x4x64 output
    assert layer["integers"] == 64 * (64 + 16) * 10          # conv map + pooled map, 10-bit each
    assert block["integers"] == 64 * 2 * 8 * 10              # one band of two conv rows
    assert layer["total"] == 2048 + 51200 + 1024


def test_buffer_bits_match_the_tensors():
    b = r.Block("t", 16, 24, 8, pool=2)
    x, w = _random((1, 16, 8, 8), 0), _random((24, 16, 3, 3), 1)
    y, inter = r.block_layer_by_layer(x, w, _threshold(24, 0), 1, 2)
    acc = r.accumulator_bits(b)
    assert r.buffer_bits(b, "layer")["integers"] == sum(t.numel() for t in inter.values()) * acc
    assert r.buffer_bits(b, "layer")["output"] == y.numel()
    assert r.buffer_bits(b, "block")["integers"] == 24 * 2 * 8 * acc


def test_networks_save_buffers():
    for blocks in (r.binary_cnn_blocks(), r.binarynet_cifar10_blocks()):
        for b in blocks:
            assert r.buffer_bits(b, "block")["total"] <= r.buffer_bits(b, "layer")["total"]
    assert [b.out_size for b in r.binary_cnn_blocks()] == [8, 4, 1]
    assert [b.out_size for b in r.binarynet_cifar10_blocks()][-4:] == [4, 1, 1, 1]


def test_related_paper_figures():
    assert r.RELATED_PAPER["kalm"] == 1.05 and r.RELATED_PAPER["gops_per_kalm"] == 22.514
    assert r.RELATED_PAPER["memory_kbit"] == 2304


def test_bad_inputs():
    x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError, match="x"):
        r.shifted_1x1_conv2d(torch.randn(2, 4, 4), w)
    with pytest.raises(ValueError, match="channels"):
        r.shifted_1x1_conv2d(x, torch.randn(3, 5, 3, 3))
    with pytest.raises(ValueError, match="stride"):
        r.shifted_1x1_conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match="x"):
        r.conv1x1([1, 2], torch.randn(2, 2))
    with pytest.raises(ValueError, match="w"):
        r.conv1x1(x, torch.randn(3, 5))
    with pytest.raises(ValueError, match="w"):
        r.fc_on_feature_map(x, torch.randn(3, 31))
    th = _threshold(3, 0)
    with pytest.raises(TypeError, match="threshold"):
        r.block_wise(x, w, "t")
    with pytest.raises(ValueError, match="threshold"):
        r.block_wise(x, w, _threshold(4, 0))
    with pytest.raises(ValueError, match="padding"):
        r.block_wise(x, w, th, padding=3)
    with pytest.raises(ValueError, match="pool"):
        r.block_layer_by_layer(x, w, th, padding=1, pool=0)
    with pytest.raises(ValueError, match="dataflow"):
        r.buffer_bits(r.Block("b", 1, 1, 4), "fused")
    with pytest.raises(TypeError, match="block"):
        r.accumulator_bits("b")
    with pytest.raises(ValueError, match="pool"):
        r.binary_pool(torch.ones(1, 1, 2, 2), torch.ones(1), 0)
