r"""Cost models shared by the hardware chapters: operation counts, memory, energy, roofline; and a timer.

Every constant names its source. The energy table is the one most papers in this book quote:
M. Horowitz, *Computing's energy problem (and what we can do about it)*, ISSCC 2014, for a 45 nm process at
0.9 V. It has no entry for XNOR or popcount, and this module does not invent one.
"""

from __future__ import annotations

import math
import statistics
import time

from qteach._validate import (require_bits, require_bool, require_int, require_non_negative_number, require_pair,
                               require_positive_number)

#: Energy per operation in picojoules, 45 nm, 0.9 V (Horowitz, ISSCC 2014, fig. 1.1.9).
ENERGY_PJ_45NM = {
    ("int", "add", 8): 0.03,
    ("int", "add", 32): 0.1,
    ("int", "mult", 8): 0.2,
    ("int", "mult", 32): 3.1,
    ("float", "add", 16): 0.4,
    ("float", "add", 32): 0.9,
    ("float", "mult", 16): 1.1,
    ("float", "mult", 32): 3.7,
}

#: Energy of one 64-bit memory access in picojoules, 45 nm (Horowitz, ISSCC 2014). DRAM is quoted as a
#: range, 1.3-2.6 nJ; the lower end is used here.
MEMORY_PJ_PER_64BIT_45NM = {
    "sram_8kb": 10.0,
    "sram_32kb": 20.0,
    "sram_1mb": 100.0,
    "dram": 1300.0,
}


def mac_energy_pj(kind: str, bits: int) -> float:
    """Energy of one multiply-accumulate (one multiply plus one add of the same format) from the table.

    ``kind`` is ``"int"`` (8 or 32 bits) or ``"float"`` (16 or 32 bits). Other widths are not in the source
    and raise ``ValueError`` rather than being interpolated.
    """
    bits = require_bits(bits)
    try:
        return ENERGY_PJ_45NM[(kind, "mult", bits)] + ENERGY_PJ_45NM[(kind, "add", bits)]
    except KeyError:
        known = sorted({(k, b) for (k, _, b) in ENERGY_PJ_45NM})
        raise ValueError(f"no energy for kind={kind!r}, bits={bits} in Horowitz (2014); known: {known}") from None


def memory_access_energy_pj(num_bits: int, level: str = "dram") -> float:
    """Energy of moving ``num_bits`` bits from ``level`` (a key of :data:`MEMORY_PJ_PER_64BIT_45NM`),
    charged per started 64-bit word."""
    num_bits = require_int(num_bits, "num_bits", minimum=0)
    if level not in MEMORY_PJ_PER_64BIT_45NM:
        raise ValueError(f"level must be one of {sorted(MEMORY_PJ_PER_64BIT_45NM)}, got {level!r}")
    return math.ceil(num_bits / 64) * MEMORY_PJ_PER_64BIT_45NM[level]


