r"""Deploying a trained binary network: packed weights, integer thresholds, XNOR-popcount inference.

A binary network is *trained* as a float simulation: latent float weights, ``sign`` in the forward pass, batch
normalization in float. At *inference* none of that float machinery is needed (Hubara, Courbariaux et al.,
*Binarized Neural Networks*, NIPS 2016, sec. 3 and "First layer"; Courbariaux & Bengio, *BinaryNet*, 2016):

1. **Weights** are stored as bits, eight per byte (:func:`qteach.bitops.pack_bits`).
2. **Dot products** of :math:`\pm 1` vectors are XNOR + popcount, :math:`s = K - 2\,\operatorname{popcount}
   (a \oplus w)` (:func:`qteach.bitops.xnor_matmul_packed`, :func:`qteach.bitops.binary_conv2d`), an
   integer.
3. **Batch norm followed by sign** is a comparison of that integer with a per-neuron integer threshold
   (:func:`fold_threshold`):

   .. math:: \operatorname{sign}\!\Big(\gamma \frac{s - \mu}{\sigma} + \beta\Big) = +1
       \iff \begin{cases} s \ge \tau = \lceil \mu - \beta\sigma/\gamma \rceil & \gamma > 0 \\
       -s \ge \tau = \lceil -(\mu - \beta\sigma/\gamma) \rceil & \gamma < 0 \\
       \beta \ge 0 \ (\text{constant}) & \gamma = 0 \end{cases}

   with :math:`\sigma = \sqrt{\sigma_B^2 + \epsilon}`. Since :math:`s` is an integer, :math:`s \ge t` and
   :math:`s \ge \lceil t \rceil` are the same statement, so the real threshold rounds to an integer *exactly*.
   (The same folding is the core of FINN, Umuroglu et al., FPGA 2017, a later paper: a neuron becomes
   "popcount :math:`\le` a constant".)
4. **The first layer** sees 8-bit pixels, not :math:`\pm 1` values. As in BNN ("First layer"), the input
   :math:`x` is split into bit planes :math:`x^n \in \{0, 1\}` and

   .. math:: s = x \cdot w^b = \sum_{n=1}^{8} 2^{n-1} \,(x^n \cdot w^b),

   each plane product being a binary product (:func:`bitplane_matmul`, :func:`bitplane_conv2d`).
5. **The last layer** returns the integer dot products as class scores, after its batch norm if it has one
   (a float scale and offset per class, computed with the same torch op as the float model).

The result, :class:`PackedNetwork`, predicts exactly what the float simulation predicts (its scores are
bitwise equal). Exactness is by construction: every dot product of the float simulation is a sum of integers
(:math:`\pm 1` times :math:`\pm 1`, or an 8-bit code times :math:`\pm 1`) that float32 represents exactly, and
every threshold is checked against the float model's own batch-norm arithmetic (:func:`fold_threshold`).

**What the exporter accepts** (:func:`export`): an ``nn.Sequential`` whose layers are

- binary layers: :class:`qteach.nn.QuantLinear` / :class:`qteach.nn.QuantConv2d` with a
  :class:`qteach.nn.SignQuantizer` weight quantizer (weights exactly :math:`\pm 1`, no scaling factor);
  the first one takes an :class:`InputCode` input quantizer (8-bit pixels as integers) or a
  ``SignQuantizer``, every later one a ``SignQuantizer`` (or follows an explicit ``SignQuantizer`` module);
- after a binary layer: optional ``nn.MaxPool2d`` (on the integer accumulators), then an optional
  ``nn.BatchNorm1d``/``nn.BatchNorm2d`` with running statistics; ``nn.Flatten``, ``nn.Identity`` and
  ``nn.Dropout`` anywhere.

Scaled binary weights (XNOR-Net's :math:`\alpha`) and input-dependent scales (XNOR-Net's :math:`K`) are not
plain :math:`\pm 1` layers and are rejected with a ``ValueError``: a positive per-channel :math:`\alpha` in
front of a batch norm is absorbed by the threshold in exact arithmetic, but :math:`K` changes at every output
position and needs float work at inference.

References:

- I. Hubara, M. Courbariaux, D. Soudry, R. El-Yaniv, Y. Bengio, *Binarized Neural Networks*, NIPS 2016
  (arXiv 1602.02830): XNOR-popcount inference, first layer on bit planes.
- M. Courbariaux, Y. Bengio, *BinaryNet: Training Deep Neural Networks with Weights and Activations
  Constrained to +1 or -1*, arXiv 1602.02830v1, 2016: the XNOR GPU kernel.
- M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi, *XNOR-Net*, ECCV 2016: binary convolution as XNOR + bitcount.
- Related, later: Y. Umuroglu et al., *FINN: A Framework for Fast, Scalable Binarized Neural Network Inference*,
  FPGA 2017 (batch norm + sign as a threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qteach import bitops
from qteach import nn as qnn
from qteach._validate import (require_batch_norm, require_bits, require_bn_parameters, require_finite,
                               require_float_input, require_int, require_integer_values, require_module, require_no_nan,
                               require_non_negative_number, require_positive_number, require_shape, require_tensor)

__all__ = [
    "InputCode",
    "bit_planes",
    "bitplane_matmul",
    "bitplane_conv2d",
    "Threshold",
    "bn_parameters",
    "bn_sign_threshold",
    "fold_threshold",
    "PackedNetwork",
    "export",
    "float_nbytes",
    "binary_mlp",
    "binary_cnn",
]

_FLOAT32_EXACT = 2**24  # every integer of magnitude <= 2**24 is a float32


# --------------------------------------------------------------------------------------------------------------
# The first layer: integer input codes and bit planes
# --------------------------------------------------------------------------------------------------------------


class InputCode(nn.Module):
    r"""Input quantizer of the first layer: pixels in :math:`[0, 1]` as ``bits``-bit unsigned integers.

    .. math:: q = \operatorname{round}\big((2^{b} - 1)\, \operatorname{clip}(x, 0, 1)\big) \in \{0, \dots, 2^b - 1\}

    The output holds the integers themselves (as float32, exactly), not :math:`q / (2^b - 1)`: the batch norm
    that follows absorbs the scale, and the first layer's dot products stay integer sums that float32 computes
    exactly, so the deployed bit-plane layer (:func:`bitplane_matmul`) can reproduce them bit for bit. BNN feeds
    its first layer 8-bit pixels this way (sec. "First layer"). ``precision = bits`` for
    :func:`qteach.nn.summary`. The input needs no gradient, and gets none (``round`` has zero derivative).
    An input ``x`` that is not floating point raises ``TypeError``, NaN ``ValueError`` (infinity saturates).
    """

    def __init__(self, bits: int = 8):
        super().__init__()
        self.precision = require_bits(bits)

    @property
    def levels(self) -> int:
        return 2**self.precision - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_input(x, "x")
        return torch.round(x.clamp(0, 1) * self.levels)

    def extra_repr(self) -> str:
        return f"bits={self.precision}"


def _require_codes(q: torch.Tensor, bits: int, name: str = "q") -> torch.Tensor:
    values = require_integer_values(q, name).to(torch.float64)
    if bool(((values < 0) | (values > 2**bits - 1)).any()):
        raise ValueError(f"{name} must hold codes in [0, 2**{bits} - 1] = [0, {2**bits - 1}]")
    return values.to(torch.int64)


def bit_planes(q: torch.Tensor, bits: int = 8) -> torch.Tensor:
    r"""The bit planes :math:`x^n` of unsigned integer codes, :math:`q = \sum_{n=1}^{b} 2^{n-1} x^n`.

    Returns a float32 tensor of 0s and 1s with a new leading dimension of size ``bits``; plane ``n - 1`` holds
    bit :math:`n` (plane 0 is the least significant bit). ``q`` holds integers in :math:`[0, 2^b)` (an integer
    tensor, or floats with integer values as :class:`InputCode` returns them).
    """
    bits = require_bits(bits)
    codes = _require_codes(q, bits)
    return torch.stack([((codes >> n) & 1).to(torch.float32) for n in range(bits)])


def bitplane_matmul(q: torch.Tensor, w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    r"""First-layer product of ``bits``-bit codes with binary weights on bit planes (BNN, "First layer").

    .. math:: s = q \cdot w^b = \sum_{n=1}^{b} 2^{n-1} \,(x^n \cdot w^b), \qquad
        x^n \cdot w^b = \tfrac{1}{2}\Big( (2x^n - 1) \cdot w^b + \textstyle\sum_k w^b_k \Big)

    A plane :math:`x^n` holds 0s and 1s, not :math:`\pm 1`; writing :math:`x^n = \frac{1}{2}((2x^n - 1) + 1)`
    turns each plane product into one XNOR-popcount product (:func:`qteach.bitops.xnor_matmul`) plus the
    weight row sum :math:`\sum_k w^b_k`, itself an XNOR-popcount product with the all-ones vector. ``q`` is
    (M, K) with integer codes in :math:`[0, 2^b)`, ``w`` is (N, K), binarized with
    :func:`qteach.binary.sign`. Returns int64 (M, N), exactly ``q @ sign(w).T``. Codes out of range, a ``w``
    with NaN or operands of the wrong shape raise ``ValueError``.
    """
    bits = require_bits(bits)
    codes = _require_codes(q, bits)
    require_no_nan(require_tensor(w, "w"), "w")
    if codes.dim() != 2 or w.dim() != 2 or codes.shape[1] != w.shape[1]:
        raise ValueError(f"q and w must be (M, K) and (N, K), got {tuple(q.shape)} and {tuple(w.shape)}")
    k = codes.shape[1]
    w_packed = bitops.pack_bits(w)
    return _bitplane_matmul_packed(codes, w_packed, k, bits, _row_sums(w_packed, k))


def _row_sums(w_packed: torch.Tensor, k: int) -> torch.Tensor:
    """:math:`\\sum_k w_k` of each packed :math:`\\pm 1` row, as XNOR-popcount with the all-ones row; int64 (N,)."""
    ones = bitops.pack_bits(torch.ones(1, k))
    return bitops.xnor_matmul_packed(ones, w_packed, k)[0].to(torch.int64)


def _bitplane_matmul_packed(codes, w_packed, k, bits, row_sums):
    total = torch.zeros(codes.shape[0], w_packed.shape[0], dtype=torch.int64)
    for n in range(bits):
        plane = (codes >> n) & 1
        pm = bitops.pack_bits((2 * plane - 1).to(torch.float32))  # {0, 1} -> {-1, +1}
        plane_dot = (bitops.xnor_matmul_packed(pm, w_packed, k).to(torch.int64) + row_sums) // 2  # exact: even
        total += plane_dot << n
    return total


def bitplane_conv2d(q: torch.Tensor, w: torch.Tensor, bits: int = 8, stride=1, padding=0) -> torch.Tensor:
    r"""First-layer convolution of ``bits``-bit codes with binary filters, on bit planes.

    .. math:: s = q * w^b = \sum_{n=1}^{b} 2^{n-1}\, \tfrac{1}{2}\big((2x^n - 1) \circledast w^b
        + \mathbb{1} \circledast w^b\big)

    where :math:`\circledast` is :func:`qteach.bitops.binary_conv2d` (zero padding contributes 0) and
    :math:`\mathbb{1}` is an all-ones image: at a padded position both terms are 0, inside the image they add up
    to :math:`2 x^n w^b`. ``q`` is (N, C, H, W) with integer codes, ``w`` (O, C, kh, kw). Returns int64, exactly
    ``F.conv2d(q, sign(w), stride=stride, padding=padding)``. Codes out of range, a ``w`` with NaN, operands of
    the wrong shape or a bad ``stride``/``padding`` raise ``ValueError`` (``TypeError`` for wrong types).
    """
    bits = require_bits(bits)
    codes = _require_codes(q, bits)
    require_no_nan(require_tensor(w, "w"), "w")
    if codes.dim() != 4 or w.dim() != 4 or codes.shape[1] != w.shape[1]:
        raise ValueError(f"q and w must be 4-D (N, C, H, W) and (O, C, kh, kw) with the same C, got "
                         f"{tuple(q.shape)} and {tuple(w.shape)}")
    return _bitplane_conv2d(codes, w, bits, stride, padding)


def _bitplane_conv2d(codes, w, bits, stride, padding):
    ones = torch.ones(1, *codes.shape[1:])
    ones_term = bitops.binary_conv2d(ones, w, stride=stride, padding=padding).to(torch.int64)
    total = None
    for n in range(bits):
        plane = ((codes >> n) & 1).to(torch.float32)
        term = (bitops.binary_conv2d(2 * plane - 1, w, stride=stride, padding=padding).to(torch.int64)
                + ones_term) // 2
        total = term << n if total is None else total + (term << n)
    return total


# --------------------------------------------------------------------------------------------------------------
# Batch norm + sign as an integer threshold
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Threshold:
    r"""Batch norm + sign of one layer as integer comparisons: output :math:`+1` iff
    :math:`\text{flip}_c \cdot s \ge \tau_c` (``flip`` is :math:`\pm 1`, int8; ``tau`` int64, one per channel).

    ``corrections`` counts the channels whose closed-form threshold had to move by one step to agree with the
    float32 arithmetic of the float model (see :func:`fold_threshold`); it is almost always 0. ``flip`` and
    ``tau`` of another kind or shape raise ``TypeError``/``ValueError``.
    """

    flip: torch.Tensor
    tau: torch.Tensor
    corrections: int = 0

    def __post_init__(self):
        for t, name in ((self.flip, "flip"), (self.tau, "tau")):
            require_integer_values(t, name)
            if t.dim() != 1:
                raise ValueError(f"{name} must be 1-D (one value per channel), got shape {tuple(t.shape)}")
        if self.flip.shape != self.tau.shape:
            raise ValueError(f"flip and tau must have the same shape, got {tuple(self.flip.shape)} and "
                             f"{tuple(self.tau.shape)}")
        if not bool(((self.flip == 1) | (self.flip == -1)).all()):
            raise ValueError("flip must hold +1 and -1 only")
        require_int(self.corrections, "corrections", minimum=0)

    def apply(self, s: torch.Tensor) -> torch.Tensor:
        """:math:`\\pm 1` (float32) from integer accumulators ``s`` of shape (N, C) or (N, C, H, W); an ``s`` of
        another shape or with non-integer values raises ``ValueError``."""
        require_integer_values(s, "s")
        if s.dim() not in (2, 4) or s.shape[1] != self.tau.numel():
            raise ValueError(f"s must be (N, {self.tau.numel()}) or (N, {self.tau.numel()}, H, W), got shape "
                             f"{tuple(s.shape)}")
        shape = (1, -1) + (1,) * (s.dim() - 2)
        keep = self.flip.to(torch.int64).reshape(shape) * s.to(torch.int64) >= self.tau.reshape(shape)
        one = torch.ones((), dtype=torch.float32)
        return torch.where(keep, one, -one)

    @property
    def nbytes(self) -> int:
        """Storage: one int32 threshold and one flip bit per channel (rounded up to whole bytes)."""
        return 4 * self.tau.numel() + math.ceil(self.flip.numel() / 8)


def bn_parameters(bn, name: str = "bn"):
    r"""The folding parameters of a batch-norm module: ``(gamma, beta, mean, var)``, detached, one per channel.

    ``gamma``/``beta`` are ones/zeros when the module has no affine parameters; ``mean``/``var`` are its running
    statistics (inference mode). Raises ``TypeError`` unless ``bn`` is a ``BatchNorm1d``/``BatchNorm2d``, and
    ``ValueError`` (naming ``name``) without running statistics, for non-finite values or a negative variance.
    """
    require_batch_norm(bn, name)
    mean, var = bn.running_mean.detach(), bn.running_var.detach()
    gamma = bn.weight.detach() if bn.affine else torch.ones_like(mean)
    beta = bn.bias.detach() if bn.affine else torch.zeros_like(mean)
    return gamma, beta, mean, var


def _bn_eval(bn, values: torch.Tensor) -> torch.Tensor:
    """The float model's batch norm (eval mode) on float32 values of shape (M, C): the same torch op."""
    return F.batch_norm(values, bn.running_mean.detach(), bn.running_var.detach(),
                        bn.weight.detach() if bn.affine else None, bn.bias.detach() if bn.affine else None,
                        False, 0.0, bn.eps)


