r"""IMAC: multi-bit multiply-and-accumulate on the bit-lines of a standard 6T SRAM array (Ali et al., 2020).

What we could read is the paper's **abstract** (arXiv 2003.12558; IEEE TCAS-I 67(8):2521-2531, DOI
10.1109/TCSI.2020.2981901): an in-memory multiplication followed by accumulation computes parallel dot products
inside a 6T SRAM array *without any change to the standard bit-cell*; the paper studies circuit non-idealities and
process variation on LeNet-5 (MNIST, 99 %) and VGG (CIFAR-10, 88.8 %), and reports 6.24x lower energy and 9.42x
lower delay than a standard von Neumann system. The circuits, the equations and the constants of the full text
were not read.

This module is **our reconstruction** of such a scheme at the level of numbers, not the paper's circuit:

1. A multi-bit input :math:`x_i \in \{0, \dots, 2^A - 1\}` drives row :math:`i` (through a DAC on the word-line:
   the access transistor's current, hence the bit-line discharge, is proportional to :math:`x_i`).
2. A multi-bit weight :math:`w_{ni} = \sum_j 2^j w_{nij}` is stored bit-sliced: bit :math:`j` in column
   :math:`(n, j)`. A cell holding 1 discharges its bit-line by :math:`x_i` units, one holding 0 does not, so the
   column's discharge is the analog dot product :math:`S_{nj} = \sum_i x_i w_{nij}` (:func:`bitline_sums`).
3. Process variation scales each cell's discharge by a gain :math:`g_{nij} \sim \mathcal N(1, \sigma^2)`.
4. A :math:`b`-bit ADC per column reads :math:`S_{nj}` over its full scale :math:`R (2^A - 1)` for :math:`R`
   active rows (:func:`adc_read`); the readings are weighted by :math:`2^j` and summed digitally, and a fan-in
   longer than :math:`R` rows is split into tiles whose results are added (:func:`imac_matmul`).

With :math:`\sigma = 0` and enough ADC bits the result equals the integer product exactly
(:func:`qteach.bitops.bitserial_matmul`). All circuit constants are assumptions (:data:`ASSUMED`); the paper's
figures are in :data:`PAPER`.

Reference: M. Ali, A. Jaiswal, S. Kodge, A. Agrawal, I. Chakraborty, K. Roy, *IMAC: In-Memory Multi-Bit
Multiplication and ACcumulation in 6T SRAM Array*, IEEE TCAS-I 67(8):2521-2531, 2020.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_module,
    require_non_negative_number,
    require_tensor,
)
from qteach.papers import dorefa_net

__all__ = ["ASSUMED", "PAPER", "adc_read", "array_cost", "bitline_sums", "imac_forward", "imac_matmul",
           "min_adc_bits"]

#: The paper's figures, from its abstract: accuracies with the in-memory dot products, and the gains over a
#: standard von Neumann system.
PAPER = {"mnist_lenet5_pct": 99.0, "cifar10_vgg_pct": 88.8, "energy_gain": 6.24, "delay_gain": 9.42}

#: Our assumptions (not from the paper): rows active in one read, and input and weight bits of the experiment.
ASSUMED = {"rows": 64, "a_bits": 4, "w_bits": 4}


def _require_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _require_codes(t, name: str, bits: int) -> torch.Tensor:
    t = require_tensor(t, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
    values = t.to(torch.float64)
    if not bool(torch.isfinite(values).all()) or bool((values != values.round()).any()):
        raise ValueError(f"{name} must hold integer codes")
    if bool(((values < 0) | (values >= 2**bits)).any()):
        raise ValueError(f"{name} must have values in [0, {2**bits - 1}]")
    return values


def min_adc_bits(rows: int, a_bits: int) -> int:
    r"""The fewest ADC bits that read every column sum of ``rows`` rows exactly: :math:`\lceil\log_2(R(2^A-1)+1)
    \rceil`."""
    rows = require_int(rows, "rows", minimum=1)
    a_bits = require_int(a_bits, "a_bits", minimum=1, maximum=16)
    return (rows * (2**a_bits - 1)).bit_length()


def bitline_sums(x, w, a_bits: int, w_bits: int, rows: int | None = None, sigma: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The analog discharge of every bit-line, in units of one input step on one cell: inputs ``x`` (B, K) and
    weights ``w`` (N, K) are unsigned integer codes of ``a_bits`` and ``w_bits`` bits.

    .. math:: S_{b n t j} = \sum_{i \in \text{tile } t} x_{bi}\, w_{nij}\, g_{nij}, \qquad
        w_{ni} = \sum_{j} 2^j w_{nij}, \quad g_{nij} = \max(0, 1 + \sigma \varepsilon_{nij})

    Tiles are ``rows`` consecutive rows (``None``: all :math:`K`), the last one padded with zero inputs. One chip's
    gains are drawn from ``generator`` (ours: independent Gaussian cell-to-cell variation). Returns float64
    (B, N, T, w_bits).
    """
    a_bits = require_int(a_bits, "a_bits", minimum=1, maximum=16)
    w_bits = require_int(w_bits, "w_bits", minimum=1, maximum=16)
    x, w = _require_codes(x, "x", a_bits), _require_codes(w, "w", w_bits)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must have the same K, got {tuple(x.shape)} and {tuple(w.shape)}")
    rows = x.shape[1] if rows is None else require_int(rows, "rows", minimum=1)
    sigma = require_non_negative_number(sigma, "sigma")
    _require_generator(generator)
    k, tiles = x.shape[1], -(-max(x.shape[1], 1) // rows)
    planes = torch.stack([torch.div(w, 2**j, rounding_mode="floor") % 2 for j in range(w_bits)], -1)  # (N, K, J)
    if sigma > 0:
        noise = torch.randn(planes.shape, generator=generator, dtype=torch.float64)
        planes = planes * (1 + sigma * noise).clamp(min=0)
    x = nn.functional.pad(x, (0, tiles * rows - k)).reshape(len(x), tiles, rows)
    planes = nn.functional.pad(planes, (0, 0, 0, tiles * rows - k)).reshape(len(w), tiles, rows, w_bits)
    return torch.einsum("btr,ntrj->bntj", x, planes)


def adc_read(s, full_scale: int, bits: int | None) -> torch.Tensor:
    r"""A ``bits``-bit ADC over :math:`[0, F]` reads the analog sums ``s``; returns the decoded sums.

    .. math:: q = \operatorname{round}\Big(\operatorname{clip}\big(\tfrac{s}{F}, 0, 1\big)(2^b - 1)\Big), \qquad
        \hat s = \operatorname{round}\Big(q\,\frac{F}{2^b - 1}\Big)

    ``bits=None`` is an ideal reader (:math:`\hat s = s`). With :math:`2^b - 1 \ge F` the step is at most one unit
    and integer sums are read exactly. Ours: a uniform ADC with no offset or noise.
    """
    s = require_float_tensor(s, "s")
    full_scale = require_int(full_scale, "full_scale", minimum=1)
    if bits is None:
        return s
    bits = require_int(bits, "bits", minimum=1, maximum=30)
    levels = 2**bits - 1
    code = torch.round((s * (levels / full_scale)).clamp(0, levels))
    return torch.round(code * full_scale / levels)


def imac_matmul(x, w, a_bits: int, w_bits: int, rows: int | None = None, adc_bits: int | None = None,
                sigma: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The integer product :math:`x\,w^\top` computed as our IMAC model does: bit-line sums
    (:func:`bitline_sums`), one ADC read per column and tile (:func:`adc_read`), digital shift-and-add.

    .. math:: y_{bn} = \sum_t \sum_{j=0}^{W-1} 2^j\, \operatorname{ADC}_b\big(S_{bntj}\big)

    Returns float64 (B, N); equal to ``x @ w.T`` when ``sigma = 0`` and ``adc_bits`` is ``None`` or at least
    :func:`min_adc_bits` (rows, a_bits).
    """
    sums = bitline_sums(x, w, a_bits, w_bits, rows, sigma, generator)
    rows = x.shape[1] if rows is None else rows
    read = adc_read(sums, rows * (2**a_bits - 1), adc_bits)
    weights = 2.0 ** torch.arange(w_bits, dtype=torch.float64)
    return (read * weights).sum(dim=(2, 3))


def imac_forward(model: nn.Module, x: torch.Tensor, a_bits: int = 4, w_bits: int = 4, rows: int | None = None,
                 adc_bits: int | None = None, sigma: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Run a DoReFa protocol MLP (:func:`qteach.comparison.protocol_mlp`) with its quantized layers in IMAC
    arrays: each ``QuantLinear`` fed by a DoReFa activation quantizer gets its input and weight codes
    (:func:`qteach.papers.dorefa_net.activation_codes`, :func:`~qteach.papers.dorefa_net.weight_codes`,
    :math:`w_q = \text{low} + \text{step}\, W`), and

    .. math:: a_q \cdot w_q = \frac{\text{step}\cdot\operatorname{IMAC}(X, W) + \text{low}\sum_k X_k}{2^A - 1}

    with :func:`imac_matmul` for the integer part and the row sum :math:`\sum_k X_k` computed digitally (ours).
    Every other layer runs as in ``model``. With no variation and enough ADC bits the logits equal ``model(x)``
    up to float rounding.
    """
    model = require_module(model)
    x = require_float_tensor(x, "x")
    with torch.no_grad():
        previous = None
        for layer in model:
            if isinstance(layer, qnn.QuantLinear) and isinstance(previous, dorefa_net.ActivationQuantizer):
                codes = dorefa_net.activation_codes(x, a_bits)
                w_int, low, step = dorefa_net.weight_codes(layer.weight_quantizer(layer.weight), w_bits)
                dot = imac_matmul(codes, w_int, a_bits, w_bits, rows, adc_bits, sigma, generator)
                y = (step * dot + low * codes.sum(1, keepdim=True)) / (2**a_bits - 1)
                x = y.to(x.dtype) if layer.bias is None else y.to(x.dtype) + layer.bias
            else:
                x = layer(x)
            previous = layer
    return x


def array_cost(batch: int, k: int, n: int, rows: int, w_bits: int) -> dict:
    r"""Counts of one linear layer (``batch`` inputs of fan-in ``k``, ``n`` outputs) in arrays of ``rows`` rows:
    array reads (all columns of a tile in parallel), ADC conversions, and the multiply-accumulates they replace.

    .. math:: \text{reads} = B \lceil K / R \rceil, \qquad
        \text{conversions} = B\,N\,W \lceil K / R \rceil, \qquad \text{MACs} = B\,K\,N
    """
    batch = require_int(batch, "batch", minimum=1)
    k, n = require_int(k, "k", minimum=1), require_int(n, "n", minimum=1)
    rows, w_bits = require_int(rows, "rows", minimum=1), require_int(w_bits, "w_bits", minimum=1)
    tiles = -(-k // rows)
    return {"reads": batch * tiles, "conversions": batch * n * w_bits * tiles, "macs": batch * k * n}
