r"""Balanced binarization (+1 and -1 in equal numbers in every filter) combined with circulant filters.

The paper listed as "Balanced Circulant Binary Convolutional Networks" (2019) was **not found**: no text, no
authors, no code. Its parent work is known and has its own chapter: circulant binary convolutional networks
(Liu et al., CVPR 2019; :mod:`qteach.papers.circulant_bcn`). This module implements only what the title
suggests, and is **our construction**, not the paper's:

- (B1, ours) balanced binarization of a filter :math:`w` of :math:`n` weights (:math:`n` even): the
  :math:`n/2` largest weights become +1, the others -1, i.e. a threshold at the filter's median instead of 0.
  :func:`balanced_sign`.
- (B2, ours) its scale: for a fixed binary :math:`b` the least-squares scale is
  :math:`\alpha = \langle w, b \rangle / n` (for :math:`b = \operatorname{sign}(w)` this is XNOR-Net's
  :math:`\lVert w \rVert_1 / n`). :class:`BalancedBinaryWeight`, with the straight-through gradient.

Two exact properties follow, and the tests check them: a balanced binary filter sums to 0 (it ignores a constant
input, like a zero-mean filter), and the circulant filters of a balanced filter are balanced too (a CiF only
permutes the weights).
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_weights

__all__ = ["BalancedBinaryWeight", "balanced_scale", "balanced_sign"]


def balanced_sign(w: torch.Tensor) -> torch.Tensor:
    r"""(B1, ours) Balanced binarization of each filter ``w[o]`` (dim 0 indexes the filters):

    .. math:: b_i = +1 \ \text{if } w_i \text{ is among the } n/2 \text{ largest of its filter, else } -1,
        \qquad \textstyle\sum_i b_i = 0 .

    Ties are broken by position (the earlier index counts as larger), so the counts are always exactly equal.
    Each filter must hold an even number ``n`` of weights.
    """
    require_weights(w, "w")
    if w.dim() < 2 or w[0].numel() % 2:
        raise ValueError(f"w must be (filters, ...) with an even number of weights per filter, got {tuple(w.shape)}")
    flat = w.detach().flatten(1)
    order = torch.sort(-flat, dim=1, stable=True).indices  # largest first, ties by position
    b = torch.full_like(flat, -1.0)
    b.scatter_(1, order[:, : flat.shape[1] // 2], 1.0)
    return b.view_as(w)


def balanced_scale(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""(B2) The least-squares scale of each filter for a fixed binary ``b``:
    :math:`\alpha = \arg\min_a \lVert w - a b \rVert^2 = \langle w, b \rangle / n` (shape ``(filters, 1, ...)``)."""
    require_weights(w, "w")
    require_weights(b, "b")
    if b.shape != w.shape:
        raise ValueError(f"b must have the shape of w {tuple(w.shape)}, got {tuple(b.shape)}")
    return (w * b).flatten(1).mean(dim=1).view(-1, *([1] * (w.dim() - 1)))


class BalancedBinaryWeight(nn.Module):
    r"""Weight quantizer :math:`\widetilde{W} = \alpha\, b` with :math:`b` = :func:`balanced_sign` (B1) and
    :math:`\alpha` = :func:`balanced_scale` (B2, gradient stopped), and the straight-through gradient
    (:func:`qteach.binary.straight_through`) to the latent weights. ``precision = 1``."""

    precision = 1

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_weights(w, "w")
        b = balanced_sign(w)
        return binary.straight_through(w, balanced_scale(w.detach(), b) * b)
