"""HORQ: the residual recursion by hand, the error guarantee, bit-level products, per-column scales, cost, STE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import binary
from qteach.data import weight_samples
from qteach.nn import QuantLinear
from qteach.papers import horq, xnor_net

X = torch.tensor([[1.0, -3.0, 0.5, 2.5]])


def test_recursion_by_hand():
    betas, signs = horq.residual_binarize(X, 3)
    # beta_1 = mean|X| = 7 / 4 = 1.75, H_1 = sign(X) = [1, -1, 1, 1]
    # R_1 = X - 1.75 H_1 = [-0.75, -1.25, -1.25, 0.75]: beta_2 = 4 / 4 = 1, H_2 = [-1, -1, -1, 1]
    # R_2 = [0.25, -0.25, -0.25, -0.25]: beta_3 = 0.25, H_3 = [1, -1, -1, -1], R_3 = 0
    assert [b.item() for b in betas] == [1.75, 1.0, 0.25]
    assert [h.tolist() for h in signs] == [[[1, -1, 1, 1]], [[-1, -1, -1, 1]], [[1, -1, -1, -1]]]
    assert torch.equal(horq.horq_approximation(X, 3), X)  # order 3 is exact for this vector
    assert torch.equal(horq.horq_approximation(X, 1), torch.tensor([[1.75, -1.75, 1.75, 1.75]]))


def test_residual_norms_by_hand():
    # ||X||^2 = 16.5; ||R_i||^2 = ||R_{i-1}||^2 - n beta_i^2: 16.5 - 4 * 1.75^2 = 4.25, 4.25 - 4 = 0.25, 0.25 - 0.25
    assert horq.residual_norms(X, 3).tolist() == pytest.approx([16.5, 4.25, 0.25, 0.0])


@pytest.mark.parametrize("distribution", ["gaussian", "laplace", "uniform"])
def test_error_guarantee(distribution):
    x = weight_samples((32, 200), distribution, seed=1).double()
    norms = horq.residual_norms(x, 6)
    assert bool((norms[1:] <= norms[:-1]).all())
    assert norms[2] < 0.5 * norms[1]
    # the identity behind the guarantee, per sample: ||R_i||^2 = ||R_{i-1}||^2 - n beta_i^2
    betas, signs = horq.residual_binarize(x, 3)
    residual = x
    for beta, h in zip(betas, signs):
        new = residual - beta * h
        expected = (residual**2).sum(1) - x.shape[1] * beta.squeeze(1) ** 2
        assert torch.allclose((new**2).sum(1), expected)
        residual = new


def test_order_one_is_xnor_input_binarization():
    x = weight_samples((5, 30), seed=2)
    # XNOR-Net: beta = ||X||_1 / n per input vector, times sign(X)
    expected = x.abs().mean(dim=1, keepdim=True) * binary.sign(x)
    assert torch.allclose(horq.horq_approximation(x, 1), expected)


def test_scales_are_per_sample():
    x = weight_samples((4, 10), seed=3)
    batched = horq.horq_approximation(x, 2)
    for row in range(4):
        assert torch.allclose(batched[row], horq.horq_approximation(x[row:row + 1], 2)[0])
    # a tensor-wide scale (dims=(0, 1)) is different
    assert not torch.allclose(batched, horq.horq_approximation(x, 2, dims=(0, 1)))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_linear_from_xnor_popcount_equals_the_float_layer(order):
    x = weight_samples((6, 70), seed=4)
    w = weight_samples((5, 70), seed=5)
    y = horq.horq_linear(x, w, order)
    reference = F.linear(horq.horq_approximation(x, order), binary.mean_abs_scale(w) * binary.sign(w))
    assert torch.allclose(y, reference, atol=1e-5)


def test_conv_uses_one_scale_per_receptive_field():
    x = weight_samples((2, 3, 5, 5), seed=6)
    w = weight_samples((4, 3, 3, 3), seed=7)
    out = horq.horq_conv2d(x, w, order=2, padding=1)
    w_bin = binary.mean_abs_scale(w) * binary.sign(w)
    padded = F.pad(x, (1, 1, 1, 1))
    for n, i, j in [(0, 0, 0), (1, 2, 3), (0, 4, 4)]:
        column = padded[n, :, i:i + 3, j:j + 3].reshape(1, -1)      # one receptive field, zero padding included
        approx = horq.horq_approximation(column, 2)
        assert torch.allclose(out[n, :, i, j], (approx @ w_bin.reshape(4, -1).T)[0], atol=1e-5)
    assert out.shape == F.conv2d(x, w, padding=1).shape


def test_cost():
    assert horq.binary_operations(2, 1000) == 2000
    assert horq.speedup(1, 256, 9) == pytest.approx(xnor_net.speedup(256, 9))
    assert horq.speedup(3, 256, 9) == pytest.approx(xnor_net.speedup(256, 9) / 3)


def test_quantizer_forward_and_clipped_ste():
    q = horq.ResidualSignQuantizer(order=2)
    assert q.precision == 2
    x = torch.tensor([[0.5, -2.0, 0.9, 1.5]], requires_grad=True)
    y = q(x)
    assert torch.equal(y, horq.horq_approximation(x.detach(), 2))
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 1.0, 0.0]]  # 1 where |x| <= 1
    x.grad = None
    horq.ResidualSignQuantizer(order=2, clip=None)(x).sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 1.0, 1.0]]
    layer = QuantLinear(4, 3, input_quantizer=horq.ResidualSignQuantizer(3))
    assert torch.allclose(layer(X), F.linear(X, layer.weight, layer.bias))  # order 3 is exact for X


@pytest.mark.parametrize("call, error, name", [
    (lambda: horq.residual_binarize(X, 0), ValueError, "order"),
    (lambda: horq.residual_binarize(X, 1.5), TypeError, "order"),
    (lambda: horq.residual_binarize(torch.ones(2, dtype=torch.int64), 1), TypeError, "x"),
    (lambda: horq.residual_binarize(torch.tensor([float("nan")]), 1), ValueError, "x"),
    (lambda: horq.residual_binarize(X, 1, dims=3), ValueError, "dims"),
    (lambda: horq.horq_linear(X, torch.randn(2, 5), 1), ValueError, "x"),
    (lambda: horq.horq_conv2d(torch.randn(1, 2, 4, 4), torch.randn(1, 3, 3, 3), 1), ValueError, "x"),
    (lambda: horq.speedup(1, 0, 9), ValueError, "channels"),
    (lambda: horq.ResidualSignQuantizer(2, clip=-1.0), ValueError, "clip"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
