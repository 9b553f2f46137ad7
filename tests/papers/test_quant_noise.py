"""Quant-Noise (Fan et al., 2020): block masks, the noise with its straight-through gradient, fairseq's proxy,
k-means and product quantization, checked by hand and against line-by-line transcriptions of the official code
(pytorch/fairseq, commit 148327d)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from qteach import nn as qnn
from qteach.papers import quant_noise as qn


def _fairseq_quant_noise_linear(weight, p, block_size, block_drop):
    """fairseq/modules/quant_noise.py, ``_forward_pre_hook``, lines 62-72 and 99-104 (the nn.Linear branch), with
    ``mask.bernoulli_(p)`` (line 71) replaced by the given 0/1 vector ``block_drop`` so both sides use one mask.
    The hook assigns the result to ``mod.weight.data``; here it is returned."""
    in_features = weight.size(1)
    out_features = weight.size(0)
    mask = torch.zeros(in_features // block_size * out_features)
    mask.copy_(block_drop)  # line 71: mask.bernoulli_(p)
    mask = mask.repeat_interleave(block_size, -1).view(-1, in_features)
    mask = mask.to(torch.bool)
    s = 1 / (1 - p)
    return s * weight.masked_fill(mask, 0)


def _fairseq_int_linear_weight(weight, weight_quantized, scale, zero_point, bits, keep):
    """fairseq/modules/quantization/scalar/modules/qlinear.py, ``IntLinear.forward``, lines 88-99, with
    ``mask.bernoulli_(1 - p)`` (line 90) replaced by the given 0/1 tensor ``keep`` (1: the weight stays float)."""
    mask = torch.zeros_like(weight)
    mask.copy_(keep)  # line 90: mask.bernoulli_(1 - p)
    noise = (weight_quantized - weight).masked_fill(mask.bool(), 0)
    clamp_low = -scale * zero_point
    clamp_high = scale * (2 ** bits - 1 - zero_point)
    return torch.clamp(weight, clamp_low.item(), clamp_high.item()) + noise.detach()


def _fairseq_quantize(w, scale, zero_point):
    """fairseq/modules/quantization/scalar/ops.py, ``quantize``, lines 14-17."""
    return (torch.clamp(torch.round(w / scale + zero_point), 0, 255) - zero_point) * scale


# --- block masks -------------------------------------------------------------------------------------------------

def test_block_mask_is_constant_on_blocks_and_has_rate_p():
    mask = qn.block_mask((200, 64), 0.3, block_size=8, generator=torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (200, 64)
    blocks = mask.reshape(200, 8, 8)
    assert torch.equal(blocks.all(dim=2), blocks.any(dim=2))  # each block all selected or none
    assert abs(blocks[:, :, 0].float().mean().item() - 0.3) < 0.03  # 1600 Bernoulli(0.3) draws


def test_block_mask_extremes():
    assert not qn.block_mask((5, 6), 0.0, 3).any()
    assert qn.block_mask((5, 6), 1.0, 3).all()


# --- the noise ---------------------------------------------------------------------------------------------------

def test_quant_noise_extremes_are_float_and_qat():
    w = torch.randn(6, 8)
    phi = qnn.MinMaxFakeQuantizer(4)
    assert torch.equal(qn.quant_noise(w, phi, 0.0, 2), w)
    assert torch.equal(qn.quant_noise(w, phi, 1.0, 2), phi(w))


def test_quant_noise_hand_example():
    w = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    g = torch.Generator().manual_seed(0)
    mask = qn.block_mask((2, 4), 0.5, 2, generator=torch.Generator().manual_seed(0))
    out = qn.quant_noise(w, torch.round, 0.5, 2, generator=g)  # phi = rounding to integers
    assert torch.equal(out, torch.where(mask, torch.round(w), w))


def test_quant_noise_gradient_is_the_identity():
    w = torch.randn(4, 6, requires_grad=True)
    out = qn.quant_noise(w, qnn.MinMaxFakeQuantizer(2), 0.5, 3, generator=torch.Generator().manual_seed(1))
    (out * torch.arange(24.0).reshape(4, 6)).sum().backward()
    assert torch.equal(w.grad, torch.arange(24.0).reshape(4, 6))


def test_quant_noise_equals_fairseq_int_linear():
    """qlinear.py lines 88-99 with int8 per-tensor min/max weights (ops.py emulate_int8_tensor: MinMaxObserver)."""
    torch.manual_seed(0)
    w = torch.randn(16, 12, requires_grad=True)
    observer = torch.ao.quantization.MinMaxObserver()
    observer(w.detach())
    scale, zero_point = observer.calculate_qparams()
    q = _fairseq_quantize(w.detach(), scale, zero_point)
    phi = qnn.MinMaxFakeQuantizer(8)
    assert torch.equal(phi(w.detach()), q)  # our 8-bit min/max fake quantization is fairseq's emulate_int8_tensor
    ours = qn.quant_noise(w, phi, 0.3, 1, generator=torch.Generator().manual_seed(2))
    keep = ~qn.block_mask((16, 12), 0.3, 1, generator=torch.Generator().manual_seed(2))
    theirs = _fairseq_int_linear_weight(w, q, scale.float(), zero_point.float(), 8, keep.float())
    # fairseq clamps every weight (float ones too) to [-s z, s (255 - z)] (line 97); the rounded zero point can
    # put that range a hair inside [min w, max w]. Everywhere else the two agree bit for bit, gradients included.
    inside = (w >= -scale * zero_point) & (w <= scale * (255 - zero_point))
    assert int((~inside).sum()) <= 2
    # (fairseq adds the noise to w, which can round by one float32 ulp; ours returns q itself)
    assert torch.allclose(ours[inside], theirs[inside], rtol=0, atol=1e-6)
    grad_ours, = torch.autograd.grad(ours.sum(), w)
    grad_theirs, = torch.autograd.grad(theirs.sum(), w)
    assert torch.equal(grad_ours[inside], grad_theirs[inside])
    assert (grad_theirs[~inside] == 0).all()  # fairseq's clamp stops their gradient; ours passes it


@pytest.mark.parametrize("shape,block_size,p", [((8, 16), 4, 0.25), ((3, 9), 3, 0.5), ((1, 5), 1, 0.1)])
def test_drop_blocks_equals_fairseq_hook(shape, block_size, p):
    w = torch.randn(*shape) + 3.0  # no weight is zero, so the dropped blocks are the zero ones
    ours = qn.drop_blocks(w, p, block_size, generator=torch.Generator().manual_seed(3))
    dropped = (ours.reshape(shape[0], -1, block_size) == 0).all(dim=2).reshape(-1).float()
    theirs = _fairseq_quant_noise_linear(w, p, block_size, dropped)
    assert torch.equal(ours, theirs)
    expected_mask = qn.block_mask(shape, p, block_size, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours == 0, expected_mask)


def test_drop_blocks_is_unbiased():
    w = torch.randn(4, 8)
    g = torch.Generator().manual_seed(0)
    mean = torch.stack([qn.drop_blocks(w, 0.2, 2, generator=g) for _ in range(4000)]).mean(dim=0)
    assert torch.allclose(mean, w, atol=0.1)


# --- k-means and product quantization ------------------------------------------------------------------------------

def test_kmeans_hand_example():
    points = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    centroids, assignment = qn.kmeans(points, 2, iterations=5, init=torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    assert torch.equal(centroids, torch.tensor([[0.0, 0.5], [10.0, 10.5]]))
    assert assignment.tolist() == [0, 0, 1, 1]


def test_kmeans_error_never_increases():
    points = torch.randn(300, 3, generator=torch.Generator().manual_seed(0))
    errors = []
    for iterations in range(6):
        c, a = qn.kmeans(points, 8, iterations, seed=1)
        errors.append((points - c[a]).pow(2).sum().item())
    assert all(b <= a + 1e-4 for a, b in itertools.pairwise(errors))


def test_product_quantize_layout_and_exact_case():
    # two distinct blocks of 2 repeated: a codebook of 2 reproduces the matrix exactly
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 1.0, 2.0]])
    assert torch.equal(qn.product_quantize(w, block_size=2, n_centroids=2, iterations=3), w)
    # blocks are consecutive input weights of one row: block [1, 2] is never mixed with [3, 4]
    pq = qn.product_quantize(torch.randn(32, 16), block_size=4, n_centroids=5)
    assert pq.reshape(-1, 4).unique(dim=0).shape[0] <= 5


def test_pq_fake_quantizer_ste_and_modes():
    w = torch.randn(16, 8, requires_grad=True)
    quantizer = qn.PQFakeQuantizer(block_size=4, n_centroids=4, refresh_every=3)
    out = quantizer(w)
    assert out.reshape(-1, 4).unique(dim=0).shape[0] <= 4
    grad, = torch.autograd.grad(out.sum(), w)
    assert torch.equal(grad, torch.ones_like(w))
    quantizer.eval()
    assert torch.equal(quantizer(w), qn.product_quantize(w, 4, 4, 10))


def test_pq_bits_per_weight_by_hand():
    assert qn.pq_bits_per_weight(128, 128, 4, 16) == (4096 * 4 + 16 * 4 * 32) / 16384 == 1.125
    assert qn.pq_bits_per_weight(2, 4, 2, 2, codebook_bits=8) == (4 * 1 + 2 * 2 * 8) / 8


# --- the layer ---------------------------------------------------------------------------------------------------

def test_quant_noise_module_trains_noisy_and_evaluates_quantized():
    torch.manual_seed(0)
    w = torch.randn(8, 8)
    phi = qnn.MinMaxFakeQuantizer(4)
    module = qn.QuantNoise(phi, p=0.5)
    out = module(w)
    assert ((out == w) | (out == phi(w))).all() and not torch.equal(out, w)
    module.eval()
    assert torch.equal(module(w), phi(w))
    assert module.precision == 4
    proxy = qn.QuantNoise(phi, p=0.2, block_size=4, proxy=True)
    dropped = proxy(w)
    assert ((dropped == 0) | torch.isclose(dropped, w / 0.8)).all()


def test_comparison_layer():
    weight, inputs, activation = qn.comparison_layer(4, 32)
    assert isinstance(weight, qn.QuantNoise) and weight.precision == 4 and inputs is None
    assert isinstance(activation, nn.ReLU)
    with pytest.raises(ValueError, match="a_bits"):
        qn.comparison_layer(4, 4)


# --- bad input -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,error,match", [
    (lambda: qn.block_mask((4, 6), 1.5), ValueError, "p"),
    (lambda: qn.block_mask((4, 6), "0.5"), TypeError, "p"),
    (lambda: qn.block_mask((4, 6), 0.5, 4), ValueError, "block_size"),
    (lambda: qn.block_mask((4,), 0.5), TypeError, "shape"),
    (lambda: qn.quant_noise(torch.randn(4, 6), torch.round, 0.5, 4), ValueError, "block_size"),
    (lambda: qn.quant_noise(torch.randn(4, 6, 2), torch.round, 0.5), ValueError, "weight"),
    (lambda: qn.quant_noise(torch.randn(4, 6), "round", 0.5), TypeError, "phi"),
    (lambda: qn.quant_noise([[1.0]], torch.round, 0.5), TypeError, "weight"),
    (lambda: qn.drop_blocks(torch.randn(4, 6), 1.0), ValueError, "p"),
    (lambda: qn.kmeans(torch.randn(3, 2), 4), ValueError, "k"),
    (lambda: qn.kmeans(torch.randn(5, 2), 2, init=torch.zeros(3, 2)), ValueError, "init"),
    (lambda: qn.product_quantize(torch.randn(4, 6), block_size=4), ValueError, "block_size"),
    (lambda: qn.pq_bits_per_weight(4, 6, 4, 16), ValueError, "block_size"),
    (lambda: qn.QuantNoise(qnn.MinMaxFakeQuantizer(4), p=1.0, proxy=True), ValueError, "p"),
    (lambda: qn.QuantNoise(None, p=0.5), TypeError, "phi"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
