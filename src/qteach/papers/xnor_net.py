r"""XNOR-Net: binary weights with a scaling factor, and binary inputs with a spatial scaling map.

Rastegari, Ordonez, Redmon and Farhadi (ECCV 2016) propose two approximations of a convolutional layer.

**Binary-Weight-Networks (BWN, sec. 3.1).** Each filter :math:`W \in \mathbb{R}^{c \times w \times h}`
(:math:`n = cwh` values) is replaced by :math:`\alpha B` with :math:`B \in \{+1, -1\}^n` and a scalar
:math:`\alpha > 0`, the minimiser of :math:`J(B, \alpha) = \lVert W - \alpha B \rVert^2`, which is

.. math:: B^* = \operatorname{sign}(W), \qquad \alpha^* = \frac{1}{n} \lVert W \rVert_{\ell 1}

(:func:`binary_weight_approximation`). Then :math:`I * W \approx (I \oplus B)\,\alpha`: a convolution with
additions and subtractions only.

**XNOR-Networks (sec. 3.2).** The input is binarized too. For one dot product the optimal approximation of
:math:`X^\top W` is :math:`\beta \operatorname{sign}(X)^\top \alpha \operatorname{sign}(W)` with
:math:`\beta = \frac{1}{n}\lVert X \rVert_{\ell 1}`. In a convolution the input windows overlap, so instead of
one :math:`\beta` per window the paper computes the channel mean of the absolute input,
:math:`A = \frac{1}{c}\sum_i |I_{i,:,:}|`, and averages it over each window with the :math:`w \times h` filter
:math:`k` of entries :math:`\frac{1}{wh}`: :math:`K = A * k` (:func:`input_scaling_k`). The convolution becomes
(eq. 11)

.. math:: I * W \approx \big(\operatorname{sign}(I) \circledast \operatorname{sign}(W)\big) \odot K \alpha ,

where :math:`\circledast` is a convolution computed with XNOR and bit-counting
(:func:`xnor_conv2d`, built on :func:`qteach.bitops.binary_conv2d`).

**Block order (sec. 3.2, fig. 3).** A typical block is conv → batch norm → activation → pool; XNOR-Net uses
batch norm → binary activation → binary conv → pool (:func:`xnor_block`), because max-pooling *binary* values
returns mostly +1 and loses information, and normalizing before the sign centres the values it binarizes.

**Efficiency (sec. 3.2).** A standard convolution costs :math:`c N_W N_I` multiply-adds (:math:`N_W = wh`,
:math:`N_I = w_{in} h_{in}`). The XNOR version costs :math:`c N_W N_I` binary operations, 64 of which run in one
CPU instruction, plus :math:`N_I` non-binary operations (the scaling), a speed-up of (:func:`speedup`)

.. math:: S = \frac{c N_W N_I}{\frac{1}{64} c N_W N_I + N_I} = \frac{64\, c N_W}{c N_W + 64} .

Training (sec. 3.1, 3.2) keeps real-valued weights, uses the binarized ones in the forward and backward passes,
and back-propagates through sign with the straight-through estimator of Hubara et al., the gradient passed where
:math:`|r| \le 1` and cancelled elsewhere (:func:`qteach.binary.ste_sign`). The weight gradient
(:class:`BinaryWeight`) is the paper's

.. math:: \frac{\partial C}{\partial W_i} = \frac{\partial C}{\partial \widetilde{W}_i}
    \Big(\frac{1}{n} + \frac{\partial \operatorname{sign}}{\partial W_i}\,\alpha\Big),
    \qquad \widetilde{W} = \alpha B .

Details that come from the official Torch code (``allenai/XNOR-Net``) rather than the paper: the first and the
last layer stay real-valued; the batch norm inside a binary block has no affine parameters (``eps = 1e-4``); the
weights are clamped to :math:`[-1, 1]` and mean-centred over the input channels; the released training code's
binary activation (``BinActiveZ``) is a plain sign, with no :math:`K`; and ``updateBinaryGradWeight`` multiplies
the gradient above by :math:`n(1 - 1/c)` and uses a strict :math:`|W_i| < 1`.

Equation numbers: eq. 11 is the one the notebook cites for the XNOR convolution; the numbering of the others
could not be checked for this book, so the docstrings name sections instead.

References:

- M. Rastegari, V. Ordonez, J. Redmon, A. Farhadi, *XNOR-Net: ImageNet Classification Using Binary
  Convolutional Neural Networks*, ECCV 2016. https://arxiv.org/abs/1603.05279
- Official code (Lua Torch): https://github.com/allenai/XNOR-Net
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops
from qteach import nn as qnn
from qteach._validate import require_float_tensor, require_int, require_ndim, require_no_nan, require_pair

__all__ = [
    "binary_weight_approximation",
    "approximation_error",
    "BinaryWeight",
    "input_scaling_k",
    "xnor_conv2d",
    "sign_conv2d_reference",
    "XNORConv2d",
    "xnor_block",
    "xnor_cnn",
    "VARIANTS",
    "speedup",
    "ScaledSignInput",
]

VARIANTS = ("float", "bwn", "xnor", "xnor_alpha_only", "binary")
"""The networks the notebook compares: real weights and inputs; BWN (binary weights with :math:`\\alpha`, real
inputs); XNOR-Net (:math:`\\alpha` and :math:`K`); XNOR-Net without :math:`K`; plain sign weights and inputs
(no scaling at all, as BNN)."""


def _require_filters(w, name: str = "w") -> torch.Tensor:
    require_float_tensor(w, name)
    if w.dim() < 2 or w.numel() == 0:
        raise ValueError(f"{name} must be a non-empty weight tensor with an output dimension first, "
                         f"got shape {tuple(w.shape)}")
    require_no_nan(w, name)
    return w


def binary_weight_approximation(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The optimal binary approximation :math:`W \approx \alpha B` of each filter (sec. 3.1).

    .. math:: J(B, \alpha) = \lVert W - \alpha B \rVert^2 = \alpha^2 B^\top B - 2\alpha W^\top B + W^\top W,
        \qquad B^* = \operatorname{sign}(W), \quad \alpha^* = \frac{W^\top B^*}{n} = \frac{1}{n}\lVert W
        \rVert_{\ell 1}

    (:math:`B^\top B = n` is constant, so the best :math:`B` maximises :math:`W^\top B`, which the sign does;
    setting :math:`\partial J / \partial \alpha = 0` gives :math:`\alpha^*`.) One :math:`\alpha` per filter
    (output channel, dim 0), computed with :func:`qteach.binary.mean_abs_scale`. Returns ``(alpha, B)``;
    ``alpha`` has shape (O, 1, ..., 1) so that ``alpha * B`` broadcasts.
    """
    _require_filters(w)
    return binary.mean_abs_scale(w, per_channel=True), binary.sign(w)


