r"""Self-binarizing networks: a tanh whose slope grows during training until it is the sign.

Lahoud, Achanta, Márquez-Neila and Süsstrunk (arXiv 1902.00730, 2019) train weights *and* activations through
one smooth function that is "iteratively sharpened during training until it becomes a binary representation
equivalent to the sign activation function" (abstract). There is no straight-through estimator and no second,
binary copy of the network: the forward pass is always the function whose gradient is used.

**What changes compared with BNN.** Of the four things the 2019 binary papers change (the gradient through sign,
the scaling factors, the architecture, the optimiser), this one changes *the gradient through sign*: BNN uses
:math:`\operatorname{sign}` forward and the straight-through estimator :math:`1_{|x| \le 1}` backward
(:mod:`qteach.papers.binarized_neural_networks`); here forward and backward are those of

.. math:: \phi_v(x) = \tanh(v x), \qquad \frac{\partial \phi_v}{\partial x} = v\,\big(1 - \tanh^2(v x)\big),
    \qquad \lim_{v \to \infty} \phi_v(x) = \operatorname{sign}(x) \quad (x \ne 0)

(:func:`scaled_tanh`), applied to the latent weights and, after each batch norm, to the activations, with a
slope :math:`v` that grows during training (:func:`slope_schedule`). At the end the slope is set to infinity, i.e.
each :math:`\phi_v` is replaced by the exact sign (:func:`binarize`), and the network is a plain binary network.

**Binary batch norm.** The abstract's second contribution, batch norm "transformed into a simple comparison", is
the identity :math:`\operatorname{sign}(\gamma (x - \mu)/\sigma + \beta) = \operatorname{sign}(x - \tau)` for
:math:`\gamma > 0`, with :math:`\tau = \mu - \beta\sigma/\gamma` (the comparison flips for :math:`\gamma < 0`). The
book has it in the core, :func:`qteach.deploy.bn_sign_threshold` (integer thresholds for integer
pre-activations); :func:`binarize` leaves networks that :func:`qteach.deploy.export` packs into XNOR-popcount
layers and such comparisons.

**What could be read.** Only the abstract (arXiv 1902.00730; EPFL infoscience record 263719). The paper's
equations, its exact slope schedule, whether weights and activations share one slope, and its network layouts
could not be read, so no equation numbers are cited; the geometric schedule, the shared slope and the layout of
:func:`self_binarizing_mlp` (the book's BNN layout with :math:`\phi_v` in place of the sign) are this book's
reconstruction.

References:

- F. Lahoud, R. Achanta, P. Márquez-Neila, S. Süsstrunk, *Self-Binarizing Networks*, arXiv:1902.00730, 2019.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, deploy, train
from qteach import data as qdata
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_no_nan,
    require_positive_number,
)

__all__ = [
    "SlopeTanh",
    "binarize",
    "comparison_layer",
    "fit_self_binarizing",
    "scaled_tanh",
    "self_binarizing_mlp",
    "set_slope",
    "slope_schedule",
]


def _require_slope(slope) -> float:
    if isinstance(slope, float) and math.isinf(slope) and slope > 0:
        return slope
    return require_positive_number(slope, "slope")


def scaled_tanh(x: torch.Tensor, slope: float) -> torch.Tensor:
    r""":math:`\phi_v(x) = \tanh(v x)` with slope :math:`v` = ``slope`` > 0; ``slope = math.inf`` is the limit
    :math:`\operatorname{sign}(x)` (with :func:`qteach.binary.sign`'s :math:`\operatorname{sign}(0) = +1`).

    .. math:: \phi_v(x) = \tanh(v x) \xrightarrow[v \to \infty]{} \operatorname{sign}(x)

    The gradient is the true one, :math:`v (1 - \tanh^2(v x))`: no straight-through estimator."""
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    slope = _require_slope(slope)
    if math.isinf(slope):
        return binary.sign(x)
    return torch.tanh(slope * x)


class SlopeTanh(nn.Module):
    r"""Quantizer :math:`\tanh(v x)` with a settable slope :math:`v` (attribute ``slope``, a plain float, not
    trained). Used as the weight quantizer and as the activation (the next layer's input quantizer) of a
    self-binarizing network. ``precision = 1``: the network it ends in is binary."""

    precision = 1

    def __init__(self, slope: float = 1.0):
        super().__init__()
        self.slope = _require_slope(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_tanh(x, self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope:g}"


def slope_schedule(step: int, total_steps: int, start: float = 1.0, end: float = 1000.0) -> float:
    r"""The slope after ``step`` of ``total_steps`` optimiser steps, growing geometrically from ``start`` to
    ``end`` (this book's schedule; the paper's could not be read):

    .. math:: v_t = v_0 \,(v_T / v_0)^{t / T}"""
    step = require_int(step, "step", minimum=0)
    total_steps = require_int(total_steps, "total_steps", minimum=1)
    start = require_positive_number(start, "start")
    end = require_positive_number(end, "end")
    if step > total_steps:
        raise ValueError(f"step must be <= total_steps ({total_steps}), got {step}")
    return start * (end / start) ** (step / total_steps)


def _slope_modules(model: nn.Module) -> list:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, SlopeTanh)]


def set_slope(model: nn.Module, slope: float) -> int:
    """Set the slope of every :class:`SlopeTanh` in ``model``; returns how many there are."""
    modules = _slope_modules(model)
    slope = _require_slope(slope)
    for m in modules:
        m.slope = slope
    return len(modules)


def binarize(model: nn.Module) -> int:
    r"""The end of self-binarization, :math:`v \to \infty`: replace every :class:`SlopeTanh` of ``model`` (as a
    layer, weight quantizer or input quantizer) by :class:`qteach.nn.SignQuantizer`, in place, so that the forward
    pass is exactly :math:`\pm 1` and :func:`qteach.deploy.export` accepts the network. Returns the count."""
    count = len(_slope_modules(model))
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, SlopeTanh):
                setattr(module, name, qnn.SignQuantizer())
    return count


def self_binarizing_mlp(in_features: int = 64, hidden: tuple = (128, 128), num_classes: int = 10,
                        slope: float = 1.0, input_bits: int = 8, seed: int = 0) -> nn.Sequential:
    r"""The book's BNN MLP (:func:`qteach.deploy.binary_mlp`: 8-bit input code, no biases, batch norm after every
    layer) with every sign replaced by a :class:`SlopeTanh` of slope ``slope``: weights :math:`\tanh(vW)`, hidden
    activations :math:`\tanh(v\,\mathrm{BN}(\cdot))` as the next layer's input. After :func:`binarize` it has
    exactly the layout of :func:`qteach.deploy.binary_mlp`."""
    slope = _require_slope(slope)
    model = deploy.binary_mlp(in_features, hidden, num_classes, input_bits=input_bits, seed=seed)
    for layer in model:
        if isinstance(layer, qnn.QuantLinear):
            layer.weight_quantizer = SlopeTanh(slope)
            if isinstance(layer.input_quantizer, qnn.SignQuantizer):
                layer.input_quantizer = SlopeTanh(slope)
    return model


def fit_self_binarizing(model: nn.Module, data, epochs: int = 10, lr: float = 3e-3, batch_size: int = 64,
                        start: float = 1.0, end: float = 1000.0, seed: int = 0, final_binarize: bool = True):
    r"""Train with :func:`qteach.train.fit` (Adam) while the slope of every :class:`SlopeTanh` follows
    :func:`slope_schedule` from ``start`` to ``end``, one step per optimiser step; then, if ``final_binarize``,
    :func:`binarize` the model. Returns the :class:`qteach.train.History` (its accuracies are those of the
    smooth network during training)."""
    if not isinstance(data, qdata.Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    if not _slope_modules(model):
        raise ValueError("model has no SlopeTanh to sharpen (build it with self_binarizing_mlp)")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    total = epochs * math.ceil(len(data.x_train) / batch_size)
    step = {"t": 0}
    set_slope(model, slope_schedule(0, total, start, end))

    def sharpen(m):
        step["t"] += 1
        set_slope(m, slope_schedule(min(step["t"], total), total, start, end))

    history = train.fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        after_step=sharpen, progress=False)
    if final_binarize:
        binarize(model)
    return history


def comparison_layer(w_bits: int = 1, a_bits: int = 1, slope: float = 1.0):
    r"""``(weight_quantizer, input_quantizer, activation)`` for :class:`qteach.comparison.Method`: :math:`\tanh(vW)`
    weights and :math:`\tanh(vx)` inputs (:class:`SlopeTanh`), no activation after the layer. Train with
    :func:`fit_self_binarizing`, which sharpens them and ends with the exact sign. Only ``w_bits = a_bits = 1``."""
    require_binary_layer_bits(w_bits, a_bits)
    return SlopeTanh(slope), SlopeTanh(slope), nn.Identity()
