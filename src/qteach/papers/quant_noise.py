r"""Quant-Noise: quantize a random subset of weight blocks at each training step.

Fan, Stock, Graham, Grave, Gribonval, Jégou and Joulin (arXiv 2004.07320, 2020; ICLR 2021) train a network so
that it survives a severe quantization at test time (int4, int8, or product quantization, PQ). Plain
quantization-aware training (QAT) quantizes *all* weights in every forward pass and back-propagates through the
quantizer with the straight-through estimator (STE); with a severe quantizer the STE's gradient is far from the
true one. Quant-Noise quantizes only a random subset of the weights, "a different random subset of weights
during each forward", so that the other weights see "unbiased gradients" (abstract).

Split the weight matrix :math:`W` into blocks :math:`b_{kl}` (here, as in the official code for linear layers,
``block_size`` consecutive input weights of one output row). Draw a mask :math:`J_{kl} \sim \text{Bernoulli}(p)`
and apply the quantizer's distortion :math:`\varphi` to the selected blocks only (our notation):

.. math:: \psi(b_{kl} \mid J) = \begin{cases} \varphi(b_{kl}) & J_{kl} = 1 \\ b_{kl} & J_{kl} = 0 \end{cases}

The forward pass uses :math:`\psi(W \mid J)`; the backward pass treats :math:`\psi` as the identity (the STE on
the distorted blocks, exact on the others). :math:`p = 1` is QAT, :math:`p = 0` plain training followed by
post-training quantization (PTQ). At test time every block is quantized.

**What could be read.** The abstract (arXiv, ICLR 2021 page), third-party summaries and the official code and
README (``pytorch/fairseq``, commit 148327d, ``fairseq/modules/quant_noise.py`` and
``fairseq/modules/quantization/scalar/modules/qlinear.py``), not the paper's full text: the formula above is
written from the abstract and the code, and no equation number is cited. The official code has two forms:

- **scalar** (``IntLinear.forward``, qlinear.py lines 88-99): each *weight* (blocks of one) is replaced by its
  int8 fake-quantized value with probability :math:`p`, the STE written as ``clamp(w) + noise.detach()``; in
  evaluation :math:`p = 1`. That is :func:`quant_noise` with ``block_size=1``.
- **for PQ** (``quant_noise``, quant_noise.py lines 58-104): a proxy :math:`\varphi` that *zeroes* the selected
  blocks and multiplies the whole matrix by :math:`1/(1-p)`, like DropConnect on blocks; the README says it
  "worked as well as assigning those blocks to their current centroid". That is :func:`drop_blocks`. Two
  details differ from the formula above: the dropped blocks get no gradient (a dropout, not an STE; fairseq
  issue #3195), and the hook writes the result into ``weight.data`` (fairseq issue #3783 asks whether that drops
  weights for good); :func:`drop_blocks` is functional and leaves the weights alone.

:func:`product_quantize` is PQ of a linear layer's weights (k-means over the blocks, the layout of fairseq's
``pq.py``); :class:`QuantNoise` is the weight quantizer that trains with :math:`\psi` and evaluates with
:math:`\varphi`.

Reference: A. Fan, P. Stock, B. Graham, E. Grave, R. Gribonval, H. Jégou, A. Joulin, *Training with
Quantization Noise for Extreme Model Compression*, arXiv:2004.07320, 2020 (ICLR 2021).
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_ndim,
    require_not_empty,
)

__all__ = ["PQFakeQuantizer", "QuantNoise", "block_mask", "comparison_layer", "drop_blocks", "kmeans",
           "pq_bits_per_weight", "product_quantize", "quant_noise"]


def _require_rate(p, name: str = "p", allow_one: bool = True) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(p).__name__}")
    if not (0.0 <= p <= 1.0) or (not allow_one and p == 1.0):
        raise ValueError(f"{name} must be in [0, {'1]' if allow_one else '1)'}, got {p}")
    return float(p)


def _require_matrix_blocks(weight, block_size) -> int:
    require_float_tensor(weight, "weight")
    require_ndim(weight, "weight", 2)
    block_size = require_int(block_size, "block_size", minimum=1)
    if weight.shape[1] % block_size:
        raise ValueError(f"block_size ({block_size}) must divide the input features ({weight.shape[1]})")
    return block_size


def block_mask(shape, p: float, block_size: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The selected blocks as a boolean (out, in) mask: :math:`J_{kl} \sim \text{Bernoulli}(p)` per block of
    ``block_size`` consecutive input weights of a row, repeated over the block (fairseq's
    ``mask.bernoulli_(p).repeat_interleave(block_size, -1)``)."""
    if not (isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 2):
        raise TypeError(f"shape must be (out_features, in_features), got {shape!r}")
    out_features = require_int(shape[0], "shape[0]", minimum=1)
    in_features = require_int(shape[1], "shape[1]", minimum=1)
    block_size = require_int(block_size, "block_size", minimum=1)
    if in_features % block_size:
        raise ValueError(f"block_size ({block_size}) must divide the input features ({in_features})")
    p = _require_rate(p)
    selected = torch.rand(out_features, in_features // block_size, generator=generator) < p
    return selected.repeat_interleave(block_size, dim=1)


def quant_noise(weight: torch.Tensor, phi, p: float, block_size: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Quant-Noise :math:`\psi(W \mid J)`: the blocks selected with probability ``p`` replaced by ``phi(W)``
    (the whole matrix quantized, then the selected blocks kept), the others unchanged; the gradient is the
    identity for every weight (the STE on the distorted blocks).

    .. math:: \psi(W \mid J) = W + \operatorname{sg}\!\big[J \odot (\varphi(W) - W)\big]

    (:math:`\operatorname{sg}` stops the gradient), fairseq's ``weight + noise.detach()``; we add
    :math:`W - \operatorname{sg}[W] = 0` to the distorted weights instead, so that their values are exact."""
    block_size = _require_matrix_blocks(weight, block_size)
    if not callable(phi):
        raise TypeError(f"phi must be callable (a quantizer), got {type(phi).__name__}")
    mask = block_mask(tuple(weight.shape), p, block_size, generator).to(weight.device)
    with torch.no_grad():
        distorted = torch.where(mask, phi(weight.detach()), weight.detach())
    return distorted + (weight - weight.detach())  # the value of distorted, the gradient of weight


def drop_blocks(weight: torch.Tensor, p: float, block_size: int = 1,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The official code's proxy noise for PQ: zero the selected blocks, scale by :math:`1/(1-p)`.

    .. math:: \psi_{\text{proxy}}(W \mid J) = \tfrac{1}{1-p}\, (1 - J) \odot W

    The gradient flows through it (zero for the dropped blocks), as in dropout. ``p`` must be below 1."""
    block_size = _require_matrix_blocks(weight, block_size)
    p = _require_rate(p, allow_one=False)
    mask = block_mask(tuple(weight.shape), p, block_size, generator).to(weight.device)
    return (1 / (1 - p)) * weight.masked_fill(mask, 0.0)  # as fairseq: s = 1 / (1 - p); s * ...


def _nearest(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each row's nearest centroid (squared distance; |x|^2 is the same for every centroid)."""
    return (centroids.pow(2).sum(dim=1) - 2 * points @ centroids.T).argmin(dim=1)


def kmeans(points: torch.Tensor, k: int, iterations: int = 10, seed: int = 0, init: torch.Tensor | None = None):
    r"""Lloyd's k-means: ``k`` centroids of the rows of ``points`` (n, d), started at ``init`` (k, d) if given,
    else at ``k`` distinct rows drawn with ``seed`` (as fairseq's ``em.py``, which samples its initial centroids
    from the blocks). An empty cluster keeps its centroid (fairseq splits a full one instead). Returns
    ``(centroids (k, d), assignment (n,))``; each iteration assigns every row to its nearest centroid, then moves
    each centroid to its rows' mean, so the squared error never increases."""
    require_float_tensor(points, "points")
    require_ndim(points, "points", 2)
    require_not_empty(points, "points")
    k = require_int(k, "k", minimum=1, maximum=points.shape[0])
    iterations = require_int(iterations, "iterations", minimum=0)
    seed = require_int(seed, "seed", minimum=0)
    if init is not None and (not isinstance(init, torch.Tensor) or init.shape != (k, points.shape[1])):
        raise ValueError(f"init must be a ({k}, {points.shape[1]}) tensor of centroids or None")
    points = points.detach()
    if init is None:
        start = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(seed))[:k]
        init = points[start.to(points.device)]
    centroids = init.detach().clone()
    for _ in range(iterations):
        assignment = _nearest(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=k).unsqueeze(1)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    return centroids, _nearest(points, centroids)


def product_quantize(weight: torch.Tensor, block_size: int = 4, n_centroids: int = 16, iterations: int = 10,
                     seed: int = 0) -> torch.Tensor:
    r"""Product quantization of a linear layer's (out, in) weights: each row cut into blocks of ``block_size``
    consecutive input weights (fairseq's ``pq.py`` layout for ``nn.Linear``), one codebook of ``n_centroids``
    blocks for the whole matrix learned by :func:`kmeans`, every block replaced by its nearest centroid. Returns
    the reconstructed weights (no gradient). Storage: :func:`pq_bits_per_weight`."""
    block_size = _require_matrix_blocks(weight, block_size)
    blocks = weight.detach().reshape(-1, block_size)
    centroids, assignment = kmeans(blocks, n_centroids, iterations, seed)
    return centroids[assignment].reshape(weight.shape)


def pq_bits_per_weight(out_features: int, in_features: int, block_size: int, n_centroids: int,
                       codebook_bits: int = 32) -> float:
    r"""Bits per weight of a PQ layer: :math:`\lceil\log_2 K\rceil` bits per block of :math:`d` weights, plus
    the codebook of :math:`K d` numbers of ``codebook_bits`` bits, over the :math:`mn` weights."""
    m = require_int(out_features, "out_features", minimum=1)
    n = require_int(in_features, "in_features", minimum=1)
    d = require_int(block_size, "block_size", minimum=1)
    k = require_int(n_centroids, "n_centroids", minimum=1)
    b = require_int(codebook_bits, "codebook_bits", minimum=1)
    if n % d:
        raise ValueError(f"block_size ({d}) must divide in_features ({n})")
    index_bits = (k - 1).bit_length()
    return (m * n // d * index_bits + k * d * b) / (m * n)


class PQFakeQuantizer(nn.Module):
    r"""Product quantization as a weight quantizer, with the straight-through estimator:
    :math:`\mathrm{PQ}(W) + W - \operatorname{sg}[W]` (the value of PQ, the gradient of W).

    In eval mode the codebook is learned afresh (:func:`product_quantize`, ``iterations`` k-means steps from
    ``seed``). In training mode, to keep QAT cheap, the codebook is kept between calls and refined by
    ``iterations`` k-means steps every ``refresh_every`` calls (fairseq's ``IntLinear`` likewise recomputes its
    scale only every ``update_step`` calls); in between, the blocks are only re-assigned to it."""

    def __init__(self, block_size: int = 4, n_centroids: int = 16, iterations: int = 10, seed: int = 0,
                 refresh_every: int = 1):
        super().__init__()
        self.block_size = require_int(block_size, "block_size", minimum=1)
        self.n_centroids = require_int(n_centroids, "n_centroids", minimum=1)
        self.iterations = require_int(iterations, "iterations", minimum=0)
        self.seed = require_int(seed, "seed", minimum=0)
        self.refresh_every = require_int(refresh_every, "refresh_every", minimum=1)
        self.precision = max(1, (self.n_centroids - 1).bit_length())  # index bits per block (codebook aside)
        self.codebook, self.calls = None, 0

    def forward(self, weight):
        if not self.training:
            pq = product_quantize(weight, self.block_size, self.n_centroids, self.iterations, self.seed)
            return pq + (weight - weight.detach())
        _require_matrix_blocks(weight, self.block_size)
        blocks = weight.detach().reshape(-1, self.block_size)
        if self.codebook is None or self.calls % self.refresh_every == 0:
            self.codebook, _ = kmeans(blocks, self.n_centroids, self.iterations, self.seed, init=self.codebook)
        self.calls += 1
        pq = self.codebook[_nearest(blocks, self.codebook)].reshape(weight.shape)
        return pq + (weight - weight.detach())  # the value of pq, the gradient of weight

    def extra_repr(self):
        return (f"block_size={self.block_size}, n_centroids={self.n_centroids}, iterations={self.iterations}, "
                f"refresh_every={self.refresh_every}")


class QuantNoise(nn.Module):
    r"""A weight quantizer that trains with Quant-Noise and evaluates fully quantized.

    In training mode it returns :func:`quant_noise` of the weight with the distortion ``phi`` at rate ``p``
    (``proxy=True``: fairseq's :func:`drop_blocks` instead, ``p < 1``); in eval mode ``phi(weight)``, every
    block quantized (fairseq's ``p = 1`` at evaluation). The masks come from PyTorch's global generator, so
    ``qteach.set_seed`` makes a run repeatable. ``precision`` is ``phi``'s."""

    def __init__(self, phi: nn.Module, p: float, block_size: int = 1, proxy: bool = False):
        super().__init__()
        if not callable(phi):
            raise TypeError(f"phi must be callable (a quantizer), got {type(phi).__name__}")
        self.phi = phi
        self.p = _require_rate(p, allow_one=not proxy)
        self.block_size = require_int(block_size, "block_size", minimum=1)
        self.proxy = bool(proxy)
        self.precision = qnn.precision_of(phi)

    def forward(self, weight):
        if not self.training:
            return self.phi(weight)
        if self.proxy:
            return drop_blocks(weight, self.p, self.block_size)
        return quant_noise(weight, self.phi, self.p, self.block_size)

    def extra_repr(self):
        return f"p={self.p}, block_size={self.block_size}, proxy={self.proxy}"


def comparison_layer(w_bits: int, a_bits: int, p: float = 0.5):
    r"""The results page's layer: ``w_bits``-bit affine per-tensor min/max weights (as fairseq's
    ``emulate_int*_tensor``) trained with Quant-Noise at rate ``p`` on single weights (fairseq's scalar
    ``IntLinear``), full-precision inputs (``a_bits`` must be 32), ReLU."""
    w_bits = require_int(w_bits, "w_bits", minimum=2, maximum=16)
    if a_bits != 32:
        raise ValueError(f"Quant-Noise quantizes weights only here: a_bits must be 32, got {a_bits!r}")
    return QuantNoise(qnn.MinMaxFakeQuantizer(w_bits), p=p), None, nn.ReLU()