def bn_sign_threshold(gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                      eps: float = 1e-5, low: int | None = None, high: int | None = None,
                      scale: float = 1.0) -> Threshold:
    r"""The closed form of :func:`fold_threshold`, from batch-norm parameters given as tensors, in float64.

    The integer pre-activation :math:`s` enters the batch norm as :math:`\text{scale}\cdot s`; with
    :math:`\sigma = \sqrt{\sigma_B^2 + \epsilon}` (:math:`\sigma_B^2` = ``var``) and :math:`t = (\mu - \beta\sigma/\gamma)/\text{scale}`,

    .. math:: \operatorname{sign}\!\Big(\gamma\,\frac{\text{scale}\cdot s - \mu}{\sigma} + \beta\Big) = +1
        \iff \text{flip}\cdot s \ge \tau = \lceil \text{flip}\cdot t \rceil, \qquad
        \text{flip} = \begin{cases} +1 & \gamma \ge 0 \\ -1 & \gamma < 0 \end{cases}

    (:math:`s` is an integer, so :math:`s \ge t \iff s \ge \lceil t \rceil`; sign(0) = +1). With an accumulator
    range ``low`` <= ``high``, :math:`\tau` is clamped to it and :math:`\gamma = 0` (the constant
    :math:`\operatorname{sign}(\beta)`) becomes :math:`\tau = \text{low}` (always) or :math:`\text{high} + 1`
    (never), as in :func:`fold_threshold`. Without a range :math:`\tau` is not clamped and :math:`\gamma = 0`
    raises ``ValueError``.

    Exact for the closed form's float64 arithmetic; :func:`fold_threshold` additionally checks each threshold
    against a float model's float32 batch norm. The hardware papers write this one threshold in their own form:
    an integer bias (:mod:`qteach.papers.bn_free_fpga`), a threshold on the popcount
    (:mod:`qteach.papers.bnn_on_fpga_thesis`). ``gamma``, ``beta``, ``mean``, ``var`` are 1-D floating-point
    tensors of one shape; ``scale`` > 0. Returns a :class:`Threshold` (``corrections`` 0).
    """
    require_bn_parameters(gamma, beta, mean, var)
    eps = require_non_negative_number(eps, "eps")
    scale = require_positive_number(scale, "scale")
    if (low is None) != (high is None):
        raise ValueError("low and high must be given together (the accumulator range) or both be None")
    if low is not None:
        low = require_int(low, "low")
        high = require_int(high, "high")
        if low > high:
            raise ValueError(f"low must be <= high, got low={low}, high={high}")
    g, b64 = gamma.double(), beta.double()
    sigma = torch.sqrt(var.double() + eps)
    flip = torch.where(g < 0, -1, 1).to(torch.int64)
    safe_g = torch.where(g == 0, torch.ones_like(g), g)
    t = (mean.double() - b64 * sigma / safe_g) / scale
    tau = torch.ceil(flip * t)
    if low is None:
        if bool((g == 0).any()):
            raise ValueError("gamma has zeros (a constant output): give the accumulator range low, high so that a "
                             "threshold can reproduce it")
        return Threshold(flip=flip.to(torch.int8), tau=tau.to(torch.int64))
    # flip * s ranges over [lo_f, hi_f]
    lo_f = torch.where(flip > 0, torch.full_like(tau, low), torch.full_like(tau, -high))
    hi_f = torch.where(flip > 0, torch.full_like(tau, high), torch.full_like(tau, -low))
    constant = torch.where(b64 >= 0, lo_f, hi_f + 1)
    tau = torch.where(g == 0, constant, torch.minimum(torch.maximum(tau, lo_f), hi_f + 1)).to(torch.int64)
    return Threshold(flip=flip.to(torch.int8), tau=tau)


