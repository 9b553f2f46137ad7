r"""Binary and ternary dense layers in hls4ml, with batch norm folded into thresholds (Ngadiuba et al., MLST 2020).

hls4ml turns a trained Keras model into fully on-chip FPGA firmware. The paper adds binary and ternary layers and
studies what they cost and save on two tasks, MNIST and LHC jet tagging (16 features, 5 classes). What we could
read: the abstract and the introduction (arXiv 2003.06308), and the code the paper describes, which is the
reference for every formula below:

- hls4ml v0.2.0 (commit d6b529edde91ee48fd94918ded61d503ae6f0661, March 2020):
  ``hls4ml/model/hls_model.py`` lines 295-305 (``quantize_data``: binary ``w > 0``, ternary ``|w| > 0.5``),
  ``hls4ml/model/optimizer/passes/bn_quant.py`` lines 33-43 (batch norm folded into one or two thresholds) and
  line 162 (thresholds floored for an integer accumulator), ``templates/vivado/nnet_utils/nnet_batchnorm.h`` lines
  125 and 148-150 (``x > t``; ``x > t_hi``, ``x <= t_lo``), ``nnet_dense.h`` lines 58-81 (products by a 1- or
  2-bit weight: XNOR, negate, or mux; no multiplier) and line 97 (popcount to a signed sum);
- the training code, fastmachinelearning/keras-training (commit b7ef86f59d0d49574855fb57313ae5ee2a79e500):
  ``layers/quantized_ops.py`` lines 37-49 (``binary_tanh``) and 254-265 (``_ternarize``: threshold 0.5 H),
  ``models/models.py`` lines 35-37 (``ternary_tanh``) and 216-262 (the jet models: 16 → 64 → 32 → 32 → 5, no
  bias, batch norm after every layer).

Not read: the paper's result tables (accuracies, resources, latencies) and its text beyond the introduction.

Reference: J. Ngadiuba, V. Loncar, M. Pierini, S. Summers, G. Di Guglielmo, J. Duarte, P. Harris, D. Rankin,
S. Jindariani, M. Liu, K. Pedro, N. Tran, E. Kreinar, S. Sagear, Z. Wu, D. Hoang, *Compressing deep neural networks
on FPGAs to binary and ternary precision with hls4ml*, Machine Learning: Science and Technology 2 (2020) 015001.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from qteach import bitops
from qteach import nn as qnn
from qteach._validate import (
    require_bn_parameters,
    require_float_tensor,
    require_int,
    require_module,
    require_non_negative_number,
    require_positive_number,
    require_str,
)
from qteach.binary import straight_through

__all__ = [
    "JET_WIDTHS",
    "TERNARY_THRESHOLD",
    "BinaryTanh",
    "BinaryWeight",
    "TernaryTanh",
    "TernaryWeight",
    "apply_thresholds",
    "binarize",
    "binary_threshold",
    "comparison_layer",
    "integer_forward",
    "jet_mlp",
    "layer_resources",
    "model_resources",
    "ternarize",
    "ternary_thresholds",
]

#: The jet-tagging model of the training code (models.py lines 216-262): three hidden layers 64, 32, 32.
JET_WIDTHS = (64, 32, 32)
#: The ternary threshold, as a fraction of the clipping range H (quantized_ops.py line 265).
TERNARY_THRESHOLD = 0.5


def binarize(w: torch.Tensor) -> torch.Tensor:
    r"""hls4ml's binary quantizer (hls_model.py line 302): :math:`b(w) = +1` if :math:`w > 0`, else :math:`-1`
    (zero goes to :math:`-1`, unlike :func:`qteach.binary.sign`)."""
    require_float_tensor(w, "w")
    return torch.where(w > 0, torch.ones_like(w), -torch.ones_like(w))


def ternarize(w: torch.Tensor, h: float = 1.0) -> torch.Tensor:
    r"""The ternary quantizer of hls4ml and its training code (quantized_ops.py line 265, hls_model.py line 304).

    .. math:: t(w) = H \cdot \begin{cases} +1 & w/H > 0.5 \\ -1 & w/H \le -0.5 \\ 0 & \text{otherwise} \end{cases}

    A fixed threshold of half the clipping range H, with no learned or data-dependent scale (TWN's is
    :math:`0.7\,\overline{|w|}` with a scale :math:`\alpha`).
    """
    require_float_tensor(w, "w")
    h = require_positive_number(h, "h")
    r = w / h
    one = torch.ones_like(w)
    return h * torch.where(r > TERNARY_THRESHOLD, one, torch.where(r <= -TERNARY_THRESHOLD, -one, 0 * one))


class BinaryWeight(nn.Module):
    """Binary weights for training: :func:`binarize` forward, straight-through gradient (latent weights clipped to
    [-1, 1] by the training loop, as the Keras layers' ``Clip(-H, H)`` constraint with H = 1)."""

    precision = 1

    def forward(self, w):
        with torch.no_grad():
            q = binarize(w)
        return straight_through(w, q)


class TernaryWeight(nn.Module):
    """Ternary weights for training: :func:`ternarize` (H = 1) forward, straight-through gradient
    (``ternarize`` in quantized_ops.py: ``W + stop_gradient(Wt - W)``)."""

    precision = 2

    def forward(self, w):
        with torch.no_grad():
            q = ternarize(w)
        return straight_through(w, q)


class BinaryTanh(nn.Module):
    r"""``binary_tanh`` (quantized_ops.py line 49): :math:`2\,\mathrm{round}(\mathrm{clip}((x+1)/2, 0, 1)) - 1`,
    i.e. +1 if x > 0 else -1 (round half to even sends 0 to -1); gradient of hard tanh, 1 for |x| < 1."""

    def forward(self, x):
        with torch.no_grad():
            q = binarize(x)
        return straight_through(x.clamp(-1, 1), q)


class TernaryTanh(nn.Module):
    r"""``ternary_tanh`` (models.py lines 35-37): clip to [-1, 1], then :func:`ternarize` with H = 1;
    gradient of the clip."""

    def forward(self, x):
        x = x.clamp(-1, 1)
        with torch.no_grad():
            q = ternarize(x)
        return straight_through(x, q)


def binary_threshold(gamma, beta, mean, var, eps: float = 1e-3):
    r"""Fold a batch norm and the binary tanh after it into one threshold per neuron (bn_quant.py line 33).

    .. math:: \gamma\,\frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta > 0 \iff d\,(x - t) > 0, \qquad
        t = \mu - \frac{\beta\sqrt{\sigma^2 + \epsilon}}{\gamma}, \quad d = \operatorname{sign}(\gamma)

    hls4ml stores :math:`t` and compares ``x > t`` (nnet_batchnorm.h line 125), which assumes :math:`\gamma > 0`;
    the direction :math:`d` makes the fold exact for a negative :math:`\gamma` too. Float64; returns ``(t, d)``.
    The core's :func:`qteach.deploy.bn_sign_threshold` is the same fold for sign(0) = +1 and integer inputs.
    """
    require_bn_parameters(gamma, beta, mean, var)
    eps = require_non_negative_number(eps, "eps")
    if bool((gamma == 0).any()):
        raise ValueError("gamma must be nonzero (a zero gamma makes the neuron a constant: no threshold)")
    sigma = torch.sqrt(var.double() + eps)
    t = mean.double() - beta.double() * sigma / gamma.double()
    return t, torch.sign(gamma.double())


def ternary_thresholds(gamma, beta, mean, var, eps: float = 1e-3):
    r"""Fold a batch norm and the ternary tanh after it into two thresholds per neuron (bn_quant.py lines 40-41).

    .. math:: t_{hi} = t + \frac{0.5}{\gamma / \sqrt{\sigma^2+\epsilon}}, \qquad
        t_{lo} = t - \frac{0.5}{\gamma / \sqrt{\sigma^2+\epsilon}}

    with :math:`t` of :func:`binary_threshold`. Output +1 where :math:`d\,(x - t_{hi}) > 0`, -1 where
    :math:`d\,(x - t_{lo}) \le 0`, else 0 (nnet_batchnorm.h lines 148-150 for d = +1). Returns ``(t_hi, t_lo, d)``.
    """
    t, d = binary_threshold(gamma, beta, mean, var, eps)
    half = TERNARY_THRESHOLD * torch.sqrt(var.double() + eps) / gamma.double()
    return t + half, t - half, d


def apply_thresholds(x: torch.Tensor, thresholds) -> torch.Tensor:
    """The folded activation: ``thresholds`` from :func:`binary_threshold` (2 items) or :func:`ternary_thresholds`
    (3 items); ``x`` (..., neurons). Returns float64 values in {-1, +1} or {-1, 0, +1}."""
    require_float_tensor(x, "x")
    if not isinstance(thresholds, tuple) or len(thresholds) not in (2, 3):
        raise TypeError("thresholds must be the tuple returned by binary_threshold or ternary_thresholds")
    x, d = x.double(), thresholds[-1]
    hi = (d * (x - thresholds[0]) > 0).double()
    lo = (d * (x - thresholds[-2]) <= 0).double() if len(thresholds) == 3 else 1 - hi
    return hi - lo


def jet_mlp(kind: str = "binary", width: int = 1, first_bits: int | None = 8, in_features: int = 16,
            classes: int = 5) -> nn.Sequential:
    """The jet model (models.py lines 216-262) with its hidden widths times ``width``: every dense layer without
    bias and followed by batch norm (eps 1e-3, PyTorch's default momentum). ``kind`` "float" (ReLU), "binary" or
    "ternary" (weights and activations). ``first_bits`` = 8 keeps the first layer at 8-bit weights; ``None``
    quantizes it like the others. Latent weights start uniform in [-1, 1] (the Keras ``RandomUniform(-H, H)``)."""
    kind = require_str(kind, "kind")
    if kind not in ("float", "binary", "ternary"):
        raise ValueError(f"kind must be 'float', 'binary' or 'ternary', got {kind!r}")
    width = require_int(width, "width", minimum=1)
    if first_bits is not None:
        first_bits = require_int(first_bits, "first_bits", minimum=2, maximum=16)
    sizes = [require_int(in_features, "in_features", 1)] + [width * n for n in JET_WIDTHS]
    sizes.append(require_int(classes, "classes", minimum=2))
    make_weight = {"float": lambda: None, "binary": BinaryWeight, "ternary": TernaryWeight}[kind]
    make_act = {"float": nn.ReLU, "binary": BinaryTanh, "ternary": TernaryTanh}[kind]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        quantizer = make_weight()
        if i == 0 and first_bits is not None and kind != "float":
            quantizer = qnn.MinMaxFakeQuantizer(bits=first_bits, signed=True, symmetric=True)
        linear = qnn.QuantLinear(sizes[i], sizes[i + 1], bias=False, weight_quantizer=quantizer)
        if kind != "float":
            nn.init.uniform_(linear.weight, -1.0, 1.0)
        layers += [linear, nn.BatchNorm1d(sizes[i + 1], eps=1e-3)]
        if i < len(sizes) - 2:
            layers.append(make_act())
    return nn.Sequential(*layers)


def _layers(model):
    mods = list(model)
    return [(mods[i], mods[i + 1]) for i in range(0, len(mods), 3)]


def integer_forward(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The firmware's arithmetic for a binary or ternary :func:`jet_mlp` in eval mode: the first layer on ``x``,
    every batch norm + activation as folded thresholds, every later layer on {-1, 0, +1} codes in integers (XNOR
    and popcount, :func:`qteach.bitops.xnor_matmul`, when inputs and weights are both binary; else an integer sum
    of +-inputs). Returns the logits (the last batch norm) in float64."""
    require_module(model)
    require_float_tensor(x, "x")
    pairs = _layers(model)
    act = type(model[2])
    if act not in (BinaryTanh, TernaryTanh):
        raise ValueError("model must be a binary or ternary jet_mlp")
    fold = binary_threshold if act is BinaryTanh else ternary_thresholds
    h = x.double() @ pairs[0][0].quantized_weight().detach().double().T
    for (_, bn), (linear, _) in itertools.pairwise(pairs):
        codes = apply_thresholds(h, fold(bn.weight.detach(), bn.bias.detach(), bn.running_mean,
                                         bn.running_var, bn.eps))
        w = linear.quantized_weight().detach()
        if act is BinaryTanh:
            h = bitops.xnor_matmul(codes.float(), w).double()
        else:
            h = (codes.long() @ w.long().T).double()
    bn = pairs[-1][1]
    return (h - bn.running_mean.double()) / torch.sqrt(bn.running_var.double() + bn.eps) * \
        bn.weight.detach().double() + bn.bias.detach().double()


def layer_resources(weight: torch.Tensor, in_bits: int, w_bits: int) -> dict:
    """Our resource proxy of one fully parallel dense layer (reuse factor 1), not the paper's numbers: a product
    by a weight in {-1, 0, +1} is a negation or a mux (nnet_dense.h lines 58-81), so it needs no multiplier; a
    product of two multi-bit operands is one multiplier (DSP). Zero weights are dropped. ``lut_bits`` counts the
    bits entering the adder tree: nonzero weights times the product width (``in_bits`` for a ±1 weight,
    ``in_bits + w_bits`` otherwise; 1 for an XNOR)."""
    require_float_tensor(weight, "weight")
    in_bits = require_int(in_bits, "in_bits", minimum=1)
    w_bits = require_int(w_bits, "w_bits", minimum=1)
    nonzero = int((weight != 0).sum())
    trivial = w_bits <= 2
    width = in_bits if trivial else in_bits + w_bits
    return {"multipliers": 0 if trivial or in_bits == 1 else nonzero, "lut_bits": nonzero * width,
            "nonzero_weights": nonzero}


def model_resources(model: nn.Sequential, in_bits: int = 16, float_bits: int = 16) -> dict:
    """:func:`layer_resources` summed over a :func:`jet_mlp`: inputs of ``in_bits`` (16-bit fixed point, hls4ml's
    default ``ap_fixed<16,6>``), float weights counted as ``float_bits``, binary/ternary activations as 1/2 bits."""
    require_module(model)
    in_bits = require_int(in_bits, "in_bits", minimum=1)
    float_bits = require_int(float_bits, "float_bits", minimum=2)
    total = {"multipliers": 0, "lut_bits": 0, "nonzero_weights": 0}
    act = {BinaryTanh: 1, TernaryTanh: 2}.get(type(model[2]), in_bits)
    bits_in = in_bits
    for linear, _ in _layers(model):
        q = linear.weight_quantizer
        w_bits = float_bits if q is None else qnn.precision_of(q)
        one = layer_resources(linear.quantized_weight().detach(), bits_in, w_bits)
        total = {k: total[k] + one[k] for k in total}
        bits_in = act
    return total


def comparison_layer(w_bits: int = 2, a_bits: int = 2):
    """``(weight_quantizer, input_quantizer, activation)`` of an hls4ml ternary layer for
    :class:`qteach.comparison.Method`: ternary weights (threshold 0.5, no scale), ternary tanh after the batch
    norm. Only 2/2; the binary layers are BNN's (see the chapter)."""
    if (require_int(w_bits, "w_bits"), require_int(a_bits, "a_bits")) != (2, 2):
        raise ValueError(f"only w_bits = a_bits = 2 exist, got {w_bits}/{a_bits}")
    return TernaryWeight(), None, TernaryTanh()
