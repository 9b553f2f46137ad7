r"""How batch normalization helps binary training: gradient norms at initialisation, with and without BN.

Sari, Belbahri and Partovi Nia (arXiv 1909.09139) observe that binary neural networks (BNNs) fail to train
without batch normalization (BN), and their abstract states the finding: "the main role of BatchNorm is to avoid
exploding gradients in the case of BNNs", so that "the common initialization methods developed for
full-precision networks are irrelevant to BNNs". Only the abstract could be read for this book; the analysis
below (the per-layer gain of the backward pass, :func:`backward_gain_squared`) is **our own derivation**, not a
transcription of the paper's equations.

The network (:func:`deep_binary_mlp`): ``depth`` layers, each a :class:`qteach.nn.QuantLinear` with sign weights
(:class:`qteach.nn.SignQuantizer`), sign inputs from the second layer on (straight-through estimator, clipped at
``ste_clip`` or the identity for ``None``), optionally followed by ``nn.BatchNorm1d``. The latent weights are one
Gaussian draw scaled by the initialisation's standard deviation (:func:`init_std`): Glorot, He, or N(0, 1).

Our derivation. A hidden layer computes :math:`h = W_b x` with :math:`x \in \{\pm 1\}^n` and
:math:`W_b = \operatorname{sign}(W) \in \{\pm 1\}^{m \times n}`; each :math:`h_i` is a sum of :math:`n`
independent :math:`\pm 1` terms at initialisation, so :math:`\operatorname{Var} h_i = n` whatever the latent
scale. Backward, with :math:`v = \partial L / \partial h` and the STE mask :math:`1_{|h| \le c}` of the next
sign, :math:`\partial L / \partial x = W_b^\top (v \odot 1_{|h| \le c})`, and under the usual independence of
:math:`W_b` from :math:`v`,

.. math::
    \mathbb{E}\,\lVert \partial L / \partial x \rVert^2 = n \, p \, \lVert v \rVert^2, \qquad
    p = P(|S_n| \le c), \quad S_n = \textstyle\sum_{j=1}^{n} \epsilon_j, \ \epsilon_j = \pm 1 .

So the squared gradient norm is multiplied by :math:`g^2 = n p` per layer: about :math:`\sqrt{2n/\pi}` for the
clipped STE (:math:`c = 1`) and :math:`n` for the identity STE. BN divides :math:`h` by its standard deviation
:math:`\sqrt{n}`, so :math:`g^2 = P(|S_n| \le c \sqrt{n})`, at most 1: no explosion.

References:

- E. Sari, M. Belbahri, V. Partovi Nia, *How Does Batch Normalization Help Binary Training?*, arXiv 1909.09139,
  2019. https://arxiv.org/abs/1909.09139
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_str,
)
from qteach.nn import SignQuantizer

__all__ = ["INITS", "backward_gain_squared", "deep_binary_mlp", "init_std", "layer_gradient_norms",
           "mask_probability"]

INITS = ("glorot", "he", "normal")


def init_std(init: str, fan_in: int, fan_out: int) -> float:
    r"""The standard deviation of a Gaussian initialisation.

    .. math::
        \sigma_\text{Glorot} = \sqrt{2 / (n_\text{in} + n_\text{out})}, \qquad
        \sigma_\text{He} = \sqrt{2 / n_\text{in}}, \qquad \sigma_{N(0,1)} = 1 .
    """
    if require_str(init, "init") not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    fan_out = require_int(fan_out, "fan_out", minimum=1)
    return {"glorot": math.sqrt(2 / (fan_in + fan_out)), "he": math.sqrt(2 / fan_in), "normal": 1.0}[init]


def deep_binary_mlp(in_features: int = 64, width: int = 64, depth: int = 8, num_classes: int = 10,
                    batch_norm: bool = True, init: str = "glorot", ste_clip: float | None = 1.0,
                    seed: int = 0) -> nn.Sequential:
    r"""A deep binary MLP: ``depth`` sign-weight ``QuantLinear`` layers without bias, sign inputs (STE clipped at
    ``ste_clip``) from the second layer on, each followed by ``BatchNorm1d`` if ``batch_norm``. The latent
    weights are :math:`\sigma_\text{init} \cdot z` with one standard Gaussian draw :math:`z` per ``seed``, so
    the three initialisations differ only in scale."""
    widths = [require_int(in_features, "in_features", minimum=1), *[require_int(width, "width", minimum=1)]
              * (require_int(depth, "depth", minimum=2) - 1), require_int(num_classes, "num_classes", minimum=2)]
    batch_norm = require_bool(batch_norm, "batch_norm")
    init_std(init, 1, 1)
    SignQuantizer(ste_clip)  # checks ste_clip
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    layers: list = []
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        layer = qnn.QuantLinear(fan_in, fan_out, bias=False, weight_quantizer=SignQuantizer(1.0),
                                input_quantizer=None if index == 0 else SignQuantizer(ste_clip))
        with torch.no_grad():
            layer.weight.copy_(torch.randn(fan_out, fan_in, generator=generator) * init_std(init, fan_in, fan_out))
        layers += [layer, nn.BatchNorm1d(fan_out)] if batch_norm else [layer]
    return nn.Sequential(*layers)


def layer_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list:
    r"""The Frobenius norms :math:`\lVert \partial L / \partial W_l \rVert` of the latent weights of every
    ``QuantLinear`` of ``model``, first layer first, for the cross-entropy :math:`L` of one batch ``(x, y)``
    (training mode: BN uses the batch statistics)."""
    require_module(model)
    require_float_tensor(x, "x")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != x.shape[:1]:
        raise TypeError("y must be an int64 tensor of class labels, one per row of x")
    model.train()
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, qnn.QuantLinear)]


def mask_probability(n: int, clip: float | None) -> float:
    r"""Exactly :math:`P(|S_n| \le c)` for :math:`S_n` a sum of ``n`` independent uniform :math:`\pm 1`:
    :math:`S_n = 2k - n` with :math:`k \sim \operatorname{Binomial}(n, 1/2)`. ``None`` (identity STE): 1."""
    n = require_int(n, "n", minimum=1)
    clip = SignQuantizer(clip).clip
    if clip is None:
        return 1.0
    return sum(math.comb(n, k) for k in range(n + 1) if abs(2 * k - n) <= clip) / 2 ** n


def backward_gain_squared(n: int, clip: float | None, batch_norm: bool) -> float:
    r"""Our per-layer factor of the squared gradient norm, :math:`g^2 = n\,P(|S_n| \le c)` without BN and
    :math:`P(|S_n| \le c\sqrt{n})` with BN (which divides :math:`h` by :math:`\sqrt{n}`)."""
    n = require_int(n, "n", minimum=1)
    batch_norm = require_bool(batch_norm, "batch_norm")
    clip = SignQuantizer(clip).clip
    if batch_norm:
        return mask_probability(n, None if clip is None else clip * math.sqrt(n))
    return n * mask_probability(n, clip)
