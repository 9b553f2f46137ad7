r"""PA: several binary bases fit by cutting the value range into pieces, each piece with its own scale.

Zhu, Al-Ars and Pan approximate full-precision weights and activations of a binary CNN by several binary
bases, like ABC-Net, but instead of fitting the bases by least squares on fixed shifted signs (ABC-Net) or one
after another on the residual (HORQ, ReBNet, ...), their Piecewise Approximation (PA) *segments* the values
piece-wise and approximates each piece with one scaling coefficient; the bases stay independent of each other,
so they are evaluated in parallel with XNOR-popcount.

**What could be read.** The abstract and the first page of the introduction; the method section (its
segmentation rule and its numbered equations) could not be read for this book. The rule below is *our
reconstruction* of "segment piece-wisely, one scaling coefficient per piece", and no equation is cited by number.

**Our reconstruction.** :math:`M` segment points :math:`t_1 \le \dots \le t_M` cut the values into
:math:`M + 1` pieces :math:`P_k = \{x : t_k \le x < t_{k+1}\}` (:math:`t_0 = -\infty`,
:math:`t_{M+1} = +\infty`), each replaced by its mean :math:`v_k`. The staircase is a sum of :math:`M` shifted
binary bases and one offset,

.. math::
    \hat{x} = b + \sum_{m=1}^{M} \alpha_m \operatorname{sign}(x - t_m), \qquad
    \alpha_m = \frac{v_m - v_{m-1}}{2}, \qquad b = \frac{v_0 + v_M}{2},

with :math:`\operatorname{sign}(0) = +1`. The segment points are the :math:`\frac{m}{M+1}` quantiles
(``rule="quantile"``: pieces of equal count) or evenly spaced on :math:`[\min x, \max x]` (``rule="uniform"``).
For fixed segment points the piece means are the least-squares optimum over the bases
:math:`\{1, \operatorname{sign}(x - t_1), \dots\}` (they span the piecewise-constant functions), which a test
checks. The offset :math:`b` is ours too: without it a staircase of :math:`\pm 1` bases is odd-symmetric and
cannot fit non-negative (ReLU) activations; in a dot product it costs one popcount of the other operand.

References:

- Zhu, Al-Ars, Pan, *Towards Lossless Binary Convolutional Neural Networks Using Piecewise Approximation*,
  ECAI 2020. https://arxiv.org/abs/2008.03520
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import bitops
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_no_nan,
    require_str,
)
from qteach.papers import abc_net, horq

__all__ = [
    "RULES",
    "PAActivationQuantizer",
    "PAWeightQuantizer",
    "approximate",
    "coefficients",
    "comparison_layer",
    "pa_bases",
    "pa_linear_bitwise",
    "piece_levels",
    "reconstruction_mse",
    "segment_points",
]

RULES = ("quantile", "uniform", "lloyd")
LLOYD_STEPS = 10
METHODS = ("pa", "abc", "residual")


def _require_values(x, name: str = "x") -> torch.Tensor:
    require_float_tensor(x, name)
    require_no_nan(x, name)
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite")
    return x


def _require_bases(num_bases, name: str = "num_bases") -> int:
    return require_int(num_bases, name, minimum=1, maximum=32)


def _require_rule(rule) -> str:
    rule = require_str(rule, "rule")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


def segment_points(x: torch.Tensor, num_bases: int, rule: str = "quantile") -> torch.Tensor:
    r"""The :math:`M` segment points :math:`t_1 \le \dots \le t_M` (our reconstruction, see the module):
    the :math:`m/(M+1)` quantiles of ``x``, i.e. its :math:`(\lfloor m n / (M+1) \rfloor + 1)`-th smallest of
    :math:`n` values, which leaves :math:`\lfloor m n / (M+1) \rfloor` values below :math:`t_m` when there are no
    ties (``"quantile"``: pieces of equal count), or :math:`\min x + \frac{m}{M+1}(\max x - \min x)`
    (``"uniform"``), or the quantiles moved by :data:`LLOYD_STEPS` Lloyd steps (``"lloyd"``: each point set
    midway between the means of its two pieces, which never increases the squared error). One set per tensor,
    float64, shape ``(M,)``."""
    _require_values(x)
    _require_bases(num_bases)
    _require_rule(rule)
    return _segment_points(x.detach().reshape(-1), num_bases, rule)


def _segment_points(x: torch.Tensor, m: int, rule: str) -> torch.Tensor:
    fractions = torch.arange(1, m + 1, dtype=torch.float64) / (m + 1)
    if rule == "uniform":
        return (x.min().double() + fractions * (x.max() - x.min()).double()).to(x.device)
    ranks = (torch.floor(fractions * len(x)).long() + 1).clamp(max=len(x)).tolist()
    points = torch.stack([x.kthvalue(k).values for k in ranks]).double()
    for _ in range(LLOYD_STEPS if rule == "lloyd" else 0):  # each point midway between its two piece means
        levels = _piece_levels(x, points)
        points = (levels[:-1] + levels[1:]) / 2
    return points


def piece_levels(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    r"""The mean :math:`v_k` of each piece :math:`P_k = \{t_k \le x < t_{k+1}\}` (float64, shape ``(M+1,)``).
    An empty piece (tied segment points) takes the level of the piece below it (the lowest non-empty one if it
    is the first), so that its basis gets :math:`\alpha = 0`."""
    _require_values(x)
    _require_values(points, "points")
    if points.dim() != 1 or bool((points[1:] < points[:-1]).any()):
        raise ValueError("points must be a sorted 1-D tensor")
    return _piece_levels(x.detach().reshape(-1), points)


def _piece_levels(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    x = x.double()
    piece = torch.bucketize(x, points.double().to(x.device), right=True)  # number of t_m <= x
    counts = torch.bincount(piece, minlength=len(points) + 1).double()
    sums = torch.zeros(len(points) + 1, dtype=torch.float64, device=x.device).index_add_(0, piece, x)
    levels = sums / counts.clamp(min=1)
    filled = (counts > 0).tolist()
    if not all(filled):
        first = filled.index(True)
        for k in range(len(levels)):
            if not filled[k]:
                levels[k] = levels[k - 1] if k > first else levels[first]
    return levels


def coefficients(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The offset and scales of the staircase with levels :math:`v_0, \dots, v_M`:
    :math:`b = (v_0 + v_M)/2`, :math:`\alpha_m = (v_m - v_{m-1})/2`; returns ``(b, alpha)``."""
    _require_values(levels, "levels")
    if levels.dim() != 1 or len(levels) < 2:
        raise ValueError("levels must be a 1-D tensor of at least two levels")
    return (levels[0] + levels[-1]) / 2, (levels[1:] - levels[:-1]) / 2