def fold_threshold(bn: nn.Module | None, low: int, high: int, bias: torch.Tensor | None = None,
                   channels: int | None = None, scale: float = 1.0) -> Threshold:
    r"""Fold an inference-mode batch norm and the sign after it into one integer threshold per channel.

    For an integer pre-activation :math:`s \in [\text{low}, \text{high}]` and
    :math:`\sigma = \sqrt{\sigma_B^2 + \epsilon}`,

    .. math::
        \operatorname{sign}\!\Big(\gamma\,\frac{s - \mu}{\sigma} + \beta\Big) = +1
        \iff \gamma\,(s - \mu) \ge -\beta\sigma .

    With :math:`t = \mu - \beta\sigma/\gamma`: if :math:`\gamma > 0` this is :math:`s \ge t`, and since
    :math:`s` is an integer, :math:`s \ge \lceil t \rceil` (``flip = +1``, :math:`\tau = \lceil t \rceil`).
    If :math:`\gamma < 0` the inequality turns round, :math:`s \le t \iff -s \ge -t \iff -s \ge \lceil -t
    \rceil` (``flip = -1``). If :math:`\gamma = 0` the output is the constant :math:`\operatorname{sign}(\beta)`
    (with sign(0) = +1), encoded as a threshold that every :math:`s` passes (:math:`\tau = \text{low}`) or none
    does (:math:`\tau = \text{high} + 1`). Thresholds outside the range are clamped the same way. This closed
    form is :func:`bn_sign_threshold`.

    **Exact against the float model.** :math:`t` is computed in float64, but the float model evaluates its batch
    norm in float32, whose rounding can put a value that is mathematically just below 0 at exactly 0 (or the
    reverse). So each threshold is then checked against the float model's own arithmetic (``F.batch_norm``
    in eval mode, the op ``nn.BatchNorm`` runs) at :math:`\tau - 1` and :math:`\tau`, and moved by a step where
    they disagree. Batch norm is monotone in :math:`s` in float32 as well, so the result is the integer
    threshold of the float model's decision, exactly; :attr:`Threshold.corrections` counts the moves.

    ``bn`` is a ``BatchNorm1d``/``BatchNorm2d`` with running statistics (``None`` means a bare sign:
    :math:`s \ge 0`; then give ``channels``). ``bias`` is the preceding layer's bias, added to :math:`s` in
    float32 before the batch norm, as the float model does. ``low`` <= ``high`` bound the accumulator
    (:math:`\pm K` for a binary layer). ``scale`` (default 1) multiplies :math:`s` in float32 before the bias:
    a layer fed ``scale * q`` for integer codes ``q`` (exact when ``scale`` is a power of two, as for pixels
    0..16 divided by 16). Bad arguments (a range beyond float32's exact integers, a non-finite ``bias``, a
    ``channels`` that disagrees with ``bn``) raise ``TypeError``/``ValueError``.
    """
    low = require_int(low, "low")
    high = require_int(high, "high")
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    if max(abs(low), abs(high)) > _FLOAT32_EXACT:
        raise ValueError(f"the accumulator range [{low}, {high}] exceeds 2**24: float32 cannot hold it exactly")
    scale = require_positive_number(scale, "scale")
    if bn is None:
        channels = require_int(channels, "channels", minimum=1)
        mean = var = beta = torch.zeros(channels)
        gamma, eps = torch.ones(channels), 1.0
    else:
        gamma, beta, mean, var = bn_parameters(bn, "bn")
        eps = bn.eps
        if channels is not None and require_int(channels, "channels") != mean.numel():
            raise ValueError(f"channels must match bn's {mean.numel()} features, got {channels}")
        channels = mean.numel()
    if bias is not None:
        require_finite(require_tensor(bias, "bias"), "bias")
        if bias.shape != (channels,):
            raise ValueError(f"bias must have shape ({channels},), got {tuple(bias.shape)}")
        bias = bias.detach().to(torch.float32)

    def decide(s: torch.Tensor) -> torch.Tensor:
        """The float model's sign decision (True for +1) at integer pre-activations s (M, C)."""
        pre = s.to(torch.float32)
        if scale != 1.0:
            pre = pre * scale
        if bias is not None:
            pre = pre + bias
        out = pre if bn is None else _bn_eval(bn, pre)
        return out >= 0

    # Closed form in float64 (the bias moves the mean).
    m64 = mean.double() - (bias.double() if bias is not None else 0.0)
    closed = bn_sign_threshold(gamma, beta, m64, var, eps, low, high, scale)
    flip, tau = closed.flip.to(torch.int64), closed.tau
    # flip * s ranges over [lo_f, hi_f]
    lo_f = torch.where(flip > 0, low, -high)
    hi_f = torch.where(flip > 0, high, -low)

    # Reconcile with the float model's float32 arithmetic: decide(flip*tau) must be True (if tau <= hi_f) and
    # decide(flip*(tau-1)) False (if tau - 1 >= lo_f). Monotonicity bounds the number of moves.
    corrected = torch.zeros(channels, dtype=torch.bool)
    for _ in range(64):
        at = torch.minimum(tau, hi_f)
        below = torch.maximum(tau - 1, lo_f)
        ok_at = decide((flip * at)[None])[0] | (tau > hi_f)
        ok_below = ~decide((flip * below)[None])[0] | (tau - 1 < lo_f)
        if bool(ok_at.all()) and bool(ok_below.all()):
            break
        tau = torch.where(~ok_at, tau + 1, torch.where(~ok_below, tau - 1, tau))
        corrected |= ~(ok_at & ok_below)
    else:  # pragma: no cover - monotone batch norm cannot oscillate
        raise RuntimeError("threshold folding did not converge")
    return Threshold(flip=flip.to(torch.int8), tau=tau, corrections=int(corrected.sum()))


