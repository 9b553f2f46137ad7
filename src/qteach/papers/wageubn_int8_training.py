r"""Training high-performance and large-scale deep neural networks with full 8-bit integers (WAGEUBN; Yang, Deng,
Wu, Yan, Xie, Li, Neural Networks 125, 2020, arXiv:1909.02384; bibkey ``yang2020training``). Official code
(TensorFlow 1.13): https://github.com/yang-yk/wageubn, files ``Quantize.py``, ``BatchNorm.py``, ``imagenet_main.py``.

WAGEUBN quantizes every data path of training: weights (W), activations (A), weight gradients (G), errors (E, the
gradients that flow back between layers), the weight update (U: learning rate, momentum, stored weights) and batch
norm (BN: statistics, normalised output, scale and shift), with three kinds of quantizer:

- **direct** quantization :math:`Q(x, k) = \operatorname{round}(x\,2^{k-1}) / 2^{k-1}`, a fixed grid of step
  :math:`2^{1-k}` (W with a clip to :math:`\pm(1 - 2^{1-k})`, A, BN, U);
- **shift** quantization: divide by the power of two nearest to :math:`\max|x|` first, quantize, scale back (E);
- **constant** quantization: scale by that power of two, round *stochastically* to integers in
  :math:`\pm(2^{k-1}-1)`, then divide by a constant, so the result's range no longer depends on the gradient's (G).

What could be read for this module: the abstract, and the official code, which is transcribed line by line (file
and line in each docstring). The paper's full text, its equation numbers and its tables could not be read: the
equations are numbered W1-W6 here, written by us from the code.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach._validate import (
    require_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_not_empty,
    require_positive_number,
    require_str,
)

__all__ = [
    "BITS",
    "ERROR_MODES",
    "LR",
    "MOMENTUM",
    "PARTS",
    "QuantBatchNorm1d",
    "WageubnSGD",
    "comparison_layer",
    "constant_quantize",
    "direct_quantize",
    "error_quantize",
    "flag_quantize",
    "install_wageubn",
    "make_optimizer",
    "protocol_fit",
    "shift",
    "shift_quantize",
    "wageubn_mlp",
    "weight_quantize",
]

#: The data paths WAGEUBN quantizes.
PARTS = ("W", "A", "G", "E", "U", "BN")
#: The official code's bit widths (Quantize.py lines 216-228, imagenet_main.py lines 291 and 304): 8 bits for W, A,
#: G, E and the BN scale, shift and normalised output; 16 for the BN mean and standard deviation, 15 for the BN
#: gradients, 10 for the learning rate, 13 for the momentum, 24 for the stored weights.
BITS = {"W": 8, "A": 8, "G": 8, "E": 8, "BN": 8, "BN_stats": 16, "BN_grad": 15, "lr": 10, "momentum": 13,
        "weight_store": 24}


def direct_quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    r"""Direct quantization (W1; ``Q`` in Quantize.py lines 15-23): a fixed grid of step :math:`2^{1-k}`,
    no clipping,

    .. math:: Q(x, k) = \frac{\operatorname{round}(x\, 2^{k-1})}{2^{k-1}}

    Values of magnitude above 1 stay on the grid (the code does not clip activations). Rounds half to even, as
    ``tf.round`` does."""
    require_float_tensor(x, "x")
    bits = require_bits(bits)
    n = 2.0 ** (bits - 1)
    return torch.round(x * n) / n


def weight_quantize(w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    r"""Weights (W2; ``fw`` with ``clip``, Quantize.py lines 25-35 and 42-49): direct quantization clipped to the
    symmetric :math:`k`-bit range,

    .. math:: W_q = \operatorname{clip}\big(Q(W, k),\, -1 + 2^{1-k},\, 1 - 2^{1-k}\big)"""
    require_float_tensor(w, "w")
    bits = require_bits(bits)
    delta = 2.0 ** (1 - bits)
    return direct_quantize(w, bits).clamp(-1 + delta, 1 - delta)


def shift(x: torch.Tensor) -> torch.Tensor:
    r"""The power of two nearest to ``x`` in the log domain (``Shift``, Quantize.py lines 37-38):
    :math:`\operatorname{Sh}(x) = 2^{\operatorname{round}(\log_2 x)}`, for positive ``x``."""
    require_float_tensor(x, "x")
    if not bool((x > 0).all()):
        raise ValueError("x must be positive (the shift of a non-positive number is not defined)")
    return 2.0 ** torch.round(torch.log2(x))


def shift_quantize(e: torch.Tensor, bits: int = 8) -> torch.Tensor:
    r"""Shift quantization (W3; ``fe1``, Quantize.py lines 151-163), for the errors that leave an activation:
    scale by the power of two nearest to the largest magnitude, quantize directly, clip, scale back,

    .. math:: s = \operatorname{Sh}(\max|e|), \qquad
              e_q = s\,\operatorname{clip}\big(Q(e / s, k),\, -1,\, 1\big)

    An all-zero ``e`` is returned unchanged."""
    require_float_tensor(e, "e")
    require_not_empty(e, "e")
    bits = require_bits(bits)
    peak = e.abs().max()
    if peak == 0:
        return e.clone()
    s = shift(peak)
    return s * direct_quantize(e / s, bits).clamp(-1, 1)


def flag_quantize(e: torch.Tensor, bits: int = 8) -> torch.Tensor:
    r"""Shift quantization with a flag bit (W4; ``fe2``, Quantize.py lines 166-193), for the errors that leave a
    convolution or linear layer. With the unit :math:`u = \operatorname{Sh}(\max|e|) / 2^{k-1}`, each value is
    coded on one of two grids, chosen by a flag: the integer grid for values of at least one unit, the fine grid
    :math:`Q(\cdot, k)` for the smaller ones (which the plain shift quantizer would round to zero),

    .. math:: e_q = u \cdot \operatorname{sign}(e) \cdot
              \begin{cases} \operatorname{clip}\big(Q(|e|/u, k), 0, 1\big) & |e|/u < 1 \\
                            \operatorname{clip}\big(\operatorname{round}(|e|/u), 0, 2^{k-1} - 1\big)
                            & |e|/u \ge 1 \end{cases}

    An all-zero ``e`` is returned unchanged."""
    require_float_tensor(e, "e")
    require_not_empty(e, "e")
    bits = require_bits(bits)
    peak = e.abs().max()
    if peak == 0:
        return e.clone()
    unit = shift(peak) / 2.0 ** (bits - 1)
    r = (e / unit).abs()
    small = direct_quantize(torch.where(r < 1, r, torch.zeros_like(r)), bits).clamp(-1, 1)
    large = torch.round(torch.where(r >= 1, r, torch.zeros_like(r))).clamp(0, 2.0 ** (bits - 1) - 1)
    return unit * torch.sign(e) * (small + large)


def constant_quantize(g: torch.Tensor, bits: int = 8, g_scale: float = 128.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Constant quantization of a weight gradient (W5; ``fg`` with ``lr = 1``, Quantize.py lines 107-133): scale
    by the nearest power of two of the largest magnitude, multiply by the constant ``g_scale`` (128 in the code),
    round stochastically to an integer :math:`n`, clip to :math:`\pm(\text{g\_scale} - 1)` and divide by
    :math:`128 \cdot 2^{k-1}`,

    .. math:: n = \operatorname{clip}\Big(\operatorname{SR}\Big(\text{g\_scale}\,
              \frac{g}{\operatorname{Sh}(\max|g|)}\Big),\, \pm(\text{g\_scale} - 1)\Big), \qquad
              G = \frac{n}{128 \cdot 2^{k-1}}

    :math:`\operatorname{SR}` rounds :math:`|x|` up with probability equal to its fraction (drawn from
    ``generator``). The result no longer depends on the gradient's scale: its largest entries are about
    :math:`1/2^{k-1}`, one step of a :math:`k`-bit weight. (The code's final 15-bit ``Q`` is exact here.) An
    all-zero ``g`` gives zeros."""
    require_float_tensor(g, "g")
    require_not_empty(g, "g")
    bits = require_bits(bits)
    g_scale = require_positive_number(g_scale, "g_scale")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    peak = g.abs().max()
    if peak == 0:
        return torch.zeros_like(g)
    x = g_scale * g / shift(peak)
    frac = x.abs() - x.abs().floor()
    up = (torch.rand(x.shape, generator=generator, dtype=x.dtype) < frac).to(x.dtype)
    n = (torch.sign(x) * (x.abs().floor() + up)).clamp(1 - g_scale, g_scale - 1)
    return n / (128.0 * 2.0 ** (bits - 1))


