r"""ABC-Net: a weight as a sum of several binary bases, an activation as a sum of several binary activations.

Lin, Zhao and Pan keep the inference arithmetic binary but use *more than one* binary tensor per real one.

**Weights (sec. 3.1).** A layer's weights :math:`W` are approximated by :math:`M` binary bases,

.. math:: W \approx \alpha_1 B_1 + \alpha_2 B_2 + \dots + \alpha_M B_M, \qquad B_i \in \{-1, +1\}^{\text{shape}(W)}

The bases are not searched for; they are fixed by shifted signs of the centred weights,

.. math::
    B_i = F_{u_i}(W) := \operatorname{sign}\big(\bar{W} + u_i \operatorname{std}(W)\big), \quad
    \bar{W} = W - \operatorname{mean}(W), \qquad u_i = -1 + (i - 1)\frac{2}{M - 1}

(:func:`shift_coefficients`, :func:`binary_bases`): the :math:`u_i` spread evenly over :math:`[-1, 1]`, so the
bases split the weight distribution at :math:`M` thresholds around its mean. With the bases fixed, the
:math:`\alpha` are the solution of a linear regression, :math:`\min_\alpha \lVert \operatorname{vec}(W) -
B\alpha \rVert^2` (:func:`basis_scales`). A convolution then becomes :math:`M` binary convolutions,
:math:`\operatorname{Conv}(W, A) \approx \sum_m \alpha_m \operatorname{Conv}(B_m, A)`. Training uses the
straight-through estimator, :math:`\partial c / \partial W = \sum_m \alpha_m\, \partial c / \partial B_m`
(:class:`ABCWeightQuantizer`).

**Activations (sec. 3.2).** A real activation :math:`R` is approximated by :math:`N` binary activations with
shifted thresholds,

.. math::
    A \approx \sum_{n=1}^{N} \beta_n A_n, \quad A_n = H_{v_n}(R) := 2\,\mathbb{I}_{h_{v_n}(R) \ge 0.5} - 1,
    \qquad h_v(x) = \operatorname{clip}(x + v, 0, 1)

(:func:`binary_activation`, :class:`ABCActivationQuantizer`), where the shifts :math:`v_n` and the scales
:math:`\beta_n` are trained with the network and fixed at test time. With :math:`M` weight bases and :math:`N`
activation bases a layer costs :math:`M \times N` binary (XNOR-popcount) convolutions.

The paper's equations are quoted by content, not by number: the numbering could not be checked for this book.
The weight formulas agree with the TensorFlow re-implementation the catalog links to
(``layog/Accurate-Binary-Convolution-Network``, ``ABC.ipynb``), which uses the population standard deviation
(``tf.nn.moments``), as here. Where this module chooses something the paper does not fix (the case
:math:`M = 1`, the initial :math:`v_n, \beta_n`, the surrogate gradient of :math:`H_v`), the docstring says so.

References:

- Lin, Zhao, Pan, *Towards Accurate Binary Convolutional Neural Network*, NIPS 2017.
  https://arxiv.org/abs/1711.11294
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach._validate import require_float_tensor, require_int, require_no_nan, require_weights

__all__ = [
    "shift_coefficients",
    "binary_bases",
    "basis_scales",
    "approximate",
    "relative_error",
    "ABCWeightQuantizer",
    "binary_activation",
    "initial_shifts",
    "ABCActivationQuantizer",
]


def _require_bases(num_bases, name: str = "num_bases") -> int:
    return require_int(num_bases, name, minimum=1, maximum=32)


def shift_coefficients(num_bases: int) -> torch.Tensor:
    r"""The shifts :math:`u_i = -1 + (i - 1)\frac{2}{M - 1}`, :math:`i = 1 \dots M`: evenly spaced on
    :math:`[-1, 1]` (float64). The formula is undefined for :math:`M = 1`; this module then uses :math:`u_1 = 0`,
    a single basis :math:`\operatorname{sign}(W - \operatorname{mean}(W))`."""
    m = _require_bases(num_bases)
    if m == 1:
        return torch.zeros(1, dtype=torch.float64)
    return torch.tensor([-1.0 + i * 2.0 / (m - 1) for i in range(m)], dtype=torch.float64)


def binary_bases(w: torch.Tensor, num_bases: int) -> torch.Tensor:
    r"""The fixed bases :math:`B_i = \operatorname{sign}(W - \operatorname{mean}(W) + u_i \operatorname{std}(W))`,
    stacked: shape ``(M, *w.shape)``, values :math:`\pm 1` with :math:`\operatorname{sign}(0) = +1`
    (:func:`qteach.binary.sign`). Mean and standard deviation (population, :math:`\frac{1}{n}`) are over the whole
    tensor, one set of bases per layer."""
    require_weights(w)
    w = w.detach()
    u = shift_coefficients(num_bases).to(device=w.device, dtype=w.dtype)
    centred = w - w.mean()
    std = w.std(unbiased=False) if w.numel() > 1 else torch.zeros((), dtype=w.dtype, device=w.device)
    shifted = centred.unsqueeze(0) + (u * std).reshape(-1, *([1] * w.dim()))
    return binary.sign(shifted)


def basis_scales(w: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    r"""The least-squares scales :math:`\alpha^* = \arg\min_\alpha \lVert \operatorname{vec}(W) - B\alpha \rVert^2`
    for fixed bases (shape ``(M,)``).

    :math:`B` is the :math:`n \times M` matrix whose columns are the flattened bases. The normal equations
    :math:`B^\top B \alpha = B^\top w` are solved with the pseudo-inverse, so that coinciding bases (e.g. a
    constant :math:`W`, whose standard deviation is 0) give the minimum-norm solution instead of an error. Computed
    in float64, returned in ``w``'s dtype.
    """
    require_weights(w)
    require_float_tensor(bases, "bases")
    if bases.dim() < 1 or bases.shape[1:] != w.shape:
        raise ValueError(f"bases must have shape (M, *w.shape) = (M, {', '.join(map(str, w.shape))}), "
                         f"got {tuple(bases.shape)}")
    b = bases.detach().reshape(bases.shape[0], -1).double()
    gram = b @ b.T
    alpha = torch.linalg.pinv(gram) @ (b @ w.detach().reshape(-1).double())
    return alpha.to(w.dtype)


def approximate(w: torch.Tensor, num_bases: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The whole weight approximation: ``(W_hat, alpha, B)`` with :math:`\hat{W} = \sum_i \alpha_i B_i`,
    :func:`binary_bases` and :func:`basis_scales`."""
    bases = binary_bases(w, num_bases)
    alpha = basis_scales(w, bases)
    w_hat = (alpha.reshape(-1, *([1] * w.dim())) * bases).sum(0)
    return w_hat, alpha, bases


