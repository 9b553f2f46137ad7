r"""FINN-R: folding a quantized network onto FPGA dataflow engines (Blott et al., ACM TRETS 2018).

FINN-R builds one compute engine per layer and chains the engines into a streaming pipeline. The engine of a
fully connected or convolutional layer is the *matrix-vector-threshold unit* (MVTU; in the FINN code the "MVAU"):
an :math:`H \times W` weight matrix (:math:`H` output channels, :math:`W` inputs per output) is computed by
:math:`P` processing elements (PEs, one output row each at a time) of :math:`S` SIMD lanes (:math:`S` inputs per
cycle). The matrix is *folded*: each PE handles :math:`H/P` rows in turn (the neuron fold) and each row in
:math:`W/S` slices (the synapse fold), so one input vector takes

.. math:: c = \frac{H}{P}\cdot\frac{W}{S} \quad\text{cycles, and a convolution } c\cdot N_{\text{pix}}
    \text{ per image,}

where :math:`N_{\text{pix}}` is the number of output pixels. In a pipeline every engine works on a different
image, so a new image enters every :math:`\max_\ell c_\ell` cycles (the initiation interval) and the throughput
is :math:`f_{\text{clk}} / \max_\ell c_\ell`. Choosing :math:`(P_\ell, S_\ell)` per layer trades resources for
cycles; a balanced design gives every layer about the same :math:`c_\ell`.

What was read and what was not. The paper's abstract (arXiv 1809.04570) was read; its full text (cost-function
equations, tables) could not be read for this book, so equation numbers are not cited. The formulas below are
transcribed from the official code of the FINN team, which says its cost model is the one of FINN-R:

- cycles: ``finn/src/finn/custom_op/fpgadataflow/matrixvectoractivation.py`` (``get_exp_cycles``, lines 445-454,
  commit 39f0c9a) and the folded loop of ``finn-hlslib/mvau.hpp`` (``Matrix_Vector_Activate_Batch``, lines
  93-175, commit cc8db47): tile :math:`(nf, sf)`, PE :math:`p` computes row :math:`nf\cdot P + p`;
- XNOR "multiplication" is 1 when the bits agree (``finn-hlslib/interpret.hpp``, class ``XnorMul``, lines 58-70),
  so a binary accumulator is a popcount of agreements, and the output is the number of thresholds below it
  (``activations.hpp``, ``ThresholdsActivation``, lines 202-222, with ``comp::less``: :math:`T_i < a`);
- LUTs and BRAMs: ``finn/.../hls/matrixvectoractivation_hls.py`` (``lut_estimation``, lines 58-119: constants
  :math:`c_0 = 300`, :math:`c_1 = 1.1` "from experiments in paper mentioned above") and
  ``matrixvectoractivation.py`` (``bram_estimation``, lines 378-414);
- the folding search: ``finn/.../transformation/fpgadataflow/set_folding.py`` (``SetFolding``, lines 84-152).

References:

- M. Blott, T. B. Preußer, N. J. Fraser, G. Gambardella, K. O'Brien, Y. Umuroglu, M. Leeser, K. Vissers,
  *FINN-R: An End-to-End Deep-Learning Framework for Fast Exploration of Quantized Neural Networks*, ACM TRETS
  11(3), 2018, arXiv:1809.04570.
- Official code: https://github.com/Xilinx/finn, https://github.com/Xilinx/finn-hlslib,
  https://github.com/Xilinx/BNN-PYNQ (the CNV design point, :data:`CNV_W1A1_PYNQ`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from qteach._validate import require_int, require_positive_number, require_tensor

__all__ = [
    "CNV_PYNQ_CLOCK_HZ",
    "CNV_W1A1_PYNQ",
    "MVAU_LUT_C0",
    "MVAU_LUT_C1",
    "Layer",
    "divisors",
    "fastest_under_budget",
    "fold_network",
    "folded_mvtu",
    "mvau_brams",
    "mvau_cycles",
    "mvau_luts",
    "pipeline_rate",
    "plain_mvtu",
    "set_folding",
]

#: Constants of the LUT cost function, from the official FINN code (``hls/matrixvectoractivation_hls.py`` lines
#: 76-77: "parameters from experiments in paper mentioned above", i.e. FINN-R).
MVAU_LUT_C0 = 300
MVAU_LUT_C1 = 1.1


@dataclass(frozen=True)
class Layer:
    """One matrix-vector layer: ``mh`` rows (output channels), ``mw`` columns (inputs per output, K*K*C_in for a
    convolution), ``pixels`` output pixels (1 for a fully connected layer), weight and input bit widths."""

    name: str
    mh: int
    mw: int
    pixels: int = 1
    w_bits: int = 1
    a_bits: int = 1

    def __post_init__(self):
        for field_name in ("mh", "mw", "pixels", "w_bits", "a_bits"):
            require_int(getattr(self, field_name), field_name, minimum=1)

    @property
    def ops(self) -> int:
        """Operations per image, counting a multiply-accumulate as two: :math:`2 H W N_{\\text{pix}}`."""
        return 2 * self.mh * self.mw * self.pixels


#: The CNV network of BNN-PYNQ (binary weights and activations; the first layer reads 8-bit fixed-point pixels),
#: with the folding (PE, SIMD) of its PYNQ-Z1 build, from ``bnn/src/network/cnvW1A1/hw/config.h`` of
#: Xilinx/BNN-PYNQ (commit d39c1c7), which also lists each layer's "Ext Latency" in cycles:
#: 32400, 28224, 20736, 28800, 20736, 18432, 32768, 32768, 8192. The last layer's 10 classes are padded to 64 rows.
CNV_W1A1_PYNQ = (
    (Layer("conv0", 64, 27, 900, 1, 8), 16, 3),
    (Layer("conv1", 64, 576, 784), 32, 32),
    (Layer("conv2", 128, 576, 144), 16, 32),
    (Layer("conv3", 128, 1152, 100), 16, 32),
    (Layer("conv4", 256, 1152, 9), 4, 32),
    (Layer("conv5", 256, 2304, 1), 1, 32),
    (Layer("fc6", 512, 256), 1, 4),
    (Layer("fc7", 512, 512), 1, 8),
    (Layer("fc8", 64, 512), 4, 1),
)

#: The accelerator clock of BNN-PYNQ's PYNQ-Z1 build: the PS clock FCLK_CLK0 at 100 MHz drives the accelerator's
#: ``ap_clk`` (``bnn/src/library/script/pynqZ1-Z2/make-vivado-proj.tcl`` lines 78 and 90).
CNV_PYNQ_CLOCK_HZ = 100e6


def _require_fold(mh: int, mw: int, pe: int, simd: int) -> None:
    """PE must divide the rows and SIMD the columns, as in FINN (``calc_wmem`` asserts both)."""
    if mh % pe:
        raise ValueError(f"pe must divide the {mh} rows, got {pe}")
    if mw % simd:
        raise ValueError(f"simd must divide the {mw} columns, got {simd}")


def mvau_cycles(mh: int, mw: int, pe: int, simd: int, pixels: int = 1) -> int:
    r"""Cycles of one MVTU per image (official ``get_exp_cycles``):

    .. math:: c = \frac{H}{P}\cdot\frac{W}{S}\cdot N_{\text{pix}}

    ``pe`` must divide ``mh`` and ``simd`` must divide ``mw`` (``ValueError`` otherwise).
    """
    mh, mw = require_int(mh, "mh", minimum=1), require_int(mw, "mw", minimum=1)
    pe, simd = require_int(pe, "pe", minimum=1), require_int(simd, "simd", minimum=1)
    pixels = require_int(pixels, "pixels", minimum=1)
    _require_fold(mh, mw, pe, simd)
    return (mh // pe) * (mw // simd) * pixels


def _require_signs(t, name: str) -> torch.Tensor:
    require_tensor(t, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
    if t.is_complex() or not bool(((t == 1) | (t == -1)).all()):
        raise ValueError(f"{name} must hold only +1 and -1")
    return t


def _require_mvtu_operands(x, w, thresholds) -> None:
    _require_signs(x, "x")
    _require_signs(w, "w")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} inputs but w has {w.shape[1]} columns")
    require_tensor(thresholds, "thresholds")
    if thresholds.is_floating_point() or thresholds.is_complex() or thresholds.dtype == torch.bool:
        raise TypeError(f"thresholds must be an integer tensor, got {thresholds.dtype}")
    if thresholds.dim() != 2 or thresholds.shape[0] != w.shape[0]:
        raise ValueError(f"thresholds must have shape ({w.shape[0]}, T), got {tuple(thresholds.shape)}")


def folded_mvtu(x: torch.Tensor, w: torch.Tensor, thresholds: torch.Tensor, pe: int, simd: int):
    r"""A binary MVTU computed tile by tile, as ``finn-hlslib``'s ``Matrix_Vector_Activate_Batch`` does.

    For each neuron fold :math:`nf` and synapse fold :math:`sf` (one clock cycle each), PE :math:`p` XNORs the
    :math:`S` inputs of slice :math:`sf` with row :math:`nf\,P + p` of the weights and adds the popcount of
    agreements to its accumulator; at the last slice it emits

    .. math:: y_h = \sum_{i} [\,T_{h,i} < a_h\,], \qquad a_h = \#\{k : x_k = w_{hk}\}.

    ``x`` (N, W) and ``w`` (H, W) of :math:`\pm 1`; ``thresholds`` (H, T) integers. Returns ``(y, a, cycles)``:
    outputs (N, H) int64, accumulators (N, H) int64, and the cycles per input vector, :math:`(H/P)(W/S)`.
    """
    _require_mvtu_operands(x, w, thresholds)
    pe, simd = require_int(pe, "pe", minimum=1), require_int(simd, "simd", minimum=1)
    _require_fold(*w.shape, pe, simd)
    xb, wb = x > 0, w > 0
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    cycles = 0
    for nf in range(w.shape[0] // pe):
        rows = torch.arange(nf * pe, (nf + 1) * pe)                    # the P rows of this neuron fold
        for sf in range(w.shape[1] // simd):
            cols = slice(sf * simd, (sf + 1) * simd)                    # the S inputs of this synapse fold
            agree = xb[:, None, cols] == wb[rows][None, :, cols]        # P x S XNORs
            acc[:, rows] += agree.sum(-1)                               # P popcounts, accumulated
            cycles += 1
    y = (thresholds.to(torch.int64)[None] < acc[..., None]).sum(-1)
    return y, acc, cycles


def plain_mvtu(x: torch.Tensor, w: torch.Tensor, thresholds: torch.Tensor):
    r"""The same layer in one piece, through the library's XNOR-popcount product: :math:`a = (W + x\,w^\top)/2`
    agreements, then the threshold count. Returns ``(y, a)``."""
    from qteach import bitops

    _require_mvtu_operands(x, w, thresholds)
    acc = (w.shape[1] + bitops.xnor_matmul(x.float(), w.float()).to(torch.int64)) // 2
    return (thresholds.to(torch.int64)[None] < acc[..., None]).sum(-1), acc


def pipeline_rate(cycles, clock_hz: float) -> dict:
    r"""Throughput of a dataflow pipeline of engines with the given cycles per image.

    .. math:: \text{II} = \max_\ell c_\ell, \qquad \text{frames/s} = f_{\text{clk}} / \text{II}

    Returns ``ii`` (cycles), ``bottleneck`` (index of the slowest engine), ``fps``, and ``latency_cycles``,
    :math:`\sum_\ell c_\ell`, our first-order estimate of one image's latency (it ignores that an engine can start
    before its predecessor has finished the whole image, and FIFO and pipeline depths).
    """
    if not isinstance(cycles, (list, tuple)) or not cycles:
        raise ValueError("cycles must be a non-empty list of cycles per image")
    cycles = [require_int(c, "cycles", minimum=1) for c in cycles]
    clock_hz = require_positive_number(clock_hz, "clock_hz")
    ii = max(cycles)
    return {"ii": ii, "bottleneck": cycles.index(ii), "fps": clock_hz / ii, "latency_cycles": sum(cycles)}


def mvau_luts(layer: Layer, pe: int, simd: int) -> int:
    r"""LUTs of one MVTU, transcribed from FINN's ``lut_estimation`` (weights and thresholds in BRAM, products in
    LUTs, unsigned inputs):

    .. math::
        \text{LUT} = c_0 + c_1\, P\big(\underbrace{S\,(2\lceil\tfrac{W_b + A_b}{6}\rceil - 1)(W_b + A_b)}_{
        \text{multipliers}} + \underbrace{(W_b + A_b)(2S - 1)}_{\text{adder tree}} + \underbrace{b_{acc}}_{
        \text{accumulator}}\big)

    with :math:`b_{acc} = \min\big(32, \lceil \alpha + \log_2(1 + 2^{-\alpha}) + 1\rceil\big)`,
    :math:`\alpha = \log_2 W + W_b + A_b - 1`, :math:`c_0 = 300`, :math:`c_1 = 1.1`.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a Layer, got {type(layer).__name__}")
    pe, simd = require_int(pe, "pe", minimum=1), require_int(simd, "simd", minimum=1)
    _require_fold(layer.mh, layer.mw, pe, simd)
    wa = layer.w_bits + layer.a_bits
    mult = simd * (2 * math.ceil(wa / 6) - 1) * wa
    adder_tree = wa * (2 * simd - 1)
    alpha = math.log2(layer.mw) + wa - 1
    acc_bits = min(32, math.ceil(alpha + math.log2(1 + 2**-alpha) + 1))
    return int(MVAU_LUT_C0 + MVAU_LUT_C1 * pe * (mult + adder_tree + acc_bits))