# --------------------------------------------------------------------------------------------------------------
# The packed network
# --------------------------------------------------------------------------------------------------------------


class _Op:
    """One step of packed inference."""

    nbytes = 0

    def describe(self) -> str:  # pragma: no cover - overridden
        return type(self).__name__


class _InputCodeOp(_Op):
    def __init__(self, bits):
        self.bits = bits

    def __call__(self, x):
        return torch.round(x.clamp(0, 1) * (2**self.bits - 1)).to(torch.int64)

    def describe(self):
        return f"input code: pixels -> {self.bits}-bit integers"


class _SignInputOp(_Op):
    def __call__(self, x):
        one = torch.ones((), dtype=torch.float32)
        return torch.where(x >= 0, one, -one)

    def describe(self):
        return "input sign: x -> +-1"


def _word_columns(weight_bits: torch.Tensor) -> np.ndarray:
    """Packed weight rows (N, bytes) as word columns (W, N): word ``w`` of every row side by side, the layout of
    the one-pass bit-plane kernel."""
    return np.ascontiguousarray(bitops._bytes_to_words(weight_bits).T)


def _bitplane_rows(codes: np.ndarray, word_columns: np.ndarray, k: int, bits: int, row_sums: np.ndarray):
    """Rows of integer codes (M, k) times the binary weights, all bit planes in one pass
    (:func:`qteach._bitkernels.bitplane_gemm`); int32 (M, N)."""
    with bitops._kernels() as kernels:
        return torch.from_numpy(kernels.bitplane_gemm(codes, word_columns, k, bits, row_sums))


