r"""Uniform affine quantization: the arithmetic every chapter of the book builds on.

A real value :math:`x` is represented by an integer :math:`q` in :math:`[q_{min}, q_{max}]` with a real *scale*
:math:`s > 0` and an integer *zero point* :math:`z`:

.. math::
    q = \operatorname{clamp}\!\left(\operatorname{round}(x / s) + z,\; q_{min},\; q_{max}\right),
    \qquad \hat{x} = s\,(q - z)

(Jacob et al., *Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference*,
CVPR 2018, eq. 1). The functions here follow PyTorch to the bit: the range observer is ``torch.ao``'s
``MinMaxObserver``, and :func:`fake_quantize` equals ``torch.fake_quantize_per_tensor_affine`` /
``torch.fake_quantize_per_channel_affine``, which round half to even and multiply by a float32 reciprocal
``1 / s`` instead of dividing. Tensors may live on any device; results stay on it.
"""

from __future__ import annotations

import torch

from qteach._validate import (
    require_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_no_nan,
    require_tensor,
)

_FLOAT32_EPS = torch.finfo(torch.float32).eps


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    r"""The integer range of a ``bits``-bit code.

    .. math::
        \text{signed: } [-2^{b-1},\; 2^{b-1}-1], \qquad \text{unsigned: } [0,\; 2^{b}-1]
    """
    bits = require_bits(bits)
    require_bool(signed, "signed")
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _require_range_end(value, name: str, other) -> torch.Tensor:
    """``value`` (one end of a range) as a float32 tensor, on the device of ``other`` (the other end) where
    ``value`` is a number and ``other`` a tensor."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a tensor, got bool")
    if isinstance(value, (int, float)):
        value = torch.tensor(float(value), device=other.device if isinstance(other, torch.Tensor) else None)
    require_tensor(value, name)
    if not (value.is_floating_point() or value.dtype in (torch.int8, torch.int16, torch.int32, torch.int64,
                                                         torch.uint8)):
        raise TypeError(f"{name} must be a real number or a real tensor, got {value.dtype}")
    if value.dim() > 1:
        raise ValueError(f"{name} must be 0-d (per tensor) or 1-d (per channel), got shape {tuple(value.shape)}")
    value = value.to(torch.float32)
    require_no_nan(value, name)
    return value


def qparams(x_min, x_max, bits: int = 8, signed: bool = False, symmetric: bool = False):
    r"""Scale and zero point that map the range ``[x_min, x_max]`` onto ``bits``-bit integers.

    The semantics of ``torch.ao.quantization.MinMaxObserver``. The range is first widened to contain 0 (so that
    zero is exactly representable, which zero padding and ReLU need), :math:`m^- = \min(x_{min}, 0)`,
    :math:`m^+ = \max(x_{max}, 0)`. Then

    .. math::
        \text{affine: } s = \frac{m^+ - m^-}{q_{max} - q_{min}},\quad
        z = \operatorname{clamp}\!\left(q_{min} - \operatorname{round}(m^- / s),\, q_{min},\, q_{max}\right)

    .. math::
        \text{symmetric: } s = \frac{\max(-m^-, m^+)}{(q_{max} - q_{min}) / 2},\quad
        z = \begin{cases} 0 & \text{signed} \\ 2^{b-1} & \text{unsigned} \end{cases}

    with :math:`s` floored at float32 machine epsilon. ``x_min``/``x_max`` may be numbers, 0-d tensors (per
    tensor) or 1-d tensors (per channel, one range per channel). Returns ``(scale float32, zero_point int64)``
    with the shape of the inputs.
    """
    x_min = _require_range_end(x_min, "x_min", other=x_max)
    x_max = _require_range_end(x_max, "x_max", other=x_min)
    if x_min.shape != x_max.shape:
        raise ValueError(f"x_min and x_max must have the same shape, got {tuple(x_min.shape)} and "
                         f"{tuple(x_max.shape)}")
    if x_min.device != x_max.device:
        raise ValueError(f"x_min and x_max must be on the same device, got {x_min.device} and {x_max.device}")
    if not bool(torch.isfinite(x_min).all() and torch.isfinite(x_max).all()):
        raise ValueError("x_min and x_max must be finite")
    if bool((x_min > x_max).any()):
        raise ValueError("x_min must be <= x_max")
    require_bool(symmetric, "symmetric")
    qmin, qmax = qrange(bits, signed)
    min_neg = torch.clamp(x_min, max=0.0)
    max_pos = torch.clamp(x_max, min=0.0)
    eps = torch.tensor(_FLOAT32_EPS, dtype=torch.float32, device=x_min.device)
    if symmetric:
        scale = torch.maximum(torch.maximum(-min_neg, max_pos) / (float(qmax - qmin) / 2), eps)
        zero_point = torch.full_like(scale, 0 if signed else 2 ** (bits - 1), dtype=torch.int64)
    else:
        scale = torch.maximum((max_pos - min_neg) / float(qmax - qmin), eps)
        zero_point = qmin - torch.round(min_neg / scale).to(torch.int64)
        zero_point = torch.clamp(zero_point, qmin, qmax)
    return scale, zero_point


def _broadcast_params(x: torch.Tensor, scale, zero_point, axis, qmin=None, qmax=None):
    """Validate ``scale``/``zero_point`` and shape them to broadcast against ``x`` (per tensor or along ``axis``)."""
    if isinstance(scale, bool) or isinstance(zero_point, bool):
        raise TypeError("scale and zero_point must be numbers or tensors, not bool")
    if isinstance(scale, (int, float)):
        scale = torch.tensor(float(scale))
    if isinstance(zero_point, int):
        zero_point = torch.tensor(zero_point)
    require_tensor(scale, "scale")
    require_tensor(zero_point, "zero_point")
    if zero_point.is_floating_point() or zero_point.is_complex() or zero_point.dtype == torch.bool:
        raise TypeError(f"zero_point must have an integer dtype, got {zero_point.dtype}")
    if scale.is_complex() or scale.dtype == torch.bool:
        raise TypeError(f"scale must be a real tensor, got {scale.dtype}")
    scale = scale.to(device=x.device, dtype=torch.float32)
    zero_point = zero_point.to(device=x.device, dtype=torch.int64)
    if not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
        raise ValueError("scale must be finite and > 0")
    if qmin is not None and bool(((zero_point < qmin) | (zero_point > qmax)).any()):
        raise ValueError(f"zero_point must lie in [{qmin}, {qmax}] for this bit width")
    if axis is None:
        if scale.numel() != 1 or scale.dim() > 1 or zero_point.numel() != 1 or zero_point.dim() > 1:
            raise ValueError("with axis=None, scale and zero_point must be single values (per tensor); "
                             "pass axis=k for per-channel parameters")
        return scale.reshape(()), zero_point.reshape(())
    axis = require_int(axis, "axis")
    if not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis must be in [{-x.dim()}, {x.dim() - 1}] for a {x.dim()}-D tensor, got {axis}")
    axis %= x.dim()
    channels = x.shape[axis]
    if scale.dim() != 1 or scale.numel() != channels or zero_point.dim() != 1 or zero_point.numel() != channels:
        raise ValueError(f"per-channel scale and zero_point must be 1-D with {channels} entries "
                         f"(x.shape[{axis}]), got {tuple(scale.shape)} and {tuple(zero_point.shape)}")
    shape = [1] * x.dim()
    shape[axis] = channels
    return scale.reshape(shape), zero_point.reshape(shape)


def _rounded_codes(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    r"""Unclamped codes :math:`\operatorname{round}(x \cdot (1/s)) + z` in float32, as PyTorch's kernels do.

    PyTorch multiplies by the float32 reciprocal of the scale and rounds half to even (``std::nearbyint``);
    copying both choices is what makes :func:`fake_quantize` bit-exact with it.
    """
    inv_scale = 1.0 / scale
    return torch.round(x.to(torch.float32) * inv_scale) + zero_point.to(torch.float32)


def quantize(x, scale, zero_point, bits: int = 8, signed: bool = False, axis=None) -> torch.Tensor:
    r"""Real values to integer codes (dtype ``int64``).

    .. math:: q = \operatorname{clamp}\!\left(\operatorname{round}(x \cdot s^{-1}) + z,\; q_{min},\; q_{max}\right)

    Rounding is half to even; :math:`s^{-1}` is the float32 reciprocal (PyTorch's convention). ``axis=None``
    quantizes per tensor; ``axis=k`` per channel along dimension ``k`` with 1-D ``scale``/``zero_point``.
    Infinities saturate to the range ends; NaN raises ``ValueError``.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    qmin, qmax = qrange(bits, signed)
    scale, zero_point = _broadcast_params(x, scale, zero_point, axis, qmin, qmax)
    # clamp in float64: from 25 bits on, qmax is not representable in float32
    codes = torch.clamp(_rounded_codes(x, scale, zero_point).double(), qmin, qmax)
    return codes.to(torch.int64)


def dequantize(q, scale, zero_point, axis=None) -> torch.Tensor:
    r"""Integer codes back to real values (dtype ``float32``): :math:`\hat{x} = s\,(q - z)`."""
    require_tensor(q, "q")
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"q must have an integer dtype, got {q.dtype}")
    scale, zero_point = _broadcast_params(q, scale, zero_point, axis)
    return (q.to(torch.int64) - zero_point).to(torch.float32) * scale


