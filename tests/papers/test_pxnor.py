"""PXNOR (Apfelin/PXNOR, xnormodel.py): noise masks, the binary 1x1 layer, its folded thresholds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops
from qteach.papers import pxnor as px


def test_noise_mask_range_shape_and_formula():
    n = px.noise_mask((3, 4, 5), 0.5, seed=1)
    assert n.shape == (3, 4, 5) and n.abs().max() <= 0.5
    # official lines 107-109: noise.uniform_() then (2 * noise - 1) * level
    u = torch.rand((3, 4, 5), generator=torch.Generator().manual_seed(1))
    assert torch.equal(n, (2 * u - 1) * 0.5)
    assert torch.equal(px.noise_mask((2, 2), 0.0), torch.zeros(2, 2))


def test_noise_mask_fixed_and_shared_by_the_batch():
    mask = px.NoiseMask(0.3, seed=2)
    x = torch.zeros(4, 2, 3, 3)
    y1, y2 = mask(x), mask(x + 1)
    assert torch.equal(y1[0], y1[3])  # one mask for every sample
    assert torch.allclose(y2 - 1, y1)  # the same mask at every call
    assert not mask.noise.requires_grad and "noise" in dict(mask.named_buffers())
    assert list(mask.parameters()) == []


def test_bin_conv_matches_the_official_order():
    torch.manual_seed(0)
    layer = px.bin_conv(4, 3).eval()
    bn, conv, _ = layer
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 4, 5, 5)
    # transcription of BinConv2d.forward (lines 59-72) with Binop's alpha * sign(W) (utils.py, lines 144-152)
    h = bn(x)
    a = h.abs().mean(1, keepdim=True)  # BinActiv.Mean
    k = F.conv2d(a, torch.ones(1, 1, 1, 1))
    w = conv.weight
    alpha = w.abs().sum((1, 2, 3), keepdim=True) / w[0].numel()
    ref = torch.relu(F.conv2d(h.sign(), w.sign() * alpha) * k)
    assert torch.allclose(layer(x), ref, atol=1e-6)


def test_layer_inference_on_packed_bits_equals_the_module():
    torch.manual_seed(1)
    for c_in, c_out, size in ((3, 5, 4), (7, 2, 3), (65, 4, 2)):
        layer = px.NoiseLayer(c_in, c_out, level=0.5, seed=3)
        layer(torch.randn(8, c_in, size, size))  # creates the mask, updates the batch norm
        x = torch.randn(6, c_in, size, size)
        assert torch.allclose(px.layer_inference(x, layer), layer.eval()(x), rtol=1e-5, atol=1e-5)


def test_binary_part_is_bit_exact():
    torch.manual_seed(2)
    h, w = torch.randn(3, 9, 4, 4), torch.randn(5, 9, 1, 1)
    counts = bitops.binary_conv2d(h, w)
    assert torch.equal(counts.float(), F.conv2d(binary.sign(h), binary.sign(w)))


def test_folded_threshold_equals_noise_then_batch_norm_then_sign():
    torch.manual_seed(3)
    bn = nn.BatchNorm2d(4, eps=1e-4).double().eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.2, 3)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    noise = px.noise_mask((4, 6, 6), 0.7, seed=4).double()
    x = torch.randn(50, 4, 6, 6, dtype=torch.float64)
    t = px.folded_threshold(noise, bn)
    assert torch.equal(binary.sign(bn(x + noise)), binary.sign(x - t))
    # hand value: mu = 1, gamma = 2, beta = 1, var + eps = 4, N = 0.5 -> T = 1 - 1 / 2 * 2 - 0.5 = -0.5
    bn1 = nn.BatchNorm2d(1, eps=0.0).eval()
    bn1.running_mean.fill_(1.0)
    bn1.running_var.fill_(4.0)
    bn1.weight.data.fill_(2.0)
    bn1.bias.data.fill_(1.0)
    assert px.folded_threshold(torch.full((1, 1, 1), 0.5), bn1).item() == -0.5


def test_level_zero_is_the_plain_network_and_costs_are_equal():
    a, b = px.pxnor_cnn(level=0.5, seed=0), px.pxnor_cnn(level=0.0, seed=0)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    x = torch.rand(2, 1, 8, 8)
    b(x)
    assert all(float(m.noise.abs().sum()) == 0 for m in b.modules() if isinstance(m, px.NoiseMask))
    assert px.binary_macs(a) == px.binary_macs(b)
    # hand count, channels (16, 32): layer 1 16*32*8*8, layer 2 32*32*4*4, shortcut 16*32*4*4
    assert px.binary_macs(a) == 16 * 32 * 64 + 32 * 32 * 16 + 16 * 32 * 16
    assert px.binary_macs(px.pxnor_cnn(kernel_size=3)) == 9 * (16 * 32 * 64 + 32 * 32 * 16) + 16 * 32 * 16
    assert a(x).shape == (2, 10)


def test_perturbed_sign_and_comparison_layer():
    q = px.PerturbedSign(0.5, seed=0)
    x = torch.randn(4, 6, requires_grad=True)
    y = q(x)
    n = px.noise_mask((6,), 0.5, seed=0)
    beta = (x + n).abs().mean(1, keepdim=True)
    assert torch.allclose(y, binary.sign(x + n) * beta)
    y.sum().backward()
    assert x.grad is not None
    wq, iq, act = px.comparison_layer(1, 1)
    assert isinstance(iq, px.PerturbedSign) and isinstance(act, nn.Identity)
    assert wq(torch.randn(3, 4)).unique().numel() <= 6


@pytest.mark.parametrize("call,exc,name", [
    (lambda: px.noise_mask((2, 0), 0.5), ValueError, "shape"),
    (lambda: px.noise_mask((2, 2), -1.0), ValueError, "level"),
    (lambda: px.NoiseMask(level="a"), TypeError, "level"),
    (lambda: px.NoiseMask()(torch.ones(2, 2, dtype=torch.long)), TypeError, "x"),
    (lambda: px.pxnor_cnn(channels=(4,)), ValueError, "channels"),
    (lambda: px.bin_conv(0, 3), ValueError, "in_channels"),
    (lambda: px.binary_macs("model"), TypeError, "model"),
    (lambda: px.folded_threshold(torch.zeros(2, 3, 3), nn.BatchNorm2d(3)), ValueError, "noise"),
    (lambda: px.layer_inference(torch.zeros(1, 2, 2, 2), nn.ReLU()), TypeError, "layer"),
    (lambda: px.comparison_layer(2, 1), ValueError, "w_bits"),
    (lambda: px.PerturbedSign(scaled=1), TypeError, "scaled"),
])
def test_bad_input(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
