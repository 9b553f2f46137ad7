"""BCGD: hand-computed blended updates, rho = 0 is BinaryConnect, the fixed point, the optimizer, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import data, train
from qteach import nn as qnn
from qteach.papers import binaryconnect
from qteach.papers import blended_coarse_gradient_descent as bcgd


def test_quantize_binary_by_hand():
    w = torch.tensor([0.1, -0.5, 1.0, -2.0, 0.0])
    # alpha = (0.1 + 0.5 + 1 + 2 + 0) / 5 = 0.72; sign(0) = +1
    assert torch.allclose(bcgd.quantize_binary(w), torch.tensor([0.72, -0.72, 0.72, -0.72, 0.72]))


def test_quantize_binary_is_the_best_scaled_sign():
    w = data.weight_samples(500, "laplace", seed=2)
    q = bcgd.quantize_binary(w)
    for alpha in torch.linspace(0.5, 1.5, 11) * q.abs()[0]:
        assert ((w - q) ** 2).sum() <= ((w - alpha * torch.sign(q)) ** 2).sum() + 1e-5


def test_blended_step_by_hand():
    w_f = torch.tensor([0.3, -0.2])
    w_q = torch.tensor([0.25, -0.25])
    grad = torch.tensor([1.0, -2.0])
    # (1 - 0.1) [0.3, -0.2] + 0.1 [0.25, -0.25] - 0.05 [1, -2] = [0.27 + 0.025 - 0.05, -0.18 - 0.025 + 0.1]
    assert torch.allclose(bcgd.blended_step(w_f, w_q, grad, lr=0.05, rho=0.1), torch.tensor([0.245, -0.105]))


def test_rho_zero_is_binaryconnect():
    g = torch.Generator().manual_seed(0)
    w_f = 0.2 * torch.rand(50, generator=g) - 0.1
    grad = torch.randn(50, generator=g)
    blended = bcgd.blended_step(w_f, bcgd.quantize_binary(w_f), grad, lr=0.01, rho=0.0)
    assert torch.equal(blended, bcgd.binaryconnect_step(w_f, grad, 0.01))
    # and BinaryConnect's Algorithm 1 (qteach.papers.binaryconnect), whose clip does nothing inside [-1, 1]
    assert torch.allclose(blended, binaryconnect.binaryconnect_update(w_f, grad, 0.01))


def test_blending_contracts_towards_the_quantized_weights():
    # with no gradient, w_f - w_q shrinks by (1 - rho) per step while the signs (and so w_q's pattern) stay
    w_f = torch.tensor([0.4, -0.1, 0.7, -0.9])
    w_q = bcgd.quantize_binary(w_f)
    new = bcgd.blended_step(w_f, w_q, torch.zeros(4), lr=0.1, rho=0.25)
    assert torch.allclose(new - w_q, 0.75 * (w_f - w_q))


def test_fixed_point_distance():
    # rho (w_f - w) = -eta grad  =>  ||w_f - w|| = eta / rho ||grad||
    assert bcgd.fixed_point_distance(2.0, lr=0.1, rho=0.05) == pytest.approx(4.0)
    assert math.isinf(bcgd.fixed_point_distance(1.0, lr=0.1, rho=0.0))
    assert bcgd.fixed_point_distance(0.0, lr=0.1, rho=0.0) == 0.0
    # a fixed point of the update: w_f = w - (eta / rho) grad with the same signs is left unchanged
    w = torch.tensor([0.5, -0.5, 0.5])
    grad = torch.tensor([0.1, 0.2, -0.3])
    w_f = w - 0.1 / 0.5 * grad
    assert torch.allclose(bcgd.quantize_binary(w_f).sign(), w.sign())
    assert torch.allclose(bcgd.blended_step(w_f, w, grad, lr=0.1, rho=0.5), w_f)


def test_scaled_sign_ste_forward_and_coarse_gradient():
    w = torch.tensor([0.2, -0.6, 1.0], requires_grad=True)
    out = bcgd.ScaledSignSTE()(w)
    assert torch.allclose(out, torch.tensor([0.6, -0.6, 0.6]))
    out.backward(torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(w.grad, torch.tensor([1.0, 2.0, 3.0]))  # identity: the gradient at the quantized weights


def test_optimizer_matches_blended_step_and_trains():
    torch.manual_seed(0)
    split = data.digits(flatten=True)
    model = nn.Sequential(qnn.QuantLinear(64, 32, weight_quantizer=bcgd.ScaledSignSTE()), nn.ReLU(),
                          qnn.QuantLinear(32, 10, weight_quantizer=bcgd.ScaledSignSTE()))
    ws, bs = [model[0].weight, model[2].weight], [model[0].bias, model[2].bias]
    opt = bcgd.BCGD([{"params": ws}, {"params": bs, "quantized": False}], lr=0.2, rho=0.01)
    loss = nn.functional.cross_entropy(model(split.x_train[:64]), split.y_train[:64])
    loss.backward()
    expected = bcgd.blended_step(ws[0].detach(), bcgd.quantize_binary(ws[0].detach()), ws[0].grad, 0.2, 0.01)
    expected_bias = bs[0].detach() - 0.2 * bs[0].grad
    opt.step()
    assert torch.allclose(ws[0], expected) and torch.allclose(bs[0], expected_bias)
    opt.zero_grad()
    history = train.fit(model, split, epochs=4, optimizer=lambda p: opt, progress=False)
    assert max(history.test_accuracy) > 0.3  # learns (chance is 0.1)


def test_bad_input():
    w = torch.ones(3)
    with pytest.raises(ValueError, match="rho"):
        bcgd.blended_step(w, w, w, lr=0.1, rho=1.0)
    with pytest.raises(ValueError, match="rho"):
        bcgd.blended_step(w, w, w, lr=0.1, rho=-0.1)
    with pytest.raises(ValueError, match="lr"):
        bcgd.blended_step(w, w, w, lr=0.0, rho=0.1)
    with pytest.raises(ValueError, match="grad"):
        bcgd.blended_step(w, w, torch.ones(4), lr=0.1, rho=0.1)
    with pytest.raises(TypeError, match="w_f"):
        bcgd.quantize_binary([1.0])
    with pytest.raises(ValueError, match="grad_norm"):
        bcgd.fixed_point_distance(-1.0, 0.1, 0.1)
    with pytest.raises(TypeError, match="quantizer"):
        bcgd.BCGD([torch.zeros(2, requires_grad=True)], quantizer=3)
