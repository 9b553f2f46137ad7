r"""Fine-grained quantization (FGQ): ternary weights with one scale per group of :math:`N` weights, no retraining.

Mellempudi et al. convert an already trained full-precision network to ternary weights. Like Ternary Weight
Networks (TWN), each set of weights :math:`W` is approximated by a scale times a ternary tensor,

.. math::
    \alpha^*, \hat{W}^* = \arg\min_{\alpha \ge 0,\; \hat{W}_i \in \{-1, 0, +1\}} \lVert W - \alpha \hat{W} \rVert_2^2,
    \qquad
    \hat{W}_i = \begin{cases} +1 & W_i > \Delta \\ 0 & |W_i| \le \Delta \\ -1 & W_i < -\Delta \end{cases}

whose solution for a given threshold is :math:`\alpha^*_\Delta = \frac{1}{|I_\Delta|}\sum_{i \in I_\Delta} |W_i|`
with :math:`I_\Delta = \{i : |W_i| > \Delta\}`, and whose best threshold maximises
:math:`\frac{1}{|I_\Delta|}(\sum_{i \in I_\Delta}|W_i|)^2`. The difference is the *granularity*: instead of one
:math:`(\alpha, \Delta)` per layer, FGQ splits the weight tensor into disjoint groups of :math:`N` weights and solves
the problem in every group separately. Because the squared error is a sum over groups,

.. math:: \lVert W - \hat{W} \rVert^2 = \sum_{g} \lVert W^{(g)} - \alpha_g \hat{W}^{(g)} \rVert^2 ,

every group's own optimum can only lower the total error compared with one shared :math:`(\alpha, \Delta)`.

**Why groups along the input channels.** A group is :math:`N` consecutive weights of *one* dot product (one output
channel, one kernel position, :math:`N` consecutive input channels). The dot product with a group then needs only
additions and subtractions of activations, and one multiplication by :math:`\alpha_g` at the end
(:func:`grouped_ternary_linear`): a fraction :math:`1 - 1/N` of the multiplications disappears
(:func:`multiplications_eliminated`; :math:`N = 4` removes 75 %, :math:`N = 64` about 99 %, the abstract's numbers).
Small :math:`N` approximates the float weights closely but keeps many multiplications and scales; large
:math:`N` is cheap but coarse, and the paper fine-tunes at :math:`N = 64` to recover accuracy.

**What this module follows, and what it could not check.** The abstract (arXiv:1705.01462) fixes: ternarizing a
*pre-trained* model, groups of :math:`N` weights, the multiplication counts above, 8- and 4-bit activations. The
group layout (contiguous along input channels), a threshold found by search per group, and the option of separate
thresholds and scales for positive and negative weights are described by secondary summaries of the paper; the
paper's own text, its equation numbers and its exact threshold rule could not be read for this book. This module
therefore offers two per-group rules, ``"optimal"`` (the exact minimiser of the squared error, found by an
:math:`O(N \log N)` search) and ``"twn"`` (TWN's :math:`\Delta = 0.7\,E(|W|)` applied per group), and an
``asymmetric`` option (:math:`\alpha_p, \Delta_p` and :math:`\alpha_n, \Delta_n` per group, each optimal).

References:

- N. Mellempudi, A. Kundu, D. Mudigere, D. Das, B. Kaul, P. Dubey, *Ternary Neural Networks with Fine-Grained
  Quantization*, arXiv:1705.01462, 2017.
- F. Li, B. Zhang, B. Liu, *Ternary Weight Networks*, arXiv:1605.04711, 2016 (the per-layer problem and the
  0.7 rule; :mod:`qteach.papers.ternary_weight_networks`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary
from qteach._validate import require_bool, require_float_tensor, require_int, require_no_nan

__all__ = [
    "RULES",
    "TWN_FACTOR",
    "group_weights",
    "ungroup_weights",
    "group_ternary",
    "fgq_quantize",
    "approximation_error",
    "multiplications_eliminated",
    "bits_per_weight",
    "grouped_ternary_linear",
    "FineGrainedTernaryQuantizer",
]

RULES = ("optimal", "twn")
"""Per-group threshold rules: the exact least-squares optimum (search), or TWN's :math:`0.7\\,E(|W|)`."""

TWN_FACTOR = 0.7
"""TWN's rule of thumb :math:`\\Delta \\approx 0.7\\,E(|W|)`, applied here inside each group for ``rule="twn"``."""


# --------------------------------------------------------------------------------------------- argument checks

