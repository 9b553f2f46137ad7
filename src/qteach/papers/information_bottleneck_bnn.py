r"""The information plane of a binary network: exact entropies by counting codes.

Raj, Nayak and Kalyani (arXiv 2006.07522, 2020) follow each hidden layer :math:`T` of a network during training
in the *information plane* of Shwartz-Ziv and Tishby (arXiv 1703.00810, 2017): the point
:math:`(I(X;T),\, I(T;Y))`, where :math:`X` is the input and :math:`Y` the label. Their abstract reports that a
float network (DNN) first *fits* (:math:`I(T;Y)` grows) and then *compresses* (:math:`I(X;T)` shrinks), while in a
binary network (BNN) the two phases happen *at the same time*.

**What could be read.** The abstract and the first page (title, authors, IIT Madras) of the paper, through
ar5iv, paperswithcode and a document mirror; not the method or experiment sections, and the paper has no
official code. The definitions below are the standard ones of the information-plane literature, written by us;
no equation numbers of the paper are cited.

The key point for binary layers: if :math:`T = f(X)` is a deterministic function with finitely many values (a
binary layer of width :math:`k` has at most :math:`2^k` codes), then with :math:`X` uniform over the :math:`N`
training samples

.. math::
    I(X;T) = H(T) - H(T \mid X) = H(T), \qquad I(T;Y) = H(T) + H(Y) - H(T, Y),

and every entropy is a plug-in sum :math:`H = -\sum_c p_c \log_2 p_c` over the codes :math:`c` that occur, with
:math:`p_c` = (samples with code :math:`c`) / :math:`N`. These are *exact* for the empirical distribution: no
binning, no estimator. A float layer (tanh) takes a different value for almost every sample, so
:math:`H(T) = \log_2 N` and the plane says nothing; the literature bins each unit into equal-width bins first,
and the result depends on the bin width (:func:`binned_information`).

References:

- V. Raj, N. Nayak, S. Kalyani, *Understanding Learning Dynamics of Binary Neural Networks via Information
  Bottleneck*, arXiv 2006.07522, 2020.
- R. Shwartz-Ziv, N. Tishby, *Opening the Black Box of Deep Neural Networks via Information*, arXiv
  1703.00810, 2017.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from qteach import nn as qnn
from qteach import train
from qteach._validate import require_int, require_module, require_str, require_tensor
from qteach.data import Split

KINDS = ("binary", "float")


def _require_codes(t, name: str = "t") -> torch.Tensor:
    require_tensor(t, name)
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, width) tensor of codes, got shape {tuple(t.shape)}")
    if t.is_floating_point() and bool(torch.isnan(t).any()):
        raise ValueError(f"{name} must not contain NaN")
    return t


def _require_labels(y, n: int) -> torch.Tensor:
    require_tensor(y, "y")
    if y.dim() != 1 or len(y) != n:
        raise ValueError(f"y must be a 1-D tensor of {n} labels (one per row of t), got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool or bool((y < 0).any()):
        raise TypeError("y must hold non-negative integer class labels")
    return y


def entropy_bits(counts: torch.Tensor) -> float:
    r"""Entropy in bits of the distribution given by ``counts`` (occurrences of each value; zeros are skipped).

    .. math:: H = -\sum_c p_c \log_2 p_c, \qquad p_c = n_c / \textstyle\sum_{c'} n_{c'}
    """
    require_tensor(counts, "counts")
    if counts.dim() != 1 or counts.numel() == 0 or bool((counts < 0).any()) or float(counts.sum()) <= 0:
        raise ValueError("counts must be a non-empty 1-D tensor of non-negative counts with a positive sum")
    p = counts[counts > 0].double() / counts.sum().double()
    return float(-(p * p.log2()).sum())


def code_ids(t: torch.Tensor) -> torch.Tensor:
    """The index of each row's code among the distinct rows of ``t`` (N, width): equal rows, equal index.

    Each row is read as a mixed-radix number, renumbered before it would overflow int64 (exact, the same
    numbering as ``torch.unique(t, dim=0, return_inverse=True)``, and much faster on wide codes)."""
    _require_codes(t)
    ids, bound = torch.zeros(len(t), dtype=torch.long), 1
    for column in t.T:
        if column.is_floating_point():
            values = torch.unique(column, return_inverse=True)[1]
        else:
            values = column.long() - int(column.min())
        radix = int(values.max()) + 1
        if bound * radix >= 2**62:
            ids = torch.unique(ids, return_inverse=True)[1]
            bound = int(ids.max()) + 1
        ids, bound = ids * radix + values, bound * radix
    return torch.unique(ids, return_inverse=True)[1]


def discrete_information(t: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    r"""Exact :math:`(I(X;T), I(T;Y))` in bits of a deterministic discrete layer, by counting its codes.

    ``t`` (N, width) holds the layer's output for the N samples (each row one code, e.g. :math:`\pm 1` bits),
    ``y`` (N,) their labels; X is uniform over the samples.

    .. math:: I(X;T) = H(T), \qquad I(T;Y) = H(T) + H(Y) - H(T, Y)
    """
    _require_codes(t)
    y = _require_labels(y, len(t))
    ids = code_ids(t)
    h_t = entropy_bits(torch.bincount(ids))
    h_y = entropy_bits(torch.bincount(y))
    h_ty = entropy_bits(torch.bincount(ids * (int(y.max()) + 1) + y))
    return h_t, h_t + h_y - h_ty


def bin_activations(t: torch.Tensor, bins: int, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    r"""Each value's bin among ``bins`` equal-width bins over [``low``, ``high``] (values outside go to the end
    bins), as in Shwartz-Ziv and Tishby's estimate for tanh layers (30 bins over [-1, 1]).

    .. math:: b(t) = \min\big(\lfloor \mathrm{bins}\,(t - \mathrm{low}) / (\mathrm{high} - \mathrm{low})
        \rfloor,\ \mathrm{bins} - 1\big), \text{ clamped to } \ge 0
    """
    _require_codes(t)
    bins = require_int(bins, "bins", minimum=1)
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high):
        raise ValueError(f"low and high must be numbers with low < high, got {low!r} and {high!r}")
    index = torch.floor((t.double() - low) / (high - low) * bins)
    return index.clamp(0, bins - 1).long()


def binned_information(t: torch.Tensor, y: torch.Tensor, bins: int, low: float = -1.0,
                       high: float = 1.0) -> tuple[float, float]:
    r""":math:`(I(X;T), I(T;Y))` of a float layer after binning each unit (:func:`bin_activations`): the plug-in
    estimate of the literature. It depends on ``bins``: with finer bins :math:`I(X;T) \to \log_2 N`."""
    _require_codes(t)
    _require_labels(y, len(t))
    return discrete_information(bin_activations(t, bins, low, high), y)


def ib_mlp(kind: str, widths=(64, 32, 16, 10), num_classes: int = 10) -> nn.Sequential:
    """The MLP of the chapter: hidden layers Linear -> BatchNorm1d -> activation, then a real Linear classifier.

    ``kind="binary"``: binary weights and sign activations, both with the clipped straight-through estimator
    (:class:`qteach.nn.SignQuantizer`), as in Binarized Neural Networks; ``kind="float"``: float weights, tanh.
    """
    kind = require_str(kind, "kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    widths = tuple(require_int(w, "widths", minimum=1) for w in widths)
    if len(widths) < 2:
        raise ValueError("widths must list the input width and at least one hidden width")
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    layers = []
    for a, b in itertools.pairwise(widths):
        if kind == "binary":
            layers += [qnn.QuantLinear(a, b, weight_quantizer=qnn.SignQuantizer()), nn.BatchNorm1d(b),
                       qnn.SignQuantizer()]
        else:
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))


def hidden_layers(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every hidden activation (sign or tanh) of an :func:`ib_mlp`, in eval mode, without grad."""
    require_module(model)
    require_tensor(x, "x")
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            if isinstance(layer, (qnn.SignQuantizer, nn.Tanh)):
                outputs.append(x.clone())
    model.train(was_training)
    return outputs


