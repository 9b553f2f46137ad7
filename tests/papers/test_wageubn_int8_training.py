"""WAGEUBN's quantizers against hand-computed values and a line-by-line transcription of the official TensorFlow
code (https://github.com/yang-yk/wageubn, Quantize.py and BatchNorm.py, commit a5aac44), written in PyTorch here."""

from __future__ import annotations

import pytest
import torch

from qteach import nn as qnn
from qteach.papers import wageubn_int8_training as w

# --- the official code, transcribed (tf.round -> torch.round: both round half to even) ------------------------


def official_Q(x, bits):  # Quantize.py lines 16-23
    n = 2.0 ** (bits - 1)
    return torch.round(x * n) / n


def official_clip(x, bits):  # Quantize.py lines 25-35
    delta = 0.0 if bits >= 32 else 1.0 / 2.0 ** (bits - 1)
    return torch.clamp(x, -1 + delta, 1 - delta)


def official_Shift(x):  # Quantize.py lines 37-38
    return 2 ** torch.round(torch.log(x) / torch.log(torch.tensor(2.0)))


def official_fw(x, bits=8):  # Quantize.py lines 43-49
    return official_clip(official_Q(x, bits), bits)


def official_fe1(dy, bits=8):  # Quantize.py lines 152-161
    dymax_shift = official_Shift(dy.abs().max())
    return dymax_shift * torch.clamp(official_Q(dy / dymax_shift, bits), -1, 1)


def official_fe2(dy, bits=8):  # Quantize.py lines 167-191
    dymax_shift = official_Shift(dy.abs().max())
    dymax_s = dymax_shift / (2 ** (bits - 1))
    dy_s = dy / dymax_s
    sign = torch.sign(dy_s)
    dy_s = dy_s.abs()
    zero = torch.zeros_like(dy_s)
    dy_s1 = torch.where(dy_s < 1, dy_s, zero)
    dy_s2 = torch.where(dy_s >= 1, dy_s, zero)
    dy_s1 = sign * torch.clamp(official_Q(dy_s1, bits), -1, 1)
    dy_s2 = sign * torch.clamp(torch.round(dy_s2), -2 ** (bits - 1) + 1, 2 ** (bits - 1) - 1)
    return dymax_s * (dy_s1 + dy_s2)


def official_fg(x, rand_float, bits=8, lr=1.0, g_scale=128.0):  # Quantize.py lines 114-133 (bitsR = 32)
    x = x / official_Shift(x.abs().max())
    norm = g_scale * x  # Q(LR * x, 32) is the identity in float32
    norm_sign, norm_abs = torch.sign(norm), norm.abs()
    norm_int = torch.floor(norm_abs)
    norm_float = norm_abs - norm_int
    norm = norm_sign * (norm_int + 0.5 * (torch.sign(norm_float - rand_float) + 1))
    norm = torch.clamp(norm, -g_scale + 1, g_scale - 1)
    return official_Q(lr * norm / (128 * 2.0 ** (bits - 1)), 15)


def official_bn(x, mean, variance, offset, scale, epsilon=2.0 ** -15):  # BatchNorm.py lines 13-31
    mean = official_Q(mean, 16)
    std = official_Q(variance.sqrt(), 16) + epsilon
    x = official_Q((x - mean) / std, 8)
    return x * official_Q(scale, 8) + official_Q(offset, 8)


def awkward_tensors():
    gen = torch.Generator().manual_seed(0)
    yield torch.randn(7, 13, generator=gen) * 1e-3
    yield torch.randn(300, generator=gen)
    yield torch.randn(5, 3, 2, generator=gen) * 37.0
    heavy = torch.randn(64, 9, generator=gen) / torch.rand(64, 9, generator=gen).clamp_min(0.02)
    yield heavy * 1e-5
    yield torch.tensor([0.0, 1e-9, -3.0])  # a zero, a value far below one unit
    yield torch.tensor([[2.5], [-0.75]])  # a peak whose log2 rounds up


# --- hand-computed values ---------------------------------------------------------------------------------------


def test_direct_quantize_by_hand():
    x = torch.tensor([0.3, -0.3, 1.7, 0.01171875, 0.00390625])  # 0.0117 = 1.5/128; 0.0039 = 0.5/128
    # 0.3 * 128 = 38.4 -> 38; 1.7 stays unclipped; 1.5 and 0.5 round half to even (2 and 0)
    assert w.direct_quantize(x, 8).tolist() == [38 / 128, -38 / 128, 218 / 128, 2 / 128, 0.0]


