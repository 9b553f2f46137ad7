"""Tests of qteach.nn: quantized layers, the min/max fake quantizer, batch-norm folding and the summary."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qteach import quant
from qteach import nn as qnn


def random_x(*shape, seed=0, spread=1.0):
    return spread * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def reference_sign(w):
    """sign with sign(0) = +1, written independently of qteach.binary."""
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


# ------------------------------------------------------------------------------------ quantized layers


def test_quant_linear_without_quantizers_equals_nn_linear():
    torch.manual_seed(0)
    layer = qnn.QuantLinear(7, 5)
    reference = nn.Linear(7, 5)
    reference.load_state_dict(layer.state_dict())
    x = random_x(4, 7)
    assert torch.equal(layer(x), reference(x))


@pytest.mark.parametrize("stride, padding, bias", [(1, 0, True), (2, 1, False)])
def test_quant_conv2d_without_quantizers_equals_nn_conv2d(stride, padding, bias):
    torch.manual_seed(0)
    layer = qnn.QuantConv2d(3, 4, 3, stride=stride, padding=padding, bias=bias)
    reference = nn.Conv2d(3, 4, 3, stride=stride, padding=padding, bias=bias)
    reference.load_state_dict(layer.state_dict())
    x = random_x(2, 3, 9, 9)
    assert torch.equal(layer(x), reference(x))


def test_quant_linear_with_sign_weights_equals_f_linear_with_sign():
    layer = qnn.QuantLinear(6, 4, weight_quantizer=qnn.SignQuantizer())
    x = random_x(3, 6, seed=1)
    expected = F.linear(x, reference_sign(layer.weight.detach()), layer.bias.detach())
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)


def test_quant_conv2d_with_sign_weights_equals_f_conv2d_with_sign():
    layer = qnn.QuantConv2d(2, 3, 3, padding=1, weight_quantizer=qnn.SignQuantizer())
    x = random_x(2, 2, 5, 5, seed=2)
    expected = F.conv2d(x, reference_sign(layer.weight.detach()), layer.bias.detach(), padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-5)


def test_grouped_quant_conv2d_equals_f_conv2d_with_groups():
    layer = qnn.QuantConv2d(4, 4, (1, 5), padding=(0, 2), groups=4, weight_quantizer=qnn.SignQuantizer(),
                            input_quantizer=qnn.SignQuantizer())  # depth-wise, as in binary MobileNets
    x = random_x(2, 4, 1, 9, seed=5)
    expected = F.conv2d(reference_sign(x), reference_sign(layer.weight.detach()), layer.bias.detach(),
                        padding=(0, 2), groups=4)
    assert layer.weight.shape == (4, 1, 1, 5)
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-5)


def test_quant_linear_with_sign_input_quantizer():
    layer = qnn.QuantLinear(6, 4, weight_quantizer=qnn.SignQuantizer(), input_quantizer=qnn.SignQuantizer())
    x = random_x(3, 6, seed=3)
    expected = F.linear(reference_sign(x), reference_sign(layer.weight.detach()), layer.bias.detach())
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)


def test_latent_weight_stays_float_and_receives_ste_gradient():
    layer = qnn.QuantLinear(4, 3, bias=False, weight_quantizer=qnn.SignQuantizer(clip=1.0))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -1.5, 0.9, -0.2],
                                         [2.0, 0.1, -0.7, 1.0],
                                         [-0.4, 0.6, -3.0, 0.05]]))
    latent = layer.weight.detach().clone()
    x = random_x(5, 4, seed=4)
    layer(x).sum().backward()
    assert layer.weight.dtype == torch.float32
    assert torch.equal(layer.weight.detach(), latent)  # the forward pass did not overwrite the latent weight
    # d(sum(x @ sign(W).T))/d sign(W) = column sums of x, for every output row; STE masks |W| > 1
    expected = x.sum(dim=0).expand(3, 4) * (latent.abs() <= 1)
    torch.testing.assert_close(layer.weight.grad, expected)
    assert (layer.weight.grad == 0).any() and (layer.weight.grad != 0).any()


def test_sign_quantizer_precision_and_clip():
    quantizer = qnn.SignQuantizer(clip=0.5)
    assert quantizer.precision == 1
    x = torch.tensor([-0.6, -0.5, 0.0, 0.7], requires_grad=True)
    y = quantizer(x)
    y.sum().backward()
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0]
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_quantized_weight_is_what_forward_uses():
    layer = qnn.QuantLinear(3, 2, weight_quantizer=qnn.SignQuantizer())
    assert torch.equal(layer.quantized_weight(), reference_sign(layer.weight.detach()))
    plain = qnn.QuantLinear(3, 2)
    assert plain.quantized_weight() is plain.weight


# ---------------------------------------------------------------------------------- MinMaxFakeQuantizer


@pytest.mark.parametrize("bits, signed, symmetric", [(8, False, False), (4, True, False), (3, True, True)])
def test_min_max_fake_quantizer_per_tensor(bits, signed, symmetric):
    x = random_x(64, seed=5)
    quantizer = qnn.MinMaxFakeQuantizer(bits, signed, symmetric)
    scale, zero_point = quant.qparams(x.min(), x.max(), bits, signed, symmetric)
    assert torch.equal(quantizer(x), quant.fake_quantize(x, scale, zero_point, bits, signed))
    assert quantizer.precision == bits


@pytest.mark.parametrize("axis", [0, 1])
def test_min_max_fake_quantizer_per_channel(axis):
    x = random_x(4, 5, seed=6)
    quantizer = qnn.MinMaxFakeQuantizer(4, axis=axis)
    other = 1 - axis
    scale, zero_point = quant.qparams(x.amin(dim=other), x.amax(dim=other), 4)
    assert torch.equal(quantizer(x), quant.fake_quantize(x, scale, zero_point, 4, axis=axis))


def test_min_max_fake_quantizer_passes_gradient():
    x = random_x(32, seed=7).requires_grad_(True)
    qnn.MinMaxFakeQuantizer(4)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # the range is the data's own, so nothing clips


def _batch(lo: float, hi: float) -> torch.Tensor:
    return torch.tensor([lo, 0.25 * lo + 0.75 * hi, hi, 0.5 * (lo + hi)])


def test_min_max_fake_quantizer_ema_in_train_mode():
    quantizer = qnn.MinMaxFakeQuantizer(8, momentum=0.1).train()
    quantizer(_batch(-1.0, 2.0))  # the first batch initialises the range
    assert quantizer.running_min.item() == pytest.approx(-1.0)
    assert quantizer.running_max.item() == pytest.approx(2.0)
    second = _batch(-3.0, 4.0)
    out = quantizer(second)
    # lerp: running + 0.1 * (batch - running)
    assert quantizer.running_min.item() == pytest.approx(-1.0 + 0.1 * (-3.0 + 1.0))  # -1.2
    assert quantizer.running_max.item() == pytest.approx(2.0 + 0.1 * (4.0 - 2.0))   # 2.2
    # the output uses the updated running range
    scale, zero_point = quant.qparams(torch.tensor(-1.2), torch.tensor(2.2))
    torch.testing.assert_close(out, quant.fake_quantize(second, scale, zero_point), rtol=0, atol=1e-6)


def test_min_max_fake_quantizer_frozen_in_eval_mode():
    quantizer = qnn.MinMaxFakeQuantizer(8, momentum=0.5).train()
    quantizer(_batch(-1.0, 2.0))
    quantizer.eval()
    x = _batch(-10.0, 10.0)
    out = quantizer(x)
    assert quantizer.running_min.item() == pytest.approx(-1.0)
    assert quantizer.running_max.item() == pytest.approx(2.0)
    scale, zero_point = quant.qparams(torch.tensor(-1.0), torch.tensor(2.0))
    assert torch.equal(out, quant.fake_quantize(x, scale, zero_point))
    assert float(out.max()) == pytest.approx(2.0, abs=float(scale))  # 10.0 saturates at the frozen max


def test_min_max_fake_quantizer_state_dict_round_trip():
    """A trained quantizer's running range can be saved and loaded into a fresh one (checkpoints)."""
    trained = qnn.MinMaxFakeQuantizer(8, momentum=0.1).train()
    trained(_batch(-1.0, 2.0))
    fresh = qnn.MinMaxFakeQuantizer(8, momentum=0.1)
    fresh.load_state_dict(trained.state_dict())
    fresh.eval()
    x = _batch(-5.0, 5.0)
    assert torch.equal(fresh(x), trained.eval()(x))


