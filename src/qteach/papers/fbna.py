r"""FBNA: one binary datapath for the whole network, first layer and padding included (Guo et al., FPL 2018).

FBNA's abstract says that earlier BNN accelerators binarized only part of the network, and that FBNA makes "all
convolutional operations binarized and unified, even including the first layer and padding", so that one binary
engine runs every layer. Two things stand in the way, and this module gives each a bit-exact model:

1. **The first layer** sees multi-bit pixels. Split the :math:`b`-bit codes into bit planes,
   :math:`q = \sum_{n=1}^{b} 2^{n-1} x^n`, and each plane is a binary convolution
   (:func:`qteach.deploy.bitplane_conv2d`, the "First layer" trick of Hubara, Courbariaux et al., BNN 2016).
   :func:`first_layer_binary_ops` counts what that costs on a binary engine.
2. **Padding.** A binary engine stores one bit per value, so a padded pixel must be :math:`+1` or :math:`-1`;
   the usual zero padding is a third value. :func:`binary_pad` pads a :math:`\pm 1` map with one of the
   :data:`SCHEMES`; :func:`pad_contribution` is the exact, position-dependent difference a binary padding makes
   against zero padding.

What we could *not* verify: the paper's text beyond its abstract. Which padding values FBNA uses (a note we were
given recalls an "odd-even" pattern, unverified), how its first layer is scheduled and all of its resource and
throughput tables are not read here. The ``"alternate"`` scheme below (a checkerboard of :math:`\pm 1`) is our
reading of "odd-even", not the paper's definition.

Reference: P. Guo, H. Ma, R. Chen, P. Li, S. Xie, D. Wang, *FBNA: A Fully Binarized Neural Network
Accelerator*, FPL 2018 (DOI 10.1109/FPL.2018.00016).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops, deploy, hw
from qteach import nn as qnn
from qteach._validate import (
    require_bits,
    require_float_tensor,
    require_int,
    require_ndim,
    require_str,
)

__all__ = [
    "SCHEMES",
    "BinaryPad",
    "binary_pad",
    "first_layer_binary_ops",
    "pad_contribution",
    "pad_pattern",
    "padded_binary_conv2d",
    "padded_bnn",
    "padded_tap_fraction",
]

#: Padding schemes: ``"zero"`` (0, not a binary value: the baseline), ``"plus"`` (all +1), ``"minus"`` (all -1),
#: ``"alternate"`` (+1 where the row plus column index of the padded map is even, -1 where odd; ours).
SCHEMES = ("zero", "plus", "minus", "alternate")


def _require_scheme(scheme) -> str:
    scheme = require_str(scheme, "scheme")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


def pad_pattern(height: int, width: int, padding: int, scheme: str) -> torch.Tensor:
    r"""The values a padded map holds in its border: float32 (H + 2p, W + 2p), 0 inside the image.

    .. math:: P_{ij} = \begin{cases} 0 & (i, j) \text{ inside} \\ 0,\ +1,\ -1 & \text{zero, plus, minus} \\
        (-1)^{i + j} & \text{alternate} \end{cases}
    """
    height, width = require_int(height, "height", 1), require_int(width, "width", 1)
    padding = require_int(padding, "padding", 0)
    scheme = _require_scheme(scheme)
    rows = torch.arange(height + 2 * padding)[:, None]
    cols = torch.arange(width + 2 * padding)[None, :]
    value = {"zero": 0.0, "plus": 1.0, "minus": -1.0}.get(scheme)
    if value is None:
        border = 1.0 - 2.0 * ((rows + cols) % 2).float()
    else:
        border = torch.full((rows.numel(), cols.numel()), value)
    inside = F.pad(torch.ones(height, width, dtype=torch.bool), (padding,) * 4)
    return torch.where(inside, torch.zeros(()), border)


def binary_pad(x: torch.Tensor, padding: int, scheme: str) -> torch.Tensor:
    r"""Pad the last two dimensions of ``x`` (N, C, H, W) by ``padding`` with the values of :func:`pad_pattern`
    (every channel alike). With ``"plus"``, ``"minus"`` or ``"alternate"`` a :math:`\pm 1` map stays binary."""
    require_ndim(require_float_tensor(x, "x"), "x", 4)
    pattern = pad_pattern(x.shape[-2], x.shape[-1], padding, scheme).to(x)
    return F.pad(x, (padding,) * 4) + pattern


def padded_binary_conv2d(x: torch.Tensor, w: torch.Tensor, padding: int, scheme: str, stride=1) -> torch.Tensor:
    r"""Binary convolution of :math:`\operatorname{sign}(x)` padded with ``scheme``, by XNOR-popcount.

    .. math:: y = \operatorname{pad}_{\text{scheme}}(\operatorname{sign} x) \ast \operatorname{sign} w

    With a binary scheme the padded map is all :math:`\pm 1`, so the XNOR-popcount engine
    (:func:`qteach.bitops.binary_conv2d` with no padding of its own) computes every tap, border included, with no
    correction pass. ``"zero"`` is passed to ``binary_conv2d``'s own padding, which subtracts the padded taps
    afterwards (the correction a fully binary engine avoids). Returns int32 (N, O, oh, ow).
    """
    require_ndim(require_float_tensor(x, "x"), "x", 4)
    padding, scheme = require_int(padding, "padding", 0), _require_scheme(scheme)
    if scheme == "zero":
        return bitops.binary_conv2d(x, w, stride=stride, padding=padding)
    return bitops.binary_conv2d(binary_pad(binary.sign(x), padding, scheme), w, stride=stride)


def pad_contribution(w: torch.Tensor, height: int, width: int, padding: int, scheme: str, stride=1):
    r"""What a binary padding adds to each output against zero padding: int64 (O, oh, ow), the same for every
    input image.

    .. math:: y_{\text{scheme}} - y_{\text{zero}} = P \ast \operatorname{sign} w, \qquad
        \Delta_{o,i,j} = \sum_{c} \sum_{(k_y, k_x) \in \text{border}} P_{i s + k_y,\, j s + k_x}\,
        \operatorname{sign}(w_{o,c,k_y,k_x})

    It is zero inside the image and depends on the position and the filter, so a per-channel bias or batch norm
    cannot absorb it: a network trained with zero padding sees other values at the border.
    """
    require_ndim(require_float_tensor(w, "w"), "w", 4)
    pattern = pad_pattern(height, width, padding, scheme)
    image = pattern.expand(1, w.shape[1], *pattern.shape)
    return F.conv2d(image, binary.sign(w).float(), stride=stride)[0].round().to(torch.int64)


class BinaryPad(nn.Module):
    """:func:`binary_pad` as a layer, placed between the sign of the activations and a convolution with
    ``padding=0``, so that training sees the padding the hardware computes."""

    def __init__(self, padding: int, scheme: str):
        super().__init__()
        self.padding = require_int(padding, "padding", 0)
        self.scheme = _require_scheme(scheme)

    def forward(self, x):
        return binary_pad(x, self.padding, self.scheme)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, scheme={self.scheme!r}"


def padded_bnn(scheme: str, channels: tuple = (16, 32), seed: int = 0) -> nn.Sequential:
    r"""A binary CNN for 8x8 digits whose hidden convolutions pad their :math:`\pm 1` inputs with ``scheme``.

    First layer: 8-bit pixel codes (:class:`qteach.deploy.InputCode`), binary 3x3 filters, zero padding (a code
    of 0 is a valid 8-bit value, so bit planes handle it exactly). Then per entry of ``channels[1:]`` and once
    more: sign → :class:`BinaryPad` → binary 3x3 convolution → max-pool 2 → batch norm; then a binary linear
    layer and batch norm give the scores.
    """
    scheme = _require_scheme(scheme)
    c1, c2 = (require_int(c, "channels", 1) for c in channels)
    sign = qnn.SignQuantizer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", 0))
        layers = [qnn.QuantConv2d(1, c1, 3, padding=1, bias=False, weight_quantizer=sign(),
                                  input_quantizer=deploy.InputCode(8)), nn.BatchNorm2d(c1)]
        for c_in in (c1, c2):
            layers += [sign(), BinaryPad(1, scheme), qnn.QuantConv2d(c_in, c2, 3, bias=False,
                                                                     weight_quantizer=sign()),
                       nn.MaxPool2d(2), nn.BatchNorm2d(c2)]
        layers += [nn.Flatten(), qnn.QuantLinear(4 * c2, 10, bias=False, weight_quantizer=sign(),
                                                 input_quantizer=sign()), nn.BatchNorm1d(10)]
    return nn.Sequential(*layers)


def first_layer_binary_ops(in_channels: int, out_channels: int, kernel: int, out_size: int, bits: int = 8):
    r"""Work of a first convolution layer: multi-bit MACs, or binary (XNOR-popcount) MACs on bit planes.

    .. math:: \text{MACs} = C_{in} C_{out} k^2 H_o W_o, \qquad \text{binary MACs} = b \cdot \text{MACs}

    (the all-ones term of :func:`qteach.deploy.bitplane_conv2d` depends only on the weights and is computed
    once, so it is not counted). Returns a dict with ``macs``, ``binary_macs`` and ``bits``.
    """
    bits = require_bits(bits)
    kernel = require_int(kernel, "kernel", 1)
    out_size = require_int(out_size, "out_size", 1)
    macs = hw.conv2d_macs(in_channels, out_channels, kernel, out_size, out_size)
    return {"macs": macs, "binary_macs": bits * macs, "bits": bits}


def padded_tap_fraction(size: int, kernel: int = 3, padding: int = 1) -> float:
    r"""Fraction of the taps of a stride-1 'same' convolution on a size x size map that read padding.

    .. math:: f = 1 - \Big(\frac{\sum_{i} \#\{k : 0 \le i + k - p < S\}}{S\,k}\Big)^2
    """
    size = require_int(size, "size", 1)
    kernel, padding = require_int(kernel, "kernel", 1), require_int(padding, "padding", 0)
    out = size + 2 * padding - kernel + 1
    if out < 1:
        raise ValueError(f"kernel {kernel} does not fit a {size}x{size} map with padding {padding}")
    inside = sum(0 <= i + k - padding < size for i in range(out) for k in range(kernel))
    return 1 - (inside / (out * kernel)) ** 2
