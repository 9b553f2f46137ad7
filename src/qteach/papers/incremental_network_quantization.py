r"""Incremental Network Quantization (INQ): weights that are powers of two or zero, quantized a portion at a time.

Zhou, Yao, Guo, Xu and Chen convert a *pre-trained* float network into one whose weights all lie in

.. math:: \mathbf{P}_l = \{\pm 2^{n_1}, \dots, \pm 2^{n_2}, 0\} \qquad \text{(eq. 1)}

so that a multiplication becomes a bit shift. One layer's range comes from its largest weight
(:func:`exponent_range`, eq. 2–3 and the rule for :math:`n_2`), and each weight is rounded to the nearest level
on a linear scale (:func:`quantize_power_of_two`, eq. 4).

Quantizing every weight at once costs accuracy. INQ instead repeats three operations (Algorithm 1):

1. **weight partition** (eq. 5): split the float weights of each layer into a group to quantize and a group to
   re-train, "pruning-inspired": the largest magnitudes are quantized first (:func:`partition`);
2. **group-wise quantization**: the first group is quantized with eq. 4 and frozen;
3. **re-training**: the rest are trained with the frozen weights in place; the binary mask :math:`\mathbf{T}_l`
   stops their update (eq. 8).

The accumulated quantized portion grows, e.g. 50 % → 75 % → 87.5 % → 100 % (:data:`PORTIONS`, the paper's fig. 2
and its ResNet setting). :class:`INQQuantizer` is the per-layer state (mask and frozen values) as a weight
quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``; :func:`inq_step` advances every layer of a
model to the next portion, and :func:`incremental_quantization` runs Algorithm 1 with :func:`qteach.train.fit`.

Equation numbers are those of the ICLR 2017 paper. Where the official Caffe code
(``Zhouaojun/Incremental-Network-Quantization``: ``src/caffe/blob.cpp``, ``src/caffe/util/power2.cpp``) fixes a
detail, the docstrings say so.

References:

- Zhou, Yao, Guo, Xu, Chen, *Incremental Network Quantization: Towards Lossless CNNs with Low-Precision
  Weights*, ICLR 2017. https://arxiv.org/abs/1702.03044
- Official code: https://github.com/Zhouaojun/Incremental-Network-Quantization
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from qteach import train
from qteach._validate import require_int, require_weights

__all__ = [
    "PORTIONS",
    "exponent_range",
    "levels",
    "quantize_power_of_two",
    "partition",
    "INQQuantizer",
    "inq_step",
    "incremental_quantization",
]

PORTIONS = (0.5, 0.75, 0.875, 1.0)
"""The accumulated portions of quantized weights of the paper's fig. 2 (and its VGG-16/ResNet settings)."""


def _require_inq_bits(bits) -> int:
    bits = require_int(bits, "bits")
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in [2, 16] (one bit encodes zero, so INQ needs at least 2), got {bits}")
    return bits


def exponent_range(w: torch.Tensor, bits: int) -> tuple[int, int]:
    r"""The exponents :math:`(n_1, n_2)` of a layer's levels :math:`\mathbf{P}_l` (eq. 2–3).

    .. math::
        s = \max(\operatorname{abs}(\mathbf{W}_l)) \quad \text{(eq. 3)}, \qquad
        n_1 = \operatorname{floor}\big(\log_2(4s/3)\big) \quad \text{(eq. 2)}, \qquad
        n_2 = n_1 + 1 - 2^{(b-1)}/2

    The expected bit width :math:`b` counts one bit for zero; the other :math:`b - 1` bits index
    :math:`2^{b-1}` non-zero values, :math:`2^{b-2}` magnitudes with two signs. The factor :math:`4/3` makes the
    largest weight fall in the top level's rounding interval of eq. 4: :math:`2^{n_1} \le 4s/3` gives
    :math:`s \ge \tfrac{3}{4}2^{n_1}`, and :math:`4s/3 < 2^{n_1+1}` gives :math:`s < \tfrac{3}{2}2^{n_1}`. The
    paper's example: :math:`b = 3, n_1 = -1 \Rightarrow n_2 = -2`; for :math:`b = 5` the official code searches
    the exponents :math:`n_1 - 7 \dots n_1` (``power2.cpp``), the same range. ``bits`` is in [2, 16].
    """
    require_weights(w)
    bits = _require_inq_bits(bits)
    if not bool((w.detach() != 0).any()):
        raise ValueError("w must have at least one non-zero entry (log2 of max|W| = 0 is undefined)")
    s = float(w.detach().abs().max())
    n1 = math.floor(math.log2(4.0 * s / 3.0))
    # guard the floor against a last-digit error of log2 at exact powers of two
    if 2.0**n1 > 4.0 * s / 3.0:
        n1 -= 1
    elif 2.0 ** (n1 + 1) <= 4.0 * s / 3.0:
        n1 += 1
    n2 = n1 + 1 - 2 ** (bits - 1) // 2
    return n1, n2