ERROR_MODES = ("shift", "flag", "direct")


def error_quantize(e: torch.Tensor, mode: str = "flag", bits: int = 8) -> torch.Tensor:
    """An error tensor quantized by ``mode``: ``"shift"`` (:func:`shift_quantize`), ``"flag"``
    (:func:`flag_quantize`) or ``"direct"`` (:func:`direct_quantize` then the 8-bit clip to ±1, *without* the
    shift: the naive choice, for the ablation)."""
    require_float_tensor(e, "e")
    if require_str(mode, "mode") not in ERROR_MODES:
        raise ValueError(f"mode must be one of {ERROR_MODES}, got {mode!r}")
    bits = require_bits(bits)
    if mode == "shift":
        return shift_quantize(e, bits)
    if mode == "flag":
        return flag_quantize(e, bits)
    return direct_quantize(e, bits).clamp(-1, 1)


class _Quantize(torch.autograd.Function):
    """Forward: ``forward_fn(x)`` (or identity); backward: ``backward_fn(g)`` (or identity), the STE."""

    @staticmethod
    def forward(ctx, x, forward_fn, backward_fn):
        ctx.backward_fn = backward_fn
        return x.clone() if forward_fn is None else forward_fn(x)

    @staticmethod
    def backward(ctx, g):
        return (g if ctx.backward_fn is None else ctx.backward_fn(g)), None, None


