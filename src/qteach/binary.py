r"""Binarization: the sign function and its straight-through estimators.

Binary networks replace a real value by one bit, :math:`\pm 1`. The forward pass is the sign function; since its
derivative is zero almost everywhere, training back-propagates through a *surrogate* derivative instead. The
three classic surrogates are here, with Larq's names and semantics (``larq.quantizers``), and the plain
straight-through estimator for any quantizer (:func:`straight_through`).
"""

from __future__ import annotations

import torch

from qteach._validate import (require_bool, require_float_tensor, require_no_nan, require_optional_positive_number,
                               require_tensor, require_weights)


def sign(x: torch.Tensor) -> torch.Tensor:
    r"""Binarize to :math:`\pm 1` with :math:`\operatorname{sign}(0) = +1`.

    .. math:: \operatorname{sign}(x) = \begin{cases} +1 & x \ge 0 \\ -1 & x < 0 \end{cases}

    Unlike ``torch.sign``, zero maps to ``+1``, so the output always holds exactly one bit per value
    (Larq's ``math.sign`` makes the same choice). The result keeps the dtype and device of ``x``. A bool or
    complex ``x`` raises ``TypeError``; NaN (which has no sign) raises ``ValueError``.
    """
    require_tensor(x, "x")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"x must be a real numeric tensor, got {x.dtype}")
    require_no_nan(x, "x")
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x >= 0, one, -one)


class _SignWithSurrogate(torch.autograd.Function):
    """sign(x) forward; the backward multiplies the incoming gradient by ``surrogate(x)``."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return sign(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate(x), None


def sign_with_surrogate(x: torch.Tensor, derivative) -> torch.Tensor:
    r"""The exact sign forward, a chosen surrogate derivative backward:

    .. math:: q(x) = \operatorname{sign}(x), \qquad \frac{\partial q}{\partial x} := g(x)

    ``derivative`` is :math:`g`, a function from the input tensor to a tensor of its shape. :func:`ste_sign` and
    :func:`approx_sign` are two choices of :math:`g`; the 2019 papers (BNN+'s SignSwish, trained binarization)
    bring others."""
    require_float_tensor(x, "x")
    if not callable(derivative):
        raise TypeError(f"derivative must be a function of the input tensor, got {type(derivative).__name__}")
    return _SignWithSurrogate.apply(x, derivative)


def ste_sign(x: torch.Tensor, clip: float | None = 1.0) -> torch.Tensor:
    r"""Sign with the straight-through estimator (STE), clipped.

    .. math::
        q(x) = \operatorname{sign}(x), \qquad
        \frac{\partial q}{\partial x} = 1_{|x| \le \text{clip}}

    With ``clip=1`` this is the derivative of :math:`\operatorname{Htanh}(x) = \operatorname{clip}(x, -1, 1)`,
    as in Binarized Neural Networks (Hubara et al., 2016, eq. 4, "cancels the gradient when r is too large").
    ``clip=None`` passes the gradient through unchanged (the plain STE of Bengio et al., 2013). ``x`` is a
    floating-point tensor without NaN and ``clip`` a positive finite number or ``None``; anything else raises
    ``TypeError``/``ValueError``.

    References:

    - Bengio, Léonard, Courville, *Estimating or Propagating Gradients Through Stochastic Neurons*, 2013.
    - Hubara et al., *Binarized Neural Networks*, NIPS 2016.
    """
    require_float_tensor(x, "x")
    clip = require_optional_positive_number(clip, "clip")
    if clip is None:
        return _SignWithSurrogate.apply(x, torch.ones_like)
    return _SignWithSurrogate.apply(x, lambda v: (v.abs() <= clip).to(v.dtype))


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized tensor as given; backward: the incoming gradient to the latent tensor, unchanged."""

    @staticmethod
    def forward(ctx, latent, quantized):
        return quantized

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


def straight_through(latent: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
    r"""The straight-through estimator as a building block: the value of ``quantized``, the gradient of ``latent``.

    .. math::
        \text{forward: } y = q, \qquad \text{backward: } \frac{\partial C}{\partial r} := \frac{\partial C}{\partial y}

    ``quantized`` (:math:`q`) is whatever a quantizer made of ``latent`` (:math:`r`): a sign, a rounding, a
    ternarization, a random draw. Their derivatives are zero almost everywhere, so training back-propagates as if
    the quantizer were the identity: the straight-through estimator (Bengio, Léonard and Courville, 2013, who credit
    Hinton's lectures). The forward value is ``quantized`` exactly (``latent + (quantized - latent).detach()``
    can differ from it by a rounding step); no gradient reaches ``quantized``, so compute it under
    ``torch.no_grad()``. Both are floating-point tensors of the same shape. A clipped estimator
    (:func:`ste_sign`) also zeroes the gradient outside :math:`[-1, 1]`; this one does not.

    References:

    - Bengio, Léonard, Courville, *Estimating or Propagating Gradients Through Stochastic Neurons*, 2013.
    """
    require_float_tensor(latent, "latent")
    require_float_tensor(quantized, "quantized")
    if quantized.shape != latent.shape:
        raise ValueError(f"quantized must have the shape of latent {tuple(latent.shape)}, got "
                         f"{tuple(quantized.shape)}")
    return _StraightThrough.apply(latent, quantized)


def _approx_sign_derivative(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x.abs() <= 1, 2 - 2 * x.abs(), torch.zeros_like(x))


def approx_sign(x: torch.Tensor) -> torch.Tensor:
    r"""Sign with Bi-Real Net's piecewise-polynomial surrogate gradient.

    .. math::
        q(x) = \operatorname{sign}(x), \qquad
        \frac{\partial q}{\partial x} = \begin{cases} 2 - 2|x| & |x| \le 1 \\ 0 & \text{otherwise} \end{cases}

    The surrogate is the derivative of a quadratic spline that approximates sign more tightly than Htanh
    (Liu et al., *Bi-Real Net*, ECCV 2018, eq. 6–7); Larq calls it ``approx_sign``. A non-float ``x`` raises
    ``TypeError``, NaN ``ValueError``.
    """
    require_float_tensor(x, "x")
    return _SignWithSurrogate.apply(x, _approx_sign_derivative)


def mean_abs_scale(w: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    r"""The L1 scaling factor :math:`\alpha = \frac{1}{n}\lVert W \rVert_{\ell 1}` of a weight tensor.

    It is the closed-form minimiser of :math:`\lVert W - \alpha\,\operatorname{sign}(W) \rVert^2`
    (Rastegari et al., *XNOR-Net*, 2016, eq. 4–6), reused by BWN, XNOR-Net, DoReFa's and Larq's
    ``magnitude_aware_sign``. With ``per_channel=True`` there is one :math:`\alpha` per output channel (dim 0),
    shaped to broadcast against ``w``; otherwise one scalar for the whole tensor. An empty, 0-d or non-finite
    ``w`` raises ``ValueError`` (its scale would be NaN or infinite).
    """
    require_weights(w, "w")
    if w.dim() == 0:
        raise ValueError("w must have at least one dimension")
    if not require_bool(per_channel, "per_channel"):
        return w.abs().mean()
    dims = tuple(range(1, w.dim()))
    if not dims:
        return w.abs()
    return w.abs().mean(dim=dims, keepdim=True)
