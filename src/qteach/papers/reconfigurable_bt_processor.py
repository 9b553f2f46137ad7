r"""A reconfigurable processor for binary- and ternary-weight networks with 1-16-bit activations (Yin et al.).

The paper's processor (28 nm CMOS) runs networks whose weights are binary (BWN, :math:`\pm 1`) or ternary (TWN,
:math:`\{-1, 0, +1\}`) and whose activations have a *flexible* width of 1, 2, 4, 8 or 16 bits. What we could read
is two abstracts: the VLSI Symposium 2018 version (Yin, Ouyang, Yang, Lu, Li, Liu, Wei, DOI
10.1109/VLSIC.2018.8502388) and the 2019 journal version under this chapter's title. The circuits, the
dataflow and the tables of either paper were NOT read. This module therefore holds:

1. **A bit-serial functional model** (:func:`bitserial_bt_matmul`), our reconstruction of *one* way to support
   every activation width with one datapath: the activation is fed bit plane by bit plane, each plane meets the
   weights as two binary planes (:func:`weight_planes`, :math:`w = w^+ - w^-`), and the partial sums are shifted
   and added. The abstracts give the widths, not how they are implemented.
2. **The total-partial identity** (:func:`total_partial_sum`): for :math:`\pm 1` weights the window total
   :math:`T = \sum_i x_i` is shared by all kernels and each kernel adds only its :math:`+1` positions. This is our
   reading of the names "Total-Partial-Pixel-Summation" (VLSI'18) and "feature-integral-based convolution"
   (2019); :func:`accumulations` counts what it saves.
3. **A cost model** (:func:`tops_per_watt`, :func:`layer_energy_nj`, :func:`layer_cycles`) anchored on the one
   energy number per mode the VLSI'18 abstract gives (:data:`PAPER`), with the scaling in the activation width
   an assumption of ours, stated in each docstring.

References:

- S. Yin, P. Ouyang, J. Yang, T. Lu, X. Li, L. Liu, S. Wei, *An Ultra-High Energy-Efficient Reconfigurable
  Processor for Deep Neural Networks with Binary/Ternary Weights in 28NM CMOS*, Symposium on VLSI Circuits 2018.
- *An Energy-Efficient Reconfigurable Processor for Binary- and Ternary-Weight Neural Networks With Flexible
  Data Bit Width*, 2019 (journal version; abstract only).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, bitops
from qteach import nn as qnn
from qteach._validate import require_int, require_module, require_ndim, require_tensor
from qteach.papers import ternary_weight_networks as twn

__all__ = [
    "ACTIVATION_BITS",
    "PAPER",
    "accumulations",
    "bitserial_bt_matmul",
    "bt_mlp",
    "deployed_logits",
    "energy_per_op_fj",
    "layer_codes",
    "layer_cycles",
    "layer_energy_nj",
    "tops_per_watt",
    "total_partial_sum",
    "weight_planes",
]

#: Numbers from the abstracts, the only parts of the papers read for this chapter.
#:
#: - ``peak_tops_per_w``: "at most 95.8 TOPS/W for BWN, and 95.1 TOPS/W for TWN and 765.6 TOPS/W for BNN"
#:   (VLSI'18 abstract, measured); the abstract does not say at which activation width the BWN and TWN figures
#:   were measured.
#: - ``vs_state_of_the_art``: "6.6x higher over state-of-the-art works" (VLSI'18 abstract).
#: - ``technique_gains``: the energy-efficiency gains the 2019 abstract lists for its techniques, as far as the copy
#:   we read goes (it breaks off after the third number).
PAPER = {
    "technology_nm": 28,
    "activation_bits": (1, 2, 4, 8, 16),
    "peak_tops_per_w": {"BWN": 95.8, "TWN": 95.1, "BNN": 765.6},
    "vs_state_of_the_art": 6.6,
    "technique_gains": (2.07, 1.65, 1.25),
}

#: The activation widths the processor supports (both abstracts).
ACTIVATION_BITS = PAPER["activation_bits"]


def _require_bt_weights(w, name: str = "w") -> torch.Tensor:
    require_tensor(w, name)
    require_ndim(w, name, 2)
    if w.is_floating_point() or w.is_complex() or w.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of -1/0/+1 codes, got {w.dtype}")
    if bool(((w != -1) & (w != 0) & (w != 1)).any()):
        raise ValueError(f"{name} must hold only -1, 0 and +1")
    return w.to(torch.int64)


def _require_activation_bits(a_bits) -> int:
    a_bits = require_int(a_bits, "a_bits")
    if a_bits not in ACTIVATION_BITS:
        raise ValueError(f"a_bits must be one of the processor's widths {ACTIVATION_BITS}, got {a_bits}")
    return a_bits


def _require_codes(x, a_bits: int, name: str = "x") -> torch.Tensor:
    require_tensor(x, name)
    require_ndim(x, name, 2)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of activation codes, got {x.dtype}")
    if bool(((x < 0) | (x >= 2**a_bits)).any()):
        raise ValueError(f"{name} must have values in [0, 2**a_bits) = [0, {2**a_bits - 1}]")
    return x.to(torch.int64)


def weight_planes(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Split binary/ternary weight codes into two binary planes, :math:`w = w^+ - w^-`.

    .. math:: w^+_i = [w_i = +1], \qquad w^-_i = [w_i = -1], \qquad w_i = w^+_i - w^-_i

    A binary weight has :math:`w^- = 1 - w^+`; a ternary zero has both planes 0 and is never accumulated. ``w``
    is an integer tensor (N, K) of -1/0/+1; returns two int64 tensors of 0/1.
    """
    w = _require_bt_weights(w)
    return (w == 1).to(torch.int64), (w == -1).to(torch.int64)


