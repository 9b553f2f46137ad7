r"""Integer-arithmetic-only inference and quantization-aware training (Jacob et al., CVPR 2018).

Jacob, Kligys, Chen, Zhu, Tang, Howard, Adam and Kalenichenko define one *quantization scheme* for inference and
training. Equation numbers below are those of the CVPR 2018 open-access text (pp. 2704-2713).

**The scheme (sec. 2.1, eq. 1).** A real value is an affine function of an integer code,

.. math:: r = S\,(q - Z),

with a real scale :math:`S > 0` and an integer zero point :math:`Z` of the same type as :math:`q` (so that real 0
is exactly the code :math:`Z`). One :math:`(S, Z)` per weights array and per activations array.

**Integer matrix multiply (sec. 2.2, eq. 2-6).** For :math:`r_3 = r_1 r_2` with :math:`r_\alpha = S_\alpha
(q_\alpha - Z_\alpha)` (eq. 2-3),

.. math:: q_3^{(i,k)} = Z_3 + M \sum_{j=1}^{N} (q_1^{(i,j)} - Z_1)(q_2^{(j,k)} - Z_2) \quad (4), \qquad
    M := \frac{S_1 S_2}{S_3} \quad (5), \qquad M = 2^{-n} M_0 \quad (6)

with :math:`M_0 \in [0.5, 1)` stored as the int32 nearest to :math:`2^{31} M_0` and :math:`2^{-n}` a rounding
right shift (:func:`qteach.bitops.quantize_multiplier`, :func:`qteach.bitops.requantize`).

**Zero points (sec. 2.3, eq. 7-9).** Distributing the product,

.. math:: q_3^{(i,k)} = Z_3 + M\Big(N Z_1 Z_2 - Z_1 a_2^{(k)} - Z_2 \bar a_1^{(i)}
    + \sum_j q_1^{(i,j)} q_2^{(j,k)}\Big), \quad a_2^{(k)} = \sum_j q_2^{(j,k)},\ \bar a_1^{(i)} = \sum_j
    q_1^{(i,j)},

so the :math:`O(N^3)` work is the plain integer product (eq. 9) and the zero points cost :math:`O(N^2)`.

**The fused layer (sec. 2.4, eq. 10-11).** Accumulate ``int32 += uint8 * uint8`` (eq. 10); the bias is int32
with :math:`S_{bias} = S_1 S_2`, :math:`Z_{bias} = 0` (eq. 11), added to the accumulator; then scale down by
:math:`M`, add :math:`Z_3`, saturate to the 8-bit range, and clamp further for ReLU/ReLU6.

**Training (sec. 3, eq. 12-14).** The forward pass simulates this rounding in floating point ("fake
quantization", eq. 12-13, :func:`qteach.quant.fake_quantize`); weights use their min/max with codes limited to
:math:`[-127, 127]` (sec. 3.1, :func:`narrow_range_weight_qparams`); activation ranges are exponential moving
averages of batch ranges (sec. 3.1, :class:`qteach.nn.MinMaxFakeQuantizer` with ``momentum``); batch norm is
folded into the weights before they are quantized (sec. 3.2, eq. 14, :func:`qteach.nn.fold_batch_norm`).

Here the weights are int8 with zero point 0 and the activations uint8 (the paper uses uint8 for both and notes
that int8 with suitably modified zero points is equivalent, sec. 2.4); :func:`zero_point_accumulate` handles any
zero points. :func:`fbgemm_requantize` is *not* the paper's rule: it is PyTorch's (FBGEMM's) float epilogue,
transcribed to explain the last-bit differences from ``torch.ao.nn.quantized``.

References:

- B. Jacob et al., *Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference*, CVPR 2018, pp. 2704-2713. https://arxiv.org/abs/1712.05877
- TensorFlow Lite's ``MultiplyByQuantizedMultiplier`` (the rounding of :func:`qteach.bitops.requantize`).
- FBGEMM, ``include/fbgemm/OutputProcessing-inl.h``, ``ReQuantizeOutput::f`` (lines 106-121 at commit
  c1170607): the requantization PyTorch's fbgemm/x86 engines use.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from qteach import bitops, quant
from qteach import nn as qnn
from qteach._validate import (require_bits, require_float_tensor, require_int, require_integer_tensor,
                              require_module, require_ndim, require_positive_number)

__all__ = [
    "narrow_range_weight_qparams",
    "quantize_bias",
    "output_multiplier",
    "zero_point_accumulate",
    "zero_point_accumulate_naive",
    "requantize_output",
    "fbgemm_requantize",
    "IntegerLinear",
    "IntegerConv2d",
    "float_cnn",
    "fold_cnn",
    "QATNet",
    "IntegerNet",
]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _require_scale(value, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a single number (per-tensor scale), got shape {tuple(value.shape)}")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {type(value).__name__}")
    return require_positive_number(float(value), name)


def _require_codes(q, name: str) -> torch.Tensor:
    require_integer_tensor(q, name)
    return q.to(torch.int64)


def _to_int32(acc: torch.Tensor, name: str) -> torch.Tensor:
    if bool(((acc < _INT32_MIN) | (acc > _INT32_MAX)).any()):
        raise ValueError(f"{name} overflows the int32 accumulator")
    return acc.to(torch.int32)


def narrow_range_weight_qparams(w: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Weight scale and zero point of sec. 3.1: signed codes in :math:`[-(2^{b-1}-1),\, 2^{b-1}-1]`.

    .. math:: S_w = \frac{\max|w|}{2^{b-1} - 1}, \qquad Z_w = 0

    "the weights, once quantized as int8 values, only range in [-127, 127] and never take the value -128"
    (the paper's tweak of :math:`a := \min w,\ b := \max w`, here made symmetric so that :math:`Z_w = 0`).
    Returns ``(scale float32, zero_point int64)`` as :func:`qteach.quant.qparams` does.
    """
    require_float_tensor(w, "w")
    bits = require_bits(bits)
    if bits < 2:
        raise ValueError(f"bits must be >= 2 for a signed narrow range, got {bits}")
    max_abs = w.detach().abs().max().to(torch.float32)
    scale = torch.clamp(max_abs / (2 ** (bits - 1) - 1), min=torch.finfo(torch.float32).eps)
    return scale, torch.zeros((), dtype=torch.int64)