class _Quantizer(nn.Module):
    """Quantizes the forward value with ``forward_fn`` and the backward error with ``backward_fn`` (either may be
    ``None``: identity), straight-through in between. ``precision``: the bit width of the forward value
    (:func:`qteach.nn.precision_of`)."""

    def __init__(self, forward_fn=None, backward_fn=None, name="", precision: int = 32):
        super().__init__()
        self.forward_fn, self.backward_fn, self.name = forward_fn, backward_fn, name
        self.precision = require_int(precision, "precision", minimum=1)

    def forward(self, x):
        return _Quantize.apply(x, self.forward_fn, self.backward_fn)

    def extra_repr(self):
        return self.name


class QuantBatchNorm1d(nn.BatchNorm1d):
    r"""Batch norm with WAGEUBN's quantizers (W6; BatchNorm.py lines 13-31): the mean and the standard deviation
    on 16 bits, the normalised value, the scale :math:`\gamma` and the shift :math:`\beta` on 8 bits (direct
    quantization, straight-through gradients), :math:`\epsilon = 2^{-15}` (BatchNorm.py line 34),

    .. math:: \hat x = Q_8\!\Big(\frac{x - Q_{16}(\mu)}{Q_{16}(\sigma) + \epsilon}\Big), \qquad
              y = \hat x\, Q_8(\gamma) + Q_8(\beta)

    The running statistics are kept in float, as in the code (which quantizes them when it uses them)."""

    def __init__(self, num_features: int, momentum: float = 0.1):
        super().__init__(require_int(num_features, "num_features", minimum=1), eps=2.0 ** -15,
                         momentum=require_positive_number(momentum, "momentum", maximum=1.0))

    def forward(self, x):
        require_float_tensor(x, "x")
        q = lambda t, k: _Quantize.apply(t, lambda v: direct_quantize(v, k), None)
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(x.var(0, unbiased=True), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        std = q(var.sqrt(), BITS["BN_stats"]) + self.eps
        x_hat = q((x - q(mean, BITS["BN_stats"])) / std, BITS["BN"])
        return x_hat * q(self.weight, BITS["BN"]) + q(self.bias, BITS["BN"])


class WageubnSGD(torch.optim.Optimizer):
    r"""Momentum SGD with WAGEUBN's G and U quantizers (imagenet_main.py lines 238-304). For a parameter with
    ``"kind": "weight"`` (a quantized layer's weight) the gradient is :func:`constant_quantize`\ d (G); for
    ``"kind": "bn"`` it is directly quantized to 15 bits; other groups (the float first and last layers) keep
    float gradients, as in the code. With ``quantize_update`` (U) the learning rate is on 10 bits (clipped to
    below 1), the momentum buffer on 13 bits and the stored weights on 24 bits (BN and quantized weights):

    .. math:: m \leftarrow Q_{13}(\mu\, m + G), \qquad W \leftarrow Q_{24}(W - Q_{10}(\eta)\, m)

    (TensorFlow's momentum update; the code's momentum is :math:`\mu = 1/4`)."""

    def __init__(self, groups, lr: float = 1.0, momentum: float = 0.25, quantize_gradient: bool = True,
                 quantize_update: bool = True, generator: torch.Generator | None = None):
        defaults = {"lr": require_positive_number(lr, "lr"), "momentum": momentum, "kind": "float"}
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
        self.quantize_gradient = require_bool(quantize_gradient, "quantize_gradient")
        self.quantize_update = require_bool(quantize_update, "quantize_update")
        self.generator = generator
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            kind, lr = group["kind"], group["lr"]
            quantized = self.quantize_update and kind != "float"
            if quantized:
                lr = float(weight_quantize(torch.tensor(lr), BITS["lr"]))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if self.quantize_gradient and kind == "weight":
                    g = constant_quantize(g, BITS["G"], generator=self.generator)
                elif self.quantize_gradient and kind == "bn":
                    g = direct_quantize(g, BITS["BN_grad"])
                m = self.state[p].get("m")
                m = g.clone() if m is None else group["momentum"] * m + g
                if quantized:
                    m = direct_quantize(m, BITS["momentum"])
                self.state[p]["m"] = m
                p.sub_(lr * m)
                if quantized:
                    p.copy_(direct_quantize(p, BITS["weight_store"]))
        return closure() if closure is not None else None


def _parts(parts) -> frozenset:
    if isinstance(parts, str) or not all(isinstance(p, str) for p in parts):
        raise TypeError(f"parts must be a collection of names from {PARTS}, got {parts!r}")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"parts must be names from {PARTS}, got {sorted(unknown)}")
    return frozenset(parts)


