r"""Dual Path Binary Neural Network: an exploration of what the title suggests (no source was found).

**What could be read.** Nothing beyond the title and a venue: the awesome-model-quantization list gives
"Dual Path Binary Neural Network", ISOCC 2019 (IEEE Xplore document 9027649). No abstract, text, figure or code
of the paper could be found for this book (stored pages, documentation, code and issue searches return only the
unrelated Dual Path Networks of Chen et al., 2017, and other BNN papers). Authors, method and results are
therefore **unknown**, and nothing in this module is the paper's method.

**Our exploration (not the paper's).** A "dual path" binary layer, as the title suggests it, feeds the same
real input through two binary paths and adds their outputs. We take two binary paths that binarize the input
at two thresholds :math:`\pm\delta`, each with its own binary weights:

.. math:: y = \operatorname{sign}(W_1)\,\operatorname{sign}(h + \delta)
    + \operatorname{sign}(W_2)\,\operatorname{sign}(h - \delta)

(:class:`DualPathLinear`). Two exact facts follow (ours, tested):

- the sum of the two paths is *one* binary layer with twice the fan-in: the weights
  :math:`[\operatorname{sign}(W_1), \operatorname{sign}(W_2)]` times the two-bit *thermometer code*
  :math:`[\operatorname{sign}(h + \delta); \operatorname{sign}(h - \delta)]` of the input, so it runs as one
  XNOR-popcount product (:func:`dual_path_xnor`) and costs exactly twice the binary MACs and weight bits of a
  single path of the same width;
- with :math:`\delta = 0` both paths see the same bits and the layer is a single binary-input layer with weights
  :math:`\operatorname{sign}(W_1) + \operatorname{sign}(W_2) \in \{-2, 0, 2\}` (ternary weights).

The fair baseline is therefore a single binary path (BNN, Hubara et al. 2016) *of equal binary cost*
(:func:`equal_cost_width`), not one of equal width. Training uses BNN's sign with the clipped straight-through
estimator for inputs and weights (:class:`qteach.nn.SignQuantizer`) and latent weights clipped to
:math:`[-1, 1]`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, bitops
from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_non_negative_number,
    require_weights,
)

__all__ = [
    "DEFAULT_DELTA",
    "DualPathLinear",
    "ShiftedSign",
    "binary_macs",
    "dual_path_mlp",
    "dual_path_reference",
    "dual_path_xnor",
    "equal_cost_width",
]

DEFAULT_DELTA = 0.5
"""Our choice of threshold offset (an assumption: the paper's layer is unknown)."""


class ShiftedSign(nn.Module):
    r"""Binary input at a threshold: :math:`q(h) = \operatorname{sign}(h - t)` with the clipped
    straight-through estimator :math:`1_{|h - t| \le 1}` (:func:`qteach.binary.ste_sign`). ``precision = 1``."""

    precision = 1

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise TypeError(f"threshold must be a finite number, got {threshold!r}")
        self.threshold = float(threshold)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        require_float_tensor(h, "h")
        return binary.ste_sign(h - self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


def _binary_path(in_features: int, out_features: int, threshold: float) -> qnn.QuantLinear:
    return qnn.QuantLinear(in_features, out_features, bias=False, weight_quantizer=qnn.SignQuantizer(),
                           input_quantizer=ShiftedSign(threshold))


class DualPathLinear(nn.Module):
    r"""Two binary paths at thresholds :math:`\mp\delta` (path 1 at :math:`-\delta`, path 2 at :math:`+\delta`),
    summed (our exploration, not the paper's layer):

    .. math:: y = \operatorname{sign}(W_1)\operatorname{sign}(h + \delta)
        + \operatorname{sign}(W_2)\operatorname{sign}(h - \delta)
    """

    def __init__(self, in_features: int, out_features: int, delta: float = DEFAULT_DELTA):
        super().__init__()
        in_features = require_int(in_features, "in_features", minimum=1)
        out_features = require_int(out_features, "out_features", minimum=1)
        self.delta = require_non_negative_number(delta, "delta")
        self.path1 = _binary_path(in_features, out_features, -self.delta)
        self.path2 = _binary_path(in_features, out_features, self.delta)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.path1(h) + self.path2(h)


def dual_path_reference(h: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, delta: float) -> torch.Tensor:
    r"""The two paths in plain float arithmetic:
    :math:`\operatorname{sign}(h + \delta)\operatorname{sign}(W_1)^\top
    + \operatorname{sign}(h - \delta)\operatorname{sign}(W_2)^\top` (thresholds in the dtype of ``h``,
    products in float64)."""
    require_float_tensor(h, "h")
    require_weights(w1, "w1")
    require_weights(w2, "w2")
    delta = require_non_negative_number(delta, "delta")
    if h.dim() != 2 or w1.dim() != 2 or w1.shape != w2.shape or h.shape[1] != w1.shape[1]:
        raise ValueError(f"h must be (N, K) and w1, w2 both (M, K), got {tuple(h.shape)}, {tuple(w1.shape)}, "
                         f"{tuple(w2.shape)}")
    s = binary.sign
    return (s(h + delta).double() @ s(w1).double().T) + (s(h - delta).double() @ s(w2).double().T)


def dual_path_xnor(h: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, delta: float) -> torch.Tensor:
    r"""The dual-path layer as *one* XNOR-popcount product over the thermometer code (exact, int32):

    .. math:: y = [\operatorname{sign}(W_1), \operatorname{sign}(W_2)]
        \begin{bmatrix} \operatorname{sign}(h + \delta) \\ \operatorname{sign}(h - \delta) \end{bmatrix}
    """
    require_float_tensor(h, "h")
    require_weights(w1, "w1")
    require_weights(w2, "w2")
    delta = require_non_negative_number(delta, "delta")
    if h.dim() != 2 or w1.dim() != 2 or w1.shape != w2.shape or h.shape[1] != w1.shape[1]:
        raise ValueError(f"h must be (N, K) and w1, w2 both (M, K), got {tuple(h.shape)}, {tuple(w1.shape)}, "
                         f"{tuple(w2.shape)}")
    code = torch.cat([h + delta, h - delta], dim=1)
    return bitops.xnor_matmul(code, torch.cat([w1, w2], dim=1))


def equal_cost_width(width: int, paths: int = 2) -> int:
    r"""The width :math:`w'` of a single-path hidden layer whose binary MACs :math:`w'^2` are closest to those
    of ``paths`` paths of width :math:`w`, :math:`p\,w^2` (ties to the smaller width)."""
    width = require_int(width, "width", minimum=1)
    paths = require_int(paths, "paths", minimum=1)
    target = paths * width * width
    low = math.isqrt(target)
    return low if target - low * low <= (low + 1) ** 2 - target else low + 1


def dual_path_mlp(width: int = 48, paths: int = 2, delta: float = DEFAULT_DELTA, in_features: int = 64,
                  num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    r"""The results pages' MLP layout with two binary middle layers: real Linear → BN, then twice
    (binary layer → BN), then a real Linear. ``paths = 1`` is BNN's single path (sign input, sign weights);
    ``paths = 2`` uses :class:`DualPathLinear` with offset ``delta``. ``seed`` fixes the initialisation."""
    width = require_int(width, "width", minimum=1)
    if require_int(paths, "paths", minimum=1) > 2:
        raise ValueError(f"paths must be 1 or 2, got {paths}")
    delta = require_non_negative_number(delta, "delta")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        layers: list[nn.Module] = [nn.Linear(require_int(in_features, "in_features", minimum=1), width),
                                   nn.BatchNorm1d(width)]
        for _ in range(2):
            binary_layer = _binary_path(width, width, 0.0) if paths == 1 else DualPathLinear(width, width, delta)
            layers += [binary_layer, nn.BatchNorm1d(width)]
        layers.append(nn.Linear(width, require_int(num_classes, "num_classes", minimum=2)))
    return nn.Sequential(*layers)


def binary_macs(model: nn.Module) -> int:
    """Binary MACs per sample of ``model`` (= its binary weight bits: each binary weight is used once per sample
    in a linear layer): the sum of ``in_features * out_features`` over its binary-weight ``QuantLinear`` layers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(m.in_features * m.out_features for m in model.modules()
               if isinstance(m, qnn.QuantLinear) and qnn.precision_of(m.weight_quantizer) == 1)
