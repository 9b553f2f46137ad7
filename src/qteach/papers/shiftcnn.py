r"""ShiftCNN: weights as sums of :math:`N` signed powers of two, so a convolution needs only shifts and additions.

Gudovskiy and Rigazio represent every weight of a trained network, after normalising the layer by its largest
magnitude, as a sum of :math:`N` terms, each taken from its own small codebook of signed powers of two,

.. math::
    \hat{w}_i = \sum_{n=1}^{N} C_n[\mathrm{idx}_i(n)], \qquad
    C_n = \{0, \pm 2^{-n+1}, \pm 2^{-n}, \dots, \pm 2^{-n-\lfloor M/2 \rfloor + 2}\}, \qquad M = 2^B - 1 ,

so each codebook has :math:`M` entries (zero and :math:`\lfloor M/2 \rfloor` magnitudes of each sign), each index
takes :math:`B` bits and a weight :math:`N \cdot B` bits (:func:`codebook`). Because every term is
:math:`\pm 2^{-s}`, multiplying an activation by a weight becomes :math:`N` shifts, sign flips and additions
(:func:`shift_add_linear`): no multiplier. Moreover an activation only ever meets a handful of distinct shifts
(here :math:`N + \lfloor M/2 \rfloor - 1` of them), so the shifted copies can be computed once and shared by every
output channel; the paper builds its accelerator on this ("precomputing convolution terms") and reports that it
cuts the product operations by at least two orders of magnitude. This module shows the arithmetic, not that
hardware.

**The quantizer (Algorithm 1 of the paper)** is greedy residual quantization (:func:`shift_decompose`): normalise
:math:`r = W / \max|W|`, then for :math:`n = 1, \dots, N` round :math:`r` to the nearest power of two in the log
domain (the border between :math:`2^k` and :math:`2^{k+1}` is :math:`1.5 \cdot 2^k`, the linear midpoint), set
the term to zero where that power lies below the codebook :math:`C_n`, and subtract the term from the residual.
The details follow the official script ``gudovskiy/ShiftCNN/shiftcnn_quantization.py`` line by line (normalisation
by the layer's max, the :math:`\log_2 1.5` border, the saturation test); the tests compare with a port of it.

**The claim.** The abstract: state-of-the-art CNNs "can be converted without retraining into ShiftCNN with less
than 1% drop in accuracy" on ImageNet, and convolution power drops by a factor of 4 against 8-bit fixed point in
RTL simulation. The official script's defaults are :math:`N = 2`, :math:`B = 4`. Which :math:`(N, B)` each
network needed is in the paper's tables, which could not be read for this book.

References:

- D. A. Gudovskiy, L. Rigazio, *ShiftCNN: Generalized Low-Precision Architecture for Inference of Convolutional
  Neural Networks*, arXiv:1706.02393, 2017.
- Official code: https://github.com/gudovskiy/ShiftCNN (``shiftcnn_quantization.py``, Caffe models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_float_tensor, require_int, require_no_nan, require_tensor

__all__ = [
    "codebook_size",
    "codebook_exponents",
    "codebook",
    "ShiftCode",
    "shift_decompose",
    "shift_quantize",
    "max_shift",
    "integer_weights",
    "shift_add_linear",
    "ShiftQuantizer",
]


def _require_terms_bits(n_terms, bits) -> tuple[int, int]:
    n_terms = require_int(n_terms, "n_terms", minimum=1, maximum=16)
    bits = require_int(bits, "bits", minimum=2, maximum=8)
    return n_terms, bits


def codebook_size(bits: int) -> int:
    r""":math:`M = 2^B - 1`, the number of entries of each codebook :math:`C_n` (zero included)."""
    bits = require_int(bits, "bits", minimum=2, maximum=8)
    return 2**bits - 1


def codebook_exponents(n: int, bits: int) -> tuple[int, int]:
    r"""The exponents ``(largest, smallest)`` of the powers of two in :math:`C_n` (``n`` counted from 1):
    :math:`(-n + 1,\; -n - \lfloor M/2 \rfloor + 2)`."""
    n = require_int(n, "n", minimum=1, maximum=16)
    half = codebook_size(bits) // 2
    return -n + 1, -n - half + 2


def codebook(n: int, bits: int) -> torch.Tensor:
    r"""The codebook :math:`C_n = \{0, \pm 2^{-n+1}, \dots, \pm 2^{-n-\lfloor M/2 \rfloor+2}\}`, sorted, float64.

    For :math:`B = 4` (:math:`M = 15`) and :math:`n = 1`: zero and :math:`\pm 1, \pm\tfrac12, \dots, \pm
    \tfrac1{64}`, 15 values. The second codebook is the first divided by two: each term can refine the previous
    one by at most half its step.
    """
    top, bottom = codebook_exponents(n, bits)
    powers = torch.tensor([2.0**e for e in range(bottom, top + 1)], dtype=torch.float64)
    return torch.cat([-powers.flip(0), torch.zeros(1, dtype=torch.float64), powers]).sort().values


@dataclass(frozen=True)
class ShiftCode:
    r"""A tensor in ShiftCNN form: :math:`\hat{W} = \text{scale} \cdot \sum_n \text{signs}_n \, 2^{-\text{shifts}_n}`.

    ``signs`` and ``shifts`` have shape (N, \*w.shape) and dtype int64; ``signs`` is -1, 0 or +1 (0: the term is
    the codebook's zero), ``shifts`` is the right-shift amount :math:`s \ge 0` of a non-zero term (0 where the sign
    is 0). ``scale`` is the layer's :math:`\max |W|` (a 0-d tensor).
    """

    scale: torch.Tensor
    signs: torch.Tensor
    shifts: torch.Tensor
    bits: int

    @property
    def n_terms(self) -> int:
        return self.signs.shape[0]

    def terms(self) -> torch.Tensor:
        """The :math:`N` normalised terms :math:`\\text{sign} \\cdot 2^{-s}`, float64, shape (N, \\*w.shape)."""
        return self.signs.to(torch.float64) * torch.pow(2.0, -self.shifts.to(torch.float64))

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        """:math:`\\hat{W} = \\text{scale} \\cdot \\sum_n \\text{term}_n` in ``dtype``."""
        return (self.scale.to(torch.float64) * self.terms().sum(dim=0)).to(dtype)


def shift_decompose(w: torch.Tensor, n_terms: int = 2, bits: int = 4) -> ShiftCode:
    r"""Greedy power-of-two residual quantization, the paper's Algorithm 1 (as in the official script).

    .. math::
        r \leftarrow W / \max|W|; \quad \text{for } n = 1..N: \quad
        k = \lfloor \log_2 |r| \rfloor + 1_{\log_2 |r| > \lfloor \log_2|r| \rfloor + \log_2 1.5}, \quad
        q_n = \begin{cases} \operatorname{sgn}(r)\, 2^{k} & k \ge -n - \lfloor M/2 \rfloor + 2 \\
        0 & \text{otherwise} \end{cases}, \quad r \leftarrow r - q_n

    The rounding picks the nearer of :math:`2^{\lfloor \log_2|r| \rfloor}` and the next power (border
    :math:`1.5 \cdot 2^k`; a value exactly on it goes down, as the script's strict ``>``). :math:`\lfloor \log_2 |r|
    \rfloor` is taken from the binary exponent (``torch.frexp``), exact where ``np.log2`` may be off by an ulp;
    zero residuals give zero terms. Since :math:`|r| \le 1`, every term lands in its codebook :math:`C_n`.
    An all-zero ``w`` gives scale 0 and zero terms. Returns a :class:`ShiftCode`.
    """
    require_float_tensor(w, "w")
    require_no_nan(w, "w")
    if w.numel() == 0:
        raise ValueError("w must not be empty")
    if not bool(torch.isfinite(w).all()):
        raise ValueError("w must be finite")
    n_terms, bits = _require_terms_bits(n_terms, bits)
    w = w.detach()
    scale = w.abs().max()
    r = w / scale if bool(scale > 0) else torch.zeros_like(w)
    signs, shifts = [], []
    for n in range(1, n_terms + 1):
        mantissa, exponent = torch.frexp(r.abs())          # |r| = m * 2**e with m in [0.5, 1)
        k = exponent.to(torch.int64) - 1                    # floor(log2 |r|)
        k = k + (mantissa > 0.75).to(torch.int64)           # log2|r| > k + log2(1.5)  <=>  2m > 1.5
        _, smallest = codebook_exponents(n, bits)
        keep = (r != 0) & (k >= smallest)
        sign = torch.where(keep, torch.sign(r).to(torch.int64), torch.zeros_like(k))
        shift = torch.where(keep, -k, torch.zeros_like(k))
        q = sign.to(r.dtype) * torch.pow(2.0, -shift.to(r.dtype))
        r = r - q
        signs.append(sign)
        shifts.append(shift)
    return ShiftCode(scale=scale, signs=torch.stack(signs), shifts=torch.stack(shifts), bits=bits)


def shift_quantize(w: torch.Tensor, n_terms: int = 2, bits: int = 4) -> torch.Tensor:
    r"""The ShiftCNN-quantized weights :math:`\max|W| \sum_n q_n` in the dtype of ``w`` (:func:`shift_decompose`)."""
    return shift_decompose(w, n_terms, bits).dequantize(w.dtype)


def max_shift(n_terms: int, bits: int) -> int:
    r"""The largest right shift any term can need: :math:`E = N + \lfloor M/2 \rfloor - 2`, the exponent of the
    smallest power in :math:`C_N`. Multiplying the normalised weights by :math:`2^E` makes every term an integer."""
    n_terms, bits = _require_terms_bits(n_terms, bits)
    return -codebook_exponents(n_terms, bits)[1]


def integer_weights(code: ShiftCode) -> torch.Tensor:
    r"""The normalised weights as integers: :math:`2^E \sum_n \text{sign}_n 2^{-s_n} = \sum_n \text{sign}_n
    2^{E - s_n}` (int64), with :math:`E` from :func:`max_shift`."""
    if not isinstance(code, ShiftCode):
        raise TypeError(f"code must be a ShiftCode, got {type(code).__name__}")
    e = max_shift(code.n_terms, code.bits)
    return (code.signs * torch.bitwise_left_shift(torch.ones_like(code.shifts), e - code.shifts)).sum(dim=0)


def shift_add_linear(x_int: torch.Tensor, code: ShiftCode) -> torch.Tensor:
    r"""A linear layer on integer activations with ShiftCNN weights, using only shifts, negations and additions.

    .. math::
        y_o = \sum_i \sum_{n=1}^{N} \operatorname{sign}_{n,o,i}\,\big(x_i \ll (E - s_{n,o,i})\big)
        \;=\; 2^E \sum_i x_i\, \frac{\hat{W}_{o,i}}{\max|W|}

    ``x_int`` is (batch, in) with an integer dtype (e.g. 8-bit activation codes), ``code`` the
    :class:`ShiftCode` of an (out, in) weight. Returns the int64 accumulator (batch, out); the float output with
    the quantized weights is ``scale * 2**-E * y``, exactly (the tests check it bit for bit against
    ``F.linear`` in float64). Left shifts by :math:`E - s` instead of right shifts by :math:`s` keep every
    intermediate an integer, so nothing is rounded.
    """
    require_tensor(x_int, "x_int")
    if x_int.is_floating_point() or x_int.is_complex() or x_int.dtype == torch.bool:
        raise TypeError(f"x_int must have an integer dtype, got {x_int.dtype}")
    if not isinstance(code, ShiftCode):
        raise TypeError(f"code must be a ShiftCode, got {type(code).__name__}")
    if x_int.dim() != 2 or code.signs.dim() != 3 or x_int.shape[1] != code.signs.shape[2]:
        raise ValueError(f"x_int must be (batch, in) and the code of an (out, in) weight with the same in, got "
                         f"{tuple(x_int.shape)} and {tuple(code.signs.shape[1:])}")
    e = max_shift(code.n_terms, code.bits)
    x = x_int.to(torch.int64)[:, None, :]                         # (batch, 1, in)
    acc = torch.zeros(x_int.shape[0], code.signs.shape[1], dtype=torch.int64, device=x_int.device)
    for sign, shift in zip(code.signs, code.shifts):
        shifted = torch.bitwise_left_shift(x, (e - shift)[None])  # (batch, out, in): shifts only
        term = torch.where(sign[None] > 0, shifted, torch.where(sign[None] < 0, -shifted, 0))
        acc += term.sum(dim=2)                                    # additions
    return acc


class ShiftQuantizer(nn.Module):
    r"""ShiftCNN weight quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``: :math:`W \mapsto
    \max|W| \sum_{n=1}^{N} q_n` (:func:`shift_quantize`, one normalisation per tensor as in the official script).

    .. math:: q(W) = \hat{W}, \qquad \frac{\partial c}{\partial W} = \frac{\partial c}{\partial q(W)}

    The paper converts trained networks without retraining, so it defines no backward pass; the straight-through
    backward here only makes the quantizer usable in training loops (e.g. the book's comparison of methods under
    one protocol). ``precision = n_terms * bits``: the stored index bits per weight (the per-layer scale aside).
    """

    def __init__(self, n_terms: int = 2, bits: int = 4):
        super().__init__()
        self.n_terms, self.bits = _require_terms_bits(n_terms, bits)
        self.precision = self.n_terms * self.bits

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            quantized = shift_quantize(w, self.n_terms, self.bits)
        return binary.straight_through(w, quantized)

    def extra_repr(self) -> str:
        return f"n_terms={self.n_terms}, bits={self.bits}"
