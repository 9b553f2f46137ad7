"""ABC-Net: the shifted bases and least-squares scales by hand and against numpy's lstsq, nested bases, the STE,
the shifted binary activations and their trainable shifts and scales."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qteach import binary, data
from qteach import nn as qnn
from qteach.papers import abc_net as abc
from qteach.papers import xnor_net


def test_shift_coefficients():
    # u_i = -1 + (i - 1) * 2 / (M - 1)
    assert abc.shift_coefficients(3).tolist() == [-1.0, 0.0, 1.0]
    assert abc.shift_coefficients(5).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert abc.shift_coefficients(2).tolist() == [-1.0, 1.0]
    assert abc.shift_coefficients(1).tolist() == [0.0]  # undefined in the formula; this module's choice


def test_bases_by_hand():
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, population std sqrt(1.25) = 1.118; centred [-1.5, -0.5, 0.5, 1.5]
    b = abc.binary_bases(w, 3)
    assert b.shape == (3, 4)
    assert b[0].tolist() == [-1.0, -1.0, -1.0, 1.0]  # u = -1: [-2.62, -1.62, -0.62, 0.38]
    assert b[1].tolist() == [-1.0, -1.0, 1.0, 1.0]   # u = 0
    assert b[2].tolist() == [-1.0, 1.0, 1.0, 1.0]    # u = +1: [-0.38, 0.62, 1.62, 2.62]


def test_scales_are_the_least_squares_solution():
    w = data.weight_samples((8, 4, 3, 3), "gaussian", scale=0.1, seed=0).double()
    for m in (1, 2, 3, 5):
        bases = abc.binary_bases(w, m)
        alpha = abc.basis_scales(w, bases)
        matrix = bases.reshape(m, -1).T.numpy()
        reference = np.linalg.lstsq(matrix, w.reshape(-1).numpy(), rcond=None)[0]
        assert np.allclose(alpha.numpy(), reference)
        w_hat, _, _ = abc.approximate(w, m)
        residual = (w - w_hat).reshape(-1)
        assert torch.allclose(bases.reshape(m, -1) @ residual, torch.zeros(m, dtype=torch.float64), atol=1e-9)


def test_scales_by_hand_for_orthogonal_bases():
    # w = [1, 2, 3, 4]; M = 2: u = -1 -> b1 = [-1, -1, -1, 1], u = +1 -> b2 = [-1, 1, 1, 1]
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = abc.binary_bases(w, 2)
    assert b.tolist() == [[-1.0, -1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, 1.0]]
    # B^T B = [[4, 0], [0, 4]] (b1 . b2 = 1 - 1 - 1 + 1 = 0); B^T w = [-2, 8] -> alpha = [-0.5, 2]
    assert abc.basis_scales(w, b).tolist() == [pytest.approx(-0.5), pytest.approx(2.0)]


def test_one_basis_of_zero_mean_weights_is_xnors_binary_weight():
    w = torch.tensor([[0.3, -0.1, 0.5, -0.7]])  # mean 0: B = sign(W), alpha = mean |W|
    w_hat, alpha, _ = abc.approximate(w, 1)
    a_xnor, b_xnor = xnor_net.binary_weight_approximation(w)
    assert torch.allclose(w_hat, a_xnor * b_xnor)
    assert alpha.item() == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(3))
def test_more_bases_never_hurt_when_nested(seed):
    # the u's of M = 3 contain those of M = 1 and 2, those of M = 5 contain M = 3's: least squares over more
    # columns can only lower the error
    w = data.weight_samples(500, "laplace", seed=seed)
    e = {m: abc.relative_error(w, m) for m in (1, 2, 3, 5)}
    assert e[3] <= min(e[1], e[2]) + 1e-12 and e[5] <= e[3] + 1e-12


def test_weight_quantizer_forward_and_ste():
    w = data.weight_samples((4, 6), "gaussian", seed=1).requires_grad_(True)
    q = abc.ABCWeightQuantizer(3)
    out = q(w)
    w_hat, alpha, _ = abc.approximate(w, 3)
    assert torch.allclose(out, w_hat) and q.precision == 3
    g = data.weight_samples((4, 6), "gaussian", seed=2)
    out.backward(g)
    # dc/dW = sum_m alpha_m dc/dB_m = (sum alpha) * g
    assert torch.allclose(w.grad, alpha.sum() * g)


def test_binary_activation_by_hand():
    x = torch.tensor([-0.2, 0.2, 0.3, 0.6, 1.0], requires_grad=True)
    v = torch.tensor(0.2, requires_grad=True)
    a = abc.binary_activation(x, v)
    # x + v = [0, 0.4, 0.5, 0.8, 1.2]; clip to [0, 1]; +1 where >= 0.5
    assert a.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    a.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    # straight-through where 0 <= x + v <= 1 (the last is 1.2: saturated)
    assert x.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 0.0]
    assert v.grad.item() == 10.0


def test_activation_quantizer_initial_staircase_and_training():
    q = abc.ABCActivationQuantizer(1)
    x = torch.tensor([-0.3, 0.0, 0.4])
    assert torch.equal(q(x).detach(), binary.sign(x))  # N = 1 starts as sign(x)
    q3 = abc.ABCActivationQuantizer(3)
    # thresholds at -2/3, 0, 2/3 and beta = 1/3: four levels -1, -1/3, 1/3, 1
    levels = q3(torch.linspace(-2, 2, 401)).detach().unique()
    assert torch.allclose(levels, torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]))
    layer = qnn.QuantLinear(3, 2, weight_quantizer=abc.ABCWeightQuantizer(2),
                            input_quantizer=abc.ABCActivationQuantizer(2))
    assert {"input_quantizer.v", "input_quantizer.beta"} <= {n for n, _ in layer.named_parameters()}
    layer(torch.randn(8, 3)).sum().backward()
    assert layer.input_quantizer.beta.grad is not None and layer.input_quantizer.v.grad is not None


def test_bad_input():
    with pytest.raises(ValueError, match="num_bases"):
        abc.shift_coefficients(0)
    with pytest.raises(TypeError, match="num_bases"):
        abc.ABCWeightQuantizer(2.0)
    with pytest.raises(TypeError, match="w"):
        abc.binary_bases([1.0, 2.0], 2)
    with pytest.raises(ValueError, match="w"):
        abc.binary_bases(torch.tensor([float("nan"), 1.0]), 2)
    with pytest.raises(ValueError, match="bases"):
        abc.basis_scales(torch.ones(4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="v"):
        abc.binary_activation(torch.ones(3), torch.ones(2))
    # a constant tensor: std 0, every basis is the same; the pseudo-inverse still gives an exact fit
    w_hat, _, _ = abc.approximate(torch.full((5,), 0.3), 3)
    assert torch.allclose(w_hat, torch.full((5,), 0.3))
