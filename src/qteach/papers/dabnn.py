r"""daBNN: binary direct convolution against im2col + binary GEMM (Zhang, Pan, Yao, Zhao and Mei, ACM MM 2019).

daBNN runs binary networks on ARM phones. A binary convolution with :math:`\pm 1` inputs and weights, packed one
sign per bit along the channels, is a sum of XOR-popcounts: for :math:`K = C k_h k_w` terms,

.. math:: y = \sum_{t=1}^{K} x_t w_t = K - 2\,\text{mismatches}, \qquad
    \text{mismatches} = \sum_{\text{words}} \operatorname{popcount}(x \oplus w).

The paper compares two ways to organise that sum (its section on binary convolutions, reproduced in the official
repository's ``docs/bconv.md``):

1. **im2col + BGEMM**: unfold every :math:`k_h \times k_w` window of the packed input into a row of a buffer
   (``dabnn/im2col.h``), then multiply the buffer with the packed weights (``dabnn/bgemm.h``). The BGEMM
   accumulates :math:`C \mathrel{+}= m^k n^k` column by column, so every 128-bit vector product is reduced to an
   integer at once: ``eor, cnt, addv, add``.
2. **Binary direct convolution**: compute each output as one inner product straight from the (padded) packed
   input, with no buffer (``dabnn/bconv.h``), accumulate the byte counts of ``cnt`` in a vector and reduce it
   with one ``addv`` at the end: :math:`\vec C_{ij} = \sum_k \operatorname{cnt}(\operatorname{xnor}(A_{ik},
   B_{kj}))`, :math:`C_{ij} = \operatorname{addv}(\vec C_{ij})`.

Both paths are in :func:`qteach.bitops.binary_conv2d` (``method="direct"`` or ``"im2col"``, with
``pad_value=-1`` for daBNN's padding), bit-exact numba kernels on 64-bit words. This module has daBNN's
conventions (it pads binary inputs with :math:`-1`, ``dabnn/pad.h``; a set bit means :math:`x > 0`,
``common/common_bitpack.h``; the convolution returns the mismatch count and the following batch norm is folded to
turn it into the dot product, ``tools/onnx2bnn/OnnxConverter.cpp``), and two exact cost models: the instructions
per output that the paper counts, and the 64-bit words each loop nest reads and writes. The ARM assembly itself
(NEON ``eor``/``cnt``/``uaddlv``, the NC1HWC2 packing of ``bconv_3x3``) is out of scope.

Reference: J. Zhang, Y. Pan, T. Yao, H. Zhao, T. Mei, *daBNN: A Super Fast Inference Framework for Binary Neural
Networks on ARM devices*, ACM MM 2019, pp. 2272-2275, arXiv:1908.05858; code https://github.com/JDAI-CV/dabnn.
"""

from __future__ import annotations

import math

import torch

from qteach._validate import (
    require_float_tensor,
    require_int,
    require_no_nan,
    require_pair,
    require_str,
)

__all__ = ["ARCHS", "LANE_VECTORS", "PATHS", "VECTOR_BITS", "dabnn_bits", "fold_batchnorm", "instructions_per_output",
           "traffic_words"]

