r"""XNOR Neural Engine (XNE): a BNN datapath and its energy per operation (Conti, Schiavone, Benini, TCAD 2018).

The XNE is a fully digital accelerator IP for binary neural networks, placed inside a microcontroller next to a
RISC-V core, computing convolutional and dense layers. What we could read is the paper's **abstract** (arXiv
1807.03010, paperswithcode; the TCAD text beyond its first page was not reachable). Its numbers:

- post-layout, 22 nm, full MCU: an energy cost of **21.6 fJ per binary operation at 0.4 V**;
- ResNet-34 in **less than 2.2 mJ per frame at 8.9 frames per second**;
- post-synthesis results in 65 nm and 22 nm for the XNE IP alone (not read here).

This module implements, as *our reconstruction* of the standard BNN layer that such a datapath computes:

1. a functional model of the datapath: the input and weight bits are consumed in words of ``tp`` bits; each word
   gives ``tp`` XNORs and one popcount, an accumulator sums the popcounts over the words, and the integer result
   is compared with a per-channel threshold (batch norm and sign folded into one integer comparison). It is
   bit-exact with :func:`qteach.bitops.xnor_matmul` / :func:`qteach.bitops.binary_conv2d` followed by the float
   batch norm and sign. The word width ``tp`` and the loop order are parameters of the model, not the paper's
   verified micro-architecture.
2. a cost model: energy = operations x energy per operation (the paper's 21.6 fJ/op), with an optional memory
   term from :data:`qteach.hw.MEMORY_PJ_PER_64BIT_45NM` (Horowitz 2014, 45 nm: a labelled illustration, not the
   XNE's memories).

We count **two operations per binary MAC** (one XNOR, one accumulation), the usual convention of BNN
accelerators; that the paper counts the same way is an assumption we could not check.

References:

- F. Conti, P. D. Schiavone, L. Benini, *XNOR Neural Engine: A Hardware Accelerator IP for 21.6-fJ/op Binary
  Neural Network Inference*, IEEE TCAD 37(11), 2018, arXiv:1807.03010.
- M. Horowitz, *Computing's energy problem (and what we can do about it)*, ISSCC 2014 (memory energies).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach import hw
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_no_nan,
    require_positive_number,
)
from qteach.deploy import Threshold

__all__ = [
    "FJ_PER_OP",
    "OPS_PER_BINARY_MAC",
    "RESNET34_FPS",
    "RESNET34_MJ_PER_FRAME",
    "energy_split",
    "layer_energy_fj",
    "memory_fj_per_bit",
    "resnet34_conv_layers",
    "resnet34_macs",
    "tops_per_watt",
    "xne_conv2d",
    "xne_dense",
    "xne_popcount_accumulate",
]

#: Energy per binary operation, 22 nm post-layout, full MCU, 0.4 V (Conti et al., 2018, abstract and title).
FJ_PER_OP = 21.6
#: ResNet-34 energy per frame, an upper bound ("less than 2.2 mJ per frame"), and the frame rate (abstract).
RESNET34_MJ_PER_FRAME = 2.2
RESNET34_FPS = 8.9
#: Operations counted per binary multiply-accumulate: an XNOR and an addition (assumption, see module docstring).
OPS_PER_BINARY_MAC = 2


def _require_signs(x, name: str) -> torch.Tensor:
    require_float_tensor(x, name)
    require_no_nan(x, name)
    return x


def xne_popcount_accumulate(x: torch.Tensor, w: torch.Tensor, tp: int = 128) -> torch.Tensor:
    r"""The accumulators of a binary dense layer, ``tp`` bits at a time: XNOR, popcount, accumulate.

    .. math:: \text{acc}_{nm} = \sum_{c=0}^{\lceil K/T \rceil - 1} \operatorname{popcount}\big(
        \operatorname{xnor}(x_{n,\,cT:(c+1)T},\; w_{m,\,cT:(c+1)T})\big), \qquad
        \sum_k \operatorname{sign}(x_{nk})\operatorname{sign}(w_{mk}) = 2\,\text{acc}_{nm} - K.

    ``x`` (N, K) and ``w`` (M, K) are real tensors, binarised with sign(0) = +1 (bit 1 for +1). Returns the int64
    popcount accumulators (N, M). A last word shorter than ``tp`` holds only the remaining bits (the hardware's
    masking of unused lanes). Conti et al., TCAD 2018 (datapath order: our reconstruction).
    """
    _require_signs(x, "x")
    _require_signs(w, "w")
    tp = require_int(tp, "tp", minimum=1)
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must be (N, K) and (M, K), got {tuple(x.shape)} and {tuple(w.shape)}")
    xb, wb = x >= 0, w >= 0                                        # the bits: 1 for +1, 0 for -1
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for start in range(0, x.shape[1], tp):                         # one word of tp bits per step
        xnor = xb[:, None, start:start + tp] == wb[None, :, start:start + tp]
        acc += xnor.sum(-1)                                        # popcount of the word, accumulated
    return acc


def xne_dense(x: torch.Tensor, w: torch.Tensor, threshold: Threshold, tp: int = 128) -> torch.Tensor:
    r"""A binary dense layer on the datapath: accumulate, then compare with the folded threshold.

    .. math:: y_{nm} = \begin{cases} +1 & \text{flip}_m\,(2\,\text{acc}_{nm} - K) \ge \tau_m \\
        -1 & \text{otherwise} \end{cases}

    ``threshold`` is a :class:`qteach.deploy.Threshold` (from :func:`qteach.deploy.bn_sign_threshold`): batch norm
    and sign of the layer as one integer comparison per output channel. Returns float32 :math:`\pm 1` (N, M).
    """
    if not isinstance(threshold, Threshold):
        raise TypeError(f"threshold must be a qteach.deploy.Threshold, got {type(threshold).__name__}")
    acc = xne_popcount_accumulate(x, w, tp)
    return threshold.apply(2 * acc - x.shape[1])


def xne_conv2d(x: torch.Tensor, w: torch.Tensor, threshold: Threshold, tp: int = 128,
               stride: int = 1) -> torch.Tensor:
    r"""A binary convolution (no padding) on the datapath: each output pixel is a dense product of its window.

    .. math:: y_{n,o,i,j} = \text{threshold}_o\Big(\sum_{c,k_y,k_x}
        \operatorname{sign}(x_{n,c,is+k_y,js+k_x})\operatorname{sign}(w_{o,c,k_y,k_x})\Big)

    ``x`` (N, C, H, W), ``w`` (O, C, kh, kw); returns float32 :math:`\pm 1` (N, O, oh, ow).
    """
    _require_signs(x, "x")
    _require_signs(w, "w")
    stride = require_int(stride, "stride", minimum=1)
    if x.dim() != 4 or w.dim() != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must be (N, C, H, W) and (O, C, kh, kw), got {tuple(x.shape)}, {tuple(w.shape)}")
    if x.shape[2] < w.shape[2] or x.shape[3] < w.shape[3]:
        raise ValueError(f"the kernel {tuple(w.shape[2:])} is larger than the input {tuple(x.shape[2:])}")
    n, o = x.shape[0], w.shape[0]
    oh, ow = (x.shape[2] - w.shape[2]) // stride + 1, (x.shape[3] - w.shape[3]) // stride + 1
    windows = F.unfold(x, w.shape[2:], stride=stride).transpose(1, 2).reshape(n * oh * ow, -1)
    y = xne_dense(windows, w.reshape(o, -1), threshold, tp)       # (N*oh*ow, O)
    return y.reshape(n, oh, ow, o).permute(0, 3, 1, 2)


def tops_per_watt(fj_per_op: float) -> float:
    r"""Energy efficiency from energy per operation: :math:`\text{TOPS/W} = 10^{3} / E_{\text{fJ/op}}`
    (one operation per :math:`E` femtojoules is :math:`10^{15}/E` operations per joule)."""
    fj_per_op = require_positive_number(fj_per_op, "fj_per_op")
    return 1e15 / fj_per_op / 1e12


def layer_energy_fj(macs: int, fj_per_op: float = FJ_PER_OP) -> float:
    r"""Compute energy of ``macs`` binary MACs: :math:`E = 2\,\text{MACs}\cdot E_{\text{op}}` (fJ)."""
    macs = require_int(macs, "macs", minimum=0)
    fj_per_op = require_positive_number(fj_per_op, "fj_per_op")
    return OPS_PER_BINARY_MAC * macs * fj_per_op


def memory_fj_per_bit(level: str = "sram_32kb") -> float:
    """Energy of moving one bit from ``level`` in fJ: the 64-bit access energy of :mod:`qteach.hw` (Horowitz 2014,
    45 nm) divided by 64. An illustration of orders of magnitude, not the XNE's memories."""
    return hw.memory_access_energy_pj(64, level) * 1000 / 64