def quantize_bias(bias: torch.Tensor, input_scale, weight_scale) -> torch.Tensor:
    r"""The int32 bias of eq. 11: :math:`S_{bias} = S_1 S_2`, :math:`Z_{bias} = 0`.

    .. math:: q_{bias} = \operatorname{round}\!\Big(\frac{b}{S_1 S_2}\Big)

    computed in float64 (half to even). Its scale is the accumulator's, so it is simply added to it.
    """
    require_float_tensor(bias, "bias")
    s1, s2 = _require_scale(input_scale, "input_scale"), _require_scale(weight_scale, "weight_scale")
    q = torch.round(bias.detach().double() / (s1 * s2))
    return _to_int32(q, "bias / (input_scale * weight_scale)")


def output_multiplier(input_scale, weight_scale, output_scale) -> tuple[int, int]:
    r"""Eq. 5 and 6: :math:`M = S_1 S_2 / S_3 = 2^{-n} M_0` as ``(m0, shift)`` with :math:`n = -\text{shift}`.

    ``m0`` is the int32 nearest to :math:`2^{31} M_0` (:func:`qteach.bitops.quantize_multiplier`).
    """
    s1, s2 = _require_scale(input_scale, "input_scale"), _require_scale(weight_scale, "weight_scale")
    s3 = _require_scale(output_scale, "output_scale")
    return bitops.quantize_multiplier(s1 * s2 / s3)


