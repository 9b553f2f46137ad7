r"""Group-Net: a full-precision group rebuilt from K binary branches (structure approximation).

Zhuang, Shen, Tan, Liu and Reid contrast two ways of spending K times the binary work of a plain binary network.
*Value approximation* (ABC-Net, :mod:`qteach.papers.abc_net`) keeps the architecture and approximates each weight
or activation tensor by several binary tensors. *Structure approximation* keeps every tensor 1-bit and changes the
architecture: the network is divided into groups, and "each full-precision group can be effectively
reconstructed by aggregating a set of homogeneous binary branches" (abstract). Written as a formula, a group
:math:`F` (here: a block of binary layers) is replaced by

.. math:: F(x) \approx \sum_{k=1}^{K} \lambda_k\, B_k(x)

where each branch :math:`B_k` has the group's shape, 1-bit weights and 1-bit activations, its own weights, and
:math:`\lambda_k` is a learned real scale per branch (:class:`GroupBlock`, :func:`group_output`). Each binary
layer of a branch computes :math:`\operatorname{sign}(x)\operatorname{sign}(W)^\top`, which is an
XNOR-popcount (:func:`branch_preactivation`, equal to :func:`qteach.bitops.xnor_matmul`).

What this module could check: the abstract and introduction of the paper (arXiv 1811.10413; CVF abstract).
What it could not: the method section, so **no equation numbers are cited**; the formula above is the abstract's
sentence written as a sum, not a transcription of a numbered equation. The paper's soft-connection between
groups, its group granularity (layer-wise vs group-wise), its initial :math:`\lambda_k`, where BatchNorm sits and
whether the first and last layers stay full precision are this module's choices, not verified. No official code
is linked in the catalog.

References:

- Zhuang, Shen, Tan, Liu, Reid, *Structured Binary Neural Networks for Accurate Image Classification and
  Semantic Segmentation*, CVPR 2019. https://arxiv.org/abs/1811.10413
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary, bitops
from qteach import nn as qnn
from qteach._validate import require_float_tensor, require_int
from qteach.papers import abc_net

__all__ = [
    "branch_preactivation",
    "group_output",
    "binary_layer",
    "GroupBlock",
    "group_net_mlp",
    "abc_net_mlp",
    "binary_ops",
]


def _require_matrix(x, name: str) -> torch.Tensor:
    require_float_tensor(x, name)
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor (rows, features), got shape {tuple(x.shape)}")
    return x


def branch_preactivation(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""One binary layer of a branch: :math:`\operatorname{sign}(x)\operatorname{sign}(W)^\top` in float32
    (``x``: (M, n), ``w``: (out, n)). Its integer values equal ``bitops.xnor_matmul(x, w)``, the
    XNOR-popcount :math:`n - 2\,\operatorname{popcount}(\text{bits}(x) \oplus \text{bits}(w))`."""
    _require_matrix(x, "x")
    _require_matrix(w, "w")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must have the same number of columns, got {x.shape[1]} and {w.shape[1]}")
    return binary.sign(x) @ binary.sign(w).T


def group_output(x: torch.Tensor, weights: torch.Tensor, scales: torch.Tensor, xnor: bool = False) -> torch.Tensor:
    r"""A one-layer group: :math:`\sum_{k=1}^{K} \lambda_k \operatorname{sign}(x)\operatorname{sign}(W_k)^\top`.

    ``weights``: (K, out, n), one latent weight matrix per branch; ``scales``: (K,), the :math:`\lambda_k`.
    ``xnor=True`` computes each branch with :func:`qteach.bitops.xnor_matmul` (packed bits), else in float;
    both give the same result up to float rounding of the final scaled sum."""
    _require_matrix(x, "x")
    require_float_tensor(weights, "weights")
    require_float_tensor(scales, "scales")
    if weights.dim() != 3 or weights.shape[2] != x.shape[1]:
        raise ValueError(f"weights must have shape (K, out, {x.shape[1]}), got {tuple(weights.shape)}")
    if scales.shape != (weights.shape[0],):
        raise ValueError(f"scales must have shape ({weights.shape[0]},) (one per branch), got {tuple(scales.shape)}")
    out = torch.zeros(x.shape[0], weights.shape[1], dtype=x.dtype)
    for lam, w in zip(scales, weights):
        branch = bitops.xnor_matmul(x, w).to(x.dtype) if xnor else branch_preactivation(x, w)
        out = out + lam * branch
    return out