# -------------------------------------------------------------------------------------- fold_batch_norm


def randomised_bn(bn: nn.modules.batchnorm._BatchNorm, seed: int):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        c = bn.num_features
        bn.running_mean.copy_(torch.randn(c, generator=generator))
        bn.running_var.copy_(torch.rand(c, generator=generator) * 2 + 0.1)
        if bn.affine:
            bn.weight.copy_(torch.randn(c, generator=generator))
            bn.bias.copy_(torch.randn(c, generator=generator))
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_batch_norm_linear(bias, affine):
    torch.manual_seed(1)
    layer = nn.Linear(6, 5, bias=bias)
    bn = randomised_bn(nn.BatchNorm1d(5, affine=affine), seed=2)
    weight, folded_bias = qnn.fold_batch_norm(layer.weight, layer.bias, bn)
    x = random_x(8, 6, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(F.linear(x, weight, folded_bias), bn(layer(x)), rtol=0, atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batch_norm_conv2d(bias):
    torch.manual_seed(4)
    layer = nn.Conv2d(3, 4, 3, padding=1, bias=bias)
    bn = randomised_bn(nn.BatchNorm2d(4, eps=1e-3), seed=5)
    weight, folded_bias = qnn.fold_batch_norm(layer.weight, layer.bias, bn)
    x = random_x(2, 3, 6, 6, seed=6)
    with torch.no_grad():
        expected = bn(layer(x))
        torch.testing.assert_close(F.conv2d(x, weight, folded_bias, padding=1), expected, rtol=0, atol=1e-5)


def test_fold_batch_norm_hand_computed():
    bn = nn.BatchNorm1d(1, eps=0.0).eval()
    with torch.no_grad():
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(4.0)
        bn.weight.fill_(3.0)
        bn.bias.fill_(0.5)
    weight, bias = qnn.fold_batch_norm(torch.tensor([[2.0, -4.0]]), torch.tensor([5.0]), bn)
    # factor = 3 / sqrt(4) = 1.5; W = 1.5 W; b = 0.5 + 1.5 * (5 - 1) = 6.5
    assert weight.tolist() == [[3.0, -6.0]]
    assert bias.tolist() == [6.5]


# ------------------------------------------------------------------------------------------------ summary


def binary_net():
    """conv (32-bit input, 1-bit weights) -> BN -> linear (1-bit input, 1-bit weights) -> linear (8-bit in)."""
    return nn.Sequential(
        qnn.QuantConv2d(1, 4, 3, weight_quantizer=qnn.SignQuantizer()),           # 8x8 -> 6x6
        nn.BatchNorm2d(4),
        nn.Flatten(),
        qnn.QuantLinear(144, 10, weight_quantizer=qnn.SignQuantizer(), input_quantizer=qnn.SignQuantizer()),
        qnn.QuantLinear(10, 3, bias=False, weight_quantizer=qnn.SignQuantizer(),
                        input_quantizer=qnn.MinMaxFakeQuantizer(8)),
    )


def test_summary_parameter_counts_by_bits():
    s = qnn.summary(binary_net(), (1, 8, 8))
    one_bit = 36 + 1440 + 30               # conv weight 4*1*3*3, linear weights 10*144 and 3*10
    float_params = 4 + 8 + 10              # conv bias, BN gamma+beta, linear bias
    assert s.params_by_bits == {1: one_bit, 32: float_params}
    assert s.total_params == one_bit + float_params


def test_summary_memory_kb():
    s = qnn.summary(binary_net(), (1, 8, 8))
    bits = 1506 * 1 + 22 * 32
    assert s.memory_kb == pytest.approx(bits / (8 * 1024))
    assert s.float32_memory_kb == pytest.approx(1528 * 32 / (8 * 1024))
    assert s.compression == pytest.approx(1528 * 32 / bits)


def test_summary_macs_and_binary_ops():
    s = qnn.summary(binary_net(), (1, 8, 8))
    conv_macs = 36 * 36       # 36 weights x 6*6 output positions, 32-bit input -> 32-bit MACs
    linear_binary = 1440      # 1-bit input and 1-bit weights -> binary operations
    linear_8bit = 30          # 8-bit input, 1-bit weights -> 8-bit MACs
    assert s.macs_by_bits == {1: linear_binary, 8: linear_8bit, 32: conv_macs}
    assert s.binary_ops == linear_binary


def test_summary_conv_macs_with_stride_and_padding():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1))  # 9x9 -> 5x5
    s = qnn.summary(model, (3, 9, 9))
    assert s.macs_by_bits == {32: 8 * 3 * 9 * 25}
    assert s.binary_ops == 0
    assert s.layers[0].output_shape == (8, 5, 5)


