r"""DoReFa-Net: low-bitwidth weights, activations *and* gradients, and the bit-plane dot product behind them.

Zhou et al. quantize all three tensors of a convolutional layer's training step with one primitive,
:func:`quantize_k`, a uniform :math:`k`-bit quantizer of :math:`[0, 1]` with a straight-through backward pass:

- weights (W bits): :func:`quantize_weights`, :math:`E(|r|)\,\operatorname{sign}(r)` for one bit (eq. 7–8),
  otherwise :math:`\tanh`-normalised into :math:`[0, 1]`, quantized, and mapped back to :math:`[-1, 1]` (eq. 9);
- activations (A bits): :func:`quantize_activations`, :math:`\operatorname{quantize}_k(\operatorname{clip}(x, 0,
  1))` (sec. 2.4);
- gradients (G bits): :func:`quantize_gradient`, a per-sample max-scaled, *stochastically* rounded
  quantizer of the gradient flowing back into a layer (eq. 12), inserted with :func:`gradient_quantizer`.

Why bother with all three: when weights and activations are small unsigned integers, their dot product is a sum
of AND-popcounts over bit planes (eq. 3, :func:`bitplane_linear` on :func:`qteach.bitops.bitserial_matmul`),
so forward *and* backward convolutions can run as bit operations.

Where the official code, tensorpack's ``examples/DoReFa-Net/dorefa.py`` (``get_dorefa``), differs from the
paper, this module follows the code and the docstrings say where. The quantities with 32 bits mean "not
quantized" there, and here.

References:

- Zhou, Wu, Ni, Zhou, Wen, Zou, *DoReFa-Net: Training Low Bitwidth Convolutional Neural Networks with Low
  Bitwidth Gradients*, arXiv:1606.06160, 2016.
- Official code: https://github.com/tensorpack/tensorpack/tree/master/examples/DoReFa-Net
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops
from qteach._validate import require_bits, require_float_input, require_tensor

__all__ = [
    "FULL_PRECISION",
    "quantize_k",
    "quantize_weights",
    "quantize_activations",
    "quantize_gradient",
    "gradient_quantizer",
    "WeightQuantizer",
    "ActivationQuantizer",
    "GradientQuantizer",
    "activation_codes",
    "weight_codes",
    "bitplane_linear",
]

FULL_PRECISION = 32
"""A bit width of 32 means "leave this tensor in float", as in the official code's ``get_dorefa``."""


def quantize_k(r: torch.Tensor, k: int) -> torch.Tensor:
    r"""The :math:`k`-bit quantizer of DoReFa-Net (eq. 5): :math:`2^k` evenly spaced levels on :math:`[0, 1]`.

    .. math::
        \text{Forward: } r_o = \frac{1}{2^k - 1} \operatorname{round}\big((2^k - 1)\, r_i\big), \qquad
        \text{Backward: } \frac{\partial c}{\partial r_i} = \frac{\partial c}{\partial r_o}

    The input is meant to lie in :math:`[0, 1]` (the callers below make sure of it); the output then takes the
    values :math:`0, \tfrac{1}{2^k-1}, \dots, 1`. Rounding is half to even (``torch.round``, like TensorFlow's
    ``tf.round`` in the official code). The backward pass is the straight-through estimator: the gradient is
    passed unchanged, also outside :math:`[0, 1]` (clipping, where wanted, is the caller's job); the official code
    does this with ``gradient_override_map({"Round": "Identity"})``, here :func:`qteach.binary.straight_through`.
    ``k`` is an int in [1, 32].
    """
    require_float_input(r, "r")
    k = require_bits(k, "k")
    n = float(2**k - 1)
    with torch.no_grad():
        r_o = torch.round(r * n) / n
    return binary.straight_through(r, r_o)


