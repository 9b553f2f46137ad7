"""Tests of qteach.papers.trained_binarization: hand-computed values of the surrogate family, equality with the
core's BNN and Bi-Real estimators, autograd of the learned scales, the L2 penalty, and bad input. The paper's
method section could not be read, so there is no official formula or code to transcribe (see the module)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import binary, comparison
from qteach import nn as qnn
from qteach.papers import trained_binarization as tb


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def grad_of(fn, x):
    x = x.clone().requires_grad_(True)
    fn(x).sum().backward()
    return x.grad


def test_polynomial_sign_hand_values():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.0])
    assert tb.polynomial_sign(x, 1).tolist() == [-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.0]  # Htanh
    assert tb.polynomial_sign(x, 2).tolist() == [-1.0, -0.75, 0.0, 0.4375, 0.75, 1.0, 1.0]  # 2x - x|x|
    assert tb.polynomial_sign_derivative(x, 2).tolist() == [0.0, 1.0, 2.0, 1.5, 1.0, 0.0, 0.0]  # 2 - 2|x|
    assert tb.polynomial_sign_derivative(x, 3).tolist() == [0.0, 0.75, 3.0, 1.6875, 0.75, 0.0, 0.0]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_derivative_is_the_derivative_and_has_area_two(order):
    x = torch.linspace(-1.5, 1.5, 30001, dtype=torch.float64)
    d = tb.polynomial_sign_derivative(x, order)
    assert torch.trapezoid(d, x).item() == pytest.approx(2.0, abs=1e-3)
    inner = torch.linspace(-0.99, 0.99, 199, dtype=torch.float64).requires_grad_(True)
    tb.polynomial_sign(inner, order).sum().backward()
    assert torch.allclose(inner.grad, tb.polynomial_sign_derivative(inner.detach(), order))
    gap = torch.trapezoid((torch.sign(x) - tb.polynomial_sign(x, order)).abs(), x).item()
    assert gap == pytest.approx(2 / (order + 1), abs=1e-3)


def test_binarize_matches_core_estimators():
    x = randn(1000) * 1.5
    assert torch.equal(tb.binarize(x, 1), binary.sign(x))
    assert torch.equal(grad_of(lambda v: tb.binarize(v, 1), x), grad_of(lambda v: binary.ste_sign(v, 1.0), x))
    assert torch.allclose(grad_of(lambda v: tb.binarize(v, 2), x), grad_of(binary.approx_sign, x))
    assert tb.binarize(torch.zeros(3)).tolist() == [1.0, 1.0, 1.0]  # sign(0) = +1


def test_trained_scale_weight_starts_at_xnor_alpha_and_learns():
    w = randn(4, 6) * 0.3
    q = tb.TrainedScaleWeight(4, order=2)
    out = q(w)
    alpha = w.abs().mean(dim=1, keepdim=True)
    assert torch.allclose(q.alpha.detach(), alpha)
    assert torch.allclose(out, alpha * binary.sign(w))
    g = randn(4, 6, seed=1)
    (out * g).sum().backward()
    assert torch.allclose(q.alpha.grad, (g * binary.sign(w)).sum(dim=1, keepdim=True), atol=1e-6)
    # after the first call alpha is free: changing the weights does not reset it
    with torch.no_grad():
        q.alpha.fill_(0.5)
    assert torch.equal(q(w * 3), 0.5 * binary.sign(w))


def test_latent_weight_gradient_is_alpha_times_surrogate():
    w = (randn(3, 5) * 0.6).requires_grad_(True)
    q = tb.TrainedScaleWeight(3, order=2)
    q(w).sum().backward()
    expected = q.alpha.detach() * tb.polynomial_sign_derivative(w.detach(), 2)
    assert torch.allclose(w.grad, expected)


def test_trained_scale_input():
    x = randn(5, 7)
    q = tb.TrainedScaleInput(order=1, init=0.5)
    out = q(x)
    assert torch.equal(out, 0.5 * binary.sign(x))
    out.sum().backward()
    assert q.beta.grad.item() == pytest.approx(binary.sign(x).sum().item())


def test_scale_penalty():
    model = nn.Sequential(qnn.QuantLinear(3, 2, weight_quantizer=tb.TrainedScaleWeight(2)),
                          qnn.QuantLinear(2, 2, weight_quantizer=tb.TrainedScaleWeight(2)))
    with torch.no_grad():
        model[0].weight_quantizer.alpha.copy_(torch.tensor([[1.0], [2.0]]))
        model[1].weight_quantizer.alpha.copy_(torch.tensor([[0.5], [-1.0]]))
    assert tb.scale_penalty(model).item() == pytest.approx(1 + 4 + 0.25 + 1)
    assert tb.scale_penalty(nn.Linear(2, 2)).item() == 0.0


def test_batch_norm_absorbs_the_weight_scale():
    x = randn(64, 16)
    layer = qnn.QuantLinear(16, 8, bias=False, weight_quantizer=tb.TrainedScaleWeight(8),
                            input_quantizer=tb.TrainedScaleInput())
    bn = nn.BatchNorm1d(8)
    ref = bn(layer(x))
    with torch.no_grad():
        layer.weight_quantizer.alpha.mul_(7.0)
        layer.input_quantizer.beta.fill_(3.0)
    assert torch.allclose(bn(layer(x)), ref, atol=1e-4)


def test_comparison_layer_in_the_protocol_mlp():
    method = comparison.Method("Trained binarization", "trained_binarization", ((1, 1),),
                               layer=lambda w, a: tb.comparison_layer(w, a, features=comparison.HIDDEN))
    model = comparison.protocol_mlp(method, 1, 1)
    assert model(randn(5, 64)).shape == (5, 10)
    assert sum(isinstance(m, tb.TrainedScaleWeight) for m in model.modules()) == 2
    assert sum(isinstance(m, tb.TrainedScaleInput) for m in model.modules()) == 2
    with pytest.raises(ValueError, match="w_bits"):
        tb.comparison_layer(2, 1)


def test_protocol_fit_runs_and_shrinks_scales():
    data = comparison.split(comparison.DIGITS)
    small = comparison.Protocol("tiny", "tiny", "", comparison.DIGITS.load, epochs=1, lr=3e-3, batch_size=128)
    results = {}
    for lam in (0.0, 0.1):
        torch.manual_seed(0)
        model = comparison.protocol_mlp(comparison.Method("t", "trained_binarization", ((1, 1),),
                                                          layer=lambda w, a: tb.comparison_layer()), 1, 1)
        history = tb.protocol_fit(model, data, 0, small, lam=lam)
        assert 0.0 <= history.final_test_accuracy <= 1.0
        results[lam] = tb.scale_penalty(model).item()
        assert all(m.weight.abs().max() <= 1.0 for m in model.modules() if isinstance(m, qnn.QuantLinear))
    assert results[0.1] < results[0.0]


def test_bad_input():
    with pytest.raises(TypeError, match="x"):
        tb.polynomial_sign(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="order"):
        tb.polynomial_sign_derivative(torch.zeros(2), 0)
    with pytest.raises(TypeError, match="order"):
        tb.binarize(torch.zeros(2), 1.5)
    with pytest.raises(ValueError, match="out_features"):
        tb.TrainedScaleWeight(0)
    with pytest.raises(ValueError, match="w must be"):
        tb.TrainedScaleWeight(3)(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="init"):
        tb.TrainedScaleInput(init=-1.0)
    with pytest.raises(TypeError, match="model"):
        tb.scale_penalty("model")
    with pytest.raises(ValueError, match="lam"):
        tb.protocol_fit(nn.Linear(2, 2), None, 0, comparison.DIGITS, lam=-1.0)
