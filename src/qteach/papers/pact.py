r"""PACT: a clipping level :math:`\alpha` learned by back-propagation replaces ReLU before a k-bit quantizer.

Choi, Wang, Venkataramani, Chuang, Srinivasan and Gopalakrishnan (arXiv 1805.06085, 2018) quantize the
*activations* of a network to :math:`k` bits. A ReLU's output is unbounded, so a uniform quantizer needs a range,
and a fixed one is a bad compromise: clip high (ReLU6, or the largest activation) and the few levels are spread
over a range most values never reach; clip low and large activations are lost. PACT makes the clipping level a
parameter :math:`\alpha` of each layer, trained with the weights.

**The activation (eq. 1)** (:func:`pact_clip`):

.. math:: y = \mathrm{PACT}(x) = 0.5\,\big(|x| - |x - \alpha| + \alpha\big)
    = \begin{cases} 0 & x \in (-\infty, 0) \\ x & x \in [0, \alpha) \\ \alpha & x \in [\alpha, +\infty) \end{cases}

**The quantizer (eq. 2)** (:func:`pact_quantize`): :math:`k` bits, :math:`2^k` levels evenly spaced on
:math:`[0, \alpha]`,

.. math:: y_q = \operatorname{round}\!\Big(y \cdot \frac{2^k - 1}{\alpha}\Big) \cdot \frac{\alpha}{2^k - 1} .

**The gradient of** :math:`\alpha` **(eq. 3).** The rounding is passed straight through
(:math:`\partial y_q / \partial y = 1`), so

.. math:: \frac{\partial y_q}{\partial \alpha} = \frac{\partial y_q}{\partial y}\frac{\partial y}{\partial \alpha}
    = \begin{cases} 0 & x \in (-\infty, \alpha) \\ 1 & x \in [\alpha, +\infty) \end{cases}

and the gradient of the input is :math:`1_{[0, \alpha)}(x)`, the clipped ReLU's. :func:`pact_quantize` uses
exactly these two rules. Differentiating eq. 2 itself, with only the ``round`` passed straight through
(:func:`pact_quantize_autograd`), gives one more term inside the range, :math:`y_q/\alpha - y/\alpha` (the
rounding error relative to :math:`\alpha`); eq. 3 drops it. The notebook compares the two.

**Regularization.** The paper adds an L2 penalty :math:`\lambda_\alpha \alpha^2` on each :math:`\alpha`
(:func:`alpha_l2`), which pulls :math:`\alpha` down, trading clipping error for rounding error.

**What comes from where.** Eq. 1-3 are from the paper (arXiv 1805.06085, sec. 2), cross-checked with a
transcription of eq. 1-3 in a PyTorch forum question (discuss.pytorch.org, "How to implement PACT quantization in
PyTorch"). There is no official code. The paper quantizes the weights with DoReFa-Net's quantizer; this module
does activations only. The values of :math:`\lambda_\alpha` and of the initial :math:`\alpha` used in the
paper's experiments could not be checked for this book and are not used: :class:`PACT` takes both as arguments.

References:

- J. Choi, Z. Wang, S. Venkataramani, P. I.-J. Chuang, V. Srinivasan, K. Gopalakrishnan, *PACT: Parameterized
  Clipping Activation for Quantized Neural Networks*, arXiv:1805.06085, 2018.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach._validate import (require_bits, require_bool, require_float_input, require_module,
                               require_non_negative_number, require_positive_number)

__all__ = [
    "pact_clip",
    "pact_quantize",
    "pact_quantize_autograd",
    "alpha_gradient_rule",
    "PACT",
    "pact_modules",
    "alpha_l2",
]


def _require_alpha(alpha) -> torch.Tensor:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, torch.Tensor)):
        raise TypeError(f"alpha must be a positive number or a one-element tensor, got {type(alpha).__name__}")
    if isinstance(alpha, torch.Tensor):
        if alpha.numel() != 1 or not alpha.is_floating_point():
            raise ValueError(f"alpha must be a one-element float tensor, got shape {tuple(alpha.shape)}, "
                             f"dtype {alpha.dtype}")
        if not bool(alpha.detach().reshape(()) > 0):
            raise ValueError(f"alpha must be > 0, got {alpha.detach().reshape(()).item()}")
        return alpha
    require_positive_number(alpha, "alpha")
    return torch.tensor(float(alpha))


def pact_clip(x: torch.Tensor, alpha) -> torch.Tensor:
    r"""The PACT activation (eq. 1): :math:`y = 0.5\,(|x| - |x - \alpha| + \alpha)`, i.e. clip to
    :math:`[0, \alpha]`.

    Written with absolute values as in the paper, so that autograd differentiates it: :math:`\partial y/\partial x
    = 1` on :math:`(0, \alpha)` and :math:`\partial y/\partial\alpha = 1` for :math:`x > \alpha` (0.5 exactly at
    the kinks, where ``torch.sign`` is 0). ``alpha`` is a positive number or a one-element tensor.
    """
    require_float_input(x, "x")
    alpha = _require_alpha(alpha)
    return 0.5 * (x.abs() - (x - alpha).abs() + alpha)


class _PACTFunction(torch.autograd.Function):
    """Forward eq. 1-2; backward the paper's rules: input 1[0 <= x < alpha], alpha 1[x >= alpha] (eq. 3)."""

    @staticmethod
    def forward(ctx, x, alpha, levels):
        a = alpha.reshape(())
        y = torch.clamp(x, min=0.0)
        y = torch.minimum(y, a)
        ctx.save_for_backward(x, a)
        return torch.round(y * levels / a) * a / levels

    @staticmethod
    def backward(ctx, grad_output):
        x, a = ctx.saved_tensors
        inside = (x >= 0) & (x < a)
        grad_x = grad_output * inside.to(grad_output.dtype)
        grad_alpha = (grad_output * (x >= a).to(grad_output.dtype)).sum()
        return grad_x, grad_alpha, None


