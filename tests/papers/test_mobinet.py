"""MoBiNet's binary depth-wise separable block: counts by hand, bit-exact depth-wise XNOR-popcount, shortcuts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import binary, comparison
from qteach import nn as qnn
from qteach.papers import mobinet as mb


def test_block_bops_by_hand_and_mobilenet_ratio():
    standard = mb.block_bops("standard", 16, (1, 5), (1, 20))
    separable = mb.block_bops("separable", 16, (1, 5), (1, 20))
    assert (standard, separable) == (25600, 1600 + 5120)
    # MobileNet (Howard et al. 2017, eq. 5 / eq. 2): 1/C_out + 1/(kh kw)
    assert separable / standard == pytest.approx(1 / 16 + 1 / 5)
    for c, k in ((4, 3), (32, 9), (64, (3, 3))):
        kk = k if isinstance(k, int) else k[0] * k[1]
        ratio = mb.block_bops("separable", c, k, 7) / mb.block_bops("standard", c, k, 7)
        assert ratio == pytest.approx(1 / c + 1 / (kk if isinstance(k, tuple) else kk * kk))


def test_block_bops_match_model_summary():
    block = mb.BinaryDepthwiseSeparable(16, 16, (1, 5))
    summary = qnn.summary(block, (16, 1, 20))
    assert summary.binary_ops == mb.block_bops("separable", 16, (1, 5), (1, 20))
    assert summary.macs_by_bits == {1: 6720}
    # parameters: 16 x 5 + 16 x 16 binary weights, two batch norms of 2 x 16 real numbers
    assert summary.params_by_bits == {1: 80 + 256, 32: 64}
    plain = qnn.summary(mb.BinaryConvBlock(16, (1, 5)), (16, 1, 20))
    assert plain.params_by_bits == {1: 1280, 32: 32}
    assert plain.binary_ops == mb.block_bops("standard", 16, (1, 5), (1, 20))


@pytest.mark.parametrize("shape,kernel,padding", [((2, 3, 1, 9), (1, 5), (0, 2)), ((1, 7, 6, 5), (3, 3), 1),
                                                  ((3, 1, 4, 4), (2, 3), 0), ((1, 70, 3, 3), (3, 1), (1, 0))])
def test_binary_depthwise_conv2d_is_bit_exact(shape, kernel, padding):
    g = torch.Generator().manual_seed(sum(shape))
    x, w = torch.randn(*shape, generator=g), torch.randn(shape[1], 1, *kernel, generator=g)
    reference = F.conv2d(binary.sign(x), binary.sign(w), padding=padding, groups=shape[1])
    fast = mb.binary_depthwise_conv2d(x, w, padding=padding)
    assert not fast.is_floating_point()  # integer counts, as bitops.binary_conv2d
    assert torch.equal(fast.float(), reference)
    taps = kernel[0] * kernel[1]
    assert reference.abs().max() <= taps  # one channel: the narrow range [-kh kw, kh kw]


def test_block_layers_are_the_binary_convolutions():
    torch.manual_seed(0)
    block = mb.BinaryDepthwiseSeparable(6, 6, (1, 5), skips="none").eval()
    x = torch.randn(4, 6, 1, 12)
    dw = mb.binary_depthwise_conv2d(x, block.depthwise.weight.detach(), padding=(0, 2)).float()
    assert torch.equal(block.depthwise(x).detach(), dw)
    y = block.bn_depthwise(dw)
    pw = F.conv2d(binary.sign(y), binary.sign(block.pointwise.weight.detach()))
    assert torch.allclose(block(x).detach(), block.bn_pointwise(pw).detach())


@pytest.mark.parametrize("skips", mb.SKIPS)
def test_skips_add_the_identity(skips):
    torch.manual_seed(1)
    block = mb.BinaryDepthwiseSeparable(5, 5, 3, skips=skips).eval()
    x = torch.randn(2, 5, 6, 6)
    with torch.no_grad():
        y = block.bn_depthwise(block.depthwise(x)) + (x if skips == "layer" else 0)
        z = block.bn_pointwise(block.pointwise(y)) + {"none": 0, "block": x, "layer": y}[skips]
        assert torch.allclose(block(x), z)


def test_shortcut_keeps_the_gradient_where_the_clipped_ste_stops_it():
    x = torch.full((1, 4, 1, 8), 2.0, requires_grad=True)  # |x| > 1: the clipped STE passes no gradient
    for skips, flows in (("none", False), ("layer", True), ("block", True)):
        x.grad = None
        mb.BinaryDepthwiseSeparable(4, 4, (1, 3), skips=skips)(x).sum().backward()
        assert bool(x.grad.abs().sum() > 0) is flows


def test_binary_conv_block_and_skip():
    torch.manual_seed(2)
    x = torch.randn(3, 4, 1, 10)
    block = mb.BinaryConvBlock(4, (1, 3), skip=True).eval()
    with torch.no_grad():
        expected = block.bn(F.conv2d(binary.sign(x), binary.sign(block.conv.weight), padding=(0, 1))) + x
        assert torch.allclose(block(x), expected)


def test_comparison_conv_block_in_the_protocol():
    block = mb.comparison_conv_block(1, 1, 16, 16, comparison.CNN_KERNEL)
    assert isinstance(block, mb.BinaryDepthwiseSeparable) and block.skips == "layer"
    method = comparison.Method("MoBiNet", "mobinet", ((1, 1),), conv_block=mb.comparison_conv_block)
    model = comparison.protocol_cnn(method, 1, 1)
    assert model(torch.randn(3, 40)).shape == (3, 10)
    assert method.architectures == ("cnn",)


def test_bad_inputs():
    with pytest.raises(ValueError, match="w_bits"):
        mb.comparison_conv_block(2, 1, 16, 16, 5)
    with pytest.raises(ValueError, match="skips"):
        mb.BinaryDepthwiseSeparable(4, 4, 3, skips="dense")
    with pytest.raises(ValueError, match="out_channels"):
        mb.BinaryDepthwiseSeparable(4, 8, 3, skips="layer")
    assert mb.BinaryDepthwiseSeparable(4, 8, 3, skips="none")(torch.randn(1, 4, 5, 5)).shape == (1, 8, 5, 5)
    with pytest.raises(TypeError, match="skip"):
        mb.BinaryConvBlock(4, 3, skip=1)
    with pytest.raises(ValueError, match="kind"):
        mb.block_bops("grouped", 4, 3, 5)
    with pytest.raises(ValueError, match="out_size"):
        mb.block_bops("standard", 4, 3, (5, 0))
    with pytest.raises(TypeError, match="x"):
        mb.binary_depthwise_conv2d(torch.ones(1, 2, 3, 3, dtype=torch.int64), torch.ones(2, 1, 1, 1))
    with pytest.raises(ValueError, match="w must be"):
        mb.binary_depthwise_conv2d(torch.ones(1, 2, 3, 3), torch.ones(2, 2, 1, 1))
