"""Tests of qteach.papers.integer_arithmetic_only: the paper's equations (Jacob et al., CVPR 2018) by hand, and
the integer-only layers against PyTorch's own quantized modules (torch.ao.nn.quantized, fbgemm and x86)."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops, data, quant, train
from qteach.papers import integer_arithmetic_only as iao


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------- eq. 1-11 by hand


def test_eq1_affine_scheme_zero_is_exact():
    scale, zero = quant.qparams(-1.0, 3.0)            # S = 4 / 255, Z = round(255 / 4) = 64
    assert math.isclose(float(scale), 4 / 255, rel_tol=1e-6) and int(zero) == 64
    q = quant.quantize(torch.tensor([0.0, -1.0, 3.0]), scale, zero)
    assert q.tolist() == [64, 0, 255]
    assert quant.dequantize(q, scale, zero)[0].item() == 0.0   # r = S (q - Z): real 0 is the code Z


def test_eq7_equals_eq4_hand_computed():
    # one row, N = 3: sum_j (q1 - Z1)(q2 - Z2) with Z1 = 2 (activations) and Z2 = 1 (weights)
    q_x, q_w = torch.tensor([[3, 0, 5]]), torch.tensor([[1, 4, 2]])
    # (3-2)(1-1) + (0-2)(4-1) + (5-2)(2-1) = 0 - 6 + 3 = -3
    assert iao.zero_point_accumulate_naive(q_x, 2, q_w, 1).item() == -3
    # eq. 7: N Z1 Z2 - Z_w a_x - Z_x a_w + sum q q = 3*2*1 - 1*8 - 2*7 + (3 + 0 + 10) = 6 - 8 - 14 + 13 = -3
    assert iao.zero_point_accumulate(q_x, 2, q_w, 1).item() == -3


def test_eq7_equals_eq4_on_random_codes():
    q_x = torch.randint(0, 256, (7, 50), generator=gen(0))
    q_w = torch.randint(-127, 128, (5, 50), generator=gen(1))
    for z_x, z_w in ((0, 0), (128, 0), (17, -3)):
        fast = iao.zero_point_accumulate(q_x, z_x, q_w, z_w)
        assert fast.dtype == torch.int32
        assert torch.equal(fast, iao.zero_point_accumulate_naive(q_x, z_x, q_w, z_w))


def test_eq5_eq6_multiplier_hand_computed():
    # M = S1 S2 / S3 = 0.5 * 0.25 / 0.3 = 0.41666...: frexp gives 0.8333 * 2^-1, so n = 1 and
    # m0 = round(0.8333... * 2^31) = 1789569707
    m0, shift = iao.output_multiplier(0.5, 0.25, 0.3)
    assert (m0, shift) == (1789569707, -1)
    assert math.isclose(m0 * 2.0 ** (shift - 31), 0.5 * 0.25 / 0.3, rel_tol=2**-30)
    assert 2**30 <= m0 < 2**31   # M0 in [0.5, 1): at least 30 bits of relative accuracy (sec. 2.2)


def test_eq11_bias_hand_computed():
    q = iao.quantize_bias(torch.tensor([0.3, -0.11, 0.0]), 0.1, 0.02)   # S_bias = 0.002
    assert q.dtype == torch.int32 and q.tolist() == [150, -55, 0]


def test_narrow_range_weights_never_take_minus_128():
    w = torch.tensor([-2.0, 1.0, 0.5, 2.0])
    scale, zero = iao.narrow_range_weight_qparams(w)
    assert math.isclose(float(scale), 2 / 127, rel_tol=1e-6) and int(zero) == 0
    q = quant.quantize(w, scale, zero, bits=8, signed=True)
    assert q.tolist() == [-127, 64, 32, 127]   # 63.5 rounds half to even: 64


def test_requantize_output_fused_relu_and_saturation():
    acc = torch.tensor([-1000, 0, 40, 10**6], dtype=torch.int32)
    m0, shift = bitops.quantize_multiplier(0.25)          # M = 0.25 exactly: m0 = 2^30, shift = -1
    assert (m0, shift) == (2**30, -1)
    assert iao.requantize_output(acc, m0, shift, 10).tolist() == [0, 10, 20, 255]
    assert iao.requantize_output(acc, m0, shift, 10, qmin=10).tolist() == [10, 10, 20, 255]  # ReLU: >= Z


def test_double_rounding_of_the_fixed_point_multiplier_hand_computed():
    # M = 1972752227 * 2^-34 = 0.114829...; acc = 13 gives M acc = 1.49278 whose nearest integer is 1. TFLite's
    # rule rounds twice: SaturatingRoundingDoublingHighMul(13, m0) = round(13 m0 / 2^31) = round(11.942) = 12,
    # then RoundingDivideByPOT(12, 3) = 12 / 8 = 1.5, a tie, rounded away from zero: 2.
    acc = torch.tensor([13], dtype=torch.int32)
    assert round(13 * 1972752227 / 2**31) == 12
    assert bitops.requantize(acc, 1972752227, -3).item() == 2
    assert round(13 * 1972752227 / 2**34) == 1


# ------------------------------------------------------------------------------------------- eq. 14 (sec. 3.2)


def test_fold_cnn_equals_the_batch_norm_network_in_eval_mode():
    model = iao.float_cnn(seed=3)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 1, 8, 8, generator=gen(2)) * 2)   # non-trivial running statistics
    model.eval()
    x = torch.rand(16, 1, 8, 8, generator=gen(4))
    with torch.no_grad():
        assert torch.allclose(iao.fold_cnn(model)(x), model(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in iao.fold_cnn(model))


# ------------------------------------------------------------------------ against torch.ao.nn.quantized


def _engines():
    return [e for e in ("fbgemm", "x86") if e in torch.backends.quantized.supported_engines]


def _torch_module(layer, kind, shape):
    """torch.ao.nn.quantized.Linear/Conv2d with exactly our codes, scales and zero points, and the float bias."""
    import torch.ao.nn.quantized as nnq
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qw = torch._make_per_tensor_quantized_tensor(layer.q_weight.to(torch.int8), layer.weight_scale, 0)
    if kind == "linear":
        mod = nnq.Linear(shape[1], shape[0])
    else:
        mod = nnq.Conv2d(shape[1], shape[0], shape[2], stride=layer.stride, padding=layer.padding)
    mod.set_weight_bias(qw, layer.float_bias)
    mod.scale, mod.zero_point = layer.output_scale, layer.output_zero_point
    return mod


def _random_layer(kind, seed):
    g = gen(seed)
    if kind == "linear":
        w, x = torch.randn(13, 40, generator=g) * 0.2, torch.rand(9, 40, generator=g) * 3 - 0.5
    else:
        w, x = torch.randn(6, 4, 3, 3, generator=g) * 0.3, torch.rand(2, 4, 9, 10, generator=g) * 3 - 0.5
    b = torch.randn(w.shape[0], generator=g) * 0.5
    s_in, z_in = quant.qparams(x.min(), x.max(), bits=7)   # reduce_range, as torch's x86/fbgemm observers
    y = F.linear(x, w, b) if kind == "linear" else F.conv2d(x, w, b, stride=1 + seed % 2, padding=seed % 3)
    s_out, z_out = quant.qparams(y.min(), y.max())
    args = (w, b, float(s_in), int(z_in), float(s_out), int(z_out))
    if kind == "linear":
        layer = iao.IntegerLinear(*args)
    else:
        layer = iao.IntegerConv2d(*args, stride=1 + seed % 2, padding=seed % 3)
    layer.float_bias = b
    return layer, quant.quantize(x, s_in, z_in, bits=7), tuple(w.shape)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_integer_layers_within_one_lsb_of_torch_quantized_modules(kind):
    engines = _engines()
    if not engines:
        pytest.skip("neither the fbgemm nor the x86 quantized engine is available on this CPU")
    previous = torch.backends.quantized.engine
    try:
        for engine in engines:
            torch.backends.quantized.engine = engine
            equal = total = 0
            for seed in range(8):
                layer, q_x, shape = _random_layer(kind, seed)
                mod = _torch_module(layer, kind, shape)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    qx_t = torch._make_per_tensor_quantized_tensor(q_x.to(torch.uint8), layer.input_scale,
                                                                    layer.input_zero_point)
                reference = mod(qx_t).int_repr().to(torch.int64)
                ours = layer(q_x)
                assert (ours - reference).abs().max().item() <= 1, engine
                # the whole difference is in the epilogue: FBGEMM's float rule on our int32 accumulator is exact
                fb = iao.fbgemm_requantize(layer.accumulate(q_x), layer.float_bias, layer.input_scale,
                                           layer.weight_scale, layer.output_scale, layer.output_zero_point)
                if engine == "fbgemm":   # x86 may hand a conv to oneDNN, whose epilogue can differ
                    assert torch.equal(fb, reference), engine
                equal += int((ours == reference).sum())
                total += ours.numel()
            assert equal / total > 0.99
    finally:
        torch.backends.quantized.engine = previous


# ---------------------------------------------------------------------------------------- end to end


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # small tensors: one thread is faster than two on a busy CPU
    yield
    torch.set_num_threads(threads)


def test_integer_net_predictions_equal_the_fake_quant_simulation(one_thread):
    split = data.digits()
    model = iao.float_cnn(seed=0)
    train.fit(model, split, epochs=2, lr=1e-2, progress=False)
    model.eval()
    qat = iao.QATNet(iao.fold_cnn(model), bits=8)
    train.fit(qat, split, epochs=1, lr=1e-3, progress=False)
    qat.eval()
    with torch.no_grad():
        simulated = qat(split.x_test)
    net = iao.IntegerNet(qat)
    codes = net.codes(split.x_test)
    assert codes.dtype == torch.int64 and int(codes.min()) >= 0 and int(codes.max()) <= 255
    expected = quant.quantize(simulated, net.output_scale, net.output_zero_point)
    assert (codes - expected).abs().max().item() <= 1
    assert torch.equal(net.predict(split.x_test), simulated.argmax(1))


def test_qat_net_has_ema_ranges_and_narrow_weights():
    qat = iao.QATNet(iao.fold_cnn(iao.float_cnn()), bits=8, momentum=0.1)
    fqs = [m for m in qat.layers if type(m).__name__ == "MinMaxFakeQuantizer"]
    assert len(fqs) == 3 and all(f.momentum == 0.1 for f in fqs)
    qat.train()
    x1, x2 = torch.rand(8, 1, 8, 8, generator=gen(0)), torch.rand(8, 1, 8, 8, generator=gen(1)) * 2
    qat(x1)
    first = fqs[-1].running_max.clone()
    twin = copy.deepcopy(qat)
    with torch.no_grad():
        batch_max = twin.layers[:-1](quant.fake_quantize(x2, qat.input_scale, qat.input_zero_point)).max()
    qat(x2)
    assert torch.allclose(fqs[-1].running_max, 0.9 * first + 0.1 * batch_max, atol=1e-5)   # EMA (sec. 3.1)


# ------------------------------------------------------------------------------------------- bad input


def test_bad_input_raises():
    with pytest.raises(TypeError, match="q_x"):
        iao.zero_point_accumulate(torch.rand(2, 3), 0, torch.ones(2, 3, dtype=torch.int64), 0)
    with pytest.raises(ValueError, match="share N"):
        iao.zero_point_accumulate(torch.ones(2, 3, dtype=torch.int64), 0, torch.ones(2, 4, dtype=torch.int64), 0)
    with pytest.raises(ValueError, match="input_scale"):
        iao.quantize_bias(torch.ones(2), 0.0, 1.0)
    with pytest.raises(TypeError, match="output_scale"):
        iao.output_multiplier(1.0, 1.0, "x")
    with pytest.raises(ValueError, match="qmin"):
        iao.requantize_output(torch.ones(2, dtype=torch.int32), 2**30, 0, 0, qmin=5, qmax=4)
    layer = iao.IntegerLinear(torch.randn(3, 4), None, 0.1, 0, 0.1, 0)
    with pytest.raises(ValueError, match="q_x"):
        layer(torch.full((1, 4), 300))
    with pytest.raises(TypeError, match="qat"):
        iao.IntegerNet(torch.nn.Linear(2, 2))
