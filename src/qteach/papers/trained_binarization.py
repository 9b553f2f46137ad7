r"""Trained binarization: learned scales for binary weights and activations, a tighter sign derivative, and L2 on
the weight scales.

Xu and Cheung (BMVC 2019, arXiv 1909.11366) binarize weights and activations with *trainable* scaling factors,

.. math:: \widetilde{W} = \alpha \operatorname{sign}(W), \qquad \widetilde{A} = \beta \operatorname{sign}(A),

"trained jointly with other parameters via backpropagation", and train with "tight approximation for derivative
of discontinuous binarization function and :math:`L_2` regularization acting on weight scaling factors" (the
abstract's words).

**What could be read.** Only the abstract and the introduction (arXiv listing, deepai.org) could be read for
this book, not the method section, so no equation is cited by number. A later survey describes the paper's
derivative as a higher-order approximation for the weights and a long-tailed one for the activations; its exact
form could not be checked. Everything below the abstract's level is **our reconstruction**:

- one learned :math:`\alpha` per output (started at XNOR-Net's :math:`\operatorname{mean}|W_o|`) and one learned
  :math:`\beta` per layer (started at 1) (:class:`TrainedScaleWeight`, :class:`TrainedScaleInput`);
- the "tighter" derivative taken from the polynomial family :func:`polynomial_sign` (ours), whose order 1 is
  BNN's Htanh estimator and order 2 Bi-Real Net's ApproxSign (:func:`qteach.binary.approx_sign`);
- the penalty :math:`\lambda \sum_l \lVert \alpha_l \rVert_2^2` added to the loss (:func:`scale_penalty`,
  :func:`protocol_fit`), with our :math:`\lambda`.

References:

- Z. Xu, R. C. C. Cheung, *Accurate and Compact Convolutional Neural Networks with Trained Binarization*, BMVC
  2019. arXiv:1909.11366.
- Z. Liu et al., *Bi-Real Net*, ECCV 2018 (the quadratic ApproxSign, order 2 here).
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_module,
    require_non_negative_number,
    require_optional_positive_number,
    require_positive_number,
    require_weights,
)

__all__ = [
    "BinaryQuantizer",
    "TrainedScaleInput",
    "TrainedScaleWeight",
    "binarize",
    "comparison_layer",
    "polynomial_sign",
    "polynomial_sign_derivative",
    "protocol_fit",
    "scale_penalty",
]


def _require_order(order) -> int:
    return require_int(order, "order", minimum=1, maximum=8)


def polynomial_sign(x: torch.Tensor, order: int = 2) -> torch.Tensor:
    r"""A smooth stand-in for the sign whose derivative training back-propagates (our family).

    .. math:: F_k(x) = \operatorname{sign}(x)\,\bigl(1 - (1 - |x|)^k\bigr) \ (|x| \le 1), \qquad
        F_k(x) = \operatorname{sign}(x) \ (|x| > 1)

    :math:`k = 1` is :math:`\operatorname{Htanh}` (BNN), :math:`k = 2` Bi-Real Net's quadratic spline
    :math:`2x - x|x|`. A larger order hugs the sign more tightly: :math:`\int_{-1}^{1} |\operatorname{sign} - F_k|
    = 2 / (k + 1)`.
    """
    require_float_tensor(x, "x")
    k = _require_order(order)
    inside = 1 - (1 - x.abs().clamp(max=1)) ** k
    return torch.sign(x) * inside


def polynomial_sign_derivative(x: torch.Tensor, order: int = 2) -> torch.Tensor:
    r"""The derivative of :func:`polynomial_sign`, the surrogate gradient of the sign:

    .. math:: F_k'(x) = k\,(1 - |x|)^{k - 1}\ (|x| \le 1), \qquad 0 \ (|x| > 1)

    Its area is 2 for every order (the jump of the sign); a larger :math:`k` makes it taller (:math:`k` at 0)
    and more concentrated on small inputs. Order 1 is the box :math:`1_{|x| \le 1}`, order 2 is
    :math:`2 - 2|x|`.
    """
    require_float_tensor(x, "x")
    k = _require_order(order)
    return torch.where(x.abs() <= 1, k * (1 - x.abs()).clamp(min=0) ** (k - 1), torch.zeros_like(x))


def binarize(x: torch.Tensor, order: int = 2) -> torch.Tensor:
    r"""Sign forward, :func:`polynomial_sign_derivative` backward.

    .. math:: q(x) = \operatorname{sign}(x), \qquad \frac{\partial q}{\partial x} := F_k'(x)

    ``order=1`` gives BNN's estimator (:func:`qteach.binary.ste_sign`), ``order=2`` Bi-Real Net's
    (:func:`qteach.binary.approx_sign`): the "tighter approximation" of our reconstruction.
    """
    require_float_tensor(x, "x")
    k = _require_order(order)
    return binary.sign_with_surrogate(x, lambda v: polynomial_sign_derivative(v, k))


class BinaryQuantizer(nn.Module):
    r""":func:`binarize` as a quantizer, without a scale: :math:`\operatorname{sign}(x)` with the surrogate of
    ``order``. ``precision = 1``."""

    precision = 1

    def __init__(self, order: int = 2):
        super().__init__()
        self.order = _require_order(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binarize(x, self.order)

    def extra_repr(self) -> str:
        return f"order={self.order}"


class TrainedScaleWeight(nn.Module):
    r"""Binary weights with one trainable scale per output: :math:`\widetilde{W}_o = \alpha_o
    \operatorname{sign}(W_o)`.

    .. math:: \frac{\partial C}{\partial \alpha_o} = \sum_i \frac{\partial C}{\partial \widetilde{W}_{oi}}
        \operatorname{sign}(W_{oi}), \qquad \frac{\partial C}{\partial W_{oi}} =
        \frac{\partial C}{\partial \widetilde{W}_{oi}}\, \alpha_o F_k'(W_{oi})

    :math:`\alpha` starts, on the first call, at XNOR-Net's :math:`\operatorname{mean}|W_o|` (our choice); after
    that it is a free parameter. ``order`` picks the surrogate (:func:`binarize`). ``precision = 1``.
    """

    precision = 1

    def __init__(self, out_features: int, order: int = 2):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(require_int(out_features, "out_features", minimum=1), 1))
        self.order = _require_order(order)
        self.register_buffer("initialised", torch.tensor(False))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_weights(w, "w")
        if w.dim() != 2 or w.shape[0] != self.alpha.shape[0]:
            raise ValueError(f"w must be ({self.alpha.shape[0]}, in_features), got shape {tuple(w.shape)}")
        if not self.initialised:
            with torch.no_grad():
                self.alpha.copy_(binary.mean_abs_scale(w))
                self.initialised.fill_(True)
        return self.alpha * binarize(w, self.order)

    def extra_repr(self) -> str:
        return f"out_features={self.alpha.shape[0]}, order={self.order}"


class TrainedScaleInput(nn.Module):
    r"""Binary activations with one trainable scale per layer: :math:`\widetilde{A} = \beta
    \operatorname{sign}(A)`, :math:`\partial C / \partial \beta = \sum \partial C / \partial \widetilde{A}
    \cdot \operatorname{sign}(A)`. :math:`\beta` starts at ``init``; ``order`` picks the surrogate.
    ``precision = 1``."""

    precision = 1

    def __init__(self, order: int = 2, init: float = 1.0):
        super().__init__()
        self.order = _require_order(order)
        self.beta = nn.Parameter(torch.tensor(require_positive_number(init, "init")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        return self.beta * binarize(x, self.order)

    def extra_repr(self) -> str:
        return f"order={self.order}"


def scale_penalty(model: nn.Module) -> torch.Tensor:
    r"""The L2 regularization of the weight scales, :math:`\sum_l \lVert \alpha_l \rVert_2^2 = \sum_l \sum_o
    \alpha_{l,o}^2`, over the :class:`TrainedScaleWeight` of ``model`` (a zero tensor if there are none). The
    training loss adds :math:`\lambda` times it; its gradient :math:`2\lambda\alpha` shrinks every scale."""
    require_module(model)
    terms = [m.alpha.pow(2).sum() for m in model.modules() if isinstance(m, TrainedScaleWeight)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def comparison_layer(w_bits: int = 1, a_bits: int = 1, features: int = 128, order: int = 2):
    r"""``(weight_quantizer, input_quantizer, activation)`` of a trained-binarization layer for
    :class:`qteach.comparison.Method`: :class:`TrainedScaleWeight` for ``features`` outputs (the protocol's
    hidden width), :class:`TrainedScaleInput`, both with the surrogate of ``order``, no activation after the
    layer. Train it with :func:`protocol_fit` to add the L2 penalty. Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return TrainedScaleWeight(features, order), TrainedScaleInput(order), nn.Identity()


def protocol_fit(model: nn.Module, data, seed: int, protocol, lam: float = 1e-3, weight_clip: float | None = 1.0):
    r"""Train ``model`` with the protocol's Adam loop on cross-entropy :math:`+\ \lambda \sum_l \lVert \alpha_l
    \rVert^2` (:func:`scale_penalty`), clipping the latent weights to ``weight_clip`` (``None``: no clipping).
    The ``fit`` of a :class:`qteach.comparison.Method`; returns :class:`qteach.train.History`."""
    from qteach import train

    require_module(model)
    lam = require_non_negative_number(lam, "lam")
    weight_clip = require_optional_positive_number(weight_clip, "weight_clip")
    cross_entropy = nn.CrossEntropyLoss()
    return train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                     seed=seed, progress=False, weight_clip=weight_clip,
                     loss_fn=lambda logits, y: cross_entropy(logits, y) + lam * scale_penalty(model))