@dataclass(frozen=True)
class _PackedSigns:
    """A batch of :math:`\\pm 1` activations as the next binary layer reads them: ``words`` (N, ceil(k / 64))
    uint64, bit 1 for -1 (the layout of :mod:`qteach._bitkernels`), ``k`` values per row."""

    words: np.ndarray
    k: int


class _BinaryLinear(_Op):
    """A binary fully connected layer. Its weight words are laid out once, at export, for the kernel that reads
    them: rows of words for the XNOR-popcount GEMM, or transposed (word ``w`` of every row side by side) for the
    first layer's one-pass bit-plane kernel (:func:`qteach._bitkernels.bitplane_gemm`)."""

    def __init__(self, weight_bits, k, bits=None, row_sums=None):
        self.weight_bits, self.k, self.bits, self.row_sums = weight_bits, k, bits, row_sums
        self._words = _word_columns(weight_bits) if bits is not None else bitops._bytes_to_words(weight_bits)

    def __call__(self, x):
        if isinstance(x, _PackedSigns):  # from the threshold before it, which export sized for this layer
            with bitops._kernels() as kernels:
                return torch.from_numpy(kernels.xnor_gemm(x.words, self._words[None], self.k)[0])
        if x.dim() != 2 or x.shape[1] != self.k:
            raise ValueError(f"x does not fit the packed network: its {self.describe()} layer takes (N, {self.k}), "
                             f"got shape {tuple(x.shape)} there")
        if self.bits is not None:  # first layer: integer codes on bit planes, all planes in one pass
            return _bitplane_rows(x.contiguous().numpy(), self._words, self.k, self.bits, self.row_sums.numpy())
        return bitops.xnor_matmul_packed(bitops.pack_bits(x), self.weight_bits, self.k)

    @property
    def nbytes(self):
        extra = 0 if self.row_sums is None else 4 * self.row_sums.numel()
        return self.weight_bits.numel() + extra

    def unpacked_weight(self):
        return bitops.unpack_bits(self.weight_bits, self.k)

    def describe(self):
        where = f"{self.bits} bit planes x binary" if self.bits else "XNOR-popcount"
        return f"linear {self.k} -> {self.weight_bits.shape[0]} ({where})"


