r"""Trained Ternary Quantization (TTQ): ternary weights with two *learned* scales per layer.

Zhu, Han, Mao and Dally quantize each layer's weights to three values, :math:`\{-W^n_l, 0, +W^p_l\}`, where the
positive and the negative scale are two independent, trainable full-precision parameters. Training keeps latent
full-precision weights :math:`\tilde{w}_l`; each forward pass ternarizes them with a layer-wise threshold

.. math::
    \Delta_l = t \times \max(|\tilde{w}_l|), \qquad
    w^t_l = \begin{cases} W^p_l & \tilde{w}_l > \Delta_l \\ 0 & |\tilde{w}_l| \le \Delta_l \\
    -W^n_l & \tilde{w}_l < -\Delta_l \end{cases}

(:func:`ttq_threshold`, :func:`ttq_ternarize`; :math:`t = 0.05` in the paper's CIFAR-10 and ImageNet
experiments, one value for all layers). Back-propagation sends two gradients (the paper's fig. 1): one to the
scales, which learns the ternary *values*, and a scaled one to the latent weights, which learns the ternary
*assignment*:

.. math::
    \frac{\partial L}{\partial W^p_l} = \sum_{i \in I^p_l} \frac{\partial L}{\partial w^t_l(i)}, \qquad
    \frac{\partial L}{\partial W^n_l} = -\sum_{i \in I^n_l} \frac{\partial L}{\partial w^t_l(i)}, \qquad
    \frac{\partial L}{\partial \tilde{w}_l} = \begin{cases}
    W^p_l \times \frac{\partial L}{\partial w^t_l} & \tilde{w}_l > \Delta_l \\
    1 \times \frac{\partial L}{\partial w^t_l} & |\tilde{w}_l| \le \Delta_l \\
    W^n_l \times \frac{\partial L}{\partial w^t_l} & \tilde{w}_l < -\Delta_l \end{cases}

with :math:`I^p_l = \{i \mid \tilde{w}_l(i) > \Delta_l\}` and :math:`I^n_l = \{i \mid \tilde{w}_l(i) <
-\Delta_l\}` (:class:`TTQQuantizer`, :func:`ttq_gradients`).

**The sign of** :math:`\partial L / \partial W^n_l`. Since :math:`w^t_l = -W^n_l` on :math:`I^n_l`, the
derivative carries a minus sign. The transcriptions of the paper's gradient equation that we could read, and the
PyTorch re-implementation the book's catalog links to (``TropComplique/trained-ternary-quantization``,
``utils/quantization.py``), have no minus sign; the authors' TensorFlow code (``czhu95/ternarynet``,
``examples/Ternary-Net/ternary.py``, ``tw_ternarize``) lets TensorFlow differentiate
:math:`\operatorname{sign}(\tilde{w}) \cdot W^n`, which gives the minus sign. This module follows the
authors' code (the derivative), and the tests check it against autograd.

The equations are quoted by content, not by number: the numbering of the ICLR version could not be checked for
this book.

References:

- Zhu, Han, Mao, Dally, *Trained Ternary Quantization*, ICLR 2017. https://arxiv.org/abs/1612.01064
- Authors' code (TensorFlow, tensorpack): https://github.com/czhu95/ternarynet
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from qteach._validate import require_float_tensor, require_weights

__all__ = [
    "THRESHOLD",
    "ttq_threshold",
    "ternary_masks",
    "ttq_ternarize",
    "ttq_gradients",
    "TTQQuantizer",
    "normalize_latent_weights_",
    "ttq_layers",
]

THRESHOLD = 0.05
"""The threshold factor :math:`t` of the paper's CIFAR-10 and ImageNet experiments (the authors' code's default)."""


def _require_t(t) -> float:
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise TypeError(f"t must be a number in [0, 1), got {type(t).__name__}")
    if not 0 <= t < 1:
        raise ValueError(f"t must be in [0, 1), got {t}")
    return float(t)


def ttq_threshold(w: torch.Tensor, t: float = THRESHOLD) -> torch.Tensor:
    r"""The layer-wise threshold :math:`\Delta_l = t \times \max(|\tilde{w}_l|)`, a 0-d tensor (no gradient: the
    authors' code wraps it in ``stop_gradient``)."""
    require_weights(w)
    return _require_t(t) * w.detach().abs().max()


def ternary_masks(w: torch.Tensor, t: float = THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The index sets :math:`I^p_l = \{\tilde{w} > \Delta_l\}` and :math:`I^n_l = \{\tilde{w} < -\Delta_l\}` as
    boolean masks; a weight exactly at :math:`\pm\Delta_l` is assigned 0, as in the paper's ternary function."""
    delta = ttq_threshold(w, t)
    return w > delta, w < -delta


def _require_scale(value, name: str, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, torch.Tensor)):
        raise TypeError(f"{name} must be a number or a 0-d tensor, got {type(value).__name__}")
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if value.numel() != 1:
        raise ValueError(f"{name} must be a single number (one scale per layer), got shape {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite")
    return value.reshape(())


