r"""XNOR-Net++: one learned scaling factor :math:`\Gamma` for the output of a binary convolution.

Bulat and Tzimiropoulos (BMVC 2019) start from XNOR-Net's binary convolution (Rastegari et al. 2016, eq. 11),

.. math:: I * W \approx \big(\operatorname{sign}(I) \circledast \operatorname{sign}(W)\big) \odot K\alpha ,

whose scales are *computed*: :math:`\alpha` from the weights, :math:`K` from the input (see
:mod:`qteach.papers.xnor_net`). Their abstract proposes to "fuse the activation and weight scaling factors into
a single one that is learned discriminatively via backpropagation", and to explore "several ways of
constructing the shape of the scale factors while keeping the computational budget fixed":

.. math:: I * W \approx \big(\operatorname{sign}(I) \circledast \operatorname{sign}(W)\big) \odot \Gamma ,
    \qquad \Gamma \in \mathbb{R}^{o \times h_{out} \times w_{out}}

for a layer with :math:`o` output channels and an output of :math:`h_{out} \times w_{out}` positions. The four
shapes of :math:`\Gamma` (:data:`SHAPES`, :class:`LearnedScale`) are

- ``"channel"``: :math:`\Gamma = \alpha`, :math:`\alpha \in \mathbb{R}^{o}` (one factor per output channel);
- ``"channel_spatial"``: :math:`\Gamma = \alpha \otimes \beta`, :math:`\alpha \in \mathbb{R}^{o}`,
  :math:`\beta \in \mathbb{R}^{h_{out} \times w_{out}}`;
- ``"rank1"``: :math:`\Gamma = \alpha \otimes \beta \otimes \gamma`, :math:`\alpha \in \mathbb{R}^{o}`,
  :math:`\beta \in \mathbb{R}^{h_{out}}`, :math:`\gamma \in \mathbb{R}^{w_{out}}`;
- ``"full"``: one free factor per output element, :math:`\Gamma \in \mathbb{R}^{o \times h_{out} \times w_{out}}`.

**What could be read.** Only the abstract (BMVC 2019 page, arXiv 1909.13863) and third-party summaries could be
read for this book, not the full text; the paper has no official code. The four shapes above are taken from
re-implementations, not from the paper: the rank-1 form :math:`\alpha \otimes \beta \otimes \gamma` initialised
to ones is larq zoo's ``LearnedRescaleLayer`` (``larq_zoo/literature/real_to_bin_nets.py``, lines 138-180,
commit 77c5853), which its docstring calls "learned activation rescaling XNOR-Net++ style"; the per-channel and
rank-1 forms also appear in third-party PyTorch re-implementations. Their numbering ("case 1" ... "case 4")
disagrees between those re-implementations, so this module names the shapes instead of numbering them. The
paper's equation numbers could not be checked, so none are cited.

The factors are learned with the rest of the network; they cost no extra work at test time (a fixed
:math:`\Gamma` multiplies each output once, as :math:`K\alpha` does, and needs no pass over the input to compute
:math:`K`). :class:`XNORPPConv2d` is the layer, :func:`xnorpp_cnn` the small CNN of
:func:`qteach.papers.xnor_net.xnor_cnn` with it, :func:`xnorpp_conv2d` the inference path through the XNOR-popcount
kernel :func:`qteach.bitops.binary_conv2d`.

References:

- A. Bulat, G. Tzimiropoulos, *XNOR-Net++: Improved Binary Neural Networks*, BMVC 2019. arXiv:1909.13863.
- M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi, *XNOR-Net*, ECCV 2016.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import bitops
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_ndim,
    require_pair,
    require_str,
)
from qteach.papers import xnor_net as xn

__all__ = [
    "SHAPES",
    "LearnedScale",
    "ScaledSignWeight",
    "XNORPPConv2d",
    "comparison_layer",
    "fit_scale",
    "scale_parameters",
    "xnorpp_cnn",
    "xnorpp_conv2d",
]

SHAPES = ("channel", "channel_spatial", "rank1", "full")
"""The shapes of :math:`\\Gamma`: :math:`\\alpha`, :math:`\\alpha\\otimes\\beta` (channels x positions),
:math:`\\alpha\\otimes\\beta\\otimes\\gamma` (channels x rows x columns), one factor per output element."""


def _require_shape_name(shape) -> str:
    if require_str(shape, "shape") not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return shape


def scale_parameters(shape: str, out_channels: int, out_height: int, out_width: int) -> int:
    r"""How many numbers :math:`\Gamma` of ``shape`` learns for an output of ``out_channels`` x ``out_height`` x
    ``out_width``: :math:`o`, :math:`o + hw`, :math:`o + h + w` or :math:`ohw`."""
    _require_shape_name(shape)
    o = require_int(out_channels, "out_channels", minimum=1)
    h = require_int(out_height, "out_height", minimum=1)
    w = require_int(out_width, "out_width", minimum=1)
    return {"channel": o, "channel_spatial": o + h * w, "rank1": o + h + w, "full": o * h * w}[shape]


class LearnedScale(nn.Module):
    r"""The learned scale :math:`\Gamma \in \mathbb{R}^{o \times h_{out} \times w_{out}}`, built from its factors.

    .. math:: y \mapsto y \odot \Gamma, \qquad \Gamma = \alpha,\ \alpha \otimes \beta,\
        \alpha \otimes \beta \otimes \gamma \ \text{or free}

    ``shape`` is one of :data:`SHAPES`; ``out_size`` is :math:`(h_{out}, w_{out})` (``(1, 1)`` for a fully
    connected layer). Every factor starts at ``init`` (ones, as larq zoo's ``LearnedRescaleLayer``), so
    :math:`\Gamma` starts constant. :meth:`gamma` returns the (o, h, w) tensor; ``forward(y)`` multiplies a
    (N, o, h, w) output by it.
    """

    def __init__(self, shape: str, out_channels: int, out_size=(1, 1), init: float = 1.0):
        super().__init__()
        self.shape = _require_shape_name(shape)
        o = require_int(out_channels, "out_channels", minimum=1)
        h, w = require_pair(out_size, "out_size", minimum=1)
        if not isinstance(init, (int, float)) or isinstance(init, bool) or not init > 0:
            raise ValueError(f"init must be a positive number, got {init!r}")
        self.out_channels, self.out_size = o, (h, w)
        sizes = {"channel": [(o, 1, 1)], "channel_spatial": [(o, 1, 1), (1, h, w)],
                 "rank1": [(o, 1, 1), (1, h, 1), (1, 1, w)], "full": [(o, h, w)]}[shape]
        # each factor starts so that the product Gamma starts at init
        self.factors = nn.ParameterList(nn.Parameter(torch.full(s, float(init) ** (1 / len(sizes))))
                                        for s in sizes)

    def gamma(self) -> torch.Tensor:
        """:math:`\\Gamma` as an (o, h_out, w_out) tensor: the product of the broadcast factors."""
        out = self.factors[0]
        for factor in self.factors[1:]:
            out = out * factor
        return out.expand(self.out_channels, *self.out_size)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        require_float_tensor(y, "y")
        require_ndim(y, "y", 4)
        if tuple(y.shape[1:]) != (self.out_channels, *self.out_size):
            raise ValueError(f"y must be (N, {self.out_channels}, {self.out_size[0]}, {self.out_size[1]}), got "
                             f"shape {tuple(y.shape)}")
        return y * self.gamma()

    def extra_repr(self) -> str:
        return f"shape={self.shape!r}, out_channels={self.out_channels}, out_size={self.out_size}"


class XNORPPConv2d(qnn.QuantConv2d):
    r"""The XNOR-Net++ convolution, trainable: :math:`(\operatorname{sign}(I) * \operatorname{sign}(W)) \odot
    \Gamma`.

    The input is binarized with the clipped straight-through sign (:class:`qteach.nn.SignQuantizer`), the
    weights with XNOR-Net's :class:`qteach.papers.xnor_net.BinaryWeight` *without* :math:`\alpha`
    (``scaled=False``), so the only difference from :class:`qteach.papers.xnor_net.XNORConv2d` is the scale: a
    learned :class:`LearnedScale` of ``shape`` instead of the computed :math:`K\alpha`. ``out_size`` is the
    output's :math:`(h_{out}, w_{out})`, which the spatial factors need. No bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, out_size, shape: str = "channel",
                 stride=1, padding=0):
        _require_shape_name(shape)
        out_size = require_pair(out_size, "out_size", minimum=1)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False,
                         weight_quantizer=xn.BinaryWeight(scaled=False), input_quantizer=qnn.SignQuantizer())
        self.scale = LearnedScale(shape, out_channels, out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(super().forward(x))


def _require_broadcasts(gamma: torch.Tensor, out_shape) -> None:
    try:
        ok = gamma.dim() <= 3 and torch.broadcast_shapes(gamma.shape, out_shape) == out_shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"gamma must broadcast to the output's (O, H_out, W_out) = {tuple(out_shape)}, got shape "
                         f"{tuple(gamma.shape)}")