def test_summary_one_bit_weights_with_float_input_are_not_binary_ops():
    model = nn.Sequential(qnn.QuantLinear(4, 2, weight_quantizer=qnn.SignQuantizer()))
    s = qnn.summary(model, (4,))
    assert s.binary_ops == 0
    assert s.macs_by_bits == {32: 8}


@pytest.mark.parametrize("training", [True, False])
def test_summary_restores_mode(training):
    model = binary_net().train(training)
    qnn.summary(model, (1, 8, 8))
    assert all(m.training == training for m in model.modules())


def test_summary_str_and_html():
    s = qnn.summary(binary_net(), (1, 8, 8))
    text = str(s)
    assert "Total params: 1,528" in text and "binary ops: 1,440" in text
    assert repr(s) == text  # Jupyter's text/plain is the readable summary, not a dataclass dump
    html = s._repr_html_()
    assert "qteach-table" in html and ">Layer</th>" in html and "Total params: 1,528" in html


def test_summary_of_parameterless_model():
    s = qnn.summary(nn.Sequential(nn.ReLU()), (3,))
    assert s.total_params == 0 and s.memory_kb == 0
    str(s)
    s._repr_html_()


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(in_features=0, out_features=2), ValueError, "in_features"),
    (dict(in_features=2, out_features=0), ValueError, "out_features"),
    (dict(in_features=2.0, out_features=2), TypeError, "in_features"),
    (dict(in_features=2, out_features=2, weight_quantizer="sign"), TypeError, "weight_quantizer"),
    (dict(in_features=2, out_features=2, input_quantizer=1), TypeError, "input_quantizer"),
    (dict(in_features=2, out_features=2, bias="no"), TypeError, "bias"),
])
def test_quant_linear_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        qnn.QuantLinear(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(in_channels=0, out_channels=2, kernel_size=3), ValueError, "in_channels"),
    (dict(in_channels=2, out_channels=-1, kernel_size=3), ValueError, "out_channels"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, weight_quantizer=1.0), TypeError, "weight_quantizer"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, input_quantizer="x"), TypeError, "input_quantizer"),
    (dict(in_channels=2, out_channels=2, kernel_size=0), ValueError, "kernel_size"),
    (dict(in_channels=2, out_channels=2, kernel_size=2.5), TypeError, "kernel_size"),
    (dict(in_channels=2, out_channels=2, kernel_size=(3, 3, 3)), ValueError, "kernel_size"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, stride=0), ValueError, "stride"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, stride=1.5), TypeError, "stride"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding=-1), ValueError, "padding"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding="full"), ValueError, "padding"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, bias=1), TypeError, "bias"),
    (dict(in_channels=4, out_channels=6, kernel_size=3, groups=4), ValueError, "groups"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, groups=0), ValueError, "groups"),
    (dict(in_channels=2, out_channels=2, kernel_size=3, groups=1.0), TypeError, "groups"),
])
def test_quant_conv2d_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        qnn.QuantConv2d(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(bits=0), ValueError, "bits"),
    (dict(bits=33), ValueError, "bits"),
    (dict(bits=4.0), TypeError, "bits"),
    (dict(signed=1), TypeError, "signed"),
    (dict(symmetric="no"), TypeError, "symmetric"),
    (dict(axis=1.0), TypeError, "axis"),
    (dict(momentum=0.0), ValueError, "momentum"),
    (dict(momentum=1.5), ValueError, "momentum"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(momentum=float("nan")), ValueError, "momentum"),
    (dict(momentum="0.1"), TypeError, "momentum"),
])
def test_min_max_fake_quantizer_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        qnn.MinMaxFakeQuantizer(**kwargs)


