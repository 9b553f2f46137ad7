r"""SeerNet: predict which outputs of a convolution the following ReLU (and max-pool) discards, from a low-bit copy
of the layer, then compute only the others in full precision.

Cao, Ma, Xiao, Zhang, Liu, Zhang, Nie, Yang, "SeerNet: Predicting Convolutional Neural Network Feature-Map Sparsity
through Low-Bit Quantization", CVPR 2019 (``cao2019seernet``). Only the abstract could be read for this book: "for
each convolution layer [the] approach first obtains a binary sparsity mask of the output feature maps by running
inference on a quantized version of the original network layer, and then conducts a full-precision sparse
convolution to find out the precise values of the non-zero outputs". Everything finer is our reconstruction: the
quantizers (symmetric per-output-channel weights, unsigned per-tensor activations, sign and mean |w| at 1 bit), the
max-pool winner rule, and the error bound that makes the prediction conservative (exact).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import hw
from qteach._validate import (
    require_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_ndim,
)

# float32 rounding of the full-precision sum: the bound is widened by this much so that it also covers the
# float32 result the network actually computes (the triangle inequality holds in real arithmetic)
FLOAT_SLACK = 1e-4


def _require_conv(x, w, b, padding):
    require_ndim(require_float_tensor(x, "x"), "x", 4)
    require_ndim(require_float_tensor(w, "w"), "w", 4)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]}")
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (w.shape[0],)):
        raise ValueError(f"b must be None or a tensor of shape ({w.shape[0]},)")
    require_int(padding, "padding", 0)


def quantize_weights(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The predictor's weights: integer codes and one scale per output channel (ours; the paper's exact
    scheme could not be read).

    .. math::
        b \ge 2:\; s_c = \frac{\max |w_c|}{2^{b-1} - 1},\; q = \operatorname{round}(w / s_c); \qquad
        b = 1:\; s_c = \operatorname{mean} |w_c|,\; q = \operatorname{sign}(w)

    Returns ``(codes, scales)`` with :math:`Q(w) = s_c\, q`; codes are integer-valued float64.
    """
    require_float_tensor(w, "w")
    bits = require_bits(bits)
    w = w.double()
    flat = w.abs().flatten(1)
    if bits == 1:
        scale = flat.mean(1)
        codes = torch.where(w >= 0, 1.0, -1.0).double()
    else:
        scale = (flat.amax(1) / (2 ** (bits - 1) - 1)).clamp_min(1e-12)
        codes = torch.round(w / scale.view(-1, *[1] * (w.dim() - 1)))
    return codes, scale


