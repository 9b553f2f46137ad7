r"""MeliusNet: Dense blocks that add binary channels, Improvement blocks that add a residual to the newest ones.

J. Bethge, C. Bartz, H. Yang, Y. Chen, C. Meinel, *MeliusNet: Can Binary Neural Networks Achieve MobileNet-level
Accuracy?*, arXiv:2001.05936, 2020. For this book the abstract and the introduction of the paper could be read,
not its method section or its tables; the block structure below is transcribed from the official code,
BMXNet-v2-examples (https://github.com/hpi-xnor/BMXNet-v2-examples, commit a5cd3be), cited by file and line.

**Dense block** (``binary_models/basenet_dense.py`` lines 120-142, ``_add_dense_block`` without bottleneck):
batch norm, sign, a binary convolution producing :math:`k` ("growth rate", 64 by default, line 208) new
channels, concatenated to the input: :math:`c \to c + k` channels,

.. math:: x' = \big[\, x,\; W_b \circledast \operatorname{sign}(\mathrm{BN}(x)) \,\big].

**Improvement block** (``binary_models/meliusnet.py`` lines 32-62, ``ImprovementBlock``): batch norm, sign, a
binary convolution from all :math:`c + k` channels to :math:`k` channels, *added* to the last :math:`k` channels
(the ones the dense block just made); the first :math:`c` channels pass unchanged,

.. math:: y = W_b' \circledast \operatorname{sign}(\mathrm{BN}(x')), \qquad
    x'' = \big[\, x'_{1..c},\; x'_{c+1..c+k} + y \,\big].

A stage alternates the two (``MeliusNet._add_base_block_structure``, lines 65-70); stages are separated by the
transition of BinaryDenseNet (``basenet_dense.py`` line 37: batch norm, max pooling, ReLU and a full-precision
1 × 1 convolution that reduces the channels, lines 144-177; the MLP form of the 2019 chapter is
:func:`qteach.papers.accurate_bnn_from_scratch.transition`), here in its convolutional form. The binary layer (sign with the gradient cancelled above 1,
unscaled sign weights) is BMXNet-v2's, :mod:`qteach.papers.competitive_bnn_from_scratch`.

References:

- J. Bethge, C. Bartz, H. Yang, Y. Chen, C. Meinel, arXiv:2001.05936, 2020.
- Official code: https://github.com/hpi-xnor/BMXNet-v2 and https://github.com/hpi-xnor/BMXNet-v2-examples.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_module,
    require_optional_positive_number,
    require_pair,
    require_shape,
    require_str,
)
from qteach.papers import competitive_bnn_from_scratch as cb

__all__ = [
    "BLOCKS",
    "DenseLayer",
    "ImprovementBlock",
    "binary_conv",
    "comparison_conv_block",
    "counts",
    "improve_last",
    "melius_cnn",
    "melius_stage",
    "stage_binary_weights",
]

#: Block letters of :func:`melius_stage`: ``D`` a dense block, ``I`` an improvement block.
BLOCKS = ("D", "I")


def binary_conv(in_channels: int, out_channels: int, kernel_size=(1, 5), threshold: float | None = 1.0):
    """BMXNet-v2's ``activated_conv``: sign of the input (gradient cancelled above ``threshold``), then a
    convolution with unscaled sign weights, "same" zero padding, no bias (a :class:`qteach.nn.QuantConv2d`)."""
    in_channels = require_int(in_channels, "in_channels", minimum=1)
    out_channels = require_int(out_channels, "out_channels", minimum=1)
    kernel = require_pair(kernel_size, "kernel_size", 1)
    return qnn.QuantConv2d(in_channels, out_channels, kernel, padding=qnn.same_padding(kernel), bias=False,
                           weight_quantizer=cb.BinaryWeightQuantizer(),
                           input_quantizer=qnn.SignQuantizer(clip=threshold))


def improve_last(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The improvement block's sliced addition: ``y`` (:math:`k` channels) added to the last :math:`k` channels
    of ``x``, the others passed unchanged (``meliusnet.py`` lines 42-62).

    .. math:: x'' = \big[\, x_{1..c},\; x_{c+1..c+k} + y \,\big]
    """
    require_float_tensor(x, "x")
    require_float_tensor(y, "y")
    if x.dim() < 2 or y.dim() != x.dim() or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:]:
        raise ValueError(f"y must have the shape of x but fewer channels, got x {tuple(x.shape)}, y {tuple(y.shape)}")
    if y.shape[1] > x.shape[1]:
        raise ValueError(f"y has more channels ({y.shape[1]}) than x ({x.shape[1]})")
    c = x.shape[1] - y.shape[1]
    return torch.cat([x[:, :c], x[:, c:] + y], dim=1)