def pact_quantize(x: torch.Tensor, alpha, bits: int) -> torch.Tensor:
    r"""PACT's k-bit activation (eq. 1-2) with the paper's gradients (eq. 3).

    .. math:: y_q = \operatorname{round}\!\Big(y \frac{2^k - 1}{\alpha}\Big) \frac{\alpha}{2^k - 1}, \qquad
        \frac{\partial y_q}{\partial x} = 1_{[0, \alpha)}(x), \qquad
        \frac{\partial y_q}{\partial \alpha} = 1_{[\alpha, \infty)}(x)

    with :math:`y = \operatorname{clip}(x, 0, \alpha)` (:func:`pact_clip`). ``alpha`` is a positive number or a
    one-element tensor (an ``nn.Parameter`` gets the summed gradient, shaped like itself); ``bits`` in [1, 32].
    Rounding is half to even (``torch.round``).
    """
    require_float_input(x, "x")
    alpha = _require_alpha(alpha)
    bits = require_bits(bits, "bits")
    return _PACTFunction.apply(x, alpha.reshape(()).to(x.dtype), float(2**bits - 1))


def pact_quantize_autograd(x: torch.Tensor, alpha, bits: int) -> torch.Tensor:
    r"""Eq. 1-2 differentiated by autograd, with only the rounding passed straight through.

    :math:`y_q = \alpha \cdot q(y/\alpha)` with :math:`q(r) = \operatorname{round}((2^k-1) r)/(2^k-1)` and
    :math:`\partial q/\partial r := 1`. Its :math:`\alpha`-gradient is :math:`1` for :math:`x \ge \alpha` (as eq.
    3), 0 for :math:`x < 0`, and :math:`(y_q - y)/\alpha` in between: the term that eq. 3 drops. The forward
    value equals :func:`pact_quantize`'s.
    """
    require_float_input(x, "x")
    alpha = _require_alpha(alpha)
    bits = require_bits(bits, "bits")
    n = float(2**bits - 1)
    a = alpha.reshape(()).to(x.dtype)
    y = torch.minimum(torch.clamp(x, min=0.0), a)
    r = y / a
    q = r + (torch.round(r * n) / n - r).detach()
    return a * q


def alpha_gradient_rule(x: torch.Tensor, alpha, grad_output: torch.Tensor | None = None) -> torch.Tensor:
    r"""Eq. 3 summed by hand: :math:`\partial L/\partial\alpha = \sum_i g_i\, 1[x_i \ge \alpha]` (:math:`g`
    defaults to ones, which counts the clipped inputs)."""
    require_float_input(x, "x")
    alpha = _require_alpha(alpha)
    g = torch.ones_like(x) if grad_output is None else grad_output
    return (g * (x >= alpha.detach().reshape(())).to(x.dtype)).sum()


class PACT(nn.Module):
    r"""A PACT activation layer: :func:`pact_quantize` with its own :math:`\alpha`, one per layer.

    ``alpha`` is the initial clipping level; ``learn_alpha=False`` keeps it fixed (a buffer), which makes the
    layer a plain clipped ReLU with a fixed range (``alpha=6``: a quantized ReLU6), the baseline PACT improves on.
    ``bits=None`` clips without quantizing (eq. 1 only).
    """

    def __init__(self, bits: int | None = 4, alpha: float = 6.0, learn_alpha: bool = True):
        super().__init__()
        self.bits = None if bits is None else require_bits(bits, "bits")
        alpha = require_positive_number(alpha, "alpha")
        self.learn_alpha = require_bool(learn_alpha, "learn_alpha")
        value = torch.tensor(float(alpha))
        if learn_alpha:
            self.alpha = nn.Parameter(value)
        else:
            self.register_buffer("alpha", value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return pact_clip(x, self.alpha)
        return pact_quantize(x, self.alpha, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, alpha={self.alpha.item():.4g}, learn_alpha={self.learn_alpha}"


def pact_modules(model: nn.Module) -> list[PACT]:
    """The :class:`PACT` layers of ``model``, in order."""
    require_module(model)
    return [m for m in model.modules() if isinstance(m, PACT)]


def alpha_l2(model: nn.Module, lam: float) -> torch.Tensor:
    r"""The paper's regularizer on the clipping levels: :math:`\lambda_\alpha \sum_l \alpha_l^2` over the
    learnable :class:`PACT` layers of ``model`` (add it to the loss)."""
    require_module(model)
    lam = require_non_negative_number(lam, "lam")
    alphas = [m.alpha for m in pact_modules(model) if m.learn_alpha]
    if not alphas:
        return torch.zeros(())
    return lam * sum(a**2 for a in alphas)
