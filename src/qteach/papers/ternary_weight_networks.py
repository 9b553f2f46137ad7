r"""Ternary Weight Networks (TWN): weights in :math:`\{-\alpha, 0, +\alpha\}` with a closed-form threshold.

Li, Zhang and Liu approximate a layer's full-precision weights :math:`W \in \mathbb{R}^n` by a ternary tensor
:math:`W^t \in \{-1, 0, +1\}^n` times one non-negative scale :math:`\alpha`, chosen to minimise the Euclidean
distance

.. math::
    \alpha^*, W^{t*} = \arg\min_{\alpha \ge 0,\; W^t_i \in \{-1,0,+1\}} \lVert W - \alpha W^t \rVert_2^2 .

With a *threshold-based ternary function* (:func:`ternarize`) the problem reduces to one number, the threshold
:math:`\Delta`: for a given :math:`\Delta` the best scale is the mean magnitude of the weights that survive
(:func:`ternary_scale`), and the best :math:`\Delta` maximises :math:`(\sum_{i \in I_\Delta} |W_i|)^2 /
|I_\Delta|` (:func:`approximation_error`, :func:`optimal_threshold`). Because that search was considered too slow
to run at every training step, the paper assumes the weights are uniform or Gaussian and uses the rule of thumb
:math:`\Delta^* \approx 0.7\,E(|W|)` (:func:`ternary_threshold`). Training keeps float ("latent") weights, uses
:math:`\alpha W^t` in the forward and backward passes and applies the gradient to the float weights
(:class:`TernaryWeightQuantizer`).

Equation numbers are not quoted here: the arXiv versions of the paper (v1, May 2016; the 2022 revision with
added authors) number them differently, and the numbering could not be checked for this book. The formulas are
the paper's; where the official code (``fengfu-chris/caffe-twns``, ``Blob::set_delta`` and
``Blob::ternarize_data`` in ``src/caffe/blob.cpp``) fixes a detail, the docstring says so.

References:

- Li, Zhang, Liu, *Ternary Weight Networks*, arXiv:1605.04711, 2016 (NIPS 2016 workshop EMDNN).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_bool, require_float_tensor, require_no_nan

__all__ = [
    "TWN_FACTOR",
    "ternary_threshold",
    "ternarize",
    "ternary_scale",
    "ternary_weights",
    "approximation_error",
    "optimal_threshold",
    "TernaryWeightQuantizer",
    "BinaryWeightQuantizer",
]

TWN_FACTOR = 0.7
"""The paper's rule of thumb :math:`\\Delta^* \\approx 0.7\\,E(|W|)` (the official Caffe code: ``TERNARY_DELTA = 7``,
read as 7/10)."""


def _require_weights(w, name: str = "w") -> torch.Tensor:
    require_float_tensor(w, name)
    if w.dim() == 0 or w.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor with at least one dimension, got shape {tuple(w.shape)}")
    require_no_nan(w, name)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} must be finite")
    return w


def _reduce_dims(w: torch.Tensor, per_channel: bool):
    """Dimensions to average over: all (one value per tensor) or all but dim 0 (one per output channel)."""
    if per_channel and w.dim() > 1:
        return tuple(range(1, w.dim()))
    return tuple(range(w.dim()))


def _require_delta(delta, w: torch.Tensor) -> torch.Tensor:
    """``delta`` as a float tensor that broadcasts against ``w`` (a number, a 0-d tensor or per-channel)."""
    if isinstance(delta, bool) or not isinstance(delta, (numbers.Real, torch.Tensor)):
        raise TypeError(f"delta must be a number or a tensor, got {type(delta).__name__}")
    delta = torch.as_tensor(delta, dtype=w.dtype, device=w.device)
    if bool(torch.isnan(delta).any()) or bool((delta < 0).any()):
        raise ValueError("delta must be >= 0 (and not NaN)")
    try:
        torch.broadcast_shapes(delta.shape, w.shape)
    except RuntimeError as error:
        raise ValueError(f"delta of shape {tuple(delta.shape)} does not broadcast against w of shape "
                         f"{tuple(w.shape)}") from error
    return delta


def ternary_threshold(w: torch.Tensor, factor: float = TWN_FACTOR, per_channel: bool = False) -> torch.Tensor:
    r"""The TWN threshold :math:`\Delta = 0.7 \cdot E(|W|)`, the paper's approximation of the optimal threshold.

    .. math:: \Delta^* \approx 0.7 \cdot E(|W|) \approx \frac{0.7}{n} \sum_{i=1}^{n} |W_i|

    The paper derives the factor from two assumed weight distributions: for :math:`W \sim U[-a, a]` the exact
    optimum is :math:`a/3 = \tfrac{2}{3} E(|W|)`, for :math:`W \sim N(0, \sigma^2)` it is about
    :math:`0.6\sigma \approx 0.75\,E(|W|)`; 0.7 sits between. ``per_channel=False`` gives one threshold for the
    whole tensor, as the official Caffe code (``Blob::set_delta``: ``0.7 * asum / count`` per blob);
    ``per_channel=True`` gives one per output channel (dim 0), shaped to broadcast, as the authors' later PyTorch
    release does (with a factor of 0.75 there). ``factor`` changes the multiplier.
    """
    _require_weights(w)
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor >= 0:
        raise ValueError(f"factor must be a number >= 0, got {factor!r}")
    require_bool(per_channel, "per_channel")
    dims = _reduce_dims(w, per_channel)
    return float(factor) * w.abs().mean(dim=dims, keepdim=per_channel)


def ternarize(w: torch.Tensor, delta) -> torch.Tensor:
    r"""The threshold-based ternary function :math:`W^t_i = f_t(W_i \mid \Delta)`.

    .. math::
        W^t_i = \begin{cases} +1 & W_i > \Delta \\ 0 & |W_i| \le \Delta \\ -1 & W_i < -\Delta \end{cases}

    A weight exactly at :math:`\pm\Delta` becomes 0, as in the paper and the official CUDA kernel
    (``(a > delta) - (a < -delta)``). Larq's ``ste_tern``, :math:`\operatorname{sign}(\operatorname{sign}(x +
    \Delta) + \operatorname{sign}(x - \Delta))`, sends those two points to :math:`\pm 1` instead; everywhere else the
    two agree. ``delta`` is a number or a tensor that broadcasts against ``w`` (e.g. from
    :func:`ternary_threshold` with ``per_channel=True``). Returns values in {-1, 0, +1} with ``w``'s dtype.
    """
    _require_weights(w)
    delta = _require_delta(delta, w)
    return (w > delta).to(w.dtype) - (w < -delta).to(w.dtype)


def ternary_scale(w: torch.Tensor, delta, per_channel: bool = False) -> torch.Tensor:
    r"""The optimal scale for a given threshold: the mean magnitude of the weights above it.

    .. math::
        \alpha^*_\Delta = \frac{1}{|I_\Delta|} \sum_{i \in I_\Delta} |W_i|, \qquad
        I_\Delta = \{\, i : |W_i| > \Delta \,\}

    It is the minimiser of :math:`\lVert W - \alpha W^t \rVert^2` over :math:`\alpha` for fixed :math:`W^t`,
    i.e. :math:`\langle W^t, W \rangle / \langle W^t, W^t \rangle`, which is how the official code computes it
    (two dot products in ``Blob::ternarize_data``). With ``per_channel=True`` there is one :math:`\alpha` per
    output channel (dim 0). An empty :math:`I_\Delta` (threshold above every weight) gives :math:`\alpha = 0`.
    """
    _require_weights(w)
    delta = _require_delta(delta, w)
    require_bool(per_channel, "per_channel")
    dims = _reduce_dims(w, per_channel)
    above = (w.abs() > delta).to(w.dtype)
    total = (w.abs() * above).sum(dim=dims, keepdim=per_channel)
    count = above.sum(dim=dims, keepdim=per_channel)
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def ternary_weights(w: torch.Tensor, factor: float = TWN_FACTOR, per_channel: bool = False):
    r"""The whole TWN approximation of a weight tensor: ``(W_t, alpha, delta)`` with
    :math:`W \approx \alpha W^t`, :math:`\Delta = 0.7\,E(|W|)` (:func:`ternary_threshold`),
    :math:`W^t = f_t(W \mid \Delta)` (:func:`ternarize`) and :math:`\alpha = \alpha^*_\Delta`
    (:func:`ternary_scale`)."""
    delta = ternary_threshold(w, factor, per_channel)
    return ternarize(w, delta), ternary_scale(w, delta, per_channel), delta


def approximation_error(w: torch.Tensor, delta) -> torch.Tensor:
    r"""The squared error :math:`\lVert W - \alpha^*_\Delta W^t \rVert_2^2` of the TWN approximation at threshold
    :math:`\Delta` (one tensor-wide :math:`\Delta`).

    Substituting :math:`\alpha^*_\Delta` into the objective gives the closed form the paper maximises,

    .. math::
        \lVert W - \alpha^*_\Delta W^t \rVert_2^2 = \lVert W \rVert_2^2
        - \frac{1}{|I_\Delta|} \Big( \sum_{i \in I_\Delta} |W_i| \Big)^2 ,

    so the best threshold is :math:`\Delta^* = \arg\max_{\Delta > 0} \frac{1}{|I_\Delta|}
    (\sum_{i \in I_\Delta} |W_i|)^2`. This function computes the error directly from the approximation (the tests
    check it against the closed form). Returns a 0-d tensor in ``w``'s dtype.
    """
    _require_weights(w)
    delta = _require_delta(delta, w)
    if delta.numel() != 1:
        raise ValueError("delta must be a single threshold for approximation_error")
    approx = ternary_scale(w, delta) * ternarize(w, delta)
    return ((w - approx) ** 2).sum()


def optimal_threshold(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exact minimiser of :math:`\lVert W - \alpha^*_\Delta W^t \rVert^2` over :math:`\Delta`, by exhaustive
    search; returns ``(delta, error)``.

    :math:`I_\Delta` is always "the :math:`k` largest magnitudes" for some :math:`k`, so only :math:`n` candidate
    sets exist. Sorting :math:`|W|` in decreasing order, :math:`|W|_{(1)} \ge \dots \ge |W|_{(n)}`, and with the
    prefix sums :math:`S_k = \sum_{j \le k} |W|_{(j)}`, the search is

    .. math:: k^* = \arg\max_{1 \le k \le n} S_k^2 / k, \qquad \Delta^* = |W|_{(k^*+1)}
        \quad (\Delta^* = 0 \text{ if } k^* = n),

    :math:`O(n \log n)`. This is the search the paper avoids (it calls the exact solution time-consuming) by
    using :math:`0.7\,E(|W|)`; here it serves to measure how good the rule of thumb is. With tied magnitudes at the
    boundary, :func:`ternarize` at the returned :math:`\Delta` keeps only the values strictly above it; the
    returned error is that of :func:`approximation_error` at the returned :math:`\Delta`.
    """
    _require_weights(w)
    magnitudes = w.detach().abs().flatten().to(torch.float64).sort(descending=True).values
    n = magnitudes.numel()
    prefix = magnitudes.cumsum(0)
    k = torch.arange(1, n + 1, dtype=torch.float64, device=w.device)
    score = prefix**2 / k
    # Only k whose k-th and (k+1)-th magnitudes differ can be selected by a threshold (strict > keeps ties out).
    selectable = torch.ones(n, dtype=torch.bool, device=w.device)
    selectable[:-1] = magnitudes[:-1] > magnitudes[1:]
    score = torch.where(selectable, score, torch.full_like(score, -1.0))
    best = int(score.argmax())
    delta = magnitudes[best + 1] if best + 1 < n else magnitudes.new_zeros(())
    delta = delta.to(w.dtype)
    return delta, approximation_error(w.detach(), delta)


class TernaryWeightQuantizer(nn.Module):
    r"""TWN weight quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``: :math:`W \mapsto \alpha W^t`.

    .. math::
        q(W) = \alpha^*_\Delta\, f_t(W \mid \Delta), \quad \Delta = 0.7\,E(|W|), \qquad
        \frac{\partial c}{\partial W} = \frac{\partial c}{\partial q(W)}

    Forward: the ternary weights scaled by :math:`\alpha`, recomputed from the latent float weights at every
    step. Backward: the straight-through estimator of the paper's training scheme (the ternary weights are used in
    the forward and backward passes, the float weights in the parameter update): the gradient with
    respect to :math:`\alpha W^t` is applied to :math:`W` unchanged, :math:`\alpha` and :math:`\Delta` treated as
    constants (the official Caffe layer does the same). ``precision = 2`` (three levels need two bits).
    """

    precision = 2

    def __init__(self, factor: float = TWN_FACTOR, per_channel: bool = False):
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor >= 0:
            raise ValueError(f"factor must be a number >= 0, got {factor!r}")
        per_channel = require_bool(per_channel, "per_channel")
        super().__init__()
        self.factor = float(factor)
        self.per_channel = per_channel

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            w_t, alpha, _ = ternary_weights(w, self.factor, self.per_channel)
            quantized = alpha * w_t
        return binary.straight_through(w, quantized)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, per_channel={self.per_channel}"


class BinaryWeightQuantizer(nn.Module):
    r"""The binary baseline TWN is compared with: :math:`W \mapsto E(|W|)\,\operatorname{sign}(W)` (BWN-style).

    .. math::
        q(W) = \alpha \operatorname{sign}(W), \quad \alpha = \frac{1}{n} \sum_i |W_i|, \qquad
        \frac{\partial c}{\partial W} = \frac{\partial c}{\partial q(W)}

    The scale is the closed-form optimum for binary weights (Rastegari et al., *XNOR-Net*, 2016, BWN), here one
    per layer; it is the TWN solution with :math:`\Delta = 0` (every weight kept). ``sign(0) = +1``
    (:func:`qteach.binary.sign`); straight-through backward to the latent weights, like
    :class:`TernaryWeightQuantizer`, so the two differ only in the forward pass. ``precision = 1``.
    """

    precision = 1

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        _require_weights(w)
        with torch.no_grad():
            quantized = binary.mean_abs_scale(w, per_channel=False) * binary.sign(w)
        return binary.straight_through(w, quantized)
