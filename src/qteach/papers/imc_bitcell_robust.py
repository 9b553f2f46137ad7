r"""A 10T in-memory-computing bit-cell with a MOM capacitor for binary networks, under process variation
(Saha et al., IEEE Access 2020).

What we could read is the paper's **abstract** (DOI 10.1109/ACCESS.2020.2993989): a 10-transistor SRAM bit-cell
with a back-end-of-line metal-oxide-metal (MOM) capacitor laid on pitch; arranged in an array, the cells compute a
binary convolution (XNOR followed by a bit-count) and generate the binary activation; the binary layers of a BNN
mapped onto the arrays reach 98.75 % on MNIST at 2193 TOPS/W and 22857 GOPS; the array size is chosen from
word-line and bit-line non-idealities; word-line pulse tunability improves robustness under process variation.
The circuits, the Monte-Carlo set-up, the sigmas and the array sizes of the full text were not read.

This module is **our reconstruction** of those ideas at the level of numbers, not the paper's circuit:

1. A cell stores a weight bit :math:`q` and receives an input bit :math:`x` on a pair of read word-lines; it
   charges its capacitor iff :math:`\operatorname{XNOR}(x, q) = 1` (:func:`bitcell_xnor`).
2. The capacitor charges for the word-line pulse :math:`T` through a transistor of time constant :math:`\tau_i`,
   so it holds the fraction :math:`f_i = 1 - e^{-T/\tau_i}` of its full charge; local variation makes
   :math:`\ln\tau_i` Gaussian, a process corner shifts all of them; a longer pulse saturates :math:`f_i` and hides
   the variation, and *tuning* the pulse to the corner restores the nominal charge (:func:`cell_gains`).
3. The charges of a column are shared on its bit-line (:math:`N` rows, parasitic capacitance per row), a
   comparator against a reference holding the batch-norm threshold gives the binary activation; its offset, in
   counts, grows with :math:`N` because the voltage of one count shrinks as :math:`1/N` (:func:`count_step_volts`,
   :func:`column_matches`, :func:`imc_forward`).

With no variation the model is bit-exact: the counts equal those of :func:`qteach.bitops.xnor_matmul`. All circuit
constants (:data:`ASSUMED`) are our assumptions; the paper's figures are in :data:`PAPER`.

Reference: G. Saha, Z. Jiang, S. Parihar, X. Cao, et al., *An Energy-Efficient and High Throughput in-Memory
Computing Bit-Cell With Excellent Robustness Under Process Variations for Binary Neural Network*, IEEE Access 8,
2020.
"""

from __future__ import annotations

import itertools
import math
import numbers

import torch
from torch import nn

from qteach import binary, bitops
from qteach import nn as qnn
from qteach._validate import (
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_non_negative_number,
    require_positive_number,
    require_tensor,
)

__all__ = ["ASSUMED", "PAPER", "binary_layers", "bitcell_xnor", "cell_gains", "charge_fraction", "column_matches",
           "count_step_volts", "imc_forward", "paper_rates", "relative_throughput"]

#: The paper's figures, from its abstract: MNIST accuracy with the binary layers in the arrays, energy efficiency,
#: throughput, and the transistors of the bit-cell.
PAPER = {"mnist_accuracy_pct": 98.75, "tops_per_watt": 2193.0, "gops": 22857.0, "transistors": 10}

#: Our assumptions (not from the paper): supply, bit-line parasitic capacitance per row relative to one cell's
#: MOM capacitor, MOM mismatch, comparator offset, nominal pulse in units of the nominal time constant, and the
#: precharge/sensing time per operation in the same units.
ASSUMED = {"vdd_v": 1.0, "bitline_per_row": 0.5, "sigma_cap": 0.01, "offset_mv": 2.0, "pulse": 2.0,
           "overhead": 1.0}


