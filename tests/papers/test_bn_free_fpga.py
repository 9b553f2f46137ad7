"""BN-free binarized network (Yonekawa and Nakahara, 2017): hand-computed biases, exactness, memory budget."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach.papers import bn_free_fpga as bf


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# --- the folded bias, worked out by hand -------------------------------------------------------------------

def test_bias_positive_gamma_by_hand():
    # gamma 2, beta 1, mean 3, var 3, eps 1: sqrt(var + eps) = 2, y = 2 (x - 3) / 2 + 1 = x - 2 >= 0 <=> x >= 2.
    # b' = beta * 2 / gamma - mean = 1 - 3 = -2, so B = -2 and sign(x - 2) is the neuron.
    flip, bias = bf.bn_free_bias(t(2.0), t(1.0), t(3.0), t(3.0), eps=1.0)
    assert flip.tolist() == [1] and bias.tolist() == [-2]
    assert flip.dtype == bias.dtype == torch.int64


def test_bias_negative_gamma_by_hand():
    # gamma -2 (same beta, mean, var): y = -(x - 3) + 1 = 4 - x >= 0 <=> x <= 4 <=> -x + 4 >= 0.
    # b' = 1 * 2 / (-2) - 3 = -4; flip -1, B = floor(-b') = 4.
    flip, bias = bf.bn_free_bias(t(-2.0), t(1.0), t(3.0), t(3.0), eps=1.0)
    assert flip.tolist() == [-1] and bias.tolist() == [4]


def test_bias_floor_of_a_fraction():
    # gamma 1, beta 0.5, mean 0, var 0, eps 1: y = x + 0.5 >= 0 <=> x >= 0 for integers: B = floor(0.5) = 0.
    # Rounding to nearest would give 0 too, so also check beta 0.7: floor(0.7) = 0 (round would give 1,
    # which would wrongly fire for x = -1: -1 + 0.7 < 0).
    for beta, expected in ((0.5, 0), (0.7, 0), (-0.3, -1), (-1.0, -1)):
        _, bias = bf.bn_free_bias(t(1.0), t(beta), t(0.0), t(0.0), eps=1.0)
        assert bias.tolist() == [expected], beta


def test_bias_with_accumulator_scale():
    # pixels 0..16 with x = p / 16: y = p / 16 - 0.5 >= 0 <=> p >= 8. b' = (0 - 0.5) * 16 = -8.
    _, bias = bf.bn_free_bias(t(1.0), t(0.0), t(0.5), t(0.0), eps=1.0, acc_scale=1 / 16)
    assert bias.tolist() == [-8]


def test_zero_gamma_is_a_constant_and_needs_the_bound():
    gamma, beta = t(0.0, 0.0), t(-1.0, 0.3)
    with pytest.raises(ValueError, match="acc_bound"):
        bf.bn_free_bias(gamma, beta, t(0.0, 0.0), t(1.0, 1.0))
    flip, bias = bf.bn_free_bias(gamma, beta, t(0.0, 0.0), t(1.0, 1.0), acc_bound=10)
    assert bias.tolist() == [-11, 10]                       # always -1, always +1 for x in [-10, 10]
    x = torch.arange(-10, 11)[:, None].expand(-1, 2)
    out = bf.bn_free_sign(x * flip, bias)
    assert (out[:, 0] == -1).all() and (out[:, 1] == 1).all()


def test_clamping_keeps_outputs_and_bounds_the_bits():
    # b' = 1000 would need 11 bits; with |x| <= 8 the sign is always +1, and B = 8 does the same in 5 bits.
    flip, bias = bf.bn_free_bias(t(1.0), t(1000.0), t(0.0), t(0.0), eps=1.0, acc_bound=8)
    assert bias.tolist() == [8]
    assert bf.integer_bias_bits(8) == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bias_is_exact_for_every_integer_accumulator(seed):
    g = torch.Generator().manual_seed(seed)
    c, bound = 64, 40
    gamma = torch.randn(c, generator=g, dtype=torch.float64)
    beta, mean = torch.randn(c, generator=g, dtype=torch.float64), 10 * torch.randn(c, generator=g, dtype=torch.float64)
    var = torch.rand(c, generator=g, dtype=torch.float64) * 20
    acc = torch.arange(-bound, bound + 1)[:, None].expand(-1, c)
    reference = bf.bn_sign_reference(acc, gamma, beta, mean, var)
    flip, bias = bf.bn_free_bias(gamma, beta, mean, var, acc_bound=bound)
    assert torch.equal(bf.bn_free_sign(acc * flip, bias).double(), reference)


def test_matches_torch_batchnorm_then_sign():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(32).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(32))
        bn.bias.copy_(torch.randn(32))
        bn.running_mean.copy_(5 * torch.randn(32) + 0.25)
        bn.running_var.copy_(torch.rand(32) * 9 + 0.1)
    acc = torch.arange(-30, 31)[:, None].expand(-1, 32)
    with torch.no_grad():
        expected = torch.where(bn(acc.float()) >= 0, 1, -1)
    flip, bias = bf.fold_bn_sign(bn, acc_bound=30)
    assert torch.equal(bf.bn_free_sign(acc * flip, bias), expected)


@pytest.mark.parametrize("acc_scale", [1.0, 1 / 16])
def test_module_bias_is_exact_at_float32_ties(acc_scale):
    # integer means (in units of acc_scale) and beta = 0 put the tie exactly on an accumulator value, where float32
    # BN rounds to a tiny +- value: fold_bn_sign follows the module's own float32 arithmetic (deploy.fold_threshold)
    g = torch.Generator().manual_seed(1)
    bn = nn.BatchNorm1d(200).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(200, generator=g))
        bn.running_mean.copy_(torch.randint(-20, 20, (200,), generator=g).float() * acc_scale)
        bn.running_var.copy_(torch.rand(200, generator=g) * 10)
    acc = torch.arange(-30, 31)[:, None].expand(-1, 200)
    with torch.no_grad():
        expected = torch.where(bn(acc.float() * acc_scale) >= 0, 1, -1)
    flip, bias = bf.fold_bn_sign(bn, acc_scale=acc_scale, acc_bound=30)
    assert torch.equal(bf.bn_free_sign(acc * flip, bias), expected)


def test_integer_bias_bits_by_hand():
    # two's complement with b bits holds [-2**(b-1), 2**(b-1) - 1]; we need [-M-1, M]
    assert [bf.integer_bias_bits(m) for m in (1, 63, 64, 576, 6885)] == [2, 7, 8, 11, 14]


# --- the integer network is exactly the float network -------------------------------------------------------

def _random_bnn(seed=0, hidden=24):
    torch.manual_seed(seed)
    model = bf.bnn_mlp(12, hidden, 5, layers=2)
    with torch.no_grad():
        for module in model:
            if isinstance(module, nn.BatchNorm1d):
                module.weight.copy_(torch.randn(hidden))          # some gamma < 0: rows get flipped
                module.bias.copy_(torch.randn(hidden))
                module.running_mean.copy_(3 * torch.randn(hidden))
                module.running_var.copy_(torch.rand(hidden) * 5 + 0.5)
    return model.eval()


def test_integer_network_equals_float_network():
    model = _random_bnn()
    net = bf.BNFreeBNN.from_sequential(model, input_scale=1 / 16, input_max=16)
    x_int = torch.randint(0, 17, (300, 12))
    scores, activations = net(x_int)
    with torch.no_grad():
        x = x_int.float() / 16
        assert torch.equal(scores.float(), model(x))
        assert torch.equal(activations[0].float(), model[:3](x))
        assert torch.equal(activations[1].float(), model[:6](x))
    assert scores.dtype == torch.int64
    assert all(not b.is_floating_point() for b in net.biases())


def test_integer_network_rejects_bad_input():
    net = bf.BNFreeBNN.from_sequential(_random_bnn(), input_scale=1 / 16, input_max=16)
    with pytest.raises(TypeError, match="x_int"):
        net(torch.rand(3, 12))
    with pytest.raises(ValueError, match="x_int"):
        net(torch.full((3, 12), 17))
    with pytest.raises(ValueError, match="x_int"):
        net(torch.zeros(3, 11, dtype=torch.int64))
    with pytest.raises(ValueError, match="QuantLinear"):
        bf.BNFreeBNN.from_sequential(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(),
                                                   nn.Linear(3, 2)), 1.0, 1)
    with pytest.raises(TypeError, match="model"):
        bf.BNFreeBNN.from_sequential(nn.Linear(3, 3), 1.0, 1)


# --- memory budget -----------------------------------------------------------------------------------------

def test_layer_memory_by_hand():
    layer = bf.LayerShape("fc", fan_in=64, channels=128, positions=1, acc_bound=64)
    assert bf.layer_memory_bits(layer, norm="batchnorm") == {"weights": 8192, "norm": 16384, "total": 24576}
    assert bf.layer_memory_bits(layer, norm="bn_free") == {"weights": 8192, "norm": 1024, "total": 9216}
    assert bf.layer_memory_bits(layer, weight_bits=32, norm="none")["total"] == 32 * 8192
    scores = bf.LayerShape("out", 128, 10, 1, 128, binarized_output=False)
    assert bf.layer_memory_bits(scores)["norm"] == 0


def test_vgg16_counts():
    layers = bf.vgg16_layers()
    assert len(layers) == 16 and sum(1 for l in layers if l.name.startswith("conv")) == 13
    conv = sum(l.fan_in * l.channels for l in layers if l.name.startswith("conv"))
    fc = sum(l.fan_in * l.channels for l in layers if l.name.startswith("fc"))
    assert conv == 14_710_464                  # VGG-16's 14,714,688 conv parameters minus its 4,224 biases
    assert conv + fc == 138_344_128            # VGG-16's 138,357,544 parameters minus its 13,416 biases
    assert layers[0].acc_bound == 27 * 255 and layers[1].acc_bound == 9 * 64
    assert layers[0].positions == 224 * 224 and layers[-4].positions == 14 * 14
    cifar = bf.vgg16_layers(input_size=32, num_classes=10, fc_width=512)
    assert cifar[13].fan_in == 512 and cifar[-1].channels == 10


def test_budget_bad_input():
    with pytest.raises(ValueError, match="input_size"):
        bf.vgg16_layers(input_size=100)
    with pytest.raises(ValueError, match="norm"):
        bf.layer_memory_bits(bf.LayerShape("x", 1, 1, 1, 1), norm="layernorm")
    with pytest.raises(TypeError, match="layer"):
        bf.layer_memory_bits((1, 1, 1, 1))
    with pytest.raises(ValueError, match="acc_bound"):
        bf.integer_bias_bits(0)


def test_bad_bn_parameters():
    with pytest.raises(TypeError, match="gamma"):
        bf.bn_free_bias(torch.tensor([1]), t(0.0), t(0.0), t(1.0))
    with pytest.raises(ValueError, match="same shape"):
        bf.bn_free_bias(t(1.0, 2.0), t(0.0), t(0.0), t(1.0))
    with pytest.raises(ValueError, match="var"):
        bf.bn_free_bias(t(1.0), t(0.0), t(0.0), t(-1.0))
    with pytest.raises(ValueError, match="beta"):
        bf.bn_free_bias(t(1.0), t(float("nan")), t(0.0), t(1.0))
    with pytest.raises(TypeError, match="bn"):
        bf.fold_bn_sign(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="integer"):
        bf.bn_free_sign(torch.zeros(2, 3), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="acc"):
        bf.bn_sign_reference(torch.zeros(2, 4), t(1.0), t(0.0), t(0.0), t(1.0))