def test_min_max_fake_quantizer_rejects_integer_input():
    with pytest.raises(TypeError, match=r"\bx\b"):
        qnn.MinMaxFakeQuantizer(8)(torch.arange(4))


@pytest.mark.parametrize("x", [torch.tensor([0.5, float("nan")]), torch.tensor([0.5, float("inf")]),
                               torch.tensor([-float("inf"), 0.5]), torch.zeros(0), torch.zeros(2, 0)])
@pytest.mark.parametrize("kwargs", [dict(), dict(axis=0), dict(momentum=0.1)])
def test_min_max_fake_quantizer_rejects_x_without_a_finite_range(x, kwargs):
    with pytest.raises(ValueError, match=r"\bx\b"):
        qnn.MinMaxFakeQuantizer(8, **kwargs)(x)


@pytest.mark.parametrize("axis, x", [(2, torch.ones(3, 4)), (-3, torch.ones(3, 4)), (0, torch.tensor(1.0))])
def test_min_max_fake_quantizer_axis_out_of_range(axis, x):
    with pytest.raises(ValueError, match="axis"):
        qnn.MinMaxFakeQuantizer(8, axis=axis)(x)


def test_min_max_fake_quantizer_frozen_range_saturates_infinity_and_rejects_nan():
    q = qnn.MinMaxFakeQuantizer(8, momentum=0.5)
    q(torch.tensor([-1.0, 1.0]))
    q.eval()
    out = q(torch.tensor([float("inf"), -float("inf"), 0.0]))
    assert out[0] == q(torch.tensor([100.0]))[0] and out[1] == q(torch.tensor([-100.0]))[0]  # the range ends
    with pytest.raises(ValueError, match=r"\bx\b"):
        q(torch.tensor([float("nan")]))


