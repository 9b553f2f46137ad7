"""Tests of qteach.papers.competitive_bnn_from_scratch against hand-computed values and a transcription of the
official code.

Official code: https://github.com/hpi-xnor/BMXNet-v2 (commit af2b1859e) and
https://github.com/hpi-xnor/BMXNet-v2-examples (commit a5cd3be9d), files cited by path and line.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import bitops
from qteach import nn as qnn
from qteach.papers import competitive_bnn_from_scratch as cb


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def official_det_sign(a):
    """src/operator/mshadow_op.h:318-320: ``if (a < 0) return -1; return 1;``"""
    return torch.where(a < 0, -1.0, 1.0)


def official_gradcancel_backward(out_grad, in_data, threshold):
    """src/operator/contrib/gradient_cancel-inl.h:110:
    ``in_grad = fabs(in_data) <= threshold ? out_grad : 0``"""
    return torch.where(in_data.abs() <= threshold, out_grad, torch.zeros_like(out_grad))


def official_qconv_scaled(x, weight):
    """python/mxnet/gluon/nn/binary_layers.py:223-230 for a dense layer with ``apply_scaling=True``: the product
    with det_sign(weight) (identity gradient, elemwise_unary_op_basic.cc:749), times
    ``weight.abs().mean(axis=0, exclude=True)`` per output channel (line 227), gradient not stopped."""
    quantized = weight + (official_det_sign(weight) - weight).detach()
    h = x @ quantized.T
    scale = weight.abs().mean(dim=1)
    return h * scale


# --- the activation ----------------------------------------------------------------------------------------


def test_qactivation_forward_is_det_sign_with_zero_to_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-8, -1e-8, 3.0])
    assert cb.qactivation(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert torch.equal(cb.qactivation(randn(100)), official_det_sign(randn(100)))


@pytest.mark.parametrize("threshold", [0.1, 0.5, 1.0, 1.3, 3.0])
def test_qactivation_gradient_matches_official_gradcancel(threshold):
    x = torch.cat([randn(200) * 2, torch.tensor([threshold, -threshold, 0.0])]).requires_grad_()
    g = randn(203, seed=1)
    cb.qactivation(x, threshold).backward(g)
    assert torch.equal(x.grad, official_gradcancel_backward(g, x.detach(), threshold))


def test_qactivation_hand_values_and_no_threshold():
    x = torch.tensor([-1.5, -0.7, 0.2, 0.7, 1.2], requires_grad=True)
    cb.qactivation(x, 0.75).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    x.grad = None
    cb.qactivation(x, None).sum().backward()
    assert x.grad.tolist() == [1.0] * 5


def test_default_threshold_is_official_default():
    import inspect
    # binary_layers.py:11 grad_cancel=1.0; gradient_cancel-inl.h:44 set_default(1.0); arg_parser.py:153 default=1.0
    assert inspect.signature(cb.qactivation).parameters["threshold"].default == 1.0
    assert inspect.signature(cb.comparison_layer).parameters["threshold"].default == 1.0


# --- the weights -------------------------------------------------------------------------------------------


def test_binary_weights_hand_values():
    w = torch.tensor([[0.5, -1.5], [0.0, -0.2]])
    assert cb.BinaryWeightQuantizer()(w).tolist() == [[1.0, -1.0], [1.0, -1.0]]
    scaled = cb.BinaryWeightQuantizer(scaling=True)(w)
    assert torch.allclose(scaled, torch.tensor([[1.0, -1.0], [0.1, -0.1]]))


def test_unscaled_weight_gradient_is_identity():
    # elemwise_unary_op_basic.cc:749: _backward_det_sign uses identity_grad (no cancelling on weights)
    w = (randn(5, 7) * 3).requires_grad_()
    g = randn(5, 7, seed=2)
    cb.BinaryWeightQuantizer()(w).backward(g)
    assert torch.equal(w.grad, g)


@pytest.mark.parametrize("stop", [False, True])
def test_scaled_layer_matches_official_qconv(stop):
    x, w = randn(6, 9, seed=3), randn(4, 9, seed=4)
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    ours = x @ cb.BinaryWeightQuantizer(scaling=True, stop_scale_grad=stop)(w1).T
    if stop:  # binary_layers.py:202, 228-229: the xnor approximation stops the scale's gradient
        quantized = w2 + (official_det_sign(w2) - w2).detach()
        ref = (x @ quantized.T) * w2.abs().mean(dim=1).detach()
    else:
        ref = official_qconv_scaled(x, w2)
    assert torch.allclose(ours, ref, atol=1e-6)
    g = randn(6, 4, seed=5)
    ours.backward(g)
    ref.backward(g)
    assert torch.allclose(w1.grad, w2.grad, atol=1e-6)


def test_offset_of_unscaled_layer_is_the_xnor_popcount():
    # binary_layers.py:183 returns (h + n) / 2 with n the fan-in: the number of agreeing signs
    x, w = randn(8, 70, seed=6), randn(5, 70, seed=7)
    layer = qnn.QuantLinear(70, 5, bias=False, weight_quantizer=cb.BinaryWeightQuantizer(),
                            input_quantizer=qnn.SignQuantizer())
    layer.weight.data.copy_(w)
    h = layer(x)
    assert torch.equal(h.round().to(torch.int32), bitops.xnor_matmul(x, w))
    agree = (official_det_sign(x)[:, None, :] == official_det_sign(w)[None, :, :]).sum(-1).float()
    assert torch.equal((h + 70) / 2, agree)


def test_batch_norm_cancels_a_per_channel_scale():
    h, alpha = randn(64, 6, seed=8) * 5, torch.rand(6, generator=torch.Generator().manual_seed(9)) + 0.1
    bn = nn.BatchNorm1d(6).train()
    assert (bn(h * alpha) - bn(h)).abs().max() < 1e-3


# --- blocks and networks -----------------------------------------------------------------------------------


def test_block_shortcuts():
    x = randn(10, 16, seed=10)
    torch.manual_seed(0)
    dense = cb.BinaryBlock(16, 8, "dense")
    out = dense(x)
    assert out.shape == (10, 24) and torch.equal(out[:, :16], x) and dense.out_features == 24
    torch.manual_seed(0)
    none = cb.BinaryBlock(16, 8, "none")
    none.load_state_dict(dense.state_dict())
    assert torch.equal(none(x), out[:, 16:])
    res = cb.BinaryBlock(16, 16, "residual")
    assert torch.allclose(res(x) - x, res.linear(res.bn(x)))
    assert set(res.linear(res.bn(x)).unique().tolist()) - set(range(-16, 17, 2)) == set()


def test_binary_mlp_shapes_and_macs():
    dense = cb.binary_mlp(64, width=64, blocks=4, shortcut="dense")
    assert dense(randn(3, 64)).shape == (3, 10)
    assert cb.binary_macs(dense) == 32 * (64 + 96 + 128 + 160)
    plain = cb.binary_mlp(64, width=64, blocks=4, shortcut="none")
    assert cb.binary_macs(plain) == 4 * 64 * 64
    assert cb.binary_macs(cb.binary_mlp(64, blocks=2, shortcut="residual")) == 2 * 64 * 64
    a, b = cb.binary_mlp(64, seed=3), cb.binary_mlp(64, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_binary_mlp_trains_a_step():
    model = cb.binary_mlp(8, width=8, blocks=2, threshold=None, scaling=True)
    loss = model(randn(16, 8)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_comparison_layer():
    wq, iq, act = cb.comparison_layer(1, 1)
    assert isinstance(wq, cb.BinaryWeightQuantizer) and not wq.scaling
    assert isinstance(iq, qnn.SignQuantizer) and iq.clip == 1.0 and isinstance(act, nn.Identity)
    assert qnn.precision_of(wq) == 1 and qnn.precision_of(iq) == 1
    assert cb.comparison_layer(threshold=None)[1].clip is None


# --- bad input ---------------------------------------------------------------------------------------------


def test_bad_inputs():
    with pytest.raises(TypeError, match="x"):
        cb.qactivation([1.0, 2.0])
    with pytest.raises(TypeError, match="x"):
        cb.qactivation(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="threshold"):
        cb.qactivation(torch.zeros(2), 0.0)
    with pytest.raises(TypeError, match="threshold"):
        cb.qactivation(torch.zeros(2), "1")
    with pytest.raises(TypeError, match="scaling"):
        cb.BinaryWeightQuantizer(scaling=1)
    with pytest.raises(TypeError, match="stop_scale_grad"):
        cb.BinaryWeightQuantizer(stop_scale_grad="yes")
    with pytest.raises(ValueError, match="w"):
        cb.BinaryWeightQuantizer()(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="shortcut"):
        cb.BinaryBlock(4, 4, "skip")
    with pytest.raises(TypeError, match="shortcut"):
        cb.BinaryBlock(4, 4, None)
    with pytest.raises(ValueError, match="growth"):
        cb.BinaryBlock(4, 2, "residual")
    with pytest.raises(ValueError, match="in_features"):
        cb.BinaryBlock(0, 2)
    with pytest.raises(ValueError, match="blocks"):
        cb.binary_mlp(64, blocks=0)
    with pytest.raises(TypeError, match="width"):
        cb.binary_mlp(64, width=3.5)
    with pytest.raises(ValueError, match="num_classes"):
        cb.binary_mlp(64, num_classes=1)
    with pytest.raises(TypeError, match="model"):
        cb.binary_macs("net")
    with pytest.raises(ValueError, match="w_bits"):
        cb.comparison_layer(2, 1)
    with pytest.raises(TypeError, match="a_bits"):
        cb.comparison_layer(1, "1")
