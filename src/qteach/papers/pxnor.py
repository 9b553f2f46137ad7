r"""PXNOR: a perturbative binary network, fixed noise masks followed by binary 1x1 convolutions.

**What could be read.** The paper's text (RoEduNet 2019, per the bibliography note) could not be found for this
book; everything below is transcribed from the official code, ``Apfelin/PXNOR`` (commit ``5f62e6b``,
``xnormodel.py``), cited by line. The code joins two earlier ideas:

- **Perturbative Neural Networks** (PNN; Juefei-Xu, Boddeti and Savvides, CVPR 2018) replace a 3x3 convolution by
  a *perturbation layer*: add a fixed, non-trainable noise mask :math:`N` to the input, apply a nonlinearity,
  then mix the channels with a learned 1x1 convolution,

  .. math:: y = W_{1\times 1} \, \sigma(x + N), \qquad N_{c,h,w} \sim \mathcal{U}(-\ell, +\ell)

  (``NoiseLayer``, lines 92-111: ``(2 * uniform - 1) * level``, one mask of the shape of one input sample,
  shared by the batch, created at the first forward pass; :class:`NoiseMask`);
- **XNOR-Net**: the 1x1 convolution becomes ``BinConv2d`` (lines 38-72): batch norm (``eps = 1e-4``, affine),
  the sign with the clipped straight-through estimator (``BinActiv``, lines 14-34), a convolution with
  :math:`\alpha\operatorname{sign}(W)` (``utils.Binop``), times XNOR-Net's map :math:`K` (for a 1x1 kernel the
  channel mean of :math:`|x|` at each position), ReLU (:func:`bin_conv`).

So one PXNOR layer computes (our notation)

.. math:: y = \mathrm{ReLU}\Big(\big(\operatorname{sign}(\mathrm{BN}(x + N)) \circledast
    \operatorname{sign}(W)\big) \odot K \alpha\Big) .

**What the noise becomes in a binary layer** (our observation, :func:`folded_threshold`): batch norm then sign is
a threshold per channel, and a fixed mask added before it shifts that threshold at every position,

.. math:: \operatorname{sign}\big(\mathrm{BN}(x + N)\big)_{c,h,w} = \operatorname{sign}(x_{c,h,w} - T_{c,h,w}),
    \qquad T_{c,h,w} = \mu_c - \frac{\beta_c}{\gamma_c}\sqrt{\sigma_c^2 + \epsilon} - N_{c,h,w}
    \quad (\gamma_c > 0),

so at inference the mask costs nothing: it is a fixed pattern of random thresholds (a dither) on the bits.

References:

- PXNOR, official code: https://github.com/Apfelin/PXNOR (``xnormodel.py``, ``utils.py``, ``main.py``).
- F. Juefei-Xu, V. N. Boddeti, M. Savvides, *Perturbative Neural Networks*, CVPR 2018.
- M. Rastegari et al., *XNOR-Net*, ECCV 2016 (:mod:`qteach.papers.xnor_net`).
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import (
    require_batch_norm,
    require_binary_layer_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_non_negative_number,
)
from qteach.papers.xnor_net import BinaryWeight, XNORConv2d, xnor_conv2d

__all__ = [
    "DEFAULT_LEVEL",
    "NoiseBlock",
    "NoiseLayer",
    "NoiseMask",
    "PerturbedSign",
    "bin_conv",
    "binary_macs",
    "comparison_layer",
    "folded_threshold",
    "layer_inference",
    "noise_mask",
    "pxnor_cnn",
]

DEFAULT_LEVEL = 0.5
"""The official training script's default noise level (``main.py``, line 64: ``--level 0.5``)."""


def noise_mask(shape, level: float, seed: int = 0) -> torch.Tensor:
    r"""A fixed uniform noise mask :math:`N = (2u - 1)\,\ell`, :math:`u \sim \mathcal{U}(0, 1)`
    (``xnormodel.py``, lines 107-109), drawn from its own generator seeded by ``seed``."""
    shape = tuple(require_int(s, "shape", minimum=1) for s in shape)
    level = require_non_negative_number(level, "level")
    seed = require_int(seed, "seed", minimum=0)
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return (2 * u - 1) * level