def zero_point_accumulate(q_x: torch.Tensor, z_x: int, q_w: torch.Tensor, z_w: int) -> torch.Tensor:
    r"""The int32 accumulator of eq. 7 for a batch of rows ``q_x`` (B, N) and weights ``q_w`` (O, N).

    .. math:: \text{acc}^{(i,k)} = N Z_1 Z_2 - Z_1 a_2^{(k)} - Z_2 \bar a_1^{(i)} + \sum_j q_1^{(i,j)}
        q_2^{(j,k)}

    with the weights as :math:`q_1` (zero point ``z_w``) and the activations as :math:`q_2` (``z_x``), as in
    sec. 2.4. The core product (eq. 9) is an integer matmul; the row and column sums (eq. 8) cost
    :math:`O(N^2)`. Returns int32 (B, O); ``ValueError`` if a value leaves int32.
    """
    q_x, q_w = _require_codes(q_x, "q_x"), _require_codes(q_w, "q_w")
    z_x, z_w = require_int(z_x, "z_x"), require_int(z_w, "z_w")
    if q_x.dim() != 2 or q_w.dim() != 2 or q_x.shape[1] != q_w.shape[1]:
        raise ValueError(f"q_x (B, N) and q_w (O, N) must share N, got {tuple(q_x.shape)} and {tuple(q_w.shape)}")
    n = q_x.shape[1]
    core = q_x @ q_w.T                               # eq. 9: sum_j q1 q2
    a_x = q_x.sum(dim=1, keepdim=True)               # eq. 8: a_2, one per input row
    a_w = q_w.sum(dim=1).unsqueeze(0)                # eq. 8: bar a_1, one per output channel
    return _to_int32(n * z_x * z_w - z_w * a_x - z_x * a_w + core, "the accumulator")


def zero_point_accumulate_naive(q_x: torch.Tensor, z_x: int, q_w: torch.Tensor, z_w: int) -> torch.Tensor:
    r"""Eq. 4's sum as written, :math:`\sum_j (q_1 - Z_1)(q_2 - Z_2)`: the reference for eq. 7."""
    q_x, q_w = _require_codes(q_x, "q_x"), _require_codes(q_w, "q_w")
    z_x, z_w = require_int(z_x, "z_x"), require_int(z_w, "z_w")
    return _to_int32((q_x - z_x) @ (q_w - z_w).T, "the accumulator")


def requantize_output(acc: torch.Tensor, m0: int, shift: int, z_out: int, qmin: int = 0, qmax: int = 255
                      ) -> torch.Tensor:
    r"""The end of the fused layer (sec. 2.4): :math:`q_3 = \operatorname{clamp}(Z_3 + M\,\text{acc},\ q_{min},
    q_{max})`.

    :math:`M\,\text{acc}` is the fixed-point multiply and rounding shift of :func:`qteach.bitops.requantize`
    (eq. 6). ``qmin``/``qmax`` are the saturating cast (0 and 255 for uint8); a fused ReLU passes
    ``qmin = z_out``. Returns int64 codes.
    """
    require_integer_tensor(acc, "acc")
    z_out, qmin, qmax = require_int(z_out, "z_out"), require_int(qmin, "qmin"), require_int(qmax, "qmax")
    if qmin > qmax:
        raise ValueError(f"qmin must be <= qmax, got {qmin} > {qmax}")
    scaled = bitops.requantize(acc.to(torch.int32), m0, shift).to(torch.int64)
    return torch.clamp(scaled + z_out, qmin, qmax)