def quantize_weights(r: torch.Tensor, k: int) -> torch.Tensor:
    r"""DoReFa weight quantizer :math:`f^k_\omega`: 1 bit by a scaled sign, :math:`k > 1` bits via :math:`\tanh`.

    One bit (eq. 7–8), one scale for the whole tensor:

    .. math::
        \text{Forward: } r_o = \operatorname{sign}(r_i) \times E(|r_i|), \qquad
        \text{Backward: } \frac{\partial c}{\partial r_i} = \frac{\partial c}{\partial r_o}

    :math:`k > 1` bits (eq. 9):

    .. math::
        r_o = f^k_\omega(r_i) = 2 \operatorname{quantize}_k\!\left(
        \frac{\tanh(r_i)}{2 \max(|\tanh(r_i)|)} + \frac{1}{2} \right) - 1

    The :math:`\tanh` limits the range, dividing by the maximum maps the weights onto :math:`[0, 1]`, and the
    result takes :math:`2^k` evenly spaced values in :math:`[-1, 1]`, always including :math:`\pm 1` (the
    largest-magnitude weight). The gradient flows through :math:`\tanh` and through the maximum by autograd, with
    :func:`quantize_k`'s straight-through rule for the rounding; this matches the official code, which stops no
    gradient there (Larq's port puts a stop-gradient on the maximum). For one bit the code computes
    ``sign(x / E) * E`` with ``E`` under ``stop_gradient`` and the sign's gradient overridden by the identity, so
    the gradient reaches :math:`r_i` unchanged, as eq. 8 says. Here that is written ``r + (q - r).detach()``, whose
    forward value can be one float32 rounding step off :math:`q` (in about 4 % of the entries of a 1-bit training
    run); :func:`qteach.binary.straight_through` would give :math:`q` exactly, as the official code does, but it
    changes this chapter's trained 1-bit results, so the trick is kept. Another difference: TensorFlow's
    ``sign(0) = 0``, here :func:`qteach.binary.sign` gives :math:`+1` so that every weight is one bit. For
    :math:`k > 1` an all-zero ``r`` raises ``ValueError`` (eq. 9 would divide by zero; the official code returns
    NaN). ``k = 32`` returns ``r`` unchanged (the code's convention). The official code leaves the first and the
    last layer in float ("don't binarize first and last layer").
    """
    require_float_input(r, "r")
    k = require_bits(k, "k")
    if k == 1 and r.numel() == 0:
        raise ValueError("r must not be empty")
    if 1 < k < FULL_PRECISION and not bool((r != 0).any()):  # tanh(r) = 0 exactly where r = 0
        raise ValueError("r must have a nonzero weight: eq. 9 divides by max|tanh(r)|")
    if k == FULL_PRECISION:
        return r
    if k == 1:
        scale = binary.mean_abs_scale(r.detach(), per_channel=False)
        return r + (scale * binary.sign(r.detach()) - r).detach()
    t = torch.tanh(r)
    normalised = t / (2 * t.abs().max()) + 0.5
    return 2 * quantize_k(normalised, k) - 1


def quantize_activations(x: torch.Tensor, k: int) -> torch.Tensor:
    r"""DoReFa activation quantizer :math:`f^k_\alpha` (sec. 2.4): clip to :math:`[0, 1]`, then :func:`quantize_k`.

    .. math::
        x_o = \operatorname{quantize}_k(\operatorname{clip}(x, 0, 1)), \qquad
        \frac{\partial c}{\partial x} = \frac{\partial c}{\partial x_o}\, 1_{0 \le x \le 1}

    The paper assumes the output of the previous layer has been passed through a bounded activation; the
    official ImageNet code applies ``tf.clip_by_value(x, 0.0, 1.0)`` and then ``quantize``. The gradient is that
    of the clip (zero outside :math:`[0, 1]`, like Larq's ``DoReFa`` activation quantizer) times the
    straight-through rounding. ``k = 32`` returns :math:`\operatorname{ReLU}(x)` instead, as the official
    AlexNet code does for full-precision activations ("still use relu for 32bit cases").
    """
    require_float_input(x, "x")
    k = require_bits(k, "k")
    if k == FULL_PRECISION:
        return F.relu(x)
    return quantize_k(torch.clamp(x, 0.0, 1.0), k)


