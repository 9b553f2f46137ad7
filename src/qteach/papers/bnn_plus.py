r"""BNN+: the SignSwish surrogate gradient for sign, and a regularizer that pulls weights to :math:`\pm\alpha`.

Darabi, Belbahri, Courbariaux and Partovi Nia (arXiv 1812.11800, 2018; later versions titled "Regularized Binary
Network Training") keep the binary network of BNN (sign weights and activations) and change two things in its
training, according to the abstract: "an improved approximation of the derivative of the sign activation
function in the backward computation", and "a new regularization function that encourages training weights
around binary values", with "trainable scaling factors" added to it.

**What could be read.** Only the abstracts of versions 1-3 could be read for this book, not the full text, so
no equation is cited by number. The formulas below come from two secondary sources, and the combination is our
reconstruction:

- **SignSwish** (:func:`sign_swish`, :func:`sign_swish_derivative`, :func:`swish_sign`) as implemented by Larq,
  which cites the paper (``larq/quantizers.py``, ``swish_sign``, lines 109-118 at commit ``fe3ce52``): the
  forward pass is the sign, the backward pass uses the derivative of

  .. math:: SS_\beta(x) = 2\sigma(\beta x)\,[1 + \beta x\,(1 - \sigma(\beta x))] - 1, \qquad
      \frac{dSS_\beta}{dx} = \frac{\beta\,[2 - \beta x \tanh(\beta x / 2)]}{1 + \cosh(\beta x)} ,

  :math:`\sigma` the logistic sigmoid; a larger :math:`\beta` gives a closer approximation of the sign (Larq's
  default is :math:`\beta = 5`).
- **The regularizers** :math:`R_1(w) = |\alpha - |w||` (Manhattan) and :math:`R_2(w) = (\alpha - |w|)^2`
  (Euclidean) as transcribed with :math:`\alpha = 1` by third-party code that cites version 3; the abstract says
  the scaling factors :math:`\alpha` are trainable. We add :math:`\lambda \sum_l R(W_l, \alpha_l)` to the loss,
  with one :math:`\alpha_l` per layer, averaged over the weights of each layer (our normalisation, so that
  :math:`\lambda` does not depend on the layer size) (:func:`regularizer`, :func:`regularization`).
- **Scaled binary weights** :math:`\alpha_l \operatorname{sign}(W_l)` in the forward pass, with the
  straight-through gradient for :math:`W_l` (:class:`ScaledBinaryWeight`): our reading of "trainable scaling
  factors", in the manner of XNOR-Net.

References:

- S. Darabi, M. Belbahri, M. Courbariaux, V. Partovi Nia, *BNN+: Improved Binary Network Training*,
  arXiv:1812.11800, 2018.
- Larq, https://github.com/larq/larq (``larq/quantizers.py``, ``swish_sign``), a third-party implementation.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_module,
    require_non_negative_number,
    require_positive_number,
    require_str,
    require_weights,
)

__all__ = [
    "KINDS",
    "ScaledBinaryWeight",
    "SwishSignQuantizer",
    "comparison_layer",
    "protocol_fit",
    "regularization",
    "regularizer",
    "sign_swish",
    "sign_swish_derivative",
    "swish_sign",
]

KINDS = ("l1", "l2")


def sign_swish(x: torch.Tensor, beta: float = 5.0) -> torch.Tensor:
    r"""The SignSwish function, a smooth approximation of the sign whose derivative BNN+ back-propagates.

    .. math:: SS_\beta(x) = 2\sigma(\beta x)\,[1 + \beta x\,(1 - \sigma(\beta x))] - 1

    It is :math:`2\,\mathrm{swish}_\beta'(x) - 1`, twice the derivative of the swish :math:`x\sigma(\beta x)`
    minus one: odd, :math:`SS_\beta(0) = 0`, :math:`SS_\beta(\pm\infty) = \pm 1`, overshooting to :math:`\pm 1.2`
    at :math:`|\beta x| \approx 2.4`, where its derivative changes sign.
    """
    require_float_tensor(x, "x")
    beta = require_positive_number(beta, "beta")
    s = torch.sigmoid(beta * x)
    return 2 * s * (1 + beta * x * (1 - s)) - 1


def sign_swish_derivative(x: torch.Tensor, beta: float = 5.0) -> torch.Tensor:
    r"""The derivative of :func:`sign_swish` in closed form (as Larq's ``swish_sign`` gradient).

    .. math:: \frac{dSS_\beta}{dx} = \frac{\beta\,[2 - \beta x \tanh(\beta x / 2)]}{1 + \cosh(\beta x)}

    Its peak is :math:`\beta` at :math:`x = 0`; it crosses zero where :math:`\beta x \tanh(\beta x/2) = 2`
    and is slightly negative beyond; its integral over the real line is :math:`SS_\beta(\infty) -
    SS_\beta(-\infty) = 2` for every :math:`\beta`, as that of the Htanh estimator :math:`1_{|x| \le 1}`.
    """
    require_float_tensor(x, "x")
    beta = require_positive_number(beta, "beta")
    bx = beta * x
    return beta * (2 - bx * torch.tanh(bx / 2)) / (1 + torch.cosh(bx))


def swish_sign(x: torch.Tensor, beta: float = 5.0) -> torch.Tensor:
    r"""Sign forward, SignSwish derivative backward.

    .. math:: q(x) = \operatorname{sign}(x), \qquad \frac{\partial q}{\partial x} := \frac{dSS_\beta}{dx}(x)

    BNN's estimator is :math:`1_{|x| \le 1}` (:func:`qteach.binary.ste_sign`); this one is smooth, peaks at
    :math:`\beta` and fades out over a width of a few :math:`1/\beta`.
    """
    require_float_tensor(x, "x")
    beta = require_positive_number(beta, "beta")
    return binary.sign_with_surrogate(x, lambda v: sign_swish_derivative(v, beta))


class SwishSignQuantizer(nn.Module):
    r"""The binary activation of BNN+: :func:`swish_sign` with a fixed :math:`\beta`. ``precision = 1``."""

    precision = 1

    def __init__(self, beta: float = 5.0):
        super().__init__()
        self.beta = require_positive_number(beta, "beta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swish_sign(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


class ScaledBinaryWeight(nn.Module):
    r"""Binary weights with one trainable scale per layer: :math:`\widetilde{W} = \alpha \operatorname{sign}(W)`.

    The gradient reaches :math:`W` straight through (identity) and :math:`\alpha` through the product; the
    regularizer (:func:`regularization`) ties :math:`\alpha` to the weights. ``alpha`` is the initial scale;
    ``None`` (the default) sets it on the first call to :math:`\operatorname{mean}|W|`, XNOR-Net's scale (our
    choice of initialisation). ``precision = 1``.
    """

    precision = 1

    def __init__(self, alpha: float | None = None):
        super().__init__()
        start = 1.0 if alpha is None else require_positive_number(alpha, "alpha")
        self.alpha = nn.Parameter(torch.tensor(start))
        self.register_buffer("initialised", torch.tensor(alpha is not None))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_weights(w, "w")
        if not self.initialised:
            with torch.no_grad():
                self.alpha.copy_(w.abs().mean())
                self.initialised.fill_(True)
        return self.alpha * binary.ste_sign(w, clip=None)


def regularizer(w: torch.Tensor, alpha, kind: str = "l2") -> torch.Tensor:
    r"""The BNN+ regularizer of one layer, averaged over its weights.

    .. math:: R_1(W, \alpha) = \tfrac{1}{n}\sum_i \bigl|\alpha - |w_i|\bigr|, \qquad
        R_2(W, \alpha) = \tfrac{1}{n}\sum_i (\alpha - |w_i|)^2

    Both are zero exactly when every :math:`w_i = \pm\alpha`. ``alpha`` is a number or a tensor that broadcasts
    against ``w``; ``kind`` is ``"l1"`` (:math:`R_1`) or ``"l2"`` (:math:`R_2`).
    """
    require_weights(w, "w")
    if not isinstance(alpha, torch.Tensor):
        alpha = require_non_negative_number(alpha, "alpha")
    if require_str(kind, "kind") not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    gap = alpha - w.abs()
    return (gap.abs() if kind == "l1" else gap ** 2).mean()


def regularization(model: nn.Module, kind: str = "l2") -> torch.Tensor:
    r""":math:`\sum_l R(W_l, \alpha_l)` over the layers of ``model`` whose weights are :class:`ScaledBinaryWeight`
    (a zero tensor if there are none). The training loss is the cross-entropy plus :math:`\lambda` times this."""
    require_module(model)
    if require_str(kind, "kind") not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    terms = [regularizer(m.weight, m.weight_quantizer.alpha, kind) for m in model.modules()
             if isinstance(getattr(m, "weight_quantizer", None), ScaledBinaryWeight)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def comparison_layer(w_bits: int = 1, a_bits: int = 1, beta: float = 5.0):
    r"""``(weight_quantizer, input_quantizer, activation)`` of a BNN+ layer for :class:`qteach.comparison.Method`:
    scaled binary weights (:class:`ScaledBinaryWeight`), no input quantizer, the SignSwish sign as the
    activation (as BNN's entry uses the Htanh sign). Train it with :func:`protocol_fit` to add the regularizer.
    Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return ScaledBinaryWeight(), None, SwishSignQuantizer(beta)


def protocol_fit(model: nn.Module, data, seed: int, protocol, lam: float = 10.0, kind: str = "l2",
                 weight_clip: float | None = 1.0):
    r"""Train ``model`` with the protocol's Adam loop on cross-entropy :math:`+\ \lambda \sum_l R(W_l, \alpha_l)`,
    clipping the latent weights to ``weight_clip`` as BNN does (``None``: no clipping). The ``fit`` of a
    :class:`qteach.comparison.Method`; returns :class:`qteach.train.History`."""
    from qteach import train

    require_module(model)
    lam = require_non_negative_number(lam, "lam")
    if require_str(kind, "kind") not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    cross_entropy = nn.CrossEntropyLoss()
    return train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                     seed=seed, progress=False, weight_clip=weight_clip,
                     loss_fn=lambda logits, y: cross_entropy(logits, y) + lam * regularization(model, kind))

