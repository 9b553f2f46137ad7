r"""Quantization Networks: the staircase as a sum of sigmoids whose temperature grows until it is the staircase.

Yang, Shen, Xing, Tian, Li, Deng, Huang and Hua (CVPR 2019, arXiv 1911.09464) write a quantizer with the levels
:math:`q_0 < q_1 < \dots < q_n` as a sum of :math:`n` unit steps, and train it as a sum of sigmoids: "a linear
combination of several Sigmoid functions with learnable biases and scales that could be learned in a lossless and
end-to-end manner via continuous relaxation of the steepness of Sigmoid functions" (CVPR abstract).

**The staircase** ((Q1) here; :func:`quantization_function` with ``temperature = inf``):

.. math:: y = \alpha \Big(\sum_{i=1}^{n} s_i\, \mathcal{A}(\beta x - b_i) - o\Big), \qquad
    \mathcal{A}(z) = 1_{z > 0}, \quad s_i = q_i - q_{i-1}, \quad o = -q_0

(for symmetric levels :math:`o = \tfrac12 \sum_i s_i`). **The soft quantization function** ((Q2) here), used
in training, replaces each step by a sigmoid of temperature :math:`T`:

.. math:: y_T = \alpha \Big(\sum_{i=1}^{n} s_i\, \sigma\big(T(\beta x - b_i)\big) - o\Big), \qquad
    \sigma(z) = \frac{1}{1 + e^{-z}}, \qquad \lim_{T \to \infty} y_T = y \ \ (\beta x \ne b_i)

and its gradient is the true one, :math:`\partial y_T / \partial x = \alpha\beta T \sum_i s_i\,\sigma_i(1-\sigma_i)`
(no straight-through estimator). :math:`T` grows during training (:func:`temperature_schedule`); in evaluation
the exact step is used, so the network is evaluated exactly quantized.

**What could be read, and what comes from the code.** We could read the abstract and the introduction (arXiv
1911.09464 via arxiv-vanity and SPIQA, CVPR open-access page), not the method section: (Q1) and (Q2) are numbered
here, not as in the paper, and written from the official code (github.com/aliyun/alibabacloud-quantization-networks,
commit 05522aa): ``anybit.py`` (weights: ``sigmoid_t`` lines 15-27, ``QuaOp.forward`` lines 91-102, offset lines
82-89, :math:`\beta, \alpha` initialisation lines 143-153) and ``models/quantization.py`` (activations: ``SigmoidT``
lines 22-35, ``step`` lines 55-62, hard evaluation lines 131-143). Details taken from that code:
:math:`s_i` are the gaps between the levels; :math:`\beta = \frac{5}{4} q_n / \max|x|` and :math:`\alpha = 1/\beta`
at the start (``threshold = QW_values[-1] * 5 / 4``), both then learned; the biases :math:`b_i` are the boundaries
of a 1-D k-means of :math:`\beta x` into :math:`n + 1` clusters (``tools/cluster.py``, :func:`cluster_biases`) and
stay fixed (the code keeps them as buffers, although the abstract calls them learnable); the temperature grows
linearly with the epoch, :math:`T_e = (e+1)\,T_0` (``quan_weight_main.py`` line 202), capped at 2000
(``anybit.py`` line 143); the code clamps :math:`T(\beta x - b_i)` to :math:`[-10, 10]`, we do not (a difference
below :math:`5 \cdot 10^{-5} s_i`). :math:`o = -q_0` is ours: it gives the code's ``offset`` (half the sum of the
gaps) for its symmetric weight levels and the code's zero offset for activation levels starting at 0.

References:

- J. Yang, X. Shen, J. Xing, X. Tian, H. Li, B. Deng, J. Huang, X.-S. Hua, *Quantization Networks*, CVPR 2019,
  arXiv:1911.09464.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import data as qdata
from qteach import train
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_no_nan,
    require_positive_number,
)

__all__ = [
    "SigmoidQuantizer",
    "activation_levels",
    "cluster_biases",
    "comparison_layer",
    "fit_quantization_network",
    "harden",
    "protocol_fit",
    "quantization_function",
    "set_temperature",
    "temperature_schedule",
    "weight_levels",
]

#: Weight levels of the official code (``tools/cluster.py``: ``Q_values``) by bit width.
WEIGHT_LEVELS = {1: (-1.0, 1.0), 2: (-1.0, 0.0, 1.0), 3: (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)}
#: Temperature cap of the official code (``anybit.py`` line 143).
MAX_TEMPERATURE = 2000.0


def _require_temperature(temperature) -> float:
    if isinstance(temperature, float) and math.isinf(temperature) and temperature > 0:
        return temperature
    return require_positive_number(temperature, "temperature")


def _require_levels(levels) -> torch.Tensor:
    require_float_tensor(levels, "levels")
    if levels.dim() != 1 or len(levels) < 2:
        raise ValueError(f"levels must be a 1-D tensor of at least 2 values, got shape {tuple(levels.shape)}")
    if not bool((levels.diff() > 0).all()):
        raise ValueError(f"levels must be strictly increasing, got {levels.tolist()}")
    return levels


def weight_levels(bits: int) -> torch.Tensor:
    """The official code's weight levels: 1 bit :math:`\\{-1, 1\\}`, 2 bits (ternary) :math:`\\{-1, 0, 1\\}`,
    3 bits :math:`\\{-4, -2, -1, 0, 1, 2, 4\\}`."""
    bits = require_int(bits, "bits", minimum=1)
    if bits not in WEIGHT_LEVELS:
        raise ValueError(f"bits must be one of {sorted(WEIGHT_LEVELS)}, got {bits}")
    return torch.tensor(WEIGHT_LEVELS[bits])


def activation_levels(bits: int) -> torch.Tensor:
    """Unsigned activation levels :math:`\\{0, 1, \\dots, 2^{b} - 1\\}`, as the official ``quan_all_main.py``
    (lines 282-283, ``ac_quan_values``), applied after ReLU."""
    bits = require_int(bits, "bits", minimum=1, maximum=8)
    return torch.arange(2 ** bits, dtype=torch.float32)


def quantization_function(x: torch.Tensor, levels: torch.Tensor, biases: torch.Tensor, temperature: float,
                          alpha=1.0, beta=1.0) -> torch.Tensor:
    r"""(Q2), the soft quantization function; ``temperature = math.inf`` gives the staircase (Q1):

    .. math:: y_T = \alpha \Big(\sum_{i=1}^{n} s_i\, \sigma\big(T(\beta x - b_i)\big) - o\Big), \quad
        s_i = q_i - q_{i-1}, \quad o = -q_0

    ``levels`` are :math:`q_0 < \dots < q_n`, ``biases`` the :math:`n` values :math:`b_i`; ``alpha``/``beta``
    numbers or tensors (learnable). At :math:`T = \infty` the step is :math:`1_{\beta x > b_i}` (``torch.gt``, as the
    official ``step``)."""
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    levels = _require_levels(levels)
    require_float_tensor(biases, "biases")
    if biases.shape != (len(levels) - 1,):
        raise ValueError(f"biases must have shape ({len(levels) - 1},) for {len(levels)} levels, got "
                         f"{tuple(biases.shape)}")
    temperature = _require_temperature(temperature)
    s, o = levels.diff().to(x.dtype), -levels[0].to(x.dtype)
    z = (beta * x).unsqueeze(-1) - biases.to(x.dtype)
    steps = (z > 0).to(x.dtype) if math.isinf(temperature) else torch.sigmoid(temperature * z)
    return alpha * ((steps * s).sum(-1) - o)


def cluster_biases(values: torch.Tensor, levels: torch.Tensor, iterations: int = 30) -> torch.Tensor:
    r"""The initial biases :math:`b_i` as in the official ``tools/cluster.py`` (``params_cluster``): scale the
    values so that :math:`\max|x| \mapsto \frac54 q_n`, cluster them into :math:`n + 1` groups with 1-D k-means,
    and put each :math:`b_i` halfway between the two sorted values where one cluster ends and the next begins.
    Our k-means is Lloyd's, started at the levels (deterministic); the code uses scikit-learn's ``KMeans``."""
    require_float_tensor(values, "values")
    require_no_nan(values, "values")
    levels = _require_levels(levels)
    iterations = require_int(iterations, "iterations", minimum=1)
    if values.numel() < len(levels):
        raise ValueError(f"values must hold at least {len(levels)} numbers, got {values.numel()}")
    x = values.detach().flatten().double().sort().values
    x = x * (1.25 * levels.abs().max().double() / x.abs().max().clamp(min=1e-12))
    centres = levels.double().clone()
    for _ in range(iterations):
        label = (x[:, None] - centres).abs().argmin(1)
        centres = torch.stack([x[label == k].mean() if (label == k).any() else centres[k]
                               for k in range(len(centres))])
    cut = torch.searchsorted(x, (centres[1:] + centres[:-1]) / 2).clamp(1, len(x) - 1)
    return ((x[cut - 1] + x[cut]) / 2).to(values.dtype)


class SigmoidQuantizer(nn.Module):
    r"""The quantization function (Q2)/(Q1) as a module, for weights or activations.

    ``levels`` fixed; ``alpha`` and ``beta`` learned (``nn.Parameter``); ``biases`` a fixed buffer. On the first
    forward they are initialised from the tensor seen, as in the official code: :math:`\beta = \frac54 q_n /
    \max|x|`, :math:`\alpha = 1/\beta`, :math:`b_i` from :func:`cluster_biases`. In training mode the forward pass is
    the soft function at ``temperature``; in eval mode, or at ``temperature = math.inf``, the exact staircase."""

    def __init__(self, levels: torch.Tensor, temperature: float = 1.0):
        super().__init__()
        self.register_buffer("levels", _require_levels(levels).clone())
        self.register_buffer("biases", torch.zeros(len(levels) - 1))
        self.alpha = nn.Parameter(torch.ones(()))
        self.beta = nn.Parameter(torch.ones(()))
        self.temperature = _require_temperature(temperature)
        self.initialized = False
        self.precision = max(1, math.ceil(math.log2(len(levels))))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set :math:`\\beta, \\alpha, b_i` from ``x`` (the official code's initialisation)."""
        require_float_tensor(x, "x")
        self.beta.fill_(1.25 * self.levels.abs().max().item() / x.abs().max().clamp(min=1e-12).item())
        self.alpha.fill_(1.0 / self.beta.item())
        self.biases.copy_(cluster_biases(x.float(), self.levels))
        self.initialized = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.initialized:
            self.initialize(x)
        temperature = self.temperature if self.training else math.inf
        return quantization_function(x, self.levels, self.biases, temperature, self.alpha, self.beta)

    def extra_repr(self) -> str:
        return f"levels={self.levels.tolist()}, temperature={self.temperature:g}"