def linear_macs(in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a fully connected layer for one input: :math:`n_{in} n_{out}`."""
    in_features = require_int(in_features, "in_features", 1)
    out_features = require_int(out_features, "out_features", 1)
    return in_features * out_features


def conv2d_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a convolution: :math:`\\lfloor (n + 2p - k) / s \\rfloor + 1`."""
    size, kernel = require_int(size, "size", 1), require_int(kernel, "kernel", 1)
    stride, padding = require_int(stride, "stride", 1), require_int(padding, "padding", 0)
    if size + 2 * padding < kernel:
        raise ValueError(f"kernel {kernel} is larger than the padded input {size + 2 * padding}")
    return (size + 2 * padding - kernel) // stride + 1


def conv2d_macs(in_channels: int, out_channels: int, kernel, out_height: int, out_width: int, groups: int = 1) -> int:
    r"""Multiply-accumulates of a k x k (or :math:`k_h \times k_w`: ``kernel`` a pair) convolution with ``groups``
    groups: :math:`\frac{C_{in}}{g} C_{out} k_h k_w H_{out} W_{out}` (:math:`g = C_{in}`: depth-wise)."""
    in_channels = require_int(in_channels, "in_channels", 1)
    out_channels = require_int(out_channels, "out_channels", 1)
    kh, kw = require_pair(kernel, "kernel", 1)
    out_height = require_int(out_height, "out_height", 1)
    out_width = require_int(out_width, "out_width", 1)
    groups = require_int(groups, "groups", 1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups must divide in_channels ({in_channels}) and out_channels ({out_channels}), "
                         f"got {groups}")
    return in_channels // groups * out_channels * kh * kw * out_height * out_width


def bops(macs: int, weight_bits: int, input_bits: int) -> int:
    r"""Bit operations of ``macs`` multiply-accumulates: :math:`\text{MACs} \cdot b_w \cdot b_a`.

    The usual way to compare mixed-precision models in one unit (a 1-bit x 1-bit MAC is one XNOR-popcount
    bit operation; a 32 x 32 MAC counts as 1024).
    """
    macs = require_int(macs, "macs", 0)
    weight_bits = require_bits(weight_bits, "weight_bits")
    input_bits = require_bits(input_bits, "input_bits")
    return macs * weight_bits * input_bits


def layer_traffic_bits(weights: int, inputs: int, outputs: int, weight_bits: int, input_bits: int,
                       output_bits: int) -> int:
    """Bits a layer moves if every weight, input and output crosses the memory interface once (no reuse
    beyond that, no re-fetching): the minimum traffic of one inference of the layer."""
    weights, inputs, outputs = (require_int(weights, "weights", 0), require_int(inputs, "inputs", 0),
                                require_int(outputs, "outputs", 0))
    weight_bits, input_bits, output_bits = (require_bits(weight_bits, "weight_bits"),
                                            require_bits(input_bits, "input_bits"),
                                            require_bits(output_bits, "output_bits"))
    return weights * weight_bits + inputs * input_bits + outputs * output_bits


def arithmetic_intensity(ops: float, bytes_moved: float) -> float:
    """Operations per byte of memory traffic, the x-axis of the roofline model."""
    if isinstance(ops, bool) or not isinstance(ops, (int, float)) or not ops >= 0:
        raise ValueError(f"ops must be a number >= 0, got {ops!r}")
    bytes_moved = require_positive_number(bytes_moved, "bytes_moved")
    return ops / bytes_moved


def roofline(intensity: float, peak_ops_per_s: float, bandwidth_bytes_per_s: float) -> float:
    r"""Attainable performance :math:`\min(P_{peak},\; I \cdot B)` (Williams, Waterman, Patterson, CACM 2009).

    Below the ridge point :math:`I^* = P_{peak} / B` a kernel is memory-bound: more arithmetic units do not help,
    fewer bits per operand do. That is why low precision helps memory-bound layers most.
    """
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) or not intensity >= 0:
        raise ValueError(f"intensity must be a number >= 0, got {intensity!r}")
    peak_ops_per_s = require_positive_number(peak_ops_per_s, "peak_ops_per_s")
    bandwidth_bytes_per_s = require_positive_number(bandwidth_bytes_per_s, "bandwidth_bytes_per_s")
    return min(peak_ops_per_s, intensity * bandwidth_bytes_per_s)


def wall_seconds(fn, repeats: int = 5, min_seconds: float = 0.0, best: bool = False) -> float:
    """Wall time of one call of ``fn()`` in seconds, as the notebooks' timing tables measure it.

    One warm-up call (caches, lazy initialisation, JIT compilation), then ``repeats`` measurements; each loops
    ``fn`` until it lasts at least ``min_seconds`` (at most 50 calls), so that calls faster than the clock's
    resolution are still timed. Returns the median of the measurements, or with ``best=True`` the minimum (the
    least disturbed by other work on the machine). Timings depend on the machine and its load: print them, never
    compare them with stored numbers.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    repeats = require_int(repeats, "repeats", minimum=1)
    min_seconds = require_non_negative_number(min_seconds, "min_seconds")
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    number = min(50, max(1, int(min_seconds / max(once, 1e-9)))) if min_seconds else 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times) if require_bool(best, "best") else statistics.median(times)