def energy_split(reuse: float, level: str = "sram_32kb", fj_per_op: float = FJ_PER_OP,
                 bits_per_mac: int = 2) -> tuple[float, float]:
    r"""Energy per binary MAC (fJ), split into compute and memory, when each fetched bit serves ``reuse`` MACs.

    .. math:: E_{\text{compute}} = 2 E_{\text{op}}, \qquad
        E_{\text{memory}} = \frac{b_{\text{MAC}}\, E_{\text{bit}}}{R}

    with :math:`b_{\text{MAC}}` bits (one weight, one activation) read per MAC without reuse. Returns
    ``(compute_fj, memory_fj)``.
    """
    reuse = require_positive_number(reuse, "reuse")
    fj_per_op = require_positive_number(fj_per_op, "fj_per_op")
    bits_per_mac = require_int(bits_per_mac, "bits_per_mac", minimum=0)
    return OPS_PER_BINARY_MAC * fj_per_op, bits_per_mac * memory_fj_per_bit(level) / reuse


def resnet34_conv_layers(size: int = 224) -> list[tuple]:
    """The layers of ResNet-34 (He et al., 2016, table 1) as ``(name, c_in, c_out, kernel, h_out)``, square
    outputs, including the 1x1 downsampling shortcuts and the final 512x1000 fully connected layer (kernel 1,
    output 1)."""
    size = require_int(size, "size", minimum=32)
    h = hw.conv2d_output_size(size, 7, 2, 3)
    layers = [("conv1", 3, 64, 7, h)]
    h = hw.conv2d_output_size(h, 3, 2, 1)                         # max pool
    c_in = 64
    for stage, (c, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=2):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 2) else 1
            h_out = hw.conv2d_output_size(h, 3, stride, 1)
            layers.append((f"conv{stage}_{b + 1}a", c_in, c, 3, h_out))
            layers.append((f"conv{stage}_{b + 1}b", c, c, 3, h_out))
            if stride == 2:
                layers.append((f"conv{stage}_{b + 1}down", c_in, c, 1, h_out))
            c_in, h = c, h_out
    layers.append(("fc", 512, 1000, 1, 1))
    return layers


def resnet34_macs(size: int = 224) -> dict:
    """MACs of ResNet-34: ``{"total", "first", "last", "binary"}``, where ``binary`` leaves out the first
    convolution and the last layer (which BNNs usually keep in higher precision)."""
    layers = resnet34_conv_layers(size)
    macs = [hw.conv2d_macs(c_in, c_out, k, h, h) for _, c_in, c_out, k, h in layers]
    return {"total": sum(macs), "first": macs[0], "last": macs[-1], "binary": sum(macs[1:-1])}