def approximation_error(w: torch.Tensor, alpha: torch.Tensor | float, b: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`J(B, \alpha) = \lVert W - \alpha B \rVert^2` summed over all filters (``b`` defaults to
    :math:`\operatorname{sign}(W)`); the notebook scans :math:`\alpha` to show :math:`\alpha^*` is the minimum."""
    _require_filters(w)
    b = binary.sign(w) if b is None else b
    if isinstance(alpha, bool) or not isinstance(alpha, (numbers.Real, torch.Tensor)):
        raise TypeError(f"alpha must be a number or a tensor, got {type(alpha).__name__}")
    return ((w - alpha * b) ** 2).sum()


class _BinaryWeightFunction(torch.autograd.Function):
    """Forward :math:`\\alpha\\,\\operatorname{sign}(W)`; backward the paper's rule (sec. 3.1)."""

    @staticmethod
    def forward(ctx, w, scaled):
        alpha, b = binary_weight_approximation(w)
        ctx.save_for_backward(w, alpha)
        ctx.n = w[0].numel()
        return alpha * b if scaled else b

    @staticmethod
    def backward(ctx, grad_output):
        w, alpha = ctx.saved_tensors
        ste = (w.abs() <= 1).to(w.dtype)  # d sign / dW, the straight-through estimator
        return grad_output * (1.0 / ctx.n + ste * alpha), None


class BinaryWeight(nn.Module):
    r"""Weight quantizer of a BWN/XNOR layer: :math:`\widetilde{W} = \alpha\,\operatorname{sign}(W)`, one
    :math:`\alpha = \frac{1}{n}\lVert W \rVert_{\ell 1}` per filter, with the paper's gradient (sec. 3.1)

    .. math:: \frac{\partial C}{\partial W_i} = \frac{\partial C}{\partial \widetilde{W}_i}
        \Big(\frac{1}{n} + 1_{|W_i| \le 1}\,\alpha\Big) .

    (The exact derivative of :math:`\alpha\operatorname{sign}(W)` would couple all the weights of a filter
    through :math:`\alpha`; the paper keeps only the diagonal term :math:`\frac{1}{n}`.) ``scaled=False`` gives
    :math:`\operatorname{sign}(W)` (no :math:`\alpha`) with the same backward rule. ``precision = 1``: the stored
    weights are bits (plus one float :math:`\alpha` per filter).
    """

    precision = 1

    def __init__(self, scaled: bool = True):
        super().__init__()
        if not isinstance(scaled, bool):
            raise TypeError(f"scaled must be a bool, got {type(scaled).__name__}")
        self.scaled = scaled

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        _require_filters(w)
        return _BinaryWeightFunction.apply(w, self.scaled)

    def extra_repr(self) -> str:
        return f"scaled={self.scaled}"


def input_scaling_k(x: torch.Tensor, kernel_size, stride=1, padding=0) -> torch.Tensor:
    r"""The scaling map :math:`K` of XNOR-Net's binary input (sec. 3.2, fig. 2).

    .. math:: A = \frac{1}{c}\sum_{i=1}^{c} |I_{i,:,:}|, \qquad K = A * k, \quad
        k \in \mathbb{R}^{w \times h},\ k_{ij} = \frac{1}{wh}

    :math:`K_{ij}` is the mean of :math:`|I|` over the input window of output position :math:`(i, j)`: the
    :math:`\beta = \frac{1}{n}\lVert X \rVert_{\ell 1}` of that window's dot product, computed once for all
    filters (they share the window). ``x`` is (N, C, H, W); the convolution with :math:`k` uses the layer's
    ``stride`` and zero ``padding`` (padded positions count as 0 in the mean, as for the conv itself).
    Returns (N, 1, H_out, W_out).
    """
    require_float_tensor(x, "x")
    require_ndim(x, "x", 4)
    kernel_size = require_pair(kernel_size, "kernel_size", minimum=1)
    stride = require_pair(stride, "stride", minimum=1)
    padding = require_pair(padding, "padding", minimum=0)
    a = x.abs().mean(dim=1, keepdim=True)
    kh, kw = kernel_size
    k = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype, device=x.device)
    return F.conv2d(a, k, stride=stride, padding=padding)