def fbgemm_requantize(acc: torch.Tensor, bias: torch.Tensor | None, input_scale, weight_scale, output_scale,
                      z_out: int, qmin: int = 0, qmax: int = 255) -> torch.Tensor:
    r"""PyTorch's (FBGEMM's) epilogue, transcribed: *not* integer-only, and not the paper's rule.

    ``include/fbgemm/OutputProcessing-inl.h``, ``ReQuantizeOutput::f``, lines 106-121 (commit c1170607), with a
    float bias: ``raw_f = raw + bias / act_times_w_scale``; ``ab = raw_f * C_multiplier``;
    ``rounded = lrintf(ab) + C_zero_point``; clamp. All in float32, :math:`C_{mult} = (S_1 S_2) / S_3`,
    ``lrintf`` rounding half to even. ``acc`` is the int32 accumulator *without* bias (eq. 7). The bias stays
    real (not rounded to int32) and the multiplier is a float, which is where PyTorch and eq. 6 + 11 differ.
    """
    require_integer_tensor(acc, "acc")
    s1, s2 = _require_scale(input_scale, "input_scale"), _require_scale(weight_scale, "weight_scale")
    s3 = _require_scale(output_scale, "output_scale")
    act_times_w = torch.tensor(s1, dtype=torch.float32) * torch.tensor(s2, dtype=torch.float32)
    multiplier = act_times_w / torch.tensor(s3, dtype=torch.float32)
    raw = acc.to(torch.float32)
    if bias is not None:
        require_float_tensor(bias, "bias")
        shape = [1, -1] + [1] * (acc.dim() - 2)
        raw = raw + (bias.detach().to(torch.float32) / act_times_w).reshape(shape)
    return torch.clamp(torch.round(raw * multiplier).to(torch.int64) + require_int(z_out, "z_out"), qmin, qmax)


class _IntegerLayer:
    """Shared by :class:`IntegerLinear` and :class:`IntegerConv2d`: the integer parameters of one fused layer."""

    def _setup(self, weight, bias, input_scale, input_zero_point, output_scale, output_zero_point, bits, relu):
        require_float_tensor(weight, "weight")
        self.bits = require_bits(bits)
        self.qmin, self.qmax = quant.qrange(self.bits, signed=False)
        self.input_scale = _require_scale(input_scale, "input_scale")
        self.output_scale = _require_scale(output_scale, "output_scale")
        self.input_zero_point = require_int(int(input_zero_point), "input_zero_point", self.qmin, self.qmax)
        self.output_zero_point = require_int(int(output_zero_point), "output_zero_point", self.qmin, self.qmax)
        scale, _ = narrow_range_weight_qparams(weight, self.bits)
        self.weight_scale = float(scale)
        self.q_weight = quant.quantize(weight.detach(), scale, 0, self.bits, signed=True)   # int, zero point 0
        out_channels = weight.shape[0]
        bias = torch.zeros(out_channels) if bias is None else bias
        self.q_bias = quantize_bias(bias, self.input_scale, self.weight_scale)                # eq. 11
        self.m0, self.shift = output_multiplier(self.input_scale, self.weight_scale, self.output_scale)
        self.relu = bool(relu)

    def _finish(self, acc: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (acc.dim() - 2)
        acc = _to_int32(acc.to(torch.int64) + self.q_bias.to(torch.int64).reshape(shape), "accumulator + bias")
        low = self.output_zero_point if self.relu else self.qmin     # fused ReLU: clamp at real 0
        return requantize_output(acc, self.m0, self.shift, self.output_zero_point, low, self.qmax)

    def _require_input(self, q_x):
        q_x = _require_codes(q_x, "q_x")
        if bool(((q_x < self.qmin) | (q_x > self.qmax)).any()):
            raise ValueError(f"q_x must hold {self.bits}-bit unsigned codes in [{self.qmin}, {self.qmax}]")
        return q_x


class IntegerLinear(_IntegerLayer):
    r"""A fused fully connected layer on integer codes (sec. 2.4): codes in, codes out.

    Built from a float ``weight`` (O, N) and ``bias``, the input's :math:`(S_1, Z_1)` and the output's
    :math:`(S_3, Z_3)`: int8 weights with :func:`narrow_range_weight_qparams`, the int32 bias of eq. 11, the
    multiplier of eq. 5-6. ``layer(q_x)`` computes eq. 7 (:func:`zero_point_accumulate`), adds the bias and
    requantizes (:func:`requantize_output`), with ReLU fused as a clamp when ``relu``.
    """

    def __init__(self, weight, bias, input_scale, input_zero_point, output_scale, output_zero_point,
                 bits: int = 8, relu: bool = False):
        self._setup(weight, bias, input_scale, input_zero_point, output_scale, output_zero_point, bits, relu)
        require_ndim(weight, "weight", 2)

    def accumulate(self, q_x: torch.Tensor) -> torch.Tensor:
        """The int32 accumulator of eq. 7, before the bias."""
        return zero_point_accumulate(self._require_input(q_x), self.input_zero_point, self.q_weight, 0)

    def __call__(self, q_x: torch.Tensor) -> torch.Tensor:
        return self._finish(self.accumulate(q_x))


class IntegerConv2d(_IntegerLayer):
    r"""A fused convolution on integer codes: im2col, then the integer matrix multiply of :class:`IntegerLinear`.

    Zero padding pads with the input's zero point :math:`Z_1`, the code of real 0 (sec. 2.1: this is why 0
    must be exactly representable). ``q_x`` is (B, C, H, W); returns codes (B, O, H_out, W_out).
    """

    def __init__(self, weight, bias, input_scale, input_zero_point, output_scale, output_zero_point,
                 stride: int = 1, padding: int = 0, bits: int = 8, relu: bool = False):
        self._setup(weight, bias, input_scale, input_zero_point, output_scale, output_zero_point, bits, relu)
        require_ndim(weight, "weight", 4)
        self.stride = require_int(stride, "stride", minimum=1)
        self.padding = require_int(padding, "padding", minimum=0)
        self.kernel_size = tuple(weight.shape[2:])

    def accumulate(self, q_x: torch.Tensor) -> torch.Tensor:
        """The int32 accumulator of eq. 7 at every output position, before the bias."""
        q_x = self._require_input(q_x)
        require_ndim(q_x, "q_x", 4)
        p, z = self.padding, self.input_zero_point
        padded = F.pad(q_x.double(), (p, p, p, p), value=float(z))        # codes are exact in float64
        cols = F.unfold(padded, self.kernel_size, stride=self.stride).to(torch.int64)   # (B, C*kh*kw, L)
        b, n, positions = cols.shape
        rows = cols.transpose(1, 2).reshape(b * positions, n)
        acc = zero_point_accumulate(rows, z, self.q_weight.reshape(self.q_weight.shape[0], -1), 0)
        h_out = (q_x.shape[2] + 2 * p - self.kernel_size[0]) // self.stride + 1
        w_out = (q_x.shape[3] + 2 * p - self.kernel_size[1]) // self.stride + 1
        return acc.reshape(b, h_out, w_out, -1).permute(0, 3, 1, 2)

    def __call__(self, q_x: torch.Tensor) -> torch.Tensor:
        return self._finish(self.accumulate(q_x))


# --------------------------------------------------------------------------------------------- the experiment


def float_cnn(seed: int = 0, channels: tuple = (8, 16)) -> nn.Sequential:
    """The float CNN for 1x8x8 digits: two conv → batch norm → ReLU → 2x2 max-pool blocks, then a linear layer."""
    seed = require_int(seed, "seed", minimum=0)
    c1, c2 = (require_int(c, "channels", minimum=1) for c in channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * 4, 10))