def _check_exponents(n1, n2) -> tuple[int, int]:
    n1, n2 = require_int(n1, "n1"), require_int(n2, "n2")
    if n2 > n1:
        raise ValueError(f"n2 must be <= n1, got n1={n1}, n2={n2}")
    return n1, n2


def levels(n1: int, n2: int) -> torch.Tensor:
    r"""The sorted levels :math:`\mathbf{P}_l = \{\pm 2^{n_1}, \dots, \pm 2^{n_2}, 0\}` (eq. 1), float64."""
    n1, n2 = _check_exponents(n1, n2)
    powers = [2.0**k for k in range(n2, n1 + 1)]
    return torch.tensor(sorted([-p for p in powers] + [0.0] + powers), dtype=torch.float64)


def quantize_power_of_two(w: torch.Tensor, n1: int, n2: int) -> torch.Tensor:
    r"""Round each weight to :math:`\mathbf{P}_l` with the paper's "ladder of powers" (eq. 4).

    .. math::
        \widehat{\mathbf{W}}_l(i,j) = \begin{cases}
        \beta \operatorname{sgn}(\mathbf{W}_l(i,j)) & \text{if } (\alpha + \beta)/2 \le
        \operatorname{abs}(\mathbf{W}_l(i,j)) < 3\beta/2 \\ 0 & \text{otherwise,} \end{cases}

    with :math:`\alpha, \beta` adjacent elements of the sorted non-negative levels (:math:`\alpha = 0` below
    :math:`2^{n_2}`). Since neighbouring levels differ by a factor of two, the interval of :math:`\beta = 2^k` is
    :math:`[\tfrac{3}{4}2^k, \tfrac{3}{2}2^k)`: rounding to the nearest level on a linear scale, with ties going up.
    Magnitudes below :math:`2^{n_2 - 1}` become 0.

    Two details the paper leaves open, settled here:

    - magnitudes at or above :math:`\tfrac{3}{2}2^{n_1}` (impossible when :math:`n_1` comes from this tensor's own
      maximum, eq. 2–3, but possible for a weight that grew during re-training) saturate to :math:`\pm 2^{n_1}`,
      as the official code's nearest-level search (``weightCluster_zero``) does; eq. 4 read literally would send
      them to 0;
    - a tie (a magnitude exactly at a boundary) goes to the larger level, as the ``\le`` of eq. 4 says; the
      official code keeps the smaller one.

    Returns a tensor of ``w``'s dtype whose entries are all in :func:`levels`.
    """
    require_weights(w)
    n1, n2 = _check_exponents(n1, n2)
    m = w.detach().abs().double()
    tiny = torch.finfo(torch.float64).tiny
    k = torch.floor(torch.log2(torch.clamp(4.0 * m / 3.0, min=tiny)))
    # make k exact: 3/4 * 2^k <= m < 3/2 * 2^k (log2 may be off by one ulp at the boundaries)
    k = torch.where(m < 0.75 * torch.exp2(k), k - 1, k)
    k = torch.where(m >= 1.5 * torch.exp2(k), k + 1, k)
    k = torch.clamp(k, n2, n1)
    q = torch.exp2(k) * torch.sign(w.detach().double())
    q = torch.where(m < 2.0 ** (n2 - 1), torch.zeros_like(q), q)
    return q.to(w.dtype)