class _BinaryConv(_Op):
    """A binary convolution. The first layer (``bits`` set) multiplies the unfolded windows of its integer codes
    with the filters in the one-pass bit-plane kernel (a zero-padded tap is the code 0, which adds nothing);
    later layers run :func:`qteach.bitops.binary_conv2d` on the signs."""

    def __init__(self, weight_bits, shape, stride, padding, bits=None):
        self.weight_bits, self.shape, self.stride, self.padding, self.bits = weight_bits, shape, stride, padding, bits
        if bits is not None:
            k = shape[1] * shape[2] * shape[3]
            self._words = _word_columns(weight_bits)
            self._row_sums = _row_sums(weight_bits, k).numpy()

    def unpacked_weight(self):
        o, c, kh, kw = self.shape
        return bitops.unpack_bits(self.weight_bits, c * kh * kw).reshape(self.shape)

    def __call__(self, x):
        if x.dim() != 4 or x.shape[1] != self.shape[1]:
            raise ValueError(f"x does not fit the packed network: its {self.describe()} layer takes "
                             f"(N, {self.shape[1]}, H, W), got shape {tuple(x.shape)} there")
        if self.bits is not None:
            return self._first_layer(x)
        return bitops.binary_conv2d(x, self.unpacked_weight(), stride=self.stride, padding=self.padding)

    def _first_layer(self, codes):
        o, c, kh, kw = self.shape
        _, _, (oh, ow) = bitops.conv_geometry(codes, torch.empty(self.shape), self.stride, self.padding)
        # windows as rows (N * oh * ow, C * kh * kw), in the order of the packed filters; codes < 2**24 are exact
        # in float32, and the padding is the code 0
        windows = F.unfold(codes.to(torch.float32), (kh, kw), padding=self.padding, stride=self.stride)
        rows = windows.transpose(1, 2).reshape(-1, c * kh * kw).to(torch.int64).numpy()
        s = _bitplane_rows(rows, self._words, c * kh * kw, self.bits, self._row_sums)
        return s.reshape(codes.shape[0], oh, ow, o).permute(0, 3, 1, 2)

    @property
    def nbytes(self):
        return self.weight_bits.numel()

    def describe(self):
        o, c, kh, kw = self.shape
        where = f"{self.bits} bit planes x binary" if self.bits else "XNOR-popcount"
        return f"conv {c} -> {o}, {kh}x{kw}, stride {self.stride}, padding {self.padding} ({where})"