def install_wageubn(model: nn.Module, parts=PARTS, error_mode: str = "flag") -> nn.Module:
    """Quantize the data paths ``parts`` of a protocol MLP (a ``Sequential`` whose quantized layers are
    :class:`qteach.nn.QuantLinear`, each followed by batch norm), in place: W and A as the layers' weight and input
    quantizers, E as :func:`shift_quantize` on the error of each input (``fe1``) and ``error_mode`` (``"flag"``:
    :func:`flag_quantize`, ``fe2``) on the error of each output, BN by swapping the batch norm after each quantized
    layer for :class:`QuantBatchNorm1d`. G and U live in the optimizer (:func:`make_optimizer`)."""
    from qteach import nn as qnn

    require_module(model)
    parts = _parts(parts)
    if require_str(error_mode, "error_mode") not in ERROR_MODES:
        raise ValueError(f"error_mode must be one of {ERROR_MODES}, got {error_mode!r}")
    if not isinstance(model, nn.Sequential) or not any(isinstance(m, qnn.QuantLinear) for m in model):
        raise ValueError("model must be a Sequential with QuantLinear layers (the protocol MLP)")
    bits = BITS["E"]
    for i, layer in enumerate(model):
        if not isinstance(layer, qnn.QuantLinear):
            continue
        layer.weight_quantizer = _Quantizer(lambda w: weight_quantize(w, BITS["W"]), None, "W: direct, clip") \
            if "W" in parts else None
        layer.input_quantizer = _Quantizer(
            (lambda a: direct_quantize(a, BITS["A"])) if "A" in parts else None,
            (lambda e: error_quantize(e, "shift" if error_mode != "direct" else "direct", bits))
            if "E" in parts else None, "A: direct / E: shift")
        if "E" in parts:
            layer.error_quantizer = _Quantizer(None, lambda e: error_quantize(e, error_mode, bits), "E: " + error_mode)
            layer.register_forward_hook(lambda m, inputs, out: m.error_quantizer(out))
        if "BN" in parts and i + 1 < len(model) and isinstance(model[i + 1], nn.BatchNorm1d):
            old = model[i + 1]
            model[i + 1] = QuantBatchNorm1d(old.num_features)
            model[i + 1].load_state_dict(old.state_dict())
    return model


