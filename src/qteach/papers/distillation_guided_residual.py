r"""Distillation guided residual learning: block-wise distillation plus a light real-valued shortcut branch.

Ye, Zhang and Wang observe that a binary CNN (BCNN) and a floating-point CNN (FCNN) of the same shape differ by
large *residuals* between their intermediate feature maps. They (1) train every binary block to reproduce the
float block's output (a *block-wise distillation loss* derived from the FCNN) and (2) insert into every binary
block a lightweight real-valued *shortcut branch* with a Squeeze-and-Interaction (SI) structure that
complements those residuals at about 10 % parameter overhead (the abstract).

Only the abstract could be read for this book: the exact loss, its normalization and weights, and the layers of
the SI branch are **our reconstruction**, written for the book's MLP protocol:

.. math::
    \mathcal{L} = \mathcal{L}_{CE}(z^S, y) + \lambda \sum_{b=1}^{B}
        \frac{1}{N C_b}\, \lVert F_b^S - F_b^T \rVert_2^2
    \qquad\qquad
    F_b^S = \mathrm{BN}_b\!\big(W_b^{\text{bin}} x_b + \mathrm{SI}_b(x_b)\big),\quad
    \mathrm{SI}_b(x) = U_b\, \mathrm{ReLU}(D_b\, x)

with :math:`F_b^T` the float teacher's block output (after its batch norm), :math:`D_b \in \mathbb{R}^{k\times C}`
the *squeeze* to :math:`k` dimensions and :math:`U_b \in \mathbb{R}^{C\times k}` the *interaction* back to
:math:`C` channels, both real-valued, :math:`2kC` parameters next to the :math:`C^2` binary ones.

Reference: Jianming Ye, Shiliang Zhang and Jingdong Wang, *Distillation Guided Residual Learning for Binary
Convolutional Neural Networks*, arXiv 2007.05223 (2020); journal version in IEEE TNNLS (2021). No official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import hw
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_int,
    require_module,
    require_non_negative_number,
    require_positive_number,
)
from qteach.data import Split
from qteach.seed import set_seed
from qteach.train import History, fit_loss

__all__ = [
    "VARIANTS",
    "BinaryBlockWithBranch",
    "SIBranch",
    "add_si_branches",
    "block_distillation_loss",
    "block_taps",
    "branch_width",
    "build_student",
    "comparison_layer",
    "forward_blocks",
    "overhead",
    "protocol_post_training",
    "train_distilled",
]

VARIANTS = {"CE only": (False, False), "+ distillation": (True, False), "+ SI branch": (False, True),
            "both": (True, True)}
"""The four ablation variants: name -> (block-wise distillation, SI branch)."""

PROTOCOL_LAMBDA = 0.1
"""The distillation weight of the results-page entry (ours: the paper's value could not be read; 1.0 cost
accuracy on MNIST-1D in our trial runs, 0.1 did not)."""


class SIBranch(nn.Module):
    r"""Our reconstruction of the SI shortcut for a fully connected block: squeeze to ``k`` dimensions, interact
    back to ``channels``: :math:`\mathrm{SI}(x) = U\,\mathrm{ReLU}(D x)`, real-valued, no bias, :math:`2kC`
    parameters."""

    def __init__(self, channels: int, k: int):
        super().__init__()
        channels = require_int(channels, "channels", minimum=1)
        k = require_int(k, "k", minimum=1, maximum=channels)
        self.squeeze = nn.Linear(channels, k, bias=False)
        self.interact = nn.Linear(k, channels, bias=False)
        nn.init.zeros_(self.interact.weight)  # starts as the plain binary block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.interact(F.relu(self.squeeze(x)))


class BinaryBlockWithBranch(nn.Module):
    r"""A binary layer with the real-valued shortcut added to its output: :math:`W^{\text{bin}}x + \mathrm{SI}(x)`."""

    def __init__(self, binary: nn.Module, branch: nn.Module):
        super().__init__()
        self.binary = require_module(binary, "binary")
        self.branch = require_module(branch, "branch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.binary(x) + self.branch(x)


def comparison_layer(w_bits: int = 1, a_bits: int = 1):
    """``(weight_quantizer, input_quantizer, activation)`` of the binary student: BNN's layer (sign weights,
    Htanh-STE sign activation after batch norm), as the results pages' BNN entry. Only W1/A1 exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return qnn.SignQuantizer(), None, qnn.SignQuantizer()


def block_taps(model: nn.Module) -> list[int]:
    """Indices, in a ``nn.Sequential``, of the batch norms that close a middle block (they follow a
    :class:`qteach.nn.QuantLinear` or a :class:`BinaryBlockWithBranch`): the block outputs :math:`F_b`."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    layers = list(model)
    return [i for i in range(1, len(layers)) if isinstance(layers[i], nn.BatchNorm1d)
            and isinstance(layers[i - 1], (qnn.QuantLinear, BinaryBlockWithBranch))]


def forward_blocks(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model`` (a ``nn.Sequential``) on ``x``; return the logits and the block outputs at :func:`block_taps`."""
    taps = set(block_taps(model))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    features = []
    for i, layer in enumerate(model):
        x = layer(x)
        if i in taps:
            features.append(x)
    return x, features


