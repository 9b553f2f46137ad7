r"""WRPN: Wide Reduced-Precision Networks. Fewer bits per value, more filters per layer.

Mishra, Nurvitadhi, Cook and Marr lower the precision of *both* the weights and the activations of a network and
recover the lost accuracy by making the layers wider (more filter maps). The cost model behind the trade: a
:math:`k`-bit multiply-accumulate is much cheaper than a 32-bit one, so a network that is :math:`2\times` wide
(:math:`4\times` the operations) at 4 bits can still cost less than the float network ("each operation is
:math:`8\times` more efficient than FP32", their introduction's AlexNet example).

The quantization scheme is deliberately simple, with fixed ranges and no learned or data-dependent scale:

.. math::
    w_q = \frac{1}{2^{k-1} - 1}\operatorname{round}\!\big((2^{k-1} - 1)\, \operatorname{clip}(w, -1, 1)\big),
    \qquad
    a_q = \frac{1}{2^{k} - 1}\operatorname{round}\!\big((2^{k} - 1)\, \operatorname{clip}(a, 0, 1)\big)

(:func:`quantize_weights`: :math:`k - 1` bits of magnitude and one sign bit; :func:`quantize_activations`:
:math:`k` bits for the non-negative activations), both trained with the straight-through estimator. Both are built
on :func:`qteach.quant.fake_quantize`; the activation quantizer is the same function as DoReFa-Net's
(:func:`qteach.papers.dorefa_net.quantize_activations`), which the tests check.

The formulas are as documented by Intel's Distiller library, whose ``WRPNQuantizer`` implements the paper
(``distiller/quantization/clipped_linear.py``); the paper's text and equation numbers could not be checked for
this book. The paper treats 1-bit weights separately (Distiller's documentation says so and does not implement
it); that case is not reproduced here: :func:`quantize_weights` needs :math:`k \ge 2`.

References:

- Mishra, Nurvitadhi, Cook, Marr, *WRPN: Wide Reduced-Precision Networks*, ICLR 2018.
  https://arxiv.org/abs/1709.01134
- Intel Distiller, ``WRPNQuantizer``: https://github.com/IntelLabs/distiller
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import hw, quant
from qteach import nn as qnn
from qteach._validate import require_bits, require_float_input, require_int

__all__ = [
    "FULL_PRECISION",
    "quantize_weights",
    "quantize_activations",
    "WRPNWeightQuantizer",
    "WRPNActivationQuantizer",
    "init_latent_weights_",
    "wrpn_mlp",
    "network_bops",
]

FULL_PRECISION = 32
"""``bits = 32`` means "leave this tensor in float" (no clipping either), the baseline of the width x bits grid."""


def _require_weight_bits(bits) -> int:
    bits = require_bits(bits)
    if bits < 2:
        raise ValueError("bits must be >= 2 for WRPN weights (k - 1 magnitude bits plus a sign bit); the paper's "
                         "separate 1-bit scheme is not implemented here")
    return bits


def quantize_weights(w: torch.Tensor, bits: int) -> torch.Tensor:
    r"""WRPN's :math:`k`-bit weights: clip to :math:`[-1, 1]`, round to :math:`2^{k-1} - 1` steps per unit.

    .. math::
        w_q = \frac{\operatorname{round}\big((2^{k-1}-1)\operatorname{clip}(w, -1, 1)\big)}{2^{k-1}-1},
        \qquad \frac{\partial w_q}{\partial w} = 1_{|w| \le 1}

    The levels are :math:`\{-1, \dots, -\tfrac{1}{2^{k-1}-1}, 0, \tfrac{1}{2^{k-1}-1}, \dots, 1\}`,
    :math:`2^k - 1` of them (symmetric, zero included); with :math:`k = 2` the weights are ternary
    :math:`\{-1, 0, 1\}`. Rounding is :func:`qteach.quant.fake_quantize`'s (half to even; the paper does not say
    how ties are rounded). ``bits = 32`` returns ``w`` unchanged.
    """
    require_float_input(w, "w")
    bits = _require_weight_bits(bits)
    if bits == FULL_PRECISION:
        return w
    steps = 2 ** (bits - 1) - 1
    clipped = torch.clamp(w, -1.0, 1.0)
    scale = torch.tensor(1.0 / steps, device=w.device)
    return quant.fake_quantize(clipped, scale, 0, bits=bits, signed=True)


def quantize_activations(x: torch.Tensor, bits: int) -> torch.Tensor:
    r"""WRPN's :math:`k`-bit activations: clip to :math:`[0, 1]`, round to :math:`2^k - 1` steps.

    .. math::
        a_q = \frac{\operatorname{round}\big((2^{k}-1)\operatorname{clip}(a, 0, 1)\big)}{2^{k}-1},
        \qquad \frac{\partial a_q}{\partial a} = 1_{0 \le a \le 1}

    It replaces the ReLU (the clip is a bounded ReLU). ``bits = 32`` returns ``relu(x)`` (a float network keeps
    its ReLU, as DoReFa-Net's code does for 32-bit activations).
    """
    require_float_input(x, "x")
    bits = require_bits(bits)
    if bits == FULL_PRECISION:
        return torch.relu(x)
    steps = 2**bits - 1
    clipped = torch.clamp(x, 0.0, 1.0)
    scale = torch.tensor(1.0 / steps, device=x.device)
    return quant.fake_quantize(clipped, scale, 0, bits=bits, signed=False)


class WRPNWeightQuantizer(nn.Module):
    r""":func:`quantize_weights` as a weight quantizer for :class:`qteach.nn.QuantLinear` /
    ``QuantConv2d``; ``precision = bits`` (32: float)."""

    def __init__(self, bits: int = 4):
        super().__init__()
        self.precision = _require_weight_bits(bits)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return quantize_weights(w, self.precision)

    def extra_repr(self) -> str:
        return f"bits={self.precision}"


class WRPNActivationQuantizer(nn.Module):
    r""":func:`quantize_activations` as a module: the network's nonlinearity, or the ``input_quantizer`` of a
    quantized layer whose input comes from a ReLU; ``precision = bits`` (32: a plain ReLU)."""

    def __init__(self, bits: int = 4):
        super().__init__()
        self.precision = require_bits(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_activations(x, self.precision)

    def extra_repr(self) -> str:
        return f"bits={self.precision}"


@torch.no_grad()
def init_latent_weights_(model: nn.Module, init_range: float = 1.0) -> int:
    r"""Draw the latent weights of every layer with a :class:`WRPNWeightQuantizer` of :math:`k < 32` bits uniformly
    from :math:`[-\text{init_range}, \text{init_range}]` (in place); returns the number of layers changed.

    WRPN's weight grid is fixed to :math:`[-1, 1]` with step :math:`1/(2^{k-1}-1)`: with PyTorch's default
    initialisation (:math:`|w| < 1/\sqrt{n_{in}}`) every 2-bit weight, and most 3- and 4-bit ones, round to 0 and
    the layer starts dead. Call this after building a model (batch norm after the layer makes the float network
    indifferent to the scale). The paper's own initialisation is not verified here.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(init_range, bool) or not isinstance(init_range, (int, float)) or not init_range > 0:
        raise ValueError(f"init_range must be a number > 0, got {init_range!r}")
    changed = 0
    for module in model.modules():
        quantizer = getattr(module, "weight_quantizer", None)
        if isinstance(quantizer, WRPNWeightQuantizer) and quantizer.precision != FULL_PRECISION:
            nn.init.uniform_(module.weight, -float(init_range), float(init_range))
            changed += 1
    return changed


def wrpn_mlp(width: int = 1, weight_bits: int = 4, activation_bits: int = 4, base: int = 16,
             in_features: int = 64, num_classes: int = 10, hidden_layers: int = 2, init_range: float = 1.0,
             seed: int = 0) -> nn.Sequential:
    r"""A multi-layer perceptron for the (width x bits) grid, widened by ``width``.

    The input (pixels in :math:`[0, 1]`) goes through a :class:`WRPNActivationQuantizer`; then
    ``hidden_layers`` blocks ``QuantLinear`` → ``BatchNorm1d`` → :class:`WRPNActivationQuantizer` of
    ``base * width`` units, and a ``QuantLinear`` classifier. Every layer has ``weight_bits``-bit weights and
    ``activation_bits``-bit inputs, the first and the last included (a choice made here to keep the bit-operation
    count simple; the paper's treatment of its first and last layers is not reproduced). Widening multiplies every
    hidden width, as WRPN widens every filter bank.

    The latent weights of the quantized layers are drawn uniformly from :math:`[-\text{init_range},
    \text{init_range}]`. WRPN's weight grid is fixed to :math:`[-1, 1]` with step :math:`1/(2^{k-1}-1)`, so
    PyTorch's default initialisation (:math:`|w| < 1/\sqrt{n_{in}}`) would round every 2-bit weight to 0 and
    leave the network dead; the batch norm after each hidden layer makes the float network indifferent to the
    scale. ``weight_bits = activation_bits = 32`` gives the float baseline.
    """
    width = require_int(width, "width", minimum=1)
    base = require_int(base, "base", minimum=1)
    hidden_layers = require_int(hidden_layers, "hidden_layers", minimum=1)
    in_features = require_int(in_features, "in_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    _require_weight_bits(weight_bits)
    require_bits(activation_bits)
    hidden = base * width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        layers: list = [WRPNActivationQuantizer(activation_bits)]
        for i in range(hidden_layers):
            layers += [qnn.QuantLinear(in_features if i == 0 else hidden, hidden, bias=False,
                                       weight_quantizer=WRPNWeightQuantizer(weight_bits)),
                       nn.BatchNorm1d(hidden), WRPNActivationQuantizer(activation_bits)]
        layers.append(qnn.QuantLinear(hidden, num_classes, weight_quantizer=WRPNWeightQuantizer(weight_bits)))
        model = nn.Sequential(*layers)
        init_latent_weights_(model, init_range)
    return model


def network_bops(model: nn.Module, input_shape) -> int:
    r"""Bit operations of one forward pass of ``model`` for one input: the sum over its ``Linear`` and ``Conv2d``
    layers of :math:`\text{MACs} \times b_w \times b_a` (:func:`qteach.hw.bops`).

    :math:`b_w` is the precision of the layer's ``weight_quantizer`` (32 without one). :math:`b_a` is the
    precision of its ``input_quantizer`` if it has one, else that of the closest module before it (in
    ``model.modules()`` order, since the previous layer) that has a ``precision``, an activation quantizer
    (batch norm in between is assumed folded), else 32. The grid's iso-BOPs contours come from here.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape):
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch dimension), got {input_shape!r}")
    total = 0
    last_bits = 32
    records = []

    def hook(module, inputs, output):
        positions = output[0, 0].numel() if isinstance(module, nn.Conv2d) else 1
        records.append((module, module.weight.numel() * positions))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    inside = {id(q) for m in layers for q in m.modules() if q is not m}  # the layers' own quantizers
    producer_bits = {}
    for m in model.modules():
        if id(m) in inside:
            continue
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            producer_bits[m] = last_bits
            last_bits = 32  # a layer's output is a wide accumulator until the next quantizer
        elif hasattr(m, "precision"):
            last_bits = int(m.precision)
    for module, macs in records:
        w_bits = qnn.precision_of(getattr(module, "weight_quantizer", None))
        quantizer = getattr(module, "input_quantizer", None)
        a_bits = qnn.precision_of(quantizer) if quantizer is not None else producer_bits.get(module, 32)
        total += hw.bops(macs, w_bits, a_bits)
    return total
