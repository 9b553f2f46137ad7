r"""Blended coarse gradient descent (BCGD): pull the float weights towards their quantization at every step.

Yin, Zhang, Lyu, Osher, Qi and Xin train quantized networks with a *coarse gradient*: the loss is evaluated at the
quantized weights :math:`w = Q(w_f)` and its gradient with respect to :math:`w` is applied to the float weights
:math:`w_f`, as if the quantizer were the identity (the straight-through estimator; for quantized activations, a
proxy derivative of the staircase). BinaryConnect's update is

.. math:: w_f^{t+1} = w_f^t - \eta\, \nabla f(w^t), \qquad w^t = Q(w_f^t)

(:func:`binaryconnect_step`). BCGD *blends* the float weights with their quantization before the step:

.. math:: w_f^{t+1} = (1 - \rho)\, w_f^t + \rho\, w^t - \eta\, \nabla f(w^t), \qquad 0 \le \rho < 1

(:func:`blended_step`, :class:`BCGD`). :math:`\rho = 0` is BinaryConnect exactly. With :math:`\rho > 0` the float
weights are pulled a fraction :math:`\rho` of the way towards the quantized ones at every step, so they cannot
drift arbitrarily far from them while the quantized weights stop changing; the paper shows that this gives a
sufficient-descent property of the objective that plain BinaryConnect lacks (abstract); its value of :math:`\rho` for long ImageNet runs was not verified for this
book.

At a fixed point where :math:`w` no longer changes, the update gives :math:`\rho (w_f - w) = -\eta \nabla f(w)`,
so :math:`\lVert w_f - w\rVert = (\eta / \rho) \lVert\nabla f(w)\rVert` (:func:`fixed_point_distance`): the
blending bounds how far the float weights sit from the quantized ones; with :math:`\rho = 0` nothing does.

The quantizer used here for binary weights is the projection onto :math:`\{\pm\alpha\}` with one scale per layer,
:math:`Q(w_f) = \alpha \operatorname{sign}(w_f)`, :math:`\alpha = \lVert w_f\rVert_1 / n` (:func:`quantize_binary`).

What this module could not check: only the abstract and the introduction of the paper could be read when it was
written (arXiv 1808.05240), so the update is cited by name, not by equation number, and the paper's quantizers
for more than one bit and its adaptive activation quantizer (with the exact derivative in the resolution
:math:`\alpha`) are not implemented. The paper has no official code link in the book's catalog.

References:

- P. Yin, S. Zhang, J. Lyu, S. Osher, Y. Qi, J. Xin, *Blended Coarse Gradient Descent for Full Quantization of
  Deep Neural Networks*, Research in the Mathematical Sciences 6, 2019. https://arxiv.org/abs/1808.05240
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_float_tensor, require_no_nan, require_positive_number

__all__ = [
    "quantize_binary",
    "ScaledSignSTE",
    "binaryconnect_step",
    "blended_step",
    "fixed_point_distance",
    "BCGD",
]


def _require_rho(rho) -> float:
    if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
        raise ValueError(f"rho must be a number in [0, 1), got {rho!r}")
    return float(rho)


def _require_like(w: torch.Tensor, **others) -> None:
    require_float_tensor(w, "w_f")
    for name, value in others.items():
        require_float_tensor(value, name)
        if value.shape != w.shape:
            raise ValueError(f"{name} must have the shape of w_f {tuple(w.shape)}, got {tuple(value.shape)}")


def quantize_binary(w_f: torch.Tensor) -> torch.Tensor:
    r"""The projection onto :math:`\{\pm\alpha\}`: :math:`Q(w_f) = \alpha\operatorname{sign}(w_f)` with
    :math:`\alpha = \lVert w_f\rVert_1 / n`, the :math:`\alpha` that minimises :math:`\lVert w_f - \alpha
    \operatorname{sign}(w_f)\rVert^2` (one scale for the tensor; ``sign(0) = +1``)."""
    require_float_tensor(w_f, "w_f")
    require_no_nan(w_f, "w_f")
    return w_f.abs().mean() * binary.sign(w_f)


class ScaledSignSTE(nn.Module):
    r"""Weight quantizer for :class:`qteach.nn.QuantLinear`: forward :func:`quantize_binary`, backward the identity,
    so that the gradient a layer's latent weight receives is :math:`\nabla f(w)` at the quantized weight (the coarse
    gradient of the weights)."""

    precision = 1

    def forward(self, w_f: torch.Tensor) -> torch.Tensor:
        return binary.straight_through(w_f, quantize_binary(w_f.detach()))


def binaryconnect_step(w_f: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    r"""BinaryConnect's update without its clip: :math:`w_f - \eta\,\nabla f(w)`, with ``grad`` the gradient at the
    quantized weights."""
    _require_like(w_f, grad=grad)
    lr = require_positive_number(lr, "lr")
    return w_f - lr * grad


def blended_step(w_f: torch.Tensor, w_q: torch.Tensor, grad: torch.Tensor, lr: float, rho: float) -> torch.Tensor:
    r"""One BCGD update:

    .. math:: w_f \leftarrow (1 - \rho)\, w_f + \rho\, w_q - \eta\,\nabla f(w_q)

    ``w_q`` is the quantization :math:`Q(w_f)` and ``grad`` the (coarse) gradient at it; ``rho = 0`` is
    :func:`binaryconnect_step`.
    """
    _require_like(w_f, w_q=w_q, grad=grad)
    lr = require_positive_number(lr, "lr")
    rho = _require_rho(rho)
    return (1 - rho) * w_f + rho * w_q - lr * grad


def fixed_point_distance(grad_norm: float, lr: float, rho: float) -> float:
    r"""Where BCGD comes to rest with :math:`w` fixed: :math:`\lVert w_f - w\rVert = (\eta / \rho)\lVert\nabla f(w)
    \rVert`; infinite for :math:`\rho = 0` (BinaryConnect: nothing holds :math:`w_f` back)."""
    lr = require_positive_number(lr, "lr")
    rho = _require_rho(rho)
    if isinstance(grad_norm, bool) or not isinstance(grad_norm, (int, float)) or grad_norm < 0:
        raise ValueError(f"grad_norm must be a non-negative number, got {grad_norm!r}")
    if rho == 0:
        return float("inf") if grad_norm > 0 else 0.0
    return lr / rho * grad_norm


class BCGD(torch.optim.Optimizer):
    r"""BCGD as a PyTorch optimizer. ``params`` are the latent float weights of quantized layers (quantized with
    ``quantizer``, default :func:`quantize_binary`), whose ``.grad`` must be the gradient at the quantized weights
    (use :class:`ScaledSignSTE` in the layers). Each step applies :func:`blended_step`. Parameters that are not
    quantized (biases) go in a group with ``quantized=False`` and get plain gradient steps."""

    def __init__(self, params, lr: float = 0.05, rho: float = 0.0, quantizer=quantize_binary):
        lr = require_positive_number(lr, "lr")
        rho = _require_rho(rho)
        if not callable(quantizer):
            raise TypeError(f"quantizer must be callable, got {type(quantizer).__name__}")
        super().__init__(params, dict(lr=lr, rho=rho, quantized=True, quantizer=quantizer))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["quantized"]:
                    p.copy_(blended_step(p, group["quantizer"](p), p.grad, group["lr"], group["rho"]))
                else:
                    p.sub_(group["lr"] * p.grad)
        return loss
