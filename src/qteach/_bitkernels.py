r"""Numba kernels behind :mod:`qteach.bitops` (CPU fast path; private).

Everything here works on NumPy arrays of packed ``uint64`` words. Bit ``b`` of word ``w`` holds element
``64 w + b`` of the packed axis, and a set bit means a negative value (-1); padding bits past the end of the axis
are 0 in every operand, so they cancel in ``a XOR b`` and never reach a popcount. The public functions in
:mod:`qteach.bitops` validate their arguments, convert tensors to arrays and call these kernels; the kernels
themselves assume valid input.

All kernels are compiled lazily on first call (``cache=True`` keeps the machine code on disk for the next
session) with ``fastmath=False``: they are exact integer code, so fast-math would buy nothing.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit, prange

_JIT = dict(parallel=True, fastmath=False, cache=True)

# Numba's "omp" layer loads the system libgomp next to torch's own copy: two OpenMP pools that both spin-wait
# on the same cores after every parallel region, each slowing the other down (measured: several times slower
# binary_conv2d on a loaded 2-core machine). Numba's built-in "workqueue" pool sleeps instead. Unless the user
# picked a layer (NUMBA_THREADING_LAYER), use it; it must not be entered by two threads at once, so callers
# hold ``lock`` around kernel calls.
if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"
lock = threading.Lock()

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def use_threads(n: int) -> None:
    """Run the parallel kernels on ``n`` threads, capped by numba's pool size (``NUMBA_NUM_THREADS``)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


