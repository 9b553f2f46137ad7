r"""BitFlow: channel packing ("PressedConv") against spatial packing for binary convolution on CPUs (Hu et al., 2018).

A binary convolution is a sum of :math:`\pm 1` products. With 64 signs per machine word, each product of 64 pairs is
one XOR and one population count,

.. math:: \sum_{k=1}^{64} a_k w_k = 64 - 2 \operatorname{popcount}\big(\operatorname{bits}(a) \oplus
    \operatorname{bits}(w)\big),

but only if the 64 bits of a word are 64 *terms of the same sum*. Which 64 values share a word is the layout
question BitFlow answers. Its abstract says that the conventional image-to-column method "doesn't perform well for
binary convolution due to low arithmetic intensity and unfriendly pattern for bitwise operations", and proposes
PressedConv, "a locality-aware layout and vector parallelism". This module puts two layouts side by side, both
bit-exact:

1. **Spatial packing** (the naive layout, ours): the image stays channel-major (NCHW) and the bits of one
   :math:`k_h \times k_w` window *of one channel* are packed into a word. A 3x3 window fills 9 of 64 bits, and an
   output needs one word per input channel: :math:`C \lceil k_h k_w / 64 \rceil` words.
2. **Channel packing** (PressedConv's layout as we read it): the image is stored pixel-major (NHWC) and the
   :math:`C` channels of one pixel are packed together, so an output needs :math:`k_h k_w \lceil C / 64 \rceil`
   words, each full when :math:`C` is a multiple of 64. The library's :func:`qteach.bitops.binary_conv2d` uses this
   layout.

Both reduce the convolution to the same XNOR-popcount product of packed rows
(:func:`qteach.bitops.xnor_matmul_packed`), so a timing difference between them measures the layout alone. The word
counts of :func:`words_per_output` are the cost model.

What we could read: the IPDPS abstract and a third-party reading note. The paper's own algorithm listings, its
exact PressedConv data layout, the vector execution scheduler and its tables were not read; the spatial layout here
is our reconstruction of the "unfriendly pattern" the abstract names.

Reference: Y. Hu, J. Zhai, D. Li, Y. Gong, Y. Zhu, W. Liu, L. Su, J. Jin, *BitFlow: Exploiting Vector Parallelism for
Binary Neural Networks on CPU*, IPDPS 2018, doi:10.1109/IPDPS.2018.00034.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach._validate import require_int, require_no_nan, require_pair, require_tensor
from qteach.binary import sign
from qteach.bitops import conv_geometry, pack_bits, xnor_matmul_packed

__all__ = ["LAYOUTS", "WORD_BITS", "bit_utilization", "channel_rows", "layout_conv2d", "packed_windows",
           "padding_correction", "spatial_rows", "words_per_output"]

#: Bits of one machine word in the functional model and the default word of the cost model.
WORD_BITS = 64
#: The two layouts of this chapter.
LAYOUTS = ("channel", "spatial")


def _check_conv(x, w, stride, padding):
    """The operand checks of :func:`qteach.bitops.binary_conv2d`; returns (stride, padding, out_hw)."""
    geometry = conv_geometry(x, w, stride, padding)
    require_no_nan(x, "x")
    require_no_nan(w, "w")
    return geometry


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def packed_windows(pixels: torch.Tensor, kernel_size, stride=1, padding=0) -> torch.Tensor:
    r"""Gather the :math:`k_h k_w` packed pixels of every window of a channel-packed image into one row.

    .. math:: \text{row}_{n,i,j} = \big[\text{pixels}_{n,\, i s + k_y,\, j s + k_x,\, :}\big]_{k_y, k_x}

    ``pixels`` is uint8 (N, H, W, B), an image packed along its channels (``pack_bits(x.movedim(1, -1))``);
    returns uint8 (N * oh * ow, kh * kw * B). Padding pixels are 0 bytes, i.e. +1 in every channel.
    """
    require_tensor(pixels, "pixels")
    if pixels.dtype != torch.uint8 or pixels.dim() != 4:
        raise TypeError(f"pixels must be a 4-d uint8 tensor (N, H, W, bytes), got {pixels.dtype} {pixels.dim()}-d")
    (kh, kw), (sh, sw) = require_pair(kernel_size, "kernel_size", 1), require_pair(stride, "stride", 1)
    ph, pw = require_pair(padding, "padding", 0)
    if pixels.shape[1] + 2 * ph < kh or pixels.shape[2] + 2 * pw < kw:
        raise ValueError(f"kernel_size ({kh}, {kw}) is larger than the padded image {tuple(pixels.shape[1:3])}")
    padded = F.pad(pixels, (0, 0, pw, pw, ph, ph))
    windows = padded.unfold(1, kh, sh).unfold(2, kw, sw)                   # (N, oh, ow, B, kh, kw)
    return windows.permute(0, 1, 2, 4, 5, 3).flatten(0, 2).flatten(1)


def channel_rows(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0):
    r"""PressedConv's layout: pack each pixel's channels, then gather the :math:`k_h k_w` packed pixels of a window.

    .. math:: \text{row}_{n,i,j} = \big[\operatorname{bits}(x_{n,:,i s + k_y,\, j s + k_x})\big]_{k_y, k_x}

    ``x`` (N, C, H, W) and ``w`` (O, C, kh, kw) are real tensors (signs are packed, 1 for -1). Returns
    ``(x_rows, w_rows, k)``: uint8 ``x_rows`` (N * oh * ow, kh * kw * ceil(C / 8)), ``w_rows`` (O, same) and the
    number of bits per row ``k``. Zero padding is packed as +1 (bit 0), see :func:`padding_correction`. The rows
    hold whole bytes per pixel, so with :math:`C` a multiple of 64 each pixel is whole 64-bit words.
    """
    _check_conv(x, w, stride, padding)
    pixels = pack_bits(x.movedim(1, -1))                                   # (N, H, W, C/8): the pressed image
    x_rows = packed_windows(pixels, w.shape[2:], stride, padding)
    w_rows = pack_bits(w.movedim(1, -1)).reshape(w.shape[0], -1)           # (O, kh * kw * C/8)
    return x_rows, w_rows, 8 * x_rows.shape[1]


def spatial_rows(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0):
    r"""The naive layout: each channel's :math:`k_h \times k_w` window packed into its own 64-bit word(s).

    .. math:: \text{row}_{n,i,j} = \big[\operatorname{bits}(x_{n,c,\, i s + k_y,\, j s + k_x})_{k_y, k_x}
        \,\|\, 0 \dots 0\big]_{c = 1..C}

    Returns ``(x_rows, w_rows, k)`` as :func:`channel_rows`, with ``C * ceil(kh * kw / 64)`` words of 8 bytes per
    row; the unused bits of every word are 0 in both operands.
    """
    (sh, sw), (ph, pw), (oh, ow) = _check_conv(x, w, stride, padding)
    kh, kw = w.shape[2:]
    taps = kh * kw
    spare = -taps % WORD_BITS                                              # unused bits of each window's words
    signs = sign(x).to(torch.float32)                                      # exact +-1 (F.unfold needs floats)
    cols = F.unfold(signs, (kh, kw), padding=(ph, pw), stride=(sh, sw))    # (N, C * taps, oh * ow)
    windows = cols.unflatten(1, (x.shape[1], taps)).permute(0, 3, 1, 2)    # (N, oh * ow, C, taps)
    x_rows = pack_bits(F.pad(windows, (0, spare))).reshape(x.shape[0] * oh * ow, -1)
    w_rows = pack_bits(F.pad(w.flatten(2), (0, spare))).reshape(w.shape[0], -1)
    return x_rows, w_rows, 8 * x_rows.shape[1]


def padding_correction(x_shape, w: torch.Tensor, stride=1, padding=0) -> torch.Tensor:
    r"""What the zero padding adds when it is packed as +1: :math:`\sum_{t\ \text{padded}} \sum_c
    \operatorname{sign}(w_{o,c,t})` for every output position.

    A padded tap must contribute 0, but a packed 0 bit reads as +1 and contributes :math:`\operatorname{sign}(w)`;
    subtracting this (L, O) int64 matrix (L = N * oh * ow rows, as the packed rows) makes the result exact.
    """
    n, c, h, wd = (require_int(d, "x_shape", minimum=1) for d in x_shape)
    (sh, sw), (ph, pw), _ = _check_conv(torch.zeros(1, c, h, wd), w, stride, padding)
    inside = F.unfold(torch.ones(1, 1, h, wd), w.shape[2:], padding=(ph, pw), stride=(sh, sw))[0]  # (taps, L)
    weight_sums = sign(w).sum(1).flatten(1)                                # (O, taps)
    per_image = ((1 - inside).T @ weight_sums.T.to(inside.dtype)).round().to(torch.int64)
    return per_image.repeat(n, 1)


def layout_conv2d(x: torch.Tensor, w: torch.Tensor, layout: str = "channel", stride=1, padding=0) -> torch.Tensor:
    r"""Binary convolution through one of the two layouts: pack, XNOR-popcount the rows, correct.

    .. math:: y = k - 2 \operatorname{popcount}(\text{row}_x \oplus \text{row}_w) - (k - C k_h k_w)
        - \text{padding correction}

    where :math:`k` counts every packed bit, :math:`C k_h k_w` the real ones (unused bits are 0 in both operands,
    so they agree and add :math:`k - C k_h k_w`). Returns int32 (N, O, oh, ow), exactly
    ``qteach.bitops.binary_conv2d(x, w, stride, padding)``.
    """
    _check_layout(layout)
    _, _, (oh, ow) = _check_conv(x, w, stride, padding)
    rows = channel_rows if layout == "channel" else spatial_rows
    x_rows, w_rows, k = rows(x, w, stride, padding)
    agreements_minus_mismatches = xnor_matmul_packed(x_rows, w_rows, k).to(torch.int64)
    real_bits = x.shape[1] * w.shape[2] * w.shape[3]
    out = agreements_minus_mismatches - (k - real_bits) - padding_correction(x.shape, w, stride, padding)
    return out.reshape(x.shape[0], oh, ow, w.shape[0]).permute(0, 3, 1, 2).contiguous().to(torch.int32)


def words_per_output(channels: int, kernel_size, layout: str = "channel", word_bits: int = WORD_BITS) -> int:
    r"""Word operations (one XOR, one popcount, one add each) per output value: the cost model.

    .. math:: \text{channel: } k_h k_w \Big\lceil \frac{C}{b} \Big\rceil, \qquad
        \text{spatial: } C \Big\lceil \frac{k_h k_w}{b} \Big\rceil

    for :math:`C` input channels, a :math:`k_h \times k_w` kernel and :math:`b`-bit words (64 for a scalar
    ``popcnt``, 512 for an AVX-512 vector). Padding and image borders are not counted.
    """
    channels = require_int(channels, "channels", minimum=1)
    kh, kw = require_pair(kernel_size, "kernel_size", minimum=1)
    _check_layout(layout)
    word_bits = require_int(word_bits, "word_bits", minimum=1)
    if layout == "channel":
        return kh * kw * -(-channels // word_bits)
    return channels * -(-(kh * kw) // word_bits)


def bit_utilization(channels: int, kernel_size, layout: str = "channel", word_bits: int = WORD_BITS) -> float:
    r"""Fraction of the processed word bits that are real terms: :math:`C k_h k_w / (b \cdot \text{words})`."""
    words = words_per_output(channels, kernel_size, layout, word_bits)
    kh, kw = require_pair(kernel_size, "kernel_size", minimum=1)
    return channels * kh * kw / (word_bits * words)