@pytest.mark.parametrize("clip, error", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                         ("1", TypeError), (True, TypeError)])
def test_sign_quantizer_bad_clip(clip, error):
    with pytest.raises(error, match="clip"):
        qnn.SignQuantizer(clip)


def test_sign_quantizer_rejects_nan_input():
    with pytest.raises(ValueError, match=r"\bx\b.*NaN"):
        qnn.SignQuantizer()(torch.tensor([0.5, float("nan")]))


@pytest.mark.parametrize("x, error", [
    (torch.ones(4, 5), ValueError),                     # wrong number of features
    (torch.tensor(1.0), ValueError),                    # 0-d
    (torch.ones(4, 3, dtype=torch.int64), TypeError),   # not floating point
    ([[1.0, 2.0, 3.0]], TypeError),                     # not a tensor
])
def test_quant_linear_bad_x(x, error):
    layer = qnn.QuantLinear(3, 2, weight_quantizer=qnn.SignQuantizer(), input_quantizer=qnn.SignQuantizer())
    with pytest.raises(error, match=r"\bx\b"):
        layer(x)


@pytest.mark.parametrize("x, error", [
    (torch.ones(1, 2, 5, 5), ValueError),               # wrong number of channels
    (torch.ones(3, 25), ValueError),                    # 2-D
    (torch.ones(1, 3, 2, 5), ValueError),               # smaller than the 3x3 kernel
    (torch.ones(1, 3, 5, 5, dtype=torch.int64), TypeError),
])
def test_quant_conv2d_bad_x(x, error):
    with pytest.raises(error, match=r"\bx\b"):
        qnn.QuantConv2d(3, 2, 3, weight_quantizer=qnn.SignQuantizer())(x)


def test_quant_conv2d_input_as_small_as_the_padded_kernel():
    assert qnn.QuantConv2d(3, 2, 3, padding=1)(torch.ones(1, 3, 1, 1)).shape == (1, 2, 1, 1)
    assert qnn.QuantConv2d(3, 2, 3, padding="same")(torch.ones(3, 1, 1)).shape == (2, 1, 1)


@pytest.mark.parametrize("precision, error", [("1", TypeError), (1.5, TypeError), (0, ValueError)])
def test_precision_of_bad_precision(precision, error):
    quantizer = qnn.SignQuantizer()
    quantizer.precision = precision
    with pytest.raises(error, match="precision"):
        qnn.precision_of(quantizer)