class _TTQFunction(torch.autograd.Function):
    """Forward: the ternary weights; backward: the paper's two gradients (the scaled STE and the scale sums)."""

    @staticmethod
    def forward(ctx, w, w_p, w_n, t):
        pos, neg = ternary_masks(w, t)
        ctx.save_for_backward(pos, neg, w_p, w_n)
        return w_p * pos.to(w.dtype) - w_n * neg.to(w.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        pos, neg, w_p, w_n = ctx.saved_tensors
        grad_w, grad_p, grad_n = _gradients(grad_output, pos, neg, w_p, w_n)
        return grad_w, grad_p.reshape(w_p.shape), grad_n.reshape(w_n.shape), None


def _gradients(grad, pos, neg, w_p, w_n):
    scale = torch.where(pos, w_p, torch.where(neg, w_n, torch.ones_like(grad)))
    return grad * scale, (grad * pos).sum(), -(grad * neg).sum()


def ttq_ternarize(w: torch.Tensor, w_p, w_n, t: float = THRESHOLD) -> torch.Tensor:
    r"""The ternary weights :math:`w^t_l \in \{-W^n_l, 0, W^p_l\}` of latent weights ``w``, differentiable with
    the paper's rules with respect to ``w``, ``w_p`` and ``w_n`` (see the module docstring).

    ``w_p`` and ``w_n`` are numbers or 0-d tensors (parameters when they should train). Returns a tensor of
    ``w``'s shape.
    """
    require_weights(w)
    t = _require_t(t)
    w_p = w_p if isinstance(w_p, torch.Tensor) and w_p.numel() == 1 else _require_scale(w_p, "w_p", w)
    w_n = w_n if isinstance(w_n, torch.Tensor) and w_n.numel() == 1 else _require_scale(w_n, "w_n", w)
    for value, name in ((w_p, "w_p"), (w_n, "w_n")):
        if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be a finite floating-point scale")
    return _TTQFunction.apply(w, w_p, w_n, t)


def ttq_gradients(grad: torch.Tensor, w: torch.Tensor, w_p, w_n, t: float = THRESHOLD):
    r"""The paper's backward rules written out: given :math:`\partial L / \partial w^t_l` (``grad``) and the latent
    weights, return :math:`(\partial L / \partial \tilde{w}_l,\ \partial L / \partial W^p_l,\
    \partial L / \partial W^n_l)`. This is what :func:`ttq_ternarize` computes in its backward pass; it is exposed
    for the notebook and the tests."""
    require_weights(w)
    require_float_tensor(grad, "grad")
    if grad.shape != w.shape:
        raise ValueError(f"grad must have the shape of w {tuple(w.shape)}, got {tuple(grad.shape)}")
    w_p, w_n = _require_scale(w_p, "w_p", w), _require_scale(w_n, "w_n", w)
    pos, neg = ternary_masks(w, t)
    return _gradients(grad, pos, neg, w_p, w_n)


def _require_initial_scale(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


class TTQQuantizer(nn.Module):
    r"""TTQ weight quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``, with trainable
    :math:`W^p_l` and :math:`W^n_l` (``nn.Parameter`` s, so ``model.parameters()`` includes them).

    .. math:: q(\tilde{w}) = W^p_l\,1_{\tilde{w} > \Delta_l} - W^n_l\,1_{\tilde{w} < -\Delta_l},
        \qquad \Delta_l = t \max|\tilde{w}|

    with the backward rules of :func:`ttq_ternarize`. The authors' code initialises both scales to 1.0 (after the
    latent weights are divided by their maximum, :func:`normalize_latent_weights_`). ``precision = 2``.
    """

    precision = 2

    def __init__(self, t: float = THRESHOLD, w_p: float = 1.0, w_n: float = 1.0):
        t = _require_t(t)
        w_p, w_n = _require_initial_scale(w_p, "w_p"), _require_initial_scale(w_n, "w_n")
        super().__init__()
        self.t = t
        self.w_p = nn.Parameter(torch.tensor(w_p))
        self.w_n = nn.Parameter(torch.tensor(w_n))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return ttq_ternarize(w, self.w_p, self.w_n, self.t)

    @torch.no_grad()
    def sparsity(self, w: torch.Tensor) -> float:
        """The fraction of ternary weights that are 0 (:math:`|\\tilde{w}| \\le \\Delta_l`)."""
        pos, neg = ternary_masks(w, self.t)
        return 1.0 - float((pos | neg).float().mean())

    def extra_repr(self) -> str:
        return f"t={self.t}"


def ttq_layers(model: nn.Module) -> list:
    """The layers of ``model`` whose weight quantizer is a :class:`TTQQuantizer`, in order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return [m for m in model.modules() if isinstance(getattr(m, "weight_quantizer", None), TTQQuantizer)]


@torch.no_grad()
def normalize_latent_weights_(model: nn.Module) -> None:
    r"""The paper's first step (fig. 1): divide each TTQ layer's full-precision weights by their maximum
    magnitude, so they lie in :math:`[-1, 1]` before ternarization (in place)."""
    layers = ttq_layers(model)
    if not layers:
        raise ValueError("model has no layer with a TTQQuantizer as weight_quantizer")
    for layer in layers:
        top = layer.weight.abs().max()
        if top > 0:
            layer.weight.div_(top)