def relative_error(w: torch.Tensor, num_bases: int) -> float:
    r""":math:`\lVert W - \sum_i \alpha_i B_i \rVert^2 / \lVert W \rVert^2` of :func:`approximate`."""
    w_hat, _, _ = approximate(w, num_bases)
    w = w.detach().double()
    return float(((w - w_hat.double()) ** 2).sum() / (w**2).sum().clamp(min=torch.finfo(torch.float64).tiny))


class _ABCWeightFunction(torch.autograd.Function):
    """Forward: sum_i alpha_i B_i; backward: the straight-through estimator summed over the bases."""

    @staticmethod
    def forward(ctx, w, num_bases):
        w_hat, alpha, _ = approximate(w, num_bases)
        ctx.alpha_sum = float(alpha.sum())
        return w_hat

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * ctx.alpha_sum, None


class ABCWeightQuantizer(nn.Module):
    r"""ABC-Net weight quantizer for :class:`qteach.nn.QuantLinear` / ``QuantConv2d``: :math:`W \mapsto
    \sum_{i=1}^{M} \alpha_i B_i`, recomputed from the latent weights at every forward pass.

    .. math:: \frac{\partial c}{\partial W} = \sum_{m=1}^{M} \alpha_m \frac{\partial c}{\partial B_m}
        = \Big(\sum_{m=1}^{M} \alpha_m\Big) \frac{\partial c}{\partial \hat{W}}

    The paper's STE (:math:`\partial B_m / \partial W = 1`), where :math:`\partial c / \partial B_m` is the
    gradient a binary convolution with kernel :math:`B_m` receives, which is the gradient with respect to
    :math:`\hat{W}`; :math:`\alpha`, the mean and the standard deviation are treated as constants.
    ``precision = num_bases``: :math:`M` bits per weight (plus :math:`M` floats per layer).
    """

    def __init__(self, num_bases: int = 3):
        super().__init__()
        self.precision = _require_bases(num_bases)

    @property
    def num_bases(self) -> int:
        return self.precision

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_weights(w)
        return _ABCWeightFunction.apply(w, self.precision)

    def extra_repr(self) -> str:
        return f"num_bases={self.precision}"