class NoiseMask(nn.Module):
    r"""Adds a fixed, non-trainable mask :math:`N` of the shape of one sample: :math:`x \mapsto x + N`.

    As in the official ``NoiseLayer`` the mask is created at the first forward pass, from the shape of
    ``x[0]``, and shared by every sample of every batch; it is a buffer (saved, never trained). ``level = 0``
    gives the identity (the same network without noise)."""

    def __init__(self, level: float = DEFAULT_LEVEL, seed: int = 0):
        super().__init__()
        self.level = require_non_negative_number(level, "level")
        self.seed = require_int(seed, "seed", minimum=0)
        self.register_buffer("noise", torch.empty(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        if self.noise.numel() == 0:
            self.noise = noise_mask(x.shape[1:], self.level, self.seed).to(x)
        return x + self.noise

    def extra_repr(self) -> str:
        return f"level={self.level}, seed={self.seed}"


def bin_conv(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1) -> nn.Sequential:
    r"""The official ``BinConv2d`` (lines 38-72): BN → sign → :math:`\alpha\operatorname{sign}(W)` conv
    → :math:`\odot K` → ReLU, built from :class:`qteach.papers.xnor_net.XNORConv2d`. ``kernel_size = 1`` is
    PXNOR's layer; 3 (padding 1) is XNOR-Net's 3x3 binary convolution, the baseline of 9x the binary MACs."""
    in_channels = require_int(in_channels, "in_channels", minimum=1)
    kernel_size = require_int(kernel_size, "kernel_size", minimum=1)
    return nn.Sequential(nn.BatchNorm2d(in_channels, eps=1e-4),
                         XNORConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                    padding=kernel_size // 2),
                         nn.ReLU())


class NoiseLayer(nn.Sequential):
    r"""The PXNOR layer (``NoiseLayer``, lines 92-111): :class:`NoiseMask` → :func:`bin_conv` → ReLU.

    .. math:: y = \mathrm{ReLU}\big(\mathrm{BinConv}(x + N)\big)

    (The official code applies a second ReLU after the one inside ``BinConv2d``; ReLU is idempotent, so it
    changes nothing, and it is kept for fidelity.)"""

    def __init__(self, in_channels: int, out_channels: int, level: float = DEFAULT_LEVEL, kernel_size: int = 1,
                 seed: int = 0):
        super().__init__(NoiseMask(level, seed), bin_conv(in_channels, out_channels, kernel_size), nn.ReLU())


class NoiseBlock(nn.Module):
    r"""``NoiseBasicBlock`` (lines 114-137): two noise layers with max-pool and batch norm, plus a shortcut.

    .. math:: y = \mathrm{ReLU}\Big(\mathrm{BN}\big(L_2(\mathrm{ReLU}(\mathrm{BN}(\mathrm{pool}(L_1(x))))))\big)
        + s(x)\Big)

    :math:`s` is the identity, or a binary 1x1 :func:`bin_conv` with the block's stride when the shape
    changes (``_make_layer``, lines 178-186)."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1, level: float = DEFAULT_LEVEL,
                 kernel_size: int = 1, seed: int = 0):
        super().__init__()
        stride = require_int(stride, "stride", minimum=1)
        self.layers = nn.Sequential(
            NoiseLayer(in_channels, planes, level, kernel_size, seed), nn.MaxPool2d(stride, stride),
            nn.BatchNorm2d(planes), nn.ReLU(),
            NoiseLayer(planes, planes, level, kernel_size, seed + 1), nn.BatchNorm2d(planes))
        self.shortcut = (bin_conv(in_channels, planes, 1, stride) if stride != 1 or in_channels != planes
                         else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layers(x) + self.shortcut(x))


def pxnor_cnn(level: float = DEFAULT_LEVEL, kernel_size: int = 1, channels: tuple = (16, 32),
              num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    r"""A small ``NoiseResNet`` for 8x8 digits (``NoiseResNet``, lines 140-203, ``first_filter_size=3``).

    Real 3x3 first conv to ``channels[0]`` → BN → ReLU, one :class:`NoiseBlock` to ``channels[1]`` (stride 2,
    8x8 → 4x4), then the 4x4 maps flattened into a real linear classifier (the official network averages its
    last maps globally; on 8x8 images we keep their layout). ``level = 0`` is the
    same network without noise, ``kernel_size = 3`` puts XNOR-Net 3x3 binary convolutions in place of the 1x1
    ones. The official ``Binop`` binarizes *every* conv and linear weight, the first and last included; we keep
    those two real, as XNOR-Net does, so that all variants share them."""
    level = require_non_negative_number(level, "level")
    if not isinstance(channels, (tuple, list)) or len(channels) != 2:
        raise ValueError(f"channels must be a pair of channel counts, got {channels!r}")
    c1, c2 = (require_int(c, "channels", minimum=1) for c in channels)
    seed = require_int(seed, "seed", minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),
            NoiseBlock(c1, c2, 2, level, kernel_size, seed=100 * seed),
            nn.Flatten(), nn.Linear(c2 * 16, num_classes))


def binary_macs(model: nn.Module, input_shape=(1, 8, 8)) -> int:
    r"""Binary multiply-accumulates per sample of ``model``: the sum over its :class:`XNORConv2d` layers of
    :math:`C_{in} k^2 \cdot C_{out} H_{out} W_{out}`, measured with one forward pass (the noise masks cost no
    MAC: they fold into thresholds, :func:`folded_threshold`)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    counts: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: counts.append(m.weight[0].numel() * o[0].numel()))
             for m in model.modules() if isinstance(m, XNORConv2d)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return sum(counts)


def folded_threshold(noise: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    r"""The per-position threshold :math:`T` with :math:`\operatorname{sign}(\mathrm{BN}(x + N)) =
    \operatorname{sign}(x - T)` for an evaluation-mode batch norm with all :math:`\gamma_c > 0`:

    .. math:: T_{c,h,w} = \mu_c - \frac{\beta_c}{\gamma_c}\sqrt{\sigma_c^2 + \epsilon} - N_{c,h,w}

    ``noise`` has shape (C, H, W). Our derivation, not the paper's."""
    require_float_tensor(noise, "noise")
    require_batch_norm(bn, "bn")
    if noise.dim() != 3 or noise.shape[0] != bn.num_features:
        raise ValueError(f"noise must have shape (C, H, W) with C = {bn.num_features}, got {tuple(noise.shape)}")
    if bn.weight is None or not bool((bn.weight > 0).all()):
        raise ValueError("bn must be affine with every weight (gamma) > 0 for the threshold form")
    shift = bn.running_mean - bn.bias / bn.weight * torch.sqrt(bn.running_var + bn.eps)
    return shift.detach().reshape(-1, 1, 1) - noise


def layer_inference(x: torch.Tensor, layer: NoiseLayer) -> torch.Tensor:
    r"""A trained :class:`NoiseLayer` at inference, its binary part on packed bits
    (:func:`qteach.papers.xnor_net.xnor_conv2d`: XNOR and popcount, then :math:`\odot K\alpha`):

    .. math:: y = \mathrm{ReLU}\big(\mathrm{xnor\_conv2d}(\mathrm{BN}(x + N), W)\big)

    Equals ``layer.eval()(x)`` up to float rounding of the scales (tested)."""
    require_float_tensor(x, "x")
    if not isinstance(layer, NoiseLayer):
        raise TypeError(f"layer must be a NoiseLayer, got {type(layer).__name__}")
    mask, (bn, conv, _), _ = layer
    with torch.no_grad():
        h = bn.eval()(mask(x))
        return torch.relu(xnor_conv2d(h, conv.weight, conv.stride, conv.padding))


class PerturbedSign(nn.Module):
    r"""PXNOR's binary input for a fully connected layer (our adaptation for the results pages):

    .. math:: q(x) = \beta\,\operatorname{sign}(x + N), \qquad \beta = \frac{1}{n}\lVert x + N \rVert_{\ell 1}

    a fixed mask :math:`N` (:class:`NoiseMask`) before XNOR-Net's scaled sign (one :math:`\beta` per sample,
    :class:`qteach.papers.xnor_net.ScaledSignInput`), the sign with the clipped straight-through estimator.
    ``precision = 1``."""

    precision = 1

    def __init__(self, level: float = DEFAULT_LEVEL, seed: int = 0, scaled: bool = True):
        super().__init__()
        self.mask = NoiseMask(level, seed)
        self.scaled = require_bool(scaled, "scaled")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        y = self.mask(x)
        return binary.ste_sign(y) * (y.abs().mean(dim=1, keepdim=True) if self.scaled else 1.0)


def comparison_layer(w_bits: int = 1, a_bits: int = 1, level: float = DEFAULT_LEVEL):
    r"""``(weight_quantizer, input_quantizer, activation)`` for :class:`qteach.comparison.Method`:
    :math:`\alpha\operatorname{sign}(W)`, :class:`PerturbedSign` with the official default level 0.5, and no
    activation (as the XNOR-Net entry). Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return BinaryWeight(), PerturbedSign(level), nn.Identity()
