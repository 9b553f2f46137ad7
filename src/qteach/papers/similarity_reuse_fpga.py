r"""Similarity reuse in BNN inference: compute a window (or a kernel) from a similar one, counting only changed bits.

Fu, Zhu, Su, Lee and Zhao (FPGA 2019; arXiv 1810.02068) observe that in binarized neural networks (BNNs) the
inputs under neighbouring convolution windows, and the learned kernels, are highly similar ("an average of ~78%
input similarity and ~59% weight similarity among weight kernels, measured by our proposed metric", abstract),
and build two FPGA architectures that reuse "the results from previous computation" so that "80% of the
computation and 40% of the buffer access can be skipped" (abstract).

**What could be read.** Only the abstract and the first paragraph of the introduction (ar5iv 1810.02068, deepai.org).
The paper's similarity metric, its reuse architectures, its equations and tables could not be read. Everything
below is **our reconstruction** of "reusing the results from previous computation" for the two kinds of
similarity the abstract names; equation labels (R1)-(R4) are ours, not the paper's.

**Windows.** A binary convolution with kernels :math:`w_o \in \{-1,+1\}^K` (:math:`K = C k_h k_w`) computes, for
every window :math:`u_j` (the :math:`K` input signs under the kernel; 0 for taps in the zero padding),

.. math:: y_{o,j} = \langle w_o, u_j \rangle = \sum_{i=1}^{K} w_{o,i}\, u_{j,i}.

**Similarity (R1).** For two binary vectors of length :math:`K`, the fraction of positions that agree,

.. math:: S(a, b) = 1 - \frac{|\{i : a_i \ne b_i\}|}{K}

(:func:`similarity`; 1 - normalised Hamming distance). Windows are compared **tap by tap**, i.e. aligned on the
kernel, because that is what reuse needs; kernels are compared position by position.

**Input reuse (R2).** Adjacent windows :math:`u_{j-1}, u_j` of a row meet the same weight :math:`w_{o,i}` at each
tap :math:`i`, so with :math:`D_j = \{i : u_{j,i} \ne u_{j-1,i}\}`

.. math:: y_{o,j} = y_{o,j-1} + \sum_{i \in D_j} w_{o,i}\,(u_{j,i} - u_{j-1,i}),

:math:`|D_j|` multiply-accumulates per kernel instead of :math:`K` (:func:`input_reuse_conv2d`). For
:math:`\pm 1` bits, :math:`u_{j,i} - u_{j-1,i} = 2u_{j,i}` on :math:`D_j`, which gives the **delta-popcount**

.. math:: y_{o,j} = y_{o,j-1} + 2\big(|D_j| - 2\,\operatorname{popcount}_{i \in D_j}(w_{o,i} \oplus u_{j,i})\big)

(R3, :func:`delta_popcount`): one XNOR per changed bit. Finding :math:`D_j` costs a comparison of the two windows,
shared by all output channels.

**Weight reuse (R4).** A kernel :math:`w_o` with a similar, already computed reference kernel :math:`w_r`, with
:math:`E_o = \{i : w_{o,i} \ne w_{r,i}\}` known offline (weights are fixed):

.. math:: y_{o,j} = y_{r,j} + \sum_{i \in E_o} (w_{o,i} - w_{r,i})\, u_{j,i}

(:func:`weight_reuse_conv2d`; the reference of each kernel is a choice, e.g. :func:`nearest_reference`).

**Cost.** :data:`PAPER_ABSTRACT` holds the abstract's numbers; :func:`serial_speedup` and
:func:`total_power_reduction` are small models of ours that relate them (labelled as ours in the chapter).

Reference: C. Fu, S. Zhu, H. Su, C.-E. Lee, J. Zhao, *Towards Fast and Energy-Efficient Binarized Neural Network
Inference on FPGA*, FPGA 2019, arXiv:1810.02068.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach._validate import (
    require_float_tensor,
    require_int,
    require_integer_tensor,
    require_ndim,
    require_tensor,
)
from qteach.binary import sign
from qteach.bitops import conv_geometry

__all__ = [
    "PAPER_ABSTRACT",
    "binary_windows",
    "delta_popcount",
    "input_reuse_conv2d",
    "nearest_reference",
    "serial_speedup",
    "similarity",
    "total_power_reduction",
    "weight_reuse_conv2d",
]

#: The numbers of the abstract (arXiv 1810.02068v1), as fractions; the only numbers of the paper read for this book.
PAPER_ABSTRACT = {
    "input_similarity": 0.78,          # "~78% input similarity"
    "weight_similarity": 0.59,         # "~59% weight similarity among weight kernels"
    "computation_skipped": 0.80,       # "80% of the computation ... can be skipped"
    "buffer_access_skipped": 0.40,     # "40% of the buffer access can be skipped"
    "total_power_reduction": 0.17,     # "17% reduction in total power consumption"
    "onchip_power_reduction": 0.54,    # "54% reduction in on-chip power consumption"
    "max_speedup": 2.4,                # "2.4x maximum speedup", against the same design without reuse
    "area_efficiency_vs_sota": 1.9,    # "1.9x more area-efficiency" than the state-of-the-art BNN design
}


def _require_signs(t, name: str, allow_zero: bool = False) -> torch.Tensor:
    """A real tensor whose values are -1 and +1 (and 0 if ``allow_zero``)."""
    require_tensor(t, name)
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must be a real tensor of signs, got {t.dtype}")
    allowed = (-1, 0, 1) if allow_zero else (-1, 1)
    if t.numel() and not bool(torch.isin(t, torch.tensor(allowed, dtype=t.dtype, device=t.device)).all()):
        raise ValueError(f"{name} must hold only the values {allowed} (binarize with qteach.binary.sign first)")
    return t


def _require_conv_operands(x, w, stride, padding) -> None:
    """Float x (N, C, H, W) and w (O, C, kh, kw) that fit a convolution with this stride and padding."""
    conv_geometry(require_float_tensor(x, "x"), require_float_tensor(w, "w"), stride, padding)


def _require_delta_operands(y_prev, u_prev, u_new, w) -> None:
    for t, name in ((u_prev, "u_prev"), (u_new, "u_new"), (w, "w")):
        _require_signs(t, name)
    require_ndim(w, "w", 2)
    require_integer_tensor(y_prev, "y_prev")
    if u_prev.shape != u_new.shape or u_new.ndim == 0 or u_new.shape[-1] != w.shape[1]:
        raise ValueError(f"u_prev and u_new must have the same shape (..., K) with K = w.shape[1] = {w.shape[1]}, "
                         f"got {tuple(u_prev.shape)} and {tuple(u_new.shape)}")
    if y_prev.shape != (*u_new.shape[:-1], w.shape[0]):
        raise ValueError(f"y_prev must have shape {(*u_new.shape[:-1], w.shape[0])}, got {tuple(y_prev.shape)}")


def _require_reference(reference, kernels: int) -> None:
    require_ndim(require_integer_tensor(reference, "reference"), "reference", 1)
    if len(reference) != kernels or bool(((reference < -1) | (reference >= torch.arange(len(reference)))).any()):
        raise ValueError(f"reference must have one entry per kernel ({kernels}), each in [-1, o - 1], "
                         f"got {reference.tolist()}")


def _require_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
    return float(value)


def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Fraction of positions where two binary vectors agree, along the last dimension (R1, our metric).

    .. math:: S(a, b) = 1 - \frac{|\{i : a_i \ne b_i\}|}{K}

    ``a`` and ``b`` hold signs (-1, +1; 0 is allowed for padded taps) and have the same shape (..., K), K >= 1;
    returns float64 (...). The paper's own "proposed metric" could not be read; this is the natural one.
    """
    _require_signs(a, "a", allow_zero=True)
    _require_signs(b, "b", allow_zero=True)
    if a.shape != b.shape or a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"a and b must have the same shape (..., K) with K >= 1, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return (a == b).double().mean(-1)


