"""Tests of qteach.papers.binaryduo: the activation, the weight binarization and the decoupling against our
transcriptions of the official Torch-7 code, the exactness of the decoupling, the CDG and the protocol fit.

Official code transcribed (https://github.com/Hyungjun-K1m/BinaryDuo, commit d23ad76):

- ``newLayers/QuantizedNeurons.lua`` lines 6-12 (``n = 2^bitA - 1`` for ``bitA >= 1``, ``n = bitA*10 - 1`` for the
  ternary code ``bitA = 0.3``) and line 34 (``output:mul(n):round():div(n)``), after ``nn.HardTanh(0, 1)``
  (``models/tinyVGG7_coupled.lua`` lines 19-20); backward lines 43-45 (gradient copied unchanged);
- ``newLayers/cudnnQuantSpatialConvolution.lua`` lines 35-39 (``sign():add(0.1):sign():mul(absE)``, ``absE`` the
  mean of ``|weight|``);
- ``models/init.lua`` lines 174-190: ``duplicateBN`` (running statistics and weight copied to both halves, bias
  ``- 0.25`` on the first half and ``+ 0.25`` on the second) and ``duplicateConv`` (``weight/2`` on both halves of
  the input channels); ``models/tinyVGG7_decoupled.lua`` lines 29-33 (``Replicate(2,1,3)`` + ``Reshape``: the copies
  side by side along the channels).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import comparison, train
from qteach.papers import binaryduo as bd


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def lua_round(v):
    """Torch-7's ``round`` is C's ``roundf`` (half away from zero); in float64 ``floor(|a| + 0.5)`` is exact for
    every float32 ``a``."""
    return torch.tensor([math.copysign(math.floor(abs(a) + 0.5), a) for a in v.tolist()], dtype=v.dtype)


def official_quantized_neurons(x, bit_a):
    """QuantizedNeurons.lua lines 6-12 and 34, mode 0, after HardTanh(0, 1)."""
    n = 2**bit_a - 1 if bit_a > 0.9999 else bit_a * 10 - 1
    n = round(n)
    return lua_round(x.clamp(0, 1) * n) / n


def official_binarized(w):
    """cudnnQuantSpatialConvolution.lua lines 36-37."""
    return torch.sign(torch.sign(w) + 0.1) * w.abs().mean()


# --- the activation -------------------------------------------------------------------------------------------


def test_activation_hand_values():
    x = torch.tensor([-1.0, 0.0, 0.2, 0.25, 0.5, 0.74, 0.75, 1.0, 3.0])
    assert bd.activation(x, 1).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert bd.activation(x, 2).tolist() == [0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1]
    assert torch.allclose(bd.activation(x, 3), torch.tensor([0, 0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1]))
    assert bd.activation(x, None).tolist() == x.clamp(0, 1).tolist()


@pytest.mark.parametrize("bit_a, levels", [(1, 1), (0.3, 2), (2, 3)])
def test_activation_equals_the_official_quantized_neurons(bit_a, levels):
    x = torch.cat([randn(500) * 0.7 + 0.5, torch.tensor([0.25, 0.75, 0.5, 1 / 6, 0.5 - 2**-25])])
    assert torch.equal(bd.activation(x, levels), official_quantized_neurons(x, bit_a))


def test_activation_gradient_is_the_clip_derivative():
    x = torch.tensor([-0.5, 0.1, 0.3, 0.9, 1.5], requires_grad=True)
    bd.activation(x, 2).sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 0]


def test_round_half_away_is_exact_where_floor_plus_half_is_not():
    v = torch.tensor([0.5 - 2**-25, 0.5, 1.5, 2.5, 0.49999997])
    assert bd.round_half_away(v).tolist() == [0, 1, 2, 3, 0]
    assert torch.floor(v[:1] + 0.5).item() == 1  # the naive form rounds 0.5 - 2**-25 up in float32


def test_activation_module_precision():
    assert [bd.Activation(n).precision for n in (1, 2, 3)] == [1, 2, 2]
    assert bd.Activation(None).precision == 32


def test_layer_scaled_sign_equals_the_official_binarized():
    w = torch.cat([randn(40), torch.zeros(3)]).reshape(43, 1)
    assert torch.equal(bd.LayerScaledSign()(w), official_binarized(w))
    latent = w.clone().requires_grad_(True)
    (bd.LayerScaledSign()(latent) * torch.arange(43.0).reshape(43, 1)).sum().backward()
    assert torch.equal(latent.grad, torch.arange(43.0).reshape(43, 1))  # straight through


# --- decoupling ------------------------------------------------------------------------------------------------


def test_duo_bits_sum_to_the_ternary_codes_for_every_float():
    y = torch.cat([randn(2000), torch.tensor([0.25, 0.75, 0.25 - 2**-26, 0.75 - 2**-25, 0.0, 1.0, -0.0])])
    bits = bd.duo_bits(y[None])[0]
    k = y.numel()
    assert torch.equal(bits[:k] + bits[k:], bd.ternary_codes(y).float())
    assert torch.equal(bd.ternary_codes(y).float() / 2, bd.activation(y, 2))


def test_official_bias_shift_rounds_onto_the_threshold_at_a_tie():
    y = torch.tensor([0.25 - 2**-26])  # just below the ternary threshold 1/4
    assert bd.activation(y, 2).item() == 0.0
    assert bd.activation(y + bd.SHIFT, 1).item() == 1.0  # y + 0.25 rounds to 0.5 in float32
    assert bd.duo_bits(y).tolist() == [0.0, 0.0]


def test_decouple_weight_transcribes_duplicate_conv():
    w = randn(3, 4, 2, 2)
    d = bd.decouple_weight(w)
    assert d.shape == (3, 8, 2, 2)
    assert torch.equal(d[:, :4], w / 2) and torch.equal(d[:, 4:], w / 2)


@pytest.mark.parametrize("n, k, m", [(5, 7, 3), (1, 1, 1), (64, 64, 64), (3, 65, 2), (9, 130, 17)])
def test_decoupled_accumulator_is_bit_exact(n, k, m):
    y = randn(n, k, seed=n + k) * 0.6 + 0.5
    w = randn(m, k, seed=m)
    coupled = bd.coupled_accumulator(y, w)
    assert torch.equal(bd.decoupled_accumulator(y, w), coupled)
    # the plain float computation with sign(W) gives the same integers (halves are exact in float32)
    plain = 2 * bd.activation(y, 2) @ torch.sign(torch.sign(w) + 0.1).T
    assert torch.equal(plain.long(), coupled) and torch.equal(plain, coupled.float())


def test_decouple_batch_norm_transcribes_duplicate_bn():
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, 2.0, 3.0]))
        bn.running_var.copy_(torch.tensor([4.0, 5.0, 6.0]))
        bn.weight.copy_(torch.tensor([0.5, 1.5, 2.5]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    seq = bd.decouple_batch_norm(bn)
    new = seq[1]
    assert new.running_mean.tolist() == [1, 2, 3, 1, 2, 3] and new.running_var.tolist() == [4, 5, 6, 4, 5, 6]
    assert new.weight.tolist() == [0.5, 1.5, 2.5] * 2
    assert new.bias.tolist() == [-0.25, 0.75, -1.25, 0.25, 1.25, -0.75]
    assert seq(torch.ones(2, 3)).shape == (2, 6)


def test_decoupled_network_computes_the_coupled_function():
    torch.manual_seed(0)
    coupled = bd.binary_mlp(64, 12, levels=2)
    coupled.train()
    coupled(randn(256, 64))  # running statistics
    coupled.eval()
    decoupled = bd.decouple(coupled).eval()
    x = randn(300, 64, seed=1)
    assert torch.allclose(decoupled(x), coupled(x), atol=1e-5)
    assert torch.equal(decoupled(x).argmax(1), coupled(x).argmax(1))
    widths = [m.in_features for m in decoupled if isinstance(m, nn.Linear)]
    assert widths == [64, 24, 24, 24]
    assert sum(isinstance(m, bd.Activation) and m.levels == 1 for m in decoupled) == 3


def test_equal_cost_width_matches_the_official_tiny_vgg():
    assert bd.equal_cost_width(64) == 45  # tinyVGG7 64 -> 45
    assert bd.equal_cost_width(128) == 90  # 128 -> 90 (tinyVGG7 90; and 2 * 90 * 90 <= 128 * 128)
    for n in range(2, 300):
        h = bd.equal_cost_width(n)
        assert 2 * h * h <= n * n < 2 * (h + 1) ** 2


# --- gradient mismatch -----------------------------------------------------------------------------------------


def test_cdg_is_the_central_difference_and_the_gradient_of_a_smooth_loss():
    w = torch.tensor([[0.3, -1.2], [2.0, 0.5]])

    def loss(v):
        return (v**3).sum()

    cdg = bd.coordinate_discrete_gradient(loss, w, 0.1, torch.arange(4))
    expected = 3 * w.flatten() ** 2 + 0.1**2  # ((w+e)^3 - (w-e)^3) / 2e = 3w^2 + e^2
    assert torch.allclose(cdg, expected, atol=1e-4)


def test_probe_cdg_equals_the_coordinate_loop():
    w1, x, y, w2 = bd.probe(seed=3, samples=48, hidden=3)
    for levels in (None, 1, 2):
        fast = bd.probe_cdg(w1, x, y, w2, levels, 0.05).flatten()
        slow = bd.coordinate_discrete_gradient(lambda v, n=levels: bd.probe_loss(v, x, y, w2, n), w1, 0.05,
                                               torch.arange(w1.numel()))
        assert torch.allclose(fast, slow, atol=1e-4)


def test_float_probe_has_no_gradient_mismatch_and_binary_has_some():
    assert bd.gradient_cosine(None, 0.01, seed=0, samples=128) > 0.99
    assert bd.gradient_cosine(1, 0.01, seed=0, samples=128) < 0.9


# --- protocol --------------------------------------------------------------------------------------------------


def test_comparison_layer_and_protocol_fit_replace_the_model_in_place():
    wq, iq, act = bd.comparison_layer(1, 1)
    assert isinstance(wq, bd.LayerScaledSign) and iq is None and act.levels == 1
    method = comparison.Method("BinaryDuo", "binaryduo", ((1, 1),), layer=bd.comparison_layer)
    model = comparison.protocol_mlp(method, 1, 1, 64)
    data = comparison.split(comparison.DIGITS)
    small = comparison.Protocol("tiny", "tiny", "", lambda: data, epochs=2, lr=3e-3, batch_size=256)
    record = {}
    out = bd.protocol_fit(model, data, 0, small, record=record)
    assert out is model
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [m.in_features for m in linears] == [64, 180, 180, 180]
    assert abs(record["coupled"] - record["decoupled"]) < 0.01
    assert train.evaluate(model, data.x_test, data.y_test) > 0.5


def test_bad_inputs_raise():
    with pytest.raises(TypeError, match="x"):
        bd.activation(torch.tensor([1, 2]), 2)
    with pytest.raises(ValueError, match="levels"):
        bd.activation(torch.zeros(2), 0)
    with pytest.raises(ValueError, match="x"):
        bd.activation(torch.tensor([float("nan")]), 2)
    with pytest.raises(ValueError, match="w"):
        bd.decouple_weight(torch.zeros(3))
    with pytest.raises(ValueError, match="share K"):
        bd.decoupled_accumulator(torch.zeros(2, 3), torch.zeros(4, 5))
    with pytest.raises(TypeError, match="bn"):
        bd.decouple_batch_norm(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="model"):
        bd.decouple(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="width"):
        bd.equal_cost_width(1)
    with pytest.raises(ValueError, match="eps"):
        bd.coordinate_discrete_gradient(lambda v: v.sum(), torch.zeros(2), 0.0, torch.arange(2))
    with pytest.raises(ValueError):
        bd.comparison_layer(1, 2)
    with pytest.raises(TypeError, match="model"):
        bd.protocol_fit(nn.Linear(2, 2), None, 0, comparison.DIGITS)
