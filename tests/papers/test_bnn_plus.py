"""Tests of qteach.papers.bnn_plus against hand-computed values, autograd, and a transcription of Larq's
``swish_sign`` (https://github.com/larq/larq, ``larq/quantizers.py`` lines 109-118 at commit
fe3ce52171aca19da649571bd541e68f758469f0), a third-party implementation that cites the paper."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import binary, comparison
from qteach import nn as qnn
from qteach.papers import bnn_plus as bp


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def larq_swish_sign_grad(dy, x, beta):
    """larq/quantizers.py:113-114: ``b_x = beta * x``;
    ``return dy * beta * (2 - b_x * tf.tanh(b_x * 0.5)) / (1 + tf.cosh(b_x))``"""
    b_x = beta * x
    return dy * beta * (2 - b_x * torch.tanh(b_x * 0.5)) / (1 + torch.cosh(b_x))


# --- SignSwish ------------------------------------------------------------------------------------------------


def test_sign_swish_hand_values():
    x = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    s = 1 / (1 + math.exp(-1.0))  # sigma(1)
    expected = [0.0, 2 * s * (1 + (1 - s)) - 1, -(2 * s * (1 + (1 - s)) - 1)]
    assert torch.allclose(bp.sign_swish(x, beta=1.0), torch.tensor(expected, dtype=torch.float64))
    assert bp.sign_swish(torch.tensor([50.0]), 5.0).item() == pytest.approx(1.0)
    assert bp.sign_swish(torch.tensor([-50.0]), 5.0).item() == pytest.approx(-1.0)


def test_sign_swish_is_twice_the_swish_derivative_minus_one():
    x = torch.linspace(-3, 3, 101, dtype=torch.float64).requires_grad_()
    beta = 2.5
    (x * torch.sigmoid(beta * x)).sum().backward()
    assert torch.allclose(bp.sign_swish(x.detach(), beta), 2 * x.grad - 1)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 5.0, 10.0])
def test_closed_form_derivative_equals_autograd(beta):
    x = torch.linspace(-4, 4, 401, dtype=torch.float64).requires_grad_()
    bp.sign_swish(x, beta).sum().backward()
    assert torch.allclose(bp.sign_swish_derivative(x.detach(), beta), x.grad, atol=1e-10)


@pytest.mark.parametrize("beta", [1.0, 2.0, 5.0, 10.0])
def test_derivative_peak_zero_crossing_and_area(beta):
    assert bp.sign_swish_derivative(torch.tensor([0.0]), beta).item() == pytest.approx(beta)
    t = 2.399357280515467  # root of t tanh(t / 2) = 2, solved by bisection in test_turning_point_constant
    d = bp.sign_swish_derivative(torch.tensor([t / beta * 0.999, t / beta * 1.001], dtype=torch.float64), beta)
    assert d[0] > 0 > d[1]
    x = torch.linspace(-60 / beta, 60 / beta, 200001, dtype=torch.float64)
    area = torch.trapezoid(bp.sign_swish_derivative(x, beta), x).item()
    assert area == pytest.approx(2.0, abs=1e-6)


def test_turning_point_constant():
    lo, hi = 1.0, 4.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * math.tanh(mid / 2) < 2 else (lo, mid)
    assert lo == pytest.approx(2.399357280515467, abs=1e-12)
    assert bp.sign_swish(torch.tensor([lo], dtype=torch.float64), 1.0).item() == pytest.approx(1.1997, abs=1e-4)


def test_swish_sign_forward_is_sign_with_zero_to_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-8, -1e-8, 3.0])
    assert bp.swish_sign(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert torch.equal(bp.swish_sign(randn(50)), binary.sign(randn(50)))


@pytest.mark.parametrize("beta", [1.0, 5.0, 7.5])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 1, 4, 3), (1,)])
def test_swish_sign_gradient_matches_larq(beta, shape):
    x = (randn(*shape) * 2).requires_grad_()
    dy = randn(*shape, seed=1)
    bp.swish_sign(x, beta).backward(dy)
    assert torch.allclose(x.grad, larq_swish_sign_grad(dy, x.detach(), beta), atol=1e-6)


def test_swish_sign_has_no_nan_gradient_far_out():
    x = torch.tensor([-1e4, -200.0, 200.0, 1e4]).requires_grad_()
    bp.swish_sign(x, 5.0).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() < 1e-20


def test_quantizer_module():
    q = bp.SwishSignQuantizer(beta=3.0)
    assert q.precision == 1 and qnn.precision_of(q) == 1 and "beta=3.0" in repr(q)
    x = randn(4, 6).requires_grad_()
    q(x).sum().backward()
    assert torch.allclose(x.grad, bp.sign_swish_derivative(x.detach(), 3.0))


# --- scaled binary weights and the regularizer -----------------------------------------------------------------


def test_scaled_binary_weight_forward_and_gradients():
    wq = bp.ScaledBinaryWeight(alpha=0.5)
    w = torch.tensor([[0.3, -0.2], [0.0, -1.5]], requires_grad=True)
    out = wq(w)
    assert out.tolist() == [[0.5, -0.5], [0.5, -0.5]]
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out.backward(g)
    assert torch.allclose(w.grad, 0.5 * g)  # straight through, times alpha
    assert wq.alpha.grad.item() == pytest.approx(1 - 2 + 3 - 4)
    assert wq.precision == 1


def test_regularizer_hand_values():
    w = torch.tensor([0.5, -1.5, 1.0, 0.0])
    assert bp.regularizer(w, 1.0, "l1").item() == pytest.approx((0.5 + 0.5 + 0 + 1) / 4)
    assert bp.regularizer(w, 1.0, "l2").item() == pytest.approx((0.25 + 0.25 + 0 + 1) / 4)
    assert bp.regularizer(torch.tensor([0.7, -0.7]), 0.7, "l1").item() == pytest.approx(0.0, abs=1e-7)


def test_regularizer_alpha_minimisers_are_mean_and_median():
    w = randn(101).abs() + 0.01
    alpha = torch.tensor(0.1, requires_grad=True)
    opt = torch.optim.SGD([alpha], lr=0.2)
    for _ in range(500):
        opt.zero_grad()
        bp.regularizer(w, alpha, "l2").backward()
        opt.step()
    assert alpha.item() == pytest.approx(w.mean().item(), abs=1e-4)  # XNOR-Net's scale
    grid = torch.linspace(0, 3, 3001)
    r1 = torch.stack([bp.regularizer(w, a.item(), "l1") for a in grid])
    assert grid[r1.argmin()].item() == pytest.approx(w.median().item(), abs=2e-3)


def test_regularizer_gradient_pulls_weights_to_plus_minus_alpha():
    w = torch.tensor([0.2, -0.2, 1.5, -1.5], requires_grad=True)
    bp.regularizer(w, 1.0, "l2").backward()
    # the descent direction -grad moves |w| towards alpha = 1
    assert (-w.grad * w.detach().sign()).tolist() == pytest.approx([0.4, 0.4, -0.25, -0.25])


def test_regularization_sums_over_scaled_layers():
    model = comparison.protocol_mlp(comparison.Method("BNN+", "bnn_plus", ((1, 1),), layer=bp.comparison_layer),
                                    1, 1)
    layers = [m for m in model.modules() if isinstance(m, qnn.QuantLinear)]
    assert len(layers) == 2
    expected = sum(bp.regularizer(m.weight, m.weight_quantizer.alpha, "l1") for m in layers)
    assert bp.regularization(model, "l1").item() == pytest.approx(expected.item())
    assert bp.regularization(nn.Linear(3, 2)).item() == 0.0


def test_comparison_layer_and_protocol_fit_run():
    wq, iq, act = bp.comparison_layer()
    assert isinstance(wq, bp.ScaledBinaryWeight) and iq is None and isinstance(act, bp.SwishSignQuantizer)
    g = torch.Generator().manual_seed(0)
    from qteach.data import Split
    data = Split(torch.rand(64, 64, generator=g), torch.randint(0, 10, (64,), generator=g),
                 torch.rand(32, 64, generator=g), torch.randint(0, 10, (32,), generator=g))
    proto = comparison.Protocol("tiny", "tiny", "random", lambda: data, epochs=2, lr=1e-2, batch_size=32)
    model = comparison.protocol_mlp(comparison.Method("BNN+", "bnn_plus", ((1, 1),), layer=bp.comparison_layer),
                                    1, 1)
    alphas = [m.weight_quantizer.alpha.item() for m in model.modules() if isinstance(m, qnn.QuantLinear)]
    history = bp.protocol_fit(model, data, 0, proto, lam=0.1)
    assert len(history.test_accuracy) == 2
    after = [m.weight_quantizer.alpha.item() for m in model.modules() if isinstance(m, qnn.QuantLinear)]
    assert after != alphas  # the scales are trained
    assert all(m.weight.abs().max() <= 1.0 for m in model.modules() if isinstance(m, qnn.QuantLinear))


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,error,name", [
    (lambda: bp.sign_swish([1.0]), TypeError, "x"),
    (lambda: bp.sign_swish(torch.tensor([1])), TypeError, "x"),
    (lambda: bp.sign_swish(torch.ones(2), beta=0.0), ValueError, "beta"),
    (lambda: bp.sign_swish_derivative(torch.ones(2), beta=-1.0), ValueError, "beta"),
    (lambda: bp.swish_sign(torch.tensor([float("nan")])), ValueError, "x"),
    (lambda: bp.swish_sign(torch.ones(2), beta="5"), TypeError, "beta"),
    (lambda: bp.SwishSignQuantizer(beta=float("inf")), ValueError, "beta"),
    (lambda: bp.ScaledBinaryWeight(alpha=0.0), ValueError, "alpha"),
    (lambda: bp.ScaledBinaryWeight()(torch.tensor([1, 2])), TypeError, "w"),
    (lambda: bp.ScaledBinaryWeight(alpha=-1.0), ValueError, "alpha"),
    (lambda: bp.regularizer(torch.ones(3), 1.0, kind="l3"), ValueError, "kind"),
    (lambda: bp.regularizer(torch.ones(3), -1.0), ValueError, "alpha"),
    (lambda: bp.regularizer(torch.tensor([float("inf")]), 1.0), ValueError, "w"),
    (lambda: bp.regularization("model"), TypeError, "model"),
    (lambda: bp.regularization(nn.Linear(2, 2), kind=2), TypeError, "kind"),
    (lambda: bp.comparison_layer(2, 1), ValueError, "w_bits"),
    (lambda: bp.comparison_layer(1, 1, beta=0), ValueError, "beta"),
    (lambda: bp.protocol_fit(nn.Linear(2, 2), None, 0, None, lam=-1.0), ValueError, "lam"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_scaled_binary_weight_initialises_alpha_from_the_weights_once():
    wq = bp.ScaledBinaryWeight()
    w = torch.tensor([0.2, -0.4, 0.6])
    assert wq(w).tolist() == pytest.approx([0.4, -0.4, 0.4])
    assert wq(w * 10).tolist() == pytest.approx([0.4, -0.4, 0.4])  # set once, then trained
    state = wq.state_dict()
    fresh = bp.ScaledBinaryWeight()
    fresh.load_state_dict(state)
    assert fresh(w * 10).tolist() == pytest.approx([0.4, -0.4, 0.4])