@pytest.mark.parametrize("weight, bias, bn, error, name", [
    ([[1.0]], None, nn.BatchNorm1d(1), TypeError, "weight"),
    (torch.ones(2, 3), [1.0, 1.0], nn.BatchNorm1d(2), TypeError, "bias"),
    (torch.ones(2, 3), None, nn.LayerNorm(3), TypeError, "bn"),
    (torch.ones(2, 3), None, nn.BatchNorm1d(2, track_running_stats=False), ValueError, "bn"),
    (torch.ones(3, 3), None, nn.BatchNorm1d(2), ValueError, "weight"),
    (torch.ones(2, 3), torch.ones(3), nn.BatchNorm1d(2), ValueError, "bias"),   # bias length != channels
    (torch.ones(4, 3), torch.ones(1), nn.BatchNorm1d(4), ValueError, "bias"),   # would broadcast silently
    (torch.tensor(1.0), None, nn.BatchNorm1d(1), ValueError, "weight"),          # 0-d weight
    (torch.tensor([[float("nan")]]), None, nn.BatchNorm1d(1), ValueError, "weight"),
    (torch.ones(1, 2), torch.tensor([float("inf")]), nn.BatchNorm1d(1), ValueError, "bias"),
])
def test_fold_batch_norm_bad_input(weight, bias, bn, error, name):
    with pytest.raises(error, match=name):
        qnn.fold_batch_norm(weight, bias, bn.eval())


@pytest.mark.parametrize("statistic, value", [("running_var", -1.0), ("running_var", float("nan")),
                                              ("running_mean", float("inf")), ("weight", float("nan")),
                                              ("bias", float("inf"))])
def test_fold_batch_norm_rejects_bad_statistics(statistic, value):
    bn = nn.BatchNorm1d(2).eval()
    with torch.no_grad():
        getattr(bn, statistic)[0] = value
    with pytest.raises(ValueError, match=f"bn.{statistic}"):
        qnn.fold_batch_norm(torch.ones(2, 3), None, bn)


@pytest.mark.parametrize("model, shape, error, name", [
    ("model", (4,), TypeError, "model"),
    (nn.Linear(4, 2), 4, ValueError, "input_shape"),
    (nn.Linear(4, 2), (0,), ValueError, "input_shape"),
    (nn.Linear(4, 2), (4.0,), ValueError, "input_shape"),
    (nn.Linear(4, 2), (True,), ValueError, "input_shape"),
    (nn.Linear(4, 2), (5,), ValueError, "input_shape"),                                      # does not fit
    (qnn.QuantConv2d(1, 2, 3), (2, 8, 8), ValueError, "input_shape"),
])
def test_summary_bad_input(model, shape, error, name):
    with pytest.raises(error, match=name):
        qnn.summary(model, shape)


@pytest.mark.parametrize("kernel_size", [3, (1, 5), (3, 1), 7])
def test_same_padding_keeps_the_size_of_a_feature_map(kernel_size):
    conv = torch.nn.Conv2d(2, 2, kernel_size, padding=qnn.same_padding(kernel_size))
    assert conv(torch.randn(1, 2, 9, 11)).shape == (1, 2, 9, 11)


def test_same_padding_rejects_a_bad_kernel_size():
    with pytest.raises(ValueError, match="kernel_size"):
        qnn.same_padding((3, 0))
    with pytest.raises(TypeError, match="kernel_size"):
        qnn.same_padding("3")


def test_freeze_quantized_weights_computes_what_the_model_computes():
    from qteach import deploy

    model = deploy.binary_cnn(channels=(4, 8), seed=1)
    model.train()
    frozen = qnn.freeze_quantized_weights(model)
    assert model.training and not frozen.training  # the original is left as it was
    x = torch.rand(5, 1, 8, 8)
    model.eval()
    with torch.no_grad():
        assert torch.equal(frozen(x), model(x))
    for original, copy_ in zip(model, frozen):
        if isinstance(original, (qnn.QuantLinear, qnn.QuantConv2d)):
            assert copy_.weight_quantizer is None and original.weight_quantizer is not None
            assert torch.equal(copy_.weight, original.quantized_weight())
            assert copy_.input_quantizer is not None


def test_freeze_quantized_weights_rejects_non_modules():
    with pytest.raises(TypeError, match="model"):
        qnn.freeze_quantized_weights("not a model")
