"""DoReFa-Net: quantize_k by hand, the weight/activation/gradient quantizers against a port of the official
code (tensorpack's dorefa.py), straight-through gradients, unbiased stochastic gradients, and the bit-plane
dot product (eq. 3) against the integer one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qteach import bitops, display
from qteach.nn import QuantLinear
from qteach.papers import dorefa_net as dorefa


# ------------------------------------------------------------ a NumPy port of tensorpack's get_dorefa (forward)

def tp_quantize(x, k):
    n = float(2**k - 1)
    return np.round(x * n) / n  # tf.round and np.round both round half to even


def tp_fw(x, bit_w):
    if bit_w == 32:
        return x
    if bit_w == 1:
        e = np.mean(np.abs(x))
        return np.sign(x / e) * e
    x = np.tanh(x)
    x = x / np.max(np.abs(x)) * 0.5 + 0.5
    return 2 * tp_quantize(x, bit_w) - 1


def tp_fa(x, bit_a):
    # alexnet-dorefa.py: activate(x) = fa(nonlin(x)), nonlin = clip_by_value(x, 0, 1) (relu for 32 bits)
    if bit_a == 32:
        return np.maximum(x, 0)
    return tp_quantize(np.clip(x, 0.0, 1.0), bit_a)


def tp_grad_fg(x, bit_g, uniform01):
    """grad_fg with the noise given: tf.random_uniform(minval=-0.5/n, maxval=0.5/n) = (u - 0.5) / n."""
    maxx = np.max(np.abs(x), axis=tuple(range(1, x.ndim)), keepdims=True)
    x = x / maxx
    n = float(2**bit_g - 1)
    x = x * 0.5 + 0.5 + (uniform01 - 0.5) / n
    x = np.clip(x, 0.0, 1.0)
    x = tp_quantize(x, bit_g) - 0.5
    return x * maxx * 2


# ------------------------------------------------------------------------------------------ quantize_k

def test_quantize_k_by_hand():
    r = torch.tensor([0.0, 0.1, 0.2, 0.33, 0.5, 0.7, 1.0])
    # k = 1: round(r) -> 0 or 1; round(0.5) = 0 (half to even)
    assert torch.equal(dorefa.quantize_k(r, 1), torch.tensor([0.0, 0, 0, 0, 0, 1, 1]))
    # k = 2: round(3 r) / 3 = [0, 0.3->0, 0.6->1, 0.99->1, 1.5->2, 2.1->2, 3] / 3
    assert torch.allclose(dorefa.quantize_k(r, 2), torch.tensor([0, 0, 1, 1, 2, 2, 3]) / 3)
    # k = 4: round(15 r) / 15 = [0, 1.5->2, 3, 4.95->5, 7.5->8, 10.5->10, 15] / 15
    assert torch.allclose(dorefa.quantize_k(r, 4), torch.tensor([0, 2, 3, 5, 8, 10, 15]) / 15)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
def test_quantize_k_has_2_to_the_k_levels(k):
    r = torch.linspace(0, 1, 10_001)
    q = dorefa.quantize_k(r, k)
    levels = q.unique()
    assert len(levels) == 2**k
    assert torch.allclose(levels, torch.arange(2**k) / (2**k - 1))
    assert (q - r).abs().max() <= 0.5 / (2**k - 1) + 1e-7


def test_quantize_k_gradient_is_the_identity():
    r = torch.tensor([-0.3, 0.0, 0.2, 0.5, 0.9, 1.4], requires_grad=True)
    upstream = torch.tensor([1.0, -2.0, 3.0, 0.5, -1.0, 4.0])
    dorefa.quantize_k(r, 2).backward(upstream)
    assert torch.equal(r.grad, upstream)  # straight through, even outside [0, 1]


# --------------------------------------------------------------------------------------------- weights

@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 32])
def test_weights_match_the_official_code(k):
    w = torch.randn(16, 9, generator=torch.Generator().manual_seed(k)) * 0.7
    ours = dorefa.quantize_weights(w.double(), k).numpy()
    assert np.allclose(ours, tp_fw(w.double().numpy(), k), atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_tanh_weights_have_2_to_the_k_levels_in_minus_one_one(k):
    w = torch.randn(4000, generator=torch.Generator().manual_seed(0)) * 2
    q = dorefa.quantize_weights(w, k)
    levels = q.unique()
    assert len(levels) == 2**k
    assert torch.allclose(levels, 2 * torch.arange(2**k) / (2**k - 1) - 1, atol=1e-6)
    assert q.min().item() == pytest.approx(-1.0, abs=1e-6) and q.max().item() == pytest.approx(1.0, abs=1e-6)


def test_two_bit_weights_by_hand():
    w = torch.tensor([-2.0, -0.1, 0.0, 0.4, 1.0])
    # tanh: [-0.9640, -0.0997, 0, 0.3799, 0.7616], max |tanh| = 0.9640
    # tanh / (2 max) + 1/2 = [0, 0.4483, 0.5, 0.6970, 0.8950]; times 3 = [0, 1.345, 1.5, 2.091, 2.685]
    # round (half to even) = [0, 1, 2, 2, 3]; 2 q / 3 - 1 = [-1, -1/3, 1/3, 1/3, 1]
    assert torch.allclose(dorefa.quantize_weights(w, 2), torch.tensor([-1.0, -1 / 3, 1 / 3, 1 / 3, 1.0]))


def test_one_bit_weights_by_hand_and_gradient():
    w = torch.tensor([0.5, -1.5, 0.0, 2.0], requires_grad=True)
    q = dorefa.quantize_weights(w, 1)
    # E(|r|) = 4 / 4 = 1; sign(0) = +1 here (TensorFlow's sign(0) = 0 in the official code)
    assert torch.equal(q.detach(), torch.tensor([1.0, -1.0, 1.0, 1.0]))
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0])
    q.backward(upstream)
    assert torch.equal(w.grad, upstream)  # eq. 8: dc/dr_i = dc/dr_o


def test_tanh_weight_gradient_flows_through_tanh_and_max():
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(5, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    dorefa.quantize_weights(w, 3).backward(upstream)
    # the straight-through rule replaces round by the identity: d/dw of 2 (tanh w / (2 max|tanh w|) + 1/2) - 1
    v = w.detach().clone().requires_grad_(True)
    (torch.tanh(v) / torch.tanh(v).abs().max()).backward(upstream)
    assert torch.allclose(w.grad, v.grad)
    # and it differs from Larq's stop-gradient on the max
    u = w.detach().clone().requires_grad_(True)
    (torch.tanh(u) / torch.tanh(u).abs().max().detach()).backward(upstream)
    assert not torch.allclose(w.grad, u.grad)


# ----------------------------------------------------------------------------------------- activations

@pytest.mark.parametrize("k", [1, 2, 4, 32])
def test_activations_match_the_official_code(k):
    x = torch.linspace(-0.5, 1.5, 401, dtype=torch.float64)
    assert np.allclose(dorefa.quantize_activations(x, k).numpy(), tp_fa(x.numpy(), k), atol=1e-12)


def test_activations_match_larq_dorefa():
    # larq.quantizers.DoReFa(k_bit=2): clip_by_value(x, 0, 1), then round(x n) / n with an identity gradient
    x = torch.tensor([-1.0, 0.1, 0.2, 0.5, 0.84, 2.0])
    n = 3
    larq = np.round(np.clip(x.numpy(), 0, 1) * n) / n
    assert np.allclose(dorefa.quantize_activations(x, 2).numpy(), larq)


def test_activation_gradient_is_the_clip_window():
    x = torch.tensor([-0.5, 0.0, 0.3, 1.0, 1.2], requires_grad=True)
    dorefa.quantize_activations(x, 2).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))  # 1[0 <= x <= 1], as Larq's


# ------------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("k", [1, 2, 4, 6])
def test_gradient_quantizer_matches_the_official_code_given_the_noise(k):
    dr = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    ours = dorefa.quantize_gradient(dr, k, generator=torch.Generator().manual_seed(11))
    u = torch.rand(dr.shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64).numpy()
    assert np.allclose(ours.numpy(), tp_grad_fg(dr.numpy(), k, u), atol=1e-12)


def test_gradient_values_lie_on_the_per_sample_grid():
    k, n = 2, 3
    dr = torch.randn(5, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dr[2] *= 100  # one sample with much larger gradients does not coarsen the others: max is per sample
    q = dorefa.quantize_gradient(dr, k, generator=torch.Generator().manual_seed(1))
    m = dr.abs().amax(dim=1, keepdim=True)
    codes = (q / (2 * m) + 0.5) * n  # q = 2 m (i / n - 1/2)  =>  i = n (q / 2m + 1/2)
    assert torch.allclose(codes, codes.round(), atol=1e-9)
    assert codes.round().min() >= 0 and codes.round().max() <= n
    assert (q.abs() <= m + 1e-12).all()


def test_stochastic_gradient_is_unbiased():
    dr = torch.randn(3, 20, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    gen = torch.Generator().manual_seed(6)
    draws = torch.stack([dorefa.quantize_gradient(dr, 2, generator=gen) for _ in range(4000)])
    # one step is 2 max / 3 ~ 1.5; a draw errs by at most a step, so the mean of 4000 draws is within ~0.06
    step = 2 * dr.abs().amax(dim=1, keepdim=True) / 3
    assert ((draws.mean(0) - dr).abs() < 0.1 * step).all()
    # without the noise (deterministic rounding) the bias would be systematic: check it is much larger
    n = 3.0
    m = dr.abs().amax(dim=1, keepdim=True)
    deterministic = 2 * m * (torch.round((dr / (2 * m) + 0.5) * n) / n - 0.5)
    assert (deterministic - dr).abs().mean() > 5 * (draws.mean(0) - dr).abs().mean()


def test_gradient_quantizer_special_cases():
    dr = torch.tensor([[0.0, 0.0], [1.0, -0.5]])
    q = dorefa.quantize_gradient(dr, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(q[0], torch.zeros(2))  # an all-zero sample stays zero (no division by zero)
    assert dorefa.quantize_gradient(dr, 32) is dr
    a = dorefa.quantize_gradient(dr, 3, generator=torch.Generator().manual_seed(2))
    b = dorefa.quantize_gradient(dr, 3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_gradient_quantizer_in_the_backward_pass_only():
    x = torch.randn(4, 7, requires_grad=True)
    y = dorefa.gradient_quantizer(x, 2, torch.Generator().manual_seed(3))
    assert torch.equal(y.detach(), x.detach())
    upstream = torch.randn(4, 7)
    y.backward(upstream)
    assert torch.equal(x.grad, dorefa.quantize_gradient(upstream, 2, torch.Generator().manual_seed(3)))
    module = dorefa.GradientQuantizer(2, seed=3)
    z = x.detach().clone().requires_grad_(True)
    module(z).backward(upstream)
    assert torch.equal(z.grad, x.grad) and module.precision == 2


# ----------------------------------------------------------------------------------- modules in a network

def test_modules_in_a_quantized_layer():
    torch.manual_seed(0)
    layer = QuantLinear(8, 5, bias=False, weight_quantizer=dorefa.WeightQuantizer(2))
    act = dorefa.ActivationQuantizer(2)
    x = torch.rand(3, 8) * 1.5 - 0.2
    a_q = act(x)
    w_q = layer.quantized_weight().detach()
    assert torch.allclose(layer(a_q), a_q @ w_q.T)
    assert layer.weight_quantizer.precision == 2 and act.precision == 2
    layer(a_q).sum().backward()
    assert layer.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- the bit-plane dot product (eq. 3)

def test_eq3_by_hand():
    # x = [3, 1], y = [2, 3] as 2-bit numbers: x . y = 6 + 3 = 9
    # bit planes: x0 = [1, 1], x1 = [1, 0], y0 = [0, 1], y1 = [1, 1]
    # 2^0 popcount(x0 & y0) + 2^1 popcount(x0 & y1) + 2^1 popcount(x1 & y0) + 2^2 popcount(x1 & y1)
    # = 1 * 1 + 2 * 2 + 2 * 0 + 4 * 1 = 9
    x, y = torch.tensor([[3, 1]]), torch.tensor([[2, 3]])
    assert bitops.bitserial_matmul(x, y, 2, 2).item() == 9


@pytest.mark.parametrize("a_bits, w_bits", [(1, 1), (2, 1), (2, 2), (4, 2), (2, 4), (4, 4), (8, 3)])
def test_bitplane_product_equals_the_integer_and_float_products(a_bits, w_bits):
    gen = torch.Generator().manual_seed(a_bits * 10 + w_bits)
    a_q = dorefa.quantize_activations(torch.rand(7, 50, generator=gen, dtype=torch.float64) * 1.4 - 0.2, a_bits)
    w_q = dorefa.quantize_weights(torch.randn(6, 50, generator=gen, dtype=torch.float64), w_bits)
    a_codes = dorefa.activation_codes(a_q, a_bits)
    w_codes, low, step = dorefa.weight_codes(w_q, w_bits)
    assert torch.allclose(w_q, low + step * w_codes.to(torch.float64))
    # eq. 3 on bit planes is exactly the integer dot product
    assert torch.equal(bitops.bitserial_matmul(a_codes, w_codes, a_bits, w_bits), a_codes @ w_codes.T)
    # and the affine correction recovers the float layer
    assert torch.allclose(dorefa.bitplane_linear(a_q, w_q, a_bits, w_bits), a_q @ w_q.T, atol=1e-10)


# ------------------------------------------------------------------------------------------- bad input

def test_bad_input():
    r = torch.rand(4)
    for k in (0, 33):
        with pytest.raises(ValueError, match="k"):
            dorefa.quantize_k(r, k)
    with pytest.raises(TypeError, match="k"):
        dorefa.quantize_weights(r, 2.0)
    with pytest.raises(TypeError, match="r"):
        dorefa.quantize_k(torch.arange(4), 2)
    with pytest.raises(ValueError, match="x"):
        dorefa.quantize_activations(torch.tensor([float("nan")]), 2)
    with pytest.raises(ValueError, match="dr"):
        dorefa.quantize_gradient(torch.tensor(1.0), 2)
    with pytest.raises(TypeError, match="generator"):
        dorefa.quantize_gradient(torch.randn(2, 2), 2, generator=0)
    with pytest.raises(ValueError, match="a_q"):
        dorefa.activation_codes(torch.tensor([0.5]), 2)  # 0.5 is not a multiple of 1/3
    with pytest.raises(ValueError, match="w_q"):
        dorefa.weight_codes(torch.tensor([0.5, -0.2]), 1)
    with pytest.raises(ValueError, match="float"):
        dorefa.weight_codes(torch.tensor([0.5]), 32)
    with pytest.raises(ValueError, match="max"):
        dorefa.quantize_weights(torch.zeros(3), 2)
    assert torch.equal(dorefa.quantize_weights(torch.zeros(3), 1), torch.zeros(3))
    with pytest.raises(ValueError, match="same K"):
        dorefa.bitplane_linear(torch.zeros(2, 3), torch.ones(2, 4), 2, 2)


def test_argument_checks_come_first_and_keep_their_cases():
    """The checks stand before the mechanism (show_source hides them) and raise exactly where they used to."""
    with pytest.raises(ValueError, match="not be empty"):
        dorefa.quantize_weights(torch.zeros(0), 1)
    for k in (2, 4, 31):
        for r in (torch.zeros(0), torch.zeros(2, 3), torch.tensor([-0.0, 0.0])):
            with pytest.raises(ValueError, match="nonzero weight"):
                dorefa.quantize_weights(r, k)
    tiny = torch.tensor([0.0, 1e-45, 0.0])  # a subnormal float32: tanh(r) != 0 where r != 0
    assert torch.allclose(dorefa.quantize_weights(tiny, 2), torch.tensor([1 / 3, 1.0, 1 / 3]))  # 0 -> round(1.5) = 2
    empty = torch.zeros(0)
    assert dorefa.quantize_weights(empty, 32) is empty  # 32 bits: unchanged, even empty
    scalar = torch.tensor(0.25)
    assert dorefa.quantize_gradient(scalar, 32) is scalar  # 32 bits: a 0-d gradient is returned unchanged
    with pytest.raises(ValueError, match="batch dimension"):
        dorefa.quantize_gradient(scalar, 8)
    shown = display.show_source(dorefa.quantize_weights, dorefa.quantize_gradient).text.split("<details>")[0]
    assert "raise" not in shown and shown.count(display.CHECKS_OMITTED) == 2