def _scales(x, w, stride, padding, input_scale, weight_scale):
    out = 1.0
    if weight_scale:
        out = binary.mean_abs_scale(w, per_channel=True).reshape(1, -1, 1, 1)
    if input_scale:
        out = out * input_scaling_k(x, w.shape[2:], stride, padding)
    return out


def xnor_conv2d(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, input_scale: bool = True,
                weight_scale: bool = True) -> torch.Tensor:
    r"""The XNOR-Net convolution (eq. 11) with the binary part computed by XNOR and popcount.

    .. math:: I * W \approx \big(\operatorname{sign}(I) \circledast \operatorname{sign}(W)\big) \odot K \alpha

    :math:`\operatorname{sign}(I) \circledast \operatorname{sign}(W)` is :func:`qteach.bitops.binary_conv2d`
    (packed bits, XOR, popcount; an exact integer), then multiplied by the map :math:`K`
    (:func:`input_scaling_k`, if ``input_scale``) and the per-filter :math:`\alpha`
    (:func:`binary_weight_approximation`, if ``weight_scale``). ``x`` (N, C, H, W), ``w`` (O, C, kh, kw).
    Inference only (no gradient); :func:`sign_conv2d_reference` is the same formula with a float convolution.
    """
    require_float_tensor(x, "x")
    _require_filters(w)
    counts = bitops.binary_conv2d(x.detach(), w.detach(), stride=stride, padding=padding)
    return counts.to(x.dtype) * _scales(x.detach(), w.detach(), stride, padding, input_scale, weight_scale)


