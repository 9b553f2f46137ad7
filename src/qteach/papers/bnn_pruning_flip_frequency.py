r"""BNN pruning guided by weight flipping frequency.

Li and Ren (ISQED 2020) argue that magnitude pruning does not apply to binary neural networks: a binary weight is
:math:`\pm 1`, both values are "non-trivial", there is no small weight to remove. They use instead the *weight
flipping frequency*, how often the sign of a latent weight changes during training, "as an indicator of
sensitivity to accuracy" (abstract). Only the abstract and the official code (PSCLab-ASU/BNNPruning, two scripts)
could be read for this book; the equations below are written from that code, and everything else is labelled ours.

**Flip count** (official ``CIFAR_10/main.py``, lines 236-240 and 261: the latent weights at the end of each epoch
are compared with those of the previous epoch). With :math:`W^{(t)}` the latent weights at checkpoint :math:`t`,

.. math:: f_i = \sum_{t=t_0 + 1}^{T} 1\!\left[\operatorname{sign} W_i^{(t)} \ne \operatorname{sign} W_i^{(t-1)}\right],

an exact integer per weight. (The code computes :math:`\tfrac12(1 - \operatorname{sign}(W^{(t)} W^{(t-1)}))`,
which is the same for non-zero weights and :math:`\tfrac12` when one of them is exactly 0; here
:math:`\operatorname{sign}(0) = +1` as everywhere in the book, so every count is an integer.)

**Pruning rule** (official ``CIFAR_10/run.py``, lines 211-224): the counts are taken over a late window of
training (the difference of the counts at epochs 319 and 300), weights that never flipped in it are kept, and each
weight that flipped is pruned with probability :math:`\tfrac12` (:func:`official_keep_mask`). So it is the weights
that flip *most* that are pruned: a weight whose sign keeps changing sits near zero and the loss hardly cares
which sign it has. To prune at a chosen ratio we rank instead (ours): :func:`prune_mask` removes the given
fraction of the binary weights of each layer with the highest flip count, against the smallest latent magnitude
and a random choice. A pruned binary weight is 0: its XNOR-popcount operation is skipped.

References:

- Y. Li, F. Ren, *BNN Pruning: Pruning Binary Neural Network Guided by Weight Flipping Frequency*, ISQED 2020,
  pp. 306-311, doi:10.1109/ISQED48828.2020.9136977. Code: https://github.com/PSCLab-ASU/BNNPruning.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops, train
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_integer_tensor,
    require_non_negative_number,
    require_str,
    require_weights,
)
from qteach.data import Split

__all__ = [
    "METHODS",
    "FlipBinaryMLP",
    "FlipCounter",
    "MaskedSignLinear",
    "flip_indicator",
    "masked_xnor_matmul",
    "official_keep_mask",
    "prune",
    "prune_mask",
    "pruning_scores",
    "train_counting_flips",
    "xnor_popcount_ops",
]

METHODS = ("flip", "magnitude", "random")


def flip_indicator(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    r"""1 where the binary weight changed sign between two checkpoints, else 0 (int64):
    :math:`1[\operatorname{sign} W^{(t)} \ne \operatorname{sign} W^{(t-1)}]`, with :math:`\operatorname{sign}(0) = +1`."""
    require_weights(previous, "previous")
    require_weights(current, "current")
    if previous.shape != current.shape:
        raise ValueError(f"previous and current must have the same shape, got {tuple(previous.shape)} "
                         f"and {tuple(current.shape)}")
    return (binary.sign(previous) != binary.sign(current)).to(torch.int64)


class FlipCounter:
    """Counts the sign flips of each weight of ``weights`` (a list of parameters) between successive calls of
    :meth:`update`: ``counts[l][i]`` is :math:`f_i` of layer ``l``, an exact integer."""

    def __init__(self, weights: list):
        if not isinstance(weights, (list, tuple)) or not weights:
            raise TypeError("weights must be a non-empty list of weight tensors")
        self.weights = [require_weights(w, "weights") for w in weights]
        self.last = [w.detach().clone() for w in self.weights]
        self.counts = [torch.zeros(w.shape, dtype=torch.int64) for w in self.weights]
        self.checkpoints = 0

    def update(self, *_) -> None:
        """Compare every weight with its previous checkpoint and add the flips (extra arguments are ignored, so
        ``update`` can be an ``after_step`` hook)."""
        for count, last, w in zip(self.counts, self.last, self.weights):
            count += flip_indicator(last, w.detach())
            last.copy_(w.detach())
        self.checkpoints += 1


def official_keep_mask(flips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The official code's mask (``run.py`` lines 218-224): keep (1) every weight with no flip in the window;
    keep each weight that flipped with probability :math:`\tfrac12`, prune (0) it otherwise."""
    require_integer_tensor(flips, "flips")
    if bool((flips < 0).any()):
        raise ValueError("flips must be non-negative counts")
    never = flips == 0
    coin = torch.rand(flips.shape, generator=generator) >= 0.5
    return (never | coin).to(torch.float32)