#: Bits of one NEON vector register, the unit of the paper's instruction counts.
VECTOR_BITS = 128
#: ``cnt`` writes at most 8 into each byte lane, so a byte accumulator holds at most floor(255 / 8) = 31 vectors
#: before it must be reduced (our derivation; daBNN's kernels reduce after at most 9).
LANE_VECTORS = 255 // 8
#: Instructions of one reduction of a 16-byte vector to a scalar: ``addv`` on ARMv8; on ARMv7, which has no
#: ``addv``, :math:`\lceil \log_2 16 \rceil = 4` pairwise adds (paper, section 2.2 / docs/bconv.md).
ARCHS = {"armv8": 1, "armv7": math.ceil(math.log2(VECTOR_BITS // 8))}
#: The loop nests of :func:`traffic_words`.
PATHS = ("im2col_bgemm", "direct", "direct_registers")


# --------------------------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------------------------


def dabnn_bits(x: torch.Tensor) -> torch.Tensor:
    r"""daBNN's bit of each value: 1 where :math:`x > 0`, else 0 (``pack_64_bitset``, common_bitpack.h l. 26).

    .. math:: b^{\text{daBNN}}(x) = [x > 0]

    This is the complement of :mod:`qteach.bitops` (1 for :math:`x < 0`) except at :math:`x = 0`, which daBNN
    packs as :math:`-1` and qteach as :math:`+1`. Complementing both operands leaves every XOR unchanged, so the
    two conventions give the same convolution on inputs without zeros. Returns a bool tensor of ``x``'s shape.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    return x > 0


def fold_batchnorm(gamma, beta, mean, var, k: int, eps: float = 1e-5):
    r"""onnx2bnn's batch-norm folding after a binary convolution that returns mismatch counts.

    .. math:: a = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}, \quad b = \beta - a\mu, \qquad
        \text{BN}(K - 2m) = a(K - 2m) + b = (-2a)\, m + (b + K a)

    (``CalculateCoeff``, tools/onnx2bnn/OnnxConverter.cpp, l. 598-627). ``gamma, beta, mean, var`` are float
    tensors of one shape, ``k`` the number of terms :math:`K = C k_h k_w`. Returns ``(a', b')`` with
    :math:`a' = -2a` and :math:`b' = b + Ka`, so that ``a' * m + b'`` is the batch norm of the dot product.
    """
    for t, name in ((gamma, "gamma"), (beta, "beta"), (mean, "mean"), (var, "var")):
        require_float_tensor(t, name)
        if t.shape != gamma.shape:
            raise ValueError(f"{name} must have gamma's shape {tuple(gamma.shape)}, got {tuple(t.shape)}")
    k = require_int(k, "k", minimum=1)
    if bool((var < 0).any()):
        raise ValueError("var must be >= 0")
    a = gamma / torch.sqrt(var + eps)
    b = beta - a * mean
    return -2 * a, b + k * a


# --------------------------------------------------------------------------------------------------------------
# Cost models
# --------------------------------------------------------------------------------------------------------------


def instructions_per_output(path: str, vectors: int, arch: str = "armv8") -> int:
    r"""NEON instructions of the inner product of one output over ``vectors`` 128-bit vectors (the paper's count).

    .. math:: \text{BGEMM: } V\,(3 + r), \qquad \text{direct: } 3V + \lceil V / 31 \rceil\,(r + 1)

    with :math:`r` the instructions of one reduction (:data:`ARCHS`: ``addv`` on ARMv8, 4 adds on ARMv7). BGEMM
    pays ``eor, cnt``, a reduction and an ``add`` for every vector (4 on ARMv8, :math:`\lceil\log_2 16\rceil + 3
    = 7` on ARMv7, as the paper says); the direct convolution pays ``eor, cnt`` and a byte-vector ``add`` per
    vector and one reduction plus one scalar ``add`` per :data:`LANE_VECTORS` vectors (the byte lanes overflow
    after 31; our addition). ``path`` is ``"im2col_bgemm"`` or ``"direct"``.
    """
    if path not in ("im2col_bgemm", "direct"):
        raise ValueError(f"path must be 'im2col_bgemm' or 'direct', got {path!r}")
    vectors = require_int(vectors, "vectors", minimum=1)
    if require_str(arch, "arch") not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    reduce = ARCHS[arch]
    if path == "im2col_bgemm":
        return vectors * (3 + reduce)
    return 3 * vectors + -(-vectors // LANE_VECTORS) * (reduce + 1)


def traffic_words(path: str, channels: int, height: int, width: int, out_channels: int, kernel, stride=1,
                  padding=0, block: int = 1) -> dict:
    r"""64-bit words read and written by each path's loop nest for one image (cache-free count, exact).

    With :math:`L = o_h o_w` outputs per channel, :math:`T = k_h k_w \lceil C / 64 \rceil` words per window:

    - ``"im2col_bgemm"``: im2col reads and writes :math:`LT` words (the buffer); the GEMM reads :math:`O L T`
      buffer words and :math:`O L T` weight words;
    - ``"direct"``: reads :math:`O L T` input and :math:`O L T` weight words, no buffer;
    - ``"direct_registers"``: daBNN's kernels keep the window in registers across all output channels, and
      ``block`` horizontally adjacent outputs share the overlapping columns (``bconv_3x3_128_internal_s1``:
      ``block = 2``): input reads :math:`o_h \lceil o_w / b \rceil k_h ((b-1) s_w + k_w) \lceil C/64 \rceil`,
      weight reads :math:`O\, o_h \lceil o_w / b \rceil T`.

    Returns a dict with ``input_reads``, ``weight_reads``, ``buffer_writes``, ``buffer_words`` and ``outputs``
    (int32 outputs written, :math:`O L`).
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    c = require_int(channels, "channels", minimum=1)
    h, wd = require_int(height, "height", minimum=1), require_int(width, "width", minimum=1)
    o = require_int(out_channels, "out_channels", minimum=1)
    (kh, kw), (sh, sw) = require_pair(kernel, "kernel", 1), require_pair(stride, "stride", 1)
    ph, pw = require_pair(padding, "padding", 0)
    block = require_int(block, "block", minimum=1)
    if h + 2 * ph < kh or wd + 2 * pw < kw:
        raise ValueError(f"kernel ({kh}, {kw}) is larger than the padded input ({h + 2 * ph}, {wd + 2 * pw})")
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    cw = -(-c // 64)
    outputs, window = oh * ow, kh * kw * cw
    counts = {"input_reads": o * outputs * window, "weight_reads": o * outputs * window, "buffer_writes": 0,
                  "buffer_words": 0, "outputs": o * outputs}
    if path == "im2col_bgemm":
        counts.update(input_reads=outputs * window + o * outputs * window, buffer_writes=outputs * window,
                      buffer_words=outputs * window)
    elif path == "direct_registers":
        blocks = oh * -(-ow // block)
        counts.update(input_reads=blocks * kh * ((block - 1) * sw + kw) * cw, weight_reads=o * blocks * window)
    return counts