def binary_windows(x: torch.Tensor, kernel_size, stride=1, padding=0) -> torch.Tensor:
    r"""The binary windows of a convolution: int64 (N, K, oh, ow), :math:`u_{j,i} = \operatorname{sign}(x)` at tap
    :math:`i` of window :math:`j`, 0 where the tap falls in the zero padding; taps ordered (channel, row, column),
    as ``w.flatten(1)``."""
    require_ndim(require_float_tensor(x, "x"), "x", 4)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    dummy = torch.zeros(1, x.shape[1], require_int(kh, "kernel_size", 1), require_int(kw, "kernel_size", 1))
    _, _, (oh, ow) = conv_geometry(x, dummy, stride, padding)
    cols = F.unfold(sign(x), (kh, kw), padding=padding, stride=stride)
    return cols.to(torch.int64).reshape(x.shape[0], -1, oh, ow)


def delta_popcount(y_prev: torch.Tensor, u_prev: torch.Tensor, u_new: torch.Tensor, w: torch.Tensor):
    r"""The output for a new window from the previous window's output, touching only the changed bits (R3).

    .. math:: y_{\text{new}} = y_{\text{prev}} + 2\big(|D| - 2\,\operatorname{popcount}_{i \in D}
        (w_i \oplus u_{\text{new},i})\big), \qquad D = \{i : u_{\text{new},i} \ne u_{\text{prev},i}\}

    ``u_prev``, ``u_new``: signs (..., K); ``w``: signs (O, K); ``y_prev``: integers (..., O), the outputs
    :math:`\langle w_o, u_{\text{prev}} \rangle`. Returns ``(y_new, changed)``: int64 (..., O) equal to
    :math:`\langle w_o, u_{\text{new}} \rangle`, and :math:`|D|` (...), the XNORs needed per kernel.
    """
    _require_delta_operands(y_prev, u_prev, u_new, w)
    changed = (u_new != u_prev).unsqueeze(-2)                       # (..., 1, K): the set D
    mismatches = ((w != u_new.unsqueeze(-2)) & changed).sum(-1)      # popcount of w XOR u_new over D
    size = changed.sum(-1)                                           # |D|
    return y_prev.to(torch.int64) + 2 * (size - 2 * mismatches), size.squeeze(-1)