def xnorpp_conv2d(x: torch.Tensor, w: torch.Tensor, gamma: torch.Tensor, stride=1, padding=0) -> torch.Tensor:
    r"""Inference: :math:`(\operatorname{sign}(I) \circledast \operatorname{sign}(W)) \odot \Gamma` with the binary
    part computed by XNOR and popcount (:func:`qteach.bitops.binary_conv2d`, an exact integer).

    ``x`` (N, C, H, W), ``w`` (O, C, kh, kw), ``gamma`` (O, H_out, W_out) or anything broadcasting to it, e.g.
    ``LearnedScale.gamma()``. Equal, bit for bit, to the float convolution of the signs times :math:`\Gamma`.
    """
    require_float_tensor(x, "x")
    require_float_tensor(w, "w")
    require_float_tensor(gamma, "gamma")
    counts = bitops.binary_conv2d(x.detach(), w.detach(), stride=stride, padding=padding)
    _require_broadcasts(gamma, counts.shape[1:])
    return counts.to(x.dtype) * gamma.detach()


def fit_scale(target: torch.Tensor, counts: torch.Tensor, shape: str, steps: int = 300,
              lr: float = 0.05) -> LearnedScale:
    r"""Learn :math:`\Gamma` of ``shape`` by gradient descent (Adam) on the reconstruction error

    .. math:: \min_\Gamma \ \big\lVert I * W - (\operatorname{sign}(I) \circledast \operatorname{sign}(W)) \odot
        \Gamma \big\rVert^2 ,

    given ``target`` :math:`= I * W` and ``counts`` :math:`= \operatorname{sign}(I) \circledast
    \operatorname{sign}(W)`, both (N, o, h, w). Ours: the paper learns :math:`\Gamma` through the task's loss;
    this fits it to one layer's output, to compare its approximation with XNOR-Net's :math:`K\alpha`.
    """
    require_float_tensor(target, "target")
    require_float_tensor(counts, "counts")
    require_ndim(target, "target", 4)
    if counts.shape != target.shape:
        raise ValueError(f"counts must have the shape of target {tuple(target.shape)}, got {tuple(counts.shape)}")
    steps = require_int(steps, "steps", minimum=1)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    # start from the best constant factor, so that every shape starts at the same error
    c = (target * counts).sum() / (counts * counts).sum().clamp_min(1e-12)
    scale = LearnedScale(shape, target.shape[1], target.shape[2:], init=max(float(c), 1e-6))
    optimizer = torch.optim.Adam(scale.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (target - scale(counts)).pow(2).mean()
        loss.backward()
        optimizer.step()
    return scale


def xnorpp_cnn(shape: str = "channel", channels: tuple = (16, 32), num_classes: int = 10, image_size: int = 8,
               seed: int = 0) -> nn.Sequential:
    r"""The small CNN of :func:`qteach.papers.xnor_net.xnor_cnn` with the two binary blocks of XNOR-Net++.

    Real first layer (conv 3x3 → batch norm → ReLU), two blocks batch norm (no affine) → :class:`XNORPPConv2d`
    (3x3, padding 1, :math:`\Gamma` of ``shape``) → max-pool 2, then batch norm → ReLU → real linear classifier.
    Only the scale differs from ``xnor_cnn("xnor")`` (:math:`K\alpha`) and ``xnor_cnn("binary")`` (none).
    ``image_size`` (8 for digits, divisible by 4) fixes :math:`h_{out} = w_{out}` of the two blocks.
    """
    _require_shape_name(shape)
    if not isinstance(channels, (tuple, list)) or len(channels) != 2:
        raise ValueError(f"channels must be a pair of channel counts, got {channels!r}")
    c1, c2 = (require_int(c, "channels", minimum=1) for c in channels)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    size = require_int(image_size, "image_size", minimum=4)
    if size % 4:
        raise ValueError(f"image_size must be divisible by 4 (two 2x2 poolings), got {size}")
    seed = require_int(seed, "seed", minimum=0)

    def block(c_in, c_out, side):
        return nn.Sequential(nn.BatchNorm2d(c_in, eps=1e-4, affine=False),
                             XNORPPConv2d(c_in, c_out, 3, (side, side), shape, padding=1), nn.MaxPool2d(2))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
            block(c1, c2, size), block(c2, c2, size // 2),
            nn.BatchNorm2d(c2), nn.ReLU(), nn.Flatten(), nn.Linear(c2 * (size // 4) ** 2, num_classes),
        )


class ScaledSignWeight(nn.Module):
    r"""Binary weights times a learned per-output factor, :math:`\Gamma_o \operatorname{sign}(W_o)`: the
    ``"channel"`` shape of :math:`\Gamma` for a fully connected layer.

    .. math:: \operatorname{sign}(x)^\top (\Gamma_o \operatorname{sign}(W_o)) = \Gamma_o\,
        (\operatorname{sign}(x)^\top \operatorname{sign}(W_o))

    so scaling the weights equals scaling the layer's output. The sign back-propagates as in
    :class:`qteach.papers.xnor_net.BinaryWeight` (``scaled=False``); :math:`\Gamma` starts at ones.
    ``precision = 1``.
    """

    precision = 1

    def __init__(self, out_features: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(require_int(out_features, "out_features", minimum=1), 1))
        self.sign = xn.BinaryWeight(scaled=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_float_tensor(w, "w")
        if w.dim() != 2 or w.shape[0] != self.gamma.shape[0]:
            raise ValueError(f"w must be ({self.gamma.shape[0]}, in_features), got shape {tuple(w.shape)}")
        return self.gamma * self.sign(w)


def comparison_layer(w_bits: int = 1, a_bits: int = 1, features: int = 128):
    r"""``(weight_quantizer, input_quantizer, activation)`` of an XNOR-Net++ layer for
    :class:`qteach.comparison.Method`: :class:`ScaledSignWeight` (the ``"channel"`` :math:`\Gamma`, learned, for
    ``features`` outputs: the protocol's hidden width), the clipped straight-through sign of the input, no
    activation after the layer. Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return ScaledSignWeight(features), qnn.SignQuantizer(), nn.Identity()