def sign_conv2d_reference(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, input_scale: bool = True,
                          weight_scale: bool = True) -> torch.Tensor:
    r"""Eq. 11 with an ordinary float convolution of the signs: ``F.conv2d(sign(x), sign(w)) * K * alpha``.

    The float convolution of :math:`\pm 1` values is an exact integer, so this equals :func:`xnor_conv2d` bit
    for bit; it is what a GPU without a binary kernel computes.
    """
    require_float_tensor(x, "x")
    _require_filters(w)
    counts = F.conv2d(binary.sign(x), binary.sign(w), stride=stride, padding=padding)
    return counts * _scales(x, w, stride, padding, input_scale, weight_scale)


class XNORConv2d(qnn.QuantConv2d):
    r"""BinActiv + BinConv of fig. 3, trainable: :math:`(\operatorname{sign}(I) * \widetilde{W}) \odot K`.

    The input is binarized with :func:`qteach.binary.ste_sign` (:class:`qteach.nn.SignQuantizer`), the weights
    with :class:`BinaryWeight` (:math:`\alpha\operatorname{sign}(W)`, or :math:`\operatorname{sign}(W)` when
    ``weight_scale=False``); when ``input_scale`` is true the output is multiplied by :math:`K` computed from
    the real-valued input (:func:`input_scaling_k`; gradients flow through :math:`K` as well). With both scales
    off this is a plain binary convolution as in BNN. No bias (the batch norm that follows supplies it).
    ``binarize_input=False`` keeps the input real (a BWN layer).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 input_scale: bool = True, weight_scale: bool = True, binarize_input: bool = True):
        for value, name in ((input_scale, "input_scale"), (weight_scale, "weight_scale"),
                            (binarize_input, "binarize_input")):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        if input_scale and not binarize_input:
            raise ValueError("input_scale needs binarize_input=True (K scales a binarized input)")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False,
                         weight_quantizer=BinaryWeight(scaled=weight_scale),
                         input_quantizer=qnn.SignQuantizer() if binarize_input else None)
        self.input_scale = input_scale
        self.weight_scale = weight_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.input_scale:
            out = out * input_scaling_k(x, self.kernel_size, self.stride, self.padding)
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + f", input_scale={self.input_scale}, weight_scale={self.weight_scale}"


def xnor_block(in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1, pool: bool = True,
               input_scale: bool = True, weight_scale: bool = True) -> nn.Sequential:
    r"""One XNOR-Net block in the paper's order (fig. 3): BatchNorm → BinActiv → BinConv → Pool.

    ``BatchNorm2d(in_channels, eps=1e-4, affine=False)`` as in the official code's ``BinConvolution``, then
    :class:`XNORConv2d` (sign of the input, :math:`K`, :math:`\alpha`), then ``MaxPool2d(2)`` if ``pool``.
    """
    in_channels = require_int(in_channels, "in_channels", minimum=1)
    layers: list = [nn.BatchNorm2d(in_channels, eps=1e-4, affine=False),
                    XNORConv2d(in_channels, out_channels, kernel_size, padding=padding, input_scale=input_scale,
                               weight_scale=weight_scale)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def comparison_conv_block(w_bits: int, a_bits: int, in_channels: int, out_channels: int, kernel_size) -> nn.Sequential:
    r"""XNOR-Net's block for the binary CNN protocol (:func:`qteach.comparison.protocol_cnn`): :class:`XNORConv2d`
    (sign of the input, :math:`K`, :math:`\alpha`) with "same" zero padding, then batch norm; the batch norm of
    the previous block plays the part of fig. 3's first BatchNorm. Only ``w_bits = a_bits = 1`` exist."""
    if (w_bits, a_bits) != (1, 1):
        raise ValueError(f"XNOR-Net's block has 1-bit weights and activations, got w_bits={w_bits}, a_bits={a_bits}")
    return nn.Sequential(XNORConv2d(in_channels, out_channels, kernel_size, padding=qnn.same_padding(kernel_size)),
                         nn.BatchNorm2d(out_channels))


