r"""Quantized layers, batch-norm folding and a model summary.

The layers follow Larq's design: a layer holds *latent* full-precision weights and applies a
``weight_quantizer`` to them (and an ``input_quantizer`` to its input) on every forward pass,

.. math:: y = \operatorname{layer}\big(q_{in}(x);\; q_{w}(W)\big) + b,

so the optimiser keeps updating float weights while the forward pass sees quantized ones. A quantizer is any
callable tensor -> tensor; if it has a ``precision`` attribute (bits), :func:`summary` counts memory and
operations with it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, quant
from qteach._validate import (require_batch_norm, require_bits, require_bool, require_finite, require_float_tensor,
                               require_int, require_module, require_not_empty, require_optional_callable,
                               require_optional_positive_number, require_pair,
                               require_shape, require_tensor)


def precision_of(quantizer) -> int:
    """The bit width a quantizer produces: its ``precision`` attribute, 32 for ``None`` (no quantizer).

    A ``precision`` that is not an int >= 1 raises ``TypeError``/``ValueError``."""
    if quantizer is None:
        return 32
    return require_int(getattr(quantizer, "precision", 32), f"{type(quantizer).__name__}.precision", minimum=1)


class SignQuantizer(nn.Module):
    r"""Binary quantizer :math:`\operatorname{sign}(x)` with the clipped straight-through estimator
    (:func:`qteach.binary.ste_sign`). ``precision = 1``. ``clip`` is a positive number or ``None``, as there."""

    precision = 1

    def __init__(self, clip: float | None = 1.0):
        super().__init__()
        self.clip = require_optional_positive_number(clip, "clip")

    def forward(self, x):
        return binary.ste_sign(x, clip=self.clip)

    def extra_repr(self):
        return f"clip={self.clip}"


class MinMaxFakeQuantizer(nn.Module):
    r"""``bits``-bit fake quantization with a min/max range (:func:`qteach.quant.fake_quantize`).

    With ``momentum=None`` the range is the current tensor's min and max (usual for weights). With a
    ``momentum`` in (0, 1], the range is an exponential moving average of batch ranges updated in training mode
    and frozen in eval mode, as in quantization-aware training (Jacob et al., CVPR 2018, sec. 3.1).
    ``axis`` selects per-channel ranges along that dimension.

    Bad arguments raise ``TypeError``/``ValueError``; so does an input ``x`` that is not floating point, is empty,
    has no dimension ``axis``, or holds NaN or infinity where its range is taken (a frozen range saturates
    infinity instead).
    """

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None,
                 momentum: float | None = None):
        super().__init__()
        self.precision = require_bits(bits)
        self.signed = require_bool(signed, "signed")
        self.symmetric = require_bool(symmetric, "symmetric")
        self.axis = None if axis is None else require_int(axis, "axis")
        self.momentum = require_optional_positive_number(momentum, "momentum", maximum=1)
        self.register_buffer("running_min", torch.tensor([]))
        self.register_buffer("running_max", torch.tensor([]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the running range starts empty and takes the shape of the first batch's range: resize before loading
        for name in ("running_min", "running_max"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _batch_range(self, x):
        require_float_tensor(x, "x")
        require_not_empty(x, "x")
        if self.axis is not None and not -x.dim() <= self.axis < x.dim():
            raise ValueError(f"axis {self.axis} is not a dimension of x, of shape {tuple(x.shape)}")
        if self.axis is None:
            lo, hi = x.detach().min(), x.detach().max()
        else:
            dims = [d for d in range(x.dim()) if d != self.axis % x.dim()]
            lo, hi = x.detach().amin(dim=dims), x.detach().amax(dim=dims)
        # min and max propagate NaN and infinity: x is finite exactly when its range is
        require_finite(lo, "x")
        return lo, require_finite(hi, "x")

    def forward(self, x):
        frozen = self.momentum is not None and not self.training and self.running_min.numel() > 0
        lo, hi = (self.running_min, self.running_max) if frozen else self._batch_range(x)
        if self.momentum is not None and self.training:
            if self.running_min.numel() == 0:
                self.running_min, self.running_max = lo.clone(), hi.clone()
            else:
                self.running_min.lerp_(lo, self.momentum)
                self.running_max.lerp_(hi, self.momentum)
            lo, hi = self.running_min, self.running_max
        scale, zero_point = quant.qparams(lo, hi, self.precision, self.signed, self.symmetric)
        return quant.fake_quantize(x, scale, zero_point, self.precision, self.signed, axis=self.axis)

    def extra_repr(self):
        return (f"bits={self.precision}, signed={self.signed}, symmetric={self.symmetric}, axis={self.axis}, "
                f"momentum={self.momentum}")


class _QuantMixin:
    """Shared by the quantized layers: quantized views of the weight and the input."""

    def quantized_weight(self) -> torch.Tensor:
        """The weight the forward pass uses: ``weight_quantizer(weight)`` (the latent weight stays float)."""
        return self.weight if self.weight_quantizer is None else self.weight_quantizer(self.weight)

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        """The input the forward pass uses: ``input_quantizer(x)``. An ``x`` that is not a floating-point tensor
        raises ``TypeError``, one whose shape does not fit the layer ``ValueError``."""
        require_float_tensor(x, "x")
        self._require_input_shape(x)
        return x if self.input_quantizer is None else self.input_quantizer(x)


class QuantLinear(_QuantMixin, nn.Linear):
    r"""``nn.Linear`` computing :math:`q_{in}(x)\, q_w(W)^\top + b` with latent float weights."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, weight_quantizer=None,
                 input_quantizer=None):
        super().__init__(require_int(in_features, "in_features", 1), require_int(out_features, "out_features", 1),
                         bias=require_bool(bias, "bias"))
        self.weight_quantizer = require_optional_callable(weight_quantizer, "weight_quantizer")
        self.input_quantizer = require_optional_callable(input_quantizer, "input_quantizer")

    def _require_input_shape(self, x):
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} features in its last dimension, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x):
        return F.linear(self.quantized_input(x), self.quantized_weight(), self.bias)


