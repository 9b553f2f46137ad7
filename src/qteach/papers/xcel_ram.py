r"""Xcel-RAM: XNOR-popcount inside SRAM arrays, read by a low-bit ADC, in a sectioned array (Agrawal et al., 2019).

Xcel-RAM computes the binary dot products of a binarized network inside 10-transistor SRAM arrays. Its abstract
(the only part of the paper we could read: arXiv 1807.00343 v1 and v2, and the IEEE TCAS-I listing) describes two
proposals: a *charge-sharing* vector XNOR with an *approximate* popcount read by a low-precision ADC (with
dual read-wordlines and a dual-stage ADC), and a bit-wise XNOR followed by a digital bit-tree adder for an *exact*
popcount; and *sectioning*: switches on the read bit-lines split a sub-array into :math:`n` sections, so one
sub-bank performs :math:`n` convolutions at once. Kernels longer than one array word are stored over several
sub-banks, whose partial popcounts are summed.

This module is **our reconstruction** of those ideas at the level of numbers, not the paper's circuits:

1. A word of :math:`C` columns holds :math:`C` XNOR results; charge sharing averages them,
   :math:`V = V_{DD}\, m / C` with :math:`m` the number of matches (:func:`charge_share_voltage`).
2. A :math:`b`-bit ADC over :math:`[0, V_{DD}]` rounds :math:`V` to one of :math:`2^b` levels; a decoder maps the
   code back to the nearest count (:func:`adc_read`). It is exact if and only if :math:`2^b \ge C + 1`.
3. A long dot product is cut into words of :math:`C` bits; each partial popcount is read by the ADC and the
   readings are summed digitally (:func:`in_sram_xnor_matmul`).
4. Sectioning: :math:`n` sections give :math:`n` partial popcounts per array access, and each section's bit-line
   is :math:`1/n` as long (:func:`sectioned_layer_cost`).

Constants from the paper's abstract: 1.914 pJ and 45 ns per operation at the array level; 2.5x energy and 4x
performance from sectioning. Everything else (how the 1.914 pJ splits between bit-line and periphery, the number
of sections behind the 4x) is an assumption, labelled where it is used.

Reference: A. Agrawal, A. Jaiswal, D. Roy, B. Han, G. Srinivasan, A. Ankit, K. Roy, *Xcel-RAM: Accelerating
Binary Neural Networks in High-Throughput SRAM Compute Arrays*, IEEE TCAS-I 66(8):3064-3076, 2019.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary
from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_module,
    require_positive_number,
    require_tensor,
)

__all__ = [
    "PAPER",
    "adc_error_stats",
    "adc_read",
    "charge_share_voltage",
    "in_sram_forward",
    "in_sram_xnor_matmul",
    "min_exact_bits",
    "section_energy_factor",
    "sectioned_layer_cost",
]

#: Numbers from the paper's abstract (arXiv 1807.00343 v1 / TCAS-I): energy and delay per operation at the array
#: level, and the gains of the sectioned over the non-sectioned SRAM.
PAPER = {"energy_pj_per_op": 1.914, "delay_ns_per_op": 45.0, "sectioning_energy_gain": 2.5,
         "sectioning_speedup": 4.0}


def charge_share_voltage(matches, columns: int, vdd: float = 1.0) -> torch.Tensor:
    r"""The read voltage after charge sharing ``columns`` equal capacitors, ``matches`` of them charged to VDD.

    .. math:: V = V_{DD}\,\frac{m}{C}

    Ours: the ideal charge-sharing law (equal capacitors, no leakage); the paper's circuit details are not read.
    """
    matches = require_tensor(matches, "matches")
    columns = require_int(columns, "columns", minimum=1)
    vdd = require_positive_number(vdd, "vdd")
    if matches.is_floating_point() or bool(((matches < 0) | (matches > columns)).any()):
        raise ValueError(f"matches must be integer counts in [0, {columns}]")
    return vdd * matches.to(torch.float64) / columns


def min_exact_bits(columns: int) -> int:
    r"""The fewest ADC bits that read every popcount of ``columns`` bits exactly: :math:`\lceil\log_2(C+1)\rceil`."""
    columns = require_int(columns, "columns", minimum=1)
    return columns.bit_length()


def adc_read(matches, columns: int, bits: int) -> torch.Tensor:
    r"""A ``bits``-bit ADC reads the charge-shared voltage of ``matches`` out of ``columns``; returns the decoded count.

    .. math:: q = \operatorname{round}\Big(\frac{V}{V_{DD}}(2^b - 1)\Big), \qquad
        \hat m = \operatorname{round}\Big(q\,\frac{C}{2^b - 1}\Big)

    Both roundings are half-up and computed in integers, so the result is exact on every machine. With
    :math:`2^b \ge C + 1` the step is at most one count and :math:`\hat m = m`; with fewer levels than counts
    (pigeonhole) some counts are misread. Ours: an ideal, noise-free ADC.
    """
    matches = require_tensor(matches, "matches")
    columns = require_int(columns, "columns", minimum=1)
    bits = require_int(bits, "bits", minimum=1, maximum=30)
    if matches.is_floating_point() or bool(((matches < 0) | (matches > columns)).any()):
        raise ValueError(f"matches must be integer counts in [0, {columns}]")
    m, levels = matches.to(torch.int64), 2**bits - 1
    code = torch.div(2 * m * levels + columns, 2 * columns, rounding_mode="floor")
    return torch.div(2 * code * columns + levels, 2 * levels, rounding_mode="floor")


def adc_error_stats(columns: int, bits: int, p: float = 0.5) -> dict:
    r"""The ADC's error counted exactly over all :math:`C + 1` counts: worst case, and the mean absolute error
    when the matches follow :math:`\operatorname{Binomial}(C, p)` (each XNOR is 1 with probability ``p``).

    .. math:: \mathbb E|\hat m - m| = \sum_{m=0}^{C} \binom{C}{m} p^m (1-p)^{C-m}\, |\hat m(m) - m|
    """
    columns = require_int(columns, "columns", minimum=1)
    bits = require_int(bits, "bits", minimum=1, maximum=30)
    p = require_positive_number(p, "p", maximum=1.0)
    counts = torch.arange(columns + 1)
    error = (adc_read(counts, columns, bits) - counts).abs().tolist()
    mean = sum(math.comb(columns, m) * p**m * (1 - p) ** (columns - m) * e for m, e in enumerate(error))
    return {"worst": max(error), "mean_abs": mean, "misread_counts": sum(e > 0 for e in error)}


def in_sram_xnor_matmul(a, w, columns: int, bits: int | None = None) -> torch.Tensor:
    r"""Binary dot products of the signs of ``a`` (B, K) and ``w`` (N, K), computed as Xcel-RAM would: words of
    ``columns`` bits, one charge-shared partial popcount per word read by a ``bits``-bit ADC (``None``: exact
    digital popcount), partial popcounts summed digitally.

    .. math:: a \cdot w = 2 \sum_j \hat m_j - K, \qquad m_j = \operatorname{popcount}\big(\operatorname{XNOR}
        (a_{[jC:(j+1)C]}, w_{[jC:(j+1)C]})\big)

    Each word's matches are counted as :math:`m_j = (C + a_j \cdot w_j)/2` from its :math:`\pm 1` dot product (exact
    integers in float64). The last word is padded with columns that never match. Returns int64 (B, N); equals
    :func:`qteach.bitops.xnor_matmul` when ``bits`` is ``None`` or at least :func:`min_exact_bits` (columns).
    """
    a, w = require_float_tensor(a, "a"), require_float_tensor(w, "w")
    columns = require_int(columns, "columns", minimum=1)
    if bits is not None:
        bits = require_int(bits, "bits", minimum=1, maximum=30)
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[1]:
        raise ValueError(f"a and w must be (B, K) and (N, K), got {tuple(a.shape)} and {tuple(w.shape)}")
    k, words = a.shape[1], -(-a.shape[1] // columns)
    pad = words * columns - k                                                    # padding never matches:
    a = nn.functional.pad(binary.sign(a), (0, pad), value=1.0).reshape(len(a), words, columns)   # +1 here
    w = nn.functional.pad(binary.sign(w), (0, pad), value=-1.0).reshape(len(w), words, columns)  # -1 there
    dots = torch.einsum("bjc,njc->bnj", a.double(), w.double())                # word dot products (B, N, J)
    matches = ((dots + columns) / 2).round().to(torch.int64)                   # partial popcounts m_j
    if bits is not None:
        matches = adc_read(matches, columns, bits)
    return 2 * matches.sum(-1) - k


def in_sram_forward(model, x, columns: int, bits: int | None = None) -> torch.Tensor:
    r"""Run a sequential BNN with every binary-input, binary-weight linear layer (a ``QuantLinear`` with a sign
    weight quantizer right after a ``SignQuantizer``) computed by :func:`in_sram_xnor_matmul`. The other layers
    (the first layer on real pixels, batch norm, sign) run as usual. Returns the model's output."""
    model = require_module(model)
    x = require_float_tensor(x, "x")
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    columns = require_int(columns, "columns", minimum=1)
    previous = None
    with torch.no_grad():
        for layer in model:
            binary_layer = (isinstance(layer, qnn.QuantLinear) and isinstance(previous, qnn.SignQuantizer)
                            and isinstance(layer.weight_quantizer, qnn.SignQuantizer) and layer.bias is None)
            if binary_layer:
                x = in_sram_xnor_matmul(x, layer.weight, columns, bits).to(x.dtype)
            else:
                x = layer(x)
            previous = layer
    return x