def _quantizers(model: nn.Module) -> list:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(m, SigmoidQuantizer)]


def set_temperature(model: nn.Module, temperature: float) -> int:
    """Set the temperature of every :class:`SigmoidQuantizer` of ``model``; returns how many there are."""
    modules = _quantizers(model)
    temperature = _require_temperature(temperature)
    for m in modules:
        m.temperature = temperature
    return len(modules)


def harden(model: nn.Module) -> int:
    r""":math:`T = \infty` in every :class:`SigmoidQuantizer`: the forward pass is the staircase (Q1) even in
    training mode. Returns the count."""
    return set_temperature(model, math.inf)


def temperature_schedule(epoch: int, base: float = 10.0, cap: float = MAX_TEMPERATURE) -> float:
    r"""The official code's schedule (``quan_weight_main.py`` line 202, cap ``anybit.py`` line 143):

    .. math:: T_e = \min\big((e + 1)\, T_0,\ T_{\max}\big)

    for epoch :math:`e = 0, 1, \dots`; ``base`` :math:`T_0` (10 by default in ``quan_all_main.py``, 20 in ``quan-weight.sh``), ``cap`` 2000."""
    epoch = require_int(epoch, "epoch", minimum=0)
    base = require_positive_number(base, "base")
    cap = require_positive_number(cap, "cap")
    return min((epoch + 1) * base, cap)