def quantize_gradient(dr: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""DoReFa gradient quantizer :math:`\tilde f^k_\gamma` with noise (eq. 12), applied to a gradient tensor.

    .. math::
        \tilde f^k_\gamma(dr) = 2 \max_0(|dr|) \left[ \operatorname{quantize}_k\!\left(
        \frac{dr}{2 \max_0(|dr|)} + \frac{1}{2} + N(k) \right) - \frac{1}{2} \right], \qquad
        N(k) = \frac{\sigma}{2^k - 1}, \; \sigma \sim U(-\tfrac{1}{2}, \tfrac{1}{2})

    :math:`\max_0` is the maximum over all axes except the first (the mini-batch axis): one scale per sample.
    The affine map sends :math:`[-\max, \max]` onto :math:`[0, 1]`; the uniform noise of one quantization step
    turns rounding into *stochastic rounding*, which is unbiased: :math:`E[\tilde f^k_\gamma(dr)] = dr` (the
    tests check it). Without the noise, a gradient smaller than half a step would always round to the same
    level, and that bias would add up over many training steps.

    Paper vs code: the official ``grad_fg`` also clips the noisy value to :math:`[0, 1]` before quantizing
    (the paper's formula has no clip). The clip only matters when a value lands exactly on the half-step above
    1 or below 0, a probability-zero event, so the two agree; this function includes the clip. A sample whose
    gradient is all zero (where the code would divide by zero) gets a zero gradient. ``k = 32`` returns ``dr``
    unchanged. ``generator`` seeds the noise (``torch.rand``).
    """
    require_float_input(dr, "dr")
    k = require_bits(k, "k")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if k != FULL_PRECISION and dr.dim() == 0:
        raise ValueError("dr must have a batch dimension (dim 0), got a 0-d tensor")
    if k == FULL_PRECISION:
        return dr
    n = float(2**k - 1)
    dims = tuple(range(1, dr.dim()))
    max0 = dr.abs().amax(dim=dims, keepdim=True) if dims else dr.abs()
    safe = torch.where(max0 > 0, max0, torch.ones_like(max0))
    noise = (torch.rand(dr.shape, generator=generator, dtype=dr.dtype, device=dr.device) - 0.5) / n
    x = torch.clamp(dr / (2 * safe) + 0.5 + noise, 0.0, 1.0)
    out = 2 * safe * (torch.round(x * n) / n - 0.5)
    return torch.where(max0 > 0, out, torch.zeros_like(out))


class _GradientQuantizer(torch.autograd.Function):
    """Identity forward; the backward pass quantizes the incoming gradient with eq. 12."""

    @staticmethod
    def forward(ctx, x, k, generator):
        ctx.k, ctx.generator = k, generator
        return x.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return quantize_gradient(grad_output, ctx.k, ctx.generator), None, None


def gradient_quantizer(x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Identity in the forward pass; :func:`quantize_gradient` on the gradient in the backward pass.

    .. math:: y = x, \qquad \frac{\partial c}{\partial x} = \tilde f^k_\gamma\!\left(\frac{\partial c}{\partial y}\right)

    The official code (``fg``) places it right after each quantized convolution, so the gradient flowing back
    into the convolution, from which both the weight gradient and the input gradient are computed, is the
    :math:`k`-bit one (the paper's "backward pass with low bitwidth gradients"). ``k = 32`` is a plain identity.
    """
    require_float_input(x, "x")
    k = require_bits(k, "k")
    if k == FULL_PRECISION:
        return x
    return _GradientQuantizer.apply(x, k, generator)


class WeightQuantizer(nn.Module):
    r""":func:`quantize_weights` as a ``weight_quantizer`` for :class:`qteach.nn.QuantLinear`/``QuantConv2d``;
    ``precision = k``."""

    def __init__(self, k: int):
        super().__init__()
        self.precision = require_bits(k, "k")

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return quantize_weights(w, self.precision)

    def extra_repr(self) -> str:
        return f"k={self.precision}"


class ActivationQuantizer(nn.Module):
    r""":func:`quantize_activations` as a module (the network's nonlinearity); ``precision = k``."""

    def __init__(self, k: int):
        super().__init__()
        self.precision = require_bits(k, "k")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_activations(x, self.precision)

    def extra_repr(self) -> str:
        return f"k={self.precision}"


class GradientQuantizer(nn.Module):
    r""":func:`gradient_quantizer` as a module, to place after a quantized layer; ``precision = k``.

    ``seed`` (optional) seeds a private generator for the noise, so that training is repeatable."""

    def __init__(self, k: int, seed: int | None = None):
        super().__init__()
        self.precision = require_bits(k, "k")
        self.generator = None if seed is None else torch.Generator().manual_seed(int(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gradient_quantizer(x, self.precision, self.generator)

    def extra_repr(self) -> str:
        return f"k={self.precision}"


# --------------------------------------------------------------------------------------------------------------
# Integer codes and the bit-plane dot product (eq. 3)
# --------------------------------------------------------------------------------------------------------------


def _exact_codes(values: torch.Tensor, name: str, top: int) -> torch.Tensor:
    codes = torch.round(values.to(torch.float64))
    if bool((values.to(torch.float64) - codes).abs().max() > 1e-4) or bool(((codes < 0) | (codes > top)).any()):
        raise ValueError(f"{name} is not on the grid of its bit width: quantize it first")
    return codes.to(torch.int64)


def activation_codes(a_q: torch.Tensor, k: int) -> torch.Tensor:
    r"""Integer codes of quantized activations: :math:`A = (2^k - 1)\, a_q \in \{0, \dots, 2^k - 1\}`.

    ``a_q`` must be an output of :func:`quantize_activations` with ``k < 32`` bits (values :math:`i / (2^k -
    1)`); anything off that grid raises ``ValueError``. Returns int64.
    """
    require_float_input(a_q, "a_q")
    k = require_bits(k, "k")
    if k == FULL_PRECISION:
        raise ValueError("k = 32 means float activations: there are no integer codes")
    n = 2**k - 1
    return _exact_codes(a_q * n, "a_q", n)


def weight_codes(w_q: torch.Tensor, k: int) -> tuple[torch.Tensor, float, float]:
    r"""Integer codes of quantized weights as an affine map, :math:`w_q = \text{low} + \text{step} \cdot W`.

    For :math:`k > 1` (eq. 9) the levels are :math:`2i/(2^k-1) - 1`, so :math:`W = (2^k - 1)(w_q + 1)/2 \in
    \{0, \dots, 2^k - 1\}`, low :math:`= -1`, step :math:`= 2/(2^k-1)`. For one bit (eq. 7) the levels are
    :math:`\pm E`: :math:`W = 1` for :math:`+E`, 0 for :math:`-E`, low :math:`= -E`, step :math:`= 2E`.
    Returns ``(codes int64, low, step)``; ``w_q`` off the grid raises ``ValueError``.
    """
    require_float_input(w_q, "w_q")
    k = require_bits(k, "k")
    if k == FULL_PRECISION:
        raise ValueError("k = 32 means float weights: there are no integer codes")
    if k == 1:
        magnitude = float(w_q.abs().max()) if w_q.numel() else 0.0
        if w_q.numel() and not torch.allclose(w_q.abs(), torch.full_like(w_q, magnitude)):
            raise ValueError("w_q is not on the grid of its bit width: 1-bit weights must all be +E or -E")
        return (w_q > 0).to(torch.int64), -magnitude, 2 * magnitude
    n = 2**k - 1
    return _exact_codes((w_q + 1) * n / 2, "w_q", n), -1.0, 2.0 / n


def bitplane_linear(a_q: torch.Tensor, w_q: torch.Tensor, a_bits: int, w_bits: int) -> torch.Tensor:
    r"""A quantized linear layer :math:`a_q\, w_q^\top` computed from integer codes on bit planes (eq. 3).

    With activation codes :math:`A` (:func:`activation_codes`) and weight codes :math:`W`
    (:func:`weight_codes`, :math:`w_q = \text{low} + \text{step}\, W`),

    .. math::
        a_q \cdot w_q = \frac{1}{2^{A_b} - 1} \Big( \text{step} \sum_k A_k W_k + \text{low} \sum_k A_k \Big),
        \qquad
        \sum_k A_k W_k = \sum_{m=0}^{A_b-1} \sum_{n=0}^{W_b-1} 2^{m+n}
        \operatorname{bitcount}\big(\operatorname{and}(c_m(A), c_n(W))\big),

    the last identity being the paper's eq. 3, computed exactly by :func:`qteach.bitops.bitserial_matmul`. The
    integer part costs :math:`A_b \times W_b` AND-popcount passes; the correction :math:`\sum_k A_k` is one
    popcount per bit plane of the input, shared by all output channels. ``a_q`` is (N, K), ``w_q`` (O, K);
    returns float64 (N, O), equal to ``a_q @ w_q.T`` up to float rounding.
    """
    require_tensor(a_q, "a_q")
    require_tensor(w_q, "w_q")
    if a_q.dim() != 2 or w_q.dim() != 2 or a_q.shape[1] != w_q.shape[1]:
        raise ValueError(f"a_q must be (N, K) and w_q (O, K) with the same K, got {tuple(a_q.shape)} and "
                         f"{tuple(w_q.shape)}")
    a_codes = activation_codes(a_q, a_bits)
    w_int, low, step = weight_codes(w_q, w_bits)
    integer = bitops.bitserial_matmul(a_codes, w_int, a_bits, w_bits)
    row_sums = a_codes.sum(dim=1, keepdim=True)
    return (step * integer.to(torch.float64) + low * row_sums.to(torch.float64)) / (2**a_bits - 1)