def _require_portion(portion) -> float:
    if isinstance(portion, bool) or not isinstance(portion, numbers.Real):
        raise TypeError(f"portion must be a number in (0, 1], got {type(portion).__name__}")
    if not 0 < portion <= 1:
        raise ValueError(f"portion must be in (0, 1], got {portion}")
    return float(portion)


def _require_portions(portions) -> list[float]:
    portions = [_require_portion(p) for p in portions]
    if any(b <= a for a, b in zip(portions, portions[1:])):
        raise ValueError(f"portions must increase, got {portions}")
    return portions


def partition(w: torch.Tensor, frozen: torch.Tensor, portion: float, strategy: str = "magnitude",
              generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Weight partition (eq. 5): the weights to quantize now, so that ``portion`` of the layer is quantized.

    .. math:: \mathbf{A}_l^{(1)} \cup \mathbf{A}_l^{(2)} = \{\mathbf{W}_l(i,j)\}, \qquad
        \mathbf{A}_l^{(1)} \cap \mathbf{A}_l^{(2)} = \emptyset

    ``frozen`` marks the weights already quantized (:math:`\mathbf{T}_l = 0`). Of the others, the
    :math:`\operatorname{round}(\sigma n) - |\text{frozen}|` with the largest :math:`|W|` are chosen
    (``strategy="magnitude"``, the paper's "pruning-inspired" partition: large weights matter most, so they form
    the low-precision base), or a random subset (``strategy="random"``, the alternative of the paper's
    Table 2). Returns a boolean mask of the *newly* chosen weights, disjoint from ``frozen``.
    """
    require_weights(w)
    portion = _require_portion(portion)
    if not isinstance(frozen, torch.Tensor) or frozen.dtype != torch.bool or frozen.shape != w.shape:
        raise TypeError(f"frozen must be a bool tensor of shape {tuple(w.shape)}")
    if strategy not in ("magnitude", "random"):
        raise ValueError(f"strategy must be 'magnitude' or 'random', got {strategy!r}")
    n = w.numel()
    target = min(n, round(portion * n))
    todo = target - int(frozen.sum())
    new = torch.zeros(n, dtype=torch.bool, device=w.device)
    if todo <= 0:
        return new.reshape(w.shape)
    free = (~frozen).flatten().nonzero().flatten()
    if strategy == "magnitude":
        order = torch.argsort(w.detach().flatten()[free].abs(), descending=True, stable=True)
    else:
        order = torch.randperm(free.numel(), generator=generator).to(w.device)
    new[free[order[:todo]]] = True
    return new.reshape(w.shape)


class INQQuantizer(nn.Module):
    r"""The INQ state of one layer as a weight quantizer: frozen power-of-two weights and float weights to train.

    .. math::
        q(\mathbf{W}) = (1 - \mathbf{T}) \odot \widehat{\mathbf{W}} + \mathbf{T} \odot \mathbf{W}, \qquad
        \frac{\partial E}{\partial \mathbf{W}} \leftarrow \frac{\partial E}{\partial \mathbf{W}} \odot \mathbf{T}
        \quad \text{(eq. 8)}

    Before the first :meth:`step` every weight is float (:math:`\mathbf{T} = 1`). Each :meth:`step` partitions
    the layer (:func:`partition`), quantizes the new group with eq. 4 and freezes it. The forward pass uses the
    frozen values wherever :math:`\mathbf{T} = 0`, so the gradient reaching the latent weight there is zero,
    which is the mask of eq. 8 (whatever the optimiser does to those latent entries is never used).

    :math:`n_1, n_2` are computed once, at the first step, from the pre-trained weights (eq. 2–3; Algorithm 1
    determines :math:`\mathbf{P}_l` from the first group, which holds the largest weight), and kept. The official
    code recomputes :math:`n_1` from all the weights at each run, which gives the same value unless a re-trained
    weight outgrows :math:`\tfrac{3}{2}2^{n_1}`. ``precision = bits``.
    """

    def __init__(self, bits: int = 5):
        super().__init__()
        self.precision = _require_inq_bits(bits)
        self.n1: int | None = None
        self.n2: int | None = None
        self.register_buffer("frozen", torch.zeros(0, dtype=torch.bool))
        self.register_buffer("values", torch.zeros(0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("frozen", "values"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def started(self) -> bool:
        return self.frozen.numel() > 0

    @property
    def portion(self) -> float:
        """The fraction of the layer's weights quantized so far."""
        return float(self.frozen.float().mean()) if self.started else 0.0

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.started and self.frozen.shape != w.shape:
            raise ValueError(f"this INQQuantizer holds a mask of shape {tuple(self.frozen.shape)}, "
                             f"got a weight of shape {tuple(w.shape)}")
        if not self.started:
            return w
        return torch.where(self.frozen, self.values.to(w.dtype), w)

    @torch.no_grad()
    def step(self, w: torch.Tensor, portion: float, strategy: str = "magnitude",
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Quantize and freeze more weights of ``w`` until ``portion`` of them are; returns the new group's mask."""
        require_weights(w)
        if self.started and self.frozen.shape != w.shape:
            raise ValueError(f"w has shape {tuple(w.shape)}, the mask {tuple(self.frozen.shape)}")
        if not self.started:
            self.n1, self.n2 = exponent_range(w, self.precision)
            self.frozen = torch.zeros_like(w, dtype=torch.bool)
            self.values = torch.zeros_like(w)
        new = partition(w, self.frozen, portion, strategy, generator)
        quantized = quantize_power_of_two(w, self.n1, self.n2)
        self.values = torch.where(new, quantized, self.values)
        self.frozen = self.frozen | new
        return new

    def extra_repr(self) -> str:
        return f"bits={self.precision}, n1={self.n1}, n2={self.n2}, portion={self.portion:.3f}"


def _require_inq_layers(model: nn.Module) -> list:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layers = [m for m in model.modules() if isinstance(getattr(m, "weight_quantizer", None), INQQuantizer)]
    if not layers:
        raise ValueError("model has no layer with an INQQuantizer as weight_quantizer")
    return layers


def inq_step(model: nn.Module, portion: float, strategy: str = "magnitude",
             generator: torch.Generator | None = None) -> None:
    """Lines 4–6 of Algorithm 1 for every layer of ``model`` with an :class:`INQQuantizer`: partition each
    layer separately ("layer-wise") and quantize the new group."""
    for layer in _require_inq_layers(model):
        layer.weight_quantizer.step(layer.weight, portion, strategy, generator)


def incremental_quantization(model: nn.Module, data, portions=PORTIONS, epochs: int = 2, lr: float = 1e-3,
                             strategy: str = "magnitude", seed: int = 0, optimizer: str = "adam",
                             batch_size: int = 64, after_step=None) -> list[dict]:
    r"""Algorithm 1: for each accumulated portion :math:`\sigma_n`, partition and quantize every layer, then
    re-train the remaining float weights for ``epochs`` epochs with a fresh optimiser ("reset the base learning
    rate", line 3), with :func:`qteach.train.fit` (``optimizer``, ``lr``, ``batch_size``). After the last portion
    (normally 1.0) nothing is left to re-train.

    Returns one record per step: ``portion``, the test accuracy right after quantizing (``quantized``) and after
    re-training (``retrained``; equal to ``quantized`` when nothing was re-trained). ``after_step(record, model)``,
    if given, is called at the end of each step (e.g. to take a snapshot of the weights).
    """
    if after_step is not None and not callable(after_step):
        raise TypeError(f"after_step must be callable or None, got {type(after_step).__name__}")
    portions = _require_portions(portions)
    _require_inq_layers(model)
    seed = require_int(seed, "seed", minimum=0)
    generator = torch.Generator().manual_seed(seed)
    records = []
    for n, portion in enumerate(portions):
        inq_step(model, portion, strategy, generator)
        after_quantization = train.evaluate(model, data.x_test, data.y_test)
        retrained = after_quantization
        if portion < 1.0:
            history = train.fit(model, data, epochs=epochs, lr=lr, seed=seed + n, optimizer=optimizer,
                                batch_size=batch_size, progress=False)
            retrained = history.final_test_accuracy
        records.append(dict(portion=portion, quantized=after_quantization, retrained=retrained))
        if after_step is not None:
            after_step(records[-1], model)
    return records
