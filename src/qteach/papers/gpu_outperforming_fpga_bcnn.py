r"""A streaming FPGA architecture for binary CNNs against a GPU (Li, Liu, Xu, Yu, Ren; ACM JETC 2018).

The paper's claim (abstract): an FPGA accelerator that is "fully mapped" (every layer has its own hardware) and
"tailored for bitwise convolution and normalization", with "massive spatial parallelism with deep pipeline stages",
is faster than a Titan X GPU for small batches and on a par for large ones, at a fraction of the energy, because
"its performance is insensitive to data batch size" while the GPU's is not. This module models both sides:

*Streaming FPGA.* Layer :math:`\ell` does :math:`M_\ell` binary multiply-accumulates per image on :math:`U_\ell`
unrolled XNOR-popcount units (one binary MAC per unit per cycle). All layers run concurrently on consecutive images:

.. math:: T_\ell = \Big\lceil \frac{M_\ell}{U_\ell} \Big\rceil, \qquad
    \text{images/s} = \frac{f}{\max_\ell T_\ell}, \qquad \text{ops/s} = 2 \sum_\ell M_\ell \cdot \text{images/s},

independent of the batch size (two operations per binary MAC: XNOR and accumulate). Units are allocated in
proportion to each layer's work so that the stages are balanced. Inside a convolution stage, pixels stream in raster
order through a *line buffer* of :math:`(k-1)W + k` pixels, the least storage from which every :math:`k \times k`
window can be read as it completes; :func:`streaming_binary_conv2d` simulates it bit-exactly.

*GPU.* Each layer is a kernel launch whose time is bounded by a roofline (Williams et al., 2009) plus a launch
overhead:

.. math:: t_\ell(B) = t_{launch} + \frac{2 M_\ell B}{\min\big(P_{peak},\; I_\ell(B)\cdot BW\big)}, \qquad
    I_\ell(B) = \frac{2 M_\ell B}{\text{weight bytes}_\ell + B \cdot \text{activation bytes}_\ell},

so small batches pay the launch overhead and re-read all weights for few images, and throughput
:math:`B / \sum_\ell t_\ell(B)` grows with the batch :math:`B`.

The constants the paper reports and that we could verify are in :data:`FPGA_REPORTED`; the GPU's constants are
the notebook's labelled assumptions.

References:

- Y. Li, Z. Liu, K. Xu, H. Yu, F. Ren, *A GPU-Outperforming FPGA Accelerator Architecture for Binary Convolutional
  Neural Networks*, ACM JETC 14(2), 2018 (arXiv 1702.06392).
- Same authors, *A 7.663-TOPS 8.2-W Energy-efficient FPGA Accelerator for Binary Convolutional Neural Networks*,
  FPGA 2017 (abstract only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qteach import bitops, hw
from qteach._validate import require_int, require_positive_number, require_tensor

__all__ = [
    "FPGA_REPORTED",
    "StreamLayer",
    "binarynet_cifar10",
    "allocate_units",
    "streaming_throughput",
    "gpu_throughput",
    "line_buffer_bits",
    "streaming_binary_conv2d",
]

#: Numbers read in the FPGA 2017 abstract by the same authors ("A 7.663-TOPS 8.2-W Energy-efficient FPGA
#: Accelerator for Binary Convolutional Neural Networks"): a Xilinx Virtex-7 design at 90 MHz, 7.663 TOPS, 8.2 W,
#: "regardless of the batch size". The JETC paper's abstract gives the comparisons with a Titan X GPU (8.3x faster and
#: 75x more energy-efficient for small batches; on a par in throughput and 9.5x more energy-efficient for large
#: batches); it does not restate these three numbers, so they are attributed to the FPGA 2017 abstract.
FPGA_REPORTED = {"clock_hz": 90e6, "ops_per_s": 7.663e12, "power_w": 8.2,
                 "speedup_small_batch": 8.3, "energy_gain_small_batch": 75.0, "energy_gain_large_batch": 9.5}


@dataclass(frozen=True)
class StreamLayer:
    """One layer of a binary CNN for the throughput models: ``macs`` binary MACs per image, ``weights`` weight
    count, ``inputs`` and ``outputs`` activation counts per image."""

    name: str
    macs: int
    weights: int
    inputs: int
    outputs: int


def _conv(name, c_in, c_out, size, kernel=3):
    # 'same' padding: the output has the input's size
    return StreamLayer(name, size * size * c_out * kernel * kernel * c_in, c_out * c_in * kernel * kernel,
                       c_in * size * size, c_out * size * size)


def binarynet_cifar10() -> list:
    r"""The CIFAR-10 network of BinaryNet (Courbariaux, Hubara et al., 2016), as a workload:

    (2 x 128C3) - MP2 - (2 x 256C3) - MP2 - (2 x 512C3) - MP2 - (2 x 1024 FC) - 10 FC, on 32 x 32 x 3 images.

    Whether Li et al. used exactly this network is not verified here; it is the standard binary CNN for CIFAR-10
    of the time and stands in for the paper's workload.
    """
    return [_conv("conv1", 3, 128, 32), _conv("conv2", 128, 128, 32), _conv("conv3", 128, 256, 16),
            _conv("conv4", 256, 256, 16), _conv("conv5", 256, 512, 8), _conv("conv6", 512, 512, 8),
            StreamLayer("fc1", 8192 * 1024, 8192 * 1024, 8192, 1024),
            StreamLayer("fc2", 1024 * 1024, 1024 * 1024, 1024, 1024),
            StreamLayer("fc3", 1024 * 10, 1024 * 10, 1024, 10)]


def _check_layers(layers):
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(l, StreamLayer) for l in layers):
        raise ValueError("layers must be a non-empty list of StreamLayer")
    return layers


def allocate_units(layers: list, total_units: int) -> list:
    r"""Split ``total_units`` XNOR-popcount units among the layers so that the slowest stage is as fast as possible.

    Start from :math:`U_\ell = \max(1, \lfloor U M_\ell / \sum M \rfloor)` (proportional to the work), then give
    each remaining unit to the current bottleneck stage. Needs at least one unit per layer.
    """
    layers = _check_layers(layers)
    total_units = require_int(total_units, "total_units", minimum=len(layers))
    work = sum(l.macs for l in layers)
    units = [max(1, total_units * l.macs // work) for l in layers]
    while sum(units) > total_units:                       # the max(1, .) floor can overshoot for tiny layers
        i = min((j for j in range(len(units)) if units[j] > 1), key=lambda j: -(-layers[j].macs // (units[j] - 1)))
        units[i] -= 1
    for _ in range(total_units - sum(units)):
        i = max(range(len(units)), key=lambda j: -(-layers[j].macs // units[j]))
        units[i] += 1
    return units


def streaming_throughput(layers: list, units: list, clock_hz: float) -> dict:
    r"""Rate of the fully mapped pipeline: :math:`T_\ell = \lceil M_\ell / U_\ell \rceil`, images/s
    :math:`= f / \max_\ell T_\ell`, ops/s :math:`= 2 \sum M_\ell \cdot` images/s. The batch size does not appear.
    Returns ``cycles``, ``ii``, ``images_per_s``, ``ops_per_s``, ``bottleneck`` and ``utilization`` (the fraction of
    unit-cycles doing useful work)."""
    layers = _check_layers(layers)
    if not isinstance(units, (list, tuple)) or len(units) != len(layers):
        raise ValueError(f"units must be a list with one entry per layer ({len(layers)})")
    units = [require_int(u, "units", minimum=1) for u in units]
    clock_hz = require_positive_number(clock_hz, "clock_hz")
    cycles = [-(-l.macs // u) for l, u in zip(layers, units)]
    ii = max(cycles)
    rate = clock_hz / ii
    macs = sum(l.macs for l in layers)
    return {"cycles": cycles, "ii": ii, "images_per_s": rate, "ops_per_s": 2 * macs * rate,
            "bottleneck": cycles.index(ii), "utilization": macs / (ii * sum(units))}


def gpu_throughput(layers: list, batch: int, peak_ops_per_s: float, bandwidth_bytes_per_s: float,
                   launch_s: float, bytes_per_value: float = 4.0) -> dict:
    r"""Images per second of a layer-by-layer GPU execution at batch size ``batch`` (roofline plus launch overhead).

    Per layer: ops :math:`2 M B`; bytes: weights once plus inputs and outputs per image, ``bytes_per_value`` each
    (4 for float32, the way frameworks of the time ran binary networks; 1/8 for bit-packed data); attainable rate
    from :func:`qteach.hw.roofline`; time = ops / rate + ``launch_s``. Returns ``images_per_s``, ``time_s`` (per
    batch) and ``intensity`` (ops per byte, per layer).
    """
    layers = _check_layers(layers)
    batch = require_int(batch, "batch", minimum=1)
    peak = require_positive_number(peak_ops_per_s, "peak_ops_per_s")
    bandwidth = require_positive_number(bandwidth_bytes_per_s, "bandwidth_bytes_per_s")
    if isinstance(launch_s, bool) or not isinstance(launch_s, (int, float)) or not launch_s >= 0:
        raise ValueError(f"launch_s must be a number >= 0, got {launch_s!r}")
    require_positive_number(bytes_per_value, "bytes_per_value")
    total, intensities = 0.0, []
    for layer in layers:
        ops = 2 * layer.macs * batch
        moved = bytes_per_value * (layer.weights + batch * (layer.inputs + layer.outputs))
        intensity = hw.arithmetic_intensity(ops, moved)
        intensities.append(intensity)
        total += ops / hw.roofline(intensity, peak, bandwidth) + launch_s
    return {"images_per_s": batch / total, "time_s": total, "intensity": intensities}


def line_buffer_bits(width: int, channels: int, kernel: int) -> int:
    r"""Bits of the line buffer of a streaming :math:`k \times k` binary convolution over rows of ``width`` pixels
    with ``channels`` 1-bit channels: the window's first pixel arrived :math:`(k-1)W + k - 1` pixels before its last,
    so :math:`((k-1)W + k)\,C` bits must be held."""
    width = require_int(width, "width", minimum=1)
    channels = require_int(channels, "channels", minimum=1)
    kernel = require_int(kernel, "kernel", minimum=1)
    if kernel > width:
        raise ValueError(f"kernel {kernel} is wider than the row width {width}")
    return ((kernel - 1) * width + kernel) * channels


def _require_real_tensor(t, name: str) -> None:
    """``t`` must be a real numeric tensor (not bool, not complex)."""
    require_tensor(t, name)
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must be a real numeric tensor, got {t.dtype}")


def streaming_binary_conv2d(x: torch.Tensor, w: torch.Tensor):
    r"""A binary :math:`k \times k` convolution (stride 1, no padding) computed the way a streaming architecture
    does: pixels arrive one per step in raster order, all channels at once; a line buffer keeps the last
    :math:`(k-1)W + k` pixels; whenever a window completes, an unrolled XNOR-popcount array computes every output
    channel of that position in one step (:func:`qteach.bitops.xnor_matmul` on the window's :math:`C k^2` bits).

    ``x`` (N, C, H, W) and ``w`` (O, C, k, k) are real tensors, binarized by their signs. Returns ``(out, stats)``:
    int32 (N, O, H-k+1, W-k+1), equal to ``bitops.binary_conv2d(x, w)``, and a dict with ``steps`` (pixels
    streamed), ``outputs`` (windows computed) and ``max_buffered`` (most pixels held at once).
    """
    _require_real_tensor(x, "x")
    _require_real_tensor(w, "w")
    if x.dim() != 4 or w.dim() != 4:
        raise ValueError(f"x and w must be 4-D, got {tuple(x.shape)} and {tuple(w.shape)}")
    if w.shape[1] != x.shape[1] or w.shape[2] != w.shape[3]:
        raise ValueError(f"w must be (O, {x.shape[1]}, k, k), got {tuple(w.shape)}")
    if w.shape[2] > x.shape[2] or w.shape[2] > x.shape[3]:
        raise ValueError(f"kernel {w.shape[2]} is larger than the input {x.shape[2]}x{x.shape[3]}")
    n, c, h, width = x.shape
    o, _, k, _ = w.shape
    weights = w.permute(0, 2, 3, 1).reshape(o, k * k * c)      # window order: row, column, channel
    out = torch.zeros(n, o, h - k + 1, width - k + 1, dtype=torch.int32)
    buffer, capacity, max_buffered, outputs = [], (k - 1) * width + k, 0, 0
    for index in range(h * width):
        row, col = divmod(index, width)
        buffer.append(x[:, :, row, col])                        # one pixel, all channels, enters the stream
        if len(buffer) > capacity:
            buffer.pop(0)                                       # the oldest pixel is no longer needed
        max_buffered = max(max_buffered, len(buffer))
        if row >= k - 1 and col >= k - 1:
            # the window's pixel (i, j) arrived (k-1-i) rows and (k-1-j) pixels before the current one
            window = torch.stack([buffer[-1 - (k - 1 - i) * width - (k - 1 - j)]
                                  for i in range(k) for j in range(k)], dim=1).reshape(n, k * k * c)
            out[:, :, row - k + 1, col - k + 1] = bitops.xnor_matmul(window, weights)
            outputs += 1
    return out, {"steps": h * width, "outputs": outputs, "max_buffered": max_buffered}
