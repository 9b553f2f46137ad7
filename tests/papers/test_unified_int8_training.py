"""Tests of qteach.papers.unified_int8_training: hand-computed values of the quantizer (U1), the direction
deviation (U2), DSGC (U3) and DCLR (U4), the INT8 backward pass against an integer GEMM, and bad inputs.

No official code is listed for the paper, so there is no transcription to compare with; the formulas of U2 and U4
(d_c = 1 - cos, phi = max(exp(-alpha d_c), beta), alpha = 20, beta = 0.1) are those of the paper's summaries.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import comparison, data
from qteach import nn as qnn
from qteach.papers import unified_int8_training as u


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def heavy_tailed(n=2000, seed=0):
    """A sharp, wide gradient (a Gaussian divided by a power of a uniform: heavy tails), as the paper describes
    error gradients."""
    g = torch.Generator().manual_seed(seed + 100)
    return randn(n, seed=seed) / torch.rand(n, generator=g).clamp_min(1e-3) ** 0.7


# --- U1: the quantizer ---------------------------------------------------------------------------------------


def test_quantize_gradient_hand_values_8_bits():
    q, s = u.quantize_gradient(torch.tensor([0.5, -1.0, 0.26, 2.0, -0.004]), clip=1.0, bits=8)
    assert s == pytest.approx(1 / 127)
    # 0.5 * 127 = 63.5 -> 64 (half to even), 0.26 * 127 = 33.02 -> 33, 2.0 clipped to 127, -0.508 -> -1
    assert q.dtype == torch.int8
    assert q.tolist() == [64, -127, 33, 127, -1]


def test_quantize_gradient_two_bits_is_ternary():
    q, s = u.quantize_gradient(torch.tensor([0.4, 0.6, -3.0, 0.0]), clip=1.0, bits=2)
    assert s == 1.0 and q.tolist() == [0, 1, -1, 0]


def test_codes_symmetric_and_in_range():
    g = randn(1000) * 5
    q, _s = u.quantize_gradient(g, clip=3.0, bits=8)
    assert int(q.min()) >= -127 and int(q.max()) <= 127
    q_neg, _ = u.quantize_gradient(-g, clip=3.0, bits=8)
    assert torch.equal(q_neg, -q)


def test_error_of_unclipped_values_at_most_half_a_step():
    g = randn(500)
    clip = float(g.abs().max())
    q, s = u.quantize_gradient(g, clip=clip, bits=8)
    assert float((q.float() * s - g).abs().max()) <= s / 2 + 1e-7


def test_stochastic_rounding_unbiased():
    g = torch.full((20000,), 0.3)
    q, _s = u.quantize_gradient(g, clip=1.0, bits=2, stochastic=True, generator=torch.Generator().manual_seed(0))
    assert set(q.unique().tolist()) <= {0, 1}
    assert float(q.float().mean()) == pytest.approx(0.3, abs=0.02)


def test_wide_codes_above_8_bits():
    q, _ = u.quantize_gradient(randn(10), clip=1.0, bits=12)
    assert q.dtype == torch.int32


@pytest.mark.parametrize("kwargs, error", [
    ({"g": [1.0], "clip": 1.0}, TypeError), ({"g": torch.tensor([1, 2]), "clip": 1.0}, TypeError),
    ({"g": torch.ones(3), "clip": 0.0}, ValueError), ({"g": torch.ones(3), "clip": 1.0, "bits": 1}, ValueError),
    ({"g": torch.ones(3), "clip": 1.0, "stochastic": 1}, TypeError), ({"g": torch.empty(0), "clip": 1.0}, ValueError),
    ({"g": torch.ones(3), "clip": 1.0, "generator": 0}, TypeError),
])
def test_quantize_gradient_bad_input(kwargs, error):
    with pytest.raises(error):
        u.quantize_gradient(**kwargs)


# --- U2: the direction deviation ------------------------------------------------------------------------------


def test_direction_deviation_hand_values():
    assert u.direction_deviation(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])) == pytest.approx(0.0, abs=1e-12)
    assert u.direction_deviation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == pytest.approx(1.0)
    assert u.direction_deviation(torch.tensor([1.0, 1.0]), torch.tensor([-1.0, -1.0])) == pytest.approx(2.0)
    assert u.direction_deviation(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == pytest.approx(1 - 2 ** -0.5)
    assert u.direction_deviation(torch.zeros(3), torch.zeros(3)) == pytest.approx(1.0)


def test_direction_deviation_ignores_magnitude_unlike_mse():
    g = randn(50)
    assert u.direction_deviation(g, 10 * g) == pytest.approx(0.0, abs=1e-12)


def test_direction_deviation_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        u.direction_deviation(torch.ones(3), torch.ones(4))
    with pytest.raises(TypeError):
        u.direction_deviation([1.0], torch.ones(1))
    with pytest.raises(ValueError):
        u.direction_deviation(torch.empty(0), torch.empty(0))


# --- U3: DSGC -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_dsgc_never_worse_than_max_clip(bits):
    for seed in range(4):
        g = heavy_tailed(seed=seed)
        c, d = u.dsgc_clip(g, bits)
        q, s = u.quantize_gradient(g, float(g.abs().max()), bits)
        assert d <= u.direction_deviation(g, q.float() * s) + 1e-12
        q, s = u.quantize_gradient(g, c, bits)
        assert d == pytest.approx(u.direction_deviation(g, q.float() * s))


def test_dsgc_clips_below_max_at_4_bits_not_at_8():
    g = randn(2000, seed=1)  # a Gaussian: at 4 bits the step is coarse, clipping the tails pays
    c, d = u.dsgc_clip(g, 4)
    assert c < 0.8 * float(g.abs().max())
    c8, d8 = u.dsgc_clip(g, 8)
    assert c8 > 0.8 * float(g.abs().max()) and d8 < d


def test_dsgc_grid_minimum():
    g = heavy_tailed(seed=2)
    peak = float(g.abs().max())
    c, d = u.dsgc_clip(g, 5)
    for r in u.RATIOS:
        q, s = u.quantize_gradient(g, r * peak, 5)
        assert d <= u.direction_deviation(g, q.float() * s) + 1e-12
    assert any(abs(c - r * peak) < 1e-9 * peak for r in u.RATIOS)


def test_dsgc_bad_input():
    with pytest.raises(ValueError, match="not all zero"):
        u.dsgc_clip(torch.zeros(4))
    with pytest.raises(ValueError):
        u.dsgc_clip(torch.ones(4), ratios=[])
    with pytest.raises(ValueError):
        u.dsgc_clip(torch.ones(4), ratios=[1.5])
    with pytest.raises(TypeError):
        u.dsgc_clip(torch.ones(4, dtype=torch.int64))


# --- U4: DCLR -------------------------------------------------------------------------------------------------


def test_dclr_scale_hand_values():
    assert u.dclr_scale(0.0) == 1.0
    assert u.dclr_scale(0.05) == pytest.approx(math.exp(-1.0))
    assert u.dclr_scale(0.1) == pytest.approx(max(math.exp(-2.0), 0.1))
    assert u.dclr_scale(0.2) == pytest.approx(0.1)  # exp(-4) = 0.018 < beta
    assert u.dclr_scale(math.log(10) / 20) == pytest.approx(0.1)
    assert u.dclr_scale(0.01, alpha=100, beta=0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, error", [
    ({"deviation": -0.1}, ValueError), ({"deviation": 2.5}, ValueError), ({"deviation": "0"}, TypeError),
    ({"deviation": True}, TypeError), ({"deviation": 0.1, "alpha": 0}, ValueError),
    ({"deviation": 0.1, "beta": 2.0}, ValueError),
])
def test_dclr_scale_bad_input(kwargs, error):
    with pytest.raises(error):
        u.dclr_scale(**kwargs)


# --- the INT8 backward pass -----------------------------------------------------------------------------------


def test_error_quantizer_forward_identity_backward_quantized():
    y = randn(6, 5, seed=3).requires_grad_()
    quantizer = u.ErrorQuantizer("max", bits=8)
    out = quantizer(y)
    assert torch.equal(out, y)
    g = randn(6, 5, seed=4)
    out.backward(g)
    q, s = u.quantize_gradient(g, float(g.abs().max()), 8)
    assert torch.equal(y.grad, q.float() * s)
    assert quantizer.deviation == pytest.approx(u.direction_deviation(g, q.float() * s))
    assert len(quantizer.deviations) == 1


def test_error_quantizer_float_mode_passes_gradient():
    y = randn(4, 3).requires_grad_()
    quantizer = u.ErrorQuantizer("float")
    g = randn(4, 3, seed=1)
    quantizer(y).backward(g)
    assert torch.equal(y.grad, g) and quantizer.deviations == [0.0]


def test_dsgc_quantizer_uses_searched_clip_and_keeps_it_for_a_period():
    quantizer = u.ErrorQuantizer("dsgc", bits=4, period=3)
    g = heavy_tailed(400, seed=5).reshape(20, 20)
    y = torch.zeros(20, 20, requires_grad=True)
    quantizer(y).backward(g)
    _c, d = u.dsgc_clip(g, 4)
    assert quantizer.deviation == pytest.approx(d)
    ratio = quantizer.ratio
    y2 = torch.zeros(20, 20, requires_grad=True)
    quantizer(y2).backward(2 * g)  # within the period: same ratio of the new max
    assert quantizer.ratio == ratio


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (33, 64, 17)])
def test_int8_backward_equals_integer_gemm(shape):
    """With an 8-bit input and an 8-bit error, the weight gradient is s_g s_x (Q_g^T Q_x), an integer GEMM."""
    n, k, m = shape
    x = randn(n, k, seed=n)
    scale_x = float(x.abs().max()) / 127
    qx = torch.round(x / scale_x).clamp(-127, 127)
    layer = nn.Linear(k, m, bias=False)
    quantizer = u.ErrorQuantizer("max", bits=8)
    out = quantizer(layer(qx * scale_x))
    g = randn(n, m, seed=m)
    out.backward(g)
    qg, sg = u.quantize_gradient(g, float(g.abs().max()), 8)
    integer = qg.to(torch.int64).T @ qx.to(torch.int64)
    expected = sg * scale_x * integer.double()
    # float32 accumulation: equal up to a few ulps of the largest entry (an integer GEMM would be exact)
    assert torch.allclose(layer.weight.grad.double(), expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


def test_int8_mlp_and_install():
    model = u.int8_mlp(10, 16, forward_bits=8, backward="max")
    assert len(u.error_quantizers(model)) == 2
    model(randn(5, 10)).sum().backward()
    assert all(len(q.deviations) == 1 for q in u.error_quantizers(model))
    assert u.error_quantizers(u.int8_mlp(10, 16, backward=None)) == []
    with pytest.raises(ValueError, match="no QuantLinear"):
        u.install_error_quantizers(nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="mode"):
        u.ErrorQuantizer("min")
    with pytest.raises(ValueError):
        u.int8_mlp(hidden=0)


def test_deviation_scaled_adam_sets_lr_per_layer():
    model = u.int8_mlp(10, 16, backward="max")
    opt = u.DeviationScaledAdam.for_model(model, lr=0.01)
    quantizers = u.error_quantizers(model)
    assert len(opt.param_groups) == 3
    quantizers[0].deviation, quantizers[1].deviation = 0.05, 0.5
    model(randn(5, 10)).sum().backward()
    quantizers[0].deviation, quantizers[1].deviation = 0.05, 0.5  # keep the hand values for the step
    opt.step()
    lrs = [group["lr"] for group in opt.param_groups]
    assert lrs == pytest.approx([0.01 * math.exp(-1.0), 0.01 * 0.1, 0.01])
    with pytest.raises(ValueError):
        u.DeviationScaledAdam.for_model(model, lr=0.0)


def test_comparison_layer_and_protocol_fit():
    wq, iq, act = u.comparison_layer(8, 8)
    assert wq.precision == 8 and iq.precision == 8 and isinstance(act, nn.ReLU)
    with pytest.raises(ValueError):
        u.comparison_layer(4, 4)
    method = comparison.Method("INT8 training", "unified_int8_training", ((8, 8),), layer=u.comparison_layer)
    digits = data.digits(flatten=True)
    small = data.Split(digits.x_train[:256], digits.y_train[:256], digits.x_test[:128], digits.y_test[:128])
    protocol = comparison.Protocol("tiny", "tiny", "", lambda: small, epochs=2, lr=3e-3, batch_size=64)
    torch.manual_seed(0)
    model = comparison.protocol_mlp(method, 8, 8, 64)
    history = u.protocol_fit(model, small, 0, protocol)
    assert len(history.test_accuracy) == 2
    quantizers = u.error_quantizers(model)
    assert len(quantizers) == 2 and all(len(q.deviations) == 8 for q in quantizers)
    assert isinstance(quantizers[0], u.ErrorQuantizer) and isinstance(model[3], qnn.QuantLinear)
