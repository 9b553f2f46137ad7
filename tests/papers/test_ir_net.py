"""IR-Net: Libra-PB and EDE against hand-computed values and a line-by-line transcription of the official code
(https://github.com/htqin/IR-Net, commit f63a590, CIFAR-10/ResNet20/1w1a)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from qteach import binary
from qteach import data as qdata
from qteach.papers import ir_net as ir

# --- the official code, transcribed line by line ----------------------------------------------------------------

class _OfficialBinaryQuantize(torch.autograd.Function):
    """binaryfunction.py lines 5-16 (torch.sign as in the code)."""

    @staticmethod
    def forward(ctx, input, k, t):
        ctx.save_for_backward(input, k, t)
        return torch.sign(input)

    @staticmethod
    def backward(ctx, grad_output):
        input, k, t = ctx.saved_tensors
        grad_input = k * t * (1 - torch.pow(torch.tanh(input * t), 2)) * grad_output
        return grad_input, None, None


def _official_weight(w, k, t):
    """ir_1w1a.py lines 18-21 and 23 (IRConv2d.forward, weight part), for a 2-D (linear) or 4-D weight."""
    view = (w.size(0),) + (1,) * (w.dim() - 1)
    bw = w - w.view(w.size(0), -1).mean(-1).view(view)
    bw = bw / bw.view(bw.size(0), -1).std(-1).view(view)
    sw = torch.pow(torch.tensor([2] * bw.size(0)).float(),
                   (torch.log(bw.abs().view(bw.size(0), -1).mean(-1)) / math.log(2)).round().float()).view(view).detach()
    bw = _OfficialBinaryQuantize.apply(bw, k, t)
    return bw * sw


def _official_log_up(k_min, k_max, epoch, epochs):
    """trainer.py lines 132-134 (Log_UP) and 139-143 (k)."""
    kmin, kmax = math.log(k_min) / math.log(10), math.log(k_max) / math.log(10)
    t = math.pow(10, kmin + (kmax - kmin) / epochs * epoch)
    k = 1 / t if t < 1 else 1.0
    return t, k


@pytest.mark.parametrize("shape", [(4, 9), (16, 3, 3, 3), (1, 2), (7, 5)])
@pytest.mark.parametrize("kt", [(1000.0, 1e-3), (1.0, 10.0), (2.5, 0.4)])
def test_libra_pb_matches_the_official_code_forward_and_backward(shape, kt):
    k, t = kt
    w = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    w1 = w.clone().requires_grad_()
    w2 = w.clone().requires_grad_()
    ours = ir.libra_pb(w1, k, t)
    theirs = _official_weight(w2, torch.tensor([k]), torch.tensor([t]))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    upstream = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    ours.backward(upstream)
    theirs.backward(upstream)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-6, atol=1e-6)


def test_ede_sign_matches_the_official_binary_quantize():
    x = (torch.arange(-30, 31) / 10).requires_grad_()
    y = x.detach().clone().requires_grad_()
    for k, t in ((1000.0, 1e-3), (1.0, 3.98), (1.0, 10.0)):
        x.grad = y.grad = None
        ours = ir.ede_sign(x, k, t)
        theirs = _OfficialBinaryQuantize.apply(y, torch.tensor([k]), torch.tensor([t]))
        nonzero = y.detach() != 0
        assert torch.equal(ours[nonzero], theirs[nonzero])
        assert ours[~nonzero].tolist() == [1.0]  # qteach's sign(0) = +1, torch.sign(0) = 0
        ours.sum().backward()
        theirs.sum().backward()
        torch.testing.assert_close(x.grad, y.grad)


@pytest.mark.parametrize("epochs", [1, 10, 400])
def test_schedule_matches_the_official_log_up(epochs):
    for epoch in range(epochs):
        t, k = ir.ede_schedule(epoch, epochs)
        t_ref, k_ref = _official_log_up(1e-3, 1e1, epoch, epochs)
        assert math.isclose(t, t_ref, rel_tol=1e-12) and math.isclose(k, k_ref, rel_tol=1e-12)


# --- hand-computed values ---------------------------------------------------------------------------------------

def test_standardize_by_hand():
    w = torch.tensor([[1.0, 2.0, 3.0, 6.0]])  # mean 3, deviations -2 -1 0 3, unbiased variance 14/3
    expected = torch.tensor([[-2.0, -1.0, 0.0, 3.0]]) / math.sqrt(14 / 3)
    torch.testing.assert_close(ir.standardize(w), expected)
    # mean |w_std| = 6 / 4 / sqrt(14/3) = 0.694 -> log2 = -0.526 -> round to -1 -> scale 1/2
    assert ir.power_of_two_scale(ir.standardize(w)).item() == 0.5
    assert ir.libra_pb_forward(w).tolist() == [[-0.5, -0.5, 0.5, 0.5]]


def test_power_of_two_scale_is_a_power_of_two_nearest_in_log():
    w = torch.tensor([[3.0, -3.0], [0.3, 0.2], [1.3, -1.4], [1.45, -1.45]])  # log-domain: the 1/2 switch is at sqrt 2
    assert ir.power_of_two_scale(w).flatten().tolist() == [4.0, 0.25, 1.0, 2.0]


def test_ede_derivative_by_hand():
    x = torch.tensor([0.0, 0.5])
    d = ir.ede_derivative(x, k=1.0, t=2.0)
    assert d[0].item() == 2.0
    assert math.isclose(d[1].item(), 2 * (1 - math.tanh(1.0) ** 2), rel_tol=1e-6)
    # early: t = 1e-3, k = 1000 -> the identity's gradient
    early = ir.ede_derivative(torch.linspace(-3, 3, 7), *reversed(ir.ede_schedule(0, 10)))
    torch.testing.assert_close(early, torch.ones(7), atol=1e-5, rtol=0)


def test_schedule_end_points():
    assert ir.ede_schedule(0, 5) == (pytest.approx(1e-3), pytest.approx(1e3))
    t, k = ir.ede_schedule(9, 10)
    assert t == pytest.approx(10 ** 0.6) and k == 1.0
    assert ir.ede_schedule(1, 2, t_min=0.1, t_max=10.0) == (pytest.approx(1.0), 1.0)


def test_binary_entropy_bits():
    assert ir.binary_entropy_bits(torch.tensor([1.0, -1.0, 1.0, -1.0])) == 1.0
    assert ir.binary_entropy_bits(torch.ones(5)) == 0.0
    assert ir.binary_entropy_bits(torch.tensor([1.0, 1.0, 1.0, -1.0])) == pytest.approx(0.8112781245)


# --- invariants -------------------------------------------------------------------------------------------------

def test_libra_pb_balances_a_shifted_row():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 1000, generator=g, dtype=torch.float64) * 0.1 + 0.08  # most weights positive
    plain = binary.sign(w)
    balanced = ir.libra_pb_forward(w)
    assert (plain > 0).double().mean() > 0.75
    for row in balanced:
        assert 0.45 < (row > 0).double().mean() < 0.55
    assert ir.binary_entropy_bits(balanced) > 0.99
    assert ir.binary_entropy_bits(plain) < 0.85


def test_libra_pb_is_invariant_to_scale_and_shift():
    w = torch.randn(6, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(ir.libra_pb_forward(w), ir.libra_pb_forward(3.0 * w - 0.7))


def test_ir_weight_switches():
    w = torch.randn(5, 12, generator=torch.Generator().manual_seed(4)).requires_grad_()
    assert torch.equal(ir.IRWeight(False, False)(w), binary.sign(w))
    assert torch.equal(ir.IRWeight(True, False)(w), ir.libra_pb_forward(w))
    q = ir.IRWeight(True, True)
    q.k, q.t = 1.0, 10.0
    torch.testing.assert_close(q(w), ir.libra_pb(w, 1.0, 10.0))


def test_set_schedule_and_comparison_layer():
    layer = ir.comparison_layer(1, 1)
    model = nn.Sequential(nn.Linear(4, 4), layer[2], layer[0])
    assert ir.set_schedule(model, t=2.0, k=1.0) == 2
    assert layer[0].t == 2.0 and layer[2].k == 1.0 and layer[1] is None


def test_protocol_fit_schedules_every_epoch():
    split = qdata.digits(flatten=True, seed=0)
    small = qdata.Split(split.x_train[:200], split.y_train[:200], split.x_test[:50], split.y_test[:50])
    protocol = SimpleNamespace(epochs=3, lr=3e-3, batch_size=64)
    w, _, act = ir.comparison_layer()
    from qteach import nn as qnn
    model = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), act,
                          qnn.QuantLinear(16, 16, weight_quantizer=w), nn.BatchNorm1d(16), nn.Linear(16, 10))
    history = ir.protocol_fit(model, small, 0, protocol)
    assert history.t == pytest.approx([ir.ede_schedule(e, 3)[0] for e in range(3)])
    assert w.t == pytest.approx(ir.ede_schedule(2, 3)[0]) and len(history.test_accuracy) == 3


# --- bad input --------------------------------------------------------------------------------------------------

def test_bad_input():
    with pytest.raises(ValueError, match="w"):
        ir.standardize(torch.ones(3, 4))
    with pytest.raises(ValueError, match="w"):
        ir.standardize(torch.ones(4))
    with pytest.raises(TypeError, match="w"):
        ir.libra_pb_forward(torch.ones(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="t"):
        ir.ede_derivative(torch.ones(2), k=1.0, t=0.0)
    with pytest.raises(ValueError, match="k"):
        ir.ede_sign(torch.ones(2), k=-1.0, t=1.0)
    with pytest.raises(ValueError, match="epoch"):
        ir.ede_schedule(10, 10)
    with pytest.raises(ValueError, match="t_max"):
        ir.ede_schedule(0, 10, t_min=1.0, t_max=0.5)
    with pytest.raises(TypeError, match="balance"):
        ir.IRWeight(balance=1)
    with pytest.raises(ValueError, match="w_bits"):
        ir.comparison_layer(2, 1)
    with pytest.raises(TypeError, match="b"):
        ir.binary_entropy_bits([1, -1])
