r"""Main/subsidiary framework: filter-level pruning of binary networks with a learned binary mask.

Xu, Dong, Li and Su (CVPR 2019; arXiv 1812.04210) define *filter-level pruning* for binary neural networks. A
*main network* (the BNN) learns the features; a *subsidiary component* is a filter selector on it. To avoid
gradient mismatch, the subsidiary component is trained layer-wise and bottom-up: train the selector of layer
:math:`i`, retrain the main network, move to layer :math:`i + 1` (the paper's figure 2, as described by its
abstract and a review of it). The abstract contrasts this learning-based selection with greedy rule-based
pruning. Only the abstract and that description could be read for this book; the mask function, its gradient,
the sparsity penalty and the final top-:math:`k` selection below are **our reconstruction**, not the paper's
equations.

**Why zero-based rules do not carry over.** A binary filter is a vector of :math:`\pm 1`: every filter of a layer
has the same L1 norm (its fan-in), and its activation :math:`\operatorname{sign}(\cdot)` is never 0. A rule can
only look at the *latent* real-valued weights (:func:`l1_filter_scores`), which the forward pass never uses
except through their signs.

**The subsidiary component (ours).** One real score :math:`s_j` per filter :math:`j` of a layer, a binary mask

.. math:: m_j = H(s_j) = \tfrac{1}{2}\big(\operatorname{sign}(s_j) + 1\big) \in \{0, 1\}, \qquad
    \frac{\partial m_j}{\partial s_j} := \tfrac{1}{2}\, 1_{|s_j| \le 1}

(the straight-through estimator of :func:`qteach.binary.ste_sign`), applied to the layer's binary activations,
:math:`a_j \mapsto m_j a_j`: a pruned filter contributes nothing to the next layer's XNOR-popcount. The scores are
trained with the main network frozen on

.. math:: \mathcal{L} = \mathrm{CE} + \lambda\, \frac{1}{n} \sum_j m_j ,

then the :math:`k` filters with the largest scores are kept (:func:`top_k_mask`), so that every method prunes
exactly the same number of filters.

References:

- Y. Xu, X. Dong, Y. Li, H. Su, *A Main/Subsidiary Network Framework for Simplifying Binary Neural Networks*,
  CVPR 2019, pp. 7154-7162, arXiv:1812.04210.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from qteach import binary, train
from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_non_negative_number,
    require_positive_number,
    require_str,
    require_weights,
)
from qteach.data import Split

__all__ = [
    "METHODS",
    "MaskedBinaryMLP",
    "SubsidiaryMask",
    "heaviside_ste",
    "keep_count",
    "l1_filter_scores",
    "prune_layerwise",
    "select_filters",
    "top_k_mask",
]

METHODS = ("learned", "l1", "random")


def heaviside_ste(s: torch.Tensor) -> torch.Tensor:
    r"""The binary mask :math:`m = \frac{1}{2}(\operatorname{sign}(s) + 1)`, with the straight-through gradient
    :math:`\frac{1}{2} 1_{|s| \le 1}` (our reconstruction). :math:`s = 0` keeps the filter."""
    require_float_tensor(s, "s")
    return (binary.ste_sign(s, clip=1.0) + 1) / 2


def l1_filter_scores(weight: torch.Tensor) -> torch.Tensor:
    r"""The rule-based score of each filter (row) :math:`j`: :math:`\lVert W_{j,:} \rVert_1` of the *latent*
    weights. (The binary weights :math:`\operatorname{sign}(W_{j,:})` all have the same L1 norm, the fan-in.)"""
    require_weights(weight, "weight")
    if weight.dim() < 2:
        raise ValueError(f"weight must have one row per filter (at least 2-d), got shape {tuple(weight.shape)}")
    return weight.detach().abs().flatten(1).sum(dim=1)


def top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A 0/1 float mask keeping the ``k`` largest scores (ties go to the lower index)."""
    require_weights(scores, "scores")
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-d (one score per filter), got shape {tuple(scores.shape)}")
    k = require_int(k, "k", minimum=1, maximum=scores.numel())
    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    mask = torch.zeros_like(scores, dtype=torch.float32)
    mask[order[:k]] = 1.0
    return mask


def keep_count(filters: int, pruned_fraction: float) -> int:
    """How many of ``filters`` stay when ``pruned_fraction`` of them are pruned (rounded, at least 1)."""
    filters = require_int(filters, "filters", minimum=1)
    pruned_fraction = require_non_negative_number(pruned_fraction, "pruned_fraction")
    if pruned_fraction >= 1:
        raise ValueError(f"pruned_fraction must be in [0, 1), got {pruned_fraction}")
    return max(1, round(filters * (1 - pruned_fraction)))


class SubsidiaryMask(nn.Module):
    r"""The subsidiary component of one layer: scores :math:`s_j` (initialised to ``init``, every filter kept) and
    the mask :math:`m_j` applied to the layer's outputs. While ``fixed`` is ``None`` the mask is
    :func:`heaviside_ste` of the scores (trainable); after :meth:`fix` it is a constant 0/1 mask."""

    def __init__(self, filters: int, init: float = 0.5):
        super().__init__()
        filters = require_int(filters, "filters", minimum=1)
        self.scores = nn.Parameter(torch.full((filters,), require_positive_number(init, "init")))
        self.register_buffer("fixed", None)

    def mask(self) -> torch.Tensor:
        return heaviside_ste(self.scores) if self.fixed is None else self.fixed

    def fix(self, mask: torch.Tensor) -> None:
        """Freeze the mask to ``mask`` (0/1 values, one per filter)."""
        require_float_tensor(mask, "mask")
        if mask.shape != self.scores.shape or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask must hold {self.scores.numel()} values, each 0 or 1")
        self.fixed = mask.detach().clone()
        self.scores.requires_grad_(False)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a * self.mask()


