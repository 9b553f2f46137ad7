r"""Random Partition Relaxation (RPR): binary and ternary weights, a random part relaxed back to float at a time.

Cavigelli and Benini start from a *pre-trained* float network and quantize its weights to binary
(:math:`\{-s, s\}`) or ternary (:math:`\{-s, 0, s\}`) values. Quantizing all of them at once costs accuracy, so
they repeat:

1. **quantize** every weight of a layer to its nearest level (:func:`quantize_nearest`);
2. **relax** a *random* partition of them back to their continuous values (:func:`relaxed_mask`): a fraction
   :math:`1 - \mathrm{FF}` of the weights, :math:`\mathrm{FF}` being the freezing fraction;
3. **retrain** the relaxed weights with SGD/Adam while the others stay frozen at their quantized values;
4. **re-quantize** and draw another partition, with a freezing fraction that grows to 1.

Unlike INQ (:mod:`qteach.papers.incremental_network_quantization`), whose frozen set only grows and whose frozen
values never change, every weight here is re-quantized from its latent continuous value at each step, and any
weight may be relaxed again later.

What could be read: the abstract and the introduction of arXiv 2001.01091; the method section, its equation and
algorithm numbers and the paper's freezing-fraction schedule could not be read. The mechanism below follows the
authors' own code, the ``"RPR"`` strategy of ``INQNodeController.inq_step`` in ETH Zurich's QuantLab
(``quantlib/algorithms/inq/inq_ops.py``, "Copyright (c) 2019 ETH Zurich, Lukas Cavigelli"; read in the
``Xeratec/quantlib`` copy, commit bd5e3a9): the levels are ``linspace(-s, s, num_levels)`` with ``s`` minimising
the quantization error of the pre-trained weights (``quant_init_method="uniform-l2-opt"``), every weight is
re-quantized to its nearest level, and ``int((1 - fraction) * numel)`` random weights are relaxed. The schedule
:data:`SCHEDULE` is ours.

References:

- Cavigelli, Benini, *RPR: Random Partition Relaxation for Training Binary and Ternary Weight Neural Networks*,
  arXiv 2001.01091, 2020. https://arxiv.org/abs/2001.01091
"""

from __future__ import annotations

import itertools
import numbers

import torch
from torch import nn

from qteach import train
from qteach._validate import require_int, require_weights

__all__ = [
    "SCHEDULE",
    "RPRQuantizer",
    "levels_for_bits",
    "optimal_scale",
    "protocol_post_training",
    "quantize_nearest",
    "random_partition_relaxation",
    "relaxed_mask",
    "rpr_step",
    "uniform_levels",
]

SCHEDULE = (0.6, 0.7, 0.8, 0.9, 1.0)
"""Our freezing fractions FF: 40 % of the weights relaxed at first, then 30, 20, 10 and finally 0 %."""


def _require_num_levels(num_levels) -> int:
    num_levels = require_int(num_levels, "num_levels")
    if num_levels not in (2, 3):
        raise ValueError(f"num_levels must be 2 (binary) or 3 (ternary), got {num_levels}")
    return num_levels


def levels_for_bits(w_bits: int) -> int:
    """The number of levels of ``w_bits``-bit RPR weights: 1 bit -> 2 (binary), 2 bits -> 3 (ternary)."""
    w_bits = require_int(w_bits, "w_bits")
    if w_bits not in (1, 2):
        raise ValueError(f"w_bits must be 1 (binary) or 2 (ternary), got {w_bits}")
    return w_bits + 1


def uniform_levels(scale: float, num_levels: int) -> torch.Tensor:
    r"""The sorted levels :math:`\{-s, s\}` (binary) or :math:`\{-s, 0, s\}` (ternary), float64.

    .. math:: \mathcal{Q}_s = \operatorname{linspace}(-s, s, n), \qquad n \in \{2, 3\}
    """
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not scale > 0:
        raise ValueError(f"scale must be a number > 0, got {scale!r}")
    num_levels = _require_num_levels(num_levels)
    return torch.linspace(-float(scale), float(scale), num_levels, dtype=torch.float64)