def bitserial_bt_matmul(x: torch.Tensor, w: torch.Tensor, a_bits: int) -> torch.Tensor:
    r"""Binary/ternary weights times ``a_bits``-bit activations, one activation bit plane per step (ours).

    With :math:`x = \sum_{i<b} 2^i x_i` (bit planes :math:`x_i \in \{0,1\}`) and :math:`w = w^+ - w^-`,

    .. math:: x \cdot w = \sum_{i=0}^{b-1} 2^i \Big(\operatorname{popcount}(x_i \mathbin{\&} w^+)
        - \operatorname{popcount}(x_i \mathbin{\&} w^-)\Big),

    so a :math:`b`-bit layer is :math:`b` passes of the 1-bit (BNN-like) datapath plus a shift-add. ``x`` (M, K)
    holds integer codes in :math:`[0, 2^b)`, ``w`` (N, K) integer -1/0/+1, ``a_bits`` :math:`= b` one of
    :data:`ACTIVATION_BITS`. Returns int64 (M, N), exactly ``x @ w.T``. A reconstruction: the abstracts give the
    widths, not the circuit.
    """
    a_bits = _require_activation_bits(a_bits)
    x = _require_codes(x, a_bits)
    w_pos, w_neg = weight_planes(w)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must have the same K (dim 1), got {tuple(x.shape)} and {tuple(w.shape)}")
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for i in range(a_bits):                       # one bit plane of the activations per step
        plane = (x >> i) & 1
        partial = bitops.bitserial_matmul(plane, w_pos, 1, 1) - bitops.bitserial_matmul(plane, w_neg, 1, 1)
        acc += partial << i                       # shift and add
    return acc