def block_distillation_loss(student_features, teacher_features) -> torch.Tensor:
    r"""The block-wise distillation term (our reconstruction): the sum over blocks of the mean squared residual.

    .. math::
        \sum_{b} \frac{1}{N C_b} \lVert F_b^S - F_b^T \rVert_2^2

    The teacher's features are detached: only the student learns.
    """
    if not isinstance(student_features, (list, tuple)) or not isinstance(teacher_features, (list, tuple)):
        raise TypeError("student_features and teacher_features must be lists of tensors")
    if len(student_features) != len(teacher_features) or not student_features:
        raise ValueError(f"student_features ({len(student_features)} blocks) and teacher_features "
                         f"({len(teacher_features)} blocks) must have the same, non-zero, number of blocks")
    for b, (s, t) in enumerate(zip(student_features, teacher_features)):
        if s.shape != t.shape:
            raise ValueError(f"block {b}: student_features {tuple(s.shape)} and teacher_features "
                             f"{tuple(t.shape)} differ in shape")
    return sum(F.mse_loss(s, t.detach()) for s, t in zip(student_features, teacher_features))


def branch_width(channels: int, fraction: float = 0.1) -> int:
    r"""The largest :math:`k \ge 1` whose branch (:math:`2kC` parameters) stays within ``fraction`` of the
    binary layer's :math:`C^2`: :math:`k = \max(1, \lfloor \text{fraction}\cdot C / 2 \rfloor)`."""
    channels = require_int(channels, "channels", minimum=1)
    fraction = require_positive_number(fraction, "fraction", maximum=1.0)
    return max(1, int(fraction * channels / 2))


def add_si_branches(model: nn.Sequential, k: int) -> nn.Sequential:
    """Wrap every middle block's linear layer of ``model`` (in place) with an :class:`SIBranch` of width ``k``."""
    taps = block_taps(model)
    k = require_int(k, "k", minimum=1)
    for i in taps:
        layer = model[i - 1]
        if isinstance(layer, qnn.QuantLinear):
            model[i - 1] = BinaryBlockWithBranch(layer, SIBranch(layer.in_features, k))
    return model


def overhead(channels: int, k: int, blocks: int = 2) -> dict:
    """Exact parameter, storage and BOP counts of ``blocks`` binary C x C layers with and without the branch.

    BOPs per example with :func:`qteach.hw.bops` (MACs x weight bits x input bits): a binary layer's MAC is
    1 x 1, a branch MAC has 32-bit weights; the squeeze sees the block's 1-bit input, the interaction a 32-bit
    hidden vector.
    """
    channels = require_int(channels, "channels", minimum=1)
    k = require_int(k, "k", minimum=1, maximum=channels)
    blocks = require_int(blocks, "blocks", minimum=1)
    binary_params = blocks * channels * channels
    branch_params = blocks * 2 * k * channels
    binary_bops = blocks * hw.bops(hw.linear_macs(channels, channels), 1, 1)
    branch_bops = blocks * (hw.bops(hw.linear_macs(channels, k), 32, 1) + hw.bops(hw.linear_macs(k, channels), 32, 32))
    return {"binary_params": binary_params, "branch_params": branch_params,
            "binary_bits": binary_params, "branch_bits": 32 * branch_params,
            "binary_bops": binary_bops, "branch_bops": branch_bops}


def train_distilled(student: nn.Module, data: Split, teacher: nn.Module | None = None, lam: float = 1.0,
                    epochs: int = 10, lr: float = 3e-3, batch_size: int = 128, seed: int = 0,
                    weight_clip: float | None = 1.0) -> History:
    """Train ``student`` (in place) with cross-entropy plus ``lam`` times :func:`block_distillation_loss` to the
    frozen ``teacher`` (cross-entropy alone if ``teacher`` is None). Adam, the latent binary weights clipped to
    ``weight_clip`` after each step, mini-batches shuffled by a generator seeded with ``seed``."""
    require_module(student, "student")
    if teacher is not None:
        require_module(teacher, "teacher")
        if len(block_taps(teacher)) != len(block_taps(student)):
            raise ValueError("teacher and student must have the same number of blocks")
        teacher.eval()
        teacher.requires_grad_(False)
    lam = require_non_negative_number(lam, "lam")

    def batch_loss(idx, xb, yb):
        logits, features = forward_blocks(student, xb)
        loss = F.cross_entropy(logits, yb)
        if teacher is not None and lam > 0:
            with torch.no_grad():
                _, teacher_features = forward_blocks(teacher, xb)
            loss = loss + lam * block_distillation_loss(features, teacher_features)
        return loss

    return fit_loss(student, data, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                    weight_clip=weight_clip)


def build_student(in_features: int, branch: bool, k: int | None = None, hidden: int = 128) -> nn.Sequential:
    """The results pages' binary MLP (BNN layers in the two middle blocks), with SI branches of width ``k``
    (default :func:`branch_width` of ``hidden``) if ``branch``."""
    from qteach import comparison

    method = comparison.Method("", "", (), layer=comparison_layer)
    model = comparison.protocol_mlp(method, 1, 1, require_int(in_features, "in_features", minimum=1))
    if branch:
        add_si_branches(model, branch_width(hidden) if k is None else k)
    return model


def protocol_post_training(teacher: nn.Module, w_bits: int, data: Split, seed: int, protocol) -> nn.Module:
    """For :class:`qteach.comparison.Method` ``post_training``: a W1/A1 student with SI branches, trained with
    block-wise distillation (``PROTOCOL_LAMBDA``) from the trained full-precision protocol model ``teacher``, under
    the protocol's epochs, learning rate and batch size."""
    require_binary_layer_bits(w_bits, 1)
    set_seed(seed)
    student = build_student(data.x_train.shape[1], branch=True)
    train_distilled(student, data, teacher=teacher, lam=PROTOCOL_LAMBDA, epochs=protocol.epochs, lr=protocol.lr,
                    batch_size=protocol.batch_size, seed=seed)
    return student
