r"""Controlling the information capacity of a binary network: an entropy penalty on its binary filters.

Ignatov and Ignatov (Pattern Recognition Letters 138:276-281, 2020; arXiv 2008.01438) measure the information
capacity of a binary filter by the Shannon entropy of its weights and add a penalty to the training loss that keeps
this entropy at a predefined (high) level throughout training. Only the abstract and the introduction could be
read for this book; the method section, its equation numbers and the paper's exact penalty could not. The
formulas below are therefore **our reconstruction**, built on what the abstract says (a Shannon-entropy-based
penalty on the filters that keeps their capacity at a predefined level):

**Capacity of one binary filter** (exact, counted). A filter :math:`f` of :math:`n` binary weights with
:math:`k_f` weights equal to :math:`+1` (``sign(0) = +1``) has the empirical share :math:`p_f = k_f / n` and the
entropy, in bits per weight,

.. math::
    H_f = -p_f \log_2 p_f - (1 - p_f) \log_2 (1 - p_f), \qquad 0 \log_2 0 = 0 .

:func:`filter_entropy` computes it from the integer counts (float64). The network's capacity is the mean of
:math:`H_f` over the filters of its binary layers (:func:`capacity`); a filter of :math:`n` weights then carries
at most :math:`n H_f` bits (the log of the number of filters with the same :math:`k_f` is below that bound).

**Penalty** (ours): with :math:`H^*` the target entropy and :math:`F` filters,

.. math:: \mathcal{L} = \mathcal{L}_{task} + \lambda \, \frac{1}{F} \sum_f \big(H_f - H^*\big)^2 .

:func:`entropy_penalty` computes :math:`H_f` from :math:`p_f = \operatorname{mean}((\operatorname{sign}(w) + 1) / 2)`
with the clipped straight-through sign, so its value is the counted entropy and its gradient moves every latent
weight of the filter (with :math:`|w| \le 1`) towards the sign that is missing; :math:`p_f` is mapped affinely
into :math:`[10^{-6}, 1 - 10^{-6}]` so that the gradient stays finite (and not zero) when a filter has one sign
only; this changes the value by less than :math:`10^{-4}` bits.

References:

- D. Ignatov, A. Ignatov, *Controlling information capacity of binary neural network*, Pattern Recognition Letters
  138 (2020) 276-281, doi:10.1016/j.patrec.2020.07.033, arXiv:2008.01438. No official code is listed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, train
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_int,
    require_module,
    require_non_negative_number,
    require_optional_positive_number,
    require_positive_number,
    require_weights,
)

__all__ = [
    "binary_entropy",
    "binary_filters",
    "capacity",
    "comparison_layer",
    "entropy_penalty",
    "filter_entropy",
    "protocol_fit",
]

_EPS = 1e-6


def binary_entropy(k: torch.Tensor, n: int) -> torch.Tensor:
    r"""The entropy in bits of a share :math:`p = k / n` of ones, from the integer counts ``k`` (float64):
    :math:`H = -p \log_2 p - (1 - p) \log_2 (1 - p)`, with :math:`0 \log_2 0 = 0`."""
    if not isinstance(k, torch.Tensor) or k.dtype.is_floating_point or k.dtype == torch.bool:
        raise TypeError(f"k must be an integer tensor of counts, got {type(k).__name__}")
    n = require_int(n, "n", minimum=1)
    if bool(((k < 0) | (k > n)).any()):
        raise ValueError(f"k must hold counts between 0 and n = {n}")
    p = k.to(torch.float64) / n
    return -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)) / math.log(2)


def filter_entropy(w: torch.Tensor) -> torch.Tensor:
    r"""The exact entropy :math:`H_f` (bits per weight) of the sign bits of each filter ``w[f]``, counted.

    ``w`` holds one filter per row of its first dimension (a linear layer's ``(out, in)`` or a convolution's
    ``(out, in, kh, kw)``); ``sign(0) = +1``. Returns a float64 tensor of ``w.shape[0]`` entropies in [0, 1].
    """
    w = require_weights(w, "w")
    if w.dim() < 2:
        raise ValueError(f"w must hold one filter per row (at least 2 dimensions), got shape {tuple(w.shape)}")
    bits = binary.sign(w.detach()).flatten(1) > 0
    return binary_entropy(bits.sum(dim=1), bits.shape[1])


def binary_filters(model: nn.Module) -> list[torch.Tensor]:
    """The latent weights of the binary layers of ``model``: every quantized layer (``QuantLinear`` or
    ``QuantConv2d``) whose weight quantizer has 1-bit precision."""
    require_module(model)
    return [m.weight for m in model.modules()
            if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d)) and m.weight_quantizer is not None
            and qnn.precision_of(m.weight_quantizer) == 1]


def capacity(model: nn.Module) -> float:
    r"""The model's information capacity: the mean exact entropy :math:`H_f` (bits per weight) over every filter
    of its binary layers (:func:`binary_filters`). A model without binary layers raises ``ValueError``."""
    filters = binary_filters(model)
    if not filters:
        raise ValueError("model has no binary layers (QuantLinear/QuantConv2d with a 1-bit weight quantizer)")
    return float(torch.cat([filter_entropy(w) for w in filters]).mean())


def entropy_penalty(weights, target: float = 1.0) -> torch.Tensor:
    r"""The penalty :math:`\frac{1}{F}\sum_f (H_f - H^*)^2` over the filters of ``weights`` (a tensor or a list of
    latent weight tensors, one filter per row), differentiable through the clipped straight-through sign.

    .. math:: p_f = \frac{1}{n}\sum_i \frac{\operatorname{sign}(w_{f,i}) + 1}{2}, \qquad
              H_f = -p_f \log_2 p_f - (1 - p_f)\log_2(1 - p_f)

    ``target`` is :math:`H^*` in [0, 1] bits (1: as many +1 as -1 in every filter). Our reconstruction.
    """
    weights = [weights] if isinstance(weights, torch.Tensor) else list(weights)
    if not weights:
        raise ValueError("weights must hold at least one weight tensor")
    for i, w in enumerate(weights):
        if require_weights(w, f"weights[{i}]").dim() < 2:
            raise ValueError(f"weights[{i}] must hold one filter per row, got shape {tuple(w.shape)}")
    target = require_non_negative_number(target, "target")
    if target > 1:
        raise ValueError(f"target must be an entropy in [0, 1] bits, got {target}")
    p = torch.cat([(binary.ste_sign(w, clip=1.0).flatten(1).mean(dim=1) + 1) / 2 for w in weights])
    p = _EPS + (1 - 2 * _EPS) * p  # finite gradient for a filter of one sign
    h = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    return ((h - target) ** 2).mean()


def comparison_layer(w_bits: int = 1, a_bits: int = 1):
    """The results pages' layer: BNN's sign weights and activations (the penalty acts in :func:`protocol_fit`)."""
    require_binary_layer_bits(w_bits, a_bits)
    return qnn.SignQuantizer(), None, qnn.SignQuantizer()


def protocol_fit(model: nn.Module, data, seed: int, protocol, lam: float = 0.1, target: float = 1.0,
                 weight_clip: float | None = 1.0):
    r"""Train ``model`` with the protocol's Adam loop on cross-entropy :math:`+\ \lambda` :func:`entropy_penalty`
    of its binary filters, clipping the latent weights to ``weight_clip`` as BNN does. The ``fit`` of a
    :class:`qteach.comparison.Method`; returns :class:`qteach.train.History`."""
    require_module(model)
    lam = require_non_negative_number(lam, "lam")
    target = require_non_negative_number(target, "target")
    weight_clip = require_optional_positive_number(weight_clip, "weight_clip")
    filters = binary_filters(model)
    if not filters:
        raise ValueError("model has no binary layers (QuantLinear/QuantConv2d with a 1-bit weight quantizer)")
    require_positive_number(protocol.lr, "protocol.lr")
    cross_entropy = nn.CrossEntropyLoss()
    return train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                     seed=seed, progress=False, weight_clip=weight_clip,
                     loss_fn=lambda logits, y: cross_entropy(logits, y) + lam * entropy_penalty(filters, target))