class DenseLayer(nn.Module):
    r"""The dense block: :math:`x' = [x,\ W_b \circledast \operatorname{sign}(\mathrm{BN}(x))]`,
    ``in_channels`` → ``in_channels + growth`` (``basenet_dense.py`` lines 120-142)."""

    def __init__(self, in_channels: int, growth: int, kernel_size=(1, 5), threshold: float | None = 1.0):
        super().__init__()
        in_channels = require_int(in_channels, "in_channels", minimum=1)
        growth = require_int(growth, "growth", minimum=1)
        self.out_channels = in_channels + growth
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = binary_conv(in_channels, growth, kernel_size, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.bn(x))], dim=1)


class ImprovementBlock(nn.Module):
    r"""The improvement block: :math:`x'' = [x'_{1..c},\ x'_{c+1..c+k} + W_b' \circledast
    \operatorname{sign}(\mathrm{BN}(x'))]`, ``in_channels`` → ``in_channels`` (``meliusnet.py`` lines 32-62).
    ``growth`` (:math:`k`) must not exceed ``in_channels``; equal, it is a plain residual block."""

    def __init__(self, in_channels: int, growth: int, kernel_size=(1, 5), threshold: float | None = 1.0):
        super().__init__()
        in_channels = require_int(in_channels, "in_channels", minimum=1)
        growth = require_int(growth, "growth", minimum=1, maximum=in_channels)
        self.out_channels = in_channels
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = binary_conv(in_channels, growth, kernel_size, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return improve_last(x, self.conv(self.bn(x)))


def melius_stage(in_channels: int, base_channels: int, pattern: str = "DI", growth: int = 8,
                 kernel_size=(1, 5), threshold: float | None = 1.0) -> nn.Sequential:
    r"""One stage: the transition's part after pooling (batch norm, ReLU, full-precision 1 × 1 convolution
    ``in_channels`` → ``base_channels``: ``DOWNSAMPLE_STRUCT`` of BinaryDenseNet without its pooling), then the blocks of ``pattern`` in order: ``D`` a :class:`DenseLayer`, ``I`` an
    :class:`ImprovementBlock`, each with ``growth``. ``"DI"`` is MeliusNet's pair, ``"DD"`` BinaryDenseNet's.
    The result has an ``out_channels`` attribute."""
    in_channels = require_int(in_channels, "in_channels", minimum=1)
    channels = require_int(base_channels, "base_channels", minimum=1)
    pattern = require_str(pattern, "pattern")
    if not pattern or any(b not in BLOCKS for b in pattern):
        raise ValueError(f"pattern must be a non-empty string of {BLOCKS}, got {pattern!r}")
    growth = require_int(growth, "growth", minimum=1)
    require_optional_positive_number(threshold, "threshold")
    layers = [nn.BatchNorm2d(in_channels), nn.ReLU(),
              nn.Conv2d(in_channels, channels, 1, bias=False)]
    for block in pattern:
        module = (DenseLayer if block == "D" else ImprovementBlock)(channels, growth, kernel_size, threshold)
        layers.append(module)
        channels = module.out_channels
    stage = nn.Sequential(*layers)
    stage.out_channels = channels
    return stage


def comparison_conv_block(w_bits: int, a_bits: int, in_channels: int, out_channels: int, kernel_size,
                          growth: int | None = None) -> nn.Sequential:
    r"""MeliusNet's block for the binary CNN protocol (:func:`qteach.comparison.protocol_cnn`), ``in_channels``
    → ``out_channels``: the transition's full-precision 1 × 1 convolution to ``out_channels - growth`` channels,
    a dense block adding ``growth`` channels and an improvement block on the last ``growth``
    (:func:`melius_stage` with ``"DI"``; ``growth`` defaults to ``out_channels // 2``). Only ``w_bits = a_bits =
    1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    out_channels = require_int(out_channels, "out_channels", minimum=2)
    growth = out_channels // 2 if growth is None else require_int(growth, "growth", minimum=1,
                                                                    maximum=out_channels - 1)
    return melius_stage(in_channels, out_channels - growth, "DI", growth, kernel_size)


def stage_binary_weights(base_channels: int, pattern: str, growth: int, kernel_size=(1, 5)) -> int:
    r"""Binary weights of a stage (hand count): a block on :math:`c` channels has :math:`c\,k\,K_h K_w`;
    a dense block raises :math:`c` by :math:`k`, an improvement block does not. Each weight is one binary
    operation per output position."""
    c = require_int(base_channels, "base_channels", minimum=1)
    growth = require_int(growth, "growth", minimum=1)
    kh, kw = require_pair(kernel_size, "kernel_size", 1)
    if not isinstance(pattern, str) or not pattern or any(b not in BLOCKS for b in pattern):
        raise ValueError(f"pattern must be a non-empty string of {BLOCKS}, got {pattern!r}")
    total = 0
    for block in pattern:
        total += c * growth * kh * kw
        c += growth if block == "D" else 0
    return total


def melius_cnn(patterns=("DI", "DI"), base_channels: int = 8, growth: int = 8, length: int = 40,
               stem_channels: int = 16, kernel_size=(1, 5), num_classes: int = 10, seed: int = 0):
    r"""A small MeliusNet-style CNN for signals of ``length`` samples read as 1 × ``length`` images, laid out
    as the binary CNN protocol (:func:`qteach.comparison.protocol_cnn`): a full-precision stem (convolution 1 →
    ``stem_channels``, batch norm), then for each entry of ``patterns`` max pooling by 2 and a
    :func:`melius_stage`, then a full-precision linear classifier. Unlike the protocol, a stage may end with
    more channels (``"DD"`` ends with ``base_channels + 2 growth``). ``seed`` fixes the initialisation."""
    if not isinstance(patterns, (tuple, list)) or not patterns:
        raise TypeError(f"patterns must be a non-empty tuple of block strings, got {patterns!r}")
    length = require_int(length, "length", minimum=1)
    if length % 2 ** len(patterns):
        raise ValueError(f"length must be a multiple of {2 ** len(patterns)}, got {length}")
    channels = require_int(stem_channels, "stem_channels", minimum=1)
    kernel = require_pair(kernel_size, "kernel_size", 1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    torch.manual_seed(require_int(seed, "seed", minimum=0))
    layers = [nn.Unflatten(1, (1, 1, length)),
              nn.Conv2d(1, channels, kernel, padding=qnn.same_padding(kernel), bias=False),
              nn.BatchNorm2d(channels)]
    for pattern in patterns:
        stage = melius_stage(channels, base_channels, pattern, growth, kernel)
        layers += [nn.MaxPool2d((1, 2)), stage]
        channels = stage.out_channels
    layers += [nn.Flatten(), nn.Linear(channels * (length >> len(patterns)), num_classes)]
    return nn.Sequential(*layers)


def counts(model: nn.Module, input_shape) -> dict:
    r"""Binary and full-precision multiply-accumulates and weights of ``model`` for one input of
    ``input_shape`` (from :func:`qteach.nn.summary`): ``binary_ops`` (1-bit × 1-bit MACs), ``float_macs``,
    ``binary_weights``, ``float_params``, and ``ops`` :math:`= \text{BOPs}/64 + \text{FLOPs}`, the
    operation count of Bi-Real Net that binary-network papers use (an assumption here: the definition in the
    MeliusNet paper could not be read)."""
    require_module(model)
    input_shape = require_shape(input_shape, "input_shape")
    s = qnn.summary(model, input_shape)
    macs = s.macs_by_bits
    params = s.params_by_bits
    float_macs = sum(m for b, m in macs.items() if b > 1)
    return {"binary_ops": macs.get(1, 0), "float_macs": float_macs, "binary_weights": params.get(1, 0),
            "float_params": sum(c for b, c in params.items() if b > 1),
            "ops": macs.get(1, 0) / 64 + float_macs}

