r"""Eyeriss v2: row-stationary convolution, compressed sparse (CSC) processing and a NoC bandwidth model
(Chen, Yang, Emer, Sze, IEEE JETCAS 2019).

Eyeriss v2 is a 65 nm accelerator for compact and sparse DNNs (MobileNet, sparse AlexNet). Its abstract names
two ideas: a flexible on-chip network, the *hierarchical mesh*, that adapts to the different amounts of data reuse
and bandwidth each data type needs in each layer, and processing of sparse weights and activations *directly in
the compressed domain*. It keeps the row-stationary (RS) dataflow of the original Eyeriss. This module has three
functional models and one cost model:

1. :func:`row_stationary_conv2d`: the RS dataflow as a PE-level schedule. PE :math:`(r, e)` keeps filter row
   :math:`r` stationary and convolves it with input row :math:`eU + r` (a 1-D convolution, :func:`pe_row_conv`);
   the partial-sum rows of a PE column are summed into output row :math:`e`. The result equals ``F.conv2d``.
2. :func:`csc_encode` / :func:`csc_matvec`: a compressed sparse column format (data, count of leading zeros,
   column address) and the PE's sparse matrix-vector product, which reads and multiplies only stored entries.
   Its result equals the dense product and its MAC and access counts are exact under the rules stated there.
3. :func:`noc_layer_cost`: a bandwidth model of three on-chip networks (one broadcast bus, unicast, and a
   hierarchical mesh that can multicast) feeding the same PEs, with energies from :mod:`qteach.hw`.

What we could read: the paper's abstract (arXiv 1807.07928, JETCAS 2019). Its full text (architecture figures, the
exact CSC layout, bit widths, PE count, router ports, tables) could not be reached from this project, so every
structural constant below is **our assumption**, labelled where it is defined; the format of :func:`csc_encode`
(data, zero-run counts with a capped width, column addresses) is our reconstruction of the paper's CSC.

Reference: Y.-H. Chen, T.-J. Yang, J. Emer, V. Sze, *Eyeriss v2: A Flexible Accelerator for Emerging Deep Neural
Networks on Mobile Devices*, IEEE JETCAS 9(2), 2019 (arXiv:1807.07928).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from qteach import hw
from qteach._validate import require_int, require_integer_tensor, require_ndim

__all__ = [
    "CSC",
    "NETWORKS",
    "PAPER",
    "CSCCounts",
    "RowStationaryStats",
    "csc_decode",
    "csc_encode",
    "csc_matvec",
    "csc_storage_bits",
    "layer_reuse",
    "noc_layer_cost",
    "pe_row_conv",
    "row_stationary_conv2d",
    "rs_array_fit",
]

#: The numbers of the paper's abstract (arXiv:1807.07928 / JETCAS 2019): sparse MobileNet, batch size 1, 65 nm.
PAPER = {
    "process_nm": 65,
    "sparse_mobilenet_inferences_per_s": 1470.6,
    "sparse_mobilenet_inferences_per_j": 2560.3,
    "speedup_vs_eyeriss_v1_mobilenet": 12.6,
    "energy_efficiency_vs_eyeriss_v1_mobilenet": 2.5,
}


def _require_int_tensor(value, name: str, ndim: int) -> torch.Tensor:
    require_integer_tensor(value, name)
    return require_ndim(value, name, ndim)


def pe_row_conv(input_row: torch.Tensor, filter_row: torch.Tensor, stride: int = 1) -> torch.Tensor:
    r"""One PE of the RS dataflow: a 1-D convolution of one input row with one (stationary) filter row.

    .. math:: p[f] = \sum_{s=0}^{S-1} w[s]\, x[fU + s], \qquad f = 0, \dots, F - 1

    Integer tensors (the chip's 8-bit operands); the sum is exact in int64.
    """
    _require_int_tensor(input_row, "input_row", 1)
    _require_int_tensor(filter_row, "filter_row", 1)
    stride = require_int(stride, "stride", 1)
    if filter_row.numel() > input_row.numel():
        raise ValueError(f"filter_row ({filter_row.numel()}) is longer than input_row ({input_row.numel()})")
    windows = input_row.long().unfold(0, filter_row.numel(), stride)      # (F, S): the sliding window
    return windows @ filter_row.long()


@dataclass(frozen=True)
class RowStationaryStats:
    """The schedule of :func:`row_stationary_conv2d`: the logical PE set is ``pe_rows`` x ``pe_cols`` (filter
    rows x output rows); ``row_convs`` 1-D convolutions ran on PEs, ``macs`` multiply-accumulates in all,
    ``psum_row_adds`` partial-sum rows accumulated vertically (between PEs of a column or across channels)."""

    pe_rows: int
    pe_cols: int
    row_convs: int
    macs: int
    psum_row_adds: int


def row_stationary_conv2d(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int = 0):
    r"""A convolution computed as the RS dataflow schedules it; returns ``(output, RowStationaryStats)``.

    .. math:: O[m, e, f] = \sum_{c} \sum_{r=0}^{R-1} \underbrace{\sum_{s=0}^{S-1} W[m,c,r,s]\,
        I[c, eU + r, fU + s]}_{\text{PE } (r, e)}

    ``x`` (C, H, W) and ``w`` (M, C, R, S) integer tensors; the result (M, E, F) is int64 and equals
    ``F.conv2d`` exactly. For each (m, c), PE (r, e) holds filter row r and input row eU + r (the diagonals of
    the PE array share input rows); the R partial-sum rows of PE column e add up to output row e.
    """
    _require_int_tensor(x, "x", 3)
    _require_int_tensor(w, "w", 4)
    stride, padding = require_int(stride, "stride", 1), require_int(padding, "padding", 0)
    if w.shape[1] != x.shape[0]:
        raise ValueError(f"w has {w.shape[1]} input channels, x has {x.shape[0]}")
    if min(x.shape[1], x.shape[2]) + 2 * padding < max(w.shape[2], w.shape[3]):
        raise ValueError("w's kernel is larger than the padded input x")
    x = F.pad(x.long(), (padding,) * 4)
    (M, C, R, S), H = w.shape, x.shape[1]
    E = (H - R) // stride + 1
    out = torch.zeros(M, E, (x.shape[2] - S) // stride + 1, dtype=torch.int64)
    for m in range(M):
        for c in range(C):
            for e in range(E):                       # PE column e: one output row
                for r in range(R):                   # PE (r, e): filter row r, input row e*U + r
                    out[m, e] += pe_row_conv(x[c, e * stride + r], w[m, c, r], stride)
    convs = M * C * E * R
    return out, RowStationaryStats(R, E, convs, convs * S * out.shape[2], convs)


def rs_array_fit(pe_rows: int, pe_cols: int, array_rows: int, array_cols: int) -> tuple[int, float]:
    r"""Fold a logical R x E PE set onto a physical array: ``(passes, utilization)``.

    .. math:: \text{passes} = \lceil R / A_r \rceil \lceil E / A_c \rceil, \qquad
        \text{utilization} = \frac{R E}{\text{passes}\, A_r A_c}

    Our simplification: the original Eyeriss also replicates small PE sets across the array (several channels
    at once); this function does not, so it shows the loss that fixed-shape mapping suffers on small layers.
    """
    pe_rows, pe_cols = require_int(pe_rows, "pe_rows", 1), require_int(pe_cols, "pe_cols", 1)
    array_rows, array_cols = require_int(array_rows, "array_rows", 1), require_int(array_cols, "array_cols", 1)
    passes = math.ceil(pe_rows / array_rows) * math.ceil(pe_cols / array_cols)
    return passes, pe_rows * pe_cols / (passes * array_rows * array_cols)


@dataclass(frozen=True)
class CSC:
    """A matrix in compressed sparse column form: ``data`` (stored values, padding zeros included), ``count``
    (zeros skipped before each stored value in its column), ``address`` (start of each column in ``data``,
    plus the end: length ``columns + 1``), ``shape`` and the ``count_bits`` of the count field."""

    data: torch.Tensor
    count: torch.Tensor
    address: torch.Tensor
    shape: tuple
    count_bits: int


def csc_encode(matrix: torch.Tensor, count_bits: int = 4) -> CSC:
    r"""Encode an integer matrix (or a vector, as one column) column by column.

    Each non-zero value is stored with the number of zeros before it in its column. A count field has
    ``count_bits`` bits, so a run of more than :math:`2^b - 1` zeros stores a padding zero with count
    :math:`2^b - 1` (it stands for :math:`2^b` positions) until the rest fits; zeros at a column's end need no
    entry. Our reconstruction (the paper's figure could not be read); ``count_bits=4`` is our assumption.
    """
    require_integer_tensor(matrix, "matrix")
    if matrix.dim() not in (1, 2):
        raise ValueError(f"matrix must be 1-D or 2-D, got {matrix.dim()} dimensions")
    count_bits = require_int(count_bits, "count_bits", 1, 16)
    dense = matrix.reshape(-1, 1) if matrix.dim() == 1 else matrix
    cap, data, count, address = 2**count_bits - 1, [], [], [0]
    for column in dense.long().T.tolist():
        run = 0
        for value in column:
            if value == 0:
                run += 1
                continue
            while run > cap:                         # a padding zero covers cap zeros plus itself
                data.append(0)
                count.append(cap)
                run -= cap + 1
            data.append(value)
            count.append(run)
            run = 0
        address.append(len(data))
    as_long = lambda v: torch.tensor(v, dtype=torch.int64)
    return CSC(as_long(data), as_long(count), as_long(address), tuple(matrix.shape), count_bits)


def csc_decode(csc: CSC) -> torch.Tensor:
    """The dense int64 matrix (or vector) of a :class:`CSC`: the inverse of :func:`csc_encode`."""
    if not isinstance(csc, CSC):
        raise TypeError(f"csc must be a CSC, got {type(csc).__name__}")
    rows = csc.shape[0]
    dense = torch.zeros(rows, len(csc.address) - 1, dtype=torch.int64)
    for j in range(len(csc.address) - 1):
        row = -1
        for k in range(int(csc.address[j]), int(csc.address[j + 1])):
            row += int(csc.count[k]) + 1
            dense[row, j] = csc.data[k]
    return dense.reshape(csc.shape)


@dataclass(frozen=True)
class CSCCounts:
    """Work of :func:`csc_matvec`: ``macs`` (one per stored weight of a column met by a stored activation),
    ``iact_reads`` (stored activations, padding included), ``weight_reads`` (= ``macs``), ``address_reads``
    (two per stored activation: the start and end of its weight column), ``dense_macs`` (M x C)."""

    macs: int
    iact_reads: int
    weight_reads: int
    address_reads: int
    dense_macs: int


def csc_matvec(weight: torch.Tensor, act: torch.Tensor, count_bits: int = 4):
    r"""The PE's sparse product :math:`o = W a` in the compressed domain; returns ``(o, CSCCounts)``.

    .. math:: o[m] = \sum_{c:\, a[c] \neq 0} \; \sum_{m:\, W[m, c] \neq 0} W[m, c]\, a[c]

    Both operands are CSC (:func:`csc_encode`). For each stored activation :math:`(c, a)` the PE reads the
    start and end of weight column :math:`c` from the address vector, then multiplies :math:`a` with each stored
    weight of that column and adds it to the partial sum of its row. Zeros are never multiplied, except the
    padding zeros the format stores. ``weight`` (M, C) and ``act`` (C,) integer; the result equals
    ``weight @ act`` exactly.
    """
    _require_int_tensor(weight, "weight", 2)
    _require_int_tensor(act, "act", 1)
    if weight.shape[1] != act.shape[0]:
        raise ValueError(f"weight has {weight.shape[1]} columns, act has {act.shape[0]} entries")
    w, a = csc_encode(weight, count_bits), csc_encode(act, count_bits)
    out, macs, c = torch.zeros(weight.shape[0], dtype=torch.int64), 0, -1
    for a_value, a_count in zip(a.data.tolist(), a.count.tolist()):
        c += a_count + 1                                        # the activation's channel index
        start, end = int(w.address[c]), int(w.address[c + 1])  # two address reads
        m = -1
        for w_value, w_count in zip(w.data[start:end].tolist(), w.count[start:end].tolist()):
            m += w_count + 1
            out[m] += w_value * a_value
            macs += 1
    n = len(a.data)
    return out, CSCCounts(macs, n, macs, 2 * n, weight.numel())


def csc_storage_bits(csc: CSC, data_bits: int = 8, address_bits: int = 16) -> int:
    r"""Bits to store a :class:`CSC`: :math:`n (b_{data} + b_{count}) + (\text{columns} + 1)\, b_{address}`.

    ``data_bits=8`` follows the 8-bit operands of Eyeriss-class chips; ``address_bits=16`` is our assumption.
    """
    if not isinstance(csc, CSC):
        raise TypeError(f"csc must be a CSC, got {type(csc).__name__}")
    data_bits, address_bits = require_int(data_bits, "data_bits", 1), require_int(address_bits, "address_bits", 1)
    return len(csc.data) * (data_bits + csc.count_bits) + len(csc.address) * address_bits


#: The three networks of :func:`noc_layer_cost`, our model (the paper's router ports and link widths could not be
#: read): ``supply(P)`` is the number of distinct values per cycle the network can deliver to P PEs for one data
#: type, ``multicast`` whether one buffer read can reach several PEs. A single bus delivers one value per cycle to
#: every PE that wants it; unicast gives every PE its own link but a value read once reaches one PE; the
#: hierarchical mesh (in its all-to-all mode) delivers P values per cycle and can also multicast.
NETWORKS = {
    "broadcast bus": {"supply": lambda p: 1, "multicast": True},
    "unicast": {"supply": lambda p: p, "multicast": False},
    "hierarchical mesh": {"supply": lambda p: p, "multicast": True},
}


def layer_reuse(kind: str, channels: int, out_channels: int, kernel: int, out_size: int, stride: int = 1):
    r"""Operand reuse of one layer at batch size 1: ``(macs, weights, iacts, weight_reuse, iact_reuse)``.

    Each weight is used once per output pixel (:math:`E^2`); each input activation once per output channel and
    kernel position that covers it (:math:`M R^2 / U^2`; depth-wise: :math:`R^2 / U^2`); a fully connected layer
    is ``kernel=1, out_size=1``. ``kind`` is ``"conv"`` or ``"depthwise"`` (``channels == out_channels``).
    """
    if kind not in ("conv", "depthwise"):
        raise ValueError(f"kind must be 'conv' or 'depthwise', got {kind!r}")
    C, M = require_int(channels, "channels", 1), require_int(out_channels, "out_channels", 1)
    R, E = require_int(kernel, "kernel", 1), require_int(out_size, "out_size", 1)
    U = require_int(stride, "stride", 1)
    if kind == "depthwise" and C != M:
        raise ValueError(f"a depthwise layer needs channels == out_channels, got {C} and {M}")
    groups_in = 1 if kind == "depthwise" else C
    macs = hw.conv2d_macs(groups_in, M, R, E, E)
    weights = M * groups_in * R * R
    iacts = C * ((E - 1) * U + R) ** 2
    return macs, weights, iacts, macs / weights, macs / iacts


def noc_layer_cost(macs: int, weights: int, iacts: int, network: str, num_pes: int = 168) -> dict:
    r"""Cycles, PE utilization and energy of one layer when ``network`` feeds weights and input activations.

    A data type with ``n`` distinct values used ``macs`` times needs
    :math:`P\, n / \text{macs}` distinct values per cycle to keep P PEs busy; the network supplies
    ``supply(P)``, so the PEs run at :math:`u = \min(1, \text{supply}/\text{need})` for the scarcer data type:

    .. math:: \text{cycles} = \frac{\text{macs}}{P\, u}, \qquad
        E = \text{macs}\, e_{MAC} + \text{reads} \cdot e_{buffer}

    Buffer reads are one per distinct value with multicast, one per use without. Energies are Horowitz's 45 nm
    numbers (:mod:`qteach.hw`: 8-bit integer MAC, 32 kB SRAM per 8-bit value), not the paper's 65 nm chip.
    """
    macs, weights = require_int(macs, "macs", 1), require_int(weights, "weights", 1)
    iacts, num_pes = require_int(iacts, "iacts", 1), require_int(num_pes, "num_pes", 1)
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {sorted(NETWORKS)}, got {network!r}")
    supply, multicast = NETWORKS[network]["supply"](num_pes), NETWORKS[network]["multicast"]
    utilization = min(1.0, *(supply * macs / (num_pes * n) for n in (weights, iacts)))
    reads = weights + iacts if multicast else 2 * macs
    energy_pj = macs * hw.mac_energy_pj("int", 8) + reads * hw.memory_access_energy_pj(64, "sram_32kb") / 8
    return {"cycles": macs / (num_pes * utilization), "utilization": utilization, "buffer_reads": reads,
            "energy_pj": energy_pj}
