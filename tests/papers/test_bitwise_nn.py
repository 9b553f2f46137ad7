"""Bitwise Neural Networks (Kim & Smaragdis, 2015): eq. 1-3, weight compression, noisy backpropagation, and
bitwise (XNOR-popcount) inference equal to the floating-point simulation."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import bitops
from qteach.papers import bitwise_nn as bw


# ----------------------------------------------------------------------------------------------------------------
# binary input features
# ----------------------------------------------------------------------------------------------------------------


def test_input_bit_planes_two_bits_hand_values():
    x = torch.tensor([[0.0, 1 / 3, 2 / 3, 1.0]])
    # round(3x) = 0, 1, 2, 3 = (00, 01, 10, 11), most significant bit first, 1 -> +1, 0 -> -1
    expected = torch.tensor([[-1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0]])
    assert torch.equal(bw.input_bit_planes(x, bits=2), expected)


def test_input_bit_planes_one_bit_is_a_threshold_at_one_half():
    x = torch.tensor([[0.25, 0.5, 0.5001, 0.75, 1.0]])
    # round(x): 0, 0 (half to even), 1, 1, 1
    assert torch.equal(bw.input_bit_planes(x, bits=1), torch.tensor([[-1.0, -1.0, 1.0, 1.0, 1.0]]))


def test_input_bit_planes_recover_the_quantized_value():
    x = torch.rand(50, 7, generator=torch.Generator().manual_seed(0))
    planes = bw.input_bit_planes(x, bits=4).reshape(50, 7, 4)
    bits01 = (planes + 1) / 2
    value = (bits01 * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(-1)
    assert torch.equal(value, torch.round(x * 15))


# ----------------------------------------------------------------------------------------------------------------
# eq. 1-3: the bipolar feed-forward pass
# ----------------------------------------------------------------------------------------------------------------


def test_xnor_on_bits_is_multiplication_on_bipolar_values():
    # XNOR truth table on {0, 1}, with 0 <-> -1 and 1 <-> +1
    for a in (0, 1):
        for b in (0, 1):
            xnor = int(a == b)
            assert 2 * xnor - 1 == (2 * a - 1) * (2 * b - 1)


def test_bitwise_linear_hand_example():
    layer = bw.BitwiseLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, 0.7, -0.1], [-0.5, -0.5, 0.9]]))  # signs [[1, 1, -1], [-1, -1, 1]]
        layer.bias.copy_(torch.tensor([-0.3, 0.0]))  # signs [-1, +1]
    x = torch.tensor([[0.3, -2.0, 0.0]])  # sign -> [1, -1, 1]
    # a_0 = -1 + (1*1 + (-1)*1 + 1*(-1)) = -2 ;  a_1 = 1 + (1*(-1) + (-1)*(-1) + 1*1) = 2
    assert torch.equal(layer(x), torch.tensor([[-2.0, 2.0]]))


def test_bitwise_forward_equals_the_float_simulation():
    torch.manual_seed(0)
    model = bw.BitwiseMLP(70, (37, 19), 10)  # 70 inputs: not a multiple of 8 or 64
    z = torch.where(torch.rand(64, 70) < 0.5, -1.0, 1.0)
    bitwise = bw.bitwise_forward(model, z)
    simulated = model.preactivations(z).detach()
    assert bitwise.dtype == torch.int32
    assert torch.equal(bitwise.to(torch.float32), simulated)
    assert torch.equal(bitwise.argmax(1), model(z).argmax(1))


def test_bitwise_forward_with_sparse_weights_equals_the_float_simulation():
    torch.manual_seed(1)
    model = bw.BitwiseMLP(33, (20,), 4, sparsity=0.3)
    z = torch.where(torch.rand(16, 33) < 0.5, -1.0, 1.0)
    assert torch.equal(bw.bitwise_forward(model, z).to(torch.float32), model.preactivations(z).detach())


def test_bitwise_forward_against_a_hand_loop():
    torch.manual_seed(2)
    model = bw.BitwiseMLP(9, (5,), 3)
    z = torch.where(torch.rand(4, 9) < 0.5, -1.0, 1.0)
    w1, b1 = [torch.where(t >= 0, 1, -1) for t in (model.layers[0].weight, model.layers[0].bias)]
    w2, b2 = [torch.where(t >= 0, 1, -1) for t in (model.layers[1].weight, model.layers[1].bias)]
    out = torch.zeros(4, 3, dtype=torch.int64)
    for n in range(4):
        h = [1 if b1[i] + sum(int(w1[i, j]) * int(z[n, j]) for j in range(9)) >= 0 else -1 for i in range(5)]
        for i in range(3):
            out[n, i] = b2[i] + sum(int(w2[i, j]) * h[j] for j in range(5))
    assert torch.equal(bw.bitwise_forward(model, z).to(torch.int64), out)


def test_ternary_xnor_matmul_equals_the_float_product():
    g = torch.Generator().manual_seed(0)
    z = torch.where(torch.rand(6, 13, generator=g) < 0.5, -1.0, 1.0)
    t = torch.randint(-1, 2, (5, 13), generator=g).to(torch.float32)
    assert torch.equal(bw.ternary_xnor_matmul(z, t), (z @ t.T).to(torch.int32))
    # a single XNOR product would count each zero weight as +1
    assert not torch.equal(bitops.xnor_matmul(z, t), (z @ t.T).to(torch.int32))


# ----------------------------------------------------------------------------------------------------------------
# stage 1: weight compression
# ----------------------------------------------------------------------------------------------------------------


def test_compressed_linear_hand_value():
    layer = bw.CompressedLinear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.0]]))
        layer.bias.copy_(torch.tensor([0.2]))
    # tanh(0.2) + tanh(0.5) * 1 + tanh(-1) * (-1) = 0.19737532 + 0.46211716 + 0.76159416 = 1.42108664
    assert math.isclose(layer(torch.tensor([[1.0, -1.0]])).item(), 1.42108664, rel_tol=1e-6)


def test_compressed_weights_are_bounded_and_sign_preserving():
    w = torch.tensor([-30.0, -0.2, 0.0, 0.4, 25.0])
    c = bw.compress(w)
    assert torch.all(c.abs() <= 1) and torch.equal(torch.sign(c), torch.sign(w))


def test_stage_two_is_initialised_from_stage_one():
    torch.manual_seed(0)
    stage1 = bw.CompressedMLP(12, (8,), 3)
    stage2 = bw.BitwiseMLP.from_compressed(stage1)
    for new, old in zip(stage2.layers, stage1.layers):
        assert torch.allclose(new.weight, torch.tanh(old.weight))
        assert torch.equal(new.weight_quantizer(new.weight), torch.where(old.weight >= 0, 1.0, -1.0))
    assert stage2.output_scale == stage1.output_scale == 1 / math.sqrt(8)


# ----------------------------------------------------------------------------------------------------------------
# stage 2: noisy backpropagation
# ----------------------------------------------------------------------------------------------------------------


def test_noisy_backprop_gradients():
    # a^2 = b^2 + W2b sign(a^1), a^1 = b^1 + W1b x, loss = sum(a^2).
    # Errors go back through the *binary* weights with no derivative of sign (identity straight-through):
    # dW2 = 1 (x) sign(a^1) summed over samples,  delta^1 = W2b^T 1,  dW1 = delta^1 (x) x
    torch.manual_seed(3)
    model = bw.BitwiseMLP(6, (4,), 3)
    x = torch.where(torch.rand(5, 6) < 0.5, -1.0, 1.0)
    model.preactivations(x).sum().backward()
    w1b = torch.where(model.layers[0].weight >= 0, 1.0, -1.0)
    w2b = torch.where(model.layers[1].weight >= 0, 1.0, -1.0)
    b1b = torch.where(model.layers[0].bias >= 0, 1.0, -1.0)
    h = torch.where(x @ w1b.T + b1b >= 0, 1.0, -1.0)
    delta2 = torch.ones(5, 3)
    delta1 = delta2 @ w2b
    assert torch.equal(model.layers[1].weight.grad, delta2.T @ h)
    assert torch.equal(model.layers[1].bias.grad, delta2.sum(0))
    assert torch.equal(model.layers[0].weight.grad, delta1.T @ x)
    assert torch.equal(model.layers[0].bias.grad, delta1.sum(0))


# ----------------------------------------------------------------------------------------------------------------
# sparsity
# ----------------------------------------------------------------------------------------------------------------


def test_sparse_sign_hand_values():
    w = torch.tensor([-0.9, -0.1, 0.05, 0.3, 0.0, -0.4])
    assert torch.equal(bw.sparse_sign(w, 0.0), torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0, -1.0]))
    # |w| sorted: 0, .05, .1, .3, .4, .9 ; the 0.5-quantile interpolates (.1 + .3) / 2 = .2 = beta
    assert torch.equal(bw.sparse_sign(w, 0.5), torch.tensor([-1.0, 0.0, 0.0, 1.0, 0.0, -1.0]))


def test_sparse_quantizer_precision_and_zero_fraction():
    assert bw.BitwiseQuantizer(0.0).precision == 1 and bw.BitwiseQuantizer(0.25).precision == 2
    w = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert (bw.sparse_sign(w, 0.25) == 0).float().mean().item() == pytest.approx(0.25, abs=0.002)


# ----------------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(ValueError, match="x"):
        bw.input_bit_planes(torch.tensor([[1.5]]))
    with pytest.raises(ValueError, match="x"):
        bw.input_bit_planes(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="bits"):
        bw.input_bit_planes(torch.tensor([[0.5]]), bits=0)
    with pytest.raises(TypeError, match="x"):
        bw.input_bit_planes(torch.tensor([[1]]))
    with pytest.raises(ValueError, match="sparsity"):
        bw.sparse_sign(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="sparsity"):
        bw.BitwiseMLP(4, (3,), 2, sparsity=-0.1)
    with pytest.raises(TypeError, match="model"):
        bw.bitwise_forward(bw.CompressedMLP(4, (3,), 2), torch.ones(1, 4))
    with pytest.raises(ValueError, match="z"):
        bw.bitwise_forward(bw.BitwiseMLP(4, (3,), 2), torch.ones(4))
    with pytest.raises(ValueError, match="t"):
        bw.ternary_xnor_matmul(torch.ones(2, 3), torch.full((2, 3), 0.5))
    with pytest.raises(TypeError, match="stage1"):
        bw.BitwiseMLP.from_compressed(bw.BitwiseMLP(4, (3,), 2))


def test_quantizer_checks_sparsity_before_building_itself():
    from qteach import display

    shown = display.show_source(bw.BitwiseQuantizer).text.split("<details>")[0]
    assert "raise" not in shown and "validates" not in shown and shown.count(display.CHECKS_OMITTED) == 1
    assert bw.BitwiseQuantizer(0.25).precision == 2 and bw.BitwiseQuantizer().precision == 1
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="sparsity"):
            bw.BitwiseQuantizer(bad)
        with pytest.raises(ValueError, match="sparsity"):
            bw.sparse_sign(torch.ones(3), bad)
