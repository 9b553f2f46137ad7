r"""Batch-normalization-free binarized network on an FPGA (Yonekawa and Nakahara, IPDPSW 2017).

A binarized layer computes an integer :math:`x = \sum_i w_i a_i` (XNOR and popcount, or additions of integer
pixels in the first layer), then batch normalization (BN) and the sign function:

.. math:: y = \gamma\,\frac{s\,x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
    a^{out} = \operatorname{sign}(y),

where :math:`s` is the scale of the accumulator (1 for binary inputs, :math:`1/16` for digit pixels stored as
integers 0..16). Implemented literally, BN needs a multiplier and an adder per neuron and four stored parameters.
The paper's observation is that the sign only looks at which side of zero :math:`y` falls on, so the constant
factor can be dropped and BN becomes a bias: the "BN-free" network is *mathematically equivalent* to the BN one and
"treats the binarized inputs and weights with the integer bias" (abstract). With that, every weight, input and output
of their VGG-16 fits in on-chip BRAM (abstract). Dividing by :math:`\gamma s / \sqrt{\sigma^2 + \epsilon}`:

.. math:: \operatorname{sign}(y) = \operatorname{sign}\big(f\,x + B\big), \qquad
    f = \operatorname{sign}(\gamma), \qquad
    B = \Big\lfloor f\,b' \Big\rfloor, \qquad
    b' = \frac{1}{s}\Big(\frac{\beta\sqrt{\sigma^2+\epsilon}}{\gamma} - \mu\Big).

The floor is exact because :math:`x` is an integer: :math:`x + b' \ge 0 \iff x + \lfloor b' \rfloor \ge 0`.
The factor :math:`f = \pm 1` is absorbed into the binary weights (negating a weight row costs nothing), so in
hardware each neuron keeps one small integer and one adder. The derivation above is ours, written from the
abstract's description; the paper's own equation numbers and notation were not available to us.

References:

- H. Yonekawa, H. Nakahara, *On-chip Memory Based Binarized Convolutional Deep Neural Network Applying Batch
  Normalization Free Technique on an FPGA*, IPDPS Workshops 2017.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from qteach import binary, bitops, deploy
from qteach import nn as qnn
from qteach._validate import require_bn_parameters, require_int, require_positive_number, require_tensor

__all__ = [
    "bn_sign_reference",
    "bn_free_bias",
    "fold_bn_sign",
    "bn_free_sign",
    "integer_bias_bits",
    "bnn_mlp",
    "BNFreeBNN",
    "LayerShape",
    "layer_memory_bits",
    "vgg16_layers",
    "XCZU9EG_BRAM_BITS",
]

#: Block RAM of the Zynq UltraScale+ XCZU9EG (the device of the ZCU102 board named in the abstract): 912 blocks of
#: 36 Kb. This is Xilinx's product-table figure as we know it, NOT a number read in the paper; treat it as a
#: labelled assumption. UltraRAM is not counted (the XCZU9EG has none).
XCZU9EG_BRAM_BITS = 912 * 36 * 1024


def bn_sign_reference(acc: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor,
                      var: torch.Tensor, eps: float = 1e-5, acc_scale: float = 1.0) -> torch.Tensor:
    r"""The float model the paper starts from: batch normalization, then the sign.

    .. math:: a^{out} = \operatorname{sign}\!\Big(\gamma\,\frac{s\,x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta\Big)

    ``acc`` (N, C) holds the integer accumulators :math:`x` (any dtype), ``acc_scale`` is :math:`s`. Computed in
    float64, with :math:`\operatorname{sign}(0) = +1`. Returns float64 :math:`\pm 1`.
    """
    require_tensor(acc, "acc")
    require_bn_parameters(gamma, beta, mean, var)
    if acc.dim() != 2 or acc.shape[1] != gamma.shape[0]:
        raise ValueError(f"acc must be (N, {gamma.shape[0]}), got shape {tuple(acc.shape)}")
    require_positive_number(acc_scale, "acc_scale")
    require_positive_number(eps, "eps")
    g, b, m, v = (t.double() for t in (gamma, beta, mean, var))
    y = g * (acc_scale * acc.double() - m) / torch.sqrt(v + eps) + b
    return binary.sign(y)


def _require_optional_bound(acc_bound) -> int | None:
    """``acc_bound`` as an int of at least 1, or None."""
    return None if acc_bound is None else require_int(acc_bound, "acc_bound", minimum=1)


def bn_free_bias(gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                 eps: float = 1e-5, acc_scale: float = 1.0, acc_bound: int | None = None):
    r"""Fold BN and sign into a weight-sign flip and an integer bias: :math:`\operatorname{sign}(f x + B)`.

    .. math:: f = \operatorname{sign}(\gamma), \qquad
        b' = \frac{1}{s}\Big(\frac{\beta\sqrt{\sigma^2+\epsilon}}{\gamma} - \mu\Big), \qquad
        B = \lfloor f\,b' \rfloor

    For :math:`\gamma > 0`, :math:`y \ge 0 \iff x \ge -b'`; :math:`x` is an integer, so this is
    :math:`x + \lfloor b' \rfloor \ge 0`. For :math:`\gamma < 0` the inequality turns around,
    :math:`-x + \lfloor -b' \rfloor \ge 0`. For :math:`\gamma = 0` the output is the constant
    :math:`\operatorname{sign}(\beta)`, which a bias beyond the accumulator's range reproduces.

    The folding itself is the book's core one, :func:`qteach.deploy.bn_sign_threshold`: "+1 iff
    :math:`f x \ge \tau`" with :math:`\tau = \lceil -f b' \rceil`. The BN-free form only moves the threshold to
    the other side, :math:`B = -\tau = \lfloor f b' \rfloor`: an adder instead of a comparator.

    ``acc_bound`` is the largest :math:`|x|` the layer can produce (``fan_in`` for binary inputs). When given, ``B``
    is clamped to :math:`[-M-1, M]`, which changes no output (beyond that range the sign is already constant) and
    bounds the bias to :func:`integer_bias_bits` bits; it is required when some :math:`\gamma = 0`.
    Computed in float64. Returns ``(flip, bias)``, both int64 of shape (C,).
    """
    require_bn_parameters(gamma, beta, mean, var)
    require_positive_number(acc_scale, "acc_scale")
    require_positive_number(eps, "eps")
    acc_bound = _require_optional_bound(acc_bound)
    if acc_bound is None and bool((gamma == 0).any()):
        raise ValueError("gamma has zeros (a constant output); pass acc_bound so the bias can reproduce it")
    low, high = (None, None) if acc_bound is None else (-acc_bound, acc_bound)
    threshold = deploy.bn_sign_threshold(gamma, beta, mean, var, eps, low, high, scale=acc_scale)
    return threshold.flip.to(torch.int64), -threshold.tau


def fold_bn_sign(bn: nn.BatchNorm1d, acc_scale: float = 1.0, acc_bound: int | None = None):
    """:func:`bn_free_bias` with the parameters and running statistics of an eval-mode ``BatchNorm1d``/``2d``.

    With ``acc_bound`` the threshold comes from :func:`qteach.deploy.fold_threshold`, which also checks it
    against the module's own float32 arithmetic (for accumulators fed as ``acc_scale * x``), so the BN-free neuron
    equals the float model exactly, near ties included; without it there is no range to check over, and this is
    :func:`bn_free_bias` (float64) on the module's parameters.
    """
    require_positive_number(acc_scale, "acc_scale")
    if acc_bound is None:
        gamma, beta, mean, var = deploy.bn_parameters(bn, "bn")
        return bn_free_bias(gamma, beta, mean, var, bn.eps, acc_scale)
    acc_bound = require_int(acc_bound, "acc_bound", minimum=1)
    threshold = deploy.fold_threshold(bn, -acc_bound, acc_bound, scale=acc_scale)
    return threshold.flip.to(torch.int64), -threshold.tau


def bn_free_sign(acc: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    r"""The BN-free neuron: add the integer bias and keep the sign bit, :math:`\operatorname{sign}(x + B)`.

    ``acc`` (N, C) is an integer tensor (the flip :math:`f` already applied through the weights), ``bias`` (C,)
    int64. Returns int64 :math:`\pm 1`. This is an adder and the adder's sign bit: no multiplier, one parameter.
    """
    require_tensor(acc, "acc")
    require_tensor(bias, "bias")
    if acc.is_floating_point() or bias.is_floating_point():
        raise TypeError("acc and bias must be integer tensors (the BN-free network has no floating point)")
    if acc.dim() != 2 or bias.shape != (acc.shape[1],):
        raise ValueError(f"acc must be (N, C) and bias (C,), got {tuple(acc.shape)} and {tuple(bias.shape)}")
    return binary.sign(acc.to(torch.int64) + bias)


def integer_bias_bits(acc_bound: int) -> int:
    r"""Bits of a two's-complement integer that holds every useful bias :math:`B \in [-M-1, M]`.

    .. math:: b = \lceil \log_2 (M + 1) \rceil + 1

    (the smallest :math:`b` with :math:`2^{b-1} \ge M + 1`). A layer with fan-in 576 and binary inputs needs 11 bits
    per neuron instead of four 32-bit BN parameters.
    """
    acc_bound = require_int(acc_bound, "acc_bound", minimum=1)
    return acc_bound.bit_length() + 1


def bnn_mlp(in_features: int, hidden: int, num_classes: int, layers: int = 2) -> nn.Sequential:
    r"""A binarized MLP: ``layers`` blocks of [binary-weight linear, BN, sign], then a binary-weight linear output.

    The first layer takes real inputs (here: integer pixels times a scale); later layers take :math:`\pm 1`.
    No biases: BN provides the shift. The output layer's integer scores are the logits (train with a scaled loss).
    """
    in_features = require_int(in_features, "in_features", minimum=1)
    hidden = require_int(hidden, "hidden", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    layers = require_int(layers, "layers", minimum=1)
    modules, width = [], in_features
    for _ in range(layers):
        modules += [qnn.QuantLinear(width, hidden, bias=False, weight_quantizer=qnn.SignQuantizer()),
                    nn.BatchNorm1d(hidden), qnn.SignQuantizer()]
        width = hidden
    modules.append(qnn.QuantLinear(width, num_classes, bias=False, weight_quantizer=qnn.SignQuantizer()))
    return nn.Sequential(*modules)


class BNFreeBNN:
    r"""The integer-only network: packed binary weights (rows flipped by :math:`f`) and one integer bias per neuron.

    Built from a trained :func:`bnn_mlp` with :meth:`from_sequential`. :meth:`forward` takes the first layer's
    input as integers (``x_int`` with ``x = input_scale * x_int``) and runs: an integer matrix product in the first
    layer, XNOR-popcount (:func:`qteach.bitops.xnor_matmul_packed`) afterwards, :func:`bn_free_sign` after each hidden
    layer, and integer scores at the output. Nothing is a float.
    """

    def __init__(self, first_weight: torch.Tensor, first_bias: torch.Tensor, hidden: list, output_packed,
                 output_fan_in: int, input_max: int):
        self.first_weight = first_weight          # (H, in) int64 of +-1, rows flipped
        self.first_bias = first_bias              # (H,) int64
        self.hidden = hidden                      # list of (packed weights (H, ceil(K/8)) uint8, K, bias (H,))
        self.output_packed = output_packed
        self.output_fan_in = output_fan_in
        self.input_max = input_max

    @classmethod
    def from_sequential(cls, model: nn.Sequential, input_scale: float, input_max: int) -> "BNFreeBNN":
        """Convert a trained :func:`bnn_mlp` (eval-mode BN statistics) for inputs ``x = input_scale * x_int`` with
        integer ``x_int`` in ``[0, input_max]``."""
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential from bnn_mlp, got {type(model).__name__}")
        require_positive_number(input_scale, "input_scale")
        input_max = require_int(input_max, "input_max", minimum=1)
        mods = list(model)
        if len(mods) < 4 or (len(mods) - 1) % 3:
            raise ValueError("model must be [QuantLinear, BatchNorm1d, SignQuantizer] * n + [QuantLinear]")
        for i in range(0, len(mods) - 1, 3):
            lin, bn, act = mods[i:i + 3]
            if not (isinstance(lin, qnn.QuantLinear) and isinstance(bn, nn.BatchNorm1d)
                    and isinstance(act, qnn.SignQuantizer)):
                raise ValueError(f"block {i // 3} must be QuantLinear, BatchNorm1d, SignQuantizer")
        if not isinstance(mods[-1], qnn.QuantLinear):
            raise ValueError("the last module must be a QuantLinear")
        with torch.no_grad():
            first, bn = mods[0], mods[1]
            fan_in = first.in_features
            flip, bias = fold_bn_sign(bn, acc_scale=input_scale, acc_bound=fan_in * input_max)
            first_weight = (binary.sign(first.weight).to(torch.int64) * flip[:, None])
            hidden = []
            for i in range(3, len(mods) - 1, 3):
                lin, bn = mods[i], mods[i + 1]
                flip, bias_h = fold_bn_sign(bn, acc_scale=1.0, acc_bound=lin.in_features)
                w = binary.sign(lin.weight) * flip[:, None].to(lin.weight.dtype)
                hidden.append((bitops.pack_bits(w), lin.in_features, bias_h))
            out = mods[-1]
            output_packed = bitops.pack_bits(binary.sign(out.weight))
        return cls(first_weight, bias, hidden, output_packed, out.in_features, input_max)

    def forward(self, x_int: torch.Tensor):
        """Integer scores (N, classes) int64 and the list of hidden activations (int64 of +-1)."""
        require_tensor(x_int, "x_int")
        if x_int.is_floating_point():
            raise TypeError("x_int must be an integer tensor (the pixels as stored, e.g. 0..16)")
        if x_int.dim() != 2 or x_int.shape[1] != self.first_weight.shape[1]:
            raise ValueError(f"x_int must be (N, {self.first_weight.shape[1]}), got {tuple(x_int.shape)}")
        if bool(((x_int < 0) | (x_int > self.input_max)).any()):
            raise ValueError(f"x_int must hold integers in [0, {self.input_max}]")
        acc = x_int.to(torch.int64) @ self.first_weight.T
        h = bn_free_sign(acc, self.first_bias)
        activations = [h]
        for packed, k, bias in self.hidden:
            acc = bitops.xnor_matmul_packed(bitops.pack_bits(h), packed, k).to(torch.int64)
            h = bn_free_sign(acc, bias)
            activations.append(h)
        scores = bitops.xnor_matmul_packed(bitops.pack_bits(h), self.output_packed, self.output_fan_in)
        return scores.to(torch.int64), activations

    __call__ = forward

    def biases(self) -> list:
        """The integer biases of the hidden layers, first layer first."""
        return [self.first_bias] + [b for _, _, b in self.hidden]


@dataclass(frozen=True)
class LayerShape:
    """One layer for the memory budget: ``fan_in`` weights per output value, ``channels`` outputs (neurons or
    output channels), ``positions`` output positions (1 for a fully connected layer), ``acc_bound`` the largest
    accumulator magnitude, ``binarized_output`` whether BN + sign follows (False for the class scores)."""

    name: str
    fan_in: int
    channels: int
    positions: int
    acc_bound: int
    binarized_output: bool = True


def layer_memory_bits(layer: LayerShape, weight_bits: int = 1, norm: str = "bn_free",
                      bn_param_bits: int = 32) -> dict:
    r"""On-chip bits of one layer's parameters: weights plus what normalization needs per output channel.

    .. math:: M_w = \text{fan\_in} \cdot C \cdot b_w, \qquad
        M_{BN} = 4\,b_{BN}\,C \;(\gamma, \beta, \mu, \sigma^2), \qquad
        M_{BN\text{-}free} = C\,(\lceil \log_2(M+1) \rceil + 1)

    ``norm`` is ``"batchnorm"`` (four ``bn_param_bits`` parameters per channel), ``"bn_free"`` (one integer bias of
    :func:`integer_bias_bits` bits) or ``"none"``. A layer without binarized output stores no normalization.
    Returns ``{"weights": ..., "norm": ..., "total": ...}`` in bits.
    """
    if not isinstance(layer, LayerShape):
        raise TypeError(f"layer must be a LayerShape, got {type(layer).__name__}")
    weight_bits = require_int(weight_bits, "weight_bits", minimum=1, maximum=32)
    bn_param_bits = require_int(bn_param_bits, "bn_param_bits", minimum=1, maximum=64)
    if norm not in ("batchnorm", "bn_free", "none"):
        raise ValueError(f"norm must be 'batchnorm', 'bn_free' or 'none', got {norm!r}")
    weights = layer.fan_in * layer.channels * weight_bits
    if not layer.binarized_output or norm == "none":
        norm_bits = 0
    elif norm == "batchnorm":
        norm_bits = 4 * bn_param_bits * layer.channels
    else:
        norm_bits = integer_bias_bits(layer.acc_bound) * layer.channels
    return {"weights": weights, "norm": norm_bits, "total": weights + norm_bits}


def vgg16_layers(input_size: int = 224, num_classes: int = 1000, fc_width: int = 4096,
                 input_bits: int = 8) -> list:
    r"""The 16 weight layers of VGG-16 (Simonyan and Zisserman, configuration D) as :class:`LayerShape` rows.

    Thirteen 3x3 convolutions (64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3, M; padding 1) and three fully
    connected layers (``fc_width``, ``fc_width``, ``num_classes``). The first layer takes ``input_bits``-bit RGB
    pixels, so its accumulator bound is :math:`27 (2^{b}-1)`; every later layer has binary inputs, bound = fan-in.
    ``input_size`` must be a multiple of 32 (224 for ImageNet, 32 for CIFAR-10 variants).
    """
    input_size = require_int(input_size, "input_size", minimum=32)
    if input_size % 32:
        raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    fc_width = require_int(fc_width, "fc_width", minimum=1)
    input_bits = require_int(input_bits, "input_bits", minimum=1, maximum=16)
    plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    rows, c_in, size, block, index = [], 3, input_size, 1, 1
    for item in plan:
        if item == "M":
            size //= 2
            block, index = block + 1, 1
            continue
        fan_in = 9 * c_in
        bound = fan_in * (2**input_bits - 1) if not rows else fan_in
        rows.append(LayerShape(f"conv{block}_{index}", fan_in, item, size * size, bound))
        c_in, index = item, index + 1
    width = c_in * size * size
    for i, out in enumerate([fc_width, fc_width, num_classes]):
        rows.append(LayerShape(f"fc{6 + i}", width, out, 1, width, binarized_output=i < 2))
        width = out
    return rows