def input_reuse_conv2d(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0):
    r"""Binary convolution by input reuse (R2): the first window of each output row is computed directly, every
    further window from its left neighbour, correcting only the taps whose input bit changed.

    .. math:: y_{o,j} = y_{o,j-1} + \sum_{i \in D_j} w_{o,i}\,(u_{j,i} - u_{j-1,i})

    ``x`` (N, C, H, W) and ``w`` (O, C, kh, kw) are real (binarized here, sign(0) = +1; padded taps are 0, as in
    :func:`qteach.bitops.binary_conv2d`). Returns ``(y, ops)``: int64 (N, O, oh, ow), exactly
    ``F.conv2d(sign(x), sign(w), stride=stride, padding=padding)``, and int64 (N, oh, ow), the
    multiply-accumulates (XNORs) each kernel spends on each window: K for the first of a row, :math:`|D_j|` after.
    """
    _require_conv_operands(x, w, stride, padding)
    u = binary_windows(x, tuple(w.shape[2:]), stride, padding)       # (N, K, oh, ow)
    wb = sign(w).flatten(1).to(torch.int64)                           # (O, K)
    first = torch.einsum("ok,nkh->noh", wb, u[..., 0])               # first window of a row: direct
    diff = u[..., 1:] - u[..., :-1]                                   # window j - window j-1: nonzero on D_j
    corrections = torch.einsum("ok,nkhw->nohw", wb, diff)             # the sums of (R2)
    y = torch.cat([first.unsqueeze(-1), corrections], -1).cumsum(-1)  # y_j = y_(j-1) + correction_j
    ops = torch.cat([torch.full_like(u[:, 0, :, :1], u.shape[1]), (diff != 0).sum(1)], -1)
    return y, ops