def total_partial_sum(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""A :math:`\pm 1` dot product from the shared window total and one partial sum per kernel.

    .. math:: \sum_i w_i x_i = 2 \sum_{i:\,w_i=+1} x_i - T, \qquad T = \sum_i x_i,

    where :math:`T` is computed once per input window and shared by all kernels. Our reading of the VLSI'18
    paper's "Total-Partial-Pixel-Summation" (and of the 2019 "feature-integral-based convolution"), from the
    names only. ``x`` (M, K) integer, ``w`` (N, K) of -1/+1 (no zeros); returns int64 (M, N), exactly ``x @ w.T``.
    """
    require_tensor(x, "x")
    require_ndim(x, "x", 2)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"x must be an integer tensor, got {x.dtype}")
    w_pos, w_neg = weight_planes(w)
    if bool(((w_pos + w_neg) == 0).any()):
        raise ValueError("w must be binary (-1/+1): use bitserial_bt_matmul for ternary weights")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must have the same K (dim 1), got {tuple(x.shape)} and {tuple(w.shape)}")
    x = x.to(torch.int64)
    total = x.sum(dim=1, keepdim=True)            # once per window, shared by every kernel
    return 2 * (x @ w_pos.T) - total


def accumulations(w: torch.Tensor, scheme: str) -> int:
    r"""Additions into accumulators for one input window and the N kernels ``w`` (N, K) of -1/0/+1.

    .. math:: \text{dense} = N K, \qquad \text{total-partial} = K + \sum_n p_n + N, \qquad
        \text{zero-skip} = \sum_n \operatorname{nnz}(w_n),

    with :math:`p_n` the +1 count of kernel :math:`n`: ``"dense"`` adds or subtracts every input for every kernel;
    ``"total-partial"`` (binary weights only) adds the window total once, each kernel's +1 inputs, and one
    combine :math:`2P - T` per kernel; ``"zero-skip"`` (ternary) adds only the non-zero weights' inputs. Our
    counting rules, not the paper's (whose operation counts we could not read).
    """
    w = _require_bt_weights(w)
    if scheme not in ("dense", "total-partial", "zero-skip"):
        raise ValueError(f"scheme must be 'dense', 'total-partial' or 'zero-skip', got {scheme!r}")
    n, k = w.shape
    if scheme == "dense":
        return n * k
    if scheme == "zero-skip":
        return int((w != 0).sum())
    if bool((w == 0).any()):
        raise ValueError("scheme 'total-partial' needs binary (-1/+1) weights, w has zeros")
    return k + int((w == 1).sum()) + n


def tops_per_watt(a_bits: int) -> float:
    r"""Energy efficiency at ``a_bits``-bit activations in the bit-serial model, anchored on the paper's BNN figure.

    .. math:: \eta(b) = \frac{\eta_{\text{BNN}}}{b}, \qquad \eta_{\text{BNN}} = 765.6~\text{TOPS/W}

    :math:`\eta_{\text{BNN}}` is the VLSI'18 abstract's measured peak for BNN (1-bit activations); the
    :math:`1/b` scaling (each extra activation bit is one more pass at the BNN cost) is our assumption.
    """
    a_bits = _require_activation_bits(a_bits)
    return PAPER["peak_tops_per_w"]["BNN"] / a_bits


def energy_per_op_fj(a_bits: int) -> float:
    r"""Energy of one operation in femtojoules: :math:`E_{op}(b) = 1000 / \eta(b)` fJ, :math:`\eta` in TOPS/W
    (:func:`tops_per_watt`; 1 TOPS/W is 1 pJ per operation)."""
    return 1000.0 / tops_per_watt(a_bits)


def layer_energy_nj(macs: int, a_bits: int, ops_per_mac: int = 2) -> float:
    r"""Compute energy of a layer of ``macs`` multiply-accumulates in nanojoules:
    :math:`E = \text{MACs} \cdot \text{ops\_per\_mac} \cdot E_{op}(b)`.

    ``ops_per_mac = 2`` (a multiply and an add) is the usual convention of TOPS figures and an assumption here:
    the paper's own operation count was not read. Memory traffic is not included.
    """
    macs = require_int(macs, "macs", minimum=0)
    ops_per_mac = require_int(ops_per_mac, "ops_per_mac", minimum=1)
    return macs * ops_per_mac * energy_per_op_fj(a_bits) / 1e6


def layer_cycles(macs: int, a_bits: int, lanes: int) -> int:
    r"""Cycles of a layer on a bit-serial array of ``lanes`` 1-bit MAC lanes:
    :math:`C = b \cdot \lceil \text{MACs} / \text{lanes} \rceil`.

    The processor's array size and clock were not read: ``lanes`` is the reader's assumption, and only ratios
    between bit widths (:math:`C \propto b`) are meaningful.
    """
    macs = require_int(macs, "macs", minimum=0)
    a_bits = _require_activation_bits(a_bits)
    lanes = require_int(lanes, "lanes", minimum=1)
    return a_bits * math.ceil(macs / lanes)


# --------------------------------------------------------------------------------------------------------------
# A small binary/ternary-weight network and its bit-serial deployment
# --------------------------------------------------------------------------------------------------------------


def bt_mlp(weights: str, in_features: int = 64, hidden: int = 64, classes: int = 10) -> nn.Sequential:
    r"""A two-layer MLP with binary (``"binary"``, BWN-style :math:`\alpha\,\operatorname{sign}(W)`) or ternary
    (``"ternary"``, TWN :math:`\alpha W^t`) weights in both layers and activations clipped to [0, 1] (so that
    any :math:`b`-bit code :math:`\operatorname{round}((2^b-1)\,a)` can be used at deployment)."""
    if weights not in ("binary", "ternary"):
        raise ValueError(f"weights must be 'binary' or 'ternary', got {weights!r}")
    quantizer = twn.BinaryWeightQuantizer if weights == "binary" else twn.TernaryWeightQuantizer
    return nn.Sequential(nn.Flatten(),
                         qnn.QuantLinear(in_features, hidden, weight_quantizer=quantizer()),
                         nn.Hardtanh(0.0, 1.0),
                         qnn.QuantLinear(hidden, classes, weight_quantizer=quantizer()))


def layer_codes(layer: nn.Module) -> tuple[torch.Tensor, float]:
    r"""The integer weight codes (-1/0/+1, int64) and the scale :math:`\alpha` of a :func:`bt_mlp` layer, so that
    its quantized weight is :math:`\alpha \cdot \text{codes}`."""
    require_module(layer, "layer")
    quantizer = getattr(layer, "weight_quantizer", None)
    with torch.no_grad():
        w = layer.weight.detach()
        if isinstance(quantizer, twn.TernaryWeightQuantizer):
            codes, alpha, _ = twn.ternary_weights(w, quantizer.factor, quantizer.per_channel)
        elif isinstance(quantizer, twn.BinaryWeightQuantizer):
            codes, alpha = binary.sign(w), binary.mean_abs_scale(w, per_channel=False)
        else:
            raise TypeError("layer must be a QuantLinear with a Binary- or TernaryWeightQuantizer (see bt_mlp)")
    return codes.to(torch.int64), float(alpha)


def deployed_logits(model: nn.Sequential, x: torch.Tensor, a_bits: int) -> torch.Tensor:
    r"""Run a :func:`bt_mlp` as the processor would: inputs and hidden activations as ``a_bits``-bit codes,
    every layer through :func:`bitserial_bt_matmul`, then one float scale and the bias per layer:

    .. math:: y = \frac{\alpha}{2^b - 1}\,(X W_c^\top) + \text{bias}, \qquad X = \operatorname{round}\big((2^b-1)
        \operatorname{clip}(a, 0, 1)\big)

    Returns float64 logits (M, classes). Equals the float forward pass with DoReFa-quantized activations
    (:func:`qteach.papers.dorefa_net.quantize_activations`) up to float rounding.
    """
    require_module(model, "model")
    a_bits = _require_activation_bits(a_bits)
    require_tensor(x, "x")
    levels = 2**a_bits - 1
    a = x.flatten(1).to(torch.float64)
    layers = [m for m in model if hasattr(m, "weight_quantizer")]
    for index, layer in enumerate(layers):
        codes = torch.round(a.clamp(0.0, 1.0) * levels).to(torch.int64)
        w_codes, alpha = layer_codes(layer)
        y = alpha / levels * bitserial_bt_matmul(codes, w_codes, a_bits).to(torch.float64)
        a = y + layer.bias.detach().to(torch.float64)
        if index < len(layers) - 1:
            a = a.clamp(0.0, 1.0)
    return a