def test_weight_quantize_clips_to_the_symmetric_range():
    x = torch.tensor([2.0, -2.0, 0.5, 0.999])
    assert w.weight_quantize(x, 8).tolist() == [127 / 128, -127 / 128, 0.5, 127 / 128]
    assert w.weight_quantize(torch.tensor([0.6, -0.9]), 2).tolist() == [0.5, -0.5]


def test_shift_is_the_nearest_power_of_two_in_log_domain():
    assert w.shift(torch.tensor([1.0, 3.0, 0.3, 1.4, 1.5, 6e-4])).tolist() == [1, 4, 0.25, 1, 2, 2.0 ** -11]


def test_shift_quantize_by_hand():
    e = torch.tensor([3.0, -0.5, 0.01])  # s = 4: 3/4 -> 96/128, -0.5/4 -> -16/128, 0.0025 * 128 = 0.32 -> 0
    assert w.shift_quantize(e, 8).tolist() == [3.0, -0.5, 0.0]
    e = torch.tensor([5.5, 1.0])  # s = 4: 5.5 / 4 = 1.375 is clipped to 1
    assert w.shift_quantize(e, 8).tolist() == [4.0, 1.0]


def test_flag_quantize_keeps_values_below_one_unit():
    e = torch.tensor([3.0, -0.5, 0.01])  # unit = 4 / 128 = 1/32; 0.01 * 32 = 0.32 < 1 -> Q(0.32, 8) = 41/128
    out = w.flag_quantize(e, 8)
    assert out.tolist() == [3.0, -0.5, (41 / 128) / 32]
    assert w.shift_quantize(e, 8)[2] == 0  # the plain shift quantizer loses it
    # the integer grid is clipped at 127 units: 5.5 is 176 units of 1/32
    assert w.flag_quantize(torch.tensor([5.5]), 8).tolist() == [127 / 32]


def test_constant_quantize_by_hand_and_scale_free():
    g = torch.tensor([0.75, -0.25, 0.0])  # Sh(0.75) = 1: 128 * g = 96, -32, 0: integers, no randomness
    assert w.constant_quantize(g, 8).tolist() == [96 / 16384, -32 / 16384, 0.0]
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(50, generator=gen)
    a = w.constant_quantize(x, 8, generator=torch.Generator().manual_seed(1))
    b = w.constant_quantize(x * 2.0 ** 10, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # scaling by a power of two does not change G
    assert a.abs().max() <= 127 / 16384


def test_constant_quantize_is_unbiased():
    g = torch.full((20000,), 0.3) * torch.tensor([1.0] + [1.0] * 19999)
    g[0] = 0.9  # Sh(0.9) = 1: 128 * 0.3 = 38.4 -> 38 or 39, mean 38.4
    q = w.constant_quantize(g, 8, generator=torch.Generator().manual_seed(0))[1:] * 16384
    assert set(q.unique().tolist()) == {38.0, 39.0}
    assert abs(q.mean().item() - 38.4) < 0.02


# --- against the official code ------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", list(awkward_tensors()))
def test_forward_quantizers_match_official_code(x):
    assert torch.equal(w.weight_quantize(x, 8), official_fw(x))
    assert torch.equal(w.direct_quantize(x, 8), official_Q(x, 8))


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("e", list(awkward_tensors()))
def test_error_quantizers_match_official_code(e, bits):
    assert torch.equal(w.shift_quantize(e, bits), official_fe1(e, bits))
    assert torch.equal(w.flag_quantize(e, bits), official_fe2(e, bits))


@pytest.mark.parametrize("g", [t for t in awkward_tensors() if t.abs().max() > 0])
def test_constant_quantize_matches_official_code(g):
    gen = torch.Generator().manual_seed(5)
    ours = w.constant_quantize(g, 8, generator=gen)
    rand_float = torch.rand(g.shape, generator=torch.Generator().manual_seed(5))
    # the code rounds up where rand < frac (sign(frac - rand) = 1); equal draws have probability zero
    assert torch.equal(ours, official_fg(g, rand_float))


def test_batch_norm_matches_official_code():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(32, 6, generator=gen) * 3 + 1
    bn = w.QuantBatchNorm1d(6)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(6, generator=gen) + 0.5)
        bn.bias.copy_(torch.randn(6, generator=gen) * 0.1)
    out = bn(x)
    expected = official_bn(x, x.mean(0), x.var(0, unbiased=False), bn.bias.detach(), bn.weight.detach())
    assert torch.allclose(out, expected, atol=1e-6)
    bn.eval()
    expected = official_bn(x, bn.running_mean, bn.running_var, bn.bias.detach(), bn.weight.detach())
    assert torch.allclose(bn(x), expected, atol=1e-6)