def pruning_scores(method: str, weight: torch.Tensor, flips: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""How prunable each binary weight is (higher: pruned first). ``"flip"``: the flip count :math:`f_i` (the
    paper); ``"magnitude"``: :math:`-|W_i|`, the latent magnitude (ours, the full-precision habit);
    ``"random"``: uniform noise."""
    if require_str(method, "method") not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    require_weights(weight, "weight")
    if method == "flip":
        require_integer_tensor(flips, "flips")
        if flips.shape != weight.shape:
            raise ValueError(f"flips must have the shape of weight {tuple(weight.shape)}, got {tuple(flips.shape)}")
        return flips.to(torch.float64)
    if method == "magnitude":
        return -weight.detach().abs().to(torch.float64)
    return torch.rand(weight.shape, generator=generator, dtype=torch.float64)


def prune_mask(scores: torch.Tensor, fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A 0/1 float mask that prunes ``round(fraction * n)`` of the ``n`` entries, those with the highest
    ``scores``; ties are broken at random (``generator``), so equal counts are not pruned in index order."""
    require_float_tensor(scores, "scores")
    fraction = require_non_negative_number(fraction, "fraction")
    if fraction > 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    flat = scores.detach().flatten()
    shuffle = torch.randperm(flat.numel(), generator=generator)
    order = shuffle[torch.sort(flat[shuffle], descending=True, stable=True).indices]
    mask = torch.ones(flat.numel(), dtype=torch.float32)
    mask[order[:round(fraction * flat.numel())]] = 0.0
    return mask.reshape(scores.shape)


def masked_xnor_matmul(a: torch.Tensor, w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""The pruned binary layer as XNOR-popcount: output :math:`j` is the popcount dot product of
    :math:`\operatorname{sign}(a)` and :math:`\operatorname{sign}(W_{j,:})` over the kept inputs of row
    :math:`j` only (:func:`qteach.bitops.xnor_matmul`, row by row). Exactly
    :math:`\operatorname{sign}(a)\,(\operatorname{sign}(W) \odot M)^\top` (int32)."""
    require_float_tensor(a, "a")
    require_weights(w, "w")
    require_float_tensor(mask, "mask")
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[1] or mask.shape != w.shape:
        raise ValueError(f"a (M, K), w (N, K) and mask (N, K) must agree, got {tuple(a.shape)}, "
                         f"{tuple(w.shape)}, {tuple(mask.shape)}")
    out = torch.zeros(a.shape[0], w.shape[0], dtype=torch.int32)
    for j in range(w.shape[0]):
        kept = mask[j].bool()
        if kept.any():
            out[:, j] = bitops.xnor_matmul(a[:, kept], w[j:j + 1, kept])[:, 0]
    return out


class MaskedSignLinear(nn.Linear):
    r"""A binary layer :math:`y = x\,(\operatorname{sign}(W) \odot M)^\top + b` (STE, clip 1) with a 0/1 pruning
    mask :math:`M` (a buffer, all ones until pruned). A pruned weight gets no gradient."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(require_int(in_features, "in_features", 1), require_int(out_features, "out_features", 1))
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def forward(self, x):
        return F.linear(x, binary.ste_sign(self.weight) * self.mask, self.bias)


class FlipBinaryMLP(nn.Module):
    r"""``in -> hidden -> ... -> classes``: a real first layer (it reads pixels), then binary layers
    (:class:`MaskedSignLinear`) between the hidden layers, each hidden layer followed by batch norm and a sign
    activation (STE), and a real classifier. The binary layers are the ones that are counted and pruned."""

    def __init__(self, in_features: int = 64, hidden: tuple = (128, 128, 128), num_classes: int = 10,
                 seed: int = 0):
        super().__init__()
        require_int(in_features, "in_features", minimum=1)
        if not isinstance(hidden, tuple) or len(hidden) < 2:
            raise TypeError(f"hidden must be a tuple of at least two widths, got {hidden!r}")
        widths = [require_int(h, "hidden", minimum=1) for h in hidden]
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        self.first = nn.Linear(in_features, widths[0])
        self.binary = nn.ModuleList(MaskedSignLinear(a, b) for a, b in itertools.pairwise(widths))
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in widths)
        self.classifier = nn.Linear(widths[-1], require_int(num_classes, "num_classes", minimum=2))

    def forward(self, x):
        x = binary.ste_sign(self.norms[0](self.first(x)))
        for layer, norm in zip(self.binary, self.norms[1:]):
            x = binary.ste_sign(norm(layer(x)))
        return self.classifier(x)


def xnor_popcount_ops(model: FlipBinaryMLP) -> int:
    """XNOR-popcount operations per sample of the binary layers: one per kept binary weight."""
    if not isinstance(model, FlipBinaryMLP):
        raise TypeError(f"model must be a FlipBinaryMLP, got {type(model).__name__}")
    return int(sum(int(layer.mask.sum()) for layer in model.binary))


def train_counting_flips(model: FlipBinaryMLP, data: Split, epochs: int = 20, window: int = 5, lr: float = 0.01,
                         batch_size: int = 64, seed: int = 0, every: str = "epoch") -> FlipCounter:
    """Train ``model`` (Adam) for ``epochs`` and count the flips of its binary weights during the last ``window``
    epochs, between checkpoints taken at the end of every epoch (``every="epoch"``, as the official code) or after
    every optimizer step (``every="step"``, ours). Returns the :class:`FlipCounter`."""
    if not isinstance(model, FlipBinaryMLP):
        raise TypeError(f"model must be a FlipBinaryMLP, got {type(model).__name__}")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    epochs = require_int(epochs, "epochs", minimum=1)
    window = require_int(window, "window", minimum=1, maximum=epochs)
    if require_str(every, "every") not in ("epoch", "step"):
        raise ValueError(f"every must be 'epoch' or 'step', got {every!r}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    counter = None
    for epoch in range(epochs):
        if epoch == epochs - window:
            counter = FlipCounter([layer.weight for layer in model.binary])
        per_step = counter.update if counter is not None and every == "step" else None
        train.fit(model, data, epochs=1, batch_size=batch_size, seed=seed * 1000 + epoch, progress=False,
                  optimizer=lambda _: opt, after_step=per_step)
        if counter is not None and every == "epoch":
            counter.update()
    return counter


def prune(model: FlipBinaryMLP, fraction: float, method: str, flips: list | None = None, seed: int = 0) -> None:
    """Set the mask of every binary layer of ``model`` to prune ``fraction`` of its weights by ``method``
    (:func:`pruning_scores`, :func:`prune_mask`); ``flips`` holds one count tensor per binary layer."""
    if not isinstance(model, FlipBinaryMLP):
        raise TypeError(f"model must be a FlipBinaryMLP, got {type(model).__name__}")
    if method == "flip" and (not isinstance(flips, (list, tuple)) or len(flips) != len(model.binary)):
        raise TypeError(f"flips must be a list of {len(model.binary)} count tensors for method 'flip'")
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    for i, layer in enumerate(model.binary):
        scores = pruning_scores(method, layer.weight, flips[i] if method == "flip" else None, generator)
        layer.mask.copy_(prune_mask(scores, fraction, generator))