def record_training(model: nn.Sequential, data: Split, epochs: int, lr: float = 1e-2, batch_size: int = 128,
                    seed: int = 0, weight_clip: float | None = None):
    """Train with :func:`qteach.train.fit` and keep every hidden layer's output on the training set before
    training and after each epoch. Returns ``(history, snapshots)``, ``snapshots[e][l]`` for epoch ``e``."""
    require_module(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    epochs = require_int(epochs, "epochs", minimum=1)
    steps_per_epoch = math.ceil(len(data.x_train) / require_int(batch_size, "batch_size", minimum=1))
    snapshots, steps = [hidden_layers(model, data.x_train)], [0]

    def after_step(m):
        steps[0] += 1
        if steps[0] % steps_per_epoch == 0:
            snapshots.append(hidden_layers(m, data.x_train))

    history = train.fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False,
                        weight_clip=weight_clip, after_step=after_step)
    return history, snapshots


def information_trajectory(snapshots, y: torch.Tensor, bins: int | None = None) -> torch.Tensor:
    """The information plane over training: a tensor (epochs + 1, layers, 2) of (I(X;T), I(T;Y)) in bits.

    ``bins=None`` counts codes exactly (binary layers); an integer bins each unit first (float layers)."""
    if not isinstance(snapshots, (list, tuple)) or not snapshots:
        raise ValueError("snapshots must be the non-empty list returned by record_training")
    if bins is not None:
        bins = require_int(bins, "bins", minimum=1)
    rows = []
    for layers in snapshots:
        info = (discrete_information if bins is None else lambda t, y: binned_information(t, y, bins))
        rows.append([info(t, y) for t in layers])
    return torch.tensor(rows, dtype=torch.float64)


def phases(layer_trajectory: torch.Tensor, level: float = 0.95, tail: int = 3) -> tuple[int, int]:
    """When compression starts and when fitting ends, for one layer's (epochs + 1, 2) trajectory (our reading of
    the phases; the paper's exact criterion could not be read).

    Compression starts at the epoch where I(X;T) is largest; fitting ends at the first epoch where I(T;Y)
    reaches ``level`` times its final value (the mean of the last ``tail`` epochs). Returns both epochs."""
    require_tensor(layer_trajectory, "layer_trajectory")
    if layer_trajectory.dim() != 2 or layer_trajectory.shape[1] != 2:
        raise ValueError(f"layer_trajectory must have shape (epochs + 1, 2), got {tuple(layer_trajectory.shape)}")
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level}")
    tail = require_int(tail, "tail", minimum=1, maximum=len(layer_trajectory))
    compression_start = int(layer_trajectory[:, 0].argmax())
    final = layer_trajectory[-tail:, 1].mean()
    fitting_end = int((layer_trajectory[:, 1] >= level * final).nonzero()[0])
    return compression_start, fitting_end
