r"""Towards Unified INT8 Training for Convolutional Neural Network (Zhu, Gong, Yu, Liu, Wang, Li, Yang, Yan,
CVPR 2020, arXiv:1912.12607; bibkey ``zhu2020towardsunified``). No official code.

INT8 *training*: besides the weights and activations of the forward pass, the error gradient
:math:`\mathbf{g} = \partial L / \partial \mathbf{y}` that enters a layer's backward pass is quantized to 8 bits,
so that both backward products (:math:`\mathbf{g}_x = \hat{\mathbf{g}} \hat W` and
:math:`\mathbf{g}_W = \hat{\mathbf{g}}^\top \hat{\mathbf{x}}`) have INT8 operands. The paper's two techniques:

- **direction deviation** of the quantized gradient, the cosine distance
  :math:`d_c = 1 - \cos\langle \mathbf{g}, \hat{\mathbf{g}} \rangle` (U2 below);
- **direction sensitive gradient clipping** (DSGC): clip the gradient at the value :math:`c` that minimizes
  :math:`d_c` rather than at :math:`\max|\mathbf{g}|` (U3);
- **deviation counteractive learning-rate scaling** (DCLR): scale the learning rate by
  :math:`\phi(d_c) = \max(e^{-\alpha d_c}, \beta)` with :math:`\alpha = 20, \beta = 0.1` (U4).

The equations are numbered U1-U4 here: only the abstract, the introduction and secondary summaries of the method
(d_c, phi, alpha = 20, beta = 0.1, symmetric uniform quantization) could be read, not the paper's equation numbers.
Ours, and labelled so: the quantizer's exact form (U1, scale :math:`c / (2^{b-1} - 1)`), the grid search for
:math:`c`, and the per-layer reading of DCLR (each layer's learning rate scaled by its own error's deviation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_not_empty,
    require_positive_number,
    require_str,
)

__all__ = [
    "ALPHA",
    "BETA",
    "MODES",
    "DeviationScaledAdam",
    "ErrorQuantizer",
    "comparison_layer",
    "dclr_scale",
    "direction_deviation",
    "dsgc_clip",
    "error_quantizers",
    "install_error_quantizers",
    "int8_mlp",
    "protocol_fit",
    "quantize_gradient",
]

#: DCLR's hyper-parameters as the paper's summaries report them: decay alpha = 20, floor beta = 0.1.
ALPHA = 20.0
BETA = 0.1
#: How an :class:`ErrorQuantizer` picks its clipping value: none (float backward), max|g|, or DSGC.
MODES = ("float", "max", "dsgc")
#: The clipping values DSGC tries, as fractions of max|g| (our grid; 1.0, the max clip, is one of them).
RATIOS = tuple(2.0 ** (-k / 4) for k in range(24, -1, -1))


def quantize_gradient(g: torch.Tensor, clip: float, bits: int = 8, stochastic: bool = False,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    r"""Symmetric uniform quantization of a gradient to ``bits``-bit codes (U1, our reading of the paper's
    symmetric quantizer):

    .. math:: s = \frac{c}{2^{b-1} - 1}, \qquad
              q = \operatorname{round}\!\left(\frac{\operatorname{clip}(\mathbf{g}, -c, c)}{s}\right)
              \in [-(2^{b-1}-1),\, 2^{b-1}-1], \qquad \hat{\mathbf{g}} = s\,q

    ``stochastic=True`` rounds up with probability equal to the fraction (the paper's summaries mention
    stochastic rounding), drawing from ``generator``. Returns ``(q, s)``: the integer codes (int8 for
    ``bits <= 8``, int32 otherwise) and the scale; :math:`\hat{\mathbf{g}}` is ``q * s``.
    """
    require_float_tensor(g, "g")
    require_not_empty(g, "g")
    clip = require_positive_number(clip, "clip")
    bits = require_bits(bits)
    if bits < 2:
        raise ValueError(f"bits must be >= 2 (a symmetric code needs -1, 0, +1), got {bits}")
    require_bool(stochastic, "stochastic")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    top = 2 ** (bits - 1) - 1
    scale = clip / top
    x = g.detach().float().clamp(-clip, clip) / scale
    if stochastic:
        x = torch.floor(x + torch.rand(x.shape, generator=generator, dtype=x.dtype))
    q = torch.round(x).clamp(-top, top)
    return q.to(torch.int8 if bits <= 8 else torch.int32), scale


def direction_deviation(g: torch.Tensor, g_hat: torch.Tensor) -> float:
    r"""The direction deviation of a quantized gradient, the cosine distance (U2):

    .. math:: d_c = 1 - \cos\langle \mathbf{g}, \hat{\mathbf{g}} \rangle
              = 1 - \frac{\mathbf{g} \cdot \hat{\mathbf{g}}}{\|\mathbf{g}\|\,\|\hat{\mathbf{g}}\|}

    in :math:`[0, 2]`; 0 means the same direction. A zero tensor has no direction: its deviation is 1 (the
    cosine is taken as 0). ``g`` and ``g_hat`` must be float tensors of one shape."""
    require_float_tensor(g, "g")
    require_float_tensor(g_hat, "g_hat")
    if g.shape != g_hat.shape:
        raise ValueError(f"g and g_hat must have the same shape, got {tuple(g.shape)} and {tuple(g_hat.shape)}")
    require_not_empty(g, "g")
    a, b = g.detach().double().flatten(), g_hat.detach().double().flatten()
    cosine = F.cosine_similarity(a, b, dim=0, eps=1e-300).item()
    return 1.0 - cosine


def dsgc_clip(g: torch.Tensor, bits: int = 8, ratios=RATIOS) -> tuple[float, float]:
    r"""Direction sensitive gradient clipping (U3): the clipping value that minimizes the deviation,

    .. math:: c^* = \arg\min_{c}\; d_c\big(\mathbf{g},\, \hat{\mathbf{g}}(c)\big),

    searched over :math:`c = r \max|\mathbf{g}|` for ``r`` in ``ratios`` (our grid of 25 values from
    :math:`2^{-6}` to 1; the paper's search procedure was not read). Nearest rounding, so the search is
    deterministic. Returns ``(c*, d_c(c*))``. A zero ``g`` raises ``ValueError`` (no direction to keep)."""
    require_float_tensor(g, "g")
    require_not_empty(g, "g")
    bits = require_bits(bits)
    ratios = [require_positive_number(r, "ratios", maximum=1.0) for r in ratios]
    if not ratios:
        raise ValueError("ratios must not be empty")
    peak = g.detach().abs().max().item()
    if not peak > 0 or not math.isfinite(peak):
        raise ValueError("g must be finite and not all zero (a zero gradient has no direction)")
    best = None
    for r in ratios:
        q, s = quantize_gradient(g, r * peak, bits)
        d = direction_deviation(g, q.float() * s)
        if best is None or d < best[1]:
            best = (r * peak, d)
    return best


def dclr_scale(deviation: float, alpha: float = ALPHA, beta: float = BETA) -> float:
    r"""Deviation counteractive learning-rate scaling (U4): the factor of the learning rate,

    .. math:: \phi(d_c) = \max\!\left(e^{-\alpha d_c},\; \beta\right), \qquad \eta_t = \phi(d_c)\,\eta_0,

    1 for an exact gradient, exponentially smaller as the deviation grows, never below ``beta``. The paper's
    summaries give :math:`\alpha = 20`, :math:`\beta = 0.1`."""
    if isinstance(deviation, bool) or not isinstance(deviation, (int, float)):
        raise TypeError(f"deviation must be a number, got {type(deviation).__name__}")
    if not 0.0 <= deviation <= 2.0:
        raise ValueError(f"deviation must be a cosine distance in [0, 2], got {deviation}")
    alpha = require_positive_number(alpha, "alpha")
    beta = require_positive_number(beta, "beta", maximum=1.0)
    return max(math.exp(-alpha * deviation), beta)


class _QuantizeError(torch.autograd.Function):
    """Identity forward; the backward hands on the quantized error (the quantizer module decides how)."""

    @staticmethod
    def forward(ctx, x, quantizer):
        ctx.quantizer = quantizer
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return ctx.quantizer.quantize_error(g), None


class ErrorQuantizer(nn.Module):
    r"""Put after a layer's output :math:`\mathbf{y}`: the identity in the forward pass; in the backward pass it
    replaces the error :math:`\mathbf{g} = \partial L / \partial \mathbf{y}` by its ``bits``-bit version (U1),
    so that the layer's two gradient products see an integer error. ``mode`` is ``"max"`` (clip at
    :math:`\max|\mathbf{g}|`), ``"dsgc"`` (clip at :func:`dsgc_clip`'s value, searched every ``period``
    backward passes and kept in between) or ``"float"`` (no quantization, the deviation stays 0). Each backward
    pass appends the deviation :math:`d_c` (U2) to ``deviations`` and stores it in ``deviation``."""

    def __init__(self, mode: str = "dsgc", bits: int = 8, period: int = 1, stochastic: bool = False):
        super().__init__()
        if require_str(mode, "mode") not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.bits = mode, require_bits(bits)
        self.period = require_int(period, "period", minimum=1)
        self.stochastic = require_bool(stochastic, "stochastic")
        self.ratio, self.steps, self.deviation, self.deviations = 1.0, 0, 0.0, []

    def quantize_error(self, g: torch.Tensor) -> torch.Tensor:
        peak = g.abs().max().item()
        if self.mode == "float" or not peak > 0:
            self.deviations.append(0.0)
            return g
        if self.mode == "dsgc" and self.steps % self.period == 0:
            self.ratio = dsgc_clip(g, self.bits)[0] / peak
        self.steps += 1
        q, s = quantize_gradient(g, self.ratio * peak if self.mode == "dsgc" else peak, self.bits,
                                 self.stochastic)
        g_hat = (q.float() * s).to(g.dtype)
        self.deviation = direction_deviation(g, g_hat)
        self.deviations.append(self.deviation)
        return g_hat

    def forward(self, x):
        return _QuantizeError.apply(x, self)

    def extra_repr(self):
        return f"mode={self.mode!r}, bits={self.bits}, period={self.period}, stochastic={self.stochastic}"


def _int8_forward(bits: int = 8):
    """Symmetric ``bits``-bit fake quantizers for a layer's weight (per tensor) and input (EMA range)."""
    return (qnn.MinMaxFakeQuantizer(bits, signed=True, symmetric=True),
            qnn.MinMaxFakeQuantizer(bits, signed=True, symmetric=True, momentum=0.1))


