r"""High-order residual quantization (HORQ): binarize the input, then binarize what the binarization missed.

XNOR-Net approximates an input vector :math:`X \in \mathbb{R}^n` by one scaled sign, :math:`X \approx \beta_1
H_1` with :math:`H_1 = \operatorname{sign}(X)` and :math:`\beta_1 = \frac{1}{n}\lVert X \rVert_{\ell 1}`; Li et al.
call this the *order-one* approximation. HORQ keeps going on the residual,

.. math::
    R_0 = X, \qquad H_i = \operatorname{sign}(R_{i-1}), \qquad \beta_i = \frac{1}{n}\lVert R_{i-1} \rVert_{\ell 1},
    \qquad R_i = R_{i-1} - \beta_i H_i ,

and uses :math:`X \approx \sum_{i=1}^{K} \beta_i H_i` (order :math:`K`, :func:`residual_binarize`). Each step is
the optimal one-bit approximation of the current residual (the same closed form as XNOR-Net's), so the error can
only shrink (:func:`residual_norms`):

.. math::
    \lVert R_i \rVert^2 = \lVert R_{i-1} - \beta_i H_i \rVert^2 = \lVert R_{i-1} \rVert^2 - 2\beta_i
    \lVert R_{i-1} \rVert_{\ell 1} + n\beta_i^2 = \lVert R_{i-1} \rVert^2 - n\beta_i^2 \le \lVert R_{i-1} \rVert^2 .

That is the paper's "performance guarantee": a higher order never approximates worse.

**Why it stays cheap.** With binary weights :math:`W \approx \alpha B`, a dot product becomes :math:`X^\top W
\approx \alpha \sum_i \beta_i\, (H_i^\top B)`: :math:`K` XNOR-popcount products and :math:`K` scalings
(:func:`horq_linear`, built on :func:`qteach.bitops.xnor_matmul`). The cost grows linearly with the order while the
error falls (:func:`binary_operations`, :func:`speedup`).

**Where the scales live.** The scale :math:`\beta_i` is computed per input vector of a dot product, as in
XNOR-Net's optimal :math:`\beta`: for a fully connected layer one :math:`\beta_i` per sample, for a convolution
one per receptive field, i.e. per column of the im2col matrix (:func:`horq_conv2d`). The paper's text on this
point, its equation numbers and its exact backward rule could not be read for this book; the formulas above are
the recursion of its abstract ("recursively performs residual quantization and yields a series of binary input
images with decreasing magnitude scales") written out. :class:`ResidualSignQuantizer` trains through the
quantizer with the clipped straight-through estimator of XNOR-Net/BNN (our choice, stated where it is used).

References:

- Z. Li, B. Ni, W. Zhang, X. Yang, W. Gao, *Performance Guaranteed Network Acceleration via High-Order Residual
  Quantization*, ICCV 2017, arXiv:1708.08687.
- M. Rastegari et al., *XNOR-Net*, ECCV 2016 (the order-one approximation and the speed-up count;
  :mod:`qteach.papers.xnor_net`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops
from qteach._validate import require_float_tensor, require_int, require_no_nan

__all__ = [
    "residual_binarize",
    "horq_approximation",
    "residual_norms",
    "horq_linear",
    "horq_conv2d",
    "binary_operations",
    "speedup",
    "ResidualSignQuantizer",
]


def _require_order(order) -> int:
    return require_int(order, "order", minimum=1, maximum=32)


def _require_input(x, name: str = "x") -> torch.Tensor:
    require_float_tensor(x, name)
    require_no_nan(x, name)
    if x.dim() == 0 or x.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor with at least one dimension")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite")
    return x


def _scale_dims(x: torch.Tensor, dims):
    if dims is None:
        return tuple(range(1, x.dim())) if x.dim() > 1 else (0,)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or not -x.dim() <= d < x.dim():
            raise ValueError(f"dims must hold dimensions of a {x.dim()}-D tensor, got {dims}")
    return dims


def residual_binarize(x: torch.Tensor, order: int, dims=None) -> tuple[list, list]:
    r"""The HORQ expansion :math:`X \approx \sum_{i=1}^{K} \beta_i H_i`; returns ``(betas, signs)``, two lists of
    length ``order``.

    .. math::
        H_i = \operatorname{sign}(R_{i-1}), \quad \beta_i = \operatorname{mean}(|R_{i-1}|), \quad
        R_i = R_{i-1} - \beta_i H_i, \quad R_0 = X

    ``sign(0) = +1`` (:func:`qteach.binary.sign`). The mean runs over ``dims``: by default every dimension but
    the first, i.e. one :math:`\beta_i` per sample of a batch (per input vector of a fully connected layer);
    ``betas[i]`` keeps those dimensions with size 1 so that ``betas[i] * signs[i]`` broadcasts.
    """
    _require_input(x)
    order = _require_order(order)
    dims = _scale_dims(x, dims)
    residual = x
    betas, signs = [], []
    for _ in range(order):
        h = binary.sign(residual)
        beta = residual.abs().mean(dim=dims, keepdim=True)
        residual = residual - beta * h
        betas.append(beta)
        signs.append(h)
    return betas, signs


def horq_approximation(x: torch.Tensor, order: int, dims=None) -> torch.Tensor:
    r"""The order-:math:`K` approximation :math:`\sum_{i=1}^K \beta_i H_i` of ``x`` (:func:`residual_binarize`)."""
    betas, signs = residual_binarize(x, order, dims)
    return sum(b * h for b, h in zip(betas, signs))


def residual_norms(x: torch.Tensor, order: int, dims=None) -> torch.Tensor:
    r"""Squared residual norms :math:`\lVert R_0 \rVert^2, \dots, \lVert R_K \rVert^2` summed over the batch
    (float64, length ``order + 1``); non-increasing by the guarantee above."""
    _require_input(x)
    order = _require_order(order)
    x64 = x.detach().to(torch.float64)
    betas, signs = residual_binarize(x64, order, dims)
    norms = [(x64**2).sum()]
    approx = torch.zeros_like(x64)
    for b, h in zip(betas, signs):
        approx = approx + b * h
        norms.append(((x64 - approx) ** 2).sum())
    return torch.stack(norms)


def horq_linear(x: torch.Tensor, w: torch.Tensor, order: int) -> torch.Tensor:
    r"""A fully connected layer with HORQ inputs and XNOR-Net binary weights, from XNOR-popcount products.

    .. math::
        y = \sum_{i=1}^{K} \beta_i \,\big(H_i\, \operatorname{sign}(W)^\top\big)\, \alpha^\top,
        \qquad \alpha_o = \tfrac{1}{n}\lVert W_o \rVert_{\ell 1}

    ``x`` is (batch, in), ``w`` (out, in); each :math:`H_i \operatorname{sign}(W)^\top` is computed exactly by
    :func:`qteach.bitops.xnor_matmul` (packed bits, XOR and popcount), the rest is :math:`K` scalings per output.
    Equals ``F.linear(horq_approximation(x, order), alpha * sign(w))`` up to float rounding.
    """
    _require_input(x)
    _require_input(w, "w")
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be (batch, in) and w (out, in) with the same in, got {tuple(x.shape)} and "
                         f"{tuple(w.shape)}")
    alpha = binary.mean_abs_scale(w, per_channel=True).reshape(1, -1)
    betas, signs = residual_binarize(x, order)
    y = torch.zeros(x.shape[0], w.shape[0], dtype=x.dtype, device=x.device)
    for beta, h in zip(betas, signs):
        y = y + beta * bitops.xnor_matmul(h, w).to(x.dtype)
    return y * alpha.to(x.dtype)


def horq_conv2d(x: torch.Tensor, w: torch.Tensor, order: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    r"""A convolution whose input is HORQ-binarized per receptive field (per im2col column) and whose weights are
    :math:`\alpha\operatorname{sign}(W)`, one :math:`\alpha` per filter.

    The input (N, C, H, W) is unfolded into columns of :math:`C k_h k_w` values (zero padding included), each
    column gets its own :math:`\beta_i` and :math:`H_i` (:func:`residual_binarize` with the mean over the
    column), and the convolution is :math:`\sum_i \beta_i (H_i^\top \operatorname{sign}(W)) \alpha` as a matrix
    product. This is the reference (float) computation; :func:`horq_linear` shows the bit-level one.
    """
    _require_input(x)
    _require_input(w, "w")
    if x.dim() != 4 or w.dim() != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be (N, C, H, W) and w (O, C, kh, kw) with the same C, got {tuple(x.shape)} "
                         f"and {tuple(w.shape)}")
    stride = require_int(stride, "stride", minimum=1)
    padding = require_int(padding, "padding", minimum=0)
    kh, kw = w.shape[2:]
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)          # (N, C*kh*kw, L)
    approx = horq_approximation(cols, order, dims=1)                       # one beta per column
    w_bin = binary.mean_abs_scale(w, per_channel=True) * binary.sign(w)
    out = torch.einsum("ok,nkl->nol", w_bin.reshape(w.shape[0], -1), approx)
    h_out = (x.shape[2] + 2 * padding - kh) // stride + 1
    w_out = (x.shape[3] + 2 * padding - kw) // stride + 1
    return out.reshape(x.shape[0], w.shape[0], h_out, w_out)


def binary_operations(order: int, macs: int) -> int:
    r"""Binary operations (XNOR + popcount steps) of order-:math:`K` HORQ for a layer of ``macs``
    multiply-accumulates: :math:`K \cdot \text{MACs}` (one binary product per order)."""
    return _require_order(order) * require_int(macs, "macs", minimum=0)


def speedup(order: int, channels: int, filter_size: int) -> float:
    r"""The speed-up over a float convolution in XNOR-Net's operation count, for order :math:`K`.

    XNOR-Net counts :math:`c N_W N_I` binary operations (64 per instruction) and :math:`N_I` scalings for a
    :math:`c`-channel convolution with :math:`N_W` filter positions on :math:`N_I` outputs; order :math:`K` does
    both :math:`K` times:

    .. math:: S_K = \frac{c N_W N_I}{K\left(\frac{c N_W N_I}{64} + N_I\right)} = \frac{64\, c N_W}{K (c N_W + 64)}

    (:math:`S_1` is :func:`qteach.papers.xnor_net.speedup`). The cost of forming the residuals is not counted.
    This is the book's count; the paper's own speed-up figures were not checked.
    """
    order = _require_order(order)
    channels = require_int(channels, "channels", minimum=1)
    filter_size = require_int(filter_size, "filter_size", minimum=1)
    cnw = channels * filter_size
    return 64 * cnw / (order * (cnw + 64))


class _ResidualSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, approx, clip):
        ctx.save_for_backward(x)
        ctx.clip = clip
        return approx

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        if ctx.clip is None:
            return grad_output, None, None
        return grad_output * (x.abs() <= ctx.clip).to(grad_output.dtype), None, None


class ResidualSignQuantizer(nn.Module):
    r"""HORQ input quantizer for :class:`qteach.nn.QuantLinear`: :math:`X \mapsto \sum_{i=1}^{K} \beta_i H_i`
    with one :math:`\beta_i` per sample (:func:`horq_approximation`). ``order=1`` is XNOR-Net's scaled sign.

    .. math::
        q(X) = \sum_{i=1}^{K} \beta_i H_i, \qquad \frac{\partial c}{\partial X} = \frac{\partial c}{\partial q(X)}
        \, 1_{|X| \le \text{clip}}

    Backward: the clipped straight-through estimator of BNN/XNOR-Net (``clip=None``: unclipped); the paper's own
    backward rule could not be checked. ``precision = order``: :math:`K` bit planes per input value (plus
    :math:`K` float scales per sample).
    """

    def __init__(self, order: int = 2, clip: float | None = 1.0):
        super().__init__()
        self.order = _require_order(order)
        self.precision = self.order
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
            raise ValueError(f"clip must be a positive number or None, got {clip!r}")
        self.clip = None if clip is None else float(clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            approx = horq_approximation(x, self.order)
        return _ResidualSign.apply(x, approx, self.clip)

    def extra_repr(self) -> str:
        return f"order={self.order}, clip={self.clip}"
