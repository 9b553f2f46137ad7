"""Tests of qteach.binary: sign with sign(0) = +1, its surrogate gradients, and the L1 scaling factor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qteach import binary

POINTS = [-1.5, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0]


def random_x(*shape, seed=0, spread=2.0):
    return spread * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def input_gradient(function, x, **kwargs):
    """d(sum(function(x) * upstream))/dx for a fixed random upstream gradient; returns (x.grad, upstream)."""
    x = x.clone().requires_grad_(True)
    upstream = random_x(*x.shape, seed=99).to(x.dtype)
    function(x, **kwargs).backward(upstream)
    return x.grad, upstream


# --------------------------------------------------------------------------------------------------- sign


def test_sign_of_zero_is_plus_one():
    assert binary.sign(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]


def test_sign_hand_computed():
    x = torch.tensor(POINTS)
    assert binary.sign(x).tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                                   torch.int32, torch.int64])
def test_sign_preserves_dtype_and_matches_reference(dtype):
    x = (random_x(1000, seed=1) * 3).to(dtype)
    x[:10] = 0
    reference = torch.where(x >= 0, torch.tensor(1, dtype=dtype), torch.tensor(-1, dtype=dtype))
    y = binary.sign(x)
    assert y.dtype == dtype
    assert torch.equal(y, reference)


def test_sign_differs_from_torch_sign_only_at_zero():
    x = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.sign(x).tolist() == [-1.0, 0.0, 1.0]
    assert binary.sign(x).tolist() == [-1.0, 1.0, 1.0]


@pytest.mark.parametrize("function", [binary.sign, binary.ste_sign, binary.approx_sign])
def test_forward_is_sign(function):
    x = torch.cat([random_x(500, seed=2), torch.zeros(3)])
    expected = np.where(x.numpy() >= 0, 1.0, -1.0).astype(np.float32)
    np.testing.assert_array_equal(function(x).detach().numpy(), expected)


@pytest.mark.parametrize("function", [binary.sign, binary.ste_sign, binary.approx_sign])
def test_shape_and_device_preserved(function):
    x = random_x(2, 3, 4, seed=3)
    y = function(x)
    assert y.shape == x.shape and y.device == x.device


# ----------------------------------------------------------------------------------------------- ste_sign


@pytest.mark.parametrize("clip", [1.0, 0.5, 2])
def test_ste_sign_gradient_is_clipped_mask(clip):
    x = torch.cat([random_x(1000, seed=4), torch.tensor([clip, -clip, 0.0], dtype=torch.float32)])
    grad, upstream = input_gradient(binary.ste_sign, x, clip=clip)
    mask = (np.abs(x.numpy()) <= clip).astype(np.float32)
    np.testing.assert_array_equal(grad.numpy(), upstream.numpy() * mask)
    assert (grad == 0).any() and (grad != 0).any()


@pytest.mark.parametrize("clip, expected", [
    (1.0, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]),   # |x| <= 1 passes, the boundary included
    (0.5, [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]),
    (None, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),  # plain STE: identity
])
def test_ste_sign_gradient_hand_computed(clip, expected):
    x = torch.tensor(POINTS, requires_grad=True)
    binary.ste_sign(x, clip=clip).sum().backward()
    assert x.grad.tolist() == expected


def test_ste_sign_default_clip_is_one():
    x = torch.tensor([-1.0, 1.0, 1.01], requires_grad=True)
    binary.ste_sign(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0]


def test_ste_sign_without_clip_is_identity_gradient():
    x = random_x(1000, seed=5, spread=5.0)
    grad, upstream = input_gradient(binary.ste_sign, x, clip=None)
    assert torch.equal(grad, upstream)


# --------------------------------------------------------------------------------------- straight_through


def test_straight_through_value_is_quantized_exactly():
    latent = torch.tensor([-3.457080602645874, 0.2, -0.7, 0.0], requires_grad=True)
    quantized = torch.tensor([-4 / 3, 1.0, -1.0, 1.0])
    out = binary.straight_through(latent, quantized)
    assert torch.equal(out, quantized)
    # the detach trick rounds: in float32, -3.4570806 + (-4/3 + 3.4570806) is one step away from -4/3
    assert not torch.equal(latent + (quantized - latent).detach(), quantized)


def test_straight_through_gradient_is_identity_to_latent():
    latent = random_x(1000, seed=8, spread=5.0).requires_grad_(True)
    quantized = (torch.round(latent.detach() * 3) / 3).requires_grad_(True)
    upstream = random_x(1000, seed=9)
    (binary.straight_through(latent, quantized) * upstream).sum().backward()
    assert torch.equal(latent.grad, upstream)          # unchanged, even where |latent| > 1 (no clipping)
    assert quantized.grad is None                      # nothing reaches the quantized tensor


def test_straight_through_hand_computed_gradient():
    latent = torch.tensor([-2.0, 0.2, 3.0], requires_grad=True)
    out = binary.straight_through(latent, binary.sign(latent.detach()))
    assert out.tolist() == [-1.0, 1.0, 1.0]
    (out * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert latent.grad.tolist() == [1.0, 2.0, 3.0]


# -------------------------------------------------------------------------------------------- approx_sign


def test_approx_sign_gradient_hand_computed():
    x = torch.tensor(POINTS, requires_grad=True)
    binary.approx_sign(x).sum().backward()
    # 2 - 2|x| inside [-1, 1], 0 outside
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 2.0, 1.5, 0.0, 0.0]


def test_approx_sign_gradient_equals_numpy_reference():
    x = random_x(2000, seed=6, spread=1.0)
    grad, upstream = input_gradient(binary.approx_sign, x)
    xn = x.numpy().astype(np.float64)
    derivative = np.where(np.abs(xn) <= 1, 2 - 2 * np.abs(xn), 0.0)
    np.testing.assert_allclose(grad.numpy(), upstream.numpy() * derivative, rtol=1e-6, atol=1e-7)
    assert (grad == 0).any() and (grad != 0).any()


@pytest.mark.parametrize("function", [binary.ste_sign, binary.approx_sign])
def test_surrogate_gradient_keeps_float64(function):
    x = random_x(10, seed=7).double().requires_grad_(True)
    function(x).sum().backward()
    assert x.grad.dtype == torch.float64


# ----------------------------------------------------------------------------------------- mean_abs_scale


def test_mean_abs_scale_per_channel_hand_computed():
    w = torch.tensor([[[1.0, -2.0], [3.0, -4.0]],
                      [[0.5, 0.5], [-0.5, -0.5]],
                      [[0.0, 0.0], [0.0, 8.0]]])
    alpha = binary.mean_abs_scale(w)
    assert alpha.shape == (3, 1, 1)  # broadcasts against w
    assert alpha.flatten().tolist() == [2.5, 0.5, 2.0]


def test_mean_abs_scale_per_tensor_hand_computed():
    w = torch.tensor([[1.0, -2.0], [3.0, -4.0], [0.5, 0.5]])
    alpha = binary.mean_abs_scale(w, per_channel=False)
    assert alpha.dim() == 0
    assert float(alpha) == pytest.approx(11.0 / 6)


def test_mean_abs_scale_per_channel_equals_numpy_reference():
    w = random_x(8, 3, 3, 3, seed=8)
    expected = np.abs(w.numpy()).reshape(8, -1).mean(axis=1)
    np.testing.assert_allclose(binary.mean_abs_scale(w).flatten().numpy(), expected, rtol=1e-6)


def l2_error(w, alpha):
    return float(((w - alpha * binary.sign(w)) ** 2).sum())


@pytest.mark.parametrize("delta", [-0.1, -0.01, 0.01, 0.1])
def test_mean_abs_scale_minimises_binarization_error_per_tensor(delta):
    w = random_x(1000, seed=9)
    alpha = binary.mean_abs_scale(w, per_channel=False)
    assert l2_error(w, alpha * (1 + delta)) > l2_error(w, alpha)


@pytest.mark.parametrize("channel", [0, 2, 4])
@pytest.mark.parametrize("delta", [-0.05, 0.05])
def test_mean_abs_scale_minimises_binarization_error_per_channel(channel, delta):
    w = random_x(5, 4, 3, 3, seed=10)
    alpha = binary.mean_abs_scale(w)
    perturbed = alpha.clone()
    perturbed[channel] *= 1 + delta
    assert l2_error(w, perturbed) > l2_error(w, alpha)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("function", [binary.sign, binary.ste_sign, binary.approx_sign])
@pytest.mark.parametrize("x", [[1.0, -1.0], 1.0, None, np.array([1.0])])
def test_non_tensor_x(function, x):
    with pytest.raises(TypeError, match=r"\bx\b"):
        function(x)


@pytest.mark.parametrize("x", [torch.tensor([True, False]), torch.tensor([1 + 1j])])
def test_sign_rejects_bool_and_complex(x):
    with pytest.raises(TypeError, match=r"\bx\b"):
        binary.sign(x)


@pytest.mark.parametrize("function", [binary.ste_sign, binary.approx_sign])
def test_surrogates_reject_integer_x(function):
    with pytest.raises(TypeError, match=r"\bx\b"):
        function(torch.tensor([1, -1]))


@pytest.mark.parametrize("clip, error", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                         (float("inf"), ValueError), (True, TypeError), ("1", TypeError),
                                         ([1.0], TypeError)])
def test_ste_sign_bad_clip(clip, error):
    with pytest.raises(error, match="clip"):
        binary.ste_sign(torch.zeros(3), clip=clip)


@pytest.mark.parametrize("w, error", [(torch.tensor(1.0), ValueError), (torch.tensor([1, 2]), TypeError),
                                      ([1.0, 2.0], TypeError)])
def test_mean_abs_scale_bad_w(w, error):
    with pytest.raises(error, match=r"\bw\b"):
        binary.mean_abs_scale(w)


def test_straight_through_bad_input():
    with pytest.raises(TypeError, match="latent"):
        binary.straight_through([1.0], torch.ones(1))
    with pytest.raises(TypeError, match="quantized"):
        binary.straight_through(torch.ones(2), torch.ones(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="quantized"):
        binary.straight_through(torch.ones(2), torch.ones(3))


@pytest.mark.parametrize("function", [binary.sign, binary.ste_sign, binary.approx_sign])
def test_nan_has_no_sign(function):
    with pytest.raises(ValueError, match=r"\bx\b.*NaN"):
        function(torch.tensor([1.0, float("nan"), -1.0]))


def test_ste_sign_without_clip_rejects_nan():
    with pytest.raises(ValueError, match=r"\bx\b.*NaN"):
        binary.ste_sign(torch.tensor([float("nan")]), clip=None)


def test_sign_of_infinity_is_still_defined():
    assert binary.sign(torch.tensor([float("inf"), -float("inf")])).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("w", [torch.zeros(0), torch.zeros(3, 0), torch.tensor([[1.0, float("nan")]]),
                               torch.tensor([1.0, float("inf")])])
@pytest.mark.parametrize("per_channel", [True, False])
def test_mean_abs_scale_rejects_empty_or_non_finite_w(w, per_channel):
    with pytest.raises(ValueError, match=r"\bw\b"):
        binary.mean_abs_scale(w, per_channel=per_channel)


@pytest.mark.parametrize("per_channel", [1, "yes", None])
def test_mean_abs_scale_bad_per_channel(per_channel):
    with pytest.raises(TypeError, match="per_channel"):
        binary.mean_abs_scale(torch.ones(2, 3), per_channel=per_channel)


def test_sign_with_surrogate_uses_the_given_derivative():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 3.0], requires_grad=True)
    y = binary.sign_with_surrogate(x, lambda v: 3 * v)
    assert torch.equal(y, binary.sign(x.detach()))
    y.backward(torch.tensor([1.0, 1.0, 1.0, 2.0, 1.0]))
    assert torch.equal(x.grad, torch.tensor([-6.0, -1.5, 0.0, 1.5, 9.0]))  # upstream gradient times 3x


def test_sign_with_surrogate_equals_ste_sign_for_the_box():
    x = torch.linspace(-2, 2, 17, requires_grad=True)
    binary.sign_with_surrogate(x, lambda v: (v.abs() <= 1).to(v.dtype)).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    binary.ste_sign(x2).sum().backward()
    assert torch.equal(x.grad, x2.grad)


def test_sign_with_surrogate_rejects_bad_input():
    with pytest.raises(TypeError, match="derivative"):
        binary.sign_with_surrogate(torch.ones(3), 1.0)
    with pytest.raises(TypeError, match="x"):
        binary.sign_with_surrogate([1.0], torch.ones_like)
