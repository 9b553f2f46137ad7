r"""The roofline model of an FPGA CNN accelerator, and how precision moves a layer across it.

Mittal's survey (*A Survey of FPGA-based Accelerators for Convolutional Neural Networks*, Neural Computing and
Applications, 2020; online 2018) organises FPGA work on CNNs into categories; its abstract and introduction were
read for this book, its tables were not. This module builds the tool the surveyed designs are usually judged
with, the roofline model (Williams, Waterman, Patterson, CACM 2009; :func:`qteach.hw.roofline`): a layer with
arithmetic intensity :math:`I` (operations per byte of off-chip traffic) on a device of peak :math:`P` ops/s and
bandwidth :math:`B` bytes/s attains

.. math:: \text{attainable} = \min(P,\; I \cdot B).

On an FPGA both sides depend on precision. With :math:`b_w`-bit weights and :math:`b_a`-bit activations a
fully connected layer of :math:`n_{in} \times n_{out}` weights at batch :math:`N` has

.. math:: I = \frac{2 N n_{in} n_{out}}{\big(n_{in} n_{out} b_w + N (n_{in} + n_{out}) b_a\big)/8},

so fewer bits raise :math:`I`; and the peak is the number of multiply-accumulate lanes the fabric holds times
:math:`2f`, where a lane costs fewer LUTs at fewer bits (:func:`lane_luts`, the FINN compiler's cost model of the
FINN-R chapter, :mod:`qteach.papers.finn_r`). The device constants of :data:`PYNQ_Z1` are read from Xilinx's
BNN-PYNQ repository, with file and line; the DSP rule (one multiply-accumulate per DSP slice per cycle when both
operands fit its 25 x 18-bit multiplier, i.e. up to 18 bits) is our simplification.

References:

- S. Mittal, *A Survey of FPGA-based Accelerators for Convolutional Neural Networks*, Neural Computing and
  Applications 32, 2020.
- S. Williams, A. Waterman, D. Patterson, *Roofline: an insightful visual performance model for multicore
  architectures*, Communications of the ACM 52(4), 2009.
"""

from __future__ import annotations

from dataclasses import dataclass

from qteach import hw
from qteach._validate import (
    require_bits,
    require_bool,
    require_int,
    require_positive_number,
)
from qteach.papers import finn_r

__all__ = ["PYNQ_Z1", "Device", "ddr_bandwidth", "fc_intensity", "lane_luts", "layer_roofline", "peak_ops"]


@dataclass(frozen=True)
class Device:
    """An FPGA board as the roofline sees it: fabric resources, clock and off-chip bandwidth."""

    name: str
    luts: int
    dsps: int
    clock_hz: float
    dram_bytes_per_s: float


def ddr_bandwidth(ddr_clock_hz: float, bus_bits: int) -> float:
    r"""Peak bandwidth of a DDR memory in bytes/s: two transfers per clock, :math:`2 f \cdot w / 8`."""
    ddr_clock_hz = require_positive_number(ddr_clock_hz, "ddr_clock_hz")
    bus_bits = require_int(bus_bits, "bus_bits", minimum=8)
    return 2 * ddr_clock_hz * bus_bits / 8


#: PYNQ-Z1 (Zynq XC7Z020). LUTs and DSPs: the "Available" column of the utilization report in BNN-PYNQ's
#: ``bnn/src/network/cnvW1A1/README.md`` (lines 24 and 47); accelerator clock 100 MHz (``make-vivado-proj.tcl``
#: lines 78, 90); DDR3 at 525 MHz on a 16-bit bus (``pynqZ1-Z2.tcl`` lines 91 and 448), i.e. 2.1 GB/s peak.
PYNQ_Z1 = Device("PYNQ-Z1 (XC7Z020)", 53_200, 220, 100e6, ddr_bandwidth(525e6, 16))


def lane_luts(w_bits: int, a_bits: int) -> float:
    r"""LUTs of one multiply-accumulate lane in FINN's MVTU cost model (:func:`qteach.papers.finn_r.mvau_luts`):
    the growth of a PE's LUTs per added SIMD lane, :math:`c_1\big((2\lceil\frac{b_w+b_a}{6}\rceil - 1)(b_w+b_a) +
    2(b_w + b_a)\big)`, measured here as the difference between PEs of 128 and 64 lanes."""
    w_bits, a_bits = require_bits(w_bits, "w_bits"), require_bits(a_bits, "a_bits")
    layer = finn_r.Layer("lane", 1, 128, 1, w_bits, a_bits)
    return (finn_r.mvau_luts(layer, 1, 128) - finn_r.mvau_luts(layer, 1, 64)) / 64


def peak_ops(device: Device, w_bits: int, a_bits: int, lut_fraction: float = 0.5) -> float:
    r"""Peak ops/s: :math:`2f\,(D + \lfloor \phi L / \ell(b_w, b_a) \rfloor)` with :math:`D` DSP lanes (one MAC per
    DSP per cycle if :math:`b_w, b_a \le 18`, the width of a DSP48E1 multiplier's narrow port; our simplification,
    none above, and no packing of two narrow products into one DSP) and the lanes that a fraction :math:`\phi`
    of the :math:`L` LUTs holds at :func:`lane_luts` each."""
    if not isinstance(device, Device):
        raise TypeError(f"device must be a Device, got {type(device).__name__}")
    w_bits, a_bits = require_bits(w_bits, "w_bits"), require_bits(a_bits, "a_bits")
    lut_fraction = require_positive_number(lut_fraction, "lut_fraction", maximum=1.0)
    dsp_lanes = device.dsps if max(w_bits, a_bits) <= 18 else 0
    lut_lanes = int(lut_fraction * device.luts / lane_luts(w_bits, a_bits))
    return 2 * device.clock_hz * (dsp_lanes + lut_lanes)


def fc_intensity(n_in: int, n_out: int, w_bits: int, a_bits: int, batch: int = 1,
                 weights_on_chip: bool = False) -> float:
    r"""Arithmetic intensity (ops per byte) of a fully connected layer at a batch, through
    :func:`qteach.hw.layer_traffic_bits`: every weight crosses the memory interface once per batch (never, if
    ``weights_on_chip``), every input and output once per sample."""
    n_in, n_out = require_int(n_in, "n_in", minimum=1), require_int(n_out, "n_out", minimum=1)
    batch = require_int(batch, "batch", minimum=1)
    weights_on_chip = require_bool(weights_on_chip, "weights_on_chip")
    weights = 0 if weights_on_chip else n_in * n_out
    bits = hw.layer_traffic_bits(weights, batch * n_in, batch * n_out, w_bits, a_bits, a_bits)
    return hw.arithmetic_intensity(2 * batch * hw.linear_macs(n_in, n_out), bits / 8)


def layer_roofline(intensity: float, device: Device, w_bits: int, a_bits: int, lut_fraction: float = 0.5) -> dict:
    """Where a layer of the given intensity lands on ``device`` at a precision: ``peak``, ``memory_roof``
    (:math:`I B`), ``attainable`` (:func:`qteach.hw.roofline`), ``bound`` ("memory" or "compute") and ``ridge``
    (:math:`P/B`, the intensity where the two roofs meet)."""
    peak = peak_ops(device, w_bits, a_bits, lut_fraction)
    attainable = hw.roofline(intensity, peak, device.dram_bytes_per_s)
    memory_roof = intensity * device.dram_bytes_per_s
    return {"peak": peak, "memory_roof": memory_roof, "attainable": attainable,
            "bound": "memory" if memory_roof < peak else "compute", "ridge": peak / device.dram_bytes_per_s}
