r"""End-to-end learned image compression with fixed-point weight quantization (Sun, Cheng, Takeuchi, Katto).

A learned image codec (an analysis transform, a rounded latent, a synthesis transform) is trained in floating
point; to run it on embedded hardware its weights are stored as :math:`B`-bit fixed-point numbers. A fixed-point
number with fractional length :math:`F` is an integer times :math:`2^{-F}`:

.. math::
    Q_{B,F}(w) = 2^{-F}\,\mathrm{clip}\big(\mathrm{round}(w\,2^{F}),\,-2^{B-1},\,2^{B-1}-1\big),

and :math:`F` is chosen per *group* of weights (a whole tensor, or one output channel) so that the group's
largest magnitude fits: :math:`F = \lfloor\log_2((2^{B-1}-1)/\max|w|)\rfloor`.

What we could read: the ICIP 2020 abstract (arXiv:2007.04684) and the abstract of the authors' journal
extension (Sun, Yu, Katto, arXiv:2111.09348). They state that the weights are quantized in groups with a
"non-linear memory-free codebook", that the grouping and quantization scheme is chosen by the coding gain (the
journal abstract: channel-wise, non-linear), and that a fine-tuning scheme clips the weights within a range to
reduce the quantization error. The full text, its equations and its codebook could not be read. Therefore the
codebook of :func:`nonlinear_quantize` (a two-segment code: unit steps for the small half of the codes, double
steps for the large half, decoded by a shift and an add, so no table is stored) is **our reconstruction**;
the clipping fine-tuning is described, not implemented (its range and schedule could not be read). No official code is listed or could be found.

Reference: Sun, Cheng, Takeuchi, Katto, *End-to-end Learned Image Compression with Fixed Point Weight
Quantization*, ICIP 2020.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from qteach import train
from qteach._validate import (
    require_bits,
    require_float_tensor,
    require_int,
    require_module,
    require_no_nan,
    require_positive_number,
    require_str,
    require_tensor,
)
from qteach.papers.information_bottleneck_bnn import entropy_bits

__all__ = [
    "GROUPINGS",
    "SCHEMES",
    "TinyCodec",
    "fixed_point",
    "fractional_length",
    "latent_entropy",
    "nonlinear_quantize",
    "psnr",
    "quantize_codec",
    "quantize_weight",
    "train_codec",
]

GROUPINGS = ("tensor", "channel")
SCHEMES = ("linear", "nonlinear")


def fixed_point(w, bits, frac_bits):
    r"""Round ``w`` to ``bits``-bit signed fixed point with ``frac_bits`` fractional bits (a number or a tensor
    that broadcasts against ``w``, e.g. one per output channel).

    .. math::
        Q_{B,F}(w) = 2^{-F}\,\mathrm{clip}\big(\mathrm{round}(w\,2^{F}),\,-2^{B-1},\,2^{B-1}-1\big)
    """
    w = require_no_nan(require_float_tensor(w, "w"), "w")
    bits = require_bits(bits, "bits")
    if not isinstance(frac_bits, torch.Tensor):
        frac_bits = torch.tensor(require_int(frac_bits, "frac_bits", minimum=-64, maximum=64))
    scale = torch.pow(2.0, frac_bits.to(w.dtype))
    return torch.clamp(torch.round(w * scale), -2 ** (bits - 1), 2 ** (bits - 1) - 1) / scale


def _group_max(w: torch.Tensor, grouping: str) -> torch.Tensor:
    """max|w| of the whole tensor, or of each output channel (dim 0) shaped to broadcast against ``w``."""
    if grouping == "tensor":
        return w.abs().max()
    return w.abs().reshape(len(w), -1).amax(dim=1).reshape(-1, *([1] * (w.dim() - 1)))


def fractional_length(w, bits, grouping="tensor", reach=None):
    r"""The fractional length :math:`F` per group: the largest :math:`F` whose largest code still holds the
    group's largest magnitude, :math:`F = \lfloor\log_2(R / \max|w|)\rfloor`, where :math:`R = 2^{B-1} - 1` is
    the largest code of the linear code (``reach`` for another code); an all-zero group gets :math:`F = B - 1`.
    """
    w = require_no_nan(require_float_tensor(w, "w"), "w")
    bits = require_bits(bits, "bits")
    grouping = require_str(grouping, "grouping")
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    if grouping == "channel" and w.dim() < 1:
        raise ValueError("w must have an output-channel dimension for grouping='channel'")
    reach = 2 ** (bits - 1) - 1 if reach is None else require_int(reach, "reach", minimum=1)
    peak = _group_max(w, grouping).double()
    frac = torch.floor(torch.log2(reach / peak.clamp_min(1e-300)))
    frac = frac - (peak * torch.pow(2.0, frac) > reach).double()  # guard against log2 rounding up
    return torch.where(peak > 0, frac, torch.full_like(frac, bits - 1)).clamp(-64, 64).to(torch.int64)


def nonlinear_quantize(w, bits, frac_bits):
    r"""Our reconstruction of a memory-free non-linear code: of the :math:`M = 2^{B-1}` magnitude codes
    :math:`m`, the first :math:`K = M/2` step by :math:`2^{-F}` and the rest by :math:`2 \cdot 2^{-F}`,

    .. math::
        v(m) = 2^{-F}\,\big(m + \max(m - K, 0)\big),\qquad \hat w = \mathrm{sign}(w)\, v(m^*),

    with :math:`m^*` the nearest code. Decoding is a compare, a shift and an add: no codebook is stored. Small
    weights (most of a bell-shaped layer) keep the fine step, and the largest code :math:`v(M-1) = 3M/2 - 2`
    reaches about :math:`1.5\times` as far as the linear code's, so a group often gets one fractional bit more.
    """
    w = require_no_nan(require_float_tensor(w, "w"), "w")
    bits = require_int(bits, "bits", minimum=3, maximum=16)
    if not isinstance(frac_bits, torch.Tensor):
        frac_bits = torch.tensor(require_int(frac_bits, "frac_bits", minimum=-64, maximum=64))
    half = 2 ** (bits - 2)
    u = w.abs() * torch.pow(2.0, frac_bits.to(w.dtype))  # magnitude in units of the fine step
    m = torch.where(u <= half, torch.round(u), half + torch.round((u - half) / 2))
    m = m.clamp(max=2 * half - 1)
    return torch.sign(w) * (m + (m - half).clamp_min(0)) / torch.pow(2.0, frac_bits.to(w.dtype))


def quantize_weight(w, bits, grouping="tensor", scheme="linear"):
    """A weight tensor in ``bits``-bit fixed point, one fractional length per group (``"tensor"`` or
    ``"channel"``), with the linear code :func:`fixed_point` or the non-linear one :func:`nonlinear_quantize`."""
    scheme = require_str(scheme, "scheme")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "linear":
        return fixed_point(w, bits, fractional_length(w, bits, grouping))
    reach = 3 * 2 ** (bits - 2) - 2  # v(M - 1), the largest magnitude of the non-linear code, in fine steps
    return nonlinear_quantize(w, bits, fractional_length(w, bits, grouping, reach=reach))


class TinyCodec(nn.Module):
    """A tiny learned codec for 8x8 images: an analysis transform to a (2, 4, 4) latent, rounding (with
    additive uniform noise in training, as in learned compression), and a synthesis transform back to 8x8."""

    def __init__(self, channels: int = 16, latent_channels: int = 2, latent_step: float = 0.25):
        super().__init__()
        channels = require_int(channels, "channels", minimum=1)
        latent_channels = require_int(latent_channels, "latent_channels", minimum=1)
        self.latent_step = require_positive_number(latent_step, "latent_step")
        self.encoder = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, latent_channels, 1))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent_channels, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 1, 3, padding=1), nn.Sigmoid())

    def symbols(self, x: torch.Tensor) -> torch.Tensor:
        """The integer latent symbols (what an entropy coder would code)."""
        return torch.round(self.encoder(x) / self.latent_step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.encoder(x) / self.latent_step
        y = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else torch.round(y)
        return self.decoder(y * self.latent_step)


def psnr(x, y, peak=1.0):
    r"""Peak signal-to-noise ratio in dB over all pixels: :math:`10\log_{10}(\mathrm{peak}^2/\mathrm{MSE})`."""
    x = require_float_tensor(x, "x")
    y = require_float_tensor(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    peak = require_positive_number(peak, "peak")
    mse = torch.mean((x.detach().double() - y.detach().double()) ** 2)
    return float(10 * torch.log10(peak ** 2 / mse)) if mse > 0 else math.inf


def latent_entropy(symbols):
    r"""Rate proxy: the empirical entropy of the integer symbols in bits per symbol,
    :math:`-\sum_s p(s)\log_2 p(s)` (what an ideal entropy coder with these frequencies would spend), by
    :func:`qteach.papers.information_bottleneck_bnn.entropy_bits`."""
    symbols = require_tensor(symbols, "symbols")
    if symbols.numel() == 0:
        raise ValueError("symbols must not be empty")
    return entropy_bits(torch.unique(symbols.reshape(-1), return_counts=True)[1]) + 0.0


def quantize_codec(model, bits, grouping="tensor", scheme="linear"):
    """A copy of ``model`` whose convolution weights are quantized by :func:`quantize_weight` (biases stay in
    float: the paper's subject is the weights; the input and output channels of a transposed convolution are
    swapped, so its "channel" groups are taken along its output dimension, dim 1)."""
    model = copy.deepcopy(require_module(model, "model"))
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.ConvTranspose2d):
                w = layer.weight.transpose(0, 1)
                layer.weight.copy_(quantize_weight(w, bits, grouping, scheme).transpose(0, 1))
            elif isinstance(layer, nn.Conv2d):
                layer.weight.copy_(quantize_weight(layer.weight, bits, grouping, scheme))
    return model.eval()


def train_codec(images, epochs=20, lr=3e-3, seed=0, batch_size=128):
    """Train a :class:`TinyCodec` on ``images`` (N, 1, 8, 8) in [0, 1] with the mean squared error (a fixed
    latent size stands in for the rate term), Adam, seeded."""
    images = require_float_tensor(images, "images")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        raise ValueError(f"images must have shape (N, 1, 8, 8), got {tuple(images.shape)}")
    epochs = require_int(epochs, "epochs", minimum=0)
    seed = require_int(seed, "seed", minimum=0)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    lr = require_positive_number(lr, "lr")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TinyCodec()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in train.minibatches(len(images), batch_size, generator):
            batch = images[idx]
            loss = torch.mean((model(batch) - batch) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()