def fold_cnn(model: nn.Sequential) -> nn.Sequential:
    """:func:`float_cnn` with every batch norm folded into the conv before it (eq. 14): conv → ReLU → pool."""
    require_module(model)
    layers, modules = [], list(model)
    for i, m in enumerate(modules):
        if isinstance(m, nn.BatchNorm2d):
            continue
        if isinstance(m, nn.Conv2d) and i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm2d):
            w, b = qnn.fold_batch_norm(m.weight.detach(), m.bias.detach() if m.bias is not None else None,
                                       modules[i + 1])
            conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(b)
            layers.append(conv)
        else:
            layers.append(m)
    return nn.Sequential(*layers)


class _NarrowRangeWeight(nn.Module):
    """Weight fake quantization with :func:`narrow_range_weight_qparams` (sec. 3.1), straight-through backward."""

    def __init__(self, bits: int):
        super().__init__()
        self.precision = require_bits(bits)

    def forward(self, w):
        scale, zero = narrow_range_weight_qparams(w, self.precision)
        return quant.fake_quantize(w, scale, zero, self.precision, signed=True)


class QATNet(nn.Module):
    r"""The simulated-quantization network of sec. 3 (fig. 1.1b) for a folded :func:`float_cnn`.

    Input codes with the fixed range [0, 1] (the digits' pixels); every conv and linear layer with
    narrow-range weight fake quantization; the output of every ReLU, and the logits, fake-quantized with
    EMA ranges (:class:`qteach.nn.MinMaxFakeQuantizer`, ``momentum``). Max-pooling sits after the activation
    quantizer: it commutes with quantization, so the integer network pools codes.
    """

    def __init__(self, folded: nn.Sequential, bits: int = 8, momentum: float = 0.1):
        super().__init__()
        require_module(folded, "folded")
        self.bits = require_bits(bits)
        self.input_scale, self.input_zero_point = quant.qparams(0.0, 1.0, self.bits)
        layers = []
        for m in folded:
            if isinstance(m, nn.Conv2d):
                q = qnn.QuantConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                                    weight_quantizer=_NarrowRangeWeight(self.bits))
            elif isinstance(m, nn.Linear):
                q = qnn.QuantLinear(m.in_features, m.out_features, weight_quantizer=_NarrowRangeWeight(self.bits))
            else:
                layers.append(m)
                if isinstance(m, nn.ReLU):
                    layers.append(qnn.MinMaxFakeQuantizer(self.bits, momentum=momentum))
                continue
            q.load_state_dict(m.state_dict())
            layers.append(q)
        layers.append(qnn.MinMaxFakeQuantizer(self.bits, momentum=momentum))   # the logits: 8-bit output
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        x = quant.fake_quantize(x, self.input_scale, self.input_zero_point, self.bits)
        return self.layers(x)


