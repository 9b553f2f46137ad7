"""Tests of qteach.papers.improved_bnn_training (Bulat et al., arXiv 1904.05868)."""

import pytest
import torch
from torch import nn

from qteach import data, train
from qteach.papers import improved_bnn_training as ibt
from qteach.papers import xnor_net as xn
from qteach.papers import xnor_net_plus_plus as xpp


def test_smooth_sign_hand_values():
    x = torch.tensor([0.0, 1.0, -2.0])
    # sigmoid form: 2 e^{lx}/(1+e^{lx}) - 1 at l = 1: 0, 2e/(1+e)-1, 2e^-2/(1+e^-2)-1
    e = torch.e
    expected = torch.tensor([0.0, 2 * e / (1 + e) - 1, 2 * e ** -2 / (1 + e ** -2) - 1])
    assert torch.allclose(ibt.smooth_sign(x, 1.0), expected, atol=1e-6)
    assert torch.allclose(ibt.smooth_sign(x, 2.0, "softsign"), torch.tensor([0.0, 2 / 3, -4 / 5]), atol=1e-6)
    assert torch.allclose(ibt.smooth_sign(x, 0.5, "tanh"), torch.tanh(0.5 * x))


def test_sigmoid_form_is_tanh_of_half_and_its_derivative():
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    lam = 3.0
    y = ibt.smooth_sign(x, lam)
    assert torch.allclose(y, torch.tanh(lam * x / 2), atol=1e-6)
    y.sum().backward()
    # the summary's derivative: 2 l e^{lx} / (e^{lx} + 1)^2
    ex = torch.exp(lam * x.detach())
    assert torch.allclose(x.grad, 2 * lam * ex / (ex + 1) ** 2, atol=1e-5)


@pytest.mark.parametrize("kind", ibt.KINDS)
def test_smooth_sign_tends_to_sign(kind):
    x = torch.tensor([-1.0, -0.3, 0.2, 2.0])
    assert torch.allclose(ibt.smooth_sign(x, 1e4, kind), torch.sign(x), atol=2e-3)
    assert (ibt.smooth_sign(x, 1.0, kind).abs() < 1).all()


def test_lambda_schedule_endpoints_and_monotone():
    assert ibt.lambda_schedule(0, 10, 1.0, 100.0) == pytest.approx(1.0)
    assert ibt.lambda_schedule(5, 10, 1.0, 100.0) == pytest.approx(10.0)
    assert ibt.lambda_schedule(10, 10, 1.0, 100.0) == pytest.approx(100.0)
    assert ibt.lambda_schedule(20, 10, 1.0, 100.0) == pytest.approx(100.0)
    values = [ibt.lambda_schedule(t, 7) for t in range(8)]
    assert values == sorted(values)


def test_progressive_sign_hard_when_lam_none():
    q = ibt.ProgressiveSign()
    x = torch.tensor([-0.5, 0.0, 0.7], requires_grad=True)
    assert q(x).tolist() == [-1.0, 1.0, 1.0]
    q.lam = 2.0
    assert torch.allclose(q(x), ibt.smooth_sign(x, 2.0))
    assert q.precision == 1


def test_relu_before_sign_loses_a_state_prelu_keeps_it():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert (torch.sign(torch.relu(x)) >= 0).all()  # ReLU leaves 0 and +: only one non-zero state
    prelu = nn.PReLU(init=0.25)
    assert torch.equal(torch.sign(prelu(x)), torch.sign(x))


@pytest.mark.parametrize("scale, kind", [("none", xn.BinaryWeight), ("analytic", xn.BinaryWeight),
                                         ("learned", xpp.ScaledSignWeight)])
def test_block_scales_and_forward(scale, kind):
    block = ibt.BinaryBlock(6, "prelu", scale)
    assert isinstance(block.linear.weight_quantizer, kind)
    x = torch.randn(5, 6)
    # XNOR-Net's order: batch norm, sign (sign(0) = +1), binary layer, then the activation, added to x
    normed = torch.nn.functional.batch_norm(x, None, None, training=True)
    expected = x + block.act(torch.nn.functional.linear(torch.where(normed >= 0, 1.0, -1.0),
                                                        block.linear.weight_quantizer(block.linear.weight)))
    assert torch.allclose(block(x), expected, atol=1e-6)


def test_analytic_scale_is_mean_abs_per_output():
    block = ibt.BinaryBlock(4, scale="analytic")
    w = block.linear.weight
    assert torch.allclose(block.linear.quantized_weight(), w.abs().mean(1, keepdim=True) * torch.sign(w))


def test_set_binarization_stages_and_back():
    model = ibt.binary_mlp(8, width=6, blocks=2, seed=0)
    x = torch.randn(4, 8)
    model.eval()
    full = model(x)
    ibt.set_binarization(model, weights=False, activations=False)
    layers = [m.linear for m in model.modules() if isinstance(m, ibt.BinaryBlock)]
    assert all(layer.weight_quantizer is None and layer.input_quantizer is None for layer in layers)
    ibt.set_binarization(model, weights=False, activations=True)
    assert all(layer.weight_quantizer is None and isinstance(layer.input_quantizer, ibt.ProgressiveSign)
               for layer in layers)
    ibt.set_binarization(model, weights=True, activations=True)
    assert torch.equal(model(x), full)
    assert ibt.STAGE_ORDERS["reverse"] == ((False, True), (True, True))
    assert ibt.STAGE_ORDERS["standard"] == ((False, False), (True, True))


