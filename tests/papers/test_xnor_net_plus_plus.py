"""Tests of qteach.papers.xnor_net_plus_plus: the shapes of Gamma, the layer against XNOR-Net's and against the
XNOR-popcount kernel, and larq zoo's re-implementation of the rank-1 scale.

Reference transcribed: larq zoo (https://github.com/larq/zoo, commit 77c5853f),
``larq_zoo/literature/real_to_bin_nets.py`` lines 138-180, ``LearnedRescaleLayer`` ("learned activation rescaling
XNOR-Net++ style"): weights ``scale_h`` (H, 1, 1), ``scale_w`` (1, W, 1), ``scale_c`` (1, 1, C), all initialised
to ones, and ``call`` returns ``inputs * (scale_h * scale_w * scale_c)`` on channels-last (N, H, W, C) tensors.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import binary
from qteach import nn as qnn
from qteach.papers import xnor_net as xn
from qteach.papers import xnor_net_plus_plus as xpp


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def larq_learned_rescale(inputs_nhwc, scale_h, scale_w, scale_c):
    """real_to_bin_nets.py:179-180: ``return inputs * (self.scale_h * self.scale_w * self.scale_c)``."""
    return inputs_nhwc * (scale_h * scale_w * scale_c)


# --- the shapes of Gamma ---------------------------------------------------------------------------------------


def test_scale_parameters_hand_counts():
    assert xpp.scale_parameters("channel", 64, 14, 14) == 64
    assert xpp.scale_parameters("channel_spatial", 64, 14, 14) == 64 + 196
    assert xpp.scale_parameters("rank1", 64, 14, 14) == 64 + 14 + 14
    assert xpp.scale_parameters("full", 64, 14, 14) == 64 * 196


@pytest.mark.parametrize("shape", xpp.SHAPES)
def test_learned_scale_counts_its_parameters_and_starts_at_init(shape):
    scale = xpp.LearnedScale(shape, 5, (3, 4), init=2.0)
    assert sum(p.numel() for p in scale.parameters()) == xpp.scale_parameters(shape, 5, 3, 4)
    assert scale.gamma().shape == (5, 3, 4)
    assert torch.allclose(scale.gamma(), torch.full((5, 3, 4), 2.0))


def test_rank1_gamma_is_the_outer_product():
    scale = xpp.LearnedScale("rank1", 2, (2, 3))
    with torch.no_grad():
        scale.factors[0].copy_(torch.tensor([1.0, 2.0]).reshape(2, 1, 1))
        scale.factors[1].copy_(torch.tensor([3.0, 5.0]).reshape(1, 2, 1))
        scale.factors[2].copy_(torch.tensor([7.0, 11.0, 13.0]).reshape(1, 1, 3))
    expected = torch.einsum("o,h,w->ohw", torch.tensor([1.0, 2.0]), torch.tensor([3.0, 5.0]),
                            torch.tensor([7.0, 11.0, 13.0]))
    assert torch.equal(scale.gamma(), expected)
    assert scale.gamma()[1, 1, 2].item() == 2 * 5 * 13


def test_channel_spatial_gamma_is_alpha_times_beta():
    scale = xpp.LearnedScale("channel_spatial", 3, (2, 2))
    alpha, beta = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    with torch.no_grad():
        scale.factors[0].copy_(alpha.reshape(3, 1, 1))
        scale.factors[1].copy_(beta.reshape(1, 2, 2))
    assert torch.equal(scale.gamma(), alpha.reshape(3, 1, 1) * beta)


def test_rank1_scale_matches_larq_zoo_learned_rescale_layer():
    o, h, w = 4, 3, 5
    scale = xpp.LearnedScale("rank1", o, (h, w))
    a, b, c = randn(o, seed=1), randn(h, seed=2), randn(w, seed=3)
    with torch.no_grad():
        scale.factors[0].copy_(a.reshape(o, 1, 1))
        scale.factors[1].copy_(b.reshape(1, h, 1))
        scale.factors[2].copy_(c.reshape(1, 1, w))
    y = randn(2, o, h, w, seed=4)
    ours = scale(y)
    theirs = larq_learned_rescale(y.permute(0, 2, 3, 1), b.reshape(h, 1, 1), c.reshape(1, w, 1),
                                  a.reshape(1, 1, o)).permute(0, 3, 1, 2)
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_larq_initialisation_is_ones():
    scale = xpp.LearnedScale("rank1", 3, (2, 2))
    assert all(torch.equal(p, torch.ones_like(p)) for p in scale.parameters())


def test_gradient_reaches_every_factor():
    scale = xpp.LearnedScale("rank1", 3, (4, 4))
    scale(randn(2, 3, 4, 4)).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in scale.parameters())


# --- the layer ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", xpp.SHAPES)
def test_layer_is_sign_conv_times_gamma(shape):
    layer = xpp.XNORPPConv2d(3, 4, 3, (5, 5), shape, padding=1)
    with torch.no_grad():
        for p in layer.scale.parameters():
            p.copy_(randn(*p.shape, seed=p.numel()).abs() + 0.1)
    x = randn(2, 3, 5, 5, seed=7)
    expected = F.conv2d(binary.sign(x), binary.sign(layer.weight), padding=1) * layer.scale.gamma()
    assert torch.allclose(layer(x), expected, rtol=1e-6, atol=1e-6)


def test_layer_with_unit_gamma_equals_xnor_net_binary_variant():
    torch.manual_seed(0)
    ours = xpp.XNORPPConv2d(3, 4, 3, (6, 6), "full", padding=1)
    theirs = xn.XNORConv2d(3, 4, 3, padding=1, input_scale=False, weight_scale=False)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
    x = randn(2, 3, 6, 6, seed=3)
    assert torch.equal(ours(x), theirs(x))


@pytest.mark.parametrize("size,stride,padding", [((5, 5), 1, 1), ((7, 4), 2, 0), ((1, 9), 1, (0, 1))])
def test_xnor_popcount_inference_is_bit_exact(size, stride, padding):
    x, w = randn(3, 70, *size, seed=1), randn(5, 70, 1, 3, seed=2)
    reference = F.conv2d(binary.sign(x), binary.sign(w), stride=stride, padding=padding)
    gamma = randn(*reference.shape[1:], seed=3)
    fast = xpp.xnorpp_conv2d(x, w, gamma, stride=stride, padding=padding)
    assert torch.equal(fast, reference * gamma)


def test_xnorpp_cnn_shapes_and_scale_parameter_count():
    for shape in xpp.SHAPES:
        model = xpp.xnorpp_cnn(shape, channels=(8, 16), seed=0)
        assert model(randn(3, 1, 8, 8)).shape == (3, 10)
        layers = [m for m in model.modules() if isinstance(m, xpp.XNORPPConv2d)]
        assert [layer.scale.out_size for layer in layers] == [(8, 8), (4, 4)]
        assert sum(p.numel() for m in layers for p in m.scale.parameters()) == (
            xpp.scale_parameters(shape, 16, 8, 8) + xpp.scale_parameters(shape, 16, 4, 4))


def test_xnorpp_cnn_is_seeded():
    a, b = xpp.xnorpp_cnn("rank1", seed=3), xpp.xnorpp_cnn("rank1", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_fit_scale_beats_the_best_constant_and_recovers_a_planted_gamma():
    counts = torch.randint(-9, 10, (64, 3, 4, 4)).float()
    planted = xpp.LearnedScale("rank1", 3, (4, 4))
    with torch.no_grad():
        planted.factors[0].copy_(torch.tensor([1.0, 2.0, 0.5]).reshape(3, 1, 1))
        planted.factors[1].copy_(torch.tensor([1.0, 0.5, 0.25, 2.0]).reshape(1, 4, 1))
    target = planted(counts).detach()
    fitted = xpp.fit_scale(target, counts, "full", steps=400, lr=0.05)
    assert torch.allclose(fitted.gamma(), planted.gamma(), rtol=0.02, atol=0.02)


def test_comparison_layer_and_scaled_sign_weight():
    wq, iq, act = xpp.comparison_layer(1, 1, features=4)
    assert isinstance(wq, xpp.ScaledSignWeight) and isinstance(iq, qnn.SignQuantizer)
    w = randn(4, 6)
    with torch.no_grad():
        wq.gamma.copy_(torch.tensor([[1.0], [2.0], [0.5], [3.0]]))
    x = randn(5, 6, seed=1)
    layer = qnn.QuantLinear(6, 4, bias=False, weight_quantizer=wq, input_quantizer=iq)
    with torch.no_grad():
        layer.weight.copy_(w)
    expected = (binary.sign(x) @ binary.sign(w).T) * wq.gamma.T  # scaling the weights = scaling the output
    assert torch.allclose(layer(x), expected)
    assert any(p is wq.gamma for p in layer.parameters())  # Gamma is trained with the layer
    assert isinstance(act, torch.nn.Identity)


# --- bad input ----------------------------------------------------------------------------------------------


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="shape"):
        xpp.LearnedScale("diagonal", 3)
    with pytest.raises(TypeError, match="shape"):
        xpp.scale_parameters(1, 3, 3, 3)
    with pytest.raises(ValueError, match="out_channels"):
        xpp.scale_parameters("channel", 0, 3, 3)
    with pytest.raises(ValueError, match="init"):
        xpp.LearnedScale("channel", 3, init=0.0)
    with pytest.raises(ValueError, match="out_size"):
        xpp.XNORPPConv2d(3, 4, 3, (0, 2))
    with pytest.raises(ValueError, match="y must be"):
        xpp.LearnedScale("full", 3, (2, 2))(randn(1, 3, 2, 3))
    with pytest.raises(TypeError, match="y"):
        xpp.LearnedScale("full", 3, (2, 2))(torch.ones(1, 3, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="gamma"):
        xpp.xnorpp_conv2d(randn(1, 2, 4, 4), randn(3, 2, 3, 3), randn(4, 2, 2))
    with pytest.raises(ValueError, match="counts"):
        xpp.fit_scale(randn(1, 2, 3, 3), randn(1, 2, 3, 4), "channel")
    with pytest.raises(ValueError, match="image_size"):
        xpp.xnorpp_cnn(image_size=10)
    with pytest.raises(ValueError, match="w_bits"):
        xpp.comparison_layer(2, 1)
    with pytest.raises(ValueError, match="w must be"):
        xpp.ScaledSignWeight(3)(randn(4, 2))