@njit(inline="always")
def popcount64(x):
    """Number of set bits of a ``uint64`` (SWAR; LLVM turns this idiom into ``popcnt``/``vpopcntq``)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(**_JIT)
def pack_rows(x):
    """Pack the signs of float32 rows x (R, K) along K into words (R, ceil(K / 64)).

    Returns ``(words, nan_count)``: a bit is 1 where ``x < 0``; NaNs are counted so the caller can reject them.
    """
    rows, k = x.shape
    n_words = (k + 63) // 64
    words = np.empty((rows, n_words), np.uint64)
    nan_count = 0
    for r in prange(rows):
        nans = 0
        for w in range(n_words):
            start = 64 * w
            word = np.uint64(0)
            for b in range(min(64, k - start)):
                v = x[r, start + b]
                if v < 0:
                    word |= np.uint64(1) << np.uint64(b)
                if v != v:
                    nans += 1
            words[r, w] = word
        nan_count += nans
    return words, nan_count


@njit(**_JIT)
def pack_channels(x):
    """Channel-wise packing: the signs of float32 x (N, C, P) packed along C into words (N, P, ceil(C / 64)).

    The word of a pixel holds its channels ``64 w .. 64 w + 63`` (daBNN's and BitFlow's layout), read one
    contiguous channel plane at a time. Returns ``(words, nan_count)`` like :func:`pack_rows`.
    """
    n, c, p = x.shape
    n_words = (c + 63) // 64
    words = np.empty((n, p, n_words), np.uint64)
    nan_count = 0
    for q in prange(n * n_words):
        img = q // n_words
        w = q % n_words
        pixel_words = np.zeros(p, np.uint64)
        nans = 0
        for b in range(min(64, c - 64 * w)):
            bit = np.uint64(1) << np.uint64(b)
            plane = x[img, 64 * w + b]
            for i in range(p):
                v = plane[i]
                if v < 0:
                    pixel_words[i] |= bit
                if v != v:
                    nans += 1
        words[img, :, w] = pixel_words
        nan_count += nans
    return words, nan_count


@njit(**_JIT)
def xnor_gemm(a, b, k):
    """``out[g, i, j] = k - 2 * popcount(a[i] XOR b[g, j])`` for a (M, W) and b (G, N, W) words; int32.

    The (i, j) plane is cut into 64 x 64 tiles, processed in parallel, so that a tile's rows of ``a`` and ``b``
    stay in cache while they are reused. Inside a tile, outputs are computed 4 x 4 at a time (a register block,
    the micro-kernel of a BLAS): the 4 words of ``a`` and 4 of ``b`` loaded at one position serve 16
    XOR-popcounts, so the loop is bound by the popcounts, not by the loads; LLVM vectorises it over the words
    (``vpopcntq`` where the CPU has AVX-512 VPOPCNTDQ). At an edge of the tile the missing rows (columns) repeat
    the last one, which just writes the same output again.
    """
    m, n_words = a.shape
    groups, n, _ = b.shape
    tile = 64
    m_tiles = (m + tile - 1) // tile
    n_tiles = (n + tile - 1) // tile
    out = np.empty((groups, m, n), np.int32)
    for q in prange(groups * m_tiles * n_tiles):
        g = q // (m_tiles * n_tiles)
        i_start = (q // n_tiles) % m_tiles * tile
        j_start = q % n_tiles * tile
        i_stop = min(i_start + tile, m)
        j_stop = min(j_start + tile, n)
        for i0 in range(i_start, i_stop, 4):
            i1, i2, i3 = min(i0 + 1, i_stop - 1), min(i0 + 2, i_stop - 1), min(i0 + 3, i_stop - 1)
            for j0 in range(j_start, j_stop, 4):
                j1, j2, j3 = min(j0 + 1, j_stop - 1), min(j0 + 2, j_stop - 1), min(j0 + 3, j_stop - 1)
                s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.uint64(0)
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = np.uint64(0)
                for w in range(n_words):
                    a0, a1, a2, a3 = a[i0, w], a[i1, w], a[i2, w], a[i3, w]
                    b0, b1, b2, b3 = b[g, j0, w], b[g, j1, w], b[g, j2, w], b[g, j3, w]
                    s00 += popcount64(a0 ^ b0)
                    s01 += popcount64(a0 ^ b1)
                    s02 += popcount64(a0 ^ b2)
                    s03 += popcount64(a0 ^ b3)
                    s10 += popcount64(a1 ^ b0)
                    s11 += popcount64(a1 ^ b1)
                    s12 += popcount64(a1 ^ b2)
                    s13 += popcount64(a1 ^ b3)
                    s20 += popcount64(a2 ^ b0)
                    s21 += popcount64(a2 ^ b1)
                    s22 += popcount64(a2 ^ b2)
                    s23 += popcount64(a2 ^ b3)
                    s30 += popcount64(a3 ^ b0)
                    s31 += popcount64(a3 ^ b1)
                    s32 += popcount64(a3 ^ b2)
                    s33 += popcount64(a3 ^ b3)
                for i, t0, t1, t2, t3 in ((i0, s00, s01, s02, s03), (i1, s10, s11, s12, s13),
                                          (i2, s20, s21, s22, s23), (i3, s30, s31, s32, s33)):
                    out[g, i, j0] = k - 2 * np.int64(t0)
                    out[g, i, j1] = k - 2 * np.int64(t1)
                    out[g, i, j2] = k - 2 * np.int64(t2)
                    out[g, i, j3] = k - 2 * np.int64(t3)
    return out


@njit(**_JIT)
def im2col_words(xw, kh, kw, sh, sw, ph, pw, oh, ow):
    """Unfold channel-packed images xw (N, H, W, Cw) into rows (N, oh * ow, kh * kw * Cw) of words.

    A row holds the kh x kw taps of one output position, tap-major, Cw words per tap. Taps that fall in the
    zero padding are left as zero words, i.e. they read as +1; :func:`zero_padding_correction` removes them.
    """
    n, h, w, cw = xw.shape
    cols = np.zeros((n, oh * ow, kh * kw * cw), np.uint64)
    for q in prange(n * oh):
        img = q // oh
        y = q % oh
        for x in range(ow):
            row = cols[img, y * ow + x]
            for ky in range(kh):
                iy = y * sh - ph + ky
                if 0 <= iy < h:
                    for kx in range(kw):
                        ix = x * sw - pw + kx
                        if 0 <= ix < w:
                            start = (ky * kw + kx) * cw
                            row[start:start + cw] = xw[img, iy, ix]
    return cols


@njit(**_JIT)
def direct_conv(xp, ww, k, cw, sh, sw, oh, ow):
    """Direct binary convolution of padded channel-packed images xp (N, Hp, Wp * Cw) with weights ww
    (O, kh, kw * Cw): every output is one XOR-popcount sum read in place from its window (kh runs of kw * Cw
    contiguous words), with no im2col buffer; two output channels share every loaded input word, and each sum is
    turned into ``k - 2 * mismatches`` once. Returns int32 (N, O, oh, ow)."""
    n = xp.shape[0]
    o_size, kh, span = ww.shape
    out = np.empty((n, o_size, oh, ow), np.int32)
    for q in prange(n * oh):
        img, y = q // oh, q % oh
        for x in range(ow):
            start = x * sw * cw
            for o in range(0, o_size, 2):
                o2 = min(o + 1, o_size - 1)
                ones, ones2 = np.uint64(0), np.uint64(0)
                for ky in range(kh):
                    row = xp[img, y * sh + ky, start:start + span]
                    w1, w2 = ww[o, ky], ww[o2, ky]
                    for j in range(span):
                        ones += popcount64(row[j] ^ w1[j])
                        ones2 += popcount64(row[j] ^ w2[j])
                out[img, o, y, x] = k - 2 * np.int64(ones)
                out[img, o2, y, x] = k - 2 * np.int64(ones2)
    return out


@njit(**_JIT)
def zero_padding_correction(out, ww, c, sh, sw, ph, pw, h, w):
    r"""Subtract, in place, what the padded taps added to ``out`` (N, O, oh, ow) when they were read as +1.

    A padded tap :math:`t` read as +1 contributed :math:`\sum_c \operatorname{sign}(w_{o,c,t}) = c - 2\,
    \operatorname{popcount}(w_{o,t})`; a zero-padded input must contribute 0, so that sum is taken back out at
    every output position whose window leaves the image (LCE's ``zero_padding_correction``). Only those border
    positions are visited. ``ww`` is (O, kh, kw, Cw) channel-packed weights.
    """
    n, o_size, oh, ow = out.shape
    _, kh, kw, _ = ww.shape
    # The output positions whose kh x kw window leaves the image, and the top-left corner of each window.
    border = np.empty((oh * ow, 2), np.int64)
    n_border = 0
    for y in range(oh):
        for x in range(ow):
            top, left = y * sh - ph, x * sw - pw
            if not (top >= 0 and left >= 0 and top + kh <= h and left + kw <= w):
                border[n_border, 0], border[n_border, 1] = y, x
                n_border += 1
    for o in prange(o_size):
        tap_sums = np.empty((kh, kw), np.int64)
        for ky in range(kh):
            for kx in range(kw):
                ones = np.uint64(0)
                for word in ww[o, ky, kx]:
                    ones += popcount64(word)
                tap_sums[ky, kx] = c - 2 * np.int64(ones)
        corrections = np.zeros(n_border, np.int64)
        for b in range(n_border):
            top, left = border[b, 0] * sh - ph, border[b, 1] * sw - pw
            for ky in range(kh):
                for kx in range(kw):
                    if not (0 <= top + ky < h and 0 <= left + kx < w):
                        corrections[b] += tap_sums[ky, kx]
        for img in range(n):
            for b in range(n_border):
                out[img, o, border[b, 0], border[b, 1]] -= corrections[b]


@njit(**_JIT)
def bitplane_gemm(codes, wt, k, bits, row_sums):
    r"""First-layer product of unsigned ``bits``-bit codes (M, K) with binary weights, all bit planes in one pass.

    ``wt`` (W, N) holds the packed weight rows *transposed* (word ``w`` of every row side by side) and
    ``row_sums`` (N,) their sums :math:`\sum_k w_k`. Each row of codes is cut into planes :math:`x^n`; plane
    :math:`n` is packed as :math:`\pm 1` words (bit 1 where :math:`x^n = 0`, i.e. :math:`2x^n - 1 = -1`), and

    .. math:: s_j = \sum_n 2^n\,\tfrac{1}{2}\big(K - 2 m_{nj} + r_j\big)
        = (2^b - 1)\,\tfrac{K + r_j}{2} - \sum_n 2^n m_{nj},

    with :math:`m_{nj}` the XOR-popcount of plane :math:`n` with row :math:`j` (:math:`K + r_j` is even). The
    loop over :math:`j` runs over contiguous words of ``wt``, so it vectorises across output columns with no
    horizontal sums; this is what makes a layer with few input words (K = 64: one word) fast. Returns int32
    (M, N).
    """
    m = codes.shape[0]
    n_words, n = wt.shape
    half = np.empty(n, np.int64)
    for j in range(n):
        half[j] = (2**bits - 1) * ((k + row_sums[j]) // 2)
    out = np.empty((m, n), np.int32)
    for i in prange(m):
        mismatches = np.zeros(n, np.int64)
        for w in range(n_words):
            valid = min(64, k - 64 * w)
            for plane in range(bits):
                word = np.uint64(0)
                for b in range(valid):
                    if not (codes[i, 64 * w + b] >> plane) & 1:
                        word |= np.uint64(1) << np.uint64(b)
                for j in range(n):
                    mismatches[j] += popcount64(word ^ wt[w, j]) << plane
        for j in range(n):
            out[i, j] = half[j] - mismatches[j]
    return out


@njit(**_JIT)
def threshold_pack(s, flip, tau):
    r"""Batch norm + sign as integer thresholds, packed for the next layer: words (M, ceil(N / 64)) whose bit
    :math:`j` is 1 (the value :math:`-1`) where :math:`\text{flip}_j\, s_{ij} < \tau_j` (``s`` (M, N) int32)."""
    m, n = s.shape
    n_words = (n + 63) // 64
    words = np.empty((m, n_words), np.uint64)
    for i in prange(m):
        for w in range(n_words):
            word = np.uint64(0)
            for b in range(min(64, n - 64 * w)):
                j = 64 * w + b
                if flip[j] * np.int64(s[i, j]) < tau[j]:
                    word |= np.uint64(1) << np.uint64(b)
            words[i, w] = word
    return words
