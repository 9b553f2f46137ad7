"""Tests of qteach.papers.rebnet against hand-computed values and a transcription of the official code.

Official code: https://github.com/mohaghasemzadeh/ReBNet (commit 8d7ebd3), files cited by path and line.
"""

from __future__ import annotations

import pytest
import torch

from qteach.binary import sign
from qteach.papers import rebnet as rb


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def official_residual_sign(x, means):
    """Line-by-line transcription of ``Residual_sign.call`` and ``binarize``
    (training-software/binarization_utils.py:22-28 and :40-47), in torch; K.sign is replaced by a sign with
    sign(0) = +1 (TensorFlow's sign(0) = 0; inputs here have no exact zeros)."""
    def binarize(v):                                   # :22
        clipped = torch.clamp(v, -1, 1)                 # :26  clipped=K.clip(x,-1,1)
        rounded = torch.where(clipped >= 0, 1.0, -1.0)  # :27  rounded=K.sign(clipped)
        return clipped + (rounded - clipped).detach()  # :28  clipped + K.stop_gradient(rounded - clipped)
    resid = x                                           # :41
    out_bin = 0                                         # :42
    for l in range(len(means)):                         # :43
        out = binarize(resid) * torch.abs(means[l])     # :44
        out_bin = out_bin + out                         # :45
        resid = resid - out                             # :46
    return out_bin                                      # :47


def test_initial_gammas_match_official_build():
    # binarization_utils.py:35-37: ars = arange(M)+1, reversed, divided by its sum
    assert torch.allclose(rb.initial_gammas(1), torch.tensor([1.0]))
    assert torch.allclose(rb.initial_gammas(2), torch.tensor([2 / 3, 1 / 3]))
    assert torch.allclose(rb.initial_gammas(3), torch.tensor([3 / 6, 2 / 6, 1 / 6]))


def test_residual_binarize_hand_computed_forward():
    # x = 0.3, gammas = (2/3, 1/3): b1 = +1, r2 = 0.3 - 2/3 = -0.3667, b2 = -1, x_hat = 2/3 - 1/3 = 1/3
    x = torch.tensor([0.3, -0.9, 2.0])
    approx, planes = rb.residual_binarize(x, torch.tensor([2 / 3, 1 / 3]))
    assert torch.allclose(approx, torch.tensor([1 / 3, -1.0, 1.0]))
    assert planes[0].tolist() == [1.0, -1.0, 1.0] and planes[1].tolist() == [-1.0, -1.0, 1.0]


def test_residual_binarize_hand_computed_gradient():
    # Unrolled: d x_hat/dx = g1 1(|r1|<=1) + g2 1(|r2|<=1) (1 - g1 1(|r1|<=1)) = 2/3 + 1/3 * 1/3 = 7/9
    # d x_hat/dg1 = b1 + g2 1(|r2|<=1) * (-b1) = 1 - 1/3 = 2/3 ;  d x_hat/dg2 = b2 = -1
    x = torch.tensor(0.3, requires_grad=True)
    g = torch.tensor([2 / 3, 1 / 3], requires_grad=True)
    rb.residual_binarize(x, g)[0].backward()
    assert x.grad.item() == pytest.approx(7 / 9)
    assert g.grad.tolist() == pytest.approx([2 / 3, -1.0])


def test_saturated_input_gets_no_gradient_at_level_one():
    # x = 2: |r1| > 1 so the first STE passes nothing; r2 = 2 - 2/3 = 4/3 > 1 as well -> d x_hat / dx = 0
    x = torch.tensor(2.0, requires_grad=True)
    rb.residual_binarize(x, torch.tensor([2 / 3, 1 / 3]))[0].backward()
    assert x.grad.item() == 0.0


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_forward_and_gradients_equal_official_transcription(levels):
    x1 = randn(64, seed=levels).mul(1.5).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    g1 = (rb.initial_gammas(levels) * torch.linspace(1.2, -0.8, levels)).requires_grad_()  # a negative one too
    g2 = g1.detach().clone().requires_grad_()
    w = randn(64, seed=10)
    (rb.residual_binarize(x1, g1)[0] * w).sum().backward()
    (official_residual_sign(x2, g2) * w).sum().backward()
    assert torch.allclose(rb.residual_binarize(x1, g1)[0], official_residual_sign(x2, g2))
    assert torch.allclose(x1.grad, x2.grad) and torch.allclose(g1.grad, g2.grad)


def test_residual_module_is_the_function():
    layer = rb.ResidualSign(3)
    x = randn(5, 7)
    assert layer.precision == 3 and torch.allclose(layer.gammas.detach(), rb.initial_gammas(3))
    assert torch.equal(layer(x), rb.residual_binarize(x, layer.gammas)[0])


def test_fitted_gammas_match_official_set_means():
    # binarization_utils.py:53-68 in numpy: greedy mean |resid| of clip(X), normalised to sum 1
    x = randn(1000, seed=4) * 0.7
    resid, means = x.clamp(-1, 1).numpy().astype("float64"), []
    for _ in range(3):
        m = abs(resid).mean()
        resid = resid - ((resid >= 0) * 2.0 - 1.0) * m
        means.append(m)
    expected = torch.tensor(means) / sum(means)
    assert torch.allclose(rb.fitted_gammas(x, 3).double(), expected, atol=1e-6)


