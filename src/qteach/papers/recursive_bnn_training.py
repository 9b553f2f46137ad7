r"""Recursive binary neural network training: freeze trained weights to 1 bit and reuse the freed
high-precision storage to train more weights, under a fixed on-chip storage budget.

Guan, Zeng and Seok (arXiv 1709.05306, 2017; a 2019 journal version, "Recursive Binary Neural Network Training
Model for Efficient Usage of On-Chip Memory") observe that a binary-weight network still needs a
high-precision (8 to 16 bit, the 2017 abstract says) copy of every weight while it trains, but only 1 bit per
weight once it is trained. Their model "recursively recycles" that storage: train some weights, keep only their
signs, and spend the freed bits on new weights that train next. For the same storage budget the device ends
with more weights, fewer off-chip accesses and (the abstracts report) lower error.

Only the abstracts could be read for this book (arXiv 1709.05306, OpenReview rkONG0xAW, and the 2019 abstract);
no official code was found. Everything below is therefore our reconstruction of the idea, labelled as such:

**The ledger (ours).** A budget of :math:`S` bits; a weight that trains costs :math:`b` bits, a frozen one 1 bit.
Round :math:`k` may train :math:`n_k` new weights as long as

.. math:: F_k + b\, n_k \le S, \qquad F_{k+1} = F_k + n_k, \qquad F_1 = 0,

where :math:`F_k` is the number of frozen (1-bit) weights before round :math:`k`. The conventional scheme is
round 1 alone: :math:`n_1 = \lfloor S / b \rfloor` weights. Without rounding, the free storage shrinks by a
factor :math:`1 - 1/b` per round, so after :math:`K` rounds the network holds
:math:`N_K = S\,(1 - (1 - 1/b)^K)` weights, approaching :math:`S`: one bit per weight.
:func:`recursive_schedule`, :func:`storage_ledger`.

**The network (ours).** A one-hidden-layer MLP with binary weights (BinaryConnect, deterministic sign with the
straight-through gradient, latent weights clipped to [-1, 1]) that grows by whole hidden units: every unit has
``fan = in_features + num_classes`` weights (its input row and its output column). Each round freezes the units
already trained (their weights replaced by their signs, their batch norm fixed) and adds :math:`n_k/\text{fan}`
new trainable units. :class:`GrowingBinaryMLP`, :func:`train_recursive`.

References:

- T. Guan, X. Zeng, M. Seok, *Recursive Binary Neural Network Learning Model with 2.28b/Weight Storage
  Requirement*, arXiv:1709.05306, 2017.
- *Recursive Binary Neural Network Training Model for Efficient Usage of On-Chip Memory*, 2019 (journal
  version; see the book's bibliography entry ``recursivebnn2019``).
- M. Courbariaux, Y. Bengio, J.-P. David, *BinaryConnect*, NIPS 2015 (the binary weights used here).
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary, train
from qteach._validate import require_bits, require_int, require_positive_number
from qteach.data import Split
from qteach.nn import QuantLinear
from qteach.papers.binaryconnect import BinaryConnect

__all__ = [
    "GrowingBinaryMLP",
    "conventional_units",
    "recursive_schedule",
    "storage_ledger",
    "train_conventional",
    "train_recursive",
]


def conventional_units(budget_bits: int, fan: int, bits: int = 8) -> int:
    r"""Hidden units a conventional binary-weight network can train within ``budget_bits``:
    :math:`\lfloor S / (b \cdot \text{fan}) \rfloor` (every weight holds a ``bits``-bit latent copy)."""
    budget_bits = require_int(budget_bits, "budget_bits", minimum=0)
    fan = require_int(fan, "fan", minimum=1)
    bits = require_bits(bits)
    return budget_bits // (bits * fan)


def recursive_schedule(budget_bits: int, fan: int, bits: int = 8, max_rounds: int = 8) -> list[int]:
    r"""New hidden units per round of recursive training (ours, from the abstracts' description).

    .. math:: u_k = \left\lfloor \frac{S - \text{fan} \sum_{j<k} u_j}{b \cdot \text{fan}} \right\rfloor

    Frozen units cost 1 bit per weight, training units ``bits``; rounds stop when no further unit fits or after
    ``max_rounds``. Round 1 is the conventional network (:func:`conventional_units`).
    """
    budget_bits = require_int(budget_bits, "budget_bits", minimum=0)
    fan = require_int(fan, "fan", minimum=1)
    bits = require_bits(bits)
    max_rounds = require_int(max_rounds, "max_rounds", minimum=1)
    units, frozen_bits = [], 0
    while len(units) < max_rounds:
        new = (budget_bits - frozen_bits) // (bits * fan)
        if new == 0:
            break
        units.append(new)
        frozen_bits += new * fan
    return units


def _require_schedule(schedule) -> list[int]:
    if not isinstance(schedule, (list, tuple)):
        raise TypeError(f"schedule must be a list of units per round, got {type(schedule).__name__}")
    return [require_int(u, "schedule", minimum=1) for u in schedule]


def storage_ledger(schedule, fan: int, bits: int = 8) -> list[dict]:
    r"""The exact bit ledger of a schedule, one row per round: frozen and training weights, the bits each
    holds, and the peak storage :math:`F_k + b\, n_k` (weights only: biases and batch norm are not counted)."""
    schedule = _require_schedule(schedule)
    fan = require_int(fan, "fan", minimum=1)
    bits = require_bits(bits)
    rows, frozen = [], 0
    for round_, units in enumerate(schedule, start=1):
        training = units * fan
        rows.append({"round": round_, "new_units": units, "frozen_weights": frozen, "training_weights": training,
                     "frozen_bits": frozen, "training_bits": bits * training,
                     "peak_bits": frozen + bits * training, "total_weights": frozen + training})
        frozen += training
    return rows


class GrowingBinaryMLP(nn.Module):
    r"""A binary-weight MLP ``in_features -> hidden -> num_classes`` that grows by blocks of hidden units.

    .. math:: z = \mathrm{BN}_{out}\Big(\sum_k \operatorname{sign}(V_k)\,
        \operatorname{ReLU}\big(\mathrm{BN}_k(\operatorname{sign}(W_k)\, x)\big)\Big)

    :meth:`grow` freezes every block so far (latent weights replaced by their signs, batch norm fixed) and adds
    ``units`` trainable ones. The output batch norm (``2 * num_classes`` numbers) keeps training, as BinaryConnect's
    last layer. Blocks are seeded with ``seed`` + block index; new latent weights are drawn uniformly in
    ``[-init_range, init_range]``.
    """

    def __init__(self, in_features: int = 64, num_classes: int = 10, seed: int = 0, init_range: float = 0.1):
        super().__init__()
        self.init_range = require_positive_number(init_range, "init_range", maximum=1.0)
        self.in_features = require_int(in_features, "in_features", minimum=1)
        self.num_classes = require_int(num_classes, "num_classes", minimum=2)
        self.seed = require_int(seed, "seed", minimum=0)
        self.blocks = nn.ModuleList()
        self.out_bn = nn.BatchNorm1d(self.num_classes)

    @property
    def fan(self) -> int:
        """Weights per hidden unit: its input row and its output column."""
        return self.in_features + self.num_classes

    @property
    def units(self) -> int:
        return sum(block[0].out_features for block in self.blocks)

    def grow(self, units: int) -> None:
        units = require_int(units, "units", minimum=1)
        for block in self.blocks:  # freeze: keep the sign (1 bit), stop training
            for layer in (block[0], block[2]):
                layer.weight.data = binary.sign(layer.weight.data)
                layer.weight.requires_grad_(False)
            block[1].eval().requires_grad_(False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + len(self.blocks))
            block = nn.ModuleList([QuantLinear(self.in_features, units, bias=False, weight_quantizer=BinaryConnect()),
                                   nn.BatchNorm1d(units),
                                   QuantLinear(units, self.num_classes, bias=False, weight_quantizer=BinaryConnect())])
            nn.init.uniform_(block[0].weight, -self.init_range, self.init_range)
            nn.init.uniform_(block[2].weight, -self.init_range, self.init_range)
        self.blocks.append(block)

    def train(self, mode: bool = True):
        super().train(mode)
        for block in self.blocks[:-1]:  # frozen batch norms keep their statistics
            block[1].eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.blocks:
            raise RuntimeError("the network has no hidden units yet: call grow(units) first")
        out = sum(lin2(torch.relu(bn(lin1(x)))) for lin1, bn, lin2 in self.blocks)
        return self.out_bn(out)


def _fit(model, data, epochs, lr, batch_size, seed):
    """Adam on the trainable parameters, the learning rate decayed linearly to 0 over the run (ours: it makes
    the final accuracy of a binary-weight network far less noisy), latent weights clipped to [-1, 1]."""
    steps = epochs * -(-len(data.x_train) // batch_size)
    state = {"step": 0}

    def make(params):
        state["opt"] = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr)
        return state["opt"]

    def decay(_model):
        state["step"] += 1
        for group in state["opt"].param_groups:
            group["lr"] = lr * max(0.0, 1 - state["step"] / steps)

    return train.fit(model, data, epochs=epochs, batch_size=batch_size, optimizer=make, weight_clip=1.0,
                     after_step=decay, seed=seed, progress=False)


def _check_training(data, budget_bits, bits, epochs, lr, seed):
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    if data.x_train.dim() != 2:
        raise ValueError(f"data must hold flat samples (N, features), got {tuple(data.x_train.shape)}")
    require_int(budget_bits, "budget_bits", minimum=1)
    require_bits(bits)
    require_int(epochs, "epochs", minimum=1)
    require_positive_number(lr, "lr")
    require_int(seed, "seed", minimum=0)


def train_recursive(data: Split, budget_bits: int, bits: int = 8, max_rounds: int = 4, epochs: int = 5,
                    lr: float = 0.01, batch_size: int = 128, seed: int = 0):
    r"""Recursive training under ``budget_bits``: round :math:`k` grows :func:`recursive_schedule`'s
    :math:`u_k` units and trains them ``epochs`` epochs (Adam, latent weights clipped to [-1, 1]).

    Returns ``(model, rounds)``: ``rounds`` lists ``(units so far, test accuracy)`` after each round.
    """
    _check_training(data, budget_bits, bits, epochs, lr, seed)
    model = GrowingBinaryMLP(data.x_train.shape[1], data.num_classes, seed=seed)
    schedule = recursive_schedule(budget_bits, model.fan, bits, max_rounds)
    if not schedule:
        raise ValueError(f"budget_bits ({budget_bits}) is too small to train one unit of {model.fan} weights "
                         f"at {bits} bits")
    rounds = []
    for k, units in enumerate(schedule):
        model.grow(units)
        history = _fit(model, data, epochs, lr, batch_size, seed + k)
        rounds.append((model.units, history.final_test_accuracy))
    return model, rounds


def train_conventional(data: Split, budget_bits: int, bits: int = 8, epochs: int = 5, lr: float = 0.01,
                       batch_size: int = 128, seed: int = 0):
    r"""The conventional binary-weight network under the same budget: :func:`conventional_units` units,
    trained at once for ``epochs`` epochs. Returns ``(model, test accuracy)``."""
    _check_training(data, budget_bits, bits, epochs, lr, seed)
    model = GrowingBinaryMLP(data.x_train.shape[1], data.num_classes, seed=seed)
    units = conventional_units(budget_bits, model.fan, bits)
    if units == 0:
        raise ValueError(f"budget_bits ({budget_bits}) is too small to train one unit of {model.fan} weights "
                         f"at {bits} bits")
    model.grow(units)
    history = _fit(model, data, epochs, lr, batch_size, seed)
    return model, history.final_test_accuracy
