"""Tests of qteach.papers.binarized_neural_networks against hand-computed values of BNN's formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qteach import data, deploy, train
from qteach import nn as qnn
from qteach.binary import sign
from qteach.papers import binarized_neural_networks as bnn


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------- sign and its STE


def test_htanh_and_the_ste_it_defines():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    assert bnn.htanh(x).tolist() == [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]
    # g_r = g_q 1_{|r| <= 1}: the gradient of Htanh, used for sign by the layers of bnn_mlp
    quantizer = bnn.bnn_mlp(8, (4,), 2)[2].input_quantizer
    assert isinstance(quantizer, qnn.SignQuantizer) and quantizer.clip == 1.0
    q = quantizer(x)
    assert q.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    q.backward(torch.arange(1.0, 8.0))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


# --------------------------------------------------------------------------------------------------- AP2


def test_ap2_hand_computed():
    x = torch.tensor([3.0, -3.0, 0.3, 0.0, 1.0, 0.75, -6.0, 1.5, 2.0**-10])
    # log2: 1.585 -> 2; 1.585 -> 2; -1.737 -> -2; AP2(0) = 0; 0 -> 0; -0.415 -> 0; 2.585 -> 3; 0.585 -> 1; -10
    assert bnn.ap2(x).tolist() == [4.0, -4.0, 0.25, 0.0, 1.0, 1.0, -8.0, 2.0, 2.0**-10]


def test_ap2_is_a_signed_power_of_two_within_sqrt2():
    x = randn(10_000, seed=1) * 10
    y = bnn.ap2(x)
    assert torch.equal(torch.sign(y), torch.sign(x))
    exponent = torch.log2(y.abs())
    assert torch.equal(exponent, exponent.round())
    ratio = y / x
    assert ratio.min() >= 2**-0.5 - 1e-6 and ratio.max() <= 2**0.5 + 1e-6


# ------------------------------------------------------------------------------------------ shift-based BN


def test_shift_batch_norm_hand_computed():
    x = torch.tensor([[0.0], [1.0], [2.0], [5.0]])
    y, mean, var = bnn.shift_batch_norm(x, torch.ones(1), torch.zeros(1), eps=1e-5)
    # mean 2; C = [-2, -1, 0, 3]; AP2(C) = [-2, -1, 0, 4]; var ~ (4 + 1 + 0 + 12) / 4 = 4.25 (exact: 3.5)
    # 1 / sqrt(4.25) = 0.485 -> AP2 = 0.5; AP2(gamma) = 1; y = C / 2
    assert mean.tolist() == [2.0] and math.isclose(var.item(), 4.25)
    assert y.flatten().tolist() == [-1.0, -0.5, 0.0, 1.5]
    # with gamma = 3 (AP2 = 4) and beta = 0.25
    y, _, _ = bnn.shift_batch_norm(x, torch.tensor([3.0]), torch.tensor([0.25]))
    assert y.flatten().tolist() == [-3.75, -1.75, 0.25, 6.25]


def test_shift_batch_norm_equals_batch_norm_when_everything_is_a_power_of_two():
    x = torch.tensor([[2.0, -1.0], [4.0, 3.0], [2.0, -1.0], [4.0, 3.0]], requires_grad=True)
    gamma, beta = torch.tensor([2.0, 0.5]), torch.tensor([0.5, -1.0])
    y, _, _ = bnn.shift_batch_norm(x, gamma, beta, eps=1e-8)
    # centred values are +-1 and +-2, the variance 1 and 4, their square roots' inverses 1 and 0.5
    reference = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-8)
    assert torch.allclose(y, reference, atol=1e-6)
    g = randn(4, 2, seed=3)
    (grad_shift,) = torch.autograd.grad(y, x, g)
    (grad_bn,) = torch.autograd.grad(reference, x, g)
    assert torch.allclose(grad_shift, grad_bn, atol=1e-5)  # the AP2s are straight-through


@pytest.mark.parametrize("shape", [(64, 5), (16, 5, 3, 3)])
def test_shift_batch_norm_is_batch_norm_times_a_bounded_per_channel_factor(shape):
    # Without beta, SBN(x) = c * BN(x) per channel, with c the product of AP2 errors: 2^(+-1/2) for gamma,
    # 2^(+-1/4) from the variance estimate (a 2^(+-1/2) factor under a square root), 2^(+-1/2) for 1/sigma.
    x = randn(*shape, seed=4) * 3 + 1
    gamma = torch.tensor([0.3, 1.0, 1.7, 2.9, 0.8])
    y, _, _ = bnn.shift_batch_norm(x, gamma, torch.zeros(5))
    reference = F.batch_norm(x, None, None, gamma, torch.zeros(5), training=True)
    dims = (0,) + tuple(range(2, x.dim()))
    factor = (y * reference).sum(dims) / (reference * reference).sum(dims)
    shape1 = (1, 5) + (1,) * (x.dim() - 2)
    assert torch.allclose(y, factor.reshape(shape1) * reference, atol=1e-4)
    assert factor.min() >= 2**-1.25 - 1e-4 and factor.max() <= 2**1.25 + 1e-4


def test_shift_batch_norm_module_train_and_eval():
    layer = bnn.ShiftBatchNorm(3, momentum=0.5)
    x = randn(32, 3, seed=5) * 2 + 1
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, -0.7, 3.0]))
        layer.bias.copy_(torch.tensor([0.0, 0.5, -1.0]))
    y_train = layer(x)
    expected, mean, var = bnn.shift_batch_norm(x, layer.weight, layer.bias)
    assert torch.equal(y_train, expected)
    assert torch.allclose(layer.running_mean, 0.5 * mean) and torch.allclose(layer.running_var, 0.5 + 0.5 * var)
    layer.eval()
    y = layer(x)
    scale = bnn.ap2(layer.weight.detach()) * bnn.ap2(torch.rsqrt(layer.running_var + layer.eps))
    assert torch.allclose(y, scale * (x - layer.running_mean) + layer.bias)
    # scale is a product of (signed) powers of two: one shift per channel
    exponent = torch.log2(scale.abs())
    assert torch.equal(exponent, exponent.round())
    assert layer(randn(2, 3, 4, 4)).shape == (2, 3, 4, 4)


# ----------------------------------------------------------------------------------------- shift-based AdaMax


def test_shift_adamax_first_step_hand_computed():
    p = nn.Parameter(torch.tensor([1.0, -0.5]))
    opt = bnn.ShiftAdaMax([p])  # lr 0.002, betas (0.9, 0.999), eps 2^-27
    p.grad = torch.tensor([0.3, -0.01])
    opt.step()
    # m = 0.1 g = [0.03, -0.001]; v = |g| = [0.3, 0.01]; step = AP2(0.002 / (1 - 0.9)) = AP2(0.02) = 2^-6;
    # AP2(v) = [0.25, 2^-7] (log2 0.01 = -6.64 -> -7); update = 2^-6 * m / (AP2(v) + eps)
    eps = 2**-27
    expected = torch.tensor([1.0 - 2**-6 * 0.03 / (0.25 + eps), -0.5 + 2**-6 * 0.001 / (2**-7 + eps)])
    assert torch.allclose(p.detach(), expected, atol=1e-7)
    assert torch.allclose(opt.state[p]["v"], torch.tensor([0.25 + eps, 2**-7 + eps]))


def test_shift_adamax_without_shifts_is_adamax():
    torch.manual_seed(0)
    a = nn.Parameter(randn(20, seed=6))
    b = nn.Parameter(a.detach().clone())
    target = randn(20, seed=7)
    ours = bnn.ShiftAdaMax([a], lr=0.01, eps=1e-12, shift=False)
    reference = torch.optim.Adamax([b], lr=0.01, eps=1e-12)
    for _ in range(25):
        for p, opt in ((a, ours), (b, reference)):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_shift_adamax_converges_on_a_quadratic():
    p = nn.Parameter(torch.full((10,), 0.9))
    target = torch.linspace(-0.5, 0.5, 10)
    opt = bnn.ShiftAdaMax([p], lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        ((p - target) ** 2).sum().backward()
        opt.step()
    assert (p.detach() - target).abs().max() < 0.05


# ------------------------------------------------------------------------------------------------- first layer


@pytest.mark.parametrize("k,bits", [(64, 8), (7, 8), (9, 3)])
def test_first_layer_on_bit_planes(k, bits):
    q = torch.randint(0, 2**bits, (6, k), generator=torch.Generator().manual_seed(k))
    w = randn(4, k, seed=k)
    expected = q.double() @ sign(w).double().T
    assert torch.equal(bnn.first_layer_dot(q, w, bits), expected)
    assert torch.equal(deploy.bitplane_matmul(q, w, bits).double(), expected)  # the XNOR-popcount version


def test_first_layer_hand_computed():
    # q = [5, 2] = bits (1, 0, 1) and (0, 1, 0); w_b = [+1, -1]
    # planes: n=1 -> [1, 0] . w = 1;  n=2 -> [0, 1] . w = -1;  n=3 -> [1, 0] . w = 1
    # s = 1 * 1 + 2 * (-1) + 4 * 1 = 3 = 5 * 1 + 2 * (-1)
    assert bnn.first_layer_dot(torch.tensor([[5, 2]]), torch.tensor([[0.3, -2.0]]), bits=3).item() == 3.0


# ---------------------------------------------------------------------------------------------------- models


def test_bnn_mlp_layouts():
    model = bnn.bnn_mlp(64, (32, 16), 10, norm="bn")
    reference = deploy.binary_mlp(64, (32, 16), 10)
    assert [type(m) for m in model] == [type(m) for m in reference]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    shift = bnn.bnn_mlp(64, (32, 16), 10, norm="shift")
    assert [type(m) for m in shift][1::2] == [bnn.ShiftBatchNorm] * 3
    assert isinstance(shift[0].input_quantizer, deploy.InputCode)
    assert all(isinstance(m.weight_quantizer, qnn.SignQuantizer) for m in shift[0::2])
    assert shift(torch.rand(5, 64)).shape == (5, 10)
    assert qnn.summary(shift, (64,)).binary_ops == 32 * 16 + 16 * 10
    assert bnn.float_mlp(64, (32,), 10)(torch.rand(5, 64)).shape == (5, 10)


def test_fit_with_shift_adamax_clips_and_learns():
    split = data.digits(flatten=True)
    small = data.Split(split.x_train[:400], split.y_train[:400], split.x_test, split.y_test)
    model = bnn.bnn_mlp(64, (32,), 10, norm="shift")
    history = train.fit(model, small, epochs=2, optimizer=lambda params: bnn.ShiftAdaMax(params, lr=0.01),
                        weight_clip=1.0, progress=False)
    assert len(history.test_accuracy) == 2 and history.test_accuracy[-1] > 0.3
    assert all(m.weight.abs().max() <= 1.0 for m in model if isinstance(m, qnn.QuantLinear))


# ----------------------------------------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(TypeError, match="x"):
        bnn.ap2(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="x"):
        bnn.ap2(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="gamma and beta"):
        bnn.shift_batch_norm(torch.ones(4, 3), torch.ones(2), torch.zeros(3))
    with pytest.raises(ValueError, match="x"):
        bnn.shift_batch_norm(torch.ones(4), torch.ones(4), torch.zeros(4))
    with pytest.raises(ValueError, match="eps"):
        bnn.shift_batch_norm(torch.ones(4, 3), torch.ones(3), torch.zeros(3), eps=0)
    with pytest.raises(ValueError, match="channels"):
        bnn.ShiftBatchNorm(3)(torch.ones(4, 2))
    with pytest.raises(ValueError, match="momentum"):
        bnn.ShiftBatchNorm(3, momentum=2)
    with pytest.raises(ValueError, match="lr"):
        bnn.ShiftAdaMax([nn.Parameter(torch.ones(1))], lr=0)
    with pytest.raises(ValueError, match="betas"):
        bnn.ShiftAdaMax([nn.Parameter(torch.ones(1))], betas=(1.0, 0.5))
    with pytest.raises(TypeError, match="shift"):
        bnn.ShiftAdaMax([nn.Parameter(torch.ones(1))], shift="yes")
    with pytest.raises(ValueError, match="q"):
        bnn.first_layer_dot(torch.tensor([[256, 1]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="q and w"):
        bnn.first_layer_dot(torch.tensor([[1, 1]]), torch.ones(1, 3))
    with pytest.raises(ValueError, match="norm"):
        bnn.bnn_mlp(norm="layer")
    with pytest.raises(TypeError, match="optimizer"):   # an optimizer instance: train.fit wants params -> optimizer
        train.fit(bnn.float_mlp(), data.blobs(num_features=64), optimizer=bnn.ShiftAdaMax(bnn.float_mlp().parameters()))
    with pytest.raises(TypeError, match="data"):
        train.fit(bnn.float_mlp(), None, optimizer=lambda params: torch.optim.SGD(params, lr=0.1))


def test_argument_checks_come_before_the_mechanism():
    from qteach import display

    shown = display.show_source(bnn.shift_batch_norm, bnn.first_layer_dot).text.split("<details>")[0]
    assert "raise" not in shown and shown.count(display.CHECKS_OMITTED) == 2
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="x must be"):  # the shape of x is checked before gamma's
        bnn.shift_batch_norm(torch.randn(4), torch.ones(5), torch.zeros(3))
    with pytest.raises(ValueError, match="gamma and beta"):
        bnn.shift_batch_norm(x, torch.ones(2), torch.zeros(3))
    with pytest.raises(ValueError, match="eps"):
        bnn.shift_batch_norm(x, torch.ones(3), torch.zeros(3), eps=0.0)
    q = torch.randint(0, 256, (2, 5))
    with pytest.raises(ValueError, match="q and w"):
        bnn.first_layer_dot(q, torch.randn(3, 4))
    with pytest.raises(TypeError, match="w"):
        bnn.first_layer_dot(q, torch.ones(3, 5, dtype=torch.int64))
    with pytest.raises(ValueError):  # codes out of range are q's error, before w is looked at
        bnn.first_layer_dot(q + 256, "not a tensor")
