r"""BDPE: a binary dot-product engine that keeps the most-used binary kernels next to the CPU (VLSI-SoC 2019).

*A Product Engine for Energy-Efficient Execution of Binary Neural Networks Using Resistive Memories*, IFIP/IEEE
VLSI-SoC 2019, DOI 10.1109/VLSI-SoC.2019.8920343 (EPFL infoscience record 267670).

**What could be read.** The abstract only (infoscience record 267670, citegraph). It says: about 90% of the
operations of CNNs and BNNs are convolutions, so much of the memory traffic fetches convolution kernels; the
kernels are small (e.g. 3x3) and in BNNs redundant, so equal kernels can share one memory address; the Binary
Dot Product Engine (BDPE) "locally stores the most used binary weights and performs binary convolution using
computing capabilities enabled by the RRAMs"; evaluated with gem5 and a C framework next to a 28 nm FD-SOI ARMv8
in-order core against an optimised YoloV3 XNOR-Net on the unmodified CPU, it gives +11.3% performance, +7.4%
energy efficiency, -10.7% memory accesses, and less than 0.3% extra die area (:data:`PAPER_ABSTRACT`).

The paper's circuit, its store size, its instruction interface and its energy numbers were not read. Everything
below is **our reconstruction** of the idea at the level the abstract describes; the equation labels (B1)-(B4)
are ours.

**Kernel codes (B1).** A binary kernel :math:`w \in \{-1,+1\}^{k_h \times k_w}` is a :math:`T = k_h k_w`-bit code,
bit :math:`t` (taps in row-major order) set where :math:`w_t = -1`, the convention of :func:`qteach.bitops.pack_bits`.
A 3x3 kernel has :math:`2^9 = 512` possible codes.

**The dot product (B2).** For an input window :math:`u` (the signs under the kernel; taps in the zero padding
contribute 0) with code :math:`x` and the mask :math:`m` of its taps inside the image,

.. math:: \langle w, u \rangle = \operatorname{popcount}(m) - 2\,\operatorname{popcount}\big((x \oplus w) \wedge m\big).

**The engine (B3).** The store holds :math:`S` codes :math:`p_1..p_S`; for an input code :math:`x` it returns the
dot products with all of them at once, as an in-memory array would, i.e. row :math:`s` of the table
:math:`E_{s,x} = T - 2\,\operatorname{popcount}(p_s \oplus x)` (padded taps read as :math:`+1`). Padded taps are
then corrected as in :func:`qteach.bitops.binary_conv2d`: subtract :math:`\sum_{t \notin m} w_t =
(T - \operatorname{popcount}(m)) - 2\operatorname{popcount}(p_s \wedge \neg m)`.

**Routing (B4).** A kernel whose code is in the store is served by the engine (a *hit*); any other kernel takes
the CPU path (B2) with its code fetched from memory. Both give the same integer, so the convolution equals
``bitops.binary_conv2d`` bit for bit whatever the store holds; the store changes only the cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach._validate import (
    require_int,
    require_integer_tensor,
    require_ndim,
    require_no_nan,
    require_non_negative_number,
    require_positive_number,
    require_tensor,
)
from qteach.bitops import conv_geometry, pack_bits

__all__ = [
    "ASSUMED_COSTS",
    "PAPER_ABSTRACT",
    "bdpe_conv2d",
    "build_store",
    "engine_table",
    "hit_counts",
    "kernel_codes",
    "kernel_histogram",
    "layer_cost",
    "network_gain",
]

#: The numbers of the abstract (infoscience record 267670): the gains of the BDPE next to a 28 nm FD-SOI ARMv8
#: in-order core over an optimised YoloV3 XNOR-Net on the unmodified CPU, and the share of convolutions.
PAPER_ABSTRACT = {
    "performance_gain": 0.113,
    "energy_efficiency_gain": 0.074,
    "memory_access_reduction": 0.107,
    "area_overhead_below": 0.003,
    "convolution_share": 0.90,   # "approximately 90% of the operations executed by CNNs and BNNs are convolutions"
}

#: Costs of one binary k x k dot product in the model of :func:`layer_cost`. ALL are our assumptions (the paper's
#: text was not read), chosen to be simple and stated: the CPU path loads the kernel code and the window code,
#: then EOR, AND (padding mask), CNT and ADD (6 instructions, 2 of them loads); the engine path loads the window,
#: hands it to the engine and reads the result back, then ADD (4 instructions, 1 load). Energies: a load is one
#: 64-bit access to a 32 kB SRAM, 20 pJ in Horowitz's 45 nm table (``hw.MEMORY_PJ_PER_64BIT_45NM``, not 28 nm);
#: an instruction's core energy and an engine read are placeholders of the same order, to be varied.
ASSUMED_COSTS = {
    "cpu_loads": 2, "cpu_instructions": 6,
    "engine_loads": 1, "engine_instructions": 4,
    "load_pj": 20.0, "instruction_pj": 10.0, "engine_read_pj": 5.0,
}


def _require_taps(taps) -> int:
    return require_int(taps, "taps", minimum=1, maximum=16)


def _popcount(v: torch.Tensor, taps: int) -> torch.Tensor:
    return sum((v >> t) & 1 for t in range(taps))


def kernel_codes(w: torch.Tensor) -> torch.Tensor:
    r"""The code of every binary kernel of a convolution weight (B1): int64 (O, C), bit :math:`t` set where
    :math:`\operatorname{sign}(w_{o,c,t}) = -1` (taps row-major, :math:`\operatorname{sign}(0) = +1`).

    .. math:: \operatorname{code}(w_{o,c}) = \sum_{t=0}^{k_h k_w - 1} [w_{o,c,t} < 0]\, 2^t

    ``w`` is (O, C, kh, kw) with at most 16 taps; the bits are those of ``bitops.pack_bits``.
    """
    require_tensor(w, "w")
    require_ndim(w, "w", 4)
    if w.is_complex() or w.dtype == torch.bool:
        raise TypeError(f"w must be a real tensor, got {w.dtype}")
    require_no_nan(w, "w")
    _require_taps(w.shape[2] * w.shape[3])
    packed = pack_bits(w.flatten(2)).to(torch.int64)           # (O, C, bytes), little-endian bits
    return sum(packed[..., i] << (8 * i) for i in range(packed.shape[-1]))


def _require_codes(codes, taps: int, name: str = "codes") -> torch.Tensor:
    require_integer_tensor(codes, name)
    if codes.numel() and bool(((codes < 0) | (codes >= 2**taps)).any()):
        raise ValueError(f"{name} must hold codes in [0, 2**taps) = [0, {2**taps - 1}]")
    return codes


def kernel_histogram(codes: torch.Tensor, taps: int = 9) -> torch.Tensor:
    r"""How many kernels have each of the :math:`2^T` codes: int64 of length :math:`2^T` (512 for 3x3)."""
    taps = _require_taps(taps)
    _require_codes(codes, taps)
    return torch.bincount(codes.flatten().to(torch.int64), minlength=2**taps)


def build_store(counts: torch.Tensor, entries: int) -> torch.Tensor:
    r"""The ``entries`` most used codes, most used first (ties: the smaller code first): the BDPE's store.

    ``counts`` is a histogram from :func:`kernel_histogram`; ``entries`` is at most its length.
    """
    require_integer_tensor(counts, "counts")
    require_ndim(counts, "counts", 1)
    entries = require_int(entries, "entries", minimum=0, maximum=counts.numel())
    order = torch.sort(-counts, stable=True).indices              # stable: equal counts keep code order
    return order[:entries]


def hit_counts(counts: torch.Tensor) -> torch.Tensor:
    r"""Kernels served by a store of the :math:`N` most used codes, for :math:`N = 0, 1, \dots, 2^T`:

    .. math:: H(N) = \sum_{r=1}^{N} n_{(r)}, \qquad n_{(1)} \ge n_{(2)} \ge \dots \text{ the sorted counts.}

    int64 of length ``len(counts) + 1``; the hit rate is ``H / H[-1]``.
    """
    require_integer_tensor(counts, "counts")
    require_ndim(counts, "counts", 1)
    ordered = torch.sort(counts, descending=True).values
    return torch.cat([counts.new_zeros(1), ordered.cumsum(0)]).to(torch.int64)


def engine_table(store: torch.Tensor, taps: int = 9) -> torch.Tensor:
    r"""What the engine returns for every input code (B3): int64 (S, :math:`2^T`),

    .. math:: E_{s,x} = T - 2\,\operatorname{popcount}(p_s \oplus x).
    """
    taps = _require_taps(taps)
    _require_codes(store, taps, "store")
    require_ndim(store, "store", 1)
    x = torch.arange(2**taps)
    return taps - 2 * _popcount(store.to(torch.int64)[:, None] ^ x[None, :], taps)


def _window_codes(x, kh, kw, stride, padding):
    """Codes (N, C, L) of the sign windows of ``x`` and codes (L,) of their masks of taps inside the image."""
    n, c = x.shape[:2]
    weights = 2 ** torch.arange(kh * kw)
    bits = F.unfold((x < 0).to(torch.float32), (kh, kw), padding=padding, stride=stride)
    inside = F.unfold(torch.ones(1, 1, *x.shape[2:]), (kh, kw), padding=padding, stride=stride)
    codes = (bits.view(n, c, kh * kw, -1).to(torch.int64) * weights[:, None]).sum(2)
    return codes, (inside[0].to(torch.int64) * weights[:, None]).sum(0)


def bdpe_conv2d(x: torch.Tensor, w: torch.Tensor, store: torch.Tensor, stride=1, padding=0):
    r"""Binary convolution :math:`\operatorname{sign}(x) \ast \operatorname{sign}(w)` through the BDPE (B2)-(B4).

    Every (output channel, input channel) kernel is looked up in ``store`` (codes from :func:`build_store`): a hit
    reads the engine's row (:func:`engine_table`) at each window's code and corrects the padded taps; a miss runs
    the CPU path (B2). Returns ``(y, engine_dots, cpu_dots)``: ``y`` int32 (N, O, oh, ow), equal to
    ``bitops.binary_conv2d(x, w, stride, padding)``, and the numbers of k x k dot products each path served.
    """
    (sh, sw), (ph, pw), (oh, ow) = conv_geometry(x, w, stride, padding)
    require_no_nan(x, "x")
    wcode = kernel_codes(w)                                        # (O, C)
    kh, kw = w.shape[2:]
    taps = kh * kw
    _require_codes(store, taps, "store")
    require_ndim(store, "store", 1)
    if store.unique().numel() != store.numel():
        raise ValueError("store must not hold a code twice")
    xcode, mask = _window_codes(x, kh, kw, (sh, sw), (ph, pw))     # (N, C, L), (L,)
    slot_of = torch.full((2**taps,), -1, dtype=torch.int64)
    slot_of[store.to(torch.int64)] = torch.arange(store.numel())
    slot = slot_of[wcode]                                          # (O, C); -1 = not stored
    hit = slot >= 0
    # CPU path (B2): the kernel code comes from memory
    cpu = _popcount(mask, taps) - 2 * _popcount((xcode[:, None] ^ wcode[None, :, :, None]) & mask, taps)
    # engine path (B3): the stored pattern's row of the table, minus the padded taps' weights
    stored = torch.cat([store.to(torch.int64), store.new_zeros(1, dtype=torch.int64)])  # a spare row for misses
    row = torch.where(hit, slot, store.numel())                    # (O, C)
    engine = engine_table(stored, taps)[row[None, :, :, None], xcode[:, None]]
    pattern = stored[row]
    padded = ~mask & (2**taps - 1)
    engine = engine - (_popcount(padded, taps) - 2 * _popcount(pattern[..., None] & padded, taps))
    y = torch.where(hit[None, :, :, None], engine, cpu).sum(2)     # (N, O, L)
    windows = x.shape[0] * oh * ow
    return (y.view(x.shape[0], w.shape[0], oh, ow).to(torch.int32), int(hit.sum()) * windows,
            int((~hit).sum()) * windows)


def layer_cost(engine_dots: int, cpu_dots: int, costs: dict | None = None) -> dict:
    r"""Loads, instructions and energy of a layer's dot products, on the plain CPU and with the BDPE.

    With :math:`D = D_e + D_c` dot products of which :math:`D_e` hit the store, and the per-dot costs ``costs``
    (default :data:`ASSUMED_COSTS`, all assumptions):

    .. math:: \text{loads}_{\text{CPU}} = D\,\ell_c, \quad \text{loads}_{\text{BDPE}} = D_c \ell_c + D_e \ell_e,
        \qquad E = \text{loads}\cdot e_{\text{load}} + \text{instr}\cdot e_{\text{instr}}
        + D_e\, e_{\text{engine}}

    (instructions likewise). Returns a dict of ``"cpu"`` and ``"bdpe"``, each with ``loads``, ``instructions``
    and ``energy_pj``.
    """
    engine_dots = require_int(engine_dots, "engine_dots", minimum=0)
    cpu_dots = require_int(cpu_dots, "cpu_dots", minimum=0)
    c = dict(ASSUMED_COSTS)
    if costs is not None:
        if not isinstance(costs, dict) or not set(costs) <= set(c):
            raise ValueError(f"costs must be a dict with keys among {sorted(c)}, got {costs!r}")
        c.update({k: require_non_negative_number(v, f"costs[{k!r}]") for k, v in costs.items()})
    dots = engine_dots + cpu_dots

    def total(loads, instructions, engine_reads):
        energy = loads * c["load_pj"] + instructions * c["instruction_pj"] + engine_reads * c["engine_read_pj"]
        return {"loads": loads, "instructions": instructions, "energy_pj": energy}

    return {"cpu": total(dots * c["cpu_loads"], dots * c["cpu_instructions"], 0),
            "bdpe": total(cpu_dots * c["cpu_loads"] + engine_dots * c["engine_loads"],
                          cpu_dots * c["cpu_instructions"] + engine_dots * c["engine_instructions"], engine_dots)}


def network_gain(convolution_share: float, saved_in_convolutions: float) -> float:
    r"""Whole-network gain (Amdahl's law) when a share :math:`f` of the time is convolutions and the BDPE saves a
    fraction :math:`s` of the convolutions' time:

    .. math:: G = \frac{1}{1 - f s} - 1

    (e.g. :math:`f = 0.9` from the abstract; the result is a relative speed-up, 0.113 for the paper's +11.3%).
    """
    f = require_non_negative_number(convolution_share, "convolution_share")
    s = require_non_negative_number(saved_in_convolutions, "saved_in_convolutions")
    if f > 1:
        raise ValueError(f"convolution_share must be in [0, 1], got {f}")
    if s >= 1:
        raise ValueError(f"saved_in_convolutions must be in [0, 1), got {s}")
    require_positive_number(1 - f * s, "1 - convolution_share * saved_in_convolutions")
    return 1 / (1 - f * s) - 1