def _require_weights(w, name: str = "w") -> torch.Tensor:
    require_float_tensor(w, name)
    if w.dim() < 2 or w.numel() == 0:
        raise ValueError(f"{name} must be a non-empty weight tensor of shape (out, in, ...), got shape "
                         f"{tuple(w.shape)}")
    require_no_nan(w, name)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(f"{name} must be finite")
    return w


def _require_group_size(group_size) -> int:
    return require_int(group_size, "group_size", minimum=1)


def _require_rule(rule, asymmetric) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    require_bool(asymmetric, "asymmetric")
    if asymmetric and rule != "optimal":
        raise ValueError("asymmetric=True needs rule='optimal' (the 0.7 rule has no defined asymmetric form)")
    return rule


# ---------------------------------------------------------------------------------------------------- grouping

def _input_last(w: torch.Tensor) -> torch.Tensor:
    """(out, in, k1, k2, ...) -> (out, k1, k2, ..., in): the input channels become the last, contiguous axis."""
    return w.permute(0, *range(2, w.dim()), 1)


def group_weights(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Split a weight tensor into groups of ``group_size`` consecutive input channels.

    ``w`` has shape (out, in) for a linear layer or (out, in, kh, kw) for a convolution. Each *row* is one output
    channel at one kernel position; a row's ``in`` weights are cut into :math:`\lceil in / N \rceil` groups of
    :math:`N` consecutive input channels, so a group never mixes output channels or kernel positions (its dot
    product with the input is one partial sum). When :math:`N` does not divide ``in``, the last group of every row
    is shorter; it is padded with zeros and the returned mask marks the real entries.

    Returns ``(groups, valid)``, both of shape (number of groups, :math:`N`).
    """
    _require_weights(w)
    n = _require_group_size(group_size)
    rows = _input_last(w).reshape(-1, w.shape[1])
    pad = (-rows.shape[1]) % n
    valid = torch.ones_like(rows, dtype=torch.bool)
    if pad:
        rows = F.pad(rows, (0, pad))
        valid = F.pad(valid, (0, pad), value=False)
    return rows.reshape(-1, n), valid.reshape(-1, n)


def ungroup_weights(groups: torch.Tensor, shape, group_size: int) -> torch.Tensor:
    """The inverse of :func:`group_weights`: a (groups, N) tensor back to the weight ``shape`` (padding dropped)."""
    n = _require_group_size(group_size)
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"shape must have at least two dimensions (out, in, ...), got {shape}")
    in_channels = shape[1]
    per_row = math.ceil(in_channels / n)
    rows = groups.reshape(-1, per_row * n)[:, :in_channels]
    moved = rows.reshape(shape[0], *shape[2:], in_channels)
    return moved.permute(0, moved.dim() - 1, *range(1, moved.dim() - 1))


# ------------------------------------------------------------------------------------------- per-group solvers

def _optimal(mags: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact per-group minimiser of :math:`\lVert W - \alpha \hat{W} \rVert^2` (float64 magnitudes in).

    Every threshold keeps "the :math:`k` largest magnitudes" of its group, so with the magnitudes sorted in
    decreasing order and prefix sums :math:`S_k`, the best set is :math:`k^* = \arg\max_k S_k^2 / k`; only
    :math:`k` whose :math:`k`-th magnitude is strictly larger than the next one can be selected by a threshold
    (ties stay together). Returns ``(delta, alpha)`` per group, shape (G,).
    """
    sorted_mags = torch.where(valid, mags, torch.full_like(mags, -1.0)).sort(dim=1, descending=True).values
    n = mags.shape[1]
    following = torch.cat([sorted_mags[:, 1:], torch.full_like(sorted_mags[:, :1], -1.0)], dim=1)
    prefix = sorted_mags.clamp(min=0).cumsum(dim=1)
    k = torch.arange(1, n + 1, dtype=mags.dtype, device=mags.device)
    selectable = (sorted_mags > following) & (k <= valid.sum(dim=1, keepdim=True))
    score = torch.where(selectable, prefix**2 / k, torch.full_like(prefix, -1.0))
    best = score.argmax(dim=1, keepdim=True)  # the first maximum: the fewest survivors among equal errors
    delta = following.gather(1, best).clamp(min=0).squeeze(1)
    alpha = (prefix.gather(1, best) / (best + 1).to(mags.dtype)).squeeze(1)
    return delta, alpha


def _twn(mags: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""TWN's rule inside each group: :math:`\Delta_g = 0.7\,E_g(|W|)`, :math:`\alpha_g` the mean of the
    magnitudes above it (0 if none)."""
    count = valid.sum(dim=1).to(mags.dtype)
    delta = TWN_FACTOR * (mags * valid).sum(dim=1) / count
    above = (mags > delta[:, None]) & valid
    kept = above.sum(dim=1).to(mags.dtype)
    alpha = torch.where(kept > 0, (mags * above).sum(dim=1) / kept.clamp(min=1), torch.zeros_like(kept))
    return delta, alpha


def group_ternary(w: torch.Tensor, group_size: int = 4, rule: str = "optimal", asymmetric: bool = False):
    r"""FGQ's ternary approximation of ``w``: ``(w_t, alpha, delta)``, all with the shape of ``w``.

    ``w_t`` holds :math:`\hat{W}_i \in \{-1, 0, +1\}`, ``alpha`` and ``delta`` hold, at every position, the scale
    and the threshold of the group the weight belongs to, so that the quantized weights are ``alpha * w_t``.

    .. math::
        \hat{W}^{(g)}_i = \begin{cases} +1 & W_i > \Delta_g \\ 0 & |W_i| \le \Delta_g \\ -1 & W_i < -\Delta_g
        \end{cases}, \qquad \alpha_g = \frac{1}{|I_{\Delta_g}|}\sum_{i \in I_{\Delta_g}} |W_i|

    ``rule="optimal"``: :math:`\Delta_g` minimises the group's squared error (exact search); ``rule="twn"``:
    :math:`\Delta_g = 0.7\,E_g(|W|)`. With ``asymmetric=True`` (optimal rule only) the positive and the negative
    weights of a group get their own threshold and scale,
    :math:`\hat{W}_i = \alpha_p 1[W_i > \Delta_p] - \alpha_n 1[W_i < -\Delta_n]`; the squared error separates into
    a positive and a negative part, each minimised exactly (``alpha``/``delta`` then hold :math:`\alpha_p,\Delta_p`
    at non-negative weights and :math:`\alpha_n,\Delta_n` at negative ones).
    """
    _require_weights(w)
    n = _require_group_size(group_size)
    rule = _require_rule(rule, asymmetric)
    groups, valid = group_weights(w.detach().to(torch.float64), n)
    solve = _optimal if rule == "optimal" else _twn
    if asymmetric:
        delta_p, alpha_p = solve(groups.clamp(min=0), valid)
        delta_n, alpha_n = solve((-groups).clamp(min=0), valid)
        positive = groups >= 0
        delta_g = torch.where(positive, delta_p[:, None], delta_n[:, None])
        alpha_g = torch.where(positive, alpha_p[:, None], alpha_n[:, None])
        t = (groups > delta_p[:, None]).to(groups.dtype) - (groups < -delta_n[:, None]).to(groups.dtype)
    else:
        delta, alpha = solve(groups.abs(), valid)
        delta_g = delta[:, None].expand_as(groups)
        alpha_g = alpha[:, None].expand_as(groups)
        t = (groups > delta_g).to(groups.dtype) - (groups < -delta_g).to(groups.dtype)
    back = [ungroup_weights(v, w.shape, n).to(w.dtype) for v in (t, alpha_g, delta_g)]
    return back[0], back[1], back[2]


def fgq_quantize(w: torch.Tensor, group_size: int = 4, rule: str = "optimal", asymmetric: bool = False):
    r"""The ternarized weights :math:`\alpha_g \hat{W}^{(g)}`, in the shape and dtype of ``w``
    (:func:`group_ternary`)."""
    w_t, alpha, _ = group_ternary(w, group_size, rule, asymmetric)
    return alpha * w_t


def approximation_error(w: torch.Tensor, group_size: int = 4, rule: str = "optimal",
                        asymmetric: bool = False) -> torch.Tensor:
    r"""The squared error :math:`\sum_g \lVert W^{(g)} - \alpha_g \hat{W}^{(g)} \rVert^2` of FGQ (a 0-d tensor)."""
    return ((w.detach() - fgq_quantize(w, group_size, rule, asymmetric)) ** 2).sum()


# ------------------------------------------------------------------------------------------------- cost model

def multiplications_eliminated(group_size: int) -> float:
    r"""The fraction of multiplications FGQ removes: :math:`1 - 1/N`.

    A dot product over :math:`K` inputs needs :math:`K` multiplications in float, and :math:`K/N` with ternary
    groups of size :math:`N` (one multiplication by :math:`\alpha_g` per group; the rest are additions and
    subtractions). :math:`N = 4` gives 75 %, :math:`N = 64` gives 98.4 % ("≈ 99 %" in the abstract).
    """
    return 1.0 - 1.0 / _require_group_size(group_size)


def bits_per_weight(group_size: int, scale_bits: int = 32, asymmetric: bool = False) -> float:
    r"""Storage per weight: 2 bits for the ternary value plus the group's scale(s) shared by :math:`N` weights,
    :math:`2 + s/N` (or :math:`2 + 2s/N` with separate positive and negative scales). Thresholds are not stored:
    inference needs only :math:`\hat{W}` and :math:`\alpha`."""
    n = _require_group_size(group_size)
    scale_bits = require_int(scale_bits, "scale_bits", minimum=1)
    return 2.0 + (2 if require_bool(asymmetric, "asymmetric") else 1) * scale_bits / n


def grouped_ternary_linear(x: torch.Tensor, w_t: torch.Tensor, alpha: torch.Tensor, group_size: int):
    r"""A linear layer :math:`y = x\,(\alpha \hat{W})^\top` computed the FGQ way; returns ``(y, multiplications)``.

    For every output and every group :math:`g` of :math:`N` consecutive inputs, the partial sum
    :math:`p_g = \sum_{i \in g} \hat{W}_i x_i` needs only additions and subtractions (:math:`\hat{W}_i \in
    \{-1, 0, +1\}`); the output is :math:`y = \sum_g \alpha_g\, p_g`, one multiplication per group.
    ``x`` is (batch, in), ``w_t`` and ``alpha`` are (out, in) as returned by :func:`group_ternary` (``alpha``
    constant inside each group). ``multiplications`` counts the :math:`\alpha_g p_g` products for the whole batch.
    """
    require_float_tensor(x, "x")
    _require_weights(w_t, "w_t")
    if w_t.dim() != 2 or x.dim() != 2 or x.shape[1] != w_t.shape[1]:
        raise ValueError(f"x must be (batch, in) and w_t (out, in) with the same in, got {tuple(x.shape)} and "
                         f"{tuple(w_t.shape)}")
    if alpha.shape != w_t.shape:
        raise ValueError(f"alpha must have the shape of w_t {tuple(w_t.shape)}, got {tuple(alpha.shape)}")
    if not bool(((w_t == -1) | (w_t == 0) | (w_t == 1)).all()):
        raise ValueError("w_t must hold only -1, 0 and +1")
    n = _require_group_size(group_size)
    t_groups, _ = group_weights(w_t, n)                    # (out * G, N)
    a_groups, _ = group_weights(alpha, n)
    out, per_row = w_t.shape[0], t_groups.shape[0] // w_t.shape[0]
    t_groups = t_groups.reshape(out, per_row, n)
    scale = a_groups.reshape(out, per_row, n)[..., 0]      # one alpha per group
    x_groups = F.pad(x, (0, per_row * n - x.shape[1])).reshape(x.shape[0], per_row, n)
    partial = torch.einsum("bgn,ogn->bog", x_groups, t_groups.to(x.dtype))  # additions and subtractions only
    y = (partial * scale.to(x.dtype)).sum(dim=-1)
    return y, x.shape[0] * out * per_row


# ------------------------------------------------------------------------------------------------- quantizer

class FineGrainedTernaryQuantizer(nn.Module):
    r"""FGQ weight quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``: :math:`W \mapsto \alpha_g
    \hat{W}^{(g)}` with one scale per group of ``group_size`` input channels (:func:`group_ternary`).

    .. math::
        q(W) = \alpha_g\, \hat{W}^{(g)} \ \text{on every group } g, \qquad
        \frac{\partial c}{\partial W} = \frac{\partial c}{\partial q(W)}

    The paper applies it once to a trained network (no retraining); when it fine-tunes (at :math:`N = 64`) the
    ternary weights are recomputed from float weights that receive the gradient. This module does the same with a
    straight-through backward (scales and thresholds treated as constants). ``precision = 2``; the per-group
    scales add :func:`bits_per_weight` - 2 bits per weight, which :func:`qteach.nn.summary` does not count.
    """

    precision = 2

    def __init__(self, group_size: int = 4, rule: str = "optimal", asymmetric: bool = False):
        super().__init__()
        self.group_size = _require_group_size(group_size)
        self.rule = _require_rule(rule, asymmetric)
        self.asymmetric = asymmetric

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            quantized = fgq_quantize(w, self.group_size, self.rule, self.asymmetric)
        return binary.straight_through(w, quantized)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, rule={self.rule!r}, asymmetric={self.asymmetric}"