def nearest_reference(w: torch.Tensor) -> torch.Tensor:
    r"""For each kernel the most similar *earlier* kernel (our choice of reference for weight reuse).

    .. math:: r(o) = \arg\max_{p < o} S(w_o, w_p), \qquad r(0) = -1 \ \text{(computed directly)}

    ``w`` (O, ...) real, binarized here; ties go to the lowest index. Returns int64 (O,).
    """
    require_float_tensor(w, "w")
    if w.ndim < 2 or w.shape[0] == 0:
        raise ValueError(f"w must have shape (O, ...) with O >= 1 and at least 2 dimensions, got {tuple(w.shape)}")
    wb = sign(w).flatten(1).double()
    agree = wb @ wb.T                                                 # K - 2 * Hamming distance
    earlier = torch.ones_like(agree, dtype=torch.bool).tril(-1)
    reference = agree.masked_fill(~earlier, -float("inf")).argmax(1)
    reference[0] = -1
    return reference


def weight_reuse_conv2d(x: torch.Tensor, w: torch.Tensor, reference: torch.Tensor, stride=1, padding=0):
    r"""Binary convolution by weight reuse (R4): kernel o is computed from the output of its reference kernel
    r(o) < o, correcting only the positions where the two kernels differ (known offline).

    .. math:: y_{o,j} = y_{r(o),j} + \sum_{i \in E_o} (w_{o,i} - w_{r(o),i})\, u_{j,i}, \qquad
        E_o = \{i : w_{o,i} \ne w_{r(o),i}\}

    ``reference`` is an integer tensor (O,) with ``reference[o]`` in [-1, o - 1]; -1 computes kernel o directly.
    Returns ``(y, ops)``: int64 (N, O, oh, ow), exactly the binary convolution, and int64 (O,), the XNORs kernel o
    spends per window (K if direct, :math:`|E_o|` otherwise).
    """
    _require_conv_operands(x, w, stride, padding)
    _require_reference(reference, w.shape[0])
    u = binary_windows(x, tuple(w.shape[2:]), stride, padding)       # (N, K, oh, ow)
    wb = sign(w).flatten(1).to(torch.int64)                           # (O, K)
    y = torch.empty(u.shape[0], wb.shape[0], *u.shape[2:], dtype=torch.int64)
    ops = torch.empty(wb.shape[0], dtype=torch.int64)
    for o, r in enumerate(reference.tolist()):
        if r < 0:
            y[:, o], ops[o] = torch.einsum("k,nkhw->nhw", wb[o], u), wb.shape[1]
        else:
            diff = wb[o] - wb[r]                                      # nonzero exactly on E_o
            y[:, o], ops[o] = y[:, r] + torch.einsum("k,nkhw->nhw", diff, u), (diff != 0).sum()
    return y, ops


def serial_speedup(compute_skipped: float, buffer_skipped: float, compute_share: float) -> float:
    r"""Speed-up when a fraction of the computation and of the buffer accesses is skipped, with compute taking
    ``compute_share`` of the baseline time and the rest buffer access, one after the other (our model, Amdahl's law):

    .. math:: \text{speed-up} = \frac{1}{\alpha (1 - f_c) + (1 - \alpha)(1 - f_b)}

    All three arguments are fractions in [0, 1]; both skipped fractions equal to 1 with no time left raise.
    """
    fc = _require_fraction(compute_skipped, "compute_skipped")
    fb = _require_fraction(buffer_skipped, "buffer_skipped")
    alpha = _require_fraction(compute_share, "compute_share")
    remaining = alpha * (1 - fc) + (1 - alpha) * (1 - fb)
    if remaining <= 0:
        raise ValueError("compute_skipped and buffer_skipped leave no time at all: the speed-up is unbounded")
    return 1.0 / remaining


def total_power_reduction(onchip_share: float, onchip_reduction: float) -> float:
    r"""Reduction of the total power when only the on-chip part (a share :math:`s` of the total) is cut by a
    fraction :math:`r` and the off-chip part (DRAM, I/O) stays (our model):

    .. math:: \Delta P_{\text{total}} / P_{\text{total}} = s\, r
    """
    s = _require_fraction(onchip_share, "onchip_share")
    r = _require_fraction(onchip_reduction, "onchip_reduction")
    return s * r
