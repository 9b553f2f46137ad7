"""Tests of qteach.papers.xnor_net against hand-computed values of the paper's formulas (Rastegari et al., 2016)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qteach import nn as qnn
from qteach.binary import sign
from qteach.papers import xnor_net as xn


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ BWN (sec. 3.1)


def test_binary_weight_approximation_hand_computed():
    w = torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, 0.5, -0.5, 0.0]])
    alpha, b = xn.binary_weight_approximation(w)
    # alpha = ||W||_1 / n per filter: (1 + 2 + 3 + 4) / 4 = 2.5 and (0.5 * 3 + 0) / 4 = 0.375
    assert alpha.shape == (2, 1) and alpha.flatten().tolist() == [2.5, 0.375]
    assert b.tolist() == [[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, 1.0]]  # sign(0) = +1


def test_alpha_and_sign_are_the_exact_minimiser_over_all_binary_filters():
    # Enumerate all 2^6 binary B; for each, the best alpha is W^T B / n. The overall minimum of J must be
    # J(sign(W), mean|W|).
    w = randn(1, 6, seed=3)
    alpha, b = xn.binary_weight_approximation(w)
    best = min(
        float(xn.approximation_error(w, (w * bb).sum() / 6, bb))
        for bb in (torch.tensor(list(p)).reshape(1, 6) for p in itertools.product([-1.0, 1.0], repeat=6))
    )
    assert math.isclose(float(xn.approximation_error(w, alpha, b)), best, rel_tol=1e-6)
    # alpha* is a minimum along alpha as well
    j = float(xn.approximation_error(w, alpha))
    assert j < float(xn.approximation_error(w, alpha * 1.05)) and j < float(xn.approximation_error(w, alpha * 0.95))


def test_binary_weight_per_filter_of_a_conv_weight():
    w = randn(4, 3, 3, 3, seed=1)
    alpha, _ = xn.binary_weight_approximation(w)
    assert alpha.shape == (4, 1, 1, 1)
    assert torch.allclose(alpha.flatten(), w.abs().reshape(4, -1).mean(1))


def test_binary_weight_quantizer_forward_and_paper_gradient():
    w = torch.tensor([[0.5, -2.0, 0.1, 0.0]], requires_grad=True)
    out = xn.BinaryWeight()(w)
    # alpha = (0.5 + 2 + 0.1 + 0) / 4 = 0.65
    assert torch.allclose(out, torch.tensor([[0.65, -0.65, 0.65, 0.65]]))
    out.backward(torch.ones_like(out))
    # dC/dW_i = g_i (1/n + 1_{|W_i| <= 1} alpha) = 0.25 + 0.65 inside [-1, 1], 0.25 outside
    assert torch.allclose(w.grad, torch.tensor([[0.9, 0.25, 0.9, 0.9]]))
    w.grad = None
    out = xn.BinaryWeight(scaled=False)(w)
    assert out.tolist() == [[1.0, -1.0, 1.0, 1.0]]
    out.backward(torch.tensor([[2.0, 2.0, -1.0, 0.0]]))
    assert torch.allclose(w.grad, torch.tensor([[1.8, 0.5, -0.9, 0.0]]))
    assert xn.BinaryWeight.precision == 1


# --------------------------------------------------------------------------------------- XNOR (sec. 3.2, eq. 11)


def test_input_scaling_k_hand_computed():
    x = torch.ones(1, 2, 3, 3)
    x[0, 1, 1, 1] = -3.0
    # A = channel mean of |I|: 1 everywhere, (1 + 3) / 2 = 2 at the centre
    k = xn.input_scaling_k(x, 3)
    assert k.shape == (1, 1, 1, 1) and math.isclose(k.item(), 10 / 9, rel_tol=1e-6)  # (8 * 1 + 2) / 9
    k = xn.input_scaling_k(x, 3, padding=1)
    assert k.shape == (1, 1, 3, 3)
    assert math.isclose(k[0, 0, 0, 0].item(), 5 / 9, rel_tol=1e-6)  # (1 + 1 + 1 + 2) / 9, padding counts 0
    assert math.isclose(k[0, 0, 1, 1].item(), 10 / 9, rel_tol=1e-6)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_k_is_the_window_beta_of_the_paper(stride, padding):
    # K(i, j) = beta of the window = (1/n) ||X||_1 over c * kh * kw entries (sec. 3.2), computed with unfold.
    x = randn(2, 5, 7, 6, seed=4)
    beta = F.unfold(x.abs(), 3, padding=padding, stride=stride).mean(dim=1)
    k = xn.input_scaling_k(x, 3, stride=stride, padding=padding)
    assert torch.allclose(k.flatten(1), beta, atol=1e-6)


@pytest.mark.parametrize("stride,padding,input_scale,weight_scale", [
    (1, 1, True, True), (2, 0, True, True), (1, 1, False, True), (1, 0, True, False), (1, 1, False, False)])
def test_xnor_popcount_conv_equals_float_sign_conv(stride, padding, input_scale, weight_scale):
    x, w = randn(3, 7, 8, 8, seed=1), randn(5, 7, 3, 3, seed=2)
    x[:, :, 0] = 0.0  # sign(0) = +1 on both paths
    fast = xn.xnor_conv2d(x, w, stride, padding, input_scale, weight_scale)
    ref = xn.sign_conv2d_reference(x, w, stride, padding, input_scale, weight_scale)
    assert torch.equal(fast, ref)


def test_eq_11_hand_computed_by_windows():
    # (sign(I) (*) sign(W)) . K alpha, one window at a time: sum(sign(X) sign(W)) * beta * alpha
    x, w = randn(1, 2, 3, 3, seed=5), randn(1, 2, 3, 3, seed=6)
    out = xn.xnor_conv2d(x, w)
    expected = (sign(x) * sign(w)).sum() * x.abs().mean() * w.abs().mean()
    assert torch.allclose(out.flatten(), expected.reshape(1), atol=1e-6)


def test_eq_11_is_exact_when_magnitudes_are_constant():
    # If |I| is constant over each window and |W| constant within each filter, then I = K sign(I) and
    # W = alpha sign(W) there, so eq. 11 is not an approximation at all. 1x1 kernels: any per-position magnitude.
    signs_x, signs_w = sign(randn(2, 6, 5, 5, seed=1)), sign(randn(4, 6, 1, 1, seed=2))
    magnitude = randn(2, 1, 5, 5, seed=3).abs() + 0.1
    scale = torch.tensor([0.5, 2.0, 1.0, 3.0]).reshape(4, 1, 1, 1)
    x, w = magnitude * signs_x, scale * signs_w
    assert torch.allclose(xn.xnor_conv2d(x, w), F.conv2d(x, w), rtol=1e-5, atol=1e-5)
    # 3x3 kernels: a magnitude per image (constant over every window), no padding
    signs_w3 = sign(randn(4, 6, 3, 3, seed=4))
    x3 = torch.tensor([0.3, 4.0]).reshape(2, 1, 1, 1) * signs_x
    assert torch.allclose(xn.xnor_conv2d(x3, scale * signs_w3), F.conv2d(x3, scale * signs_w3), rtol=1e-5, atol=1e-5)
    # without K (or without alpha) it is off
    assert not torch.allclose(xn.xnor_conv2d(x, w, input_scale=False), F.conv2d(x, w), rtol=1e-2)
    assert not torch.allclose(xn.xnor_conv2d(x, w, weight_scale=False), F.conv2d(x, w), rtol=1e-2)


def test_xnor_conv2d_module_forward_and_ste():
    layer = xn.XNORConv2d(3, 4, 3, padding=1)
    x = randn(2, 3, 5, 5, seed=1)
    ref = xn.sign_conv2d_reference(x, layer.weight.detach(), padding=1)
    assert torch.allclose(layer(x), ref, atol=1e-5)
    # plain binary conv: the input gradient is the straight-through estimator, zero where |x| > 1
    plain = xn.XNORConv2d(3, 4, 3, padding=1, input_scale=False, weight_scale=False)
    x = (2 * randn(2, 3, 5, 5, seed=2)).requires_grad_()
    g = randn(2, 4, 5, 5, seed=3)
    plain(x).backward(g)
    expected = F.conv_transpose2d(g, sign(plain.weight.detach()), padding=1) * (x.detach().abs() <= 1)
    assert torch.allclose(x.grad, expected, atol=1e-5)
    assert plain.weight.grad is not None and plain.weight.grad.abs().sum() > 0


def test_xnor_block_order_and_official_batch_norm():
    block = xn.xnor_block(8, 16)
    assert [type(m) for m in block] == [nn.BatchNorm2d, xn.XNORConv2d, nn.MaxPool2d]
    assert block[0].affine is False and block[0].eps == 1e-4
    assert isinstance(block[1].input_quantizer, qnn.SignQuantizer)
    assert len(xn.xnor_block(8, 16, pool=False)) == 2


@pytest.mark.parametrize("variant", xn.VARIANTS)
def test_xnor_cnn_variants(variant):
    model = xn.xnor_cnn(variant, channels=(4, 8))
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    convs = [m for m in model.modules() if isinstance(m, xn.XNORConv2d)]
    assert len(convs) == (0 if variant == "float" else 2)
    binary_ops = qnn.summary(model, (1, 8, 8)).binary_ops
    assert (binary_ops > 0) == (variant in ("xnor", "xnor_alpha_only", "binary"))
    for conv in convs:
        assert conv.input_scale == (variant == "xnor")
        assert conv.weight_scale == (variant in ("xnor", "xnor_alpha_only", "bwn"))


def test_speedup_formula():
    # 64 c N_W / (c N_W + 64) with c = 256 and a 3x3 filter: 64 * 2304 / 2368 = 62.27...
    assert math.isclose(xn.speedup(256, 9), 64 * 2304 / 2368)
    assert round(xn.speedup(256, 9), 2) == 62.27
    assert math.isclose(xn.speedup(1, 1), 64 / 65)  # tiny layers gain nothing
    assert xn.speedup(4096, 9) < 64 and xn.speedup(4096, 9) > 63.8  # the limit is 64
    assert xn.speedup(512, 9) > xn.speedup(64, 9) > xn.speedup(64, 1)


# ----------------------------------------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(TypeError, match="w"):
        xn.binary_weight_approximation(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="w"):
        xn.binary_weight_approximation(torch.ones(3))
    with pytest.raises(ValueError, match="w"):
        xn.binary_weight_approximation(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(TypeError, match="alpha"):
        xn.approximation_error(torch.ones(2, 2), "1")
    with pytest.raises(ValueError, match="x"):
        xn.input_scaling_k(torch.ones(2, 3, 3), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        xn.input_scaling_k(torch.ones(1, 1, 3, 3), 0)
    with pytest.raises(ValueError, match="stride"):
        xn.input_scaling_k(torch.ones(1, 1, 3, 3), 3, stride=0)
    with pytest.raises(TypeError, match="x"):
        xn.xnor_conv2d(torch.ones(1, 1, 3, 3, dtype=torch.int32), torch.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="variant"):
        xn.xnor_cnn("ternary")
    with pytest.raises(ValueError, match="input_scale"):
        xn.XNORConv2d(2, 2, 3, input_scale=True, binarize_input=False)
    with pytest.raises(TypeError, match="scaled"):
        xn.BinaryWeight(scaled=1)
    with pytest.raises(ValueError, match="channels"):
        xn.speedup(0, 9)
    with pytest.raises(TypeError, match="filter_size"):
        xn.speedup(64, 2.5)


def test_scaled_sign_input_is_beta_times_sign_per_sample():
    x = torch.tensor([[0.5, -1.5, 0.0, 2.0], [-0.2, -0.2, 0.2, 0.2]], requires_grad=True)
    out = xn.ScaledSignInput()(x)
    # beta = mean |x| per row: (0.5 + 1.5 + 0 + 2) / 4 = 1.0 and 0.2; sign(0) = +1
    expected = torch.tensor([[1.0, -1.0, 1.0, 1.0], [-0.2, -0.2, 0.2, 0.2]])
    assert torch.allclose(out, expected)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="x"):
        xn.ScaledSignInput()(torch.ones(2, 3, 4))


def test_shown_functions_check_their_arguments_first():
    from qteach import display

    shown = display.show_source(xn.input_scaling_k, xn.xnor_block, xn.speedup, xn.xnor_cnn).text
    shown = shown.split("<details>")[0]
    assert "raise" not in shown and "require_" not in shown and shown.count(display.CHECKS_OMITTED) == 4
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(xn.input_scaling_k(x, (3, 3), stride=(1, 1), padding=[1, 1]), xn.input_scaling_k(x, 3, 1, 1))
    for kwargs, error, message in ((dict(kernel_size=(3, 0)), ValueError, "kernel_size must be >= 1, got 0"),
                                   (dict(kernel_size=(3, 3, 3)), ValueError, "pair of ints"),
                                   (dict(kernel_size=3, stride=0), ValueError, "stride must be >= 1, got 0"),
                                   (dict(kernel_size=3, padding=-1), ValueError, "padding"),
                                   (dict(kernel_size=1.5), TypeError, "kernel_size")):
        with pytest.raises(error, match=message):
            xn.input_scaling_k(x, **kwargs)
    assert xn.speedup(256, 9) == 64 * 2304 / 2368
    with pytest.raises(ValueError, match="seed"):
        xn.xnor_cnn("xnor", seed=-1)
    with pytest.raises(ValueError, match="channels"):
        xn.xnor_cnn("xnor", channels=(0, 4), seed=-1)  # channels before seed
    with pytest.raises(ValueError, match="in_channels"):
        xn.xnor_block(0, 4)


def test_comparison_conv_block_is_xnor_conv_then_batch_norm_with_same_padding():
    block = xn.comparison_conv_block(1, 1, 3, 4, (1, 5))
    conv, bn = block
    assert isinstance(conv, xn.XNORConv2d) and isinstance(bn, nn.BatchNorm2d)
    assert conv.padding == (0, 2) and conv.input_scale and conv.weight_scale
    x = torch.randn(2, 3, 1, 12, generator=torch.Generator().manual_seed(0))
    assert block(x).shape == (2, 4, 1, 12)
    with pytest.raises(ValueError, match="1-bit"):
        xn.comparison_conv_block(1, 32, 3, 4, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        xn.comparison_conv_block(1, 1, 3, 4, 0)