def quantize_nearest(w: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    r"""Every weight to its nearest level: :math:`q(w) = \arg\min_{l \in \mathcal{Q}} |w - l|`.

    A tie goes to the smaller level, as in the official ``inq_quantize`` (it scans the ascending levels and keeps
    the first minimum). Returns a tensor of ``w``'s dtype.
    """
    require_weights(w)
    if not isinstance(levels, torch.Tensor) or levels.dim() != 1 or levels.numel() < 2:
        raise TypeError("levels must be a 1-D tensor of at least two levels")
    levels = torch.sort(levels.double()).values
    index = torch.argmin((w.detach().double().unsqueeze(-1) - levels).abs(), dim=-1)
    return levels[index].to(w.dtype)


def optimal_scale(w: torch.Tensor, num_levels: int, grid: int = 1000) -> float:
    r"""The scale whose levels quantize ``w`` with the least squared error (the official ``uniform-l2-opt``).

    .. math:: s^\star = \arg\min_{s} \lVert \mathbf{w} - q_{\mathcal{Q}_s}(\mathbf{w}) \rVert_2

    searched on ``grid`` equally spaced candidates in :math:`(0, \max|w|]`, as the official code's brute-force
    search (1000 points; it then refines with a simplex search, left out here). The error of each candidate comes
    from cumulative sums of the sorted magnitudes: the ternary levels send :math:`|w| < s/2` to 0, the rest to
    :math:`\pm s`. For binary levels the exact
    optimum is :math:`\operatorname{mean}|w|` (XNOR-Net's :math:`\alpha`); the grid lands within one spacing.
    """
    require_weights(w)
    num_levels = _require_num_levels(num_levels)
    grid = require_int(grid, "grid", minimum=2)
    top = float(w.detach().abs().max())
    if top == 0.0:
        raise ValueError("w must have at least one non-zero entry")
    a = torch.sort(w.detach().double().abs().flatten()).values
    zero = torch.zeros(1, dtype=torch.float64)
    sum1, sum2 = torch.cat([zero, a.cumsum(0)]), torch.cat([zero, (a * a).cumsum(0)])
    candidates = torch.linspace(top / grid, top, grid, dtype=torch.float64)
    # the k smallest magnitudes (below s/2) go to 0 (ternary only); the others to +-s
    k = torch.searchsorted(a, candidates / 2) if num_levels == 3 else torch.zeros(grid, dtype=torch.long)
    rest = a.numel() - k
    errors = sum2[-1] - 2 * candidates * (sum1[-1] - sum1[k]) + candidates**2 * rest
    return float(candidates[torch.argmin(errors)])


def _require_fraction(fraction, name: str = "freezing_fraction") -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(fraction).__name__}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {fraction}")
    return float(fraction)