def freeze_quantized_weights(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode whose quantized layers hold their quantized weights as plain float tensors.

    Each :class:`QuantLinear` / :class:`QuantConv2d` gets ``weight = quantized_weight()`` and no weight quantizer;
    input quantizers stay. The copy computes exactly what ``model`` computes in eval mode, without re-quantizing
    the weights at every call: the float inference of a deployment that stores the quantized values in float32
    (the fair float baseline for a packed network). ``model`` itself is not changed; a ``model`` that is not an
    ``nn.Module`` raises ``TypeError``.
    """
    require_module(model)
    frozen = copy.deepcopy(model).eval()
    for layer in frozen.modules():
        if isinstance(layer, _QuantMixin) and layer.weight_quantizer is not None:
            with torch.no_grad():
                layer.weight.copy_(layer.quantized_weight())
            layer.weight_quantizer = None
    return frozen


def same_padding(kernel_size) -> tuple[int, int]:
    """The zero padding that keeps a feature map's size under an odd ``kernel_size`` (an int or a pair)."""
    return tuple(k // 2 for k in require_pair(kernel_size, "kernel_size", 1))


class QuantConv2d(_QuantMixin, nn.Conv2d):
    r"""``nn.Conv2d`` computing :math:`q_{in}(x) * q_w(W) + b` with latent float weights.

    Zero padding pads the *quantized* input with 0, which is not a binary value: for a binary input that is
    the "zero-padding correction" that :func:`qteach.bitops.binary_conv2d` reproduces exactly.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 weight_quantizer=None, input_quantizer=None, groups: int = 1):
        in_channels = require_int(in_channels, "in_channels", 1)
        out_channels = require_int(out_channels, "out_channels", 1)
        groups = require_int(groups, "groups", 1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups must divide in_channels ({in_channels}) and out_channels ({out_channels}), "
                             f"got {groups}")
        super().__init__(in_channels, out_channels,
                         require_pair(kernel_size, "kernel_size", 1), stride=require_pair(stride, "stride", 1),
                         padding=padding if isinstance(padding, str) else require_pair(padding, "padding", 0),
                         bias=require_bool(bias, "bias"), groups=groups)
        self.weight_quantizer = require_optional_callable(weight_quantizer, "weight_quantizer")
        self.input_quantizer = require_optional_callable(input_quantizer, "input_quantizer")

    def _require_input_shape(self, x):
        if x.dim() not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"x must be (N, {self.in_channels}, H, W) or ({self.in_channels}, H, W), got shape "
                             f"{tuple(x.shape)}")
        if self.padding == "same":  # pads to fit any kernel
            return
        padding = (0, 0) if self.padding == "valid" else self.padding
        if any(size + 2 * p < k for size, p, k in zip(x.shape[-2:], padding, self.kernel_size)):
            raise ValueError(f"x of shape {tuple(x.shape)} is smaller than the kernel {self.kernel_size} "
                             f"(padding {self.padding})")

    def forward(self, x):
        return self._conv_forward(self.quantized_input(x), self.quantized_weight(), self.bias)


def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm1d | nn.BatchNorm2d):
    r"""Fold an inference-mode batch norm into the preceding linear or conv layer.

    .. math::
        W_{fold} = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}\, W, \qquad
        b_{fold} = \beta + \frac{\gamma\,(b - \mu)}{\sqrt{\sigma^2 + \epsilon}}

    (Jacob et al., CVPR 2018, sec. 3.2), scaling each output channel (dim 0 of ``weight``). Returns
    ``(W_fold, b_fold)`` such that ``layer(x; W_fold, b_fold) == bn(layer(x; W, b))`` in eval mode.

    Raises ``TypeError``/``ValueError`` for a ``weight`` or ``bias`` that is not a finite tensor of matching
    shape, and a ``bn`` that is not a batch norm with running statistics, finite parameters and variances >= 0.
    """
    require_finite(require_tensor(weight, "weight"), "weight")
    if weight.dim() < 1:
        raise ValueError("weight must have at least one dimension (output channels first)")
    if bias is not None:
        require_finite(require_tensor(bias, "bias"), "bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},) to match weight, got {tuple(bias.shape)}")
    require_batch_norm(bn, "bn")
    if weight.shape[0] != bn.num_features:
        raise ValueError(f"weight has {weight.shape[0]} output channels but bn has {bn.num_features} features")
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_mean)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    inv_std = torch.rsqrt(bn.running_var + bn.eps)
    factor = gamma * inv_std
    folded_weight = weight * factor.reshape(-1, *([1] * (weight.dim() - 1)))
    b = torch.zeros_like(bn.running_mean) if bias is None else bias
    folded_bias = beta + (b - bn.running_mean) * factor
    return folded_weight, folded_bias


@dataclass
class LayerSummary:
    name: str
    kind: str
    output_shape: tuple
    input_bits: int
    params_by_bits: dict = field(default_factory=dict)
    macs: int = 0
    mac_bits: int = 32

    @property
    def memory_bits(self) -> int:
        return sum(bits * count for bits, count in self.params_by_bits.items())


@dataclass
class ModelSummary:
    """A Larq-style summary: parameters by bit width, memory, and multiply-accumulates by precision.

    Memory is :math:`\\sum \\text{bits} \\times \\text{count}` (kB = 8 x 1024 bits); a layer's MACs are its weight
    count times its output positions, at precision ``max(input bits, weight bits)``; MACs with 1-bit weights and
    1-bit inputs are *binary operations* (XNOR + popcount).
    """

    layers: list

    @property
    def params_by_bits(self) -> dict:
        total: dict = {}
        for layer in self.layers:
            for bits, count in layer.params_by_bits.items():
                total[bits] = total.get(bits, 0) + count
        return dict(sorted(total.items()))

    @property
    def total_params(self) -> int:
        return sum(self.params_by_bits.values())

    @property
    def memory_kb(self) -> float:
        return sum(layer.memory_bits for layer in self.layers) / (8 * 1024)

    @property
    def float32_memory_kb(self) -> float:
        return self.total_params * 32 / (8 * 1024)

    @property
    def compression(self) -> float:
        return self.float32_memory_kb / self.memory_kb if self.memory_kb else 1.0

    @property
    def macs_by_bits(self) -> dict:
        total: dict = {}
        for layer in self.layers:
            if layer.macs:
                total[layer.mac_bits] = total.get(layer.mac_bits, 0) + layer.macs
        return dict(sorted(total.items()))

    @property
    def binary_ops(self) -> int:
        return self.macs_by_bits.get(1, 0)

    def table(self):
        """The per-layer table as a :class:`qteach.display.Table` (HTML in a notebook, aligned text elsewhere)."""
        from qteach.display import Table

        header = ["Layer", "Output shape", "Input bits", "Params (bits: count)", "Memory (kB)", "MACs", "MAC bits"]
        body = [[layer.name, str(list(layer.output_shape)), layer.input_bits,
                 ", ".join(f"{b}: {c}" for b, c in sorted(layer.params_by_bits.items())) or "-",
                 f"{layer.memory_bits / 8192:.2f}", f"{layer.macs:,}", layer.mac_bits if layer.macs else "-"]
                for layer in self.layers]
        return Table(header, body, align=["<", "<", ">", "<", ">", ">", ">"])

    def totals(self) -> list[str]:
        """The summary's last lines: parameters by bit width, memory against float32, MACs by precision."""
        params = ", ".join(f"{b}-bit: {c:,}" for b, c in self.params_by_bits.items())
        macs = ", ".join(f"{b}-bit: {c:,}" for b, c in self.macs_by_bits.items())
        return [f"Total params: {self.total_params:,} ({params})",
                f"Memory: {self.memory_kb:.2f} kB (float32: {self.float32_memory_kb:.2f} kB, "
                f"{self.compression:.1f}x smaller)",
                f"MACs: {macs}" + (f"  (binary ops: {self.binary_ops:,})" if self.binary_ops else "")]

    def __str__(self) -> str:
        return "\n".join([self.table().text, "", *self.totals()])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        totals = "<br>".join(html.escape(line) for line in self.totals())
        return f"{self.table()._repr_html_()}<p>{totals}</p>"


def _layer_params(module: nn.Module) -> dict:
    counts: dict = {}
    weight_bits = precision_of(getattr(module, "weight_quantizer", None))
    for pname, param in module.named_parameters(recurse=False):
        bits = weight_bits if pname == "weight" else 32
        counts[bits] = counts.get(bits, 0) + param.numel()
    return counts


def summary(model: nn.Module, input_shape) -> ModelSummary:
    """Summarise ``model`` for one input of shape ``input_shape`` (without the batch dimension).

    Runs one forward pass in eval mode on zeros to record output shapes; the model's mode is restored.
    Layers with parameters are listed; a ``Linear``/``Conv2d`` (quantized or not) counts MACs. A ``model`` that
    is not a module raises ``TypeError``; an ``input_shape`` that is not a tuple of positive ints, or that the
    model cannot take, raises ``ValueError``.
    """
    require_module(model)
    input_shape = require_shape(input_shape, "input_shape")
    records: list[LayerSummary] = []

    def hook(module, inputs, output):
        params = _layer_params(module)
        if not params:
            return
        in_bits = precision_of(getattr(module, "input_quantizer", None))
        w_bits = precision_of(getattr(module, "weight_quantizer", None))
        macs = 0
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            positions = output[0, 0].numel() if isinstance(module, nn.Conv2d) else 1
            macs = module.weight.numel() * positions
        records.append(LayerSummary(name=names[module], kind=type(module).__name__,
                                    output_shape=tuple(output.shape[1:]), input_bits=in_bits,
                                    params_by_bits=params, macs=macs, mac_bits=max(in_bits, w_bits)))

    names = {m: f"{n} ({type(m).__name__})" if n else type(m).__name__ for n, m in model.named_modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"input_shape {input_shape} does not fit the model: {error}") from error
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return ModelSummary(records)
