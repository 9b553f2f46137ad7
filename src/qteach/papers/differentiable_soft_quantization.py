r"""DSQ: Differentiable Soft Quantization, a piecewise tanh that tends to the uniform staircase.

Gong, Liu, Jiang, Li, Hu, Lin, Yu and Yan (ICCV 2019, arXiv 1908.05033) replace the staircase of a :math:`b`-bit
uniform quantizer by a smooth function during training, so that the backward pass gets the gradient of a function
close to the staircase instead of the straight-through estimator's constant 1.

**Intervals.** Values are clipped to :math:`[l, u]`, split into :math:`2^b - 1` intervals of width
:math:`\Delta = (u - l) / (2^b - 1)`: :math:`\mathcal{P}_i = [l + i\Delta, l + (i + 1)\Delta)` with midpoint
:math:`m_i = l + (i + 0.5)\Delta`.

**The soft function** (:func:`phi`, (D1) here): inside :math:`\mathcal{P}_i`

.. math:: \varphi(x) = s \tanh\big(k (x - m_i)\big), \qquad s = \frac{1}{\tanh(0.5 k \Delta)},

so :math:`\varphi` goes from :math:`-1` to :math:`1` across each interval.

**The soft quantizer** (:func:`soft_quantize`, (D2) here):

.. math:: Q_S(x) = \begin{cases} l & x < l \\ u & x > u \\
    l + \Delta\left(i + \frac{\varphi(x) + 1}{2}\right) & x \in \mathcal{P}_i \end{cases}

**The characteristic variable** (:func:`tanh_parameters`, (D3) here): :math:`\alpha = 1 - \tanh(0.5 k \Delta)
= 1 - 1/s`, so :math:`s = 1/(1 - \alpha)` and :math:`k = \frac{1}{\Delta}\log(2/\alpha - 1)`. Small
:math:`\alpha` is close to the staircase; :math:`\alpha \to 1` tends to the identity on :math:`[l, u]`.
The paper learns :math:`\alpha` with the network under a norm bound :math:`\|\alpha\|_2 < \lambda`, and learns
:math:`l` and :math:`u`.

**Deployment** (:func:`hard_quantize`, (D4) here): after training the sign of :math:`\varphi` gives the staircase,
:math:`Q(x) = l + \Delta\big(i + \frac{\operatorname{sgn}(\varphi(x)) + 1}{2}\big)`, i.e. round to the nearest
level (here :math:`\operatorname{sgn}(0) = +1`).

**What comes from where.** We could read the abstract and introduction (arXiv 1908.05033 on ar5iv and SPIQA), and
the method's equations only as transcribed by secondary sources (a Zhihu article and a topic page), not the
paper's own method section: (D1)-(D4) are therefore numbered here, not as in the paper. There is no official
repository of the paper; MQBench (``mqbench/fake_quantize/dsq.py``, ``dsq_function_per_tensor``), from the
authors' group, implements DSQ with a *hard* forward (round) and the soft function's gradient: :func:`dsq_quantize`
offers that as ``forward="hard"``, and the tests compare it with a transcription of that function. Our choices,
not the paper's: :math:`\alpha` kept in :math:`[\alpha_{\min}, \alpha_{\max}]` by a clamp (the norm bound), the
initial :math:`\alpha`, and the initial clipping ranges of :class:`DSQ`.

References:

- R. Gong, X. Liu, S. Jiang, T. Li, P. Hu, J. Lin, F. Yu, J. Yan, *Differentiable Soft Quantization: Bridging
  Full-Precision and Low-Bit Neural Networks*, ICCV 2019, arXiv:1908.05033.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary
from qteach._validate import (
    require_bits,
    require_bool,
    require_float_input,
    require_str,
)

__all__ = [
    "DSQ",
    "FULL",
    "comparison_layer",
    "dsq_quantize",
    "hard_quantize",
    "phi",
    "soft_quantize",
    "tanh_parameters",
]

FULL = 32
"""32 bits: leave the tensor in full precision (the results pages' convention)."""


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a number or a one-element tensor, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(f"{name} must be a one-element float tensor, got shape {tuple(value.shape)}")
        return value.reshape(())
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return torch.tensor(float(value))


def _require_alpha(alpha) -> torch.Tensor:
    alpha = _as_tensor(alpha, "alpha")
    if not 0 < float(alpha.detach()) < 1:
        raise ValueError(f"alpha must be in (0, 1), got {float(alpha.detach())}")
    return alpha


def _require_range(lower, upper) -> tuple[torch.Tensor, torch.Tensor]:
    lower, upper = _as_tensor(lower, "lower"), _as_tensor(upper, "upper")
    if not float(upper.detach()) > float(lower.detach()):
        raise ValueError(f"upper must be > lower, got lower={float(lower)}, upper={float(upper)}")
    return lower, upper


def tanh_parameters(alpha, delta) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The shape :math:`k` and scale :math:`s` of :math:`\varphi` for a characteristic variable :math:`\alpha`
    ((D3) here, from :math:`\alpha = 1 - \tanh(0.5 k \Delta) = 1 - 1/s`):

    .. math:: s = \frac{1}{1 - \alpha}, \qquad k = \frac{1}{\Delta}\log\left(\frac{2}{\alpha} - 1\right)

    ``alpha`` in (0, 1) and ``delta`` > 0, numbers or one-element tensors (gradients flow through both).
    """
    alpha = _require_alpha(alpha)
    delta = _as_tensor(delta, "delta")
    if not float(delta.detach()) > 0:
        raise ValueError(f"delta must be > 0, got {float(delta.detach())}")
    s = 1 / (1 - alpha)
    k = torch.log(2 / alpha - 1) / delta
    return k, s


def _interval(x, lower, upper, bits):
    """Clipped x, interval width, interval index i (no gradient) and midpoint m_i."""
    n = 2**bits - 1
    delta = (upper - lower) / n
    clipped = torch.minimum(torch.maximum(x, lower), upper)
    i = torch.clamp(torch.floor(((clipped - lower) / delta).detach()), 0, n - 1)
    return clipped, delta, i, lower + (i + 0.5) * delta


def phi(x: torch.Tensor, lower, upper, bits: int, alpha) -> torch.Tensor:
    r"""The soft function (D1): :math:`\varphi(x) = s \tanh(k (x - m_i))` in the interval :math:`\mathcal{P}_i`
    of :math:`x` (clipped to :math:`[l, u]` first), with :math:`k, s` from :func:`tanh_parameters`. In
    :math:`[-1, 1]`; :math:`-1` at the left end of each interval, :math:`+1` at the right end."""
    require_float_input(x, "x")
    lower, upper = _require_range(lower, upper)
    bits = require_bits(bits, "bits")
    _require_alpha(alpha)
    clipped, delta, _, m = _interval(x, lower, upper, bits)
    k, s = tanh_parameters(alpha, delta)
    return s * torch.tanh(k * (clipped - m))


def soft_quantize(x: torch.Tensor, lower, upper, bits: int, alpha) -> torch.Tensor:
    r"""The soft quantizer :math:`Q_S` (D2): :math:`l` below :math:`l`, :math:`u` above :math:`u`, and
    :math:`l + \Delta\,(i + (\varphi(x) + 1)/2)` in :math:`\mathcal{P}_i`. Differentiable in ``x``, ``lower``,
    ``upper`` and ``alpha`` (pass tensors that require grad to learn them)."""
    require_float_input(x, "x")
    lower, upper = _require_range(lower, upper)
    bits = require_bits(bits, "bits")
    alpha = _require_alpha(alpha)
    clipped, delta, i, m = _interval(x, lower, upper, bits)
    k, s = tanh_parameters(alpha, delta)
    return lower + delta * (i + (s * torch.tanh(k * (clipped - m)) + 1) / 2)


def hard_quantize(x: torch.Tensor, lower, upper, bits: int) -> torch.Tensor:
    r"""The deployed quantizer (D4): :math:`l + \Delta\,(i + (\operatorname{sgn}(\varphi(x)) + 1)/2)`; the sign
    of :math:`\varphi` is that of :math:`x - m_i`, so this rounds :math:`x` (clipped) to the nearest of the
    :math:`2^b` levels :math:`l + j\Delta`, a midpoint going up. No gradient."""
    require_float_input(x, "x")
    lower, upper = _require_range(lower, upper)
    bits = require_bits(bits, "bits")
    with torch.no_grad():
        clipped, delta, i, m = _interval(x, lower.detach(), upper.detach(), bits)
        return lower.detach() + delta * (i + (binary.sign(clipped - m) + 1) / 2)


def dsq_quantize(x: torch.Tensor, lower, upper, bits: int, alpha, forward: str = "soft") -> torch.Tensor:
    r"""DSQ in training. ``forward="soft"``: :math:`Q_S(x)` forward and backward (the paper's training, a
    network then deployed with :func:`hard_quantize`). ``forward="hard"``: the staircase forward, the gradient of
    :math:`Q_S` backward, as MQBench's ``dsq_function_per_tensor`` does with ``(x.round() - x).detach() + x``."""
    if require_str(forward, "forward") not in ("soft", "hard"):
        raise ValueError(f"forward must be 'soft' or 'hard', got {forward!r}")
    soft = soft_quantize(x, lower, upper, bits, alpha)
    if forward == "soft":
        return soft
    return soft + (hard_quantize(x, lower, upper, bits) - soft).detach()


class DSQ(nn.Module):
    r"""A DSQ quantizer with learned :math:`l`, :math:`u` and :math:`\alpha` (one each per tensor).

    In training mode :func:`dsq_quantize` (``forward`` as given); in eval mode the deployed staircase
    :func:`hard_quantize`. :math:`\alpha` is learned and clamped to ``[alpha_min, alpha_max]`` (our stand-in
    for the paper's bound :math:`\|\alpha\|_2 < \lambda`). ``lower=None`` means "initialise :math:`[l, u]`
    from the first tensor seen" (its min and max, our choice; for weights); otherwise ``[lower, upper]`` is the
    initial range (for activations, e.g. ``[0, 2]`` after batch norm). ``bits = 32`` returns ``x`` unchanged.
    """

    def __init__(self, bits: int, lower: float | None = None, upper: float | None = None, alpha: float = 0.2,
                 alpha_min: float = 0.01, alpha_max: float = 0.5, forward: str = "soft", learn_alpha: bool = True):
        super().__init__()
        self.bits = require_bits(bits, "bits")
        if (lower is None) != (upper is None):
            raise ValueError("lower and upper must both be given or both be None")
        if lower is not None:
            _require_range(lower, upper)
        if not 0 < alpha_min <= alpha <= alpha_max < 1:
            raise ValueError(f"alpha_min <= alpha <= alpha_max must lie in (0, 1), got {alpha_min}, {alpha}, "
                             f"{alpha_max}")
        if require_str(forward, "forward") not in ("soft", "hard"):
            raise ValueError(f"forward must be 'soft' or 'hard', got {forward!r}")
        require_bool(learn_alpha, "learn_alpha")
        self.alpha_min, self.alpha_max, self.forward_mode = alpha_min, alpha_max, forward
        self.precision = self.bits  # read by qteach.nn.precision_of (memory and operation counts)
        self.lower = nn.Parameter(torch.tensor(float(lower if lower is not None else -1.0)))
        self.upper = nn.Parameter(torch.tensor(float(upper if upper is not None else 1.0)))
        self.alpha = nn.Parameter(torch.tensor(float(alpha)), requires_grad=learn_alpha)
        self.register_buffer("initialised", torch.tensor(lower is not None))

    def effective_alpha(self) -> torch.Tensor:
        return torch.clamp(self.alpha, self.alpha_min, self.alpha_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits == FULL:
            return x
        if not bool(self.initialised):
            with torch.no_grad():
                self.lower.fill_(float(x.min()))
                self.upper.fill_(float(x.max()))
                self.initialised.fill_(True)
        if not self.training:
            return hard_quantize(x, self.lower, self.upper, self.bits)
        return dsq_quantize(x, self.lower, self.upper, self.bits, self.effective_alpha(), self.forward_mode)


def comparison_layer(w_bits: int, a_bits: int, forward: str = "soft"):
    r"""``(weight_quantizer, input_quantizer, activation)`` of a DSQ layer for :class:`qteach.comparison.Method`:
    DSQ weights (range from the first weights seen), no input quantizer, and a DSQ activation on
    :math:`[0, 2]` at first (after batch norm; it clips like a ReLU with a learned floor and ceiling). 32 bits
    leave the weights in float, or make the activation a ReLU."""
    w_bits, a_bits = require_bits(w_bits, "w_bits"), require_bits(a_bits, "a_bits")
    weight = None if w_bits == FULL else DSQ(w_bits, forward=forward)
    activation = nn.ReLU() if a_bits == FULL else DSQ(a_bits, 0.0, 2.0, forward=forward)
    return weight, None, activation
