r"""MoBiNet: a binary depth-wise separable block with skip connections, and what it costs in bit operations.

Phan, Huynh, He, Savvides and Shen (WACV 2020) binarize MobileNet, whose convolutions are *depth-wise separable*
(Howard et al. 2017): a :math:`k_h \times k_w` convolution of :math:`C_{in}` channels into :math:`C_{out}` is
replaced by a depth-wise convolution (one :math:`k_h \times k_w` filter per channel, ``groups = C``) followed by a
point-wise :math:`1 \times 1` convolution. Both weights and activations are binary, the network is trained from
scratch, and, because such a binary network "is not trivial" to train and "prone to divergence", the paper
manipulates skip connections "to prevent information loss and vanishing gradient" (abstract).

**What could be read.** Only the abstract and the opening of the introduction (arXiv 1907.12629, WACV 2020 CVF
page) could be read for this book; the paper has no official code. Where the skips sit, which layers stay real
and the "K-dependency" between groups of the depth-wise layer that our notes recall could not be checked, so no
equation of the paper is cited by number and **the block below is our reconstruction**: every binary convolution
gets a real-valued identity shortcut around it (``skips="layer"``), as in Bi-Real Net, the most common way to keep
a real-valued path through a binary network. ``skips="block"`` puts one shortcut around the pair, ``"none"``
none. The sign of the input is the clipped straight-through sign (:class:`qteach.nn.SignQuantizer`), the weights
are :math:`\operatorname{sign}(W)`, each binary convolution is followed by batch norm:

.. math:: y = \operatorname{BN}\big(\operatorname{sign}(x) \circledast_{dw} \operatorname{sign}(W_{dw})\big)
    + x, \qquad z = \operatorname{BN}\big(\operatorname{sign}(y) \circledast \operatorname{sign}(W_{pw})\big) + y .

**Cost.** MobileNet's count (Howard et al. 2017, eq. 5 over eq. 2): a separable block costs
:math:`C k_h k_w HW + C C_{out} HW` multiply-accumulates instead of :math:`C C_{out} k_h k_w HW`, the ratio
:math:`1/C_{out} + 1/(k_h k_w)`. With binary weights and inputs each one is a bit operation (BOP, XNOR-popcount).
The shortcuts and batch norms add :math:`C_{out} HW` real additions (or scale-and-shifts) each.

References:

- H. Phan, D. Huynh, Y. He, M. Savvides, Z. Shen, *MoBiNet: A Mobile Binary Network for Image Classification*,
  WACV 2020, pp. 3453-3462. arXiv:1907.12629.
- A. G. Howard et al., *MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications*,
  arXiv:1704.04861, 2017.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import bitops, hw
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_ndim,
    require_pair,
    require_str,
)

__all__ = [
    "SKIPS",
    "BinaryConvBlock",
    "BinaryDepthwiseSeparable",
    "binary_depthwise_conv2d",
    "block_bops",
    "comparison_conv_block",
]

SKIPS = ("none", "block", "layer")
"""Where the real-valued identity shortcuts go: none, one around the depth-wise/point-wise pair, one around each
binary convolution (our reading of MoBiNet)."""

KINDS = ("standard", "separable")


def block_bops(kind: str, channels: int, kernel_size, out_size) -> int:
    r"""Bit operations (1-bit x 1-bit MACs) of one block of ``channels`` -> ``channels``: a ``"standard"`` binary
    convolution (BNN's block), :math:`C^2 k_h k_w HW`, or a ``"separable"`` one (MoBiNet's),
    :math:`C k_h k_w HW + C^2 HW` (depth-wise, then point-wise 1 x 1). Shortcuts and batch norms are not BOPs."""
    if require_str(kind, "kind") not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    c, (h, w) = require_int(channels, "channels", 1), require_pair(out_size, "out_size", 1)
    if kind == "standard":
        return hw.conv2d_macs(c, c, kernel_size, h, w)
    return hw.conv2d_macs(c, c, kernel_size, h, w, groups=c) + hw.conv2d_macs(c, c, 1, h, w)


def _binary_conv(in_channels, out_channels, kernel_size, groups=1) -> qnn.QuantConv2d:
    return qnn.QuantConv2d(in_channels, out_channels, kernel_size, padding=qnn.same_padding(kernel_size), bias=False,
                           groups=groups, weight_quantizer=qnn.SignQuantizer(), input_quantizer=qnn.SignQuantizer())


def _require_skips(skips) -> str:
    if require_str(skips, "skips") not in SKIPS:
        raise ValueError(f"skips must be one of {SKIPS}, got {skips!r}")
    return skips


class BinaryDepthwiseSeparable(nn.Module):
    r"""MoBiNet's block as we reconstruct it: binary depth-wise :math:`k_h \times k_w` convolution (``groups =
    C``), batch norm, binary point-wise :math:`1 \times 1` convolution, batch norm, with real-valued identity
    shortcuts placed by ``skips`` (one of :data:`SKIPS`). Real-valued maps (N, C, H, W) in, (N, C_out, H, W) out;
    the sign of each convolution's input is inside it (``input_quantizer``), "same" zero padding, no bias. A
    shortcut needs as many output channels as input channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, skips: str = "layer"):
        super().__init__()
        c_in, c_out = require_int(in_channels, "in_channels", 1), require_int(out_channels, "out_channels", 1)
        self.skips = _require_skips(skips)
        if skips != "none" and c_out != c_in:
            raise ValueError(f"out_channels must equal in_channels ({c_in}) for skips={skips!r}, got {c_out}")
        self.depthwise = _binary_conv(c_in, c_in, kernel_size, groups=c_in)
        self.bn_depthwise = nn.BatchNorm2d(c_in)
        self.pointwise = _binary_conv(c_in, c_out, 1)
        self.bn_pointwise = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn_depthwise(self.depthwise(x))
        if self.skips == "layer":
            y = y + x
        z = self.bn_pointwise(self.pointwise(y))
        if self.skips == "layer":
            z = z + y
        elif self.skips == "block":
            z = z + x
        return z

    def extra_repr(self) -> str:
        return f"skips={self.skips!r}"