def wageubn_mlp(parts=PARTS, in_features: int = 64, hidden: int = 128, classes: int = 10,
                error_mode: str = "flag") -> nn.Sequential:
    """The results pages' MLP (in → hidden → hidden → hidden → classes, first and last layers in float, the two
    middle ones :class:`qteach.nn.QuantLinear`, batch norm and ReLU after each hidden layer) with the data paths
    ``parts`` quantized by :func:`install_wageubn`."""
    from qteach import nn as qnn

    in_features = require_int(in_features, "in_features", minimum=1)
    hidden = require_int(hidden, "hidden", minimum=1)
    classes = require_int(classes, "classes", minimum=2)
    layers = [nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
    for _ in range(2):
        layers += [qnn.QuantLinear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
    return install_wageubn(nn.Sequential(*layers, nn.Linear(hidden, classes)), parts, error_mode)


def make_optimizer(model: nn.Module, parts=PARTS, lr: float = 1.0, momentum: float = 0.25,
                   generator: torch.Generator | None = None) -> WageubnSGD:
    """:class:`WageubnSGD` over ``model``: the quantized layers' weights (kind ``"weight"``), the batch norms
    after them (``"bn"``), everything else in float; G and U quantized if in ``parts``."""
    from qteach import nn as qnn

    require_module(model)
    parts = _parts(parts)
    weights, bns, taken = [], [], set()
    modules = [m for m in model.modules() if not isinstance(m, _Quantizer)]
    for i, m in enumerate(modules):
        if isinstance(m, qnn.QuantLinear):
            weights.append(m.weight)
            taken.add(id(m.weight))
            if i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm1d):
                bns += list(modules[i + 1].parameters())
    taken |= {id(p) for p in bns}
    rest = [p for p in model.parameters() if id(p) not in taken]
    groups = [{"params": weights, "kind": "weight"}, {"params": bns, "kind": "bn"}, {"params": rest}]
    return WageubnSGD([g for g in groups if g["params"]], lr=lr, momentum=momentum,
                      quantize_gradient="G" in parts, quantize_update="U" in parts, generator=generator)


#: The chapter's SGD settings: the official code's momentum 1/4 (imagenet_main.py line 80); the learning rate 0.5
#: is ours (the code's 0.05 is for 100 ImageNet epochs; the protocol trains 10 epochs of a small data set).
LR, MOMENTUM = 0.5, 0.25


def comparison_layer(w_bits: int = 8, a_bits: int = 8):
    """``(weight_quantizer, input_quantizer, activation)`` of a WAGEUBN layer for :class:`qteach.comparison.Method`:
    8-bit clipped direct weights (W2), 8-bit direct activations (W1) whose error is shift-quantized (W3), ReLU.
    The output errors (W4), the batch norm (W6), G and U are added by :func:`protocol_fit`. Only 8/8."""
    if require_int(w_bits, "w_bits", minimum=1) != 8 or require_int(a_bits, "a_bits", minimum=1) != 8:
        raise ValueError(f"w_bits and a_bits must be 8 (full 8-bit training), got {w_bits} and {a_bits}")
    return (_Quantizer(lambda v: weight_quantize(v, 8), None, "W: direct, clip", precision=8),
            _Quantizer(lambda a: direct_quantize(a, 8), lambda e: shift_quantize(e, 8), "A: direct / E: shift",
                       precision=8),
            nn.ReLU())


def protocol_fit(model: nn.Module, data, seed: int, protocol):
    """Train a protocol model built with :func:`comparison_layer` the WAGEUBN way: every data path quantized
    (:func:`install_wageubn`) and :class:`WageubnSGD` (lr :data:`LR`, momentum :data:`MOMENTUM`, stochastic rounding
    seeded by ``seed``) for the protocol's epochs and batch size (its Adam learning rate is not used). The ``fit``
    of a :class:`qteach.comparison.Method`; returns :class:`qteach.train.History`."""
    from qteach import train

    require_module(model)
    seed = require_int(seed, "seed", minimum=0)
    install_wageubn(model, PARTS)
    generator = torch.Generator().manual_seed(seed)
    return train.fit(model, data, epochs=protocol.epochs, lr=LR, batch_size=protocol.batch_size, seed=seed,
                     progress=False, optimizer=lambda params: make_optimizer(model, PARTS, LR, MOMENTUM, generator))
