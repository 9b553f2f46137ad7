r"""Training competitive binary networks from scratch: BMXNet-v2's binary layer, its gradient-cancelling
threshold, optional scaling factors, and dense shortcuts.

Bethge, Bornstein, Loy, Yang and Meinel (arXiv 1812.01965, 2018) train binary networks without a full-precision
model to start from and with a simple training recipe, and adopt dense connections (DenseNet) for binary
networks. The revised version of the work (Bethge, Yang, Bornstein and Meinel, arXiv 1906.08637, "Back to
Simplicity") states in its abstract that scaling factors and custom gradients "are not crucial". The full text
of 1812.01965 could not be read for this book, so the formulas below are transcribed from the official code,
BMXNet-v2 (https://github.com/hpi-xnor/BMXNet-v2), cited by file and line:

**Activation** (``python/mxnet/gluon/nn/binary_layers.py`` lines 153-162, ``QActivation``): a gradient cancel
followed by the deterministic sign,

.. math::
    q(x) = \operatorname{sign}(x) = \begin{cases} +1 & x \ge 0 \\ -1 & x < 0 \end{cases}, \qquad
    \frac{\partial q}{\partial x} = 1_{|x| \le t}

(``src/operator/mshadow_op.h`` lines 315-321 for the forward, ``src/operator/contrib/gradient_cancel-inl.h``
line 110 for the backward). The threshold :math:`t` defaults to 1.0 (``binary_layers.py`` line 11,
``gradient_cancel-inl.h`` line 44; the examples' ``--clip-threshold`` flag, ``util/arg_parser.py`` line 153 of
BMXNet-v2-examples). :func:`qactivation`.

**Weights** (``binary_layers.py`` lines 186-233, ``_QConv``): ``det_sign`` of the latent weights with the identity
as its gradient (``elemwise_unary_op_basic.cc`` line 749: no cancelling for weights), no weight decay on them
(line 200), and, only with ``apply_scaling=True``, the output multiplied by one scale per output channel,
:math:`\alpha_c = \operatorname{mean}|W_c|` (line 227), whose gradient is stopped for the ``xnor`` approximation
(lines 202 and 228-229). :class:`BinaryWeightQuantizer`.

**Dense shortcuts** (BMXNet-v2-examples, ``binary_models/basenet_dense.py``, ``_add_dense_block``): batch norm, then
a binary layer (activation + binary convolution) producing ``growth_rate`` new channels, concatenated to its input.
:class:`BinaryBlock` with ``shortcut="dense"``; ``"residual"`` adds instead and ``"none"`` replaces.

References:

- J. Bethge, M. Bornstein, A. Loy, H. Yang, C. Meinel, *Training Competitive Binary Neural Networks from
  Scratch*, arXiv:1812.01965, 2018.
- Official code: https://github.com/hpi-xnor/BMXNet-v2 and https://github.com/hpi-xnor/BMXNet-v2-examples.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_optional_positive_number,
    require_str,
    require_weights,
)

__all__ = [
    "SHORTCUTS",
    "BinaryBlock",
    "BinaryWeightQuantizer",
    "binary_macs",
    "binary_mlp",
    "comparison_layer",
    "qactivation",
]

SHORTCUTS = ("none", "residual", "dense")


def qactivation(x: torch.Tensor, threshold: float | None = 1.0) -> torch.Tensor:
    r"""BMXNet-v2's binary activation: ``gradcancel`` then ``det_sign``.

    .. math:: q(x) = \operatorname{sign}(x), \qquad \frac{\partial q}{\partial x} = 1_{|x| \le t}

    ``threshold`` is :math:`t` (the official default 1.0); ``None`` never cancels (the plain straight-through
    estimator). :math:`\operatorname{sign}(0) = +1`, as ``det_sign`` (``mshadow_op.h`` line 319-320).
    """
    require_float_tensor(x, "x")
    threshold = require_optional_positive_number(threshold, "threshold")
    return binary.ste_sign(x, clip=threshold)


class BinaryWeightQuantizer(nn.Module):
    r"""BMXNet-v2's binary weights: :math:`\operatorname{sign}(W)` with the identity gradient, optionally scaled.

    .. math:: \widetilde{W}_c = \alpha_c \operatorname{sign}(W_c), \qquad
        \alpha_c = \tfrac{1}{n}\lVert W_c \rVert_1 \ \text{(scaling)}, \quad \alpha_c = 1 \ \text{(no scaling)}

    ``scaling=False`` is the official default (``apply_scaling=False``). ``stop_scale_grad=True`` stops the
    gradient through :math:`\alpha_c` (the ``xnor`` approximation, ``binary_layers.py`` lines 228-229).
    ``precision = 1``.
    """

    precision = 1

    def __init__(self, scaling: bool = False, stop_scale_grad: bool = False):
        super().__init__()
        self.scaling = require_bool(scaling, "scaling")
        self.stop_scale_grad = require_bool(stop_scale_grad, "stop_scale_grad")

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_weights(w, "w")
        b = binary.ste_sign(w, clip=None)
        if not self.scaling:
            return b
        alpha = binary.mean_abs_scale(w, per_channel=True)
        return b * (alpha.detach() if self.stop_scale_grad else alpha)

    def extra_repr(self) -> str:
        return f"scaling={self.scaling}, stop_scale_grad={self.stop_scale_grad}"


class BinaryBlock(nn.Module):
    r"""One binary layer with its shortcut: :math:`y = W_b\, q(\mathrm{BN}(x))`, then

    .. math:: x' = y \ (\texttt{none}), \qquad x' = x + y \ (\texttt{residual}), \qquad
        x' = [x, y] \ (\texttt{dense: concatenation})

    The order batch norm, sign, binary layer is that of BMXNet-v2-examples' dense block. ``growth`` is the
    number of outputs of the binary layer (it must equal ``in_features`` unless the shortcut is ``dense``);
    ``out_features`` is ``in_features + growth`` for ``dense`` and ``growth`` otherwise.
    """

    def __init__(self, in_features: int, growth: int, shortcut: str = "dense", threshold: float | None = 1.0,
                 scaling: bool = False):
        super().__init__()
        in_features = require_int(in_features, "in_features", minimum=1)
        growth = require_int(growth, "growth", minimum=1)
        if require_str(shortcut, "shortcut") not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        if shortcut == "residual" and growth != in_features:
            raise ValueError(f"growth must equal in_features ({in_features}) for a residual shortcut, got {growth}")
        self.shortcut = shortcut
        self.out_features = in_features + growth if shortcut == "dense" else growth
        self.bn = nn.BatchNorm1d(in_features)
        self.linear = qnn.QuantLinear(in_features, growth, bias=False,
                                      weight_quantizer=BinaryWeightQuantizer(scaling),
                                      input_quantizer=qnn.SignQuantizer(clip=threshold))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(self.bn(x))
        if self.shortcut == "dense":
            return torch.cat([x, y], dim=1)
        return x + y if self.shortcut == "residual" else y


def binary_mlp(in_features: int, width: int = 64, blocks: int = 4, shortcut: str = "dense",
               threshold: float | None = 1.0, scaling: bool = False, num_classes: int = 10,
               growth: int | None = None, seed: int = 0) -> nn.Sequential:
    r"""A binary MLP built like the paper's networks: full-precision first and last layers, ``blocks`` binary
    :class:`BinaryBlock` in between, batch norm before the classifier. ``growth`` (dense only, default
    ``width // 2``) is the number of features each dense block adds. ``seed`` fixes the initialisation."""
    in_features = require_int(in_features, "in_features", minimum=1)
    width = require_int(width, "width", minimum=1)
    blocks = require_int(blocks, "blocks", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    growth = width // 2 if growth is None else require_int(growth, "growth", minimum=1)
    torch.manual_seed(require_int(seed, "seed", minimum=0))
    layers, features = [nn.Linear(in_features, width)], width
    for _ in range(blocks):
        block = BinaryBlock(features, growth if shortcut == "dense" else width, shortcut, threshold, scaling)
        layers.append(block)
        features = block.out_features
    layers += [nn.BatchNorm1d(features), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)


def binary_macs(model: nn.Module) -> int:
    """Multiply-accumulates of the binary layers for one sample (each an XNOR-popcount bit operation)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(m.in_features * m.out_features for m in model.modules()
               if isinstance(m, qnn.QuantLinear) and isinstance(m.weight_quantizer, BinaryWeightQuantizer))


def comparison_layer(w_bits: int = 1, a_bits: int = 1, threshold: float | None = 1.0, scaling: bool = False):
    r"""``(weight_quantizer, input_quantizer, activation)`` of a BMXNet-v2 layer for
    :class:`qteach.comparison.Method`: binary weights (no scaling, as the official default), a sign input with
    the gradient cancelled above ``threshold`` (1.0 by default), no activation after the layer. Only
    ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return BinaryWeightQuantizer(scaling), qnn.SignQuantizer(clip=threshold), nn.Identity()
