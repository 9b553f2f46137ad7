r"""BBNA: an energy-efficient *bagged* binary neural network accelerator (2020).

The paper ("An Energy-Efficient Bagged Binary Neural Network Accelerator", listed as ICET 2020 by the
awesome-model-quantization list; authors not verified) proposes BBNA, "a fully pipelined BNN accelerator with
bagging ensemble unit for aggregating several BNN pipelines". Its abstract reports 1.9x better energy
efficiency than other works and that the ensemble "saves more than 79% and 94% memory footprint" with nearly
the same accuracy on MNIST. **Only the abstract could be read for this book**: the network sizes, the voting
rule of the ensemble unit, the pipeline and all hardware constants below are *our* reconstruction and labelled
as such.

Bagging (Breiman, 1996) trains :math:`K` classifiers on bootstrap resamples of the training set and aggregates
them; for classification the classic aggregate is the plurality vote

.. math:: \hat y = \arg\max_c \sum_{k=1}^{K} [\hat y_k = c].

The bootstrap and the vote themselves are those of the 2019 chapter :mod:`qteach.papers.binary_ensemble`
(BENN, :func:`~qteach.papers.binary_ensemble.bootstrap_indices`, :func:`~qteach.papers.binary_ensemble.hard_vote`),
reused here. This module adds what the *accelerator* needs:

- members small enough to stack: :class:`StackedBinaryMLP` trains :math:`K` deployable BNNs
  (:func:`qteach.deploy.binary_mlp` layout) in one pass, each on its bootstrap sample written as example counts
  (:func:`bootstrap_counts`, :func:`fit_bagged`), and :func:`unstack` hands them to :func:`qteach.deploy.export`;
- the ensemble unit as hardware: per-class vote counters and a comparator chain (:func:`vote_unit`), bit-exact
  with the plurality vote, behind :math:`K` XNOR-popcount pipelines (:func:`bagged_predict`);
- memory and a pipeline/energy cost model (:func:`member_weight_bits`, :func:`equal_memory_hidden`,
  :func:`pipeline_cost`) whose constants are :data:`ASSUMED` (Horowitz 2014 where a table exists).

References:

- *An Energy-Efficient Bagged Binary Neural Network Accelerator*, 2020 (abstract only; IEEE Xplore 9119704).
- L. Breiman, *Bagging predictors*, Machine Learning 24, 1996.
- S. Zhu, X. Dong, H. Su, *Binary Ensemble Neural Network*, CVPR 2019 (:mod:`qteach.papers.binary_ensemble`).
- M. Horowitz, *Computing's energy problem*, ISSCC 2014 (:mod:`qteach.hw`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import deploy, hw, train
from qteach import nn as qnn
from qteach._validate import (
    require_bits,
    require_int,
    require_integer_tensor,
    require_ndim,
    require_positive_number,
)
from qteach.data import Split
from qteach.papers.binary_ensemble import bootstrap_indices

__all__ = [
    "ASSUMED",
    "StackedBinaryMLP",
    "bagged_predict",
    "bootstrap_counts",
    "equal_memory_hidden",
    "fit_bagged",
    "member_weight_bits",
    "pipeline_cost",
    "unstack",
    "vote_unit",
]

#: Constants of :func:`pipeline_cost`. NONE of them is from the BBNA paper (only its abstract was read):
#:
#: - ``mac_pj``: one binary MAC (an XNOR and its share of the popcount adder tree) is charged one 8-bit integer
#:   add, Horowitz's 45 nm 0.03 pJ (:data:`qteach.hw.ENERGY_PJ_45NM`), an assumed stand-in;
#: - ``sram_pj_per_bit``: every weight bit is read once per image from an on-chip 8 kB SRAM, Horowitz's 10 pJ per
#:   64-bit access divided by 64 (:data:`qteach.hw.MEMORY_PJ_PER_64BIT_45NM`);
#: - ``lanes``: XNOR-popcount lanes of one member pipeline (binary MACs per cycle per layer stage), assumed;
#: - ``clock_mhz``: assumed clock of the pipelines.
ASSUMED = {
    "mac_pj": hw.ENERGY_PJ_45NM[("int", "add", 8)],
    "sram_pj_per_bit": hw.MEMORY_PJ_PER_64BIT_45NM["sram_8kb"] / 64,
    "lanes": 64,
    "clock_mhz": 100.0,
}


def member_weight_bits(hidden: int, in_features: int = 64, num_classes: int = 10) -> int:
    r"""Binary weight bits of one member, a :func:`qteach.deploy.binary_mlp` with two hidden layers of ``hidden``.

    .. math:: M(h) = d\,h + h^2 + h\,C \quad \text{bits (one bit per weight)}
    """
    hidden = require_int(hidden, "hidden", minimum=1)
    in_features = require_int(in_features, "in_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    return in_features * hidden + hidden * hidden + hidden * num_classes


def equal_memory_hidden(budget_bits: int, k: int, in_features: int = 64, num_classes: int = 10) -> int:
    r"""The widest members such that :math:`K` of them fit in ``budget_bits``: the largest :math:`h` with
    :math:`K\,M(h) \le B` (:func:`member_weight_bits`); 0 if not even :math:`h = 1` fits."""
    budget_bits = require_int(budget_bits, "budget_bits", minimum=0)
    k = require_int(k, "k", minimum=1)
    in_features = require_int(in_features, "in_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    b = in_features + num_classes  # K (h^2 + b h) <= B  <=>  h <= (-b + sqrt(b^2 + 4 B / K)) / 2
    h = max(0, math.floor((-b + math.sqrt(b * b + 4 * budget_bits / k)) / 2))
    while h > 0 and k * member_weight_bits(h, in_features, num_classes) > budget_bits:  # float safety
        h -= 1
    while k * member_weight_bits(h + 1, in_features, num_classes) <= budget_bits:
        h += 1
    return h


def bootstrap_counts(n: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""How often each of ``n`` training examples appears in each of ``k`` bootstrap samples, int64 (k, n).

    .. math:: c_{k,i} = \#\{j : i_j^{(k)} = i\}, \qquad \sum_i c_{k,i} = n

    Row :math:`k` counts :func:`~qteach.papers.binary_ensemble.bootstrap_indices`; training on the sample is
    training on the whole set with example weights :math:`c_{k,i}` (the same loss, sum over the sample).
    """
    n = require_int(n, "n", minimum=1)
    k = require_int(k, "k", minimum=1)
    return torch.stack([torch.bincount(bootstrap_indices(n, generator), minlength=n) for _ in range(k)])


