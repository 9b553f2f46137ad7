r"""ReBNet: residual binarization of activations with learned scales, and its FPGA cost.

Ghasemzadeh, Samragh and Koushanfar (FCCM 2018; arXiv 1711.01243) keep the weights binary and represent each
*activation* with :math:`M` residual levels instead of one sign. With learned scales
:math:`\gamma_1, \dots, \gamma_M` (one set per layer) the encoder is

.. math::
    r_1 = x, \qquad b_l = \operatorname{sign}(r_l), \qquad r_{l+1} = r_l - \gamma_l b_l, \qquad
    \hat{x} = \sum_{l=1}^{M} \gamma_l b_l

(:func:`residual_binarize`): the first level is an ordinary scaled sign, each further level binarizes what the
previous ones missed. :math:`M = 1` is a binary activation with one learned scale.

**Why it stays binary in hardware.** With binary weights :math:`w_b`, a dot product of the encoded input is

.. math:: \hat{x}^\top w_b = \sum_{l=1}^{M} \gamma_l\, (b_l^\top w_b),

:math:`M` XNOR-popcount passes over the same weights, each an exact integer, combined by :math:`M` scalings
(:func:`residual_linear_xnor`). The accelerator reuses one XNOR-popcount array for the :math:`M` passes, so the
area hardly grows with :math:`M` and the throughput drops by about :math:`M` (:func:`relative_throughput`):
the abstract's "tradeoff between throughput and accuracy while the area overhead of multi-level binarization is
negligible".

**Training** (official Keras code, ``training-software/binarization_utils.py``). The sign is written as
``clip(x, -1, 1) + stop_gradient(sign(clip(x, -1, 1)) - clip(x, -1, 1))`` (lines 22-28): forward the sign,
backward the gradient of the clip, i.e. the straight-through estimator :math:`1_{|r| \le 1}` of BNN. The scales
enter as :math:`|\gamma_l|` (line 44), and the residual update is part of the graph (line 46), so the gradients
are those of the unrolled recursion (:func:`residual_binarize`, :class:`ResidualSign`). The initial scales are
:math:`\gamma_l \propto M - l + 1`, normalised to sum 1 (lines 35-37; :func:`initial_gammas`); a data-driven
initialisation ``set_means`` (lines 53-68) takes the mean of :math:`|r_l|` greedily and normalises it
(:func:`fitted_gammas`). Weights are :math:`|\gamma_w|\operatorname{sign}(W)` with one learned scale per layer
(lines 102-118; :class:`BinaryDense`), and every layer is followed by batch norm with ``eps=1e-4`` and
``momentum=0.1`` (``model_architectures.py`` lines 10-30).

**Hardware encoder** (official HLS code, ``bnn/src/library/hls/matrixvector.h``). After the popcounts of the
:math:`M` input levels are weighted by this layer's :math:`\gamma` (line 165) and batch-normalised (line 175), the
output bits for the next layer are produced one level at a time: bit :math:`=1` if the accumulator is
:math:`> 0`, then the accumulator moves by :math:`\mp\gamma_l` of the next layer (lines 186-187;
:func:`hardware_encode`). This is :func:`residual_binarize` with the tie :math:`r = 0` sent to :math:`-1`.

Differences and what could not be checked: TensorFlow's ``sign(0) = 0``, the HLS encoder sends 0 to the bit 0,
and :func:`qteach.binary.sign` sends 0 to :math:`+1`; the three agree everywhere else. The paper's own equation
numbers and its text beyond the abstract could not be read for this book, so the docstrings cite the official
code by file and line instead of equation numbers.

References:

- M. Ghasemzadeh, M. Samragh, F. Koushanfar, *ReBNet: Residual Binarized Neural Network*, FCCM 2018,
  arXiv:1711.01243.
- Official code: https://github.com/mohaghasemzadeh/ReBNet (Keras training, Vivado HLS accelerator built on
  Xilinx's BNN-PYNQ).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops
from qteach._validate import require_float_tensor, require_int, require_ndim, require_no_nan

__all__ = [
    "initial_gammas",
    "fitted_gammas",
    "ste_binarize",
    "residual_binarize",
    "hardware_encode",
    "residual_linear_xnor",
    "residual_linear_reference",
    "ResidualSign",
    "BinaryDense",
    "rebnet_mlp",
    "xnor_popcount_ops",
    "relative_throughput",
]


def _require_levels(levels) -> int:
    return require_int(levels, "levels", minimum=1)


def _require_gammas(gammas) -> torch.Tensor:
    require_float_tensor(gammas, "gammas")
    if gammas.dim() != 1 or gammas.numel() == 0:
        raise ValueError(f"gammas must be a non-empty 1-d tensor (one scale per level), got shape "
                         f"{tuple(gammas.shape)}")
    require_no_nan(gammas, "gammas")
    return gammas


def initial_gammas(levels: int) -> torch.Tensor:
    r"""The official initial scales: :math:`\gamma_l = (M - l + 1) / \sum_{k=1}^{M} k`, e.g. ``[2/3, 1/3]`` for
    :math:`M = 2` (``binarization_utils.py`` lines 35-37). They decrease, so each level refines the previous."""
    levels = _require_levels(levels)
    ars = torch.arange(levels, 0, -1, dtype=torch.float32)
    return ars / ars.sum()


def fitted_gammas(x: torch.Tensor, levels: int) -> torch.Tensor:
    r"""The data-driven initialisation ``set_means`` (``binarization_utils.py`` lines 53-68): on
    :math:`r_1 = \operatorname{clip}(x, -1, 1)`, take :math:`m_l = \operatorname{mean}|r_l|` (the optimal
    one-bit scale of the residual, as in XNOR-Net), :math:`r_{l+1} = r_l - m_l \operatorname{sign}(r_l)`, and
    return :math:`m / \sum_l m_l`. (The official function normalises to sum 1, so it keeps the *ratios* of the
    greedy scales, not their size.)"""
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    levels = _require_levels(levels)
    resid = x.detach().clamp(-1.0, 1.0)
    means = []
    for _ in range(levels):
        m = resid.abs().mean()
        means.append(m)
        resid = resid - binary.sign(resid) * m
    means = torch.stack(means)
    return means / means.sum()


def ste_binarize(x: torch.Tensor) -> torch.Tensor:
    r"""``binarize`` of the official code (``binarization_utils.py`` lines 22-28): forward
    :math:`\operatorname{sign}(\operatorname{clip}(x, -1, 1))`, backward the gradient of the clip,
    :math:`1_{|x| \le 1}` (the straight-through estimator of BNN)."""
    require_float_tensor(x, "x")
    clipped = x.clamp(-1.0, 1.0)
    return clipped + (binary.sign(clipped) - clipped).detach()


def residual_binarize(x: torch.Tensor, gammas: torch.Tensor) -> tuple[torch.Tensor, list]:
    r"""Residual binarization with :math:`M` = ``len(gammas)`` levels; returns :math:`(\hat{x}, [b_1..b_M])`.

    .. math:: r_1 = x, \quad b_l = \operatorname{sign}(r_l), \quad r_{l+1} = r_l - |\gamma_l| b_l, \quad
        \hat{x} = \sum_l |\gamma_l| b_l

    A line-by-line port of ``Residual_sign.call`` (``binarization_utils.py`` lines 40-47), autograd included:
    the sign back-propagates with :func:`ste_binarize`, and the gradient also flows through every residual
    :math:`r_{l+1}` and every :math:`|\gamma_l|`. The planes :math:`b_l` are returned detached (:math:`\pm 1`).
    """
    require_float_tensor(x, "x")
    _require_gammas(gammas)
    resid, out_bin, planes = x, 0.0, []
    for gamma in gammas.abs():
        b = ste_binarize(resid)
        out = b * gamma
        out_bin = out_bin + out
        resid = resid - out
        planes.append(b.detach())
    return out_bin, planes


def hardware_encode(acc: torch.Tensor, gammas: torch.Tensor) -> list:
    r"""The accelerator's output encoder (``matrixvector.h`` lines 179-190, the update in lines
    186-187): for each level, bit :math:`= [a > 0]`, then
    :math:`a \leftarrow a - \gamma_l` if the bit is 1, else :math:`a + \gamma_l`. Returns the :math:`M` planes
    as :math:`\pm 1` floats (bit 1 = +1). Same as :func:`residual_binarize` except at :math:`a = 0`."""
    require_float_tensor(acc, "acc")
    _require_gammas(gammas)
    acc = acc.detach().clone()
    planes = []
    for gamma in gammas.abs():
        bit = acc > 0
        acc = torch.where(bit, acc - gamma, acc + gamma)
        planes.append(bit.to(acc.dtype) * 2 - 1)
    return planes


def _require_operands(x, w):
    require_float_tensor(x, "x")
    require_ndim(x, "x", 2)
    require_float_tensor(w, "w")
    require_ndim(w, "w", 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but w expects {w.shape[1]} (w is (out, in))")


def residual_linear_xnor(x: torch.Tensor, w: torch.Tensor, gammas: torch.Tensor) -> tuple[torch.Tensor, list]:
    r""":math:`\hat{x}^\top \operatorname{sign}(W)` as :math:`M` binary passes, :math:`\sum_l |\gamma_l|
    \,(b_l \circledast \operatorname{sign}(W))`, each pass an XNOR-popcount product
    (:func:`qteach.bitops.xnor_matmul`, exact int32). ``x`` (N, K), ``w`` (O, K). Returns the float64 output
    and the list of the :math:`M` integer passes. Inference only."""
    _require_operands(x, w)
    _require_gammas(gammas)
    _, planes = residual_binarize(x.detach(), gammas.detach())
    counts = [bitops.xnor_matmul(b, w.detach()) for b in planes]
    out = sum(g.double() * c.double() for g, c in zip(gammas.detach().abs(), counts))
    return out, counts


def residual_linear_reference(x: torch.Tensor, w: torch.Tensor, gammas: torch.Tensor) -> torch.Tensor:
    r"""The float computation the binary passes replace: :math:`\hat{x} \operatorname{sign}(W)^\top` with
    :math:`\hat{x}` from :func:`residual_binarize`, in float64."""
    _require_operands(x, w)
    _require_gammas(gammas)
    approx, _ = residual_binarize(x.detach().double(), gammas.detach().double())
    return approx @ binary.sign(w.detach()).double().T


class ResidualSign(nn.Module):
    r"""``Residual_sign`` of the official code: :math:`M` levels with trainable :math:`\gamma` (initialised by
    :func:`initial_gammas`), forward and backward of :func:`residual_binarize`. ``precision = levels`` bits per
    activation."""

    def __init__(self, levels: int = 2):
        super().__init__()
        self.levels = _require_levels(levels)
        self.precision = self.levels
        self.gammas = nn.Parameter(initial_gammas(self.levels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return residual_binarize(x, self.gammas)[0]

    def extra_repr(self) -> str:
        return f"levels={self.levels}"


class BinaryDense(nn.Module):
    r"""``binary_dense`` of the official code (``binarization_utils.py`` lines 102-118):
    :math:`y = x\,(|\gamma_w| \operatorname{sign}(W))` with one trainable :math:`\gamma_w` (initially 1), weights
    initialised from :math:`\mathcal{N}(0, 1/n_{in})`, the sign through :func:`ste_binarize`. No bias."""

    precision = 1

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = require_int(in_features, "in_features", minimum=1)
        self.out_features = require_int(out_features, "out_features", minimum=1)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features ** 0.5)
        self.gamma = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.gamma.abs() * ste_binarize(self.weight))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def rebnet_mlp(levels: int = 2, in_features: int = 64, hidden: tuple = (256, 256), num_classes: int = 10,
               seed: int = 0) -> nn.Sequential:
    r"""The official MNIST layout (``model_architectures.py`` lines 14-30), narrower: [:class:`BinaryDense` →
    ``BatchNorm1d(eps=1e-4, momentum=0.1)`` → :class:`ResidualSign`] per hidden layer, then
    :class:`BinaryDense` → ``BatchNorm1d``. The input is fed real-valued, as the official code feeds
    :math:`2x - 1` pixels to the first binary layer; scale it to :math:`[-1, 1]` before."""
    levels = _require_levels(levels)
    in_features = require_int(in_features, "in_features", minimum=1)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths, got {type(hidden).__name__}")
    widths = [in_features, *(require_int(h, "hidden", minimum=1) for h in hidden),
              require_int(num_classes, "num_classes", minimum=2)]
    layers: list = [nn.Flatten()]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [BinaryDense(fan_in, fan_out), nn.BatchNorm1d(fan_out, eps=1e-4, momentum=0.1)]
            if index < len(widths) - 2:
                layers.append(ResidualSign(levels))
    return nn.Sequential(*layers)


def xnor_popcount_ops(levels: int, in_features: int, out_features: int) -> int:
    r"""Binary operations of one fully connected layer on :math:`M`-level inputs: :math:`M \cdot K \cdot O`
    XNOR-popcount bit operations (one pass of :math:`K \cdot O` per level)."""
    levels = _require_levels(levels)
    return levels * require_int(in_features, "in_features", minimum=1) * require_int(
        out_features, "out_features", minimum=1)


def relative_throughput(levels: int) -> float:
    r"""Throughput of an :math:`M`-level accelerator relative to :math:`M = 1` with the *same* XNOR-popcount
    array (same PE and SIMD folding): :math:`1/M`, since the :math:`M` passes run one after the other. This is
    the book's first-order model of the paper's throughput/accuracy trade-off (an assumption, not a measured
    number: control, the encoder's :math:`M` comparisons and memory traffic are not in it)."""
    return 1.0 / _require_levels(levels)