def test_more_levels_never_approximate_worse_with_greedy_scales():
    x = randn(4000, seed=2).clamp(-1, 1)
    errors = []
    for m in range(1, 6):
        resid, approx = x, torch.zeros_like(x)
        gammas = []
        for _ in range(m):  # unnormalised greedy scales (XNOR-Net's optimum on each residual)
            g = resid.abs().mean()
            gammas.append(g)
            resid = resid - g * sign(resid)
        approx, _ = rb.residual_binarize(x, torch.stack(gammas))
        errors.append(((x - approx) ** 2).mean().item())
    assert all(a > b for a, b in zip(errors, errors[1:]))


def test_hardware_encoder_matches_residual_binarize_away_from_ties():
    # matrixvector.h:186-187: bit = acc > 0; acc -= gamma if bit else acc += gamma
    acc = randn(500, seed=6)
    g = torch.tensor([0.5, 0.25, 0.125])
    hw = rb.hardware_encode(acc, g)
    _, planes = rb.residual_binarize(acc, g)
    for a, b in zip(hw, planes):
        assert torch.equal(a, b)
    # the only difference: a tie acc == 0 gives bit 0 (-1) in hardware, +1 in qteach.binary.sign
    assert rb.hardware_encode(torch.tensor([0.0]), torch.tensor([1.0]))[0].item() == -1.0
    assert rb.residual_binarize(torch.tensor([0.0]), torch.tensor([1.0]))[1][0].item() == 1.0


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_m_binary_passes_equal_the_float_computation(levels):
    x, w = randn(9, 70, seed=1), randn(13, 70, seed=2)  # K = 70: not a multiple of 8 or 64
    gammas = rb.initial_gammas(levels)
    out, counts = rb.residual_linear_xnor(x, w, gammas)
    _, planes = rb.residual_binarize(x, gammas)
    assert len(counts) == levels
    for c, b in zip(counts, planes):  # each pass is an exact integer: XNOR-popcount == float matmul of +-1
        assert c.dtype == torch.int32 and torch.equal(c.double(), b.double() @ sign(w).double().T)
    assert torch.allclose(out, rb.residual_linear_reference(x, w, gammas), rtol=0, atol=1e-12)


def test_dyadic_scales_make_the_float_result_bit_exact():
    x, w = randn(6, 33, seed=3), randn(5, 33, seed=4)
    gammas = torch.tensor([0.5, 0.25, 0.125])  # powers of two: every partial sum is exact in float64
    out, _ = rb.residual_linear_xnor(x, w, gammas)
    assert torch.equal(out, rb.residual_linear_reference(x, w, gammas))


def test_binary_dense_uses_abs_gamma_times_sign():
    layer = rb.BinaryDense(4, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -2.0, 0.0, 0.1], [-0.5, 0.5, -0.1, 1.0]]))
        layer.gamma.fill_(-0.5)
    y = layer(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    # 0.5 * (1 - 2 + 3 + 4) = 3 and 0.5 * (-1 + 2 - 3 + 4) = 1
    assert y.tolist() == [[3.0, 1.0]]


def test_rebnet_mlp_layout_and_training_step():
    model = rb.rebnet_mlp(2, 64, (16, 8), seed=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "BinaryDense", "BatchNorm1d", "ResidualSign", "BinaryDense", "BatchNorm1d",
                     "ResidualSign", "BinaryDense", "BatchNorm1d"]
    assert model[2].eps == 1e-4 and model[2].momentum == 0.1
    out = model(randn(4, 1, 8, 8))
    out.sum().backward()
    assert out.shape == (4, 10) and model[3].gammas.grad is not None
    assert torch.equal(rb.rebnet_mlp(2, 64, (16, 8), seed=0)[1].weight, model[1].weight)


def test_cost_model():
    assert rb.xnor_popcount_ops(3, 256, 10) == 3 * 256 * 10
    assert rb.relative_throughput(1) == 1.0 and rb.relative_throughput(4) == 0.25


@pytest.mark.parametrize("call,match", [
    (lambda: rb.initial_gammas(0), "levels"),
    (lambda: rb.initial_gammas(1.5), "levels"),
    (lambda: rb.residual_binarize(torch.ones(3), torch.ones(2, 2)), "gammas"),
    (lambda: rb.residual_binarize(torch.ones(3), torch.tensor([float("nan")])), "gammas"),
    (lambda: rb.residual_binarize([1.0], torch.ones(1)), "x"),
    (lambda: rb.residual_linear_xnor(torch.ones(2, 3), torch.ones(4, 5), torch.ones(1)), "features"),
    (lambda: rb.rebnet_mlp(2, hidden=16), "hidden"),
    (lambda: rb.xnor_popcount_ops(1, 0, 3), "in_features"),
])
def test_bad_input_raises(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