class StackedBinaryMLP(nn.Module):
    r""":math:`K` independent BNNs of the :func:`qteach.deploy.binary_mlp` layout, computed together.

    Member :math:`k`: 8-bit input codes :math:`\to` binary ``Linear`` :math:`d \to h` :math:`\to` BN
    :math:`\to` sign :math:`\to` binary ``Linear`` :math:`h \to h` :math:`\to` BN :math:`\to` sign :math:`\to`
    binary ``Linear`` :math:`h \to C` :math:`\to` BN, no biases. Weights are stacked to (K, out, in) and
    multiplied with ``einsum``; one ``BatchNorm1d`` of :math:`K h` features normalises every member's features
    separately (per-feature statistics), so the members never interact. Member :math:`k` is initialised as
    ``binary_mlp(..., seed=seeds[k])``. ``forward(x)`` returns scores (K, N, C).
    """

    def __init__(self, seeds, hidden: int, in_features: int = 64, num_classes: int = 10, input_bits: int = 8):
        super().__init__()
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise TypeError(f"seeds must be a non-empty list of ints (one per member), got {seeds!r}")
        seeds = [require_int(s, "seeds", minimum=0) for s in seeds]
        self.hidden = require_int(hidden, "hidden", minimum=1)
        self.in_features = require_int(in_features, "in_features", minimum=1)
        self.num_classes = require_int(num_classes, "num_classes", minimum=2)
        self.input_bits = require_bits(input_bits, "input_bits")
        members = [deploy.binary_mlp(in_features, (hidden, hidden), num_classes, input_bits, seed=s) for s in seeds]
        self.k = len(seeds)
        self.input_code = deploy.InputCode(input_bits)
        self.sign = qnn.SignQuantizer()
        linears = [[m[i] for m in members] for i in (0, 2, 4)]
        self.weights = nn.ParameterList([nn.Parameter(torch.stack([l.weight.detach() for l in ls])) for ls in linears])
        widths = (hidden, hidden, num_classes)
        self.norms = nn.ModuleList([nn.BatchNorm1d(self.k * w) for w in widths])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_code(x)  # (N, d) integer codes
        for i, (w, bn) in enumerate(zip(self.weights, self.norms)):
            s = torch.einsum("nd,kod->kno", h, self.sign(w)) if i == 0 else torch.einsum("knd,kod->kno", h, self.sign(w))
            k, n, o = s.shape
            s = bn(s.permute(1, 0, 2).reshape(n, k * o)).reshape(n, k, o).permute(1, 0, 2)
            h = self.sign(s) if i < 2 else s
        return h