def test_set_lambda_reaches_stored_quantizers():
    model = ibt.binary_mlp(8, width=6, blocks=2, seed=0)
    ibt.set_binarization(model, weights=True, activations=False)
    ibt.set_lambda(model, 5.0)
    ibt.set_binarization(model, weights=True, activations=True)
    assert all(m.lam == 5.0 for m in model.modules() if isinstance(m, ibt.ProgressiveSign))
    ibt.set_lambda(model, None)
    assert all(m.lam is None for m in model.modules() if isinstance(m, ibt.ProgressiveSign))


def _tiny(n=64, features=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] > 0).long()
    return data.Split(x[: n // 2], y[: n // 2], x[n // 2:], y[n // 2:])


@pytest.mark.parametrize("order", ["scratch", "standard", "reverse"])
@pytest.mark.parametrize("lam", [None, (1.0, 30.0)])
def test_staged_fit_ends_exactly_binary(order, lam):
    model = ibt.binary_mlp(4, width=8, blocks=2, num_classes=2, seed=0)
    acc = ibt.staged_fit(model, _tiny(), epochs=2, order=order, lam=lam, batch_size=16, seed=0)
    layers = [m.linear for m in model.modules() if isinstance(m, ibt.BinaryBlock)]
    # every binary layer has its quantizers back, the hard sign (lam None), and the returned accuracy is the
    # accuracy of that exactly binary network
    assert all(isinstance(layer.weight_quantizer, xn.BinaryWeight) and layer.input_quantizer.lam is None
               for layer in layers)
    split = _tiny()
    assert acc == train.evaluate(model, split.x_test, split.y_test)
    x = torch.randn(7, 8)
    assert set(layers[0].input_quantizer(x).unique().tolist()) <= {-1.0, 1.0}


def test_staged_fit_schedule_reaches_hard_sign_after_smooth_fraction():
    model = ibt.binary_mlp(4, width=8, blocks=1, num_classes=2, seed=0)
    seen = []
    original = ibt.set_lambda

    def spy(m, lam):
        seen.append(lam)
        original(m, lam)

    ibt.set_lambda = spy
    try:
        ibt.staged_fit(model, _tiny(), epochs=2, lam=(1.0, 30.0), smooth_fraction=0.5, batch_size=16)
    finally:
        ibt.set_lambda = original
    # 2 epochs x 2 steps = 4 steps, smooth for round(0.5 * 4) = 2: start lam 1, then after step 1 lam_schedule(1, 2),
    # then the hard sign from step 2 on, and once more at the end
    assert seen[0] == 1.0 and seen[1] == pytest.approx(ibt.lambda_schedule(1, 2, 1.0, 30.0))
    assert seen[2:] == [None] * (len(seen) - 2)


def test_real_order_keeps_real_layers():
    model = ibt.binary_mlp(4, width=8, blocks=1, num_classes=2, seed=0)
    ibt.staged_fit(model, _tiny(), epochs=1, order="real", batch_size=16)
    layer = next(m.linear for m in model.modules() if isinstance(m, ibt.BinaryBlock))
    assert layer.weight_quantizer is None and layer.input_quantizer is None


def test_binary_mlp_seeded():
    a, b = ibt.binary_mlp(10, seed=3), ibt.binary_mlp(10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_comparison_layer():
    w_q, in_q, act = ibt.comparison_layer(features=16)
    assert isinstance(w_q, xn.BinaryWeight) and w_q.scaled
    assert isinstance(act, nn.PReLU) and act.weight.numel() == 16
    assert in_q(torch.tensor([-0.1, 0.2])).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="w_bits"):
        ibt.comparison_layer(2, 1)


@pytest.mark.parametrize("call, error, name", [
    (lambda: ibt.smooth_sign([1.0], 1.0), TypeError, "x"),
    (lambda: ibt.smooth_sign(torch.ones(2), 0.0), ValueError, "lam"),
    (lambda: ibt.smooth_sign(torch.ones(2), 1.0, "relu"), ValueError, "kind"),
    (lambda: ibt.lambda_schedule(-1, 3), ValueError, "step"),
    (lambda: ibt.lambda_schedule(0, 0), ValueError, "total"),
    (lambda: ibt.BinaryBlock(4, "gelu"), ValueError, "activation"),
    (lambda: ibt.BinaryBlock(4, scale="k"), ValueError, "scale"),
    (lambda: ibt.set_binarization("model", True, True), TypeError, "model"),
    (lambda: ibt.set_binarization(nn.Linear(2, 2), 1, True), TypeError, "weights"),
    (lambda: ibt.binary_mlp(0), ValueError, "in_features"),
    (lambda: ibt.staged_fit(nn.Linear(2, 2), "data"), TypeError, "data"),
    (lambda: ibt.staged_fit(ibt.binary_mlp(4), _tiny(), order="backwards"), ValueError, "order"),
    (lambda: ibt.staged_fit(ibt.binary_mlp(4), _tiny(), lam=3.0), TypeError, "lam"),
    (lambda: ibt.staged_fit(ibt.binary_mlp(4), _tiny(), smooth_fraction=1.5), ValueError, "smooth_fraction"),
    (lambda: ibt.staged_fit(ibt.binary_mlp(4), _tiny(), epochs=1, order="reverse"), ValueError, "epochs"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