class BinaryConvBlock(nn.Module):
    r"""The control: BNN's block (binary :math:`k_h \times k_w` convolution over all channels, batch norm),
    optionally with a real-valued identity shortcut around it (``skip=True``), to tell what the shortcut does
    from what the separable convolution does."""

    def __init__(self, channels: int, kernel_size, skip: bool = False):
        super().__init__()
        c = require_int(channels, "channels", 1)
        if not isinstance(skip, bool):
            raise TypeError(f"skip must be a bool, got {type(skip).__name__}")
        self.skip = skip
        self.conv, self.bn = _binary_conv(c, c, kernel_size), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return y + x if self.skip else y

    def extra_repr(self) -> str:
        return f"skip={self.skip}"


def binary_depthwise_conv2d(x: torch.Tensor, w: torch.Tensor, padding=0) -> torch.Tensor:
    r"""The binary depth-wise convolution with XNOR-popcount: channel :math:`c` of the output is
    :func:`qteach.bitops.binary_conv2d` of input channel :math:`c` with filter :math:`c` alone,

    .. math:: y_{n,c,i,j} = \sum_{k_y, k_x} \operatorname{sign}(x_{n,c,i+k_y-p_h,j+k_x-p_w})\,
        \operatorname{sign}(w_{c,0,k_y,k_x}),

    an integer in :math:`[-k_h k_w, k_h k_w]` (a standard binary convolution sums :math:`C` times more terms).
    ``x`` is (N, C, H, W), ``w`` is (C, 1, kh, kw); zero padding contributes 0. Returns the integer counts."""
    require_float_tensor(x, "x")
    require_float_tensor(w, "w")
    require_ndim(x, "x", 4)
    require_ndim(w, "w", 4)
    if w.shape[0] != x.shape[1] or w.shape[1] != 1:
        raise ValueError(f"w must be ({x.shape[1]}, 1, kh, kw) for x with {x.shape[1]} channels, got "
                         f"{tuple(w.shape)}")
    return torch.cat([bitops.binary_conv2d(x[:, c:c + 1], w[c:c + 1], padding=padding)
                      for c in range(x.shape[1])], dim=1)


def comparison_conv_block(w_bits: int, a_bits: int, in_channels: int, out_channels: int,
                          kernel_size) -> BinaryDepthwiseSeparable:
    """MoBiNet's block for the binary CNN protocol (:func:`qteach.comparison.protocol_cnn`):
    :class:`BinaryDepthwiseSeparable` with a shortcut around each binary convolution. Only 1/1 bits exist."""
    require_binary_layer_bits(w_bits, a_bits)
    if (w_bits, a_bits) != (1, 1):
        raise ValueError(f"MoBiNet's block has 1-bit weights and activations, got w_bits={w_bits}, a_bits={a_bits}")
    return BinaryDepthwiseSeparable(in_channels, out_channels, kernel_size, skips="layer")