def _require_real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _require_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def bitcell_xnor(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r"""Whether the cell charges its capacitor: input bit ``x`` on the read word-lines, stored bit ``q``.

    .. math:: c = x\,q \;\lor\; \bar x\,\bar q = \operatorname{XNOR}(x, q)

    Ours: one path conducts when ``x`` and ``q`` are 1, the complementary one when both are 0. Bool tensors.
    """
    for value, name in ((x, "x"), (q, "q")):
        if require_tensor(value, name).dtype != torch.bool:
            raise TypeError(f"{name} must be a bool tensor, got {value.dtype}")
    return (x & q) | (~x & ~q)


def charge_fraction(pulse, tau) -> torch.Tensor:
    r"""The fraction of its full charge a capacitor reaches in a pulse of ``pulse`` through time constant ``tau``.

    .. math:: f = 1 - e^{-T/\tau}

    Ours: a first-order RC charge; both in units of the nominal time constant.
    """
    tau = require_float_tensor(torch.as_tensor(tau, dtype=torch.float64), "tau")
    pulse = require_positive_number(pulse, "pulse")
    if bool((tau <= 0).any()):
        raise ValueError("tau must be positive")
    return -torch.expm1(-pulse / tau)


def cell_gains(shape, sigma: float, pulse: float = ASSUMED["pulse"], corner: float = 0.0, tune: bool = False,
               sigma_cap: float = ASSUMED["sigma_cap"], generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One chip's charge per cell relative to the nominal cell: local variation ``sigma`` of :math:`\ln\tau`,
    a global ``corner`` shift of :math:`\ln\tau`, MOM mismatch ``sigma_cap``; ``tune`` stretches the pulse by
    :math:`e^{c}` to the corner.

    .. math:: \tau_i = e^{c + \sigma z_i}, \quad T' = T e^{c \cdot [\text{tune}]}, \quad
        g_i = (1 + \sigma_C z'_i)\,\frac{1 - e^{-T'/\tau_i}}{1 - e^{-T}}

    Ours; with ``sigma = sigma_cap = corner = 0`` every gain is 1. Returns float64 of ``shape``.
    """
    sigma = require_non_negative_number(sigma, "sigma")
    sigma_cap = require_non_negative_number(sigma_cap, "sigma_cap")
    pulse = require_positive_number(pulse, "pulse")
    corner, tune = _require_real(corner, "corner"), require_bool(tune, "tune")
    _require_generator(generator)
    z = torch.randn(shape, generator=generator, dtype=torch.float64)
    z_cap = torch.randn(shape, generator=generator, dtype=torch.float64)
    tau = torch.exp(corner + sigma * z)
    applied = pulse * math.exp(corner) if tune else pulse
    return (1 + sigma_cap * z_cap) * charge_fraction(applied, tau) / charge_fraction(pulse, 1.0)


def count_step_volts(rows: int, pulse: float = ASSUMED["pulse"], vdd: float = ASSUMED["vdd_v"],
                     bitline_per_row: float = ASSUMED["bitline_per_row"]) -> float:
    r"""The bit-line voltage of one charged nominal cell after charge sharing over a column of ``rows`` cells.

    .. math:: \Delta V = \frac{V_{DD}\,(1 - e^{-T})}{N\,(1 + c_{BL})}

    Ours: every row adds one cell capacitor and :math:`c_{BL}` of its size in bit-line wire.
    """
    rows = require_int(rows, "rows", minimum=1)
    vdd = require_positive_number(vdd, "vdd")
    bitline_per_row = require_non_negative_number(bitline_per_row, "bitline_per_row")
    return vdd * float(charge_fraction(pulse, 1.0)) / (rows * (1 + bitline_per_row))


def column_matches(a: torch.Tensor, w: torch.Tensor, gains: torch.Tensor | None = None) -> torch.Tensor:
    r"""The bit-count of each column: XNOR matches of the signs of ``a`` (B, K) with weight rows ``w`` (N, K),
    each match weighted by its cell's gain (``gains`` (N, K); ``None``: ideal, exact integers).

    .. math:: m_{bn} = \sum_k g_{nk}\,\operatorname{XNOR}(a_{bk}, w_{nk})
        = \tfrac12\Big(\sum_k g_{nk} + \sum_k a_{bk}\, g_{nk} w_{nk}\Big)

    Ideal: int64 :math:`(K + a \cdot w)/2` from :func:`qteach.bitops.xnor_matmul`; else float64.
    """
    a, w = require_float_tensor(a, "a"), require_float_tensor(w, "w")
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[1]:
        raise ValueError(f"a and w must be (B, K) and (N, K), got {tuple(a.shape)} and {tuple(w.shape)}")
    if gains is not None and (require_float_tensor(gains, "gains").shape != w.shape):
        raise ValueError(f"gains must have the shape of w {tuple(w.shape)}, got {tuple(gains.shape)}")
    if gains is None:
        return (bitops.xnor_matmul(a, w).to(torch.int64) + a.shape[1]) // 2
    a, w = binary.sign(a).double(), binary.sign(w).double()
    return (gains.sum(1) + a @ (gains * w).T) / 2


def binary_layers(model: nn.Module) -> list:
    """The ``QuantLinear`` layers of a sequential model whose weights are signs and whose input is the output of a
    ``SignQuantizer``: the layers an XNOR array computes (the two middle layers of the protocol's BNN MLP)."""
    model = require_module(model)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    layers = list(model)
    return [layer for previous, layer in itertools.pairwise(layers)
            if isinstance(layer, qnn.QuantLinear) and isinstance(previous, qnn.SignQuantizer)
            and isinstance(layer.weight_quantizer, qnn.SignQuantizer) and layer.input_quantizer is None]


def imc_forward(model: nn.Module, x: torch.Tensor, sigma: float = 0.0, rows: int | None = None,
                pulse: float = ASSUMED["pulse"], corner: float = 0.0, tune: bool = False,
                offset_mv: float = 0.0, sigma_cap: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Run a sequential BNN with its binary layers (:func:`binary_layers`) in IMC arrays of ``rows`` rows per
    column (``None``: the fan-in), one chip drawn from ``generator``: cell gains (:func:`cell_gains`) and one
    comparator offset per column, :math:`o_n \sim \mathcal N(0, \sigma_o)` in volts, read in counts.

    .. math:: s_{bn} = 2\Big(m_{bn} + \frac{o_n}{\Delta V}\Big) - K + b_n

    then the model's own batch norm and sign: the comparator's reference holds the batch-norm threshold (ours).
    With no variation and no offset the output equals ``model(x)`` exactly.
    """
    targets = binary_layers(model)
    x = require_float_tensor(x, "x")
    sigma, sigma_cap = require_non_negative_number(sigma, "sigma"), require_non_negative_number(sigma_cap, "sigma_cap")
    offset_mv, pulse = require_non_negative_number(offset_mv, "offset_mv"), require_positive_number(pulse, "pulse")
    corner, tune = _require_real(corner, "corner"), require_bool(tune, "tune")
    _require_generator(generator)
    if rows is not None:
        rows = require_int(rows, "rows", minimum=max([layer.in_features for layer in targets], default=1))
    ideal = sigma == 0 and sigma_cap == 0 and corner == 0 and offset_mv == 0
    with torch.no_grad():
        for layer in model:
            if layer not in targets:
                x = layer(x)
                continue
            k = layer.in_features
            n_rows = k if rows is None else rows
            if ideal:
                counts = column_matches(x, layer.weight).double()
            else:
                gains = cell_gains(layer.weight.shape, sigma, pulse, corner, tune, sigma_cap, generator)
                offset = offset_mv * 1e-3 * torch.randn(layer.out_features, generator=generator,
                                                        dtype=torch.float64)
                counts = column_matches(x, layer.weight, gains) + offset / count_step_volts(n_rows, pulse)
            s = (2 * counts - k).to(x.dtype)
            x = s if layer.bias is None else s + layer.bias
    return x


def relative_throughput(pulse: float, reference: float = ASSUMED["pulse"],
                        overhead: float = ASSUMED["overhead"]) -> float:
    r"""Operations per second with word-line pulse ``pulse``, relative to the pulse ``reference``.

    .. math:: \frac{t_0 + T_{ref}}{t_0 + T}

    Ours: one operation is the pulse plus a fixed precharge and sensing time :math:`t_0` (``overhead``).
    """
    pulse = require_positive_number(pulse, "pulse")
    reference = require_positive_number(reference, "reference")
    overhead = require_non_negative_number(overhead, "overhead")
    return (overhead + reference) / (overhead + pulse)


def paper_rates(ops: int) -> dict:
    r"""What the paper's efficiency and throughput (:data:`PAPER`) mean for ``ops`` binary operations:
    energy in pJ, time in ns, and the power the two figures imply.

    .. math:: E = \frac{\text{ops}}{2193\ \text{TOPS/W}}, \quad t = \frac{\text{ops}}{22857\ \text{GOPS}}, \quad
        P = \frac{22857\ \text{GOPS}}{2193\ \text{TOPS/W}}
    """
    ops = require_int(ops, "ops", minimum=1)
    energy_j = ops / (PAPER["tops_per_watt"] * 1e12)
    time_s = ops / (PAPER["gops"] * 1e9)
    return {"energy_pj": energy_j * 1e12, "time_ns": time_s * 1e9, "fj_per_op": 1e3 / PAPER["tops_per_watt"],
            "power_mw": 1e3 * PAPER["gops"] * 1e9 / (PAPER["tops_per_watt"] * 1e12)}
