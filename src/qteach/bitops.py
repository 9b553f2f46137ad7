r"""Bit-level arithmetic of binary and low-bit networks.

Binary networks (BinaryNet/BNN, XNOR-Net) replace multiply-accumulate by logic. With :math:`\pm 1` values stored as
one bit each, a dot product of length :math:`K` is

.. math:: \langle a, b \rangle = K - 2 \operatorname{popcount}\big(\operatorname{bits}(a) \oplus
    \operatorname{bits}(b)\big),

since every position where the bits differ contributes :math:`-1` instead of :math:`+1`. Low-bit integer networks
(DoReFa-Net) decompose :math:`k`-bit values into bit planes and reuse the same trick with AND, and integer-only
inference (Jacob et al., 2018) brings int32 accumulators back to 8 bits with a fixed-point multiplier.

**Bit convention.** A packed bit is 1 for :math:`-1` and 0 for :math:`+1`, so :math:`\operatorname{sign}(0) = +1`
packs to 0 (as in Larq Compute Engine). Bit order is little-endian, as ``np.packbits(..., bitorder="little")``:
element :math:`k` of the packed axis is bit :math:`k \bmod 8` of byte :math:`\lfloor k / 8 \rfloor`. On a
little-endian machine 8 consecutive bytes read as one ``uint64`` word therefore hold elements
:math:`64w, \dots, 64w + 63` in bits 0..63, which is how the CPU kernels see them. Padding bits past the end of
the packed axis are always 0, in every operand, so they cancel in the XOR and any :math:`K` is exact.

**Fast path.** On CPU, :func:`xnor_matmul`, :func:`xnor_matmul_packed` and :func:`binary_conv2d` run numba
kernels (:mod:`qteach._bitkernels`: packing into ``uint64`` words, XOR + popcount, tiled and multi-threaded with
``torch.get_num_threads()`` threads). On any other device they run the readable torch references
(:func:`xnor_matmul_reference`, :func:`binary_conv2d_reference`) on that device; both paths are exact and
tested equal. The first CPU call of a kernel compiles it (a few seconds, once; the machine code is cached on disk).
The kernels run on numba's ``workqueue`` thread pool (unless ``NUMBA_THREADING_LAYER`` says otherwise), which
does not fight torch's OpenMP threads for the cores but must not be entered twice at once: calls from several
Python threads are serialised by a lock.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

from qteach import _bitkernels
from qteach._validate import require_bits, require_int, require_ndim, require_no_nan, require_pair, require_tensor
from qteach.binary import sign

__all__ = [
    "pack_bits",
    "unpack_bits",
    "xnor_matmul",
    "xnor_matmul_reference",
    "xnor_matmul_packed",
    "binary_conv2d",
    "binary_conv2d_reference",
    "conv_geometry",
    "CONV_METHODS",
    "bitserial_matmul",
    "quantize_multiplier",
    "requantize",
]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


# --------------------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------------------


def _require_real(x, name: str) -> torch.Tensor:
    """A tensor of a real numeric dtype (what :func:`qteach.binary.sign` accepts): not bool, not complex."""
    require_tensor(x, name)
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must be a real numeric tensor, got {x.dtype}")
    return x


def _require_same_device(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{names} must be on the same device, got {a.device} and {b.device}")


def _require_matmul_operands(a, b) -> int:
    """Check a (M, K) and b (N, K) for the XNOR product; return K."""
    for t, name in ((a, "a"), (b, "b")):
        require_ndim(_require_real(t, name), name, 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same K (dim 1), got a {tuple(a.shape)} and b {tuple(b.shape)}")
    _require_same_device(a, b, "a and b")
    return a.shape[1]


#: The organisations of :func:`binary_conv2d`'s sums (both exact).
CONV_METHODS = ("im2col", "direct")


def _require_pad_value(pad_value) -> int:
    if isinstance(pad_value, bool) or not isinstance(pad_value, numbers.Integral) or pad_value not in (-1, 0, 1):
        raise ValueError(f"pad_value must be 0 (zero padding), -1 or +1, got {pad_value!r}")
    return int(pad_value)


def conv_geometry(x, w, stride, padding):
    """Check the operands of a convolution, ``x`` (N, C, H, W) and ``w`` (O, C, kh, kw), the way
    :func:`binary_conv2d` does (``TypeError``/``ValueError`` naming the argument); return ``(stride, padding,
    (out_h, out_w))`` as pairs. Chapters that lay out their own binary convolutions use it too."""
    for t, name in ((x, "x"), (w, "w")):
        require_ndim(_require_real(t, name), name, 4)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"w must have as many input channels as x: x has {x.shape[1]}, w has {w.shape[1]}")
    _require_same_device(x, w, "x and w")
    stride = require_pair(stride, "stride", minimum=1)
    padding = require_pair(padding, "padding", minimum=0)
    kernel = w.shape[2:]
    if min(kernel) < 1:
        raise ValueError(f"w must have a kernel of at least 1x1, got shape {tuple(w.shape)}")
    out_hw = tuple((x.shape[2 + d] + 2 * padding[d] - kernel[d]) // stride[d] + 1 for d in range(2))
    if min(out_hw) < 1:
        raise ValueError(
            f"w's kernel {tuple(kernel)} is larger than x's padded input "
            f"{tuple(x.shape[2 + d] + 2 * padding[d] for d in range(2))}"
        )
    return stride, padding, out_hw


# --------------------------------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------------------------------

_BIT_SHIFTS = torch.arange(8, dtype=torch.uint8)


def _pack_bool(bits: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor (..., K) into uint8 (..., ceil(K / 8)), little-endian bit order, zero padding bits."""
    k = bits.shape[-1]
    padded = F.pad(bits.to(torch.uint8), (0, -k % 8))
    groups = padded.unflatten(-1, (-1, 8))
    return (groups << _BIT_SHIFTS.to(bits.device)).sum(-1, dtype=torch.uint8)


