"""DSQ (Gong et al., ICCV 2019): the soft quantizer, its parameters, the deployed staircase, the quantizer module."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.papers import differentiable_soft_quantization as dsq


def mqbench_dsq(x, scale, zero_point, quant_min, quant_max, alpha):
    """Line-by-line transcription of MQBench's ``dsq_function_per_tensor`` (ModelTC/MQBench,
    mqbench/fake_quantize/dsq.py, lines 9-20 of the stored version): integer domain, hard forward, soft backward."""
    tanh_scale = 1 / (1 - alpha)
    tanh_k = math.log((tanh_scale + 1) / (tanh_scale - 1))
    x = x / scale + zero_point
    x = torch.clamp(x, quant_min, quant_max)
    x = x.floor() + (tanh_scale * torch.tanh(tanh_k * (x - x.floor() - 0.5))) * 0.5 + 0.5
    x = (x.round() - x).detach() + x
    x = (x - zero_point) * scale
    return x


def test_tanh_parameters_hand_values():
    # alpha = 0.2, delta = 1: s = 1.25, k = log(2 / 0.2 - 1) = log 9; and tanh(0.5 k delta) = 1 - alpha.
    k, s = dsq.tanh_parameters(0.2, 1.0)
    assert float(s) == pytest.approx(1.25)
    assert float(k) == pytest.approx(math.log(9.0))
    for alpha, delta in ((0.01, 0.3), (0.5, 2.0), (0.9, 0.05)):
        k, s = dsq.tanh_parameters(alpha, delta)
        assert float(torch.tanh(0.5 * k * delta)) == pytest.approx(1 - alpha, rel=1e-5)
        assert float(s) == pytest.approx(1 / (1 - alpha), rel=1e-6)


def test_phi_ends_and_midpoints():
    # 2 bits on [-1, 1]: delta = 2/3, midpoints -2/3, 0, 2/3; phi = -1 at interval starts, 0 at midpoints.
    x = torch.tensor([-1.0, -2 / 3, 0.0, 2 / 3, 1.0])
    p = dsq.phi(x, -1.0, 1.0, 2, 0.3)
    assert torch.allclose(p, torch.tensor([-1.0, 0.0, 0.0, 0.0, 1.0]), atol=1e-6)
    assert float(dsq.phi(torch.tensor([-1 / 3 - 1e-4]), -1.0, 1.0, 2, 0.3)) == pytest.approx(1.0, abs=1e-3)


def test_soft_quantize_hand_value():
    # x = 0.25 on [0, 1] with 1 bit: one interval, m = 0.5, k = log(2/0.5 - 1) = log 3, s = 2.
    x = torch.tensor([0.25])
    expected = 0.0 + 1.0 * (0 + (2 * math.tanh(math.log(3.0) * (0.25 - 0.5)) + 1) / 2)
    assert float(dsq.soft_quantize(x, 0.0, 1.0, 1, 0.5)) == pytest.approx(expected, rel=1e-6)


def test_soft_quantize_is_continuous_monotone_and_clipped():
    x = torch.linspace(-2, 2, 4001)
    for bits in (1, 2, 3, 4):
        for alpha in (0.01, 0.2, 0.6):
            q = dsq.soft_quantize(x, -1.0, 1.5, bits, alpha)
            assert (q[1:] - q[:-1] >= -1e-6).all()
            assert (q[1:] - q[:-1]).abs().max() < 0.05  # no jumps: continuous across interval edges
            assert float(q.min()) == pytest.approx(-1.0) and float(q.max()) == pytest.approx(1.5)


def test_soft_tends_to_staircase_and_identity():
    x = torch.rand(2000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    hard = dsq.hard_quantize(x, -1.0, 1.0, 2)
    errors = [float((dsq.soft_quantize(x, -1.0, 1.0, 2, a) - hard).abs().mean()) for a in (0.5, 0.1, 1e-6)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05
    near_identity = dsq.soft_quantize(x, -1.0, 1.0, 2, 0.999)
    assert torch.allclose(near_identity, x, atol=2e-3)


def test_hard_quantize_equals_rounding_to_levels():
    g = torch.Generator().manual_seed(1)
    for bits in (1, 2, 3, 4, 8):
        x = torch.randn(3, 5, 7, generator=g) * 2
        lo, hi = -1.25, 0.75
        delta = (hi - lo) / (2**bits - 1)
        expected = lo + delta * torch.round((x.clamp(lo, hi) - lo) / delta)
        assert torch.allclose(dsq.hard_quantize(x, lo, hi, bits), expected, atol=1e-6)
    # a midpoint goes up (sgn(0) = +1)
    assert float(dsq.hard_quantize(torch.tensor([0.0]), -1.0, 1.0, 2)) == pytest.approx(1 / 3)


def test_hard_forward_matches_mqbench_transcription():
    g = torch.Generator().manual_seed(2)
    bits, lo, hi, alpha = 3, -0.7, 1.4, 0.4
    scale = (hi - lo) / (2**bits - 1)
    zero_point = -lo / scale
    x = (torch.rand(500, generator=g) * 3 - 1).requires_grad_(True)
    ours = dsq.dsq_quantize(x, lo, hi, bits, alpha, forward="hard")
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    ref = mqbench_dsq(x2, scale, zero_point, 0, 2**bits - 1, alpha)
    (g_ref,) = torch.autograd.grad(ref.sum(), x2)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(g_ours, g_ref, atol=1e-4)


def test_gradient_closed_form_and_vs_ste():
    # dQ_S/dx = (delta/2) s k (1 - tanh^2(k (x - m))): at a midpoint log(2/alpha - 1) / (2 (1 - alpha)).
    for alpha in (0.05, 0.2, 0.5):
        x = torch.tensor([0.0], requires_grad=True)  # the midpoint of the middle interval of 2 bits on [-1, 1]
        dsq.soft_quantize(x, -1.0, 1.0, 2, alpha).sum().backward()
        assert float(x.grad) == pytest.approx(math.log(2 / alpha - 1) / (2 * (1 - alpha)), rel=1e-5)
    x = torch.tensor([-3.0, 3.0], requires_grad=True)  # outside the range: no gradient
    dsq.soft_quantize(x, -1.0, 1.0, 2, 0.2).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2))


def test_range_and_alpha_get_gradients():
    lo = torch.tensor(-1.0, requires_grad=True)
    hi = torch.tensor(1.0, requires_grad=True)
    alpha = torch.tensor(0.3, requires_grad=True)
    x = torch.linspace(-2, 2, 101)
    dsq.soft_quantize(x, lo, hi, 2, alpha).pow(2).sum().backward()
    for p in (lo, hi, alpha):
        assert p.grad is not None and torch.isfinite(p.grad) and float(p.grad) != 0.0


def test_module_train_soft_eval_hard_and_init():
    q = dsq.DSQ(2)
    w = torch.tensor([-0.5, -0.1, 0.2, 0.4])
    q.train()
    out = q(w)
    assert q.lower.item() == pytest.approx(-0.5) and q.upper.item() == pytest.approx(0.4)
    assert torch.allclose(out, dsq.soft_quantize(w, -0.5, 0.4, 2, 0.2))
    q.eval()
    assert torch.equal(q(w), dsq.hard_quantize(w, q.lower, q.upper, 2))
    q.alpha.data.fill_(0.9)
    assert float(q.effective_alpha()) == pytest.approx(0.5)
    assert dsq.DSQ(32)(w) is w


def test_comparison_layer():
    w, i, a = dsq.comparison_layer(2, 2)
    assert isinstance(w, dsq.DSQ) and i is None and isinstance(a, dsq.DSQ)
    assert float(a.lower) == 0.0 and float(a.upper) == 2.0
    w, _, a = dsq.comparison_layer(32, 32)
    assert w is None and isinstance(a, torch.nn.ReLU)
    layer = torch.nn.Sequential(torch.nn.Linear(8, 8), dsq.DSQ(4, 0.0, 2.0))
    layer(torch.randn(16, 8)).sum().backward()
    assert layer[1].alpha.grad is not None


@pytest.mark.parametrize("call, match", [
    (lambda: dsq.tanh_parameters(0.0, 1.0), "alpha"),
    (lambda: dsq.tanh_parameters(1.0, 1.0), "alpha"),
    (lambda: dsq.tanh_parameters(0.2, 0.0), "delta"),
    (lambda: dsq.soft_quantize(torch.zeros(2), 1.0, 1.0, 2, 0.2), "upper"),
    (lambda: dsq.soft_quantize(torch.zeros(2), 0.0, 1.0, 0, 0.2), "bits"),
    (lambda: dsq.soft_quantize(torch.tensor([float("nan")]), 0.0, 1.0, 2, 0.2), "x"),
    (lambda: dsq.hard_quantize(torch.zeros(2), 0.0, float("inf"), 2), "upper"),
    (lambda: dsq.dsq_quantize(torch.zeros(2), 0.0, 1.0, 2, 0.2, forward="ste"), "forward"),
    (lambda: dsq.DSQ(2, alpha=0.7), "alpha"),
    (lambda: dsq.DSQ(2, lower=0.0), "lower"),
    (lambda: dsq.comparison_layer(0, 2), "w_bits"),
])
def test_bad_input_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: dsq.soft_quantize([0.1], 0.0, 1.0, 2, 0.2), "x"),
    (lambda: dsq.soft_quantize(torch.zeros(2), "0", 1.0, 2, 0.2), "lower"),
    (lambda: dsq.phi(torch.zeros(2), 0.0, 1.0, 2, True), "alpha"),
    (lambda: dsq.soft_quantize(torch.zeros(2), 0.0, 1.0, 2.0, 0.2), "bits"),
    (lambda: dsq.soft_quantize(torch.arange(3), 0.0, 1.0, 2, 0.2), "x"),
])
def test_bad_input_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()