class _BinaryActivationFunction(torch.autograd.Function):
    """Forward: H_v(x) = 2 * 1[clip(x + v, 0, 1) >= 0.5] - 1; backward: the derivative of h_v = clip(x + v, 0, 1)."""

    @staticmethod
    def forward(ctx, x, v):
        shifted = x + v
        ctx.save_for_backward(shifted)
        ctx.v_shape = v.shape
        return binary.sign(torch.clamp(shifted, 0.0, 1.0) - 0.5)

    @staticmethod
    def backward(ctx, grad_output):
        (shifted,) = ctx.saved_tensors
        grad = grad_output * ((shifted >= 0) & (shifted <= 1)).to(grad_output.dtype)
        grad_v = grad.sum_to_size(ctx.v_shape) if ctx.v_shape != grad.shape else grad
        return grad, grad_v


def _require_broadcasts(v, x: torch.Tensor) -> None:
    """``v`` (a number or a tensor) must broadcast against ``x``; else ``ValueError``."""
    v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    try:
        torch.broadcast_shapes(v.shape, x.shape)
    except RuntimeError as error:
        raise ValueError(f"v of shape {tuple(v.shape)} does not broadcast against x of shape "
                         f"{tuple(x.shape)}") from error


def binary_activation(x: torch.Tensor, v) -> torch.Tensor:
    r"""One binary activation :math:`H_v(x) = 2\,\mathbb{I}_{h_v(x) \ge 0.5} - 1`,
    :math:`h_v(x) = \operatorname{clip}(x + v, 0, 1)`: :math:`+1` where :math:`x \ge 0.5 - v`, else :math:`-1`.

    Backward (straight-through): :math:`\partial H_v / \partial x = \partial H_v / \partial v =
    \mathbb{I}_{0 \le x + v \le 1}`, the derivative of the bounded activation :math:`h_v`, as BNN's estimator
    passes the gradient where :math:`\operatorname{Htanh}` is not saturated. (The paper trains :math:`v` with
    the rest of the network; the exact form of its surrogate gradient is not verified here.) ``v`` is a number
    or a tensor that broadcasts against ``x``.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    _require_broadcasts(v, x)
    return _BinaryActivationFunction.apply(x, torch.as_tensor(v, dtype=x.dtype, device=x.device))


def initial_shifts(num_bases: int) -> torch.Tensor:
    r"""Starting shifts :math:`v_n` that place the thresholds :math:`0.5 - v_n` of the :math:`N` binary
    activations evenly on :math:`(-1, 1)`: :math:`t_n = -1 + \frac{2n - 1}{N}`, :math:`v_n = 0.5 - t_n`.

    With :math:`\beta_n = 1/N`, :math:`\sum_n \beta_n H_{v_n}(x)` then starts as an :math:`(N + 1)`-level
    staircase of :math:`\operatorname{clip}(x, -1, 1)`; for :math:`N = 1` it is :math:`\operatorname{sign}(x)`.
    This initialisation is this module's choice (the paper trains :math:`v, \beta` and its initial values are not
    verified here)."""
    n = _require_bases(num_bases)
    thresholds = torch.tensor([-1.0 + (2 * i + 1) / n for i in range(n)])
    return 0.5 - thresholds


class ABCActivationQuantizer(nn.Module):
    r"""ABC-Net's multiple binary activations as an ``input_quantizer``: :math:`R \mapsto \sum_{n=1}^{N}
    \beta_n H_{v_n}(R)`, with trainable shifts :math:`v_n` and scales :math:`\beta_n` (``nn.Parameter`` s,
    one of each per binary activation and per layer), initialised by :func:`initial_shifts` and
    :math:`\beta_n = 1/N`. ``precision = num_bases``: :math:`N` bits per activation.
    """

    def __init__(self, num_bases: int = 3):
        super().__init__()
        self.precision = _require_bases(num_bases)
        self.v = nn.Parameter(initial_shifts(self.precision))
        self.beta = nn.Parameter(torch.full((self.precision,), 1.0 / self.precision))

    @property
    def num_bases(self) -> int:
        return self.precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        out = torch.zeros_like(x)
        for n in range(self.precision):
            out = out + self.beta[n] * binary_activation(x, self.v[n])
        return out

    def extra_repr(self) -> str:
        return f"num_bases={self.precision}"
