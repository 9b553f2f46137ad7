r"""An empirical study of binary networks' optimisation: the optimiser, the learning-rate schedule, gradient
clipping of the straight-through estimator and weight clipping, switched on and off one at a time.

Alizadeh, Fernández-Marqués, Lane and Gal (ICLR 2019) train BinaryConnect-style networks (binary weights,
real-valued ReLU activations, batch norm) and ask which of the usual "ad-hoc" tricks matter. Their abstract says
that adapting learning rates with second-moment methods (Adam) is crucial for the straight-through estimator, that
other optimisers get stuck, and that many tricks only help towards the end of training while slowing its early
stages; their recipe trains in two stages, without gradient and weight clipping first, with them later. The full
text could not be read for this book; the formulas below are transcribed from the official code,
https://github.com/mi-lad/studying-binary-neural-networks (TensorFlow 1.8), cited by file and line:

**Binarization with gradient clipping** (``models/binaryconnect.py`` lines 68-72, ``deterministic_binary_op``):
``tf.sign(tf.clip_by_value(w, -1, 1))`` with the gradient of ``Sign`` overridden by the identity, so

.. math::
    w_b = \operatorname{sign}(w), \qquad \frac{\partial w_b}{\partial w} = 1_{|w| \le 1}
    \quad \text{(gradient clipping)}, \qquad \frac{\partial w_b}{\partial w} = 1 \quad \text{(pure STE)}

(lines 75-79, ``deterministic_binary_op_pure_ste``, with ``disable_gradient_clipping``).

**Weight clipping** (line 47): the variable constraint ``tf.clip_by_value(w, -1, 1)``, applied after every update
unless ``disable_weight_constraint`` (:func:`qteach.train.clip_latent_weights`).

**Learning-rate schedule** (``optimisers.py`` lines 26-30; ``run_with_yaml.py`` lines 89-94): exponential decay
per epoch from ``start`` to ``finish`` over ``N`` epochs,

.. math:: \eta_e = \eta_0 \, r^{e}, \qquad r = (\eta_\text{end} / \eta_0)^{1/N}.

:func:`exponential_decay_lr`.

The two-stage procedure (:func:`two_stage_fit`) is our reconstruction from the abstract and a third-party summary
of the paper's sec. 3.2: stage 1 with the pure STE, no weight clipping and a higher learning rate, stage 2 with
both clippings and a lower one.

References:

- M. Alizadeh, J. Fernández-Marqués, N. D. Lane, Y. Gal, *An Empirical study of Binary Neural Networks'
  Optimisation*, ICLR 2019. https://openreview.net/forum?id=rJfUCoR5KX
- Official code: https://github.com/mi-lad/studying-binary-neural-networks
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import nn as qnn
from qteach import train
from qteach._validate import (
    require_bool,
    require_int,
    require_module,
    require_positive_number,
    require_str,
)
from qteach.data import Split
from qteach.papers import binaryconnect

__all__ = [
    "OPTIMISERS",
    "binary_mlp",
    "comparison_fit",
    "comparison_layer",
    "exponential_decay_lr",
    "fit_with_schedule",
    "set_gradient_clipping",
    "two_stage_fit",
]

OPTIMISERS = ("adam", "sgd")


def exponential_decay_lr(epoch: int, start: float, finish: float, epochs: int) -> float:
    r"""The official per-epoch exponential decay (``optimisers.py`` lines 26-30, staircase).

    .. math:: \eta_e = \eta_0 \, (\eta_\text{end} / \eta_0)^{e / N}, \qquad e = 0, 1, \dots, N - 1

    ``finish == start`` gives a constant learning rate.
    """
    epoch = require_int(epoch, "epoch", minimum=0)
    start = require_positive_number(start, "start")
    finish = require_positive_number(finish, "finish")
    epochs = require_int(epochs, "epochs", minimum=1)
    return start * (finish / start) ** (epoch / epochs)


def set_gradient_clipping(model: nn.Module, on: bool) -> None:
    r"""Switch the STE of every binary weight of ``model`` between gradient clipping
    (:math:`\partial w_b / \partial w = 1_{|w| \le 1}`) and the pure STE (gradient 1 everywhere)."""
    require_module(model)
    on = require_bool(on, "on")
    for module in model.modules():
        if isinstance(getattr(module, "weight_quantizer", None), qnn.SignQuantizer):
            module.weight_quantizer.clip = 1.0 if on else None


def binary_mlp(in_features: int = 64, hidden: tuple = (256, 256), num_classes: int = 10,
               gradient_clipping: bool = True, init_range: float | None = None, seed: int = 0) -> nn.Sequential:
    r"""The official code's BinaryConnect MLP (``models/binaryconnect.py`` lines 163-205): binary weights
    (:class:`qteach.nn.SignQuantizer`), batch norm and ReLU after every hidden layer, batch norm after the last,
    every layer binary. Built from :func:`qteach.papers.binaryconnect.binaryconnect_mlp`. The latent weights are
    drawn uniformly in ``[-init_range, init_range]``; ``None`` (default) is Glorot's uniform initialisation, as the
    official code (``tf.contrib.layers.xavier_initializer``, line 36)."""
    gradient_clipping = require_bool(gradient_clipping, "gradient_clipping")
    model = binaryconnect.binaryconnect_mlp(in_features, hidden, num_classes, mode="deterministic", seed=seed,
                                            init_range=init_range)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, qnn.QuantLinear):
                module.weight_quantizer = qnn.SignQuantizer()
                if init_range is None:
                    nn.init.xavier_uniform_(module.weight)
    set_gradient_clipping(model, gradient_clipping)
    return model


def fit_with_schedule(model: nn.Module, data: Split, optimiser: str = "adam", lr: float = 1e-2,
                      lr_finish: float | None = None, epochs: int = 10, weight_clipping: bool = True,
                      batch_size: int = 64, seed: int = 0) -> train.History:
    r"""Train with Adam or SGD with momentum 0.9, the learning rate decayed per epoch from ``lr`` to
    ``lr_finish`` (:func:`exponential_decay_lr`; ``None``: constant), latent weights clipped to
    :math:`[-1, 1]` after every step if ``weight_clipping``. Gradient clipping lives in the weight quantizers
    (:func:`set_gradient_clipping`). Uses :func:`qteach.train.fit`."""
    if require_str(optimiser, "optimiser") not in OPTIMISERS:
        raise ValueError(f"optimiser must be one of {OPTIMISERS}, got {optimiser!r}")
    lr = require_positive_number(lr, "lr")
    lr_finish = lr if lr_finish is None else require_positive_number(lr_finish, "lr_finish")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
    state = {"step": 0}

    def make(params):
        state["opt"] = (torch.optim.Adam(params, lr=lr) if optimiser == "adam"
                        else torch.optim.SGD(params, lr=lr, momentum=0.9))
        return state["opt"]

    def after_step(_model):
        state["step"] += 1
        epoch = min(state["step"] // steps_per_epoch, epochs - 1)
        for group in state["opt"].param_groups:
            group["lr"] = exponential_decay_lr(epoch, lr, lr_finish, epochs)

    return train.fit(model, data, epochs=epochs, batch_size=batch_size, optimizer=make, after_step=after_step,
                     weight_clip=1.0 if require_bool(weight_clipping, "weight_clipping") else None,
                     seed=seed, progress=False)


def two_stage_fit(model: nn.Module, data: Split, epochs: tuple = (5, 5), lr: tuple = (3e-2, 3e-3),
                  batch_size: int = 64, seed: int = 0) -> train.History:
    r"""The paper's two stages (our reconstruction): ``epochs[0]`` epochs of Adam at ``lr[0]`` with the pure STE
    and no weight clipping, then ``epochs[1]`` epochs at ``lr[1]`` with gradient and weight clipping, the
    learning rate decaying by 10 within that stage. Returns the histories of both stages joined."""
    if not (isinstance(epochs, (tuple, list)) and len(epochs) == 2):
        raise TypeError(f"epochs must be a pair (stage 1, stage 2), got {epochs!r}")
    if not (isinstance(lr, (tuple, list)) and len(lr) == 2):
        raise TypeError(f"lr must be a pair (stage 1, stage 2), got {lr!r}")
    set_gradient_clipping(model, False)
    first = fit_with_schedule(model, data, "adam", lr[0], None, epochs[0], False, batch_size, seed)
    set_gradient_clipping(model, True)
    second = fit_with_schedule(model, data, "adam", lr[1], lr[1] / 10, epochs[1], True, batch_size, seed + 1)
    return train.History(*(a + b for a, b in zip(
        (first.train_loss, first.train_accuracy, first.test_accuracy),
        (second.train_loss, second.train_accuracy, second.test_accuracy))))


def comparison_layer(w_bits: int = 1, a_bits: int = 32):
    r"""``(weight_quantizer, input_quantizer, activation)`` for :class:`qteach.comparison.Method`: binary
    weights with the pure STE (switched to gradient clipping by :func:`comparison_fit`), real inputs, ReLU, as
    in the paper's BinaryConnect networks. Only ``w_bits = 1, a_bits = 32`` exist."""
    if require_int(w_bits, "w_bits", minimum=1) != 1 or require_int(a_bits, "a_bits", minimum=1) != 32:
        raise ValueError(f"w_bits must be 1 and a_bits 32 (binary weights, real activations), got {w_bits} and "
                         f"{a_bits}")
    return qnn.SignQuantizer(clip=None), None, nn.ReLU()


def comparison_fit(model: nn.Module, data: Split, seed: int, protocol) -> train.History:
    """The two-stage recipe within a results-page protocol: half the epochs (rounded up) at 3x the protocol's
    learning rate with no clipping, the rest at the protocol's rate with both clippings."""
    first = (protocol.epochs + 1) // 2
    return two_stage_fit(model, data, (first, max(protocol.epochs - first, 1)), (3 * protocol.lr, protocol.lr),
                         protocol.batch_size, seed)