def mvau_brams(layer: Layer, pe: int, simd: int) -> int:
    r"""18-kbit block RAMs of one MVTU's weight memory, transcribed from FINN's ``bram_estimation``: the weights
    form a memory :math:`P S W_b` bits wide and :math:`\omega = HW/(PS)` words deep, packed into RAMB18s
    configured as 16384x1, 8192x2, 4096x4, 2048x9, 1024x18 or 512x36."""
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a Layer, got {type(layer).__name__}")
    pe, simd = require_int(pe, "pe", minimum=1), require_int(simd, "simd", minimum=1)
    _require_fold(layer.mh, layer.mw, pe, simd)
    omega = layer.mh * layer.mw / (pe * simd)
    width = pe * simd * layer.w_bits
    if width == 1:
        return math.ceil(omega / 16384)
    if width == 2:
        return math.ceil(omega / 8192)
    if width <= 4:
        return math.ceil(omega / 4096) * math.ceil(width / 4)
    if width <= 9:
        return math.ceil(omega / 2048) * math.ceil(width / 9)
    if width <= 18 or omega > 512:
        return math.ceil(omega / 1024) * math.ceil(width / 18)
    return math.ceil(omega / 512) * math.ceil(width / 36)


def divisors(n: int) -> tuple:
    """The divisors of ``n`` in increasing order: the legal PE (of H) or SIMD (of W) values."""
    return _divisors(require_int(n, "n", minimum=1))