def quantize_activations(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The predictor's input: unsigned ``bits``-bit codes over :math:`[0, \max x]` (ours).

    .. math:: s_x = \frac{\max x}{2^{b} - 1}, \qquad q = \operatorname{round}(x / s_x), \qquad |x - s_x q| \le s_x / 2
    """
    require_float_tensor(x, "x")
    bits = require_bits(bits)
    if bool((x < 0).any()):
        raise ValueError("x must be non-negative (an image in [0, 1] or a ReLU output)")
    scale = (x.double().max() / (2**bits - 1)).clamp_min(1e-12)
    return torch.round(x.double() / scale), scale


def predict(x, w, b, bits: int, padding: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The low-bit copy of the layer, :math:`\hat{y} = s_x s_c (q_w * q_x) + b`, and the bound :math:`B` on
    its error (ours, the triangle inequality):

    .. math::
        |y - \hat{y}| = \Big|\sum w (x - Q x) + \sum (w - Q w)\, Q x\Big|
        \le \frac{s_x}{2}\, \lVert w_c \rVert_1 + \varepsilon_c \sum_{\text{window}} Q x = B,
        \qquad \varepsilon_c = \max |w_c - Q w_c|

    The integer convolution is exact (float64 holds its sums); the window sums of :math:`Qx` are one box filter.
    Where :math:`|\hat{y}| > B` the predicted sign is certainly right.
    """
    _require_conv(x, w, b, padding)
    x, w, b = x.detach(), w.detach(), None if b is None else b.detach()
    qx, sx = quantize_activations(x, bits)
    qw, sw = quantize_weights(w, bits)
    bias = torch.zeros(w.shape[0], dtype=torch.float64) if b is None else b.double()
    y_hat = sx * sw.view(1, -1, 1, 1) * F.conv2d(qx, qw, padding=padding) + bias.view(1, -1, 1, 1)
    eps = (w.double() - sw.view(-1, 1, 1, 1) * qw).abs().flatten(1).amax(1)
    l1 = w.double().abs().flatten(1).sum(1)
    ones = torch.ones(1, w.shape[1], *w.shape[2:], dtype=torch.float64)
    window = sx * F.conv2d(qx, ones, padding=padding)
    bound = sx / 2 * l1.view(1, -1, 1, 1) + eps.view(1, -1, 1, 1) * window + FLOAT_SLACK
    return y_hat, bound


def _expand(pooled: torch.Tensor, pool: int) -> torch.Tensor:
    return pooled.repeat_interleave(pool, dim=2).repeat_interleave(pool, dim=3)


def predicted_mask(y_hat, bound, pool: int | None = None, conservative: bool = False) -> torch.Tensor:
    r"""Which outputs to compute in full precision.

    ReLU only: the paper's rule :math:`\hat{y} > 0`, or conservatively :math:`\hat{y} + B > 0`. ReLU then a
    ``pool`` x ``pool`` max-pool (ours): the window's predicted winner if :math:`\hat{y} > 0`, or conservatively
    every position that could be the winner, :math:`\hat{y} + B > 0` and
    :math:`\hat{y} + B \ge \max_{\text{window}} (\hat{y} - B)`.
    """
    require_float_tensor(y_hat, "y_hat")
    require_float_tensor(bound, "bound")
    require_bool(conservative, "conservative")
    if pool is not None and (y_hat.shape[-1] % require_int(pool, "pool", 1) or y_hat.shape[-2] % pool):
        raise ValueError(f"pool {pool} must divide the output size {tuple(y_hat.shape[-2:])}")
    upper = y_hat + bound if conservative else y_hat
    mask = upper > 0
    if pool is None:
        return mask
    if conservative:
        best_lower = _expand(F.max_pool2d(y_hat - bound, pool), pool)
        return mask & (upper >= best_lower)
    _, idx = F.max_pool2d(y_hat, pool, return_indices=True)
    winner = torch.zeros_like(y_hat).flatten(2).scatter_(2, idx.flatten(2), 1.0).view_as(y_hat) > 0
    return mask & winner


def sparse_conv2d(x, w, b, mask, padding: int = 0) -> torch.Tensor:
    r"""Full-precision convolution at the ``True`` positions of ``mask`` only, zero elsewhere:
    :math:`y_{n,c,p} = w_c \cdot \operatorname{patch}_p(x_n) + b_c`. Costs ``mask.sum()`` dot products."""
    _require_conv(x, w, b, padding)
    out_hw = [hw.conv2d_output_size(n, k, 1, padding) for n, k in zip(x.shape[-2:], w.shape[-2:])]
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or \
            mask.shape != (x.shape[0], w.shape[0], *out_hw):
        raise ValueError(f"mask must be a bool tensor of shape {(x.shape[0], w.shape[0], *out_hw)}")
    cols = F.unfold(x, w.shape[-2:], padding=padding)  # (N, C_in k k, H W)
    n, c, pos = mask.flatten(2).nonzero(as_tuple=True)
    values = (cols[n, :, pos] * w.flatten(1)[c]).sum(1)
    if b is not None:
        values = values + b[c]
    out = torch.zeros(mask.shape, dtype=x.dtype)
    out.flatten(2)[n, c, pos] = values
    return out


def needed_outputs(y: torch.Tensor, pool: int | None = None) -> torch.Tensor:
    """The outputs whose value the layer's result depends on: ``y > 0`` before a ReLU; with a max-pool, each
    window's winner where it is positive. A prediction is exact when it computes all of them."""
    require_float_tensor(y, "y")
    if pool is None:
        return y > 0
    return predicted_mask(y, torch.zeros_like(y), pool)


def seer_cnn(seed: int = 0) -> nn.Sequential:
    """The book's small CNN for 8x8 digits: two conv-ReLU-maxpool stages (8 and 16 channels) and a linear layer."""
    torch.manual_seed(require_int(seed, "seed", 0))
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def seer_forward(model: nn.Sequential, x: torch.Tensor, bits: int, conservative: bool = False):
    """Run ``seer_cnn`` with each conv-ReLU-pool stage predicted at ``bits`` bits and computed sparsely.

    Returns ``(logits, stats)``: one dict per conv layer with the outputs ``total``, ``computed``, ``needed``
    and ``needed_computed`` (the needed outputs that were computed) and the ``macs`` done in full precision.
    """
    if not isinstance(model, nn.Sequential) or len(model) != 8:
        raise TypeError("model must be the nn.Sequential of seer_cnn")
    require_float_tensor(x, "x")
    stats, h = [], x
    with torch.no_grad():
        for conv, pool in ((model[0], model[2]), (model[3], model[5])):
            w, b, pad, k = conv.weight, conv.bias, conv.padding[0], pool.kernel_size
            mask = predicted_mask(*predict(h, w, b, bits, pad), k, conservative)
            needed = needed_outputs(F.conv2d(h, w, b, padding=pad), k)
            stats.append({"total": mask.numel(), "computed": int(mask.sum()), "needed": int(needed.sum()),
                          "needed_computed": int((needed & mask).sum()), "macs": int(mask.sum()) * w[0].numel()})
            h = F.max_pool2d(F.relu(sparse_conv2d(h, w, b, mask, pad)), k)
        return model[7](h.flatten(1)), stats
