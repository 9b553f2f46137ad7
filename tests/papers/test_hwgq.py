"""HWGQ: Lloyd-Max levels against Max's table and the official code, the quantizer, the three backward rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qteach.nn import QuantLinear
from qteach.papers import hwgq as H


def official_quant_forward(x: np.ndarray, centers, negative_slope: float = 0.0) -> np.ndarray:
    """Port of QuantLayer::Forward_cpu with forward_func "hwgq" (zhaoweicai/hwgq, quant_layer.cpp)."""
    thrs = [0.5 * (centers[i] + centers[i + 1]) for i in range(len(centers) - 1)] + [np.finfo(np.float32).max]
    out = np.zeros_like(x)
    for i, v in enumerate(x.flat):
        if v <= 0:
            out.flat[i] = -negative_slope
        else:
            for j, t in enumerate(thrs):
                if v <= t:
                    out.flat[i] = centers[j]
                    break
    return out


def official_quant_backward(x: np.ndarray, top_diff: np.ndarray, clip_thr: float) -> np.ndarray:
    """Port of QuantLayer::Backward_cpu with backward_func "relu" (negative_slope 0)."""
    clip = clip_thr if clip_thr > 0 else np.finfo(np.float32).max
    return top_diff * (x > 0) * (x <= clip)


# --------------------------------------------------------------------------------------------------- levels

def test_one_level_is_the_half_normal_mean():
    # E[x] for the half-normal = sqrt(2 / pi)
    assert H.lloyd_max_half_normal(1).item() == pytest.approx(math.sqrt(2 / math.pi), abs=1e-9)


def test_two_levels_match_max_and_the_official_nonuniform_script():
    levels = H.lloyd_max_half_normal(2)
    # Max (1960), 4-level Gaussian quantizer: outputs +-0.4528, +-1.510
    assert levels.tolist() == pytest.approx([0.4528, 1.5104], abs=2e-4)
    assert levels.tolist() == pytest.approx(list(H.OFFICIAL_NONUNIFORM_2LEVEL), abs=5e-3)


def test_four_levels_match_max_8_level_gaussian():
    # Max (1960), 8-level Gaussian quantizer: 0.2451, 0.7560, 1.344, 2.152
    assert H.lloyd_max_half_normal(4).tolist() == pytest.approx([0.2451, 0.7560, 1.3439, 2.1519], abs=2e-4)


def test_lloyd_fixed_point():
    levels = H.lloyd_max_half_normal(3)
    t = H.thresholds(levels)
    # each level is the conditional mean of its interval: (phi(a) - phi(b)) / (Phi(b) - Phi(a))
    phi = lambda v: math.exp(-v * v / 2) / math.sqrt(2 * math.pi) if math.isfinite(v) else 0.0  # noqa: E731
    Phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))) if math.isfinite(v) else 1.0  # noqa: E731
    for q, a, b in zip(levels.tolist(), t[:-1].tolist(), t[1:].tolist()):
        assert q == pytest.approx((phi(a) - phi(b)) / (Phi(b) - Phi(a)), abs=1e-10)


def test_uniform_step_is_the_official_0_538():
    step = H.optimal_uniform_step(2)
    assert step == pytest.approx(0.538, abs=1e-3)
    assert H.uniform_levels(2).tolist() == pytest.approx(list(H.OFFICIAL_UNIFORM_2BIT), abs=3e-3)
    # the step minimises the error: a little to either side is worse
    for s in (step * 0.97, step * 1.03):
        assert H.half_wave_mse(H.uniform_levels(2, s)) > H.half_wave_mse(H.uniform_levels(2))
    # uniform levels are a constrained Lloyd-Max: never better than the free optimum
    assert H.half_wave_mse(H.lloyd_max_half_normal(3)) < H.half_wave_mse(H.uniform_levels(2))


def test_closed_form_error_matches_monte_carlo():
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = z.clamp(min=0)
    for levels in (H.uniform_levels(2), H.lloyd_max_half_normal(3), [1 / 3, 2 / 3, 1.0]):
        mc = ((H.hwgq(x, levels) - x) ** 2).mean().item()
        assert mc == pytest.approx(H.half_wave_mse(levels), rel=0.02)


def test_lloyd_on_samples_lands_on_the_analytic_levels():
    z = torch.randn(400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    empirical = H.lloyd_max_samples(z.clamp(min=0), 3)
    assert empirical.tolist() == pytest.approx(H.lloyd_max_half_normal(3).tolist(), abs=0.02)


# ------------------------------------------------------------------------------------------------ quantizer

def test_quantizer_by_hand():
    x = torch.tensor([-1.0, 0.0, 0.01, 0.75, 0.76, 1.25, 1.3, 9.0])
    # levels 0.5, 1.0, 1.5: thresholds 0 | 0.75 | 1.25 | inf; x <= 0 -> 0; a threshold belongs to the lower level
    assert H.hwgq(x, [0.5, 1.0, 1.5]).tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5]
    assert H.thresholds([0.5, 1.0, 1.5]).tolist() == [0.0, 0.75, 1.25, math.inf]


def test_forward_and_backward_match_the_official_layer():
    x = torch.randn(5000, generator=torch.Generator().manual_seed(2)) * 1.5
    layer = H.HWGQ(2, backward="clipped", levels=list(H.OFFICIAL_UNIFORM_2BIT))
    xr = x.clone().requires_grad_()
    y = layer(xr)
    g = torch.randn(5000, generator=torch.Generator().manual_seed(3))
    y.backward(g)
    centers = list(np.float32(H.OFFICIAL_UNIFORM_2BIT))
    assert np.array_equal(y.detach().numpy(), official_quant_forward(x.numpy(), centers))
    assert np.array_equal(xr.grad.numpy(), official_quant_backward(x.numpy(), g.numpy(), 1.614))
    # backward "relu" without clip_thr is the vanilla ReLU
    xr.grad = None
    H.HWGQ(2, backward="relu", levels=list(H.OFFICIAL_UNIFORM_2BIT))(xr).backward(g)
    assert np.array_equal(xr.grad.numpy(), official_quant_backward(x.numpy(), g.numpy(), 0.0))


def test_log_tailed_backward():
    q_m = 1.614
    tau = q_m - 1
    x = torch.tensor([-0.5, 0.3, q_m, q_m + 1.0, 3 + tau], requires_grad=True)
    H.HWGQ(2, backward="log_tailed", levels=list(H.OFFICIAL_UNIFORM_2BIT))(x).sum().backward()
    # 0 below zero, 1 up to q_m, then 1 / (x - tau): 1 / 2 at q_m + 1, 1 / 3 at 3 + tau
    assert x.grad.tolist() == pytest.approx([0.0, 1.0, 1.0, 0.5, 1 / 3])
    # the proxy is continuous at q_m and its numerical derivative is the backward rule
    v = torch.tensor([0.4, 1.0, 2.0, 4.0], dtype=torch.float64)
    h = 1e-6
    numeric = (H.backward_proxy(v + h, "log_tailed", q_m) - H.backward_proxy(v - h, "log_tailed", q_m)) / (2 * h)
    assert numeric.tolist() == pytest.approx(H.proxy_gradient(v, "log_tailed", q_m).tolist(), abs=1e-6)
    edge = H.backward_proxy(torch.tensor([q_m - 1e-9, q_m + 1e-9], dtype=torch.float64), "log_tailed", q_m)
    assert edge[1].item() == pytest.approx(edge[0].item(), abs=1e-8)


def test_clipped_and_relu_proxies():
    x = torch.tensor([-1.0, 0.5, 1.0, 2.0, 5.0])
    assert H.backward_proxy(x, "clipped", 1.614).tolist() == pytest.approx([0.0, 0.5, 1.0, 1.614, 1.614])
    assert H.proxy_gradient(x, "clipped", 1.614).tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert H.proxy_gradient(x, "relu", 1.614).tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]


def test_module():
    q = H.HWGQ(2)
    assert q.precision == 2 and q.levels.numel() == 3 and q.q_max == pytest.approx(3 * H.optimal_uniform_step(2))
    assert H.HWGQ(3, uniform=False).levels.numel() == 7
    layer = QuantLinear(4, 2, input_quantizer=H.HWGQ(2))
    x = torch.randn(3, 4)
    assert torch.allclose(layer(x), torch.nn.functional.linear(H.hwgq(x, q.levels), layer.weight, layer.bias))
    assert "backward='clipped'" in repr(q)


# ------------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, error, name", [
    (dict(bits=0), ValueError, "bits"),
    (dict(bits=9), ValueError, "bits"),
    (dict(backward="tanh"), ValueError, "backward"),
    (dict(uniform=1), TypeError, "uniform"),
    (dict(levels=[0.5, 0.4]), ValueError, "levels"),
    (dict(levels=[-0.5, 1.0]), ValueError, "levels"),
    (dict(levels=[0.1, 0.2, 0.3, 0.4]), ValueError, "levels"),
])
def test_bad_module_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        H.HWGQ(**kwargs)


def test_bad_inputs():
    with pytest.raises(TypeError, match="x"):
        H.hwgq(torch.ones(3, dtype=torch.int64), [0.5])
    with pytest.raises(ValueError, match="x"):
        H.hwgq(torch.tensor([float("nan")]), [0.5])
    with pytest.raises(ValueError, match="num_levels"):
        H.lloyd_max_half_normal(0)
    with pytest.raises(ValueError, match="num_levels"):
        H.lloyd_max_samples(torch.tensor([-1.0, 0.5]), 2)
    with pytest.raises(ValueError, match="step"):
        H.uniform_levels(2, step=-1.0)
    with pytest.raises(ValueError, match="q_max"):
        H.proxy_gradient(torch.ones(2), "clipped", 0.0)