def xnor_cnn(variant: str = "xnor", channels: tuple = (32, 64), num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    r"""A small CNN for 8x8 digits in the layout of the official AlexNet-XNOR, for one of :data:`VARIANTS`.

    Real first layer (conv 3x3 → batch norm → ReLU), two binary blocks of :func:`xnor_block` (each halves the
    image), then batch norm → ReLU → real linear classifier, as ``models/alexnetxnor.lua`` keeps its first and
    last layers real. The variants differ only in the two middle blocks:

    - ``"float"``: batch norm → ReLU → real conv → pool;
    - ``"bwn"``: batch norm → ReLU → conv with :math:`\alpha\operatorname{sign}(W)` → pool (real inputs);
    - ``"xnor"``: batch norm → sign with :math:`K` → conv with :math:`\alpha\operatorname{sign}(W)` → pool;
    - ``"xnor_alpha_only"``: as ``"xnor"`` without :math:`K`;
    - ``"binary"``: sign inputs and sign weights, no scaling factor at all.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not isinstance(channels, (tuple, list)) or len(channels) != 2:
        raise ValueError(f"channels must be a pair of channel counts, got {channels!r}")
    channels = require_int(channels[0], "channels", minimum=1), require_int(channels[1], "channels", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    seed = require_int(seed, "seed", minimum=0)
    c1, c2 = channels

    def middle(c_in, c_out):
        if variant == "float":
            return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                                 nn.MaxPool2d(2))
        if variant == "bwn":
            return nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(),
                                 XNORConv2d(c_in, c_out, 3, padding=1, input_scale=False, binarize_input=False),
                                 nn.MaxPool2d(2))
        return xnor_block(c_in, c_out, input_scale=variant == "xnor",
                          weight_scale=variant in ("xnor", "xnor_alpha_only"))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
            middle(c1, c2), middle(c2, c2),
            nn.BatchNorm2d(c2), nn.ReLU(), nn.Flatten(), nn.Linear(c2 * 2 * 2, num_classes),
        )


def speedup(channels, filter_size) -> float:
    r"""The paper's operation-count speed-up of an XNOR convolution over a float one (sec. 3.2).

    .. math:: S = \frac{c\, N_W N_I}{\frac{1}{64} c\, N_W N_I + N_I} = \frac{64\, c\, N_W}{c\, N_W + 64}

    with :math:`c` = ``channels`` and :math:`N_W` = ``filter_size`` (:math:`w \times h`, e.g. 9 for 3x3). It
    assumes 64 binary operations per CPU instruction and counts the :math:`N_I` scalings by :math:`K\alpha` as
    the only non-binary work; the input size :math:`N_I` cancels. It counts operations, not time: memory
    traffic, packing and the batch norm are not in it.
    """
    channels = require_int(channels, "channels", minimum=1)
    filter_size = require_int(filter_size, "filter_size", minimum=1)
    c, n_w = channels, filter_size  # the paper's c and N_W
    return 64 * c * n_w / (c * n_w + 64)


class ScaledSignInput(nn.Module):
    r"""XNOR-Net's binary input for a fully connected layer: :math:`\beta\,\operatorname{sign}(X)` per sample.

    .. math:: \beta = \frac{1}{n}\lVert X \rVert_{\ell 1}, \qquad X^\top W \approx
        \beta\,\operatorname{sign}(X)^\top \alpha\,\operatorname{sign}(W)

    (sec. 3.2, the optimal approximation of one dot product). In a fully connected layer every output shares the
    whole input as its "window", so :math:`K` reduces to one :math:`\beta` per sample (the mean of :math:`|X|`
    over the features). Forward :math:`\beta \operatorname{sign}(X)`; the sign back-propagates with the clipped
    straight-through estimator (:func:`qteach.binary.ste_sign`) and the gradient also flows through
    :math:`\beta`, as through :math:`K` in :class:`XNORConv2d`. ``x`` is (N, features). ``precision = 1``.
    """

    precision = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        require_ndim(x, "x", 2)
        return binary.ste_sign(x) * x.abs().mean(dim=1, keepdim=True)