def section_energy_factor(sections: int, bitline_share: float) -> float:
    r"""Energy of one operation in an array of ``sections`` sections, relative to the non-sectioned array.

    .. math:: \frac{E(n)}{E(1)} = (1 - s) + \frac{s}{n}

    with :math:`s` the share of the non-sectioned operation's energy spent on the read bit-line, whose capacitance
    a section cuts to :math:`1/n`. Ours: the rest (ADC, drivers, periphery) is taken as fixed per operation.
    """
    sections = require_int(sections, "sections", minimum=1)
    bitline_share = require_positive_number(bitline_share, "bitline_share", maximum=1.0)
    return (1 - bitline_share) + bitline_share / sections


def sectioned_layer_cost(outputs: int, fan_in: int, columns: int, sub_arrays: int, sections: int,
                         bitline_share: float = 0.8, energy_pj: float = PAPER["energy_pj_per_op"],
                         access_ns: float = PAPER["delay_ns_per_op"]) -> dict:
    r"""Accesses, time and energy of one binary layer (``outputs`` neurons of ``fan_in`` bits) on ``sub_arrays``
    sub-arrays of ``sections`` sections each, one partial popcount of ``columns`` bits per section and access.

    .. math:: P = N_{out} \Big\lceil \frac{K}{C} \Big\rceil, \quad
        A = \Big\lceil \frac{P}{S\,n} \Big\rceil, \quad T = A\, t_{acc}, \quad E = P\, E_{op}\,\big((1-s) + s/n\big)

    Ours: ``energy_pj`` and ``access_ns`` default to the paper's 1.914 pJ and 45 ns per operation, taken as the
    energy and time of one non-sectioned partial popcount (an assumption: the abstract does not say which
    configuration they were measured on); ``bitline_share`` is an assumption (see :func:`section_energy_factor`).
    """
    outputs = require_int(outputs, "outputs", minimum=1)
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    columns = require_int(columns, "columns", minimum=1)
    sub_arrays = require_int(sub_arrays, "sub_arrays", minimum=1)
    sections = require_int(sections, "sections", minimum=1)
    energy_pj = require_positive_number(energy_pj, "energy_pj")
    access_ns = require_positive_number(access_ns, "access_ns")
    partials = outputs * -(-fan_in // columns)
    accesses = -(-partials // (sub_arrays * sections))
    energy = partials * energy_pj * section_energy_factor(sections, bitline_share)
    return {"partial_popcounts": partials, "accesses": accesses, "time_ns": accesses * access_ns,
            "energy_pj": energy}