def install_error_quantizers(model: nn.Module, mode: str = "dsgc", bits: int = 8, period: int = 1) -> list:
    """Give every :class:`qteach.nn.QuantLinear` / ``QuantConv2d`` of ``model`` an :class:`ErrorQuantizer` on its
    output (a forward hook; the quantizer is stored as the layer's ``error_quantizer``). Returns them in order."""
    require_module(model)
    found = []
    for layer in model.modules():
        if isinstance(layer, (qnn.QuantLinear, qnn.QuantConv2d)):
            layer.error_quantizer = ErrorQuantizer(mode, bits, period)
            layer.register_forward_hook(lambda m, inputs, out: m.error_quantizer(out))
            found.append(layer.error_quantizer)
    if not found:
        raise ValueError("model has no QuantLinear or QuantConv2d layer to give an error quantizer")
    return found


def error_quantizers(model: nn.Module) -> list:
    """The :class:`ErrorQuantizer` modules of ``model``, in order."""
    return [m for m in require_module(model).modules() if isinstance(m, ErrorQuantizer)]


def int8_mlp(in_features: int = 64, hidden: int = 128, classes: int = 10, forward_bits: int | None = 8,
             backward: str | None = "dsgc", gradient_bits: int = 8, period: int = 1) -> nn.Sequential:
    """The chapter's network, the results pages' MLP: in → hidden → hidden → hidden → classes, the first and last
    layers in float, the two middle ones :class:`qteach.nn.QuantLinear` with ``forward_bits`` weights and
    inputs (``None``: float) and, unless ``backward`` is ``None``, an :class:`ErrorQuantizer` of that mode on
    their output. Batch norm and ReLU after each hidden layer."""
    in_features = require_int(in_features, "in_features", minimum=1)
    hidden = require_int(hidden, "hidden", minimum=1)
    classes = require_int(classes, "classes", minimum=2)
    if forward_bits is not None:
        require_bits(forward_bits, "forward_bits")
    layers = [nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
    for _ in range(2):
        wq, iq = _int8_forward(forward_bits) if forward_bits is not None else (None, None)
        layers += [qnn.QuantLinear(hidden, hidden, weight_quantizer=wq, input_quantizer=iq),
                   nn.BatchNorm1d(hidden), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(hidden, classes))
    if backward is not None:
        install_error_quantizers(model, backward, gradient_bits, period)
    return model


class DeviationScaledAdam(torch.optim.Adam):
    r"""Adam whose learning rate follows DCLR (U4) per layer: a parameter group with an ``"error_quantizer"``
    entry gets :math:`\phi(d_c)\,\eta_0` at each step, :math:`d_c` the deviation of that quantizer's last
    backward pass; other groups keep :math:`\eta_0`. (The paper trains with SGD; Adam here, as the book's
    protocol.) Build it with :meth:`for_model`."""

    def __init__(self, groups, lr: float = 1e-3, alpha: float = ALPHA, beta: float = BETA):
        self.alpha = require_positive_number(alpha, "alpha")
        self.beta = require_positive_number(beta, "beta", maximum=1.0)
        super().__init__(groups, lr=require_positive_number(lr, "lr"))
        for group in self.param_groups:
            group["base_lr"] = group["lr"]

    @classmethod
    def for_model(cls, model: nn.Module, lr: float = 1e-3, alpha: float = ALPHA, beta: float = BETA):
        """One group per layer with an error quantizer (its weight and bias), one for all other parameters."""
        require_module(model)
        groups, taken = [], set()
        for layer in model.modules():
            quantizer = getattr(layer, "error_quantizer", None)
            if isinstance(quantizer, ErrorQuantizer):
                params = [p for p in layer.parameters(recurse=False)]
                groups.append({"params": params, "error_quantizer": quantizer})
                taken |= {id(p) for p in params}
        groups.append({"params": [p for p in model.parameters() if id(p) not in taken]})
        return cls(groups, lr=lr, alpha=alpha, beta=beta)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            quantizer = group.get("error_quantizer")
            scale = 1.0 if quantizer is None else dclr_scale(quantizer.deviation, self.alpha, self.beta)
            group["lr"] = group["base_lr"] * scale
        return super().step(closure)


def comparison_layer(w_bits: int = 8, a_bits: int = 8):
    """``(weight_quantizer, input_quantizer, activation)`` of an INT8-training layer for
    :class:`qteach.comparison.Method`: symmetric 8-bit weights and inputs, ReLU after batch norm. The error
    quantizers and DCLR are added by :func:`protocol_fit`. Only ``w_bits = a_bits = 8``."""
    if require_int(w_bits, "w_bits", minimum=1) != 8 or require_int(a_bits, "a_bits", minimum=1) != 8:
        raise ValueError(f"w_bits and a_bits must be 8 (INT8 training), got {w_bits} and {a_bits}")
    return (*_int8_forward(8), nn.ReLU())


def protocol_fit(model: nn.Module, data, seed: int, protocol, mode: str = "dsgc", dclr: bool = True,
                 period: int = 10):
    """Train a protocol model built with :func:`comparison_layer`: 8-bit error quantizers (``mode``, DSGC
    searched every ``period`` steps) on its quantized layers, then the protocol's Adam loop, with DCLR
    (:class:`DeviationScaledAdam`) if ``dclr``. The ``fit`` of a :class:`qteach.comparison.Method`; returns
    :class:`qteach.train.History`."""
    from qteach import train

    require_module(model)
    require_bool(dclr, "dclr")
    install_error_quantizers(model, mode, 8, period)
    optimizer = ((lambda params: DeviationScaledAdam.for_model(model, lr=protocol.lr)) if dclr else "adam")
    return train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                     seed=seed, progress=False, optimizer=optimizer)
