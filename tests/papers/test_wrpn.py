"""WRPN: the weight and activation quantizers by hand, against Distiller's formula and DoReFa-Net's activation
quantizer, their straight-through gradients, the widened MLP and its bit-operation count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import data
from qteach import nn as qnn
from qteach.papers import dorefa_net, wrpn


def test_weights_by_hand():
    # k = 3: 2^(k-1) - 1 = 3 steps per unit; clip, x3, round half to even, /3
    w = torch.tensor([-1.4, -0.5, -0.1, 0.2, 0.5, 0.9])
    # x3 after the clip: [-3, -1.5, -0.3, 0.6, 1.5, 2.7] -> rounded [-3, -2, 0, 1, 2, 3]
    expected = torch.tensor([-3.0, -2.0, 0.0, 1.0, 2.0, 3.0]) / 3
    assert torch.allclose(wrpn.quantize_weights(w, 3), expected)
    # k = 2: ternary {-1, 0, 1}, threshold 0.5
    assert wrpn.quantize_weights(torch.tensor([0.4, 0.6, -0.6, -2.0]), 2).tolist() == [0.0, 1.0, -1.0, -1.0]


def test_activations_by_hand():
    # k = 2: 2^k - 1 = 3 steps on [0, 1]
    x = torch.tensor([-0.5, 0.1, 0.2, 0.5, 0.9, 1.3])
    # clipped x3: [0, 0.3, 0.6, 1.5, 2.7, 3] -> [0, 0, 1, 2, 3, 3]
    assert torch.allclose(wrpn.quantize_activations(x, 2), torch.tensor([0.0, 0.0, 1.0, 2.0, 3.0, 3.0]) / 3)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_levels_count_and_symmetry(bits):
    w = torch.linspace(-1.2, 1.2, 20001)
    levels = wrpn.quantize_weights(w, bits).unique()
    assert levels.numel() == 2**bits - 1  # k - 1 magnitude bits and a sign: 2^k - 1 symmetric levels
    assert torch.allclose(levels, -levels.flip(0))
    assert wrpn.quantize_activations(w, bits).unique().numel() == 2**bits


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
def test_matches_distillers_formula(bits):
    # Distiller's WRPNQuantizer: clamp(-1, 1), then round(scale * w) / scale with scale = 2^(k-1) - 1
    w = data.weight_samples(3000, "gaussian", scale=0.7, seed=bits)
    scale = 2 ** (bits - 1) - 1
    reference = torch.round(w.clamp(-1, 1) * scale) / scale
    assert torch.allclose(wrpn.quantize_weights(w, bits), reference, atol=1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_activation_quantizer_is_dorefas(bits):
    x = data.weight_samples(3000, "gaussian", seed=bits) + 0.5
    assert torch.allclose(wrpn.quantize_activations(x, bits), dorefa_net.quantize_activations(x, bits), atol=1e-6)


def test_straight_through_gradients():
    w = torch.tensor([-1.5, -1.0, -0.3, 0.6, 1.0, 2.0], requires_grad=True)
    wrpn.quantize_weights(w, 4).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # 1 where |w| <= 1
    x = torch.tensor([-0.2, 0.0, 0.4, 1.0, 1.5], requires_grad=True)
    wrpn.quantize_activations(x, 4).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # 1 where 0 <= x <= 1


def test_full_precision_passes_through():
    w = torch.tensor([-3.0, 0.1234, 2.0])
    assert wrpn.quantize_weights(w, 32) is w
    assert wrpn.quantize_activations(w, 32).tolist() == [0.0, pytest.approx(0.1234), 2.0]  # a ReLU


def test_quantizer_modules():
    layer = qnn.QuantLinear(4, 3, weight_quantizer=wrpn.WRPNWeightQuantizer(2),
                            input_quantizer=wrpn.WRPNActivationQuantizer(3))
    assert layer.weight_quantizer.precision == 2 and layer.input_quantizer.precision == 3
    assert set(layer.quantized_weight().detach().unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_mlp_shape_width_and_init():
    model = wrpn.wrpn_mlp(width=3, weight_bits=2, activation_bits=2, base=4, hidden_layers=2)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(12, 64), (12, 12), (10, 12)]
    assert all(m.weight.abs().max() > 0.5 for m in linears)  # drawn from [-1, 1]: 2-bit weights are not all 0
    assert model(torch.rand(5, 64)).shape == (5, 10)
    float_model = wrpn.wrpn_mlp(1, 32, 32)
    assert float_model[1].weight.abs().max() < 0.2  # PyTorch's default init for the float baseline


def test_init_latent_weights_revives_a_dead_2_bit_layer():
    torch.manual_seed(0)
    model = nn.Sequential(qnn.QuantLinear(64, 32, weight_quantizer=wrpn.WRPNWeightQuantizer(2)), nn.BatchNorm1d(32),
                          qnn.QuantLinear(32, 10, weight_quantizer=wrpn.WRPNWeightQuantizer(32)))
    assert (model[0].quantized_weight() == 0).all()  # default init: |w| < 1/8, every 2-bit weight rounds to 0
    float_before = model[2].weight.clone()
    assert wrpn.init_latent_weights_(model) == 1
    assert (model[0].quantized_weight() != 0).float().mean() > 0.4
    assert torch.equal(model[2].weight, float_before)  # 32 bits: left alone
    with pytest.raises(ValueError, match="init_range"):
        wrpn.init_latent_weights_(model, 0.0)


def test_bops_by_hand():
    # width 1, base 16, two hidden layers: MACs 64*16 + 16*16 + 16*10 = 1440; at 4 x 4 bits: 1440 * 16 = 23040
    assert wrpn.network_bops(wrpn.wrpn_mlp(1, 4, 4), (64,)) == 23040
    assert wrpn.network_bops(wrpn.wrpn_mlp(1, 32, 32), (64,)) == 1440 * 32 * 32
    # width 2: 64*32 + 32*32 + 32*10 = 3392 MACs; 2-bit weights and 8-bit activations: 3392 * 16
    assert wrpn.network_bops(wrpn.wrpn_mlp(2, 2, 8), (64,)) == 3392 * 16
    # a float layer after a float layer: 32 x 32 bits
    plain = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    assert wrpn.network_bops(plain, (3,)) == (6 + 4) * 1024


def test_bad_input():
    with pytest.raises(ValueError, match="bits"):
        wrpn.quantize_weights(torch.ones(2), 1)
    with pytest.raises(ValueError, match="bits"):
        wrpn.WRPNActivationQuantizer(0)
    with pytest.raises(TypeError, match="w"):
        wrpn.quantize_weights([0.5], 4)
    with pytest.raises(ValueError, match="x"):
        wrpn.quantize_activations(torch.tensor([float("nan")]), 4)
    with pytest.raises(ValueError, match="width"):
        wrpn.wrpn_mlp(width=0)
    with pytest.raises(ValueError, match="init_range"):
        wrpn.wrpn_mlp(init_range=-1.0)
    with pytest.raises(ValueError, match="input_shape"):
        wrpn.network_bops(wrpn.wrpn_mlp(), 64)