def binary_layer(in_features: int, out_features: int, weight_quantizer=None, input_quantizer=None) -> nn.Sequential:
    """A binary layer of a branch: 1-bit input and 1-bit weights (``qnn.SignQuantizer``, clipped STE, by
    default), no bias, then BatchNorm (which absorbs a per-output scale, as XNOR-Net's :math:`\\alpha`)."""
    weight_quantizer = weight_quantizer if weight_quantizer is not None else qnn.SignQuantizer()
    input_quantizer = input_quantizer if input_quantizer is not None else qnn.SignQuantizer()
    return nn.Sequential(qnn.QuantLinear(in_features, out_features, bias=False, weight_quantizer=weight_quantizer,
                                         input_quantizer=input_quantizer), nn.BatchNorm1d(out_features))


class GroupBlock(nn.Module):
    r"""A group approximated by K binary branches, :math:`\sum_k \lambda_k B_k(x)`.

    Each branch :math:`B_k` is ``depth`` binary layers of width ``width`` (:func:`binary_layer`), made by
    ``make_layer(in, out)``; :math:`\lambda_k` are ``nn.Parameter`` s, initialised to :math:`1/K` (this module's
    choice). ``binary=False`` gives the full-precision group (one float branch, ReLU between layers)."""

    def __init__(self, width: int, num_branches: int = 1, depth: int = 2, binary: bool = True, make_layer=None):
        super().__init__()
        width = require_int(width, "width", minimum=1)
        k = require_int(num_branches, "num_branches", minimum=1, maximum=64)
        depth = require_int(depth, "depth", minimum=1, maximum=16)
        if binary:
            make_layer = make_layer or binary_layer
            branches = [nn.Sequential(*[make_layer(width, width) for _ in range(depth)]) for _ in range(k)]
        else:
            layers = []
            for _ in range(depth):
                layers += [nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
            branches = [nn.Sequential(*layers[:-1]) for _ in range(k)]
        self.branches = nn.ModuleList(branches)
        self.scales = nn.Parameter(torch.full((k,), 1.0 / k))

    def forward(self, x):
        return sum(lam * branch(x) for lam, branch in zip(self.scales, self.branches))


def group_net_mlp(in_features: int = 64, width: int = 64, num_classes: int = 10, num_branches: int = 1,
                  depth: int = 2, binary: bool = True, make_layer=None, seed: int = 0) -> nn.Sequential:
    """Float input layer -> one group of K binary branches -> float classifier.

    The first and last layers stay full precision (this module's choice, usual in BNN papers); ``binary=False``
    is the full-precision network of the same shape; ``num_branches=1`` is a plain binary network."""
    torch.manual_seed(require_int(seed, "seed", minimum=0))
    width = require_int(width, "width", minimum=1)
    return nn.Sequential(nn.Flatten(), nn.Linear(require_int(in_features, "in_features", minimum=1), width),
                         nn.BatchNorm1d(width),
                         GroupBlock(width, num_branches, depth, binary, make_layer),
                         nn.ReLU(), nn.Linear(width, require_int(num_classes, "num_classes", minimum=2)))


def abc_net_mlp(in_features: int = 64, width: int = 64, num_classes: int = 10, weight_bases: int = 2,
                activation_bases: int = 1, depth: int = 2, seed: int = 0) -> nn.Sequential:
    """The same network with ONE branch whose binary layers use ABC-Net's M weight bases and N activation bases
    (:class:`qteach.papers.abc_net.ABCWeightQuantizer`, :class:`~qteach.papers.abc_net.ABCActivationQuantizer`):
    M x N binary products per weight, the cost of a Group-Net with K = M x N branches."""
    m = require_int(weight_bases, "weight_bases", minimum=1, maximum=32)
    n = require_int(activation_bases, "activation_bases", minimum=1, maximum=32)

    def make_layer(i, o):
        return binary_layer(i, o, abc_net.ABCWeightQuantizer(m), abc_net.ABCActivationQuantizer(n))

    return group_net_mlp(in_features, width, num_classes, 1, depth, True, make_layer, seed)


def binary_ops(width: int, depth: int = 2, num_branches: int = 1, weight_bases: int = 1,
               activation_bases: int = 1) -> int:
    r"""Binary multiply-accumulates (XNOR-popcount bit operations) per sample of the group:
    :math:`K \cdot M \cdot N \cdot \text{depth} \cdot \text{width}^2`. Group-Net uses K branches with
    M = N = 1; ABC-Net one branch with M weight and N activation bases."""
    factors = [require_int(v, name, minimum=1) for v, name in
               ((width, "width"), (depth, "depth"), (num_branches, "num_branches"),
                (weight_bases, "weight_bases"), (activation_bases, "activation_bases"))]
    w, d, k, m, n = factors
    return k * m * n * d * w * w