class _MaxPool(_Op):
    def __init__(self, pool):
        self.kernel, self.stride, self.padding = pool.kernel_size, pool.stride, pool.padding
        self.ceil_mode = pool.ceil_mode

    def __call__(self, x):
        dtype = x.dtype
        # on +-1 or on integer accumulators, exact in float32 (export keeps them within 2**24)
        out = F.max_pool2d(x.to(torch.float32), self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return out.to(dtype)

    def describe(self):
        return f"max-pool {self.kernel}"


class _ThresholdOp(_Op):
    """Batch norm + sign as integer thresholds. Before a fully connected binary layer (``pack_output``, set by
    :func:`export`) the signs come out packed for it, in one pass (:func:`qteach._bitkernels.threshold_pack`);
    otherwise as a :math:`\\pm 1` tensor (:meth:`Threshold.apply`)."""

    def __init__(self, threshold: Threshold):
        self.threshold = threshold
        self.pack_output = False
        self._flip = threshold.flip.to(torch.int64).numpy()
        self._tau = threshold.tau.to(torch.int64).numpy()

    def __call__(self, s):
        if not (self.pack_output and s.dim() == 2):
            return self.threshold.apply(s)
        with bitops._kernels() as kernels:
            return _PackedSigns(kernels.threshold_pack(s.contiguous().numpy(), self._flip, self._tau), s.shape[1])

    @property
    def nbytes(self):
        return self.threshold.nbytes

    def describe(self):
        return f"threshold ({self.threshold.tau.numel()} integer thresholds)"


class _FlattenOp(_Op):
    def __init__(self, start_dim, end_dim):
        self.start_dim, self.end_dim = start_dim, end_dim

    def __call__(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def describe(self):
        return "flatten"


class _ScoresOp(_Op):
    """The last layer's output: integer dot products (+ bias), then its batch norm as a float scale/offset."""

    def __init__(self, bias, bn):
        self.bias = None if bias is None else bias.detach().clone()
        self.bn = None
        if bn is not None:
            gamma, beta, mean, var = bn_parameters(bn, "the last batch norm")
            self.bn = (mean.clone(), var.clone(), gamma.clone(), beta.clone(), bn.eps)

    def __call__(self, s):
        scores = s.to(torch.float32)
        if self.bias is not None:
            shape = (1, -1) + (1,) * (s.dim() - 2)
            scores = scores + self.bias.reshape(shape)
        if self.bn is not None:
            mean, var, gamma, beta, eps = self.bn
            scores = F.batch_norm(scores, mean, var, gamma, beta, False, 0.0, eps)
        return scores

    @property
    def nbytes(self):
        n = 0 if self.bias is None else 4 * self.bias.numel()
        return n + (0 if self.bn is None else 4 * 4 * self.bn[0].numel())

    def describe(self):
        return "scores" + (": batch norm as float scale/offset" if self.bn is not None else " (integers)")


class PackedNetwork:
    r"""A binary network ready for inference with :mod:`qteach.bitops` only (built by :func:`export`).

    Calling it on a batch of inputs (pixels in :math:`[0, 1]`, the same tensors the float model takes) returns
    the class scores, bitwise equal to the float model's in eval mode; :meth:`predict` returns the arg-max.
    :attr:`nbytes` is the storage of everything inference needs: packed weights (1 bit each), integer
    thresholds (4 bytes and a flip bit per neuron), the first layer's weight row sums and the last layer's
    float scale/offset.

    An input ``x`` that is not a floating-point batch (N, ...) raises ``TypeError``/``ValueError``, as do NaN and
    a shape that does not fit the first layer.
    """

    def __init__(self, ops: list):
        if not isinstance(ops, list) or not ops or not all(isinstance(op, _Op) for op in ops):
            raise TypeError("ops must be a non-empty list of packed steps (build a PackedNetwork with export)")
        self.ops = ops

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        require_float_input(x, "x")
        if x.dim() < 2:
            raise ValueError(f"x must be a batch (N, ...), got shape {tuple(x.shape)}")
        x = x.detach().cpu()
        for op in self.ops:
            x = op(x)
        return x

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class predictions (arg-max of the scores), int64 (N,)."""
        return self(x).argmax(dim=1)

    @property
    def nbytes(self) -> int:
        return sum(op.nbytes for op in self.ops)

    @property
    def binary_layers(self) -> list:
        """The packed binary layers, in order (each has ``weight_bits`` and ``unpacked_weight()``)."""
        return [op for op in self.ops if isinstance(op, (_BinaryLinear, _BinaryConv))]

    @property
    def thresholds(self) -> list:
        """The :class:`Threshold` of every folded batch norm + sign, in order."""
        return [op.threshold for op in self.ops if isinstance(op, _ThresholdOp)]

    def __repr__(self) -> str:
        lines = [f"  {i}: {op.describe()}" + (f"  [{op.nbytes:,} bytes]" if op.nbytes else "")
                 for i, op in enumerate(self.ops)]
        return "PackedNetwork(\n" + "\n".join(lines) + f"\n)  total {self.nbytes:,} bytes"


def float_nbytes(model: nn.Module) -> int:
    """Bytes of the float model's parameters and floating-point buffers (running statistics), as stored."""
    require_module(model)
    tensors = list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]
    return sum(t.numel() * t.element_size() for t in tensors)


# --------------------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------------------

_SKIP = (nn.Identity, nn.Dropout)


def _is_sign(q) -> bool:
    return isinstance(q, qnn.SignQuantizer)


def _binary_weight(layer, where: str) -> torch.Tensor:
    q = layer.weight_quantizer
    if q is None or getattr(q, "precision", 32) != 1:
        raise ValueError(f"{where} is not a binary layer: its weight_quantizer must binarize to +-1 "
                         f"(a qteach.nn.SignQuantizer), got {type(q).__name__ if q is not None else None}")
    with torch.no_grad():
        w = layer.quantized_weight().detach().cpu()
    if not bool(((w == 1) | (w == -1)).all()):
        raise ValueError(f"{where}.weight_quantizer ({type(q).__name__}) does not produce exactly +-1 weights "
                         "(a scaled binary weight such as XNOR-Net's alpha * sign(W) cannot be packed as is; "
                         "use qteach.nn.SignQuantizer)")
    return w


def _geometry(layer, where):
    if layer.dilation not in ((1, 1), 1) or layer.groups != 1 or layer.padding_mode != "zeros":
        raise ValueError(f"{where}: only dilation 1, groups 1 and zero padding are supported")
    if isinstance(layer.padding, str):
        raise ValueError(f"{where}: padding must be numbers, got {layer.padding!r}")
    return tuple(layer.stride), tuple(layer.padding)


def export(model: nn.Module, input_shape=None) -> PackedNetwork:
    r"""Export a trained binary ``nn.Sequential`` (the float simulation) to a :class:`PackedNetwork`.

    Walks the layers in order (see the module docstring for what is accepted): each binary layer's weights are
    packed with :func:`qteach.bitops.pack_bits`; each batch norm followed by a sign becomes a
    :func:`fold_threshold`; the first layer with an :class:`InputCode` input becomes a bit-plane layer; the
    layers after the last binary layer (an optional batch norm) become the float scale/offset of the scores.
    Running statistics are used whatever the model's mode, as in eval mode.

    ``input_shape`` (without the batch dimension) is not needed; when given, the export is checked by running
    both models on a random input of that shape.

    Raises ``TypeError`` if ``model`` is not an ``nn.Sequential``, and ``ValueError`` naming the offending
    layer (``model[i]``) for anything that is not binary, a batch norm without running statistics, or an
    unsupported layer or order; ``ValueError`` also for an ``input_shape`` that is not a tuple of positive ints
    or that the model cannot take.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential of binary layers, got {type(model).__name__}")
    modules = [(i, m) for i, m in enumerate(model) if not isinstance(m, _SKIP)]
    if not modules:
        raise ValueError("model has no layers")
    if input_shape is not None:
        input_shape = require_shape(input_shape, "input_shape")
    ops: list = []
    state = "input"  # input | binary | int | normed
    pending = None  # (layer, index, accumulator range, bn) while an integer accumulator awaits its sign
    first = True

    def flush_to_binary(where):
        nonlocal pending
        layer, bn, low, high = pending
        bias = None if layer.bias is None else layer.bias.detach().cpu()
        ops.append(_ThresholdOp(fold_threshold(bn, low, high, bias=bias, channels=layer.weight.shape[0])))
        pending = None

    for pos, (i, m) in enumerate(modules):
        where = f"model[{i}]"
        if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d)):
            w = _binary_weight(m, where)
            iq = m.input_quantizer
            if state in ("int", "normed"):
                if not _is_sign(iq):
                    raise ValueError(f"{where}: the input of a binary layer must be binarized "
                                     "(input_quantizer=qteach.nn.SignQuantizer() or a SignQuantizer module "
                                     "before it)")
                flush_to_binary(where)
                state = "binary"
            bits = None
            if first:
                if isinstance(iq, InputCode):
                    bits = iq.precision
                    ops.append(_InputCodeOp(bits))
                elif _is_sign(iq):
                    ops.append(_SignInputOp())
                else:
                    raise ValueError(f"{where}: the first layer's input_quantizer must be qteach.deploy."
                                     f"InputCode (integer pixels) or qteach.nn.SignQuantizer, got "
                                     f"{type(iq).__name__ if iq is not None else None}")
            elif not (state == "binary" and (iq is None or _is_sign(iq))):
                raise ValueError(f"{where}: the input of a binary layer must be binary")
            if isinstance(m, qnn.QuantLinear):
                k = m.in_features
                packed = bitops.pack_bits(w)
                high = (2**bits - 1) * k if bits else k
                if high > _FLOAT32_EXACT:
                    raise ValueError(f"{where}: K = {k} is too large for exact float32 sums")
                row_sums = _row_sums(packed, k) if bits else None
                ops.append(_BinaryLinear(packed, k, bits, row_sums))
            else:
                stride, padding = _geometry(m, where)
                o, c, kh, kw = w.shape
                k = c * kh * kw
                high = (2**bits - 1) * k if bits else k
                if high > _FLOAT32_EXACT:
                    raise ValueError(f"{where}: C*kh*kw = {k} is too large for exact float32 sums")
                ops.append(_BinaryConv(bitops.pack_bits(w.reshape(o, k)), tuple(w.shape), stride, padding, bits))
            pending = [m, None, -high, high]
            state, first = "int", False
        elif isinstance(m, nn.MaxPool2d):
            if state == "normed":
                raise ValueError(f"{where}: max-pooling between a batch norm and its sign does not commute with a "
                                 "negative gamma; pool the integer accumulators before the batch norm "
                                 "(conv -> pool -> batch norm -> sign)")
            if state == "input":
                raise ValueError(f"{where}: max-pooling before the first binary layer is not supported")
            if m.dilation not in (1, (1, 1)) or m.return_indices:
                raise ValueError(f"{where}: only plain max-pooling (dilation 1) is supported")
            ops.append(_MaxPool(m))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if state != "int":
                raise ValueError(f"{where}: a batch norm must directly follow a binary layer (and its pooling)")
            bn_parameters(m, where)
            if m.num_features != pending[0].weight.shape[0]:
                raise ValueError(f"{where} has {m.num_features} features but the layer before it has "
                                 f"{pending[0].weight.shape[0]} outputs")
            pending[1] = m
            state = "normed"
        elif _is_sign(m):
            if state not in ("int", "normed"):
                raise ValueError(f"{where}: a sign must follow a binary layer or its batch norm")
            flush_to_binary(where)
            state = "binary"
        elif isinstance(m, nn.Flatten):
            if state in ("int", "normed"):
                # the per-channel threshold needs the channel axis: apply the sign first, then flatten
                nxt = modules[pos + 1][1] if pos + 1 < len(modules) else None
                if not (isinstance(nxt, (qnn.QuantLinear, qnn.QuantConv2d)) and _is_sign(nxt.input_quantizer)):
                    raise ValueError(f"{where}: flatten of a layer's output must be followed by a binary layer "
                                     "with a SignQuantizer input (flattening the scores is not supported)")
                flush_to_binary(where)
                state = "binary"
            ops.append(_FlattenOp(m.start_dim, m.end_dim))
        else:
            raise ValueError(f"{where}: unsupported layer {type(m).__name__} for binary deployment "
                             "(supported: QuantLinear/QuantConv2d with SignQuantizer weights, BatchNorm1d/2d, "
                             "MaxPool2d, Flatten, SignQuantizer, Identity, Dropout)")
    if state != "int" and state != "normed":
        raise ValueError("model must end with a binary layer (and optionally its batch norm) that gives the scores")
    layer, bn, _, _ = pending
    ops.append(_ScoresOp(None if layer.bias is None else layer.bias.detach().cpu(), bn))
    for op, nxt in zip(ops, ops[1:]):
        if isinstance(op, _ThresholdOp) and isinstance(nxt, _BinaryLinear):
            op.pack_output = True
    packed = PackedNetwork(ops)
    if input_shape is not None:
        x = torch.rand(8, *input_shape, generator=torch.Generator().manual_seed(0))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                expected = model(x)
        except (RuntimeError, ValueError) as error:
            raise ValueError(f"input_shape {input_shape} does not fit the model: {error}") from error
        finally:
            model.train(was_training)
        if not torch.equal(packed(x), expected):  # pragma: no cover - would be a bug in this module
            raise RuntimeError("the packed network disagrees with the float model")
    return packed


# --------------------------------------------------------------------------------------------------------------
# Deployable model builders
# --------------------------------------------------------------------------------------------------------------


def binary_mlp(in_features: int = 64, hidden: tuple = (256, 256), num_classes: int = 10, input_bits: int = 8,
               seed: int = 0) -> nn.Sequential:
    r"""A BNN multilayer perceptron in the deployable form (Hubara et al., 2016, MNIST MLP layout, smaller).

    ``QuantLinear`` (8-bit integer input, binary weights) → ``BatchNorm1d`` → [``QuantLinear`` (sign input,
    binary weights) → ``BatchNorm1d``] per further layer. The sign of each hidden activation is the next layer's
    input quantizer (:class:`qteach.nn.SignQuantizer`, whose backward is the Htanh STE). No biases (the batch
    norm's :math:`\beta` plays their role). Train with ``qteach.train.fit(..., weight_clip=1.0)``.
    """
    in_features = require_int(in_features, "in_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths, got {type(hidden).__name__}")
    widths = [in_features, *(require_int(h, "hidden", minimum=1) for h in hidden), num_classes]
    input_bits = require_bits(input_bits, "input_bits")
    layers: list = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            iq = InputCode(input_bits) if index == 0 else qnn.SignQuantizer()
            layers += [qnn.QuantLinear(fan_in, fan_out, bias=False, weight_quantizer=qnn.SignQuantizer(),
                                       input_quantizer=iq), nn.BatchNorm1d(fan_out)]
    return nn.Sequential(*layers)


def binary_cnn(in_channels: int = 1, channels: tuple = (32, 64), image_size: int = 8, num_classes: int = 10,
               input_bits: int = 8, seed: int = 0) -> nn.Sequential:
    r"""A small BNN convolutional network in the deployable form, for 8x8 digits.

    ``QuantConv2d`` 3x3 (8-bit integer input, binary weights, padding 1) → ``BatchNorm2d`` → then per further
    channel count: ``QuantConv2d`` 3x3 (sign input) → ``MaxPool2d(2)`` → ``BatchNorm2d``; then ``Flatten`` →
    ``QuantLinear`` (sign input) → ``BatchNorm1d`` giving the scores. The pooling sits on the integer
    accumulators, before the batch norm, as in BNN's ConvNet (conv → max-pool → batch norm → sign).
    """
    in_channels = require_int(in_channels, "in_channels", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    image_size = require_int(image_size, "image_size", minimum=1)
    if not isinstance(channels, (tuple, list)) or not channels:
        raise TypeError(f"channels must be a non-empty tuple of channel counts, got {channels!r}")
    channels = [require_int(c, "channels", minimum=1) for c in channels]
    if image_size % 2 ** (len(channels) - 1):
        raise ValueError(f"image_size {image_size} cannot be halved {len(channels) - 1} times")
    input_bits = require_bits(input_bits, "input_bits")
    sign = qnn.SignQuantizer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        layers: list = [qnn.QuantConv2d(in_channels, channels[0], 3, padding=1, bias=False,
                                        weight_quantizer=sign(), input_quantizer=InputCode(input_bits)),
                        nn.BatchNorm2d(channels[0])]
        size = image_size
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [qnn.QuantConv2d(c_in, c_out, 3, padding=1, bias=False, weight_quantizer=sign(),
                                       input_quantizer=sign()), nn.MaxPool2d(2), nn.BatchNorm2d(c_out)]
            size //= 2
        layers += [nn.Flatten(), qnn.QuantLinear(channels[-1] * size * size, num_classes, bias=False,
                                                 weight_quantizer=sign(), input_quantizer=sign()),
                   nn.BatchNorm1d(num_classes)]
    return nn.Sequential(*layers)
