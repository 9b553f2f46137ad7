r"""SYQ: symmetric binary or ternary weights with a learned scale per weight subgroup.

Faraone, Fraser, Blott and Leong (CVPR 2018) quantize a layer's weights to a *symmetric* codebook,
:math:`\{-\alpha, +\alpha\}` (binary) or :math:`\{-\alpha, 0, +\alpha\}` (ternary), and learn the scale
:math:`\alpha` by back-propagation, not one per layer but one per *subgroup* of weights chosen by its place in the
weight tensor: per layer, per row of the kernel, or per pixel (kernel position) of a convolution. A finer grouping
approximates the weights better at almost no hardware cost, since every group still holds one value with two signs.

The paper's method section could not be read for this book (only the abstract: arXiv 1807.00301 and the CVF
page), so no equation numbers are quoted. The formulas below are transcribed from the authors' official code,
``julianfaraone/SYQ`` at commit ``10c2c95``, file ``tensorpack/examples/SYQ-AlexNet/quantize.py`` (cited as
``quantize.py:<line>``):

.. math::
    \eta_x = \eta \max_i |W_i| \qquad (\text{quantize.py:13, } \eta = 0.05 \text{ by default})

.. math::
    Q(W_i) = \alpha_{g(i)}^{[|W_i| > \eta_x]}\; \operatorname{sign}(W_i)\; z_i, \qquad
    z_i = \begin{cases} 0 & |W_i| < \eta_x \text{ (ternary)} \\ 1 & \text{otherwise, and always in binary} \end{cases}

(quantize.py:31-47): the "masker" is :math:`\alpha_g` where :math:`|W_i| > \eta_x` and 1 elsewhere, :math:`g(i)` the
group of weight :math:`i`. The backward pass overrides the gradients of ``Sign`` (identity) and of the product
with the stopped mask (``Mul`` treated as ``Add``, quantize.py:44-45), which gives

.. math::
    \frac{\partial L}{\partial W_i} = \frac{\partial L}{\partial Q_i}\, \alpha_{g(i)}^{[|W_i| > \eta_x]}, \qquad
    \frac{\partial L}{\partial \alpha_g} = \sum_{i \in g,\ |W_i| > \eta_x}
    \frac{\partial L}{\partial Q_i} \operatorname{sign}(W_i) z_i .

References:

- Faraone, Fraser, Blott, Leong, *SYQ: Learning Symmetric Quantization For Efficient Deep Neural Networks*,
  CVPR 2018, arXiv:1807.00301.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_bool, require_float_tensor, require_no_nan

__all__ = ["ETA", "GRANULARITIES", "syq_threshold", "group_ids", "num_groups", "syq_quantize",
           "optimal_group_scales", "SYQQuantizer"]

ETA = 0.05
"""The official default threshold factor (``--eta``, syq-alexnet.py:278); the README says ``eta = 0`` for binary."""

GRANULARITIES = ("layer", "row", "pixel")


def _require_weights(w, name: str = "w") -> torch.Tensor:
    require_float_tensor(w, name)
    if w.dim() not in (2, 4) or w.numel() == 0:
        raise ValueError(f"{name} must be a non-empty linear (out, in) or conv (out, in, kh, kw) weight, got shape "
                         f"{tuple(w.shape)}")
    require_no_nan(w, name)
    return w


def _require_eta(eta) -> float:
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not 0 <= eta < 1:
        raise ValueError(f"eta must be a number in [0, 1), got {eta!r}")
    return float(eta)


def _require_granularity(granularity) -> str:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    return granularity


def syq_threshold(w: torch.Tensor, eta: float = ETA) -> torch.Tensor:
    r"""The threshold :math:`\eta_x = \eta \max_i |W_i|` of a layer (quantize.py:13), a 0-d tensor."""
    _require_weights(w)
    eta = _require_eta(eta)
    return eta * w.detach().abs().max()


def num_groups(shape, granularity: str) -> int:
    """How many scales a weight of ``shape`` gets: 1 per layer, ``kh`` per row, ``kh * kw`` per pixel.

    As in the official code, only convolutions are split (``'conv' in name``, quantize.py:17 and 87); a linear
    layer always has one scale (quantize.py:50-62)."""
    _require_granularity(granularity)
    shape = tuple(shape)
    if len(shape) != 4 or granularity == "layer":
        return 1
    return shape[2] if granularity == "row" else shape[2] * shape[3]


def group_ids(shape, granularity: str) -> torch.Tensor:
    r"""The group :math:`g(i)` of every weight (int64, ``shape``).

    A PyTorch conv weight is (out, in, kh, kw); TensorFlow's is (kh, kw, in, out), so the official
    ``x[i, j, :, :]`` (quantize.py:32) is ``w[:, :, i, j]`` here, scale number ``kw * i + j`` (quantize.py:30).
    A row ``i`` (rows_quant, quantize.py:98-102) is ``w[:, :, i, :]``."""
    _require_granularity(granularity)
    shape = tuple(shape)
    ids = torch.zeros(shape, dtype=torch.int64)
    if len(shape) == 4 and granularity != "layer":
        kh, kw = shape[2], shape[3]
        rows = torch.arange(kh).view(1, 1, kh, 1)
        cols = torch.arange(kw).view(1, 1, 1, kw)
        ids = (rows if granularity == "row" else kw * rows + cols).expand(shape).clone()
    return ids


def syq_quantize(w: torch.Tensor, scales: torch.Tensor, eta: float = ETA, ternary: bool = True,
                 granularity: str = "pixel") -> torch.Tensor:
    r"""SYQ's forward and backward pass: :math:`Q(W) = \operatorname{masker} \cdot \operatorname{sign}(W)\, z`.

    ``scales`` holds one :math:`\alpha_g` per group (:func:`num_groups`). Gradients: straight-through (identity)
    to ``w`` through the sign *and* the zero mask, times the masker (quantize.py:44-47); to each :math:`\alpha_g`
    the sum of :math:`\partial L / \partial Q_i \cdot \operatorname{sign}(W_i) z_i` over its weights above
    :math:`\eta_x` (autograd of the product with the masker). ``torch.sign`` as ``tf.sign``: sign(0) = 0.
    """
    _require_weights(w)
    require_float_tensor(scales, "scales")
    eta = _require_eta(eta)
    ternary = require_bool(ternary, "ternary")
    count = num_groups(w.shape, granularity)
    if scales.dim() != 1 or scales.numel() != count:
        raise ValueError(f"scales must be 1-d with {count} values ({granularity}), got shape {tuple(scales.shape)}")
    eta_x = syq_threshold(w, eta)
    with torch.no_grad():
        z = ((w < eta_x) & (w > -eta_x)).logical_not().to(w.dtype) if ternary else torch.ones_like(w)
        signed = torch.sign(w) * z                                  # quantize.py:40-45
    codes = binary.straight_through(w, signed)                      # Sign -> Identity, Mul -> Add
    scaled = (w > eta_x) | (w < -eta_x)                             # quantize.py:32-33
    masker = torch.where(scaled, scales[group_ids(w.shape, granularity).to(w.device)], torch.ones_like(w))
    return codes * masker                                           # quantize.py:47


def optimal_group_scales(w: torch.Tensor, granularity: str, eta: float = ETA, ternary: bool = True) -> torch.Tensor:
    r"""The closed-form scales that minimise :math:`\lVert W - Q(W) \rVert^2` for each group: the mean of
    :math:`|W_i|` over the group's weights above :math:`\eta_x` (as TWN's :math:`\alpha^*_\Delta`, per group).

    The official code starts from the mean of :math:`|W|` over *all* the group's weights (``INITIAL``,
    syq-alexnet.py:36-42), which equals this in binary mode with :math:`\eta = 0`. A group with no weight above
    the threshold gets 0 (the value is unused)."""
    _require_weights(w)
    eta = _require_eta(eta)
    require_bool(ternary, "ternary")
    ids = group_ids(w.shape, granularity).to(w.device).flatten()
    above = (w.detach().abs() > syq_threshold(w, eta)).flatten().to(w.dtype)
    count = num_groups(w.shape, granularity)
    total = torch.zeros(count, dtype=w.dtype, device=w.device).index_add_(0, ids, w.detach().abs().flatten() * above)
    n = torch.zeros(count, dtype=w.dtype, device=w.device).index_add_(0, ids, above)
    return torch.where(n > 0, total / n.clamp(min=1), torch.zeros_like(total))


class SYQQuantizer(nn.Module):
    r"""SYQ weight quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``, with the scales as a parameter.

    ``shape`` is the weight's shape (it fixes the number of scales). The scales start at 1 (the official
    ``INITIAL = False`` path); :meth:`init_scales_` sets them from a trained float weight. ``precision`` is 2 for
    ternary, 1 for binary (plus one float scale per group)."""

    def __init__(self, shape, granularity: str = "pixel", ternary: bool = True, eta: float = ETA):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 4) or min(shape) < 1:
            raise ValueError(f"shape must be a linear (out, in) or conv (out, in, kh, kw) shape, got {shape}")
        _require_granularity(granularity)
        ternary = require_bool(ternary, "ternary")
        eta = _require_eta(eta)
        super().__init__()
        self.shape, self.granularity, self.ternary, self.eta = shape, granularity, ternary, eta
        self.precision = 2 if ternary else 1
        self.scales = nn.Parameter(torch.ones(num_groups(shape, granularity)))

    def init_scales_(self, w: torch.Tensor) -> None:
        """Set the scales to :func:`optimal_group_scales` of ``w`` (in place)."""
        with torch.no_grad():
            self.scales.copy_(optimal_group_scales(w, self.granularity, self.eta, self.ternary))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if tuple(w.shape) != self.shape:
            raise ValueError(f"w must have shape {self.shape}, got {tuple(w.shape)}")
        return syq_quantize(w, self.scales, self.eta, self.ternary, self.granularity)

    def extra_repr(self) -> str:
        return f"granularity={self.granularity!r}, ternary={self.ternary}, eta={self.eta}, groups={self.scales.numel()}"