def pa_bases(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    r"""The binary bases :math:`B_m = \operatorname{sign}(x - t_m)`, stacked: shape ``(M, *x.shape)``, values
    :math:`\pm 1` in ``x``'s dtype, with :math:`\operatorname{sign}(0) = +1` (a value on a segment point
    belongs to the piece above it). Each depends on ``x`` alone, not on the other bases: they can be computed
    in parallel."""
    _require_values(x)
    _require_values(points, "points")
    if points.dim() != 1:
        raise ValueError("points must be a 1-D tensor")
    return _pa_bases(x.detach(), points)


def _pa_bases(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    t = points.to(device=x.device, dtype=torch.float64).reshape(-1, *([1] * x.dim()))
    above = x.double().unsqueeze(0) >= t  # compared in float64: the same pieces as _piece_levels
    return above.to(x.dtype) * 2 - 1


def _staircase(bases: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(bases.shape[1:], dtype=torch.float64, device=bases.device) + b
    for alpha_m, basis in zip(alpha, bases):  # element-wise, in one order: equal patterns, equal values
        out = out + alpha_m * basis.double()
    return out


def approximate(x: torch.Tensor, num_bases: int, rule: str = "quantile"):
    r"""The PA approximation: ``(x_hat, b, alpha, bases)`` with
    :math:`\hat{x} = b + \sum_m \alpha_m B_m` (``x_hat`` in ``x``'s dtype, ``b`` and ``alpha`` float64)."""
    _require_values(x)
    m = _require_bases(num_bases)
    rule = _require_rule(rule)
    x = x.detach()
    points = _segment_points(x.reshape(-1), m, rule)
    b, alpha = coefficients(_piece_levels(x.reshape(-1), points))
    bases = _pa_bases(x, points)
    return _staircase(bases, b, alpha).to(x.dtype), b, alpha, bases


def reconstruction_mse(x: torch.Tensor, num_bases: int, method: str = "pa", rule: str = "quantile") -> float:
    r"""Mean squared error :math:`\operatorname{mean}((x - \hat{x})^2)` of one approximation with ``num_bases``
    binary bases: ``"pa"`` (this module), ``"abc"`` (ABC-Net's least squares on shifted signs,
    :func:`qteach.papers.abc_net.approximate`) or ``"residual"`` (greedy residual signs,
    :func:`qteach.papers.horq.residual_binarize` with one scale for the whole tensor). Computed in float64."""
    _require_values(x)
    _require_bases(num_bases)
    method = require_str(method, "method")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = x.detach().double()
    if method == "pa":
        x_hat = approximate(x, num_bases, rule)[0]
    elif method == "abc":
        x_hat = abc_net.approximate(x, num_bases)[0]
    else:
        x_hat = horq.horq_approximation(x.reshape(1, -1), num_bases).reshape(x.shape)
    return float(((x - x_hat) ** 2).mean())


def pa_linear_bitwise(a: torch.Tensor, w: torch.Tensor, a_bases: int, w_bases: int,
                      rule: str = "quantile") -> torch.Tensor:
    r""":math:`\hat{a}\,\hat{w}^\top` of PA inputs ``a`` (N, K) and PA weights ``w`` (O, K), from XNOR-popcount.

    .. math::
        \hat{a}\hat{w}^\top = \sum_{n,m} \beta_n \alpha_m \operatorname{xnor}(A_n, B_m)
        + b_w \sum_n \beta_n A_n \mathbf{1} + b_a \mathbf{1}^\top \sum_m \alpha_m B_m^\top + K b_a b_w

    The :math:`N \times M` integer products (:func:`qteach.bitops.xnor_matmul`) are independent of each
    other; the row sums of :math:`\pm 1` bases are popcounts too. Float64 result."""
    _require_values(a, "a")
    _require_values(w, "w")
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[1]:
        raise ValueError(f"a (N, K) and w (O, K) must be 2-D with the same K, got {tuple(a.shape)} and "
                         f"{tuple(w.shape)}")
    _, b_a, beta, a_b = approximate(a, a_bases, rule)
    _, b_w, alpha, w_b = approximate(w, w_bases, rule)
    out = a.shape[1] * b_a * b_w + torch.zeros(a.shape[0], w.shape[0], dtype=torch.float64)
    for n in range(len(beta)):
        out += b_w * beta[n] * a_b[n].double().sum(1, keepdim=True)
        for m in range(len(alpha)):
            out += beta[n] * alpha[m] * bitops.xnor_matmul(a_b[n], w_b[m]).double()
    for m in range(len(alpha)):
        out += b_a * alpha[m] * w_b[m].double().sum(1)
    return out


class _PAFunction(torch.autograd.Function):
    """Forward: the given staircase; backward: straight-through inside [lowest, highest level], zero outside."""

    @staticmethod
    def forward(ctx, x, x_hat, low, high):
        ctx.save_for_backward((x >= low) & (x <= high))
        return x_hat

    @staticmethod
    def backward(ctx, grad_output):
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype), None, None, None


class PAWeightQuantizer(nn.Module):
    r"""PA weights for :class:`qteach.nn.QuantLinear`: :math:`W \mapsto b + \sum_{m=1}^{M} \alpha_m
    \operatorname{sign}(W - t_m)`, recomputed from the latent weights at every forward pass (one segmentation
    per layer). Backward: straight-through estimator inside the range of the levels (our choice; the paper's
    training details could not be read). ``precision = num_bases``."""

    def __init__(self, num_bases: int = 3, rule: str = "quantile"):
        super().__init__()
        self.precision = _require_bases(num_bases)
        self.rule = _require_rule(rule)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        _require_values(w, "w")
        x_hat, b, alpha, _ = approximate(w, self.precision, self.rule)
        spread = float(alpha.abs().sum())
        return _PAFunction.apply(w, x_hat, float(b) - spread, float(b) + spread)

    def extra_repr(self) -> str:
        return f"num_bases={self.precision}, rule={self.rule!r}"


class PAActivationQuantizer(nn.Module):
    r"""PA activations as an ``input_quantizer``: :math:`A \mapsto b + \sum_n \beta_n \operatorname{sign}(A -
    s_n)`. In training the segment points and piece means come from the batch and are tracked by an
    exponential moving average (``momentum``); in evaluation the tracked values are used, so that inference
    needs no statistics of its input (our choice, like batch norm's running statistics). Backward as in
    :class:`PAWeightQuantizer`. ``precision = num_bases``."""

    def __init__(self, num_bases: int = 3, rule: str = "quantile", momentum: float = 0.1):
        super().__init__()
        self.precision = _require_bases(num_bases)
        self.rule = _require_rule(rule)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum <= 1:
            raise ValueError(f"momentum must be a number in (0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.register_buffer("points", torch.zeros(self.precision, dtype=torch.float64))
        self.register_buffer("levels", torch.zeros(self.precision + 1, dtype=torch.float64))
        self.register_buffer("tracked", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _require_values(x)
        if self.training:
            flat = x.detach().reshape(-1)
            points = _segment_points(flat, self.precision, self.rule)
            levels = _piece_levels(flat, points)
            keep = 0.0 if not bool(self.tracked) else 1 - self.momentum
            self.points.mul_(keep).add_((1 - keep) * points.to(self.points.device))
            self.levels.mul_(keep).add_((1 - keep) * levels.to(self.levels.device))
            self.tracked.fill_(True)
        else:
            points, levels = self.points, self.levels
        b, beta = coefficients(levels)
        x_hat = _staircase(_pa_bases(x.detach(), points), b, beta).to(x.dtype)
        spread = float(beta.abs().sum())
        return _PAFunction.apply(x, x_hat, float(b) - spread, float(b) + spread)

    def extra_repr(self) -> str:
        return f"num_bases={self.precision}, rule={self.rule!r}"


def comparison_layer(w_bits: int = 3, a_bits: int = 3):
    r"""``(weight_quantizer, input_quantizer, activation)`` of a PA layer for :class:`qteach.comparison.Method`:
    ``w_bits`` weight bases, ``a_bits`` activation bases (32: full-precision inputs), no activation after the
    layer (the PA input quantizer is the non-linearity, as ABC-Net's entry)."""
    w = _require_bases(w_bits, "w_bits")
    a = require_int(a_bits, "a_bits", minimum=1, maximum=32)
    return PAWeightQuantizer(w), (None if a == 32 else PAActivationQuantizer(a)), nn.Identity()
