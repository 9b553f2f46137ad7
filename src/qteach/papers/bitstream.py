r"""BitStream: an all-binary, cache-friendly computation flow for BNN inference on CPUs (ACM MM 2018).

The BitStream abstract contrasts two computation flows. Existing BNN implementations follow the float networks'
**im2col** flow: unfold every :math:`k_h \times k_w \times C` window of the input into a column (the input is copied
:math:`k_h k_w` times), then multiply, and keep activations as numbers between layers. BitStream instead keeps the
feature maps as packed, contiguous bit streams and computes "all the layers, including convolutional layers,
binarization layers and pooling layers" in binary precision. This module models both:

1. **Memory**: exact byte counts of each flow's buffers for one convolution layer (:func:`flow_bytes`).
2. **The all-binary layer**: a convolution read directly from the channel-packed input (no unfolded copy of the
   image is kept beyond one row of windows in a real kernel; here the rows are gathered with
   :func:`qteach.papers.bitflow.packed_windows`), a threshold that writes the output as packed bits, and max-pooling
   done on the packed bits (:func:`binary_stream_layer`).
3. **Max-pooling as a bitwise operation** (:func:`packed_max_pool2d`). The sign is monotone, so pooling commutes with
   binarization, :math:`\max_i \operatorname{sign}(a_i) = \operatorname{sign}(\max_i a_i)`, and the max of
   :math:`\pm 1` values is :math:`+1` as soon as one of them is. With bits 1 = +1 the max over a window is the OR
   of its bits; with the library's bits (:func:`qteach.bitops.pack_bits`: 1 = -1) it is the AND.

What we could read: the MM'18 abstract (and that of the 2019 Pattern Recognition Letters extension). The paper's
exact data layout, kernels and memory accounting were not read; the flows and byte counts below are our model of what
the abstract describes.

Reference: *BitStream: Efficient Computing Architecture for Real-Time Low-Power Inference of Binary Neural Networks
on CPUs*, ACM Multimedia 2018, doi:10.1145/3240508.3240673 (authors not verified here). Extended version: Y. Jiang,
T. Zhao, X. He, C. Leng, J. Cheng, *BitStream: An efficient framework for inference of binary neural networks on
CPUs*, Pattern Recognition Letters 125, 2019.
"""

from __future__ import annotations

import torch

from qteach._validate import require_int, require_no_nan, require_pair, require_tensor
from qteach.bitops import pack_bits, xnor_matmul_packed
from qteach.papers.bitflow import packed_windows, padding_correction

__all__ = ["ENCODINGS", "FLOWS", "binary_stream_layer", "flow_bytes", "packed_max_pool2d"]

#: What a set bit means: ``"minus"`` is the library's convention (1 = -1), ``"plus"`` the {0, 1} = {-1, +1} one.
ENCODINGS = ("minus", "plus")
#: The three computation flows of :func:`flow_bytes`.
FLOWS = ("float im2col", "binary im2col", "bitstream")