class IntegerNet:
    r"""A trained :class:`QATNet` converted to integer-only inference (Algorithm 1, step 4).

    Each conv/linear layer becomes an :class:`IntegerConv2d`/:class:`IntegerLinear` whose output scale and zero
    point are those of the activation quantizer after it (its EMA range), with the ReLU fused as a clamp;
    max-pooling pools codes. ``predict(x)`` quantizes the input once and never touches a float again.
    """

    def __init__(self, qat: QATNet):
        if not isinstance(qat, QATNet):
            raise TypeError(f"qat must be a QATNet, got {type(qat).__name__}")
        self.bits = qat.bits
        self.input_scale, self.input_zero_point = float(qat.input_scale), int(qat.input_zero_point)
        modules, self.steps = list(qat.layers), []
        scale, zero = self.input_scale, self.input_zero_point
        for i, m in enumerate(modules):
            if isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear)):
                relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
                fq = next(f for f in modules[i + 1:] if isinstance(f, qnn.MinMaxFakeQuantizer))
                out_scale, out_zero = quant.qparams(fq.running_min, fq.running_max, self.bits)
                args = (m.weight.detach(), m.bias.detach(), scale, zero, float(out_scale), int(out_zero))
                if isinstance(m, qnn.QuantConv2d):
                    layer = IntegerConv2d(*args, stride=m.stride[0], padding=m.padding[0], bits=self.bits,
                                          relu=relu)
                else:
                    layer = IntegerLinear(*args, bits=self.bits, relu=relu)
                self.steps.append(layer)
                scale, zero = float(out_scale), int(out_zero)
            elif isinstance(m, nn.MaxPool2d):
                self.steps.append(lambda q, k=m.kernel_size: F.max_pool2d(q.double(), k).to(torch.int64))
            elif isinstance(m, nn.Flatten):
                self.steps.append(lambda q: q.flatten(1))
        self.output_scale, self.output_zero_point = scale, zero

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The output codes (B, 10) for a float input ``x`` (quantized once at the entrance)."""
        require_float_tensor(x, "x")
        q = quant.quantize(x, self.input_scale, self.input_zero_point, self.bits)
        for step in self.steps:
            q = step(q)
        return q

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class predictions: the argmax of the output codes (the scale is positive, so of the logits too)."""
        return self.codes(x).argmax(dim=1)
