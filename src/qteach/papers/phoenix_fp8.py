r"""Phoenix: low-precision floating point for CNN inference (Wu et al., 2020, arXiv:2003.02628).

Phoenix's abstract makes three observations: 8-bit floating point (FP8) quantization incurs less error than 8-bit
fixed point; normalizing before quantizing reduces the accuracy loss further without calibration, fine-tuning or
re-training; and an FP8 multiplier is cheaper than an 8-bit fixed-point one "if the full-precision product is
applied". Only the abstract could be read, so the format details here are ours and say so:

* :func:`quantize_float` is an exact emulation of a (sign, ``E`` exponent bits, ``M`` mantissa bits, bias) format
  with round-to-nearest-even, subnormals and a stated overflow policy; for ``E4M3FN`` and ``E5M2`` it equals
  PyTorch's ``float8_e4m3fn`` / ``float8_e5m2`` casts bit for bit (tests);
* :func:`normalized_quantize` is our reading of "normalization before quantization": divide by the largest
  magnitude (per tensor or per output channel), quantize, multiply back;
* :func:`fp_product` is a bit-exact model of a multiplier that keeps the full-precision product, and
  :func:`multiplier_gates` counts its gates against an integer multiplier with textbook (assumed) gate costs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from qteach._validate import (
    require_bool,
    require_float_tensor,
    require_int,
    require_integer_tensor,
)

__all__ = [
    "E4M3FN",
    "E5M2",
    "GATE_COST",
    "FloatFormat",
    "array_multiplier_cells",
    "decode",
    "encode",
    "float_format",
    "fp_product",
    "int8_quantize",
    "max_finite",
    "min_subnormal",
    "multiplier_gates",
    "normalized_quantize",
    "quantize_float",
    "sqnr_db",
]

_SPECIALS = ("ieee", "fn", "none")


class FloatFormat(NamedTuple):
    """A sign-exponent-mantissa format. ``special``: ``"ieee"`` (top exponent field = inf/NaN, like E5M2),
    ``"fn"`` (no inf, only the all-ones code is NaN, like E4M3FN) or ``"none"`` (every code a finite number)."""
    exponent_bits: int
    mantissa_bits: int
    bias: int
    special: str

    @property
    def name(self) -> str:
        return f"E{self.exponent_bits}M{self.mantissa_bits}" + ("FN" if self.special == "fn" else "")


def float_format(exponent_bits: int, mantissa_bits: int, bias: int | None = None,
                 special: str = "none") -> FloatFormat:
    """A :class:`FloatFormat`; ``bias`` defaults to the IEEE choice :math:`2^{E-1} - 1`."""
    exponent_bits = require_int(exponent_bits, "exponent_bits", minimum=1, maximum=8)
    mantissa_bits = require_int(mantissa_bits, "mantissa_bits", minimum=0, maximum=10)
    bias = 2 ** (exponent_bits - 1) - 1 if bias is None else require_int(bias, "bias", minimum=-64, maximum=64)
    if special not in _SPECIALS:
        raise ValueError(f"special must be one of {_SPECIALS}, got {special!r}")
    if special == "ieee" and exponent_bits < 2:
        raise ValueError("special='ieee' needs exponent_bits >= 2 (one exponent field is reserved)")
    return FloatFormat(exponent_bits, mantissa_bits, bias, special)


E4M3FN = float_format(4, 3, special="fn")     # torch.float8_e4m3fn: max 448, no inf, NaN = S.1111.111
E5M2 = float_format(5, 2, special="ieee")     # torch.float8_e5m2: max 57344, inf and NaN as in IEEE 754


def _require_format(fmt) -> FloatFormat:
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"fmt must be a FloatFormat (see float_format), got {type(fmt).__name__}")
    return fmt


def max_finite(fmt: FloatFormat) -> float:
    r"""The largest finite value: :math:`(2 - 2^{-M})\,2^{e_{max}-b}`, one mantissa step less for ``"fn"``."""
    _require_format(fmt)
    e, m, b = fmt.exponent_bits, fmt.mantissa_bits, fmt.bias
    top_field = 2 ** e - 1 - (fmt.special == "ieee")
    top_mantissa = 2 ** m - 1 - (fmt.special == "fn")
    return (1 + top_mantissa / 2 ** m) * 2.0 ** (top_field - b)


def min_subnormal(fmt: FloatFormat) -> float:
    r"""The smallest positive value :math:`2^{1-b-M}` (exponent field 0, mantissa 1)."""
    _require_format(fmt)
    return 2.0 ** (1 - fmt.bias - fmt.mantissa_bits)


def quantize_float(x: torch.Tensor, fmt: FloatFormat, saturate: bool = True) -> torch.Tensor:
    r"""Round ``x`` to the nearest value of ``fmt`` (ties to even), subnormals included.

    .. math::
        q = 2^{e - M}\,\operatorname{round}_{\text{even}}\!\left(|x|\,2^{M - e}\right),\qquad
        e = \max\left(\lfloor \log_2 |x| \rfloor,\ 1 - b\right)

    (the clamp at :math:`1 - b` gives the subnormals a fixed step :math:`2^{1-b-M}`), with the sign of ``x``
    (so :math:`-0` stays :math:`-0`). A finite :math:`q` above :func:`max_finite` overflows: to the largest
    finite value when ``saturate``, otherwise to inf (``"ieee"``) or NaN (``"fn"``); ``"none"`` formats always
    saturate. Infinite inputs stay infinite in ``"ieee"`` formats and otherwise follow the same rule; NaN stays
    NaN (``"none"`` formats reject it). Computed in float64, returned in the dtype of ``x``.
    """
    require_float_tensor(x, "x")
    _require_format(fmt)
    require_bool(saturate, "saturate")
    if fmt.special == "none" and bool(torch.isnan(x).any()):
        raise ValueError("x must not contain NaN: a 'none' format has no NaN code")
    a = x.double().abs()
    e = torch.frexp(a).exponent.double() - 1                     # floor(log2|x|), exact
    step = torch.exp2(torch.clamp(e, min=1 - fmt.bias) - fmt.mantissa_bits)
    q = torch.round(a / step) * step                              # torch.round: half to even
    top = max_finite(fmt)
    overflow = q > top
    if saturate or fmt.special == "none":
        q = torch.where(overflow & ~(torch.isinf(a) & (fmt.special == "ieee")), torch.full_like(q, top), q)
    else:
        q = torch.where(overflow, torch.full_like(q, float("inf") if fmt.special == "ieee" else float("nan")), q)
    return torch.copysign(q, x.double()).to(x.dtype)


def decode(codes: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    r"""The float64 value of each code (an integer tensor, bits ``S | exponent field | mantissa``):
    :math:`(-1)^S\, 2^{\max(f, 1) - b}\, (\mathbb{1}_{f > 0} + m\,2^{-M})`, with NaN and inf per ``special``."""
    require_integer_tensor(codes, "codes")
    _require_format(fmt)
    width = 1 + fmt.exponent_bits + fmt.mantissa_bits
    codes = codes.long()
    if bool(((codes < 0) | (codes >= 2 ** width)).any()):
        raise ValueError(f"codes must be in [0, {2 ** width - 1}] for a {width}-bit format")
    m = codes % 2 ** fmt.mantissa_bits
    f = (codes >> fmt.mantissa_bits) % 2 ** fmt.exponent_bits
    s = codes >> (width - 1)
    value = torch.exp2((torch.clamp(f, min=1) - fmt.bias).double()) * ((f > 0).double() + m / 2 ** fmt.mantissa_bits)
    top_f = f == 2 ** fmt.exponent_bits - 1
    if fmt.special == "ieee":
        value = torch.where(top_f, torch.where(m == 0, float("inf"), float("nan")), value)
    elif fmt.special == "fn":
        value = torch.where(top_f & (m == 2 ** fmt.mantissa_bits - 1), float("nan"), value)
    return torch.where(s == 1, -value, value)


def encode(x: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """The int64 code of each value of ``x`` that ``fmt`` represents exactly (round first with
    :func:`quantize_float`); NaN gets the all-ones code. A value that is not representable raises ``ValueError``."""
    require_float_tensor(x, "x")
    _require_format(fmt)
    table = decode(torch.arange(2 ** (1 + fmt.exponent_bits + fmt.mantissa_bits)), fmt)
    finite = ~torch.isnan(table)
    keys = table[finite]
    flat = x.double().reshape(-1, 1)
    hit = (flat == keys) & (torch.signbit(flat) == torch.signbit(keys))
    nan = torch.isnan(flat[:, 0])
    if not bool((hit.any(1) | nan).all()):
        raise ValueError("x holds values that fmt does not represent: round them with quantize_float first")
    codes = torch.arange(table.numel())[finite][hit.long().argmax(1)]
    return torch.where(nan, torch.full_like(codes, table.numel() - 1), codes).reshape(x.shape)


def normalized_quantize(x: torch.Tensor, fmt: FloatFormat, axis: int | None = None) -> torch.Tensor:
    r"""Our reading of Phoenix's "normalization before quantization": scale the largest magnitude (of the tensor,
    or of each slice along ``axis``) onto the format's largest value, quantize, scale back,

    .. math::
        \hat{x} = s\, Q_{fmt}(x / s),\qquad s = \max|x| \,/\, \mathrm{max\_finite}(fmt).
    """
    require_float_tensor(x, "x")
    _require_format(fmt)
    if axis is not None:
        axis = require_int(axis, "axis", minimum=-x.dim(), maximum=x.dim() - 1)
    dims = [d for d in range(x.dim()) if axis is None or d != axis % x.dim()]
    peak = x.abs().amax(dim=dims, keepdim=True) if dims else x.abs()
    s = torch.where(peak > 0, peak, torch.ones_like(peak)) / max_finite(fmt)
    return quantize_float(x / s, fmt) * s


def int8_quantize(x: torch.Tensor, axis: int | None = None, bits: int = 8) -> torch.Tensor:
    r"""The fixed-point baseline at equal bits: symmetric, max-scaled,
    :math:`\hat{x} = s\,\operatorname{clamp}(\operatorname{round}(x/s), -2^{b-1}+1, 2^{b-1}-1)`,
    :math:`s = \max|x| / (2^{b-1} - 1)`, per tensor or per slice along ``axis``."""
    require_float_tensor(x, "x")
    bits = require_int(bits, "bits", minimum=2, maximum=16)
    if axis is not None:
        axis = require_int(axis, "axis", minimum=-x.dim(), maximum=x.dim() - 1)
    dims = [d for d in range(x.dim()) if axis is None or d != axis % x.dim()]
    peak = x.abs().amax(dim=dims, keepdim=True) if dims else x.abs()
    levels = 2 ** (bits - 1) - 1
    s = torch.where(peak > 0, peak, torch.ones_like(peak)) / levels
    return torch.clamp(torch.round(x / s), -levels, levels) * s


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    r"""Signal-to-quantization-noise ratio :math:`10\log_{10}(\sum x^2 / \sum (x - \hat{x})^2)` in dB."""
    require_float_tensor(x, "x")
    require_float_tensor(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    noise = float(((x.double() - x_hat.double()) ** 2).sum())
    return float("inf") if noise == 0 else 10 * math.log10(float((x.double() ** 2).sum()) / noise)


def fp_product(a_codes: torch.Tensor, b_codes: torch.Tensor, fmt: FloatFormat):
    r"""The multiplier that keeps the full-precision product: sign XOR, exponent adder, integer mantissa product,

    .. math::
        a \cdot b = (-1)^{S_a \oplus S_b}\; (A \cdot B)\; 2^{(e_a + e_b) - 2M},\qquad
        A = \mathbb{1}_{f_a > 0}\,2^M + m_a,\ e_a = \max(f_a, 1) - b,

    with :math:`A \cdot B` an exact :math:`2(M+1)`-bit integer (no rounding, no normalization of the product).
    Returns ``(sign, exponent, mantissa_product)`` as int64 tensors (finite codes only).
    """
    require_integer_tensor(a_codes, "a_codes")
    require_integer_tensor(b_codes, "b_codes")
    _require_format(fmt)
    if not bool(torch.isfinite(decode(a_codes, fmt)).all() and torch.isfinite(decode(b_codes, fmt)).all()):
        raise ValueError("a_codes and b_codes must be codes of finite values")
    M, E = fmt.mantissa_bits, fmt.exponent_bits
    fields = []
    for c in (a_codes.long(), b_codes.long()):
        f = (c >> M) % 2 ** E
        fields.append((c >> (E + M), (f > 0).long() * 2 ** M + c % 2 ** M, torch.clamp(f, min=1) - fmt.bias))
    (sa, ma, ea), (sb, mb, eb) = fields
    return sa ^ sb, ea + eb - 2 * M, ma * mb


# Costs of the cells, in two-input gates (an assumption of ours, from the textbook gate-level circuits: a half adder
# is XOR + AND, a full adder two XOR, two AND and one OR). Phoenix's own area figures could not be read.
GATE_COST = {"and": 1, "xor": 1, "half_adder": 2, "full_adder": 5}


def array_multiplier_cells(n: int) -> dict:
    r"""Cells of an unsigned :math:`n \times n` array multiplier (the textbook carry-save array, e.g. Rabaey et
    al., *Digital Integrated Circuits*, ch. 11): :math:`n^2` AND gates for the partial products, :math:`n(n-2)`
    full adders and :math:`n` half adders."""
    n = require_int(n, "n", minimum=1, maximum=64)
    return {"and": n * n, "half_adder": n if n > 1 else 0, "full_adder": n * (n - 2) if n > 1 else 0}


def multiplier_gates(kind: str, exponent_bits: int = 4, mantissa_bits: int = 3, bits: int = 8) -> dict:
    r"""Two-input gate count of one multiplier (:data:`GATE_COST`, our assumption).

    ``kind="int"``: a ``bits`` x ``bits`` array multiplier (sign handling neglected). ``kind="float"``: the
    full-precision-product FP multiplier of :func:`fp_product`: an :math:`(M+1)\times(M+1)` mantissa array, an
    :math:`E`-bit ripple exponent adder (:math:`E` full adders, carry out kept; the constant bias is left to the
    accumulator) and one XOR for the sign. Returns the cell counts and
    their ``"gates"`` total.
    """
    if kind not in ("int", "float"):
        raise ValueError(f"kind must be 'int' or 'float', got {kind!r}")
    exponent_bits = require_int(exponent_bits, "exponent_bits", minimum=1, maximum=8)
    mantissa_bits = require_int(mantissa_bits, "mantissa_bits", minimum=0, maximum=23)
    bits = require_int(bits, "bits", minimum=2, maximum=32)
    if kind == "int":
        cells = array_multiplier_cells(bits)
    else:
        cells = array_multiplier_cells(mantissa_bits + 1)
        cells = {**cells, "full_adder": cells["full_adder"] + exponent_bits, "xor": 1}
    cells.setdefault("xor", 0)
    return {**cells, "gates": sum(GATE_COST[k] * v for k, v in cells.items())}
