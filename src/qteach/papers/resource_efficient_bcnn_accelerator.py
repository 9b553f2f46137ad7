r"""A BCNN accelerator built on one 1x1 binary datapath, with block-wise binary I/O (idea of related work).

**What could be read.** The target paper, "A Resource-Efficient Inference Accelerator for Binary Convolutional
Neural Networks" (2020; listed as IEEE TCAS-II, IEEE Xplore document 9144282), could not be found: neither its
authors nor its abstract. What this module models is the idea of a *related* 2020 paper whose abstract we read:
G. Choi, J. Shin and T.-H. Kim, "Low-Complexity Inference Accelerator for Binarized Convolutional Neural
Networks", Journal of IEIE 57(1), pp. 53-60, 2020 (DOI 10.5573/ieie.2020.57.1.53). That abstract says:

1. inference runs **block by block**, a block being convolution, binarization and pooling;
2. each block has **binary input and binary output**, which removes the buffers of inter-step results;
3. each block is **decomposed into multiple 1x1 convolutions**, so convolutional and fully connected layers run
   on the same datapath;
4. a Cyclone V FPGA implementation uses 1.05 K ALMs and 2304 Kbit of on-chip memory, 22.514 GOP/s/KALM.

Everything below (the tap decomposition, the row-band schedule, the flip-aware pooling, the buffer-bit model) is
**our reconstruction** of points 1-3, exact by construction and tested against :func:`qteach.bitops.binary_conv2d`
and ``F.conv2d``; it is not the paper's circuit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from qteach import bitops, deploy
from qteach._validate import require_int, require_ndim, require_tensor
from qteach.papers.bn_free_fpga import integer_bias_bits

__all__ = [
    "RELATED_PAPER",
    "Block",
    "accumulator_bits",
    "binary_cnn_blocks",
    "binary_pool",
    "binarynet_cifar10_blocks",
    "block_layer_by_layer",
    "block_wise",
    "buffer_bits",
    "conv1x1",
    "fc_as_1x1",
    "fc_on_feature_map",
    "shifted_1x1_conv2d",
]

#: Figures of the related paper (Choi, Shin and Kim, Journal of IEIE 57(1), 2020, abstract), NOT of the target
#: paper: Cyclone V FPGA, 1.05 K ALMs, 2304 Kbit on-chip memory, complexity efficiency 22.514 GOP/s per K ALMs.
RELATED_PAPER = {"device": "Cyclone V FPGA", "kalm": 1.05, "memory_kbit": 2304, "gops_per_kalm": 22.514}


def _require_binary_operands(x, w, name_w: str = "w") -> None:
    require_ndim(require_tensor(x, "x"), "x", 4)
    require_tensor(w, name_w)


def conv1x1(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""One 1x1 binary convolution, the datapath's only operation: an XNOR-popcount per pixel over the channels.

    .. math:: z_{n,o,i,j} = \sum_c \operatorname{sign}(x_{n,c,i,j})\operatorname{sign}(w_{o,c})
        = C - 2\operatorname{popcount}\big(\operatorname{bits}(x_{n,:,i,j}) \oplus \operatorname{bits}(w_o)\big)

    ``x`` (N, C, H, W), ``w`` (O, C); returns int32 (N, O, H, W) via :func:`qteach.bitops.xnor_matmul`.
    """
    _require_binary_operands(x, w)
    require_ndim(w, "w", 2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have x's {x.shape[1]} channels in dim 1, got shape {tuple(w.shape)}")
    n, c, h, wd = x.shape
    z = bitops.xnor_matmul(x.permute(0, 2, 3, 1).reshape(-1, c), w)   # (N*H*W, O)
    return z.reshape(n, h, wd, -1).permute(0, 3, 1, 2)


def _tap_sum(x, w, stride, pads, out_hw):
    """Sum of the kh*kw shifted 1x1 convolutions, padding (top, bottom, left, right) as zero contributions."""
    (sh, sw), (top, bottom, left, right), (oh, ow) = stride, pads, out_hw
    out = torch.zeros(x.shape[0], w.shape[0], oh, ow, dtype=torch.int32)
    for ky in range(w.shape[2]):
        for kx in range(w.shape[3]):
            z = F.pad(conv1x1(x, w[:, :, ky, kx]), (left, right, top, bottom))  # padded pixels: 0
            out += z[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
    return out


def shifted_1x1_conv2d(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0) -> torch.Tensor:
    r"""A :math:`k_h \times k_w` binary convolution as the sum of :math:`k_h k_w` shifted 1x1 binary convolutions.

    .. math:: y_{n,o,i,j} = \sum_{k_y, k_x} \tilde z^{(k_y,k_x)}_{n,o,\,i s_h + k_y,\, j s_w + k_x},
        \qquad z^{(k_y,k_x)} = \operatorname{conv}_{1\times1}\big(x, w_{:,:,k_y,k_x}\big),

    where :math:`\tilde z` is :math:`z` zero-padded by ``padding``: a tap that falls on a padded pixel adds 0,
    exactly as ``F.conv2d`` on :math:`\pm 1` values with zero padding. The result is int32 (N, O, oh, ow) and
    equals :func:`qteach.bitops.binary_conv2d` (``pad_value=0``). Our reconstruction of the decomposition named
    in Choi, Shin and Kim (Journal of IEIE, 2020), abstract.
    """
    (sh, sw), (ph, pw), out_hw = bitops.conv_geometry(x, w, stride, padding)
    return _tap_sum(x, w, (sh, sw), (ph, ph, pw, pw), out_hw)


def fc_as_1x1(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""A fully connected binary layer on the 1x1 datapath: a vector is a 1x1 image with K channels.

    .. math:: y_{n,o} = \sum_k \operatorname{sign}(x_{n,k})\operatorname{sign}(w_{o,k})
        = \operatorname{conv}_{1\times1}(x_{n,:,1,1}, w)_{o}

    ``x`` (N, K), ``w`` (O, K); returns int32 (N, O), equal to :func:`qteach.bitops.xnor_matmul`.
    """
    require_ndim(require_tensor(x, "x"), "x", 2)
    return conv1x1(x[:, :, None, None], w)[:, :, 0, 0]


def fc_on_feature_map(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""The classifier of a CNN (a fully connected layer on a flattened (C, H, W) map) as H*W shifted 1x1
    convolutions: its weights, reshaped to (O, C, H, W), are a convolution whose kernel covers the whole map.

    .. math:: y_{n,o} = \sum_{c,i,j} \operatorname{sign}(x_{n,c,i,j})\operatorname{sign}(w_{o,(c,i,j)})
        = \sum_{i,j} \operatorname{conv}_{1\times1}\big(x, w_{:,:,i,j}\big)_{n,o,i,j}

    ``x`` (N, C, H, W), ``w`` (O, C*H*W) in ``x.flatten(1)`` order; returns int32 (N, O).
    """
    _require_binary_operands(x, w)
    require_ndim(w, "w", 2)
    if w.shape[1] != x[0].numel():
        raise ValueError(f"w must have C*H*W = {x[0].numel()} columns, got shape {tuple(w.shape)}")
    return shifted_1x1_conv2d(x, w.reshape(w.shape[0], *x.shape[1:]))[:, :, 0, 0]


def binary_pool(bits: torch.Tensor, flip: torch.Tensor, pool: int) -> torch.Tensor:
    r"""Pooling *after* binarization that equals binarization after max-pooling the integers.

    With :math:`b = +1 \iff \text{flip}\cdot s \ge \tau` (:class:`qteach.deploy.Threshold`), max-pooling the
    accumulators :math:`s` first gives, per channel,

    .. math:: b(\max_{\text{win}} s) = \max_{\text{win}} b(s) \;(\text{flip} = +1,\ \text{OR}), \qquad
        b(\max_{\text{win}} s) = \min_{\text{win}} b(s) \;(\text{flip} = -1,\ \text{AND}),

    i.e. ``flip * maxpool(flip * bits)``. ``bits`` (N, C, H, W) of :math:`\pm 1`, ``flip`` (C,) of :math:`\pm 1`.
    """
    require_ndim(require_tensor(bits, "bits"), "bits", 4)
    require_ndim(require_tensor(flip, "flip"), "flip", 1)
    pool = require_int(pool, "pool", minimum=1)
    f = flip.to(bits.dtype).reshape(1, -1, 1, 1)
    return f * F.max_pool2d(f * bits, pool)


def _require_block(x, w, threshold, padding, pool):
    bitops.conv_geometry(x, w, 1, padding)
    if not isinstance(threshold, deploy.Threshold):
        raise TypeError(f"threshold must be a qteach.deploy.Threshold, got {type(threshold).__name__}")
    if threshold.tau.numel() != w.shape[0]:
        raise ValueError(f"threshold must have {w.shape[0]} channels (w's outputs), got {threshold.tau.numel()}")
    padding = require_int(padding, "padding", minimum=0, maximum=min(w.shape[2:]) - 1)
    pool = require_int(pool, "pool", minimum=1, maximum=x.shape[2] + 2 * padding - w.shape[2] + 1)
    return padding, pool


def block_layer_by_layer(x: torch.Tensor, w: torch.Tensor, threshold, padding: int = 1, pool: int = 2):
    r"""A block processed layer by layer, the usual order of a BNN (conv -> max-pool -> BN + sign):

    .. math:: s = \operatorname{sign}(x) \ast \operatorname{sign}(w), \quad
        p = \operatorname{maxpool}(s), \quad y = \operatorname{Threshold}(p).

    Every step writes its whole output: returns ``(y, {"conv": s, "pool": p})``, the two integer maps being the
    inter-step buffers that block-wise processing removes. Stride 1, square padding and pooling.
    """
    padding, pool = _require_block(x, w, threshold, padding, pool)
    conv = bitops.binary_conv2d(x, w, padding=padding)
    pooled = F.max_pool2d(conv.to(torch.float32), pool).to(torch.int32)     # |s| <= C k^2: exact in float32
    return threshold.apply(pooled), {"conv": conv, "pool": pooled}


def block_wise(x: torch.Tensor, w: torch.Tensor, threshold, padding: int = 1, pool: int = 2) -> torch.Tensor:
    r"""The same block, fused: one band of ``pool`` output rows at a time, conv as shifted 1x1 convolutions,
    binarized at once, then pooled on bits (:func:`binary_pool`). Binary in, binary out; the only integers
    alive are the accumulators of one band, (N, O, pool, OW). Bit-exact with :func:`block_layer_by_layer`.
    """
    padding, pool = _require_block(x, w, threshold, padding, pool)
    h, k = x.shape[2], w.shape[2]
    oh, ow = h + 2 * padding - k + 1, x.shape[3] + 2 * padding - w.shape[3] + 1
    rows = []
    for r0 in range(0, oh - pool + 1, pool):
        first, last = r0 - padding, r0 + pool - 1 - padding + k        # input rows the band needs
        lo, hi = max(first, 0), min(last, h)
        pads = (lo - first, last - hi, padding, padding)
        acc = _tap_sum(x[:, :, lo:hi], w, (1, 1), pads, (pool, ow))     # one band of accumulators
        rows.append(binary_pool(threshold.apply(acc), threshold.flip, pool))
    return torch.cat(rows, dim=2)


# --------------------------------------------------------------------------------------------------------------
# Buffer bits: layer by layer vs block-wise
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One block of a binary CNN for the buffer count: a ``kernel`` x ``kernel`` convolution (stride 1,
    ``padding``) from ``in_channels`` x ``size`` x ``size`` inputs of ``in_bits`` bits to ``out_channels``, then
    (``binarized``) a threshold, then ``pool`` x ``pool`` pooling. A fully connected layer is a block whose kernel
    covers the map (``kernel=size, padding=0``); the last one outputs integer scores (``binarized=False``)."""

    name: str
    in_channels: int
    out_channels: int
    size: int
    kernel: int = 3
    padding: int = 1
    pool: int = 1
    in_bits: int = 1
    binarized: bool = True

    @property
    def conv_size(self) -> int:
        return self.size + 2 * self.padding - self.kernel + 1

    @property
    def out_size(self) -> int:
        return self.conv_size // self.pool


def accumulator_bits(block: Block) -> int:
    r"""Bits of a signed accumulator of the block: :math:`|s| \le C k^2 (2^{b}-1)` for ``in_bits`` :math:`b`
    (:math:`C k^2` for binary inputs), held in :math:`\lceil\log_2(M+1)\rceil + 1` bits
    (:func:`qteach.papers.bn_free_fpga.integer_bias_bits`)."""
    if not isinstance(block, Block):
        raise TypeError(f"block must be a Block, got {type(block).__name__}")
    return integer_bias_bits(block.in_channels * block.kernel ** 2 * (2 ** block.in_bits - 1))


def buffer_bits(block: Block, dataflow: str) -> dict:
    r"""On-chip buffer bits one block needs, by dataflow (our counting model).

    .. math:: B_{\text{in}} = C H^2 b_{\text{in}}, \quad B_{\text{out}} = O H_p^2\, b_{\text{out}}, \quad
        B_{\text{int}}^{\text{layer}} = O\,(H_c^2 + [p > 1]\,H_p^2)\, b_{\text{acc}}, \quad
        B_{\text{int}}^{\text{block}} = O\, p\, H_c\, b_{\text{acc}}

    with :math:`H_c` the conv output size, :math:`H_p = \lfloor H_c / p \rfloor`, :math:`b_{\text{out}} = 1` for
    a binarized block and :math:`b_{\text{acc}}` otherwise. ``"layer"``: the integer conv map and the pooled map
    are stored whole; ``"block"``: only one band of :math:`p` conv rows of accumulators. Returns bits of
    ``input``, ``integers``, ``output`` and ``total``.
    """
    acc = accumulator_bits(block)
    if dataflow not in ("layer", "block"):
        raise ValueError(f"dataflow must be 'layer' or 'block', got {dataflow!r}")
    o, hc, hp, p = block.out_channels, block.conv_size, block.out_size, block.pool
    inputs = block.in_channels * block.size ** 2 * block.in_bits
    outputs = o * hp ** 2 * (1 if block.binarized else acc)
    if dataflow == "layer":
        integers = o * (hc ** 2 + (hp ** 2 if p > 1 else 0)) * acc
    else:
        integers = o * p * hc * acc
    return {"input": inputs, "integers": integers, "output": outputs, "total": inputs + integers + outputs}


def binary_cnn_blocks() -> list:
    """The blocks of :func:`qteach.deploy.binary_cnn` with its defaults (8x8 digits, channels (32, 64))."""
    return [Block("conv1", 1, 32, 8, in_bits=8), Block("conv2 + pool", 32, 64, 8, pool=2),
            Block("fc (scores)", 64, 10, 4, kernel=4, padding=0, binarized=False)]


def binarynet_cifar10_blocks() -> list:
    """BinaryNet's CIFAR-10 network (Courbariaux, Hubara et al., 2016) as blocks: (2 x 128C3)-MP2-(2 x 256C3)-MP2-
    (2 x 512C3)-MP2-(2 x 1024FC)-10FC on 32x32x3 images (8-bit first-layer input), the workload of
    :func:`qteach.papers.gpu_outperforming_fpga_bcnn.binarynet_cifar10`."""
    return [Block("conv1", 3, 128, 32, in_bits=8), Block("conv2 + pool", 128, 128, 32, pool=2),
            Block("conv3", 128, 256, 16), Block("conv4 + pool", 256, 256, 16, pool=2),
            Block("conv5", 256, 512, 8), Block("conv6 + pool", 512, 512, 8, pool=2),
            Block("fc1", 512, 1024, 4, kernel=4, padding=0), Block("fc2", 1024, 1024, 1, kernel=1, padding=0),
            Block("fc3 (scores)", 1024, 10, 1, kernel=1, padding=0, binarized=False)]