class MaskedBinaryMLP(nn.Module):
    r"""The main network with its subsidiary components: ``in -> hidden[0] -> ... -> classes``. Each hidden
    layer is linear, batch norm, sign activation (clipped STE), then its :class:`SubsidiaryMask`. The first
    layer has real weights (it reads pixels), the other hidden layers binary weights and inputs, the classifier
    real weights on the binary activations. The prunable filters are the hidden units."""

    def __init__(self, in_features: int = 64, hidden: tuple = (96, 96, 96), num_classes: int = 10, seed: int = 0):
        super().__init__()
        require_int(in_features, "in_features", minimum=1)
        if not isinstance(hidden, tuple) or not hidden:
            raise TypeError(f"hidden must be a non-empty tuple of widths, got {hidden!r}")
        widths = [require_int(h, "hidden", minimum=1) for h in hidden]
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        self.linears = nn.ModuleList(
            [nn.Linear(in_features, widths[0])] + [qnn.QuantLinear(a, b, weight_quantizer=qnn.SignQuantizer(clip=None))
                                                    for a, b in itertools.pairwise(widths)])
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in widths)
        self.masks = nn.ModuleList(SubsidiaryMask(w) for w in widths)
        self.classifier = nn.Linear(widths[-1], require_int(num_classes, "num_classes", minimum=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear, norm, mask in zip(self.linears, self.norms, self.masks):
            x = mask(binary.ste_sign(norm(linear(x))))
        return self.classifier(x)

    def kept_filters(self) -> list:
        """The number of kept filters of each hidden layer."""
        return [int((m.mask() > 0).sum()) for m in self.masks]


def _main_parameters(model: MaskedBinaryMLP) -> list:
    return [p for name, p in model.named_parameters() if not name.startswith("masks.")]


def select_filters(model: MaskedBinaryMLP, layer: int, k: int, method: str, data: Split | None = None,
                   lam: float = 1.0, epochs: int = 2, lr: float = 0.05, batch_size: int = 128,
                   seed: int = 0) -> torch.Tensor:
    r"""Choose the ``k`` filters of hidden layer ``layer`` to keep and fix its mask; returns the mask.

    ``"learned"``: train the subsidiary scores of this layer alone (main network frozen) on
    :math:`\mathrm{CE} + \lambda \cdot \operatorname{mean}(m)` for ``epochs``, then keep the top ``k`` scores.
    ``"l1"``: the top ``k`` of :func:`l1_filter_scores` of the layer's latent weights. ``"random"``: ``k`` at
    random (seeded)."""
    if not isinstance(model, MaskedBinaryMLP):
        raise TypeError(f"model must be a MaskedBinaryMLP, got {type(model).__name__}")
    layer = require_int(layer, "layer", minimum=0, maximum=len(model.masks) - 1)
    if require_str(method, "method") not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "learned" and not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split for the learned method, got {type(data).__name__}")
    lam = require_non_negative_number(lam, "lam")
    mask = model.masks[layer]
    if method == "learned":
        frozen = _main_parameters(model)
        for p in frozen:
            p.requires_grad_(False)
        ce = nn.CrossEntropyLoss()
        train.fit(model, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=False,
                  optimizer=lambda _: torch.optim.Adam([mask.scores], lr=lr),
                  loss_fn=lambda logits, y: ce(logits, y) + lam * mask.mask().mean())
        for p in frozen:
            p.requires_grad_(True)
        scores = mask.scores.detach()
    elif method == "l1":
        scores = l1_filter_scores(model.linears[layer].weight)
    else:
        scores = torch.rand(mask.scores.numel(), generator=torch.Generator().manual_seed(seed))
    keep = top_k_mask(scores, k)
    mask.fix(keep)
    return keep


def prune_layerwise(model: MaskedBinaryMLP, data: Split, pruned_fraction: float, method: str,
                    retrain_epochs: int = 1, lr: float = 0.005, batch_size: int = 128, seed: int = 0,
                    **select_options) -> dict:
    """Bottom-up: for each hidden layer in turn, :func:`select_filters`, then retrain the main network (masks
    fixed) for ``retrain_epochs``. Returns the test accuracy after each layer's selection (``"selected"``) and
    after its retraining (``"retrained"``), one value per hidden layer each."""
    if not isinstance(model, MaskedBinaryMLP):
        raise TypeError(f"model must be a MaskedBinaryMLP, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    retrain_epochs = require_int(retrain_epochs, "retrain_epochs", minimum=0)
    accuracy = {"selected": [], "retrained": []}
    for layer, mask in enumerate(model.masks):
        k = keep_count(mask.scores.numel(), pruned_fraction)
        select_filters(model, layer, k, method, data, batch_size=batch_size, seed=seed + layer, **select_options)
        accuracy["selected"].append(train.evaluate(model, data.x_test, data.y_test))
        if retrain_epochs:
            train.fit(model, data, epochs=retrain_epochs, batch_size=batch_size, seed=seed + layer, progress=False,
                      optimizer=lambda _: torch.optim.Adam(_main_parameters(model), lr=lr))
        accuracy["retrained"].append(train.evaluate(model, data.x_test, data.y_test))
    return accuracy