@functools.cache
def _divisors(n: int) -> tuple:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def set_folding(layer: Layer, target_cycles: int, wwidth_max: int = 36) -> tuple:
    r"""FINN's ``SetFolding`` for one MVTU: raise SIMD through the divisors of :math:`W` until
    :math:`c < \text{target}` or the weight stream :math:`S\,W_b` would exceed ``wwidth_max`` bits, then raise
    PE through the divisors of :math:`H` until :math:`c < \text{target}` (or PE = H). Returns ``(pe, simd)``.
    As in FINN, a SIMD that meets the target is kept even if it is wider than ``wwidth_max``, and the test is a
    strict ``<``: a layer lands *below* the target."""
    if not isinstance(layer, Layer):
        raise TypeError(f"layer must be a Layer, got {type(layer).__name__}")
    target_cycles = require_int(target_cycles, "target_cycles", minimum=1)
    wwidth_max = require_int(wwidth_max, "wwidth_max", minimum=1)
    return _set_folding(layer, target_cycles, wwidth_max)


@functools.cache
def _set_folding(layer: Layer, target: int, wwidth_max: int) -> tuple:
    def cycles(pe, simd):
        return (layer.mh // pe) * (layer.mw // simd) * layer.pixels

    simd = 1
    for s in _divisors(layer.mw):
        previous, simd = simd, s
        if cycles(1, simd) < target:
            break
        if simd * layer.w_bits > wwidth_max:
            simd = previous
            break
    for pe in _divisors(layer.mh):
        if cycles(pe, simd) < target:
            break
    return pe, simd


def fold_network(layers, target_cycles: int, wwidth_max: int = 36) -> list:
    """:func:`set_folding` for every layer; returns one ``(pe, simd)`` per layer."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError("layers must be a non-empty list of Layer")
    return [set_folding(layer, target_cycles, wwidth_max) for layer in layers]


def fastest_under_budget(layers, lut_budget: int, clock_hz: float, wwidth_max: int = 36) -> dict:
    r"""The highest-throughput folding whose estimated LUTs (:func:`mvau_luts` summed) fit ``lut_budget``.

    Our search (not FINN-R's algorithm, whose text we could not read): every initiation interval a single layer
    can have is a candidate target; each is folded with :func:`fold_network`, and the fastest that fits wins.
    Returns ``folds``, ``cycles``, ``luts``, ``brams`` and the :func:`pipeline_rate` entries, or ``None`` when
    even the fully folded design (P = S = 1 everywhere) does not fit.
    """
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(x, Layer) for x in layers):
        raise ValueError("layers must be a non-empty list of Layer")
    lut_budget = require_int(lut_budget, "lut_budget", minimum=1)
    clock_hz = require_positive_number(clock_hz, "clock_hz")
    wwidth_max = require_int(wwidth_max, "wwidth_max", minimum=1)
    fits = [d for d in _design_space(tuple(layers), wwidth_max) if d["luts"] <= lut_budget]
    if not fits:
        return None
    best = min(fits, key=lambda d: (d["ii"], d["luts"]))
    return {**best, **pipeline_rate(best["cycles"], clock_hz)}


@functools.lru_cache(maxsize=32)
def _design_space(layers: tuple, wwidth_max: int) -> tuple:
    """Every distinct folding that :func:`fold_network` produces, one per candidate target."""
    targets = sorted({(lay.mh // p) * (lay.mw // s) * lay.pixels + 1 for lay in layers
                      for p in _divisors(lay.mh) for s in _divisors(lay.mw)}, reverse=True)
    seen, designs = set(), []
    for target in targets:
        folds = tuple(_set_folding(lay, target, wwidth_max) for lay in layers)
        if folds in seen:
            continue
        seen.add(folds)
        cycles = [(lay.mh // p) * (lay.mw // s) * lay.pixels for lay, (p, s) in zip(layers, folds)]
        designs.append({"folds": list(folds), "cycles": cycles, "ii": max(cycles),
                        "luts": sum(mvau_luts(lay, p, s) for lay, (p, s) in zip(layers, folds)),
                        "brams": sum(mvau_brams(lay, p, s) for lay, (p, s) in zip(layers, folds))})
    return tuple(designs)
