r"""BinaryDenseNet: dense binary blocks, full-precision downsampling, and the check that scaling factors and
custom gradients are not needed when a binary network is trained from scratch with batch norm.

"Training Accurate Binary Neural Networks from Scratch" (ICIP 2019; its author list was not read here), and its
extended version "Back to Simplicity: How to Train Accurate BNNs from Scratch?" by Bethge, Yang, Bornstein and
Meinel (arXiv 1906.08637). Only the
abstract of the extended version could be read for this book; it revisits scaling factors and custom gradients,
finds them "not crucial", states design principles for binary networks and proposes BinaryDenseNet. The layer
structure below is transcribed from the official code, BMXNet-v2-examples
(https://github.com/hpi-xnor/BMXNet-v2-examples, ``binary_models/basenet_dense.py``), cited by line; the binary
layer itself (sign with gradient cancelling, unscaled binary weights, dense block) is the one of the 2018 chapter,
:mod:`qteach.papers.competitive_bnn_from_scratch`, reused here.

**Transition (downsampling) layer** (``basenet_dense.py`` line 37, ``DOWNSAMPLE_STRUCT = "bn,max_pool,relu,fp_conv"``,
built by ``_make_transition``, lines 144-177): batch norm, 2×2 max pooling, ReLU and a *full-precision* 1×1
convolution; ``q_conv`` (line 161) is the binary alternative. Its number of output channels (lines 146-147) is

.. math:: c' = 32 \cdot \operatorname{round}\!\Big(\Big\lfloor \frac{c}{r} \Big\rfloor / 32\Big)

for :math:`c` input channels and a reduction rate :math:`r`. :func:`transition_features`, :func:`transition`.

**Network** (``BaseNetDense.__init__``, lines 64-93): stages of dense blocks separated by transitions, then batch
norm, ReLU, pooling and a full-precision classifier; no bottleneck (``bn_size = 0``, line 208), growth rate 64 by
default (line 208). :func:`binary_densenet_mlp` is our fully connected version of it (ours: max pooling acts on
neighbouring features instead of pixels).

References:

- *Training Accurate Binary Neural Networks from Scratch*, ICIP 2019; J. Bethge, H. Yang, M. Bornstein,
  C. Meinel, *Back to Simplicity: How to Train Accurate BNNs from Scratch?*, arXiv:1906.08637, 2019.
- Official code: https://github.com/hpi-xnor/BMXNet-v2 and https://github.com/hpi-xnor/BMXNet-v2-examples.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_module,
    require_optional_callable,
    require_optional_positive_number,
    require_positive_number,
    require_str,
)
from qteach.papers import competitive_bnn_from_scratch as cb

__all__ = [
    "DOWNSAMPLE_STRUCT",
    "TRANSITION_LAYERS",
    "ApproxSignQuantizer",
    "binary_densenet_mlp",
    "binary_layers",
    "swap_quantizers",
    "transition",
    "transition_features",
]

DOWNSAMPLE_STRUCT = "bn,max_pool,relu,fp_conv"
TRANSITION_LAYERS = ("bn", "relu", "max_pool", "pool", "fp_conv", "q_conv")


def transition_features(num_features: int, reduction: float, multiple: int = 32) -> int:
    r"""Channels after a transition: :math:`c' = m\,\operatorname{round}(\lfloor c / r \rfloor / m)`.

    ``basenet_dense.py`` lines 146-147 with :math:`m = 32`; Python's ``round`` (ties to even), as the official
    code. A result of 0 raises ``ValueError``.
    """
    num_features = require_int(num_features, "num_features", minimum=1)
    reduction = require_positive_number(reduction, "reduction")
    multiple = require_int(multiple, "multiple", minimum=1)
    out = round((num_features // reduction) / multiple) * multiple
    if out < 1:
        raise ValueError(f"num_features={num_features} / reduction={reduction} rounds to 0 multiples of {multiple}")
    return out


def transition(in_features: int, out_features: int, structure: str = DOWNSAMPLE_STRUCT,
               threshold: float | None = 1.0) -> nn.Sequential:
    r"""A transition layer built from the official comma-separated ``structure`` (``basenet_dense.py`` lines
    155-175): ``bn``, ``relu``, ``max_pool`` / ``pool`` (halve the features, max / mean of neighbouring pairs),
    ``fp_conv`` (full-precision linear layer to ``out_features``), ``q_conv`` (sign, then binary linear layer).

    .. math:: \texttt{bn,max\_pool,relu,fp\_conv}: \quad x' = W\,\mathrm{ReLU}(\mathrm{maxpool}(\mathrm{BN}(x)))

    The result has an ``out_features`` attribute (the features it outputs).
    """
    features = require_int(in_features, "in_features", minimum=1)
    out_features = require_int(out_features, "out_features", minimum=1)
    layers = [s.strip() for s in require_str(structure, "structure").split(",")]
    if any(layer not in TRANSITION_LAYERS for layer in layers):
        raise ValueError(f"structure must be made of {TRANSITION_LAYERS}, got {structure!r}")
    threshold = require_optional_positive_number(threshold, "threshold")
    modules = []
    for layer in layers:
        if layer == "bn":
            modules.append(nn.BatchNorm1d(features))
        elif layer == "relu":
            modules.append(nn.ReLU())
        elif layer in ("max_pool", "pool"):
            pool = nn.MaxPool1d(2) if layer == "max_pool" else nn.AvgPool1d(2)
            modules += [nn.Unflatten(1, (1, features)), pool, nn.Flatten()]
            features //= 2
        else:
            quantizers = {} if layer == "fp_conv" else {"weight_quantizer": cb.BinaryWeightQuantizer(),
                                                         "input_quantizer": qnn.SignQuantizer(clip=threshold)}
            modules.append(qnn.QuantLinear(features, out_features, bias=False, **quantizers))
            features = out_features
    block = nn.Sequential(*modules)
    block.out_features = features
    return block


def binary_densenet_mlp(in_features: int, init_features: int = 64, growth: int = 32, stages=(3, 3),
                        reduction: float = 2.0, downsample: str = DOWNSAMPLE_STRUCT, threshold: float | None = 1.0,
                        shortcut: str = "dense", num_classes: int = 10, multiple: int = 8,
                        seed: int = 0) -> nn.Sequential:
    r"""BinaryDenseNet as an MLP: a full-precision first layer to ``init_features``, then for each entry of
    ``stages`` that many :class:`~qteach.papers.competitive_bnn_from_scratch.BinaryBlock` (each adds ``growth``
    features), with a :func:`transition` (``downsample``, features by :func:`transition_features` with
    ``reduction`` and ``multiple``) between stages; then batch norm, ReLU and a full-precision classifier
    (``basenet_dense.py`` lines 75-93). ``shortcut="none"`` or ``"residual"`` keeps the width instead (ablations).
    ``seed`` fixes the initialisation.
    """
    in_features = require_int(in_features, "in_features", minimum=1)
    features = require_int(init_features, "init_features", minimum=1)
    growth = require_int(growth, "growth", minimum=1)
    if not isinstance(stages, (tuple, list)) or not stages:
        raise TypeError(f"stages must be a non-empty tuple of block counts, got {stages!r}")
    stages = [require_int(n, "stages", minimum=1) for n in stages]
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    torch.manual_seed(require_int(seed, "seed", minimum=0))
    layers = [nn.Linear(in_features, features)]
    for i, blocks in enumerate(stages):
        for _ in range(blocks):
            block = cb.BinaryBlock(features, growth if shortcut == "dense" else features, shortcut, threshold)
            layers.append(block)
            features = block.out_features
        if i < len(stages) - 1:
            out = features if shortcut != "dense" else transition_features(features, reduction, multiple)
            layers.append(transition(features, out, downsample, threshold))
            features = layers[-1].out_features
    layers += [nn.BatchNorm1d(features), nn.ReLU(), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)


class ApproxSignQuantizer(nn.Module):
    r"""Sign with Bi-Real Net's custom gradient (:func:`qteach.binary.approx_sign`), one of the "custom
    gradients" the paper revisits:

    .. math:: \frac{\partial q}{\partial x} = \max(0,\, 2 - 2|x|)

    ``precision = 1``.
    """

    precision = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        return binary.approx_sign(x)


def binary_layers(model: nn.Module) -> list:
    """The binary layers of ``model``: its :class:`qteach.nn.QuantLinear` with 1-bit weights and inputs."""
    require_module(model)
    return [m for m in model.modules() if isinstance(m, qnn.QuantLinear)
            and qnn.precision_of(m.weight_quantizer) == 1 and qnn.precision_of(m.input_quantizer) == 1]


def swap_quantizers(model: nn.Module, weight_quantizer=None, input_quantizer=None) -> nn.Module:
    r"""Give every binary layer of ``model`` a new weight and/or input quantizer, each made by calling the
    given factory (e.g. ``xnor_net.BinaryWeight`` for scaled weights :math:`\alpha\operatorname{sign}(W)`,
    ``xnor_net.ScaledSignInput`` for scaled inputs :math:`\beta\operatorname{sign}(x)`, :class:`ApproxSignQuantizer`
    for another gradient). Changes ``model`` in place and returns it."""
    layers = binary_layers(model)
    require_optional_callable(weight_quantizer, "weight_quantizer")
    require_optional_callable(input_quantizer, "input_quantizer")
    for layer in layers:
        if weight_quantizer is not None:
            layer.weight_quantizer = weight_quantizer()
        if input_quantizer is not None:
            layer.input_quantizer = input_quantizer()
    return model
