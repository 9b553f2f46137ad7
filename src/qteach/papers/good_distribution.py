r"""Low-bit quantization needs good distribution: the quantized loss of Gaussian, Laplace and uniform data,
Scale-Clip and group-based quantization (GDRQ).

Yu et al. model linear quantization as a quantized-loss problem: for data of density :math:`p` and a
:math:`b`-bit uniform quantizer :math:`Q_\alpha` clipped at :math:`\pm\alpha`,

.. math::
    L(\alpha) = \int (x - Q_\alpha(x))^2\, p(x)\, dx, \qquad \alpha^* = \arg\min_\alpha L(\alpha),

and report that at the optimum the loss orders Laplace > Gaussian > uniform: uniform-like data quantize best.
Hence *Scale-Clip*, which clips a tensor at a multiple :math:`k` of one of its statistics during training so that
it is pushed toward a uniform-like shape, and *group-based quantization*, which splits a layer's filters into
groups with their own quantization parameters (merged into batch norm at inference).

What we could read: the CVPRW abstract, the arXiv version's (GDRQ, arXiv:1908.01477) abstract, and a third-party
summary of its method (the ordering of the losses and of :math:`\alpha^*`, that Scale-Clip uses :math:`k` times a
statistic of the tensor, a larger :math:`k` for activations). The exact Scale-Clip statistic, the paper's equation
numbers and its grouping details could not be read: :func:`scale_clip` (:math:`k\,\mathrm{mean}|W|`), the
activation's moving average and the per-group statistic (instead of learned group parameters) are **our
reconstruction**. No official code is listed.

References:

- Yu, Wen, Cheng, Sun, Han, Shi, *Low-bit Quantization Needs Good Distribution*, CVPR Workshops 2020.
- Yu et al., *GDRQ: Group-based Distribution Reshaping for Quantization*, arXiv:1908.01477, 2019.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach._validate import (
    require_bits,
    require_float_tensor,
    require_int,
    require_positive_number,
    require_str,
)
from qteach.binary import straight_through

__all__ = [
    "DISTRIBUTIONS",
    "ScaleClipActivation",
    "ScaleClipWeight",
    "comparison_layer",
    "density",
    "group_quantize",
    "optimal_clip",
    "quantized_loss",
    "scale_clip",
    "uniform_loss_closed_form",
    "uniform_quantize",
]

DISTRIBUTIONS = ("gaussian", "laplace", "uniform")
_HALF_WIDTH = {"gaussian": 14.0, "laplace": 24.0, "uniform": math.sqrt(3.0)}  # integration range (unit variance)


def _require_distribution(name):
    name = require_str(name, "name")
    if name not in DISTRIBUTIONS:
        raise ValueError(f"name must be one of {DISTRIBUTIONS}, got {name!r}")
    return name


def density(name: str, x: torch.Tensor) -> torch.Tensor:
    r"""The unit-variance density: :math:`\mathcal{N}(0, 1)`, Laplace with :math:`b = 1/\sqrt2`, uniform on
    :math:`[-\sqrt3, \sqrt3]`."""
    name = _require_distribution(name)
    require_float_tensor(x, "x")
    if name == "gaussian":
        return torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    if name == "laplace":
        b = 1 / math.sqrt(2)
        return torch.exp(-x.abs() / b) / (2 * b)
    a = math.sqrt(3.0)
    return (x.abs() <= a).to(x.dtype) / (2 * a)


def uniform_quantize(x: torch.Tensor, alpha, bits: int) -> torch.Tensor:
    r"""The :math:`b`-bit linear quantizer clipped at :math:`\pm\alpha`: :math:`2^b` levels evenly spaced on
    :math:`[-\alpha, \alpha]` (both ends are levels, as DoReFa's 2-bit weights :math:`\{\pm1, \pm\frac13\}`).

    .. math::
        \Delta = \frac{2\alpha}{2^b - 1}, \qquad
        Q_\alpha(x) = -\alpha + \Delta \operatorname{round}\Big(\frac{\operatorname{clip}(x, -\alpha, \alpha)
        + \alpha}{\Delta}\Big)

    ``alpha`` is a positive number or a tensor broadcastable to ``x`` (one clip per group)."""
    require_float_tensor(x, "x")
    bits = require_bits(bits)
    if not torch.is_tensor(alpha):
        alpha = torch.tensor(require_positive_number(alpha, "alpha"), dtype=x.dtype)
    elif not bool((alpha > 0).all()):
        raise ValueError("alpha must be positive")
    step = 2 * alpha / (2 ** bits - 1)
    return -alpha + step * torch.round((torch.minimum(torch.maximum(x, -alpha), alpha) + alpha) / step)


def quantized_loss(name: str, alpha: float, bits: int, points: int = 20_001) -> float:
    r"""The quantized loss :math:`L(\alpha) = \int (x - Q_\alpha(x))^2 p(x)\,dx` of a unit-variance
    distribution, integrated numerically (trapezoid rule in float64 on ``points`` points over the support)."""
    name = _require_distribution(name)
    alpha = require_positive_number(alpha, "alpha")
    bits = require_bits(bits)
    points = require_int(points, "points", minimum=1001)
    half = _HALF_WIDTH[name]
    x = torch.linspace(-half, half, points, dtype=torch.float64)
    error = (x - uniform_quantize(x, alpha, bits)) ** 2 * density(name, x)
    return float(torch.trapezoid(error, x))


def optimal_clip(name: str, bits: int, iterations: int = 40) -> tuple[float, float]:
    r""":math:`(\alpha^*, L(\alpha^*))` by golden-section search of :func:`quantized_loss` (unimodal in
    :math:`\alpha` for these densities)."""
    name = _require_distribution(name)
    bits = require_bits(bits)
    iterations = require_int(iterations, "iterations", minimum=1)
    lo, hi = 0.01, 12.0
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(iterations):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if quantized_loss(name, a, bits) < quantized_loss(name, b, bits):
            hi = b
        else:
            lo = a
    alpha = (lo + hi) / 2
    return alpha, quantized_loss(name, alpha, bits)


def uniform_loss_closed_form(alpha: float, bits: int) -> float:
    r"""The uniform distribution's quantized loss in closed form (ours), for :math:`\alpha \le a = \sqrt3`:

    .. math::
        L(\alpha) = \frac{\alpha^3 / (2^b - 1)^2 + (a - \alpha)^3}{3a}, \qquad
        \alpha^* = a\,\frac{2^b - 1}{2^b}

    (rounding noise :math:`\Delta^2/12` on the fraction :math:`\alpha/a` inside, plus the clipped tails)."""
    alpha = require_positive_number(alpha, "alpha", maximum=math.sqrt(3.0))
    bits = require_bits(bits)
    a = math.sqrt(3.0)
    return (alpha ** 3 / (2 ** bits - 1) ** 2 + (a - alpha) ** 3) / (3 * a)


def scale_clip(w: torch.Tensor, k: float) -> torch.Tensor:
    r"""Scale-Clip (our reconstruction of the statistic): clip the tensor at :math:`k` times its mean magnitude,
    a threshold that moves with the tensor during training.

    .. math::
        \hat W = \operatorname{clip}\big(W, -t, t\big), \qquad t = k \cdot \operatorname{mean}(|W|)

    The threshold is treated as a constant in the backward pass."""
    require_float_tensor(w, "w")
    k = require_positive_number(k, "k")
    t = k * w.detach().abs().mean()
    return torch.clamp(w, -t, t)


def group_quantize(w: torch.Tensor, bits: int, k: float, groups: int) -> torch.Tensor:
    r"""Group-based quantization with Scale-Clip: the rows (filters) of ``w`` are split into ``groups``
    contiguous groups, each clipped at its own :math:`t_g = k \cdot \operatorname{mean}(|W_g|)` and quantized
    with :func:`uniform_quantize` at :math:`\alpha = t_g`; straight-through gradient inside the clip.
    ``k=None`` is the baseline without Scale-Clip: :math:`t_g = \max |W_g|`.

    .. math::
        \hat W_g = Q_{t_g}(W_g), \qquad g = 1, \dots, G

    A group's scale :math:`t_g` multiplies its output channels only, so it folds into their batch norm."""
    require_float_tensor(w, "w")
    bits = require_bits(bits)
    k = None if k is None else require_positive_number(k, "k")
    groups = require_int(groups, "groups", minimum=1)
    if w.dim() < 1 or w.shape[0] % groups:
        raise ValueError(f"groups must divide w's first dimension, got {groups} for shape {tuple(w.shape)}")
    g = w.reshape(groups, -1)
    a = g.detach().abs()
    t = (a.amax(dim=1, keepdim=True) if k is None else k * a.mean(dim=1, keepdim=True)).clamp_min(1e-12)
    clipped = torch.minimum(torch.maximum(g, -t), t)
    with torch.no_grad():
        q = uniform_quantize(clipped, t, bits)
    return straight_through(clipped, q).reshape(w.shape)


class ScaleClipWeight(nn.Module):
    """Weight quantizer: :func:`group_quantize` (``groups=1``: one scale per layer; ``k=None``: max-scaled)."""

    def __init__(self, bits: int = 2, k: float = 2.0, groups: int = 1):
        super().__init__()
        self.precision = require_bits(bits)
        self.k = None if k is None else require_positive_number(k, "k")
        self.groups = require_int(groups, "groups", minimum=1)

    def forward(self, w):
        return group_quantize(w, self.precision, self.k, self.groups)

    def extra_repr(self):
        return f"bits={self.precision}, k={self.k}, groups={self.groups}"


class ScaleClipActivation(nn.Module):
    r"""ReLU, then Scale-Clip at :math:`t = k \cdot m` with :math:`m` a moving average of the batch mean (ours;
    the summary we read says a large :math:`k` for activations, whose statistics are unstable), then
    :math:`2^b` levels on :math:`[0, t]` with a straight-through gradient inside the clip."""

    def __init__(self, bits: int = 2, k: float = 3.0, momentum: float = 0.1):
        super().__init__()
        self.precision = require_bits(bits)
        self.k = require_positive_number(k, "k")
        self.momentum = require_positive_number(momentum, "momentum", maximum=1)
        self.register_buffer("running_mean", torch.tensor(-1.0))

    def forward(self, x):
        require_float_tensor(x, "x")
        x = torch.relu(x)
        if self.training:
            m = x.detach().mean()
            first = bool(self.running_mean < 0)
            self.running_mean.copy_(m if first else torch.lerp(self.running_mean, m, self.momentum))
        t = self.k * self.running_mean.clamp_min(1e-8)
        clipped = torch.minimum(x, t)
        with torch.no_grad():
            step = t / (2 ** self.precision - 1)
            q = step * torch.round(clipped / step)
        return straight_through(clipped, q)


def comparison_layer(w_bits: int, a_bits: int, groups: int = 4):
    """The results page's layer: Scale-Clip group weights (k = 2, ``groups`` groups of rows) and Scale-Clip
    activations (k = 3); ``w_bits`` and ``a_bits`` from 2 to 8."""
    w_bits = require_int(w_bits, "w_bits", minimum=2, maximum=8)
    a_bits = require_int(a_bits, "a_bits", minimum=2, maximum=8)
    return ScaleClipWeight(w_bits, k=2.0, groups=groups), None, ScaleClipActivation(a_bits, k=3.0)
