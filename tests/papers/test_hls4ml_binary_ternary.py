"""The hls4ml binary/ternary mechanism against hand-computed values, its official code and the float model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qteach import data, train
from qteach.papers import hls4ml_binary_ternary as P


def test_binarize_sends_zero_to_minus_one():
    # hls4ml v0.2.0 hls_model.py line 302: np.where(data > 0, ones, -ones)
    w = torch.tensor([-2.0, -0.0, 0.0, 1e-9, 3.0])
    assert P.binarize(w).tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0]


def _hls4ml_quantize_data(data, quantize):
    """Transcribed from hls4ml v0.2.0 hls4ml/model/hls_model.py lines 295-305 (quantize_data)."""
    zeros = np.zeros_like(data)
    ones = np.ones_like(data)
    quant_data = data
    if quantize == 2:
        quant_data = np.where(data > 0, ones, -ones)
    elif quantize == 3:
        quant_data = np.where(data > 0.5, ones, np.where(data <= -0.5, -ones, zeros))
    return quant_data


def test_against_hls4ml_quantize_data():
    w = torch.cat([torch.linspace(-1.5, 1.5, 301), torch.tensor([0.5, -0.5, 0.0])]).double()
    assert np.array_equal(P.binarize(w).numpy(), _hls4ml_quantize_data(w.numpy(), 2))
    assert np.array_equal(P.ternarize(w).numpy(), _hls4ml_quantize_data(w.numpy(), 3))


def test_ternarize_hand_values_and_scale():
    # keras-training layers/quantized_ops.py line 265: W/H > 0.5 -> 1, W/H <= -0.5 -> -1, else 0; times H
    w = torch.tensor([0.5, 0.51, -0.5, -0.49, 0.0, 0.9])
    assert P.ternarize(w).tolist() == [0.0, 1.0, -1.0, 0.0, 0.0, 1.0]
    assert P.ternarize(w * 0.25, h=0.25).tolist() == pytest.approx([0.0, 0.25, -0.25, 0.0, 0.0, 0.25])


def test_activations_forward_and_gradient():
    x = torch.tensor([-2.0, -0.7, -0.3, 0.0, 0.3, 0.7, 2.0], requires_grad=True)
    y = P.BinaryTanh()(x)
    assert y.tolist() == [-1, -1, -1, -1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]
    x.grad = None
    t = P.TernaryTanh()(x)
    assert t.tolist() == [-1, -1, 0, 0, 0, 1, 1]
    t.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_weight_quantizers_are_straight_through():
    w = torch.tensor([-0.8, 0.2, 0.6], requires_grad=True)
    P.TernaryWeight()(w).sum().backward()
    assert w.grad.tolist() == [1, 1, 1]
    assert P.BinaryWeight()(w).tolist() == [-1, 1, 1]


def _bn(n, seed, negative=True):
    g = torch.Generator().manual_seed(seed)
    gamma = torch.rand(n, generator=g, dtype=torch.float64) + 0.2
    if negative:
        gamma[::3] *= -1
    return gamma, torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g,
                                                                            dtype=torch.float64) * 3, \
        torch.rand(n, generator=g, dtype=torch.float64) * 4


def test_hand_computed_threshold():
    # t = mu - beta * sqrt(var + eps) / gamma = 1 - 2 * 2 / 4 = 0; ternary +- 0.5 * 2 / 4
    one = lambda v: torch.tensor([v], dtype=torch.float64)
    t, d = P.binary_threshold(one(4.0), one(2.0), one(1.0), one(4.0), eps=0.0)
    assert t.item() == 0.0 and d.item() == 1.0
    hi, lo, _ = P.ternary_thresholds(one(4.0), one(2.0), one(1.0), one(4.0), eps=0.0)
    assert (hi.item(), lo.item()) == (0.25, -0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folded_thresholds_equal_bn_then_activation(seed):
    gamma, beta, mean, var = _bn(12, seed)
    eps = 1e-3
    x = torch.randn(500, 12, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64) * 5
    bn = gamma * (x - mean) / torch.sqrt(var + eps) + beta
    binary = P.apply_thresholds(x, P.binary_threshold(gamma, beta, mean, var, eps))
    assert torch.equal(binary, P.binarize(bn))
    ternary = P.apply_thresholds(x, P.ternary_thresholds(gamma, beta, mean, var, eps))
    assert torch.equal(ternary, P.ternarize(bn.clamp(-1, 1)))


def _hls4ml_thresholds(gamma, beta, mean, var, eps):
    """Transcribed from hls4ml v0.2.0 optimizer/passes/bn_quant.py lines 33, 40-41."""
    threshold = mean - beta * np.sqrt(variance := var + eps) / gamma
    threshold_hi = 0.5 / (gamma / np.sqrt(variance)) + threshold
    threshold_lo = -0.5 / (gamma / np.sqrt(variance)) + threshold
    return threshold, threshold_hi, threshold_lo


def test_against_hls4ml_bn_quant_for_positive_gamma():
    gamma, beta, mean, var = _bn(10, 3, negative=False)
    t, th, tl = _hls4ml_thresholds(*(v.numpy() for v in (gamma, beta, mean, var)), 1e-6)
    ours_t, d = P.binary_threshold(gamma, beta, mean, var, 1e-6)
    hi, lo, _ = P.ternary_thresholds(gamma, beta, mean, var, 1e-6)
    assert np.allclose(ours_t.numpy(), t, rtol=0, atol=1e-12) and bool((d == 1).all())
    assert np.allclose(hi.numpy(), th, rtol=0, atol=1e-12) and np.allclose(lo.numpy(), tl, rtol=0, atol=1e-12)


def test_ties_follow_the_firmware_comparisons():
    # nnet_batchnorm.h line 125 (x > t -> 1) and lines 148-149 (x > t_hi -> 1, x <= t_lo -> -1)
    t = (torch.tensor([1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    assert P.apply_thresholds(torch.tensor([[1.0], [1.5]]), t).flatten().tolist() == [-1.0, 1.0]
    t3 = (torch.tensor([1.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64),
          torch.tensor([1.0], dtype=torch.float64))
    out = P.apply_thresholds(torch.tensor([[-1.0], [0.0], [1.0], [1.1]]), t3).flatten().tolist()
    assert out == [-1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("kind", ["binary", "ternary"])
@pytest.mark.parametrize("first_bits", [8, None])
def test_integer_forward_equals_float_model(kind, first_bits):
    torch.set_num_threads(1)
    split = data.blobs(num_samples=400, num_features=16, num_classes=5, spread=2.0, seed=0)
    torch.manual_seed(0)
    model = P.jet_mlp(kind, width=1, first_bits=first_bits)
    train.fit(model, split, epochs=2, lr=3e-3, batch_size=64, weight_clip=1.0, progress=False)
    model.eval()
    with torch.no_grad():
        ref = model(split.x_test).double()
    got = P.integer_forward(model, split.x_test)
    assert torch.equal(got.argmax(1), ref.argmax(1))
    assert torch.allclose(got, ref, atol=1e-3)


def test_resources_of_a_known_layer():
    w = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    assert P.layer_resources(w, in_bits=16, w_bits=2) == {"multipliers": 0, "lut_bits": 48, "nonzero_weights": 3}
    assert P.layer_resources(w, in_bits=16, w_bits=8) == {"multipliers": 3, "lut_bits": 72, "nonzero_weights": 3}
    assert P.layer_resources(w, in_bits=1, w_bits=8)["multipliers"] == 0


def test_model_resources_counts_only_the_first_layer_multipliers():
    torch.manual_seed(0)
    model = P.jet_mlp("binary", width=1, first_bits=8)
    nonzero_first = int((model[0].quantized_weight() != 0).sum())
    res = P.model_resources(model)
    assert res["multipliers"] == nonzero_first
    assert P.model_resources(P.jet_mlp("binary", first_bits=None))["multipliers"] == 0
    assert P.model_resources(P.jet_mlp("float"))["multipliers"] == 16 * 64 + 64 * 32 + 32 * 32 + 32 * 5


def test_jet_mlp_shape():
    model = P.jet_mlp("ternary", width=2)
    sizes = [m.out_features for m in model if hasattr(m, "out_features")]
    assert sizes == [128, 64, 64, 5]
    assert model(torch.randn(3, 16)).shape == (3, 5)


def test_comparison_layer():
    w, i, a = P.comparison_layer(2, 2)
    assert isinstance(w, P.TernaryWeight) and i is None and isinstance(a, P.TernaryTanh)
    with pytest.raises(ValueError, match="w_bits"):
        P.comparison_layer(1, 1)


def test_bad_inputs():
    with pytest.raises(TypeError, match="w"):
        P.binarize([1.0])
    with pytest.raises(ValueError, match="h"):
        P.ternarize(torch.ones(2), h=0.0)
    g, b, m, v = _bn(4, 0)
    with pytest.raises(ValueError, match="gamma"):
        P.binary_threshold(torch.zeros(4, dtype=torch.float64), b, m, v)
    with pytest.raises(ValueError, match="var"):
        P.binary_threshold(g, b, m, -v - 1)
    with pytest.raises(ValueError, match="kind"):
        P.jet_mlp("quaternary")
    with pytest.raises(ValueError, match="width"):
        P.jet_mlp("binary", width=0)
    with pytest.raises(TypeError, match="thresholds"):
        P.apply_thresholds(torch.ones(2, 4), (1, 2, 3, 4))
    with pytest.raises(ValueError, match="model"):
        P.integer_forward(P.jet_mlp("float"), torch.ones(2, 16))
    with pytest.raises(ValueError, match="in_bits"):
        P.layer_resources(torch.ones(2, 2), in_bits=0, w_bits=2)