def fit_quantization_network(model: nn.Module, data, epochs: int = 10, lr: float = 3e-3, batch_size: int = 128,
                             base: float = 10.0, seed: int = 0):
    r"""Train with :func:`qteach.train.fit` (Adam) while every :class:`SigmoidQuantizer` follows
    :func:`temperature_schedule` epoch by epoch; then :func:`harden` the model. The test accuracies of the returned
    :class:`qteach.train.History` are those of the exactly quantized network (eval mode uses the staircase)."""
    if not isinstance(data, qdata.Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    if not _quantizers(model):
        raise ValueError("model has no SigmoidQuantizer to anneal")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    base = require_positive_number(base, "base")
    per_epoch = math.ceil(len(data.x_train) / batch_size)
    step = {"t": 0}
    set_temperature(model, temperature_schedule(0, base))

    def anneal(m):
        step["t"] += 1
        set_temperature(m, temperature_schedule(min(step["t"] // per_epoch, epochs - 1), base))

    history = train.fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                        after_step=anneal, progress=False)
    harden(model)
    return history


def comparison_layer(w_bits: int = 2, a_bits: int = 32):
    r"""``(weight_quantizer, input_quantizer, activation)`` for :class:`qteach.comparison.Method`: weights through
    a :class:`SigmoidQuantizer` with :func:`weight_levels`, and as activation ReLU, followed (``a_bits < 32``) by a
    :class:`SigmoidQuantizer` with :func:`activation_levels`, as in the official ResNet-18 (``models/resnet18_all.py``
    lines 58-62: ReLU, then ``quan1``). Train with :func:`protocol_fit`."""
    w_bits = require_int(w_bits, "w_bits", minimum=1)
    a_bits = require_int(a_bits, "a_bits", minimum=1)
    if w_bits not in WEIGHT_LEVELS:
        raise ValueError(f"w_bits must be one of {sorted(WEIGHT_LEVELS)}, got {w_bits}")
    if not (a_bits == 32 or a_bits <= 8):
        raise ValueError(f"a_bits must be 1 to 8 or 32 (full precision), got {a_bits}")
    activation = nn.ReLU() if a_bits == 32 else nn.Sequential(nn.ReLU(), SigmoidQuantizer(activation_levels(a_bits)))
    return SigmoidQuantizer(weight_levels(w_bits)), None, activation


def protocol_fit(model: nn.Module, data, seed: int, protocol, base: float = 10.0) -> None:
    """``fit`` of :class:`qteach.comparison.Method`: :func:`fit_quantization_network` with the protocol's epochs,
    learning rate and batch size, temperature :math:`T_e = (e+1)\\,T_0`."""
    for name in ("epochs", "lr", "batch_size"):
        if not hasattr(protocol, name):
            raise TypeError(f"protocol must be a qteach.comparison.Protocol, got {type(protocol).__name__}")
    fit_quantization_network(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                             base=base, seed=seed)