def _words(bits: int) -> int:
    """Bytes of ``bits`` bits stored in whole 64-bit words."""
    return 8 * -(-bits // 64)


def flow_bytes(channels: int, height: int, width: int, out_channels: int, kernel_size=3, stride=1,
               padding=0) -> dict:
    r"""Bytes held by one convolution layer (one image) in each computation flow: our memory model.

    With :math:`L = o_h o_w` output positions, :math:`K = C k_h k_w` and 64-bit words
    (:math:`\lceil \cdot \rceil_{64}` rounds a bit count up to whole words):

    .. math::
        \text{float im2col: } & 4 CHW + 4 K L + 4 O L + 4 O K \\
        \text{binary im2col: } & 4 CHW + L \lceil K \rceil_{64} / 8 + 4 O L + O \lceil K \rceil_{64} / 8 \\
        \text{bitstream: } & HW \lceil C \rceil_{64} / 8 + 4 O + L \lceil O \rceil_{64} / 8
        + O k_h k_w \lceil C \rceil_{64} / 8

    Each flow is ``{"input", "buffer", "output", "weights"}`` bytes: the float flow keeps float32 activations and
    unfolds them (im2col); the conventional binary flow keeps float activations between layers, unfolds the input
    and packs each column (64-bit words); the BitStream flow keeps channel-packed bits in and out and needs only one
    output pixel's int32 accumulators as its buffer.
    """
    c, h, w, o = (require_int(v, name, minimum=1) for v, name in
                  ((channels, "channels"), (height, "height"), (width, "width"), (out_channels, "out_channels")))
    (kh, kw), (sh, sw) = require_pair(kernel_size, "kernel_size", 1), require_pair(stride, "stride", 1)
    ph, pw = require_pair(padding, "padding", 0)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel_size ({kh}, {kw}) is larger than the padded input ({h + 2 * ph}, {w + 2 * pw})")
    k, positions = c * kh * kw, oh * ow
    return {
        "float im2col": {"input": 4 * c * h * w, "buffer": 4 * k * positions, "output": 4 * o * positions,
                         "weights": 4 * o * k},
        "binary im2col": {"input": 4 * c * h * w, "buffer": positions * _words(k), "output": 4 * o * positions,
                          "weights": o * _words(k)},
        "bitstream": {"input": h * w * _words(c), "buffer": 4 * o, "output": positions * _words(o),
                      "weights": o * kh * kw * _words(c)},
    }


def packed_max_pool2d(packed: torch.Tensor, kernel_size=2, stride=None, encoding: str = "minus") -> torch.Tensor:
    r"""Max-pooling of :math:`\pm 1` feature maps on their packed bits: a bitwise OR (or AND) over each window.

    .. math:: \max_{(i, j) \in \text{window}} x_{ij} = +1 \iff \exists (i, j):\ x_{ij} = +1,
        \quad\text{so}\quad \text{bits}^{+}_{\max} = \bigvee \text{bits}^{+}, \qquad
        \text{bits}^{-}_{\max} = \bigwedge \text{bits}^{-}

    ``packed`` is uint8 (N, H, W, B), the channels of each pixel packed into B bytes (``encoding="minus"``: 1 = -1,
    as :func:`qteach.bitops.pack_bits`; ``"plus"``: 1 = +1). ``stride`` defaults to ``kernel_size``; no padding
    (windows that do not fit are dropped, as ``F.max_pool2d``). Returns uint8 (N, oh, ow, B).
    """
    require_tensor(packed, "packed")
    if packed.dtype != torch.uint8 or packed.dim() != 4:
        raise TypeError(f"packed must be a 4-d uint8 tensor (N, H, W, bytes), got {packed.dtype} {packed.dim()}-d")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    kh, kw = require_pair(kernel_size, "kernel_size", 1)
    sh, sw = require_pair(kernel_size if stride is None else stride, "stride", 1)
    if packed.shape[1] < kh or packed.shape[2] < kw:
        raise ValueError(f"kernel_size ({kh}, {kw}) is larger than the map {tuple(packed.shape[1:3])}")
    windows = packed.unfold(1, kh, sh).unfold(2, kw, sw).flatten(-2)      # (N, oh, ow, B, kh * kw)
    combine = torch.bitwise_or if encoding == "plus" else torch.bitwise_and
    pooled = windows[..., 0]
    for t in range(1, kh * kw):
        pooled = combine(pooled, windows[..., t])
    return pooled


def binary_stream_layer(pixels: torch.Tensor, channels: int, w: torch.Tensor, thresholds: torch.Tensor,
                        padding=1, pool=2) -> torch.Tensor:
    r"""One all-binary layer on packed bits: XNOR-popcount convolution, threshold to bits, max-pool as AND.

    .. math:: y = \operatorname{maxpool}\big(\operatorname{sign}(\operatorname{sign}(x) \ast
        \operatorname{sign}(w) - \tau)\big), \qquad \operatorname{sign}(0) = +1

    ``pixels`` is uint8 (N, H, W, ceil(C / 8)), the input packed along its ``channels`` (1 = -1); ``w`` (O, C, kh, kw)
    real weights (stride 1); ``thresholds`` (O,) the per-channel :math:`\tau` (batch norm folded into a threshold).
    Returns the output packed the same way, uint8 (N, oh / pool, ow / pool, ceil(O / 8)): the next layer's input,
    with no float or unpacked activation in between.
    """
    require_tensor(pixels, "pixels")
    channels = require_int(channels, "channels", minimum=1)
    require_no_nan(require_tensor(w, "w"), "w")
    require_no_nan(require_tensor(thresholds, "thresholds"), "thresholds")
    padding = require_pair(padding, "padding", 0)
    if pixels.dim() != 4 or pixels.shape[-1] != -(-channels // 8):
        raise ValueError(f"pixels must be (N, H, W, ceil(channels / 8)) = (.., .., .., {-(-channels // 8)}), "
                         f"got {tuple(pixels.shape)}")
    if w.dim() != 4 or w.shape[1] != channels:
        raise ValueError(f"w must be (O, channels, kh, kw) with channels = {channels}, got {tuple(w.shape)}")
    if thresholds.shape != (w.shape[0],):
        raise ValueError(f"thresholds must have shape ({w.shape[0]},), one per output channel, got "
                         f"{tuple(thresholds.shape)}")
    (n, h, wd, _), (kh, kw) = pixels.shape, w.shape[2:]
    x_rows = packed_windows(pixels, w.shape[2:], 1, padding)              # read straight from the packed map
    w_rows = pack_bits(w.movedim(1, -1)).reshape(w.shape[0], -1)
    k, real_bits = 8 * x_rows.shape[1], channels * kh * kw
    counts = xnor_matmul_packed(x_rows, w_rows, k).to(torch.int64) - (k - real_bits)
    counts = counts - padding_correction((n, channels, h, wd), w, 1, padding)
    oh, ow = h + 2 * padding[0] - kh + 1, wd + 2 * padding[1] - kw + 1
    out_bits = pack_bits((counts - thresholds).reshape(n, oh, ow, -1))  # bit 1 where count < tau: sign = -1
    return packed_max_pool2d(out_bits, pool)