# --- the training plumbing ----------------------------------------------------------------------------------------


def test_error_quantizers_act_in_backward_only():
    model = w.wageubn_mlp(("E",), in_features=8, hidden=16)
    layer = next(m for m in model if isinstance(m, qnn.QuantLinear))
    captured = {}
    layer.register_full_backward_hook(lambda m, gi, go: captured.update(go=go[0].clone(), gi=gi[0].clone()))
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    plain = w.wageubn_mlp((), in_features=8, hidden=16)
    plain.load_state_dict(model.state_dict())
    assert torch.equal(model(x), plain(x))  # forward unchanged
    model(x).sum().backward()
    g = captured["gi"]
    assert torch.equal(w.shift_quantize(g, 8), g)  # the input's error is on the shift grid


def test_all_parts_train_and_every_path_is_quantized():
    torch.manual_seed(0)
    model = w.wageubn_mlp(w.PARTS, in_features=8, hidden=16)
    assert sum(isinstance(m, w.QuantBatchNorm1d) for m in model) == 2
    opt = w.make_optimizer(model, w.PARTS, lr=0.5, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(32, 8), torch.randint(0, 10, (32,))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for m in model:
        if isinstance(m, (qnn.QuantLinear, w.QuantBatchNorm1d)):
            for p in ([m.weight] if isinstance(m, qnn.QuantLinear) else m.parameters()):  # the bias stays float
                assert torch.equal(w.direct_quantize(p.detach(), 24), p.detach())  # U: 24-bit stored weights
            if isinstance(m, qnn.QuantLinear):
                wq = m.quantized_weight().detach()
                assert torch.equal(w.weight_quantize(wq, 8), wq)


def test_optimizer_without_quantization_is_momentum_sgd():
    torch.manual_seed(1)
    a = w.wageubn_mlp((), in_features=8, hidden=16)
    b = w.wageubn_mlp((), in_features=8, hidden=16)
    b.load_state_dict(a.state_dict())
    opt_a = w.make_optimizer(a, (), lr=0.1, momentum=0.25)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.25)
    x, y = torch.randn(16, 8), torch.randint(0, 10, (16,))
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_comparison_layer_and_protocol_fit():
    from qteach import comparison

    method = comparison.Method("WAGEUBN", "wageubn_int8_training", ((8, 8),), layer=w.comparison_layer,
                               fit=w.protocol_fit)
    model = comparison.protocol_mlp(method, 8, 8, 64)
    data = comparison.split(comparison.DIGITS)
    small = type(data)(data.x_train[:256], data.y_train[:256], data.x_test[:64], data.y_test[:64])
    protocol = comparison.dataclasses.replace(comparison.DIGITS, epochs=1)
    w.protocol_fit(model, small, 0, protocol)
    assert sum(isinstance(m, w.QuantBatchNorm1d) for m in model) == 2
    with pytest.raises(ValueError, match="w_bits"):
        w.comparison_layer(4, 8)


# --- bad input ------------------------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(TypeError, match="x"):
        w.direct_quantize([1.0], 8)
    with pytest.raises(ValueError, match="bits"):
        w.direct_quantize(torch.ones(2), 0)
    with pytest.raises(ValueError, match="x"):
        w.shift(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="e"):
        w.shift_quantize(torch.ones(0), 8)
    with pytest.raises(ValueError, match="mode"):
        w.error_quantize(torch.ones(2), "round", 8)
    with pytest.raises(ValueError, match="g_scale"):
        w.constant_quantize(torch.ones(2), 8, g_scale=-1)
    with pytest.raises(TypeError, match="generator"):
        w.constant_quantize(torch.ones(2), 8, generator=3)
    with pytest.raises(ValueError, match="parts"):
        w.wageubn_mlp(("W", "X"))
    with pytest.raises(TypeError, match="parts"):
        w.wageubn_mlp("W")
    with pytest.raises(ValueError, match="momentum"):
        w.make_optimizer(w.wageubn_mlp(()), (), momentum=1.5)
    with pytest.raises(ValueError, match="model"):
        w.install_wageubn(torch.nn.Sequential(torch.nn.Linear(2, 2)))