class _FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize forward; straight-through backward inside the representable range, zero outside."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        codes = _rounded_codes(x, scale, zero_point)
        inside = (codes >= qmin) & (codes <= qmax)
        ctx.save_for_backward(inside)
        out = (torch.clamp(codes, qmin, qmax) - zero_point.to(torch.float32)) * scale
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype), None, None, None, None


def fake_quantize(x, scale, zero_point, bits: int = 8, signed: bool = False, axis=None) -> torch.Tensor:
    r"""Simulated quantization: quantize, then dequantize, in floating point.

    .. math::
        \hat{x} = s \left(\operatorname{clamp}\!\left(\operatorname{round}(x s^{-1}) + z, q_{min}, q_{max}\right)
        - z\right), \qquad
        \frac{\partial \hat{x}}{\partial x} = 1_{q_{min} \le \operatorname{round}(x s^{-1}) + z \le q_{max}}

    The forward pass equals ``torch.fake_quantize_per_tensor_affine`` (``axis=None``) or
    ``torch.fake_quantize_per_channel_affine`` (``axis=k``) bit for bit for float32 input, ties included. The
    backward pass is the straight-through estimator of quantization-aware training (Jacob et al., 2018, sec. 3):
    the gradient passes unchanged where the value was representable and is zero where it was clipped. No
    gradient flows to ``scale`` or ``zero_point`` here (learned ranges are a paper's own mechanism, e.g. PACT).
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    qmin, qmax = qrange(bits, signed)
    scale, zero_point = _broadcast_params(x, scale, zero_point, axis, qmin, qmax)
    return _FakeQuantize.apply(x, scale, zero_point, qmin, qmax)