def pack_bits(x: torch.Tensor) -> torch.Tensor:
    r"""Pack :math:`\operatorname{sign}(x)` along the last dimension, eight values per byte.

    .. math:: \text{bit}_k = \begin{cases} 1 & x_k < 0 \quad (\operatorname{sign} = -1) \\
        0 & x_k \ge 0 \quad (\operatorname{sign} = +1) \end{cases}

    Element :math:`k` goes to bit :math:`k \bmod 8` of byte :math:`\lfloor k/8 \rfloor` (little-endian bit order,
    like ``np.packbits(bitorder="little")``); the unused high bits of the last byte are 0. ``x`` of shape
    (..., K) gives uint8 of shape (..., ceil(K / 8)) on the same device. This is the 32x memory saving of
    binary weights (XNOR-Net, BNN) made concrete: 8 bits per byte instead of 32 per float.

    Raises ``ValueError`` for NaN (its sign is meaningless) and for a 0-d ``x``.
    """
    _require_real(x, "x")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension (the packed one), got a 0-d tensor")
    require_no_nan(x, "x")
    return _pack_bool(x < 0)


def _require_packed(packed, k, name: str) -> int:
    """Check a tensor as :func:`pack_bits` writes it for ``k`` values per row; return ``k``."""
    require_tensor(packed, name)
    if packed.dtype != torch.uint8:
        raise TypeError(f"{name} must be a uint8 tensor from pack_bits, got {packed.dtype}")
    if packed.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d tensor")
    k = require_int(k, "k", minimum=1)
    if packed.shape[-1] != -(-k // 8):
        raise ValueError(
            f"{name} must have ceil(k / 8) = {-(-k // 8)} bytes in its last dimension for k = {k}, "
            f"got {packed.shape[-1]}"
        )
    if k % 8 and bool((packed[..., -1] >> (k % 8)).any()):
        raise ValueError(f"{name} has nonzero padding bits past k = {k}; it was not packed by pack_bits")
    return k


def unpack_bits(packed: torch.Tensor, k: int) -> torch.Tensor:
    r"""Inverse of :func:`pack_bits`: the :math:`\pm 1` values, float32 of shape (..., k).

    .. math:: x_k = 1 - 2\,\text{bit}_k

    ``unpack_bits(pack_bits(x), x.shape[-1])`` equals ``sign(x)``. ``packed`` must be uint8 with
    ceil(k / 8) bytes in its last dimension and zero padding bits, as :func:`pack_bits` writes it.
    """
    k = _require_packed(packed, k, "packed")
    bits = (packed.unsqueeze(-1) >> _BIT_SHIFTS.to(packed.device)) & 1
    return 1 - 2 * bits.flatten(-2)[..., :k].to(torch.float32)


# --------------------------------------------------------------------------------------------------------------
# Torch reference: popcount of combined packed rows
# --------------------------------------------------------------------------------------------------------------


def _popcount_bytes(x: torch.Tensor) -> torch.Tensor:
    """Number of set bits of each uint8, counted bit by bit."""
    return sum((x >> i) & 1 for i in range(8))


def _popcount_pairs(pa: torch.Tensor, pb: torch.Tensor, combine) -> torch.Tensor:
    """``counts[i, j] = sum_bytes popcount(combine(pa[i], pb[j]))`` for packed rows pa (M, B), pb (N, B); int64.

    Rows of ``pa`` are processed in chunks so the (chunk, N, B) intermediate stays around 16 MB.
    """
    rows_per_chunk = max(1, 2**24 // max(1, pb.shape[0] * pb.shape[1]))
    counts = [
        _popcount_bytes(combine(chunk[:, None, :], pb[None, :, :])).sum(-1, dtype=torch.int64)
        for chunk in pa.split(rows_per_chunk)
    ]
    return torch.cat(counts) if counts else pa.new_zeros((0, pb.shape[0]), dtype=torch.int64)


def _xnor_from_packed(pa: torch.Tensor, pb: torch.Tensor, k: int) -> torch.Tensor:
    """:math:`K - 2\\,\\operatorname{popcount}(a \\oplus b)` for packed rows, int32 (torch reference)."""
    return (k - 2 * _popcount_pairs(pa, pb, torch.bitwise_xor)).to(torch.int32)


# --------------------------------------------------------------------------------------------------------------
# CPU fast path: tensors <-> numba kernels
# --------------------------------------------------------------------------------------------------------------


def _cpu_float32(t: torch.Tensor, name: str) -> np.ndarray:
    """A contiguous float32 NumPy array with the signs of the CPU tensor ``t``, for the packing kernels.

    Other dtypes are binarised by :func:`~qteach.binary.sign` first (after the NaN check), since a plain cast
    could turn a tiny negative float64 into -0.0 and flip its sign.
    """
    t = t.detach()
    if t.dtype != torch.float32:
        require_no_nan(t, name)
        t = sign(t).to(torch.float32)
    return t.contiguous().numpy()


def _without_nan(packed: tuple[np.ndarray, int], name: str) -> np.ndarray:
    """The words from a packing kernel; ``ValueError`` naming ``name`` if it counted NaNs."""
    words, nan_count = packed
    if nan_count:
        raise ValueError(f"{name} must not contain NaN (found {nan_count})")
    return words


def _bytes_to_words(packed: torch.Tensor) -> np.ndarray:
    """uint8 rows from :func:`pack_bits` (M, B) as uint64 words (M, ceil(B / 8)), zero-padded."""
    m, n_bytes = packed.shape
    buffer = np.zeros((m, -(-n_bytes // 8) * 8), np.uint8)
    buffer[:, :n_bytes] = packed.numpy()
    return buffer.view(np.uint64)


@contextlib.contextmanager
def _kernels():
    """Hold the kernels' lock (one caller at a time) and run them on ``torch.get_num_threads()`` threads."""
    with _bitkernels.lock:
        _bitkernels.use_threads(torch.get_num_threads())
        yield _bitkernels


# --------------------------------------------------------------------------------------------------------------
# XNOR matrix product
# --------------------------------------------------------------------------------------------------------------


def xnor_matmul_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Readable torch version of :func:`xnor_matmul`: pack, XOR, count the ones.

    .. math:: C_{ij} = K - 2 \sum_{\text{bytes}} \operatorname{popcount}\big(\operatorname{pack}(a_i) \oplus
        \operatorname{pack}(b_j)\big)

    Runs on the device of its inputs with plain tensor operations (popcount bit by bit on uint8), chunked over
    the rows of ``a``. Exact, but slow: it is the specification the numba kernel is tested against.
    """
    k = _require_matmul_operands(a, b)
    require_no_nan(a, "a")
    require_no_nan(b, "b")
    return _xnor_from_packed(pack_bits(a), pack_bits(b), k)


def xnor_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Binary matrix product :math:`\operatorname{sign}(a)\,\operatorname{sign}(b)^\top` with XOR and popcount.

    .. math:: C_{ij} = \sum_{k=1}^{K} \operatorname{sign}(a_{ik})\operatorname{sign}(b_{jk})
        = K - 2 \operatorname{popcount}\big(\operatorname{bits}(a_i) \oplus \operatorname{bits}(b_j)\big)

    ``a`` (M, K) and ``b`` (N, K) are real tensors (binarised here with :math:`\operatorname{sign}(0) = +1`);
    the result is int32 (M, N), exactly ``sign(a) @ sign(b).T``, for any K. Packed bits are 1 for -1 and
    0 for +1; padding bits are 0 in both operands, so they cancel in the XOR.

    On CPU this packs 64 signs per ``uint64`` word and runs a tiled, multi-threaded numba kernel (the packing is
    part of the op and of its cost); elsewhere it runs :func:`xnor_matmul_reference` on the device.
    To pack a weight matrix once and reuse it, see :func:`xnor_matmul_packed`. NaN raises ``ValueError``.

    References:

    - Courbariaux, Hubara et al., *Binarized Neural Networks*, NIPS 2016 (XNOR-popcount kernel, sec. 3).
    - Rastegari et al., *XNOR-Net: ImageNet Classification Using Binary Convolutional Neural Networks*,
      ECCV 2016 (binary dot products as XNOR + bitcount, sec. 3.2).
    """
    k = _require_matmul_operands(a, b)
    if a.device.type != "cpu":
        return xnor_matmul_reference(a, b)
    a_float, b_float = _cpu_float32(a, "a"), _cpu_float32(b, "b")
    with _kernels() as kernels:
        a_words = _without_nan(kernels.pack_rows(a_float), "a")
        b_words = _without_nan(kernels.pack_rows(b_float), "b")
        return torch.from_numpy(kernels.xnor_gemm(a_words, b_words[None], k)[0])


def xnor_matmul_packed(a_packed: torch.Tensor, b_packed: torch.Tensor, k: int) -> torch.Tensor:
    r""":func:`xnor_matmul` on operands already packed by :func:`pack_bits` (deployment form).

    .. math:: C_{ij} = k - 2 \operatorname{popcount}(a^{\text{packed}}_i \oplus b^{\text{packed}}_j)

    ``a_packed`` (M, ceil(k/8)) and ``b_packed`` (N, ceil(k/8)) are uint8 as :func:`pack_bits` returns them
    for rows of length ``k``; the result is int32 (M, N) and equals ``xnor_matmul(a, b)``. Pack the weights
    once with ``pack_bits(w)``, store 1 bit per weight, and only the activations are packed per call: this is
    how binary inference engines (Larq Compute Engine, daBNN) deploy. Nonzero padding bits (which would corrupt
    the count) raise ``ValueError``.
    """
    for packed, name in ((a_packed, "a_packed"), (b_packed, "b_packed")):
        _require_packed(packed, k, name)
        require_ndim(packed, name, 2)
    _require_same_device(a_packed, b_packed, "a_packed and b_packed")
    if a_packed.device.type != "cpu":
        return _xnor_from_packed(a_packed, b_packed, k)
    a_words, b_words = _bytes_to_words(a_packed), _bytes_to_words(b_packed)
    with _kernels() as kernels:
        return torch.from_numpy(kernels.xnor_gemm(a_words, b_words[None], k)[0])


# --------------------------------------------------------------------------------------------------------------
# Binary convolution
# --------------------------------------------------------------------------------------------------------------


def binary_conv2d_reference(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, pad_value=0) -> torch.Tensor:
    r"""Readable torch version of :func:`binary_conv2d`: one XNOR-popcount product per kernel tap.

    Signs are packed along the channels (channel-wise packing); for each tap :math:`(k_y, k_x)` the shifted
    input window is multiplied with the tap's weights by :math:`C - 2\,\operatorname{popcount}(\oplus)`, and
    taps that land in the zero padding are masked out, so they contribute 0 (with ``pad_value`` :math:`\pm 1` the
    input is padded with that value first, and nothing is masked):

    .. math:: y_{n,o,i,j} = \sum_{(k_y, k_x)\ \text{inside the image}}
        \Big(C - 2 \operatorname{popcount}\big(\operatorname{bits}(x_{n,:,i s_h + k_y - p_h, j s_w + k_x - p_w})
        \oplus \operatorname{bits}(w_{o,:,k_y,k_x})\big)\Big)

    Runs on the device of its inputs; exact but slow, it is the specification the numba kernel is tested
    against.
    """
    (sh, sw), (ph, pw), (oh, ow) = conv_geometry(x, w, stride, padding)
    pad_value = _require_pad_value(pad_value)
    require_no_nan(x, "x")
    require_no_nan(w, "w")
    if pad_value:  # +1 or -1: the padding is part of the input
        x, ph, pw = F.pad(x, (pw, pw, ph, ph), value=float(pad_value)), 0, 0
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    x_bits = F.pad(pack_bits(x.movedim(1, -1)), (0, 0, pw, pw, ph, ph))  # (N, H + 2ph, W + 2pw, bytes)
    w_bits = pack_bits(w.movedim(1, -1))  # (O, kh, kw, bytes)
    inside = F.pad(torch.ones(h, wd, dtype=torch.int64, device=x.device), (pw, pw, ph, ph))
    out = torch.zeros(n, oh, ow, o, dtype=torch.int64, device=x.device)
    for ky in range(kh):
        for kx in range(kw):
            rows = slice(ky, ky + sh * (oh - 1) + 1, sh)
            cols = slice(kx, kx + sw * (ow - 1) + 1, sw)
            x_tap = x_bits[:, rows, cols].reshape(n * oh * ow, x_bits.shape[-1])
            mismatches = _popcount_pairs(x_tap, w_bits[:, ky, kx], torch.bitwise_xor).reshape(n, oh, ow, o)
            out += inside[rows, cols, None] * (c - 2 * mismatches)
    return out.permute(0, 3, 1, 2).contiguous().to(torch.int32)


def binary_conv2d(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, pad_value=0,
                  method: str = "im2col") -> torch.Tensor:
    r"""Binary 2-D convolution :math:`\operatorname{sign}(x) \ast \operatorname{sign}(w)` with XOR and popcount.

    .. math:: y_{n,o,i,j} = \sum_{c} \sum_{k_y, k_x} \operatorname{sign}(x_{n,c,\,i s_h + k_y - p_h,\,
        j s_w + k_x - p_w})\, \operatorname{sign}(w_{o,c,k_y,k_x}),

    where positions in the padding contribute ``pad_value`` times the weight: 0 by default (zero padding, as
    ``F.conv2d``), or :math:`-1`/:math:`+1` for a binary padding (daBNN pads binary inputs with :math:`-1`, so
    that a padded tap costs nothing extra). ``x`` is (N, C, H, W), ``w`` is (O, C, kh, kw), ``stride`` (>= 1) and
    ``padding`` (>= 0) are an int or a pair; the result is int32 (N, O, oh, ow), exactly
    ``F.conv2d(sign(x), sign(w), stride=stride, padding=padding)`` for ``pad_value=0`` and
    ``F.conv2d(F.pad(sign(x), (pw, pw, ph, ph), value=pad_value), sign(w), stride=stride)`` otherwise.

    On CPU the signs are packed along the channels first, 64 channels per ``uint64`` word (channel-wise bit
    packing, as daBNN and BitFlow do); ``method`` says how the sums are organised (both exact):

    - ``"im2col"``: the packed image is unfolded (im2col over words, padded taps read as +1 unless the input was
      padded with -1 words first) and multiplied with the packed filters by the XNOR-popcount kernel of
      :func:`xnor_matmul` (daBNN's im2col + BGEMM path);
    - ``"direct"``: the packed image is padded explicitly and every output is one XOR-popcount sum read in place
      from its window, with no buffer (daBNN's binary direct convolution).

    With ``pad_value=0`` a last pass applies the zero-padding correction, subtracting
    :math:`\sum_c \operatorname{sign}(w_{o,c,t})` for every padded tap :math:`t` of a window (Larq Compute
    Engine's ``zero_padding_correction``). Elsewhere it runs :func:`binary_conv2d_reference` on the device. NaN
    raises ``ValueError``.

    References:

    - Rastegari et al., *XNOR-Net*, ECCV 2016 (binary convolution as XNOR + bitcount, fig. 2).
    - Zhang et al., *daBNN: A Super Fast Inference Framework for Binary Neural Networks on ARM devices*, 2019.
    - Hu et al., *BitFlow: Exploiting Vector Parallelism for Binary Neural Networks on CPU*, IPDPS 2018.
    - Bannink et al., *Larq Compute Engine: Design, Benchmark, and Deploy State-of-the-Art Binarized Neural
      Networks*, MLSys 2021.
    """
    (sh, sw), (ph, pw), (oh, ow) = conv_geometry(x, w, stride, padding)
    pad_value = _require_pad_value(pad_value)
    if method not in CONV_METHODS:
        raise ValueError(f"method must be one of {CONV_METHODS}, got {method!r}")
    if x.device.type != "cpu":
        return binary_conv2d_reference(x, w, stride, padding, pad_value)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    cw = -(-c // 64)  # words per pixel
    x_float = _cpu_float32(x, "x").reshape(n, c, h * wd)
    # a few taps per filter: pack them as rows of channels (a NumPy copy: a torch copy would wake torch's OpenMP
    # threads, which then spin on the cores the kernels below need)
    w_taps = np.ascontiguousarray(_cpu_float32(w, "w").transpose(0, 2, 3, 1)).reshape(o * kh * kw, c)
    with _kernels() as kernels:
        x_words = _without_nan(kernels.pack_channels(x_float), "x").reshape(n, h, wd, cw)
        w_words = _without_nan(kernels.pack_rows(w_taps), "w").reshape(o, kh * kw, cw)
        qh, qw = ph, pw  # padding left to im2col, whose padded taps read as +1 words
        if method == "direct" or pad_value == -1:  # pad explicitly, with -1 words or +1 (zero) words
            x_words, qh, qw = _pad_words(x_words, ph, pw, c, pad_value), 0, 0
        if method == "direct":
            hp, wp = x_words.shape[1:3]
            out = kernels.direct_conv(x_words.reshape(n, hp, wp * cw), w_words.reshape(o, kh, kw * cw),
                                      c * kh * kw, cw, sh, sw, oh, ow)
        else:
            cols = kernels.im2col_words(x_words, kh, kw, sh, sw, qh, qw, oh, ow)
            out = kernels.xnor_gemm(w_words.reshape(o, kh * kw * cw), cols, c * kh * kw).reshape(n, o, oh, ow)
        if pad_value == 0 and (ph or pw):
            kernels.zero_padding_correction(out, w_words.reshape(o, kh, kw, cw), c, sh, sw, ph, pw, h, wd)
    return torch.from_numpy(out)


def _pad_words(x_words: np.ndarray, ph: int, pw: int, c: int, pad_value: int) -> np.ndarray:
    """Channel-packed images (N, H, W, Cw) padded with pixels whose c channels are all -1 (``pad_value=-1``:
    bits 0..c-1 set, the padding bits past c clear) or all +1 (zero words, for 0 and +1)."""
    n, h, wd, cw = x_words.shape
    padded = np.zeros((n, h + 2 * ph, wd + 2 * pw, cw), np.uint64)
    if pad_value == -1:
        padded[:] = np.packbits(np.arange(64 * cw) < c, bitorder="little").view(np.uint64)
    padded[:, ph:ph + h, pw:pw + wd] = x_words
    return padded


# --------------------------------------------------------------------------------------------------------------
# Bit-serial product of unsigned integers (DoReFa-Net)
# --------------------------------------------------------------------------------------------------------------


def _require_unsigned_values(t, name: str, bits: int) -> torch.Tensor:
    """Integer values in [0, 2**bits) from an integer tensor or a float tensor holding exact integers; int64."""
    _require_real(t, name)
    require_ndim(t, name, 2)
    if t.is_floating_point():
        values = t.to(torch.float64)
        if not bool(torch.isfinite(values).all()) or bool((values != values.round()).any()):
            raise ValueError(f"{name} must hold integer values, got non-integer, NaN or infinite entries")
    else:
        values = t.to(torch.int64)
    if bool(((values < 0) | (values >= 2**bits)).any()):
        raise ValueError(f"{name} must have values in [0, 2**{bits}) = [0, {2**bits - 1}]")
    return values.to(torch.int64)


def bitserial_matmul(a: torch.Tensor, b: torch.Tensor, a_bits: int, b_bits: int) -> torch.Tensor:
    r"""Product of unsigned integer matrices computed on bit planes, :math:`a\,b^\top` (DoReFa-Net, eq. 3).

    Writing :math:`a = \sum_i 2^i a_i` and :math:`b = \sum_j 2^j b_j` with bit planes :math:`a_i, b_j \in
    \{0, 1\}`,

    .. math:: a_m \cdot b_n = \sum_{i=0}^{A-1} \sum_{j=0}^{B-1} 2^{i+j}\,
        \operatorname{popcount}\big(a_{i,m} \mathbin{\&} b_{j,n}\big),

    so a :math:`A`-bit by :math:`B`-bit product costs :math:`A B` AND-popcount passes over packed bits, the
    reason DoReFa-Net (Zhou et al., 2016, sec. 2.1) trains with few-bit weights and activations.

    ``a`` (M, K) holds integers in :math:`[0, 2^{A})` and ``b`` (N, K) in :math:`[0, 2^{B})`, ``A = a_bits``
    and ``B = b_bits`` in [1, 32]. Integer dtypes are accepted, and float dtypes holding exact integers (as
    DoReFa's quantizers produce). The result is int64 (M, N), exactly ``a @ b.T``; inputs whose product could
    exceed int64 (max(a) * max(b) * K >= 2**63) raise ``ValueError``. Readable torch on any device: bit planes
    are packed with the same helper as :func:`pack_bits` and counted like :func:`xnor_matmul_reference`.
    """
    a_bits = require_bits(a_bits, "a_bits")
    b_bits = require_bits(b_bits, "b_bits")
    a_int = _require_unsigned_values(a, "a", a_bits)
    b_int = _require_unsigned_values(b, "b", b_bits)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same K (dim 1), got a {tuple(a.shape)} and b {tuple(b.shape)}")
    _require_same_device(a, b, "a and b")
    (m, k), n = a.shape, b.shape[0]
    largest = (int(a_int.max()) if a_int.numel() else 0) * (int(b_int.max()) if b_int.numel() else 0) * k
    if largest > 2**63 - 1:
        raise ValueError(f"a @ b.T may overflow int64: max(a) * max(b) * K = {largest} >= 2**63")
    a_planes = _pack_bool(torch.stack([(a_int >> i) & 1 for i in range(a_bits)]).bool())  # (A, M, bytes)
    b_planes = _pack_bool(torch.stack([(b_int >> j) & 1 for j in range(b_bits)]).bool())  # (B, N, bytes)
    counts = _popcount_pairs(a_planes.flatten(0, 1), b_planes.flatten(0, 1), torch.bitwise_and)
    counts = counts.reshape(a_bits, m, b_bits, n)
    i = torch.arange(a_bits, device=a.device).reshape(a_bits, 1, 1, 1)
    j = torch.arange(b_bits, device=a.device).reshape(1, 1, b_bits, 1)
    return (counts << (i + j)).sum(dim=(0, 2))


# --------------------------------------------------------------------------------------------------------------
# Fixed-point requantization (TFLite / gemmlowp)
# --------------------------------------------------------------------------------------------------------------


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    r"""TFLite's ``QuantizeMultiplier``: a real multiplier as a 31-bit fixed-point mantissa and a shift.

    .. math:: r \approx m_0 \cdot 2^{\,\text{shift} - 31}, \qquad m_0 \in [2^{30}, 2^{31})

    Computed as TFLite does: :math:`r = q \cdot 2^{\text{shift}}` with ``frexp`` (:math:`q \in [0.5, 1)`),
    :math:`m_0 = \operatorname{round}(q \cdot 2^{31})` (half away from zero); if rounding reaches
    :math:`2^{31}`, :math:`m_0` is halved and the shift incremented; a shift below -31 (:math:`r \lesssim
    2^{-32}`) flushes to ``(0, 0)``, and ``real_multiplier == 0`` gives ``(0, 0)``. This is the
    :math:`M = 2^{-n} M_0` of Jacob et al. (2018, sec. 2.2), with :math:`n = -\text{shift}`.

    ``real_multiplier`` is a finite real number >= 0 (float or int); negative, NaN or infinite values raise
    ``ValueError``, anything else ``TypeError``. Feed the result to :func:`requantize`.

    References:

    - Jacob et al., *Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
      Inference*, CVPR 2018, sec. 2.2.
    - TensorFlow Lite, ``tensorflow/lite/kernels/internal/quantization_util.cc``.
    """
    if isinstance(real_multiplier, bool) or not isinstance(real_multiplier, numbers.Real):
        raise TypeError(f"real_multiplier must be a real number, got {type(real_multiplier).__name__}")
    real = float(real_multiplier)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"real_multiplier must be finite and >= 0, got {real}")
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = math.floor(q * 2**31 + 0.5)  # std::round for a positive value; q * 2**31 is exact
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def requantize(acc: torch.Tensor, m0: int, shift: int) -> torch.Tensor:
    r"""TFLite's ``MultiplyByQuantizedMultiplier``: int32 accumulators times :math:`m_0 2^{\text{shift}-31}`.

    .. math:: y = \operatorname{RoundingDivideByPOT}\Big(\operatorname{SaturatingRoundingDoublingHighMul}
        \big(x \cdot 2^{\max(\text{shift}, 0)},\, m_0\big),\, \max(-\text{shift}, 0)\Big)

    bit for bit as gemmlowp's ``fixedpoint.h``. The high multiply returns :math:`(x m_0 + \text{nudge}) /
    2^{31}` truncated toward zero, with nudge :math:`2^{30}` for :math:`x m_0 \ge 0` and :math:`1 - 2^{30}`
    otherwise; together that is :math:`\lfloor (x m_0 + 2^{30}) / 2^{31} \rfloor`, round to nearest with
    ties toward :math:`+\infty` (ARM's ``VQRDMULH``). The rounding right shift then rounds ties away from zero.
    This is how integer-only inference (Jacob et al., 2018, sec. 2.2) rescales int32 accumulators to the output
    scale without floating point.

    ``acc`` must be an int32 tensor (``TypeError`` otherwise), ``m0`` an int in :math:`[0, 2^{31})` and
    ``shift`` an int in [-31, 30] (the range the C++ supports without undefined behaviour); an
    ``acc * 2**shift`` that overflows int32 raises ``ValueError``. Returns int32 of the same shape and device.
    Computed in int64 tensor arithmetic, so it runs on any device.
    """
    require_tensor(acc, "acc")
    if acc.dtype != torch.int32:
        raise TypeError(f"acc must be an int32 tensor of accumulators, got {acc.dtype}")
    m0 = require_int(m0, "m0", minimum=0, maximum=2**31 - 1)
    shift = require_int(shift, "shift", minimum=-31, maximum=30)
    left_shift, right_shift = max(shift, 0), max(-shift, 0)
    x = acc.to(torch.int64) * (1 << left_shift)
    if left_shift and bool(((x < _INT32_MIN) | (x > _INT32_MAX)).any()):
        raise ValueError(f"acc * 2**shift overflows int32 for shift = {shift}")
    # SaturatingRoundingDoublingHighMul(x, m0). It saturates only for x == m0 == INT32_MIN, impossible here
    # because m0 >= 0.
    ab = x * m0
    nudge = torch.where(ab >= 0, 2**30, 1 - 2**30)
    high = torch.div(ab + nudge, 2**31, rounding_mode="trunc")  # C++ integer division truncates toward zero
    # RoundingDivideByPOT(high, right_shift): an arithmetic shift, plus 1 when the remainder passes half.
    mask = (1 << right_shift) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return ((high >> right_shift) + (remainder > threshold)).to(torch.int32)
