r"""Improved training of binary networks: PReLU after the binary layer, reverse-order initialisation and smooth
progressive quantization.

Bulat, Tzimiropoulos, Kossaifi and Pantic (arXiv 1904.05868, 2019) keep XNOR-Net's binary layer and change how
it is trained. Their abstract lists "(a) more appropriate activation functions, (b) reverse-order
initialization, (c) progressive quantization, and (d) network stacking", plus knowledge distillation.

**What could be read.** The abstract (groundai, Papers with Code) and the introduction (deepai.org); the method
section only through a third-party summary (a blog post that transcribes its equations). No official code is
listed. What the summary reports, and this module builds:

- the layer is XNOR-Net's :math:`T * W \approx (\operatorname{sign}(T) \circledast \operatorname{sign}(W))
  K\alpha`, with :math:`K` dropped "in practice" (only the analytic weight scale :math:`\alpha` stays; no learned
  scale in this paper: that is XNOR-Net++, :mod:`qteach.papers.xnor_net_plus_plus`);
- a PReLU after the binary convolution instead of a ReLU (:data:`ACTIVATIONS`, :class:`BinaryBlock`);
- reverse-order initialisation: first train with real weights and binary activations, then binarize the weights
  too (:data:`STAGE_ORDERS`, :func:`set_binarization`);
- smooth progressive quantization: :math:`\operatorname{sign}(x) \approx 2\,\sigma(\lambda x) - 1` with
  :math:`\lambda` increased during training (:func:`smooth_sign`, :class:`ProgressiveSign`). The summary also
  names SoftSign and tanh without their formulas; the forms used here for them are ours.

Equation numbers could not be read, so none are cited. The MLP, the schedule of :math:`\lambda` and the stage
lengths are ours.

Reference: A. Bulat, G. Tzimiropoulos, J. Kossaifi, M. Pantic, *Improved training of binary networks for human
pose estimation and image recognition*, arXiv:1904.05868, 2019.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, train
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_positive_number,
    require_str,
)
from qteach.data import Split
from qteach.papers import xnor_net as xn
from qteach.papers import xnor_net_plus_plus as xpp

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "SCALES",
    "STAGE_ORDERS",
    "BinaryBlock",
    "ProgressiveSign",
    "binary_mlp",
    "comparison_layer",
    "lambda_schedule",
    "set_binarization",
    "set_lambda",
    "smooth_sign",
    "staged_fit",
]

KINDS = ("sigmoid", "tanh", "softsign")
ACTIVATIONS = ("none", "relu", "prelu")
SCALES = ("none", "analytic", "learned")
STAGE_ORDERS = {"real": ((False, False),), "scratch": ((True, True),),
                "standard": ((False, False), (True, True)), "reverse": ((False, True), (True, True))}
"""(binarize weights, binarize activations) of each training stage: a real network (a reference), binary from
scratch, the usual order (a real network first) and the paper's reverse order (binary activations first, then
binary weights)."""


def _require_choice(value, name, choices):
    if require_str(value, name) not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def smooth_sign(x: torch.Tensor, lam: float, kind: str = "sigmoid") -> torch.Tensor:
    r"""A smooth approximation of :math:`\operatorname{sign}(x)` that sharpens as :math:`\lambda` grows.

    .. math:: \text{sigmoid: } 2\,\frac{e^{\lambda x}}{1 + e^{\lambda x}} - 1, \qquad
        \text{tanh: } \tanh(\lambda x), \qquad \text{softsign: } \frac{\lambda x}{1 + |\lambda x|}

    The sigmoid form is the paper's (as transcribed by the summary); the other two are ours.
    """
    require_float_tensor(x, "x")
    lam = require_positive_number(lam, "lam")
    _require_choice(kind, "kind", KINDS)
    if kind == "sigmoid":
        return 2 * torch.sigmoid(lam * x) - 1
    return torch.tanh(lam * x) if kind == "tanh" else lam * x / (1 + (lam * x).abs())


def lambda_schedule(step: int, total: int, start: float = 1.0, end: float = 100.0) -> float:
    r"""Ours: :math:`\lambda` grows geometrically from ``start`` (step 0) to ``end`` (step ``total``),
    :math:`\lambda_t = \lambda_0 (\lambda_{end} / \lambda_0)^{t / T}`."""
    step = require_int(step, "step", minimum=0)
    total = require_int(total, "total", minimum=1)
    start, end = require_positive_number(start, "start"), require_positive_number(end, "end")
    return start * math.exp(math.log(end / start) * min(step, total) / total)


class ProgressiveSign(nn.Module):
    r"""A quantizer that is :func:`smooth_sign` with the current ``lam`` and, once ``lam`` is ``None``, the hard
    sign with the clipped straight-through estimator (:func:`qteach.binary.ste_sign`). ``precision = 1``."""

    precision = 1

    def __init__(self, kind: str = "sigmoid", lam: float | None = None):
        super().__init__()
        self.kind = _require_choice(kind, "kind", KINDS)
        self.lam = None if lam is None else require_positive_number(lam, "lam")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        return binary.ste_sign(x) if self.lam is None else smooth_sign(x, self.lam, self.kind)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, lam={self.lam}"


def _weight_quantizer(scale: str, out_features: int):
    if scale == "learned":
        return xpp.ScaledSignWeight(out_features)
    return xn.BinaryWeight(scaled=scale == "analytic")


def _activation(name: str, features: int) -> nn.Module:
    return {"none": nn.Identity, "relu": nn.ReLU, "prelu": lambda: nn.PReLU(features, init=0.25)}[name]()


class BinaryBlock(nn.Module):
    r"""One residual binary block in XNOR-Net's order (batch norm, sign, binary layer), then an activation:

    .. math:: x' = x + f\big(\operatorname{sign}(\mathrm{BN}(x))\, \widetilde{W}^\top\big), \qquad
        f \in \{\text{identity}, \mathrm{ReLU}, \mathrm{PReLU}\}

    ``scale`` picks :math:`\widetilde{W}`: :math:`\operatorname{sign}(W)` (``"none"``), XNOR-Net's
    :math:`\alpha\operatorname{sign}(W)` (``"analytic"``, the paper's) or XNOR-Net++'s learned
    :math:`\Gamma\operatorname{sign}(W)` (``"learned"``). ``kind`` sets the :class:`ProgressiveSign` quantizer.
    """

    def __init__(self, width: int, activation: str = "prelu", scale: str = "analytic", kind: str = "sigmoid"):
        super().__init__()
        width = require_int(width, "width", minimum=1)
        _require_choice(activation, "activation", ACTIVATIONS)
        _require_choice(scale, "scale", SCALES)
        self.bn = nn.BatchNorm1d(width)
        self.linear = qnn.QuantLinear(width, width, bias=False, weight_quantizer=_weight_quantizer(scale, width),
                                      input_quantizer=ProgressiveSign(kind))
        self.act = _activation(activation, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.linear(self.bn(x)))


def binary_mlp(in_features: int, width: int = 64, blocks: int = 2, activation: str = "prelu",
               scale: str = "analytic", num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    """Real first layer, ``blocks`` :class:`BinaryBlock`, batch norm and a real classifier; ``seed`` fixes the
    initialisation."""
    in_features = require_int(in_features, "in_features", minimum=1)
    width = require_int(width, "width", minimum=1)
    blocks = require_int(blocks, "blocks", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, width),
                             *(BinaryBlock(width, activation, scale) for _ in range(blocks)),
                             nn.BatchNorm1d(width), nn.Linear(width, num_classes))


def _binary_layers(model):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m.linear for m in model.modules() if isinstance(m, BinaryBlock)]


def set_binarization(model: nn.Module, weights: bool, activations: bool) -> None:
    r"""Switch the binary blocks of ``model`` between stages: binary or real weights, binary or real activations.

    The latent weights stay; a real stage simply skips the quantizer. :data:`STAGE_ORDERS` lists the stages of
    training from scratch, of the usual order and of the paper's reverse order."""
    weights, activations = require_bool(weights, "weights"), require_bool(activations, "activations")
    for layer in _binary_layers(model):
        layer._quantizers = getattr(layer, "_quantizers", (layer.weight_quantizer, layer.input_quantizer))
        layer.weight_quantizer = layer._quantizers[0] if weights else None
        layer.input_quantizer = layer._quantizers[1] if activations else None


def set_lambda(model: nn.Module, lam: float | None) -> None:
    """Set :math:`\\lambda` of every :class:`ProgressiveSign` of ``model`` (``None``: the hard sign)."""
    lam = None if lam is None else require_positive_number(lam, "lam")
    for layer in _binary_layers(model):
        for m in getattr(layer, "_quantizers", (layer.input_quantizer,)):
            if isinstance(m, ProgressiveSign):
                m.lam = lam


def staged_fit(model: nn.Module, data: Split, epochs: int = 6, order: str = "scratch", lam: tuple | None = None,
               smooth_fraction: float = 0.5, lr: float = 1e-2, batch_size: int = 64, seed: int = 0) -> float:
    r"""Train ``model`` (a :func:`binary_mlp`) in the stages of ``STAGE_ORDERS[order]`` (the epochs split evenly,
    a new Adam per stage, latent weights clipped to :math:`[-1, 1]`), and return the test accuracy of the network
    as the last stage leaves it, **with the hard sign** (exactly binary for every order but ``"real"``).

    ``lam = (start, end)`` turns on progressive quantization in each stage with binary activations:
    :math:`\lambda` follows :func:`lambda_schedule` over the first ``smooth_fraction`` of the stage's steps,
    then the hard sign with the straight-through estimator takes over for the rest (ours; ``1.0`` keeps the
    smooth sign to the end)."""
    _binary_layers(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    _require_choice(order, "order", tuple(STAGE_ORDERS))
    if lam is not None and (not isinstance(lam, tuple) or len(lam) != 2):
        raise TypeError(f"lam must be None or a (start, end) tuple, got {lam!r}")
    lam = lam and (require_positive_number(lam[0], "lam"), require_positive_number(lam[1], "lam"))
    smooth_fraction = require_positive_number(smooth_fraction, "smooth_fraction", maximum=1.0)
    stages, epochs = STAGE_ORDERS[order], require_int(epochs, "epochs", minimum=len(STAGE_ORDERS[order]))
    steps = -(-len(data.x_train) // require_int(batch_size, "batch_size", minimum=1))
    for i, (weights, activations) in enumerate(stages):
        set_binarization(model, weights, activations)
        stage_epochs = epochs // len(stages) + (epochs % len(stages) if i == len(stages) - 1 else 0)
        smooth = max(1, round(smooth_fraction * stage_epochs * steps)) if lam and activations else 0
        step = [0]

        def schedule(m, smooth=smooth, step=step):
            step[0] += 1
            set_lambda(m, lambda_schedule(step[0], smooth, *lam) if step[0] < smooth else None)

        set_lambda(model, lam[0] if smooth else None)
        train.fit(model, data, epochs=stage_epochs, lr=lr, batch_size=batch_size, weight_clip=1.0,
                  after_step=schedule if smooth else None, seed=seed, progress=False)
    set_lambda(model, None)
    return train.evaluate(model, data.x_test, data.y_test)


def comparison_layer(w_bits: int = 1, a_bits: int = 1, features: int = 128):
    r"""``(weight_quantizer, input_quantizer, activation)`` for :class:`qteach.comparison.Method`: XNOR-Net's
    analytic :math:`\alpha\operatorname{sign}(W)`, the clipped straight-through sign of the input and a PReLU of
    ``features`` channels (the protocol's hidden width) after the layer. Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    features = require_int(features, "features", minimum=1)
    return xn.BinaryWeight(scaled=True), qnn.SignQuantizer(), nn.PReLU(features, init=0.25)