def fit_bagged(model: StackedBinaryMLP, data: Split, counts: torch.Tensor, epochs: int = 10, lr: float = 3e-3,
               batch_size: int = 128, seed: int = 0, weight_clip: float = 1.0) -> StackedBinaryMLP:
    r"""Train every member :math:`k` on its bootstrap sample, given as example counts :math:`c_{k,i}`.

    .. math:: L = \sum_{k=1}^{K} \frac{1}{|B|} \sum_{i \in B} c_{k,i}\, \operatorname{CE}(z_{k,i}, y_i)

    per mini-batch :math:`B` (the batches are shared, their weights are not). The members' parameters are
    disjoint, so the sum trains each member exactly as alone on its weighted loss; Adam is per parameter, so its
    steps are those of separate runs. The weighted loss is the bootstrap sample's loss, except that batch norm's
    training-mode batch statistics are unweighted (our simplification). Latent weights clipped to :math:`\pm` ``weight_clip`` (BNN). A row of ones
    is the plain training set. Returns ``model`` in eval mode.
    """
    if not isinstance(model, StackedBinaryMLP):
        raise TypeError(f"model must be a StackedBinaryMLP, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    require_integer_tensor(counts, "counts")
    if tuple(counts.shape) != (model.k, len(data.x_train)):
        raise ValueError(f"counts must have shape (K, n) = {(model.k, len(data.x_train))}, got {tuple(counts.shape)}")
    epochs, batch_size = require_int(epochs, "epochs", minimum=1), require_int(batch_size, "batch_size", minimum=1)
    lr, weight_clip = require_positive_number(lr, "lr"), require_positive_number(weight_clip, "weight_clip")
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    weights, n = counts.float(), len(data.x_train)
    for _ in range(epochs):
        model.train()
        for idx in train.minibatches(n, batch_size, generator):
            z = model(data.x_train[idx])  # (K, B, C)
            y = data.y_train[idx].expand(model.k, -1)
            ce = nn.functional.cross_entropy(z.flatten(0, 1), y.flatten(), reduction="none").view(model.k, -1)
            loss = (weights[:, idx] * ce).sum() / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for w in model.weights:
                    w.clamp_(-weight_clip, weight_clip)
    return model.eval()


def unstack(model: StackedBinaryMLP) -> list[nn.Sequential]:
    """The members as separate :func:`qteach.deploy.binary_mlp` models (weights, BN parameters and running
    statistics copied), ready for :func:`qteach.deploy.export`; in eval mode."""
    if not isinstance(model, StackedBinaryMLP):
        raise TypeError(f"model must be a StackedBinaryMLP, got {type(model).__name__}")
    out = []
    for k in range(model.k):
        m = deploy.binary_mlp(model.in_features, (model.hidden, model.hidden), model.num_classes, model.input_bits)
        for i, (w, bn) in enumerate(zip(model.weights, model.norms)):
            o = w.shape[1]
            m[2 * i].weight.data.copy_(w.detach()[k])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(m[2 * i + 1], name).data.copy_(getattr(bn, name).detach()[k * o:(k + 1) * o])
        out.append(m.eval())
    return out


def vote_unit(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""The bagging ensemble unit as hardware: :math:`C` vote counters, then a comparator chain (our design).

    .. math:: v_c = \sum_{k=1}^{K} [\hat y_k = c], \qquad
        \hat y = \arg\max_c v_c \ \text{(first maximum wins)}

    Each member pipeline's label increments one counter of :math:`\lceil \log_2 (K+1) \rceil` bits; the chain
    keeps the running best and replaces it only on a strictly larger count, so a tie goes to the smallest class,
    as :func:`qteach.papers.binary_ensemble.hard_vote`. ``labels`` int (K, N); returns int64 (N,).
    """
    require_integer_tensor(labels, "labels")
    require_ndim(labels, "labels", 2)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    if bool((labels < 0).any()) or bool((labels >= num_classes).any()):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}]")
    votes = torch.zeros(num_classes, labels.shape[1], dtype=torch.int64)
    for member_labels in labels:  # one counter increment per member and sample
        votes[member_labels, torch.arange(labels.shape[1])] += 1
    best = torch.zeros(labels.shape[1], dtype=torch.int64)
    for c in range(1, num_classes):  # comparator chain, strict >
        best = torch.where(votes[c] > votes[best, torch.arange(labels.shape[1])], c, best)
    return best


def bagged_predict(packed: list, x: torch.Tensor) -> torch.Tensor:
    """Run :math:`K` packed member pipelines (:class:`qteach.deploy.PackedNetwork`, XNOR-popcount with integer
    thresholds) on ``x`` and aggregate their labels in :func:`vote_unit`; int64 (N,)."""
    if not isinstance(packed, (list, tuple)) or not packed or not all(
            isinstance(p, deploy.PackedNetwork) for p in packed):
        raise TypeError("packed must be a non-empty list of qteach.deploy.PackedNetwork")
    scores = [p(x) for p in packed]
    return vote_unit(torch.stack([s.argmax(1) for s in scores]), scores[0].shape[1])


def pipeline_cost(hidden: int, k: int, in_features: int = 64, num_classes: int = 10, input_bits: int = 8,
                  constants: dict | None = None) -> dict:
    r"""Cycles and energy per image of :math:`K` member pipelines side by side plus the vote unit (our model).

    Each member is a three-stage pipeline, one stage per layer, with ``lanes`` binary MACs per cycle; the first
    layer runs its :math:`b` input bit planes (:func:`qteach.deploy.bitplane_matmul`). Stage :math:`l` takes
    :math:`t_l = \lceil b_l\, n_{in} n_{out} / \text{lanes} \rceil` cycles, so

    .. math:: \text{II} = \max_l t_l, \qquad \text{latency} = \sum_l t_l + C, \qquad
        E = K \big(N_{\text{MAC}}\, e_{\text{MAC}} + M(h)\, e_{\text{bit}}\big)

    (the :math:`C`-step comparator chain of :func:`vote_unit` after the last stage). The :math:`K` pipelines run in
    parallel, so II and latency do not grow with :math:`K`; lanes, memory and energy do. ``constants``
    overrides keys of :data:`ASSUMED`. Returns a dict of ints and floats.
    """
    hidden = require_int(hidden, "hidden", minimum=1)
    k = require_int(k, "k", minimum=1)
    in_features = require_int(in_features, "in_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    input_bits = require_bits(input_bits, "input_bits")
    constants = {**ASSUMED, **(constants or {})}
    if set(constants) != set(ASSUMED):
        raise ValueError(f"constants may only override {sorted(ASSUMED)}, got {sorted(constants)}")
    lanes = require_int(constants["lanes"], "lanes", minimum=1)
    macs = [input_bits * in_features * hidden, hidden * hidden, hidden * num_classes]
    stage = [math.ceil(m / lanes) for m in macs]
    bits = member_weight_bits(hidden, in_features, num_classes)
    energy_pj = k * (sum(macs) * constants["mac_pj"] + bits * constants["sram_pj_per_bit"])
    ii = max(stage)
    return {"members": k, "hidden": hidden, "weight_bits": k * bits, "lanes": k * lanes,
            "binary_macs": k * sum(macs), "ii_cycles": ii, "latency_cycles": sum(stage) + num_classes,
            "images_per_s": constants["clock_mhz"] * 1e6 / ii, "energy_nj": energy_pj / 1000}