def relaxed_mask(shape, freezing_fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""A random partition: ``True`` for the :math:`\lfloor (1 - \mathrm{FF})\, n \rfloor` relaxed weights.

    Drawn afresh at every step, independently of the previous one (``torch.randperm``, as the official code).
    """
    if not isinstance(shape, (tuple, list, torch.Size)) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise TypeError(f"shape must be a tuple of positive ints, got {shape!r}")
    freezing_fraction = _require_fraction(freezing_fraction)
    n = 1
    for d in shape:
        n *= d
    relaxed = torch.zeros(n, dtype=torch.bool)
    relaxed[torch.randperm(n, generator=generator)[:int((1.0 - freezing_fraction) * n)]] = True
    return relaxed.reshape(tuple(shape))


class RPRQuantizer(nn.Module):
    r"""The RPR state of one layer as a weight quantizer: quantized frozen weights, relaxed float weights.

    .. math:: q(\mathbf{W}) = \mathbf{R} \odot \mathbf{W} + (1 - \mathbf{R}) \odot q_{\mathcal{Q}_s}(\mathbf{W})

    with :math:`\mathbf{R}` the relaxed mask of the current step. Before the first :meth:`step` every weight is
    float. The frozen values are stored, so the gradient reaching a frozen latent weight is zero: only the relaxed
    part is retrained. At each :meth:`step` *all* weights are re-quantized from their latent values and a new
    partition is drawn. The scale :math:`s` is set once, at the first step, by :func:`optimal_scale`.
    ``precision``: 1 bit (binary) or 2 bits (ternary).
    """

    def __init__(self, num_levels: int = 3):
        super().__init__()
        self.num_levels = _require_num_levels(num_levels)
        self.precision = 1 if self.num_levels == 2 else 2
        self.scale: float | None = None
        self.register_buffer("relaxed", torch.zeros(0, dtype=torch.bool))
        self.register_buffer("values", torch.zeros(0))

    @property
    def started(self) -> bool:
        return self.relaxed.numel() > 0

    @property
    def freezing_fraction(self) -> float:
        """The fraction of this layer's weights that are quantized and frozen (0 before the first step)."""
        return 1.0 - float(self.relaxed.float().mean()) if self.started else 0.0

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.started and self.relaxed.shape != w.shape:
            raise ValueError(f"this RPRQuantizer holds a mask of shape {tuple(self.relaxed.shape)}, "
                             f"got a weight of shape {tuple(w.shape)}")
        if not self.started:
            return w
        return torch.where(self.relaxed, w, self.values.to(w.dtype))

    @torch.no_grad()
    def step(self, w: torch.Tensor, freezing_fraction: float,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Re-quantize all of ``w``, relax a new random ``1 - freezing_fraction`` of it; returns the relaxed mask."""
        require_weights(w)
        freezing_fraction = _require_fraction(freezing_fraction)
        if self.scale is None:
            self.scale = optimal_scale(w, self.num_levels)
        self.values = quantize_nearest(w, uniform_levels(self.scale, self.num_levels))
        self.relaxed = relaxed_mask(tuple(w.shape), freezing_fraction, generator).to(w.device)
        return self.relaxed

    def extra_repr(self) -> str:
        return f"num_levels={self.num_levels}, scale={self.scale}, freezing_fraction={self.freezing_fraction:.3f}"


def _require_rpr_layers(model: nn.Module) -> list:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layers = [m for m in model.modules() if isinstance(getattr(m, "weight_quantizer", None), RPRQuantizer)]
    if not layers:
        raise ValueError("model has no layer with an RPRQuantizer as weight_quantizer")
    return layers


def rpr_step(model: nn.Module, freezing_fraction: float, generator: torch.Generator | None = None) -> None:
    """One step for every layer of ``model`` with an :class:`RPRQuantizer`: re-quantize, draw a new partition."""
    for layer in _require_rpr_layers(model):
        layer.weight_quantizer.step(layer.weight, freezing_fraction, generator)


def random_partition_relaxation(model: nn.Module, data, schedule=SCHEDULE, epochs: int = 2, lr: float = 1e-3,
                                seed: int = 0, batch_size: int = 64, optimizer: str = "adam",
                                after_step=None) -> list[dict]:
    r"""RPR from a trained model: for each freezing fraction of ``schedule`` (increasing, ending at 1), re-quantize
    every layer, relax a random partition and retrain it for ``epochs`` epochs with a fresh optimiser
    (:func:`qteach.train.fit`; the official controller can clear the optimiser state at each step too). At
    FF = 1 nothing is relaxed and nothing is retrained.

    Returns one record per step: ``freezing_fraction``, the test accuracy right after re-quantizing
    (``quantized``) and after retraining (``retrained``). ``after_step(record, model)`` runs after each step.
    """
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be callable or None, got {type(after_step).__name__}")
    schedule = [_require_fraction(f, "schedule entries") for f in schedule]
    if not schedule or any(b < a for a, b in itertools.pairwise(schedule)) or schedule[-1] != 1.0:
        raise ValueError(f"schedule must be non-decreasing and end at 1.0, got {schedule}")
    _require_rpr_layers(model)
    seed = require_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed)
    records = []
    for n, fraction in enumerate(schedule):
        rpr_step(model, fraction, generator)
        quantized = retrained = train.evaluate(model, data.x_test, data.y_test)
        if fraction < 1.0:
            retrained = train.fit(model, data, epochs=epochs, lr=lr, seed=seed + n, optimizer=optimizer,
                                  batch_size=batch_size, progress=False).final_test_accuracy
        records.append({"freezing_fraction": fraction, "quantized": quantized, "retrained": retrained})
        if after_step is not None:
            after_step(records[-1], model)
    return records


def protocol_post_training(model: nn.Module, w_bits: int, data, seed: int, protocol) -> nn.Module:
    """The results pages' entry (``qteach.comparison``): RPR on a trained protocol model, :data:`SCHEDULE` with 2
    epochs per step (8 epochs of retraining, about a plain run's 10), the protocol's batch size."""
    from qteach.comparison import with_weight_quantizer

    num_levels = levels_for_bits(w_bits)
    with_weight_quantizer(model, lambda: RPRQuantizer(num_levels))
    random_partition_relaxation(model, data, epochs=2, seed=seed, batch_size=protocol.batch_size)
    return model
