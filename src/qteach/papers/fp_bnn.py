r"""FP-BNN: popcount hardware, shift-based batch norm and a throughput model (Liang et al., Neurocomputing 2018).

FP-BNN maps binarized networks (MNIST MLP, CIFAR-10 ConvNet, AlexNet) onto a Stratix-V FPGA. Its abstract names the
two bottlenecks it removes: multipliers, "by bit-level XNOR and shifting operations", and parameter access, by
data quantization and on-chip storage; a resource-aware model analysis (RAMA) sizes the design. This module
implements three pieces of that story:

1. **Popcount hardware.** A binary dot product of length :math:`K` is :math:`K - 2\,\operatorname{popcount}(a \oplus
   w)`, so the popcount circuit is the arithmetic core of a BNN accelerator. The textbook circuit is an *adder
   tree*: add bits in pairs, then pairs of 2-bit sums, and so on. A *compressor tree* instead feeds six bits of the
   same weight into a 6:3 compressor, a 64-entry lookup table whose three outputs are the bits of their count:

   .. math:: (s_0, s_1, s_2) = \operatorname{bits}\big(b_0 + b_1 + \dots + b_5\big), \qquad
       \sum_j 2^{j} s_j = \sum_{i=0}^{5} b_i,

   which is exactly three 6-input LUTs. Column by column, stage by stage, the bit matrix shrinks until two rows
   remain, and one carry-propagate adder finishes. We simulate both circuits bit by bit and count their LUTs under
   the cost rules stated in :data:`COST_RULES`.
2. **Shift-based batch normalization.** The scale :math:`\gamma / \sqrt{\sigma^2 + \epsilon}` is rounded to a power
   of two, so the multiplication is a shift: the AP2 operator of Hubara, Courbariaux et al. (BNN, 2016), imported
   from :mod:`qteach.papers.binarized_neural_networks`.
3. **Throughput of a BNN layer**: processing elements (PEs) times SIMD lanes times clock, under a LUT budget.

What we could *not* verify: the paper's own text beyond its abstract. The compressor construction, the exact form
of FP-BNN's shift-based BN, its clock frequency and its resource and throughput tables are not read here; the cost
rules and constants below are labelled assumptions.

References:

- S. Liang, S. Yin, L. Liu, W. Luk, S. Wei, *FP-BNN: Binarized neural network on FPGA*, Neurocomputing 275, 2018.
- I. Hubara, M. Courbariaux, D. Soudry, R. El-Yaniv, Y. Bengio, *Binarized Neural Networks*, NIPS 2016
  (shift-based batch normalization, the AP2 operator).
"""

from __future__ import annotations

import copy
import functools
import math
from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from qteach._validate import require_float_tensor, require_int, require_positive_number, require_tensor
from qteach.papers.binarized_neural_networks import ap2

__all__ = [
    "COST_RULES",
    "compressor_6_3_table",
    "compressor_6_3",
    "PopcountCost",
    "compressor_tree_popcount",
    "adder_tree_popcount",
    "compressor_stage_heights",
    "popcount_cost",
    "ap2",
    "shift_batch_norm",
    "ShiftBatchNorm1d",
    "with_shift_batch_norm",
    "layer_cycles",
    "pe_luts",
    "layer_throughput",
]

#: The LUT cost rules used for every count in this module. They are simple, common FPGA rules of thumb, NOT
#: numbers from the FP-BNN paper (whose resource tables we could not read):
#:
#: - a 6:3 compressor is three 6-input LUTs, one per output bit (two if it has only three inputs, since the top
#:   output is then always 0);
#: - a ``w``-bit carry-propagate adder is ``w`` LUTs plus the FPGA's dedicated carry chain (not counted);
#: - a fracturable 6-input LUT computes two independent XNORs;
#: - a ``w``-bit accumulator is ``w`` LUTs and a ``w``-bit threshold comparator another ``w``.
COST_RULES = {"luts_per_compressor_output": 1, "luts_per_adder_bit": 1, "xnors_per_lut": 2,
              "luts_per_accumulator_bit": 1, "luts_per_comparator_bit": 1}


def compressor_6_3_table() -> torch.Tensor:
    r"""The contents of the three 6-input LUTs of a 6:3 compressor: row :math:`i` is the 3-bit count of the ones of
    :math:`i` (bits :math:`b_0..b_5` of the index), uint8 of shape (64, 3), least significant bit first."""
    index = torch.arange(64)
    count = sum((index >> i) & 1 for i in range(6))
    return torch.stack([(count >> j) & 1 for j in range(3)], dim=-1).to(torch.uint8)


_TABLE = compressor_6_3_table()


def _require_bit_tensor(bits, name: str = "bits") -> None:
    """``bits`` must be an integer or bool tensor of 0/1 values with a last dimension of at least one bit."""
    require_tensor(bits, name)
    if bits.is_floating_point() or bits.is_complex():
        raise TypeError(f"{name} must be an integer or bool tensor of 0/1 values, got {bits.dtype}")
    if bits.dim() < 1 or bits.shape[-1] < 1:
        raise ValueError(f"{name} must have a last dimension of at least one bit, got shape {tuple(bits.shape)}")
    if bits.dtype != torch.bool and bool(((bits != 0) & (bits != 1)).any()):
        raise ValueError(f"{name} must hold only 0 and 1")


def compressor_6_3(bits: torch.Tensor) -> torch.Tensor:
    r"""A 6:3 compressor: six bits of the same weight in, the three bits of their count out (a LUT lookup).

    .. math:: s_0 + 2 s_1 + 4 s_2 = b_0 + b_1 + b_2 + b_3 + b_4 + b_5

    ``bits`` (..., 6) of 0/1; returns uint8 (..., 3), least significant first. The address of the lookup is
    :math:`\sum_i 2^i b_i`, as the six LUT inputs would form it.
    """
    _require_bit_tensor(bits)
    if bits.shape[-1] != 6:
        raise ValueError(f"bits must have 6 bits in its last dimension, got {bits.shape[-1]}")
    b = bits.to(torch.uint8)
    address = sum(b[..., i].to(torch.int64) << i for i in range(6))
    return _TABLE.to(b.device)[address]


@dataclass(frozen=True)
class PopcountCost:
    """Resources of one popcount circuit of ``width`` inputs, under :data:`COST_RULES`.

    ``luts``: total LUTs; ``units``: compressors (compressor tree) or adders (adder tree); ``stages``: compressor
    stages or adder-tree levels; ``final_adder_bits``: width of the compressor tree's final carry-propagate adder.
    """

    design: str
    width: int
    luts: int
    units: int
    stages: int
    final_adder_bits: int = 0


def compressor_tree_popcount(bits: torch.Tensor):
    r"""Popcount of the last dimension through a tree of 6:3 compressors and one final adder, bit by bit.

    Bits are kept in columns by weight :math:`2^w`. Each stage cuts every column of height :math:`h \ge 3` into
    groups of six (a remainder of 3 to 5 bits gets one more compressor; 1 or 2 bits pass through); a compressor
    fed by column :math:`w` sends :math:`s_0, s_1, s_2` to columns :math:`w, w+1, w+2`. When no column holds more than
    two bits, a ripple-carry adder (full adders :math:`s = a \oplus b \oplus c`, :math:`c' = ab + ac + bc`) adds the
    two rows. Returns ``(counts, cost)``: int64 counts of shape ``bits.shape[:-1]`` and a :class:`PopcountCost`.
    """
    _require_bit_tensor(bits)
    b = bits.to(torch.uint8)
    n = b.shape[-1]
    zero = torch.zeros_like(b[..., 0])
    columns = {0: [b[..., i] for i in range(n)]}
    compressors = luts = stages = 0
    while max(len(col) for col in columns.values()) > 2:
        new = defaultdict(list)
        for w in sorted(columns):
            col, i = columns[w], 0
            while len(col) - i >= 3:
                group = col[i:i + 6]
                i += len(group)
                out = compressor_6_3(torch.stack(group + [zero] * (6 - len(group)), dim=-1))
                used = 2 if len(group) == 3 else 3          # three ones at most: s2 is always 0
                for j in range(used):
                    new[w + j].append(out[..., j])
                compressors += 1
                luts += used * COST_RULES["luts_per_compressor_output"]
            new[w].extend(col[i:])
        columns = {w: col for w, col in new.items() if col}
        stages += 1
    top = max(columns)
    doubled = [w for w, col in columns.items() if len(col) == 2]
    adder_bits = top + 1 - min(doubled) if doubled else 0
    counts = torch.zeros(b.shape[:-1], dtype=torch.int64, device=b.device)
    carry = zero
    for w in range(top + 1):
        col = columns.get(w, []) + [zero, zero]
        a, c = col[0], col[1]
        counts += (a ^ c ^ carry).to(torch.int64) << w
        carry = (a & c) | (a & carry) | (c & carry)
    counts += carry.to(torch.int64) << (top + 1)
    luts += adder_bits * COST_RULES["luts_per_adder_bit"]
    return counts, PopcountCost("compressor tree", n, luts, compressors, stages, adder_bits)


def adder_tree_popcount(bits: torch.Tensor):
    r"""Popcount of the last dimension through a binary tree of adders.

    Level 1 adds the bits in pairs (1-bit adders), level 2 adds the 2-bit sums in pairs, and so on; an odd operand
    passes to the next level. An adder costs as many LUTs as its wider operand has bits (:data:`COST_RULES`), so
    the tree costs about :math:`\sum_\ell \ell\,N / 2^\ell \approx 2N` LUTs. Returns ``(counts, cost)``.
    """
    _require_bit_tensor(bits)
    b = bits.to(torch.uint8)
    n = b.shape[-1]
    values = [(b[..., i].to(torch.int64), 1) for i in range(n)]
    adders = luts = levels = 0
    while len(values) > 1:
        nxt = []
        for i in range(0, len(values) - 1, 2):
            (x, mx), (y, my) = values[i], values[i + 1]
            luts += max(mx.bit_length(), my.bit_length()) * COST_RULES["luts_per_adder_bit"]
            adders += 1
            nxt.append((x + y, mx + my))
        if len(values) % 2:
            nxt.append(values[-1])
        values, levels = nxt, levels + 1
    return values[0][0], PopcountCost("adder tree", n, luts, adders, levels)


def compressor_stage_heights(heights: list) -> list:
    r"""Column heights after one stage of 6:3 compression, as :func:`compressor_tree_popcount` groups them.

    ``heights[w]`` is the number of bits of weight :math:`2^w`. A column of height :math:`h` makes
    :math:`\lfloor h/6 \rfloor` full groups and, if the remainder :math:`r` is 3 to 5, one more; each group
    leaves one bit in its own column and one in the next, and groups of four or more a third bit two columns up.
    Trailing empty columns are dropped.
    """
    if not isinstance(heights, (list, tuple)) or not heights:
        raise ValueError("heights must be a non-empty list of column heights")
    heights = [require_int(h, "heights", minimum=0) for h in heights]
    new = [0] * (len(heights) + 2)
    for w, h in enumerate(heights):
        full, rest = divmod(h, 6)
        groups = [6] * full + ([rest] if rest >= 3 else [])
        new[w] += len(groups) + (rest if rest < 3 else 0)
        new[w + 1] += len(groups)
        new[w + 2] += sum(1 for g in groups if g >= 4)
    while len(new) > 1 and new[-1] == 0:
        new.pop()
    return new


def popcount_cost(width: int, design: str = "compressor") -> PopcountCost:
    """Resources of a ``width``-input popcount, ``design`` ``"compressor"`` or ``"adder"`` (the structure does not
    depend on the data, so this runs the simulation once on zeros; results are cached)."""
    width = require_int(width, "width", minimum=1)
    if design not in ("compressor", "adder"):
        raise ValueError(f"design must be 'compressor' or 'adder', got {design!r}")
    return _popcount_cost(width, design)


@functools.lru_cache(maxsize=None)
def _popcount_cost(width: int, design: str) -> PopcountCost:
    zeros = torch.zeros(1, width, dtype=torch.uint8)
    tree = compressor_tree_popcount if design == "compressor" else adder_tree_popcount
    return tree(zeros)[1]


# --------------------------------------------------------------------------------------------------------------
# Shift-based batch normalization
# --------------------------------------------------------------------------------------------------------------

def _require_per_feature(x: torch.Tensor, **tensors) -> None:
    """Each of ``tensors`` must be a float tensor of shape ``(x.shape[-1],)``, one value per feature of ``x``."""
    for name, t in tensors.items():
        require_float_tensor(t, name)
        if t.shape != (x.shape[-1],):
            raise ValueError(f"{name} must have shape ({x.shape[-1]},), got {tuple(t.shape)}")


def shift_batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor,
                     var: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    r"""Batch normalization whose scale is rounded to a power of two (inference form):

    .. math:: \hat y = (x - \mu)\cdot\operatorname{AP2}\!\Big(\frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}\Big) + \beta

    The one multiplication per neuron of BN becomes a shift. ``x`` (N, C); parameters (C,). :func:`ap2` is BNN's
    (:func:`qteach.papers.binarized_neural_networks.ap2`), applied here once to the folded scale; BNN's own
    inference form (:class:`~qteach.papers.binarized_neural_networks.ShiftBatchNorm` in eval mode) rounds
    :math:`\gamma` and :math:`1/\sqrt{\sigma^2+\epsilon}` separately (two shifts), which can land one power of
    two away from rounding their product. FP-BNN's abstract says it removes multipliers with "shifting operations",
    but its exact formula was not verified here.
    """
    require_float_tensor(x, "x")
    _require_per_feature(x, gamma=gamma, beta=beta, mean=mean, var=var)
    require_positive_number(eps, "eps")
    return (x - mean) * ap2(gamma / torch.sqrt(var + eps)) + beta


class ShiftBatchNorm1d(nn.Module):
    """An eval-only replacement of a trained ``BatchNorm1d`` by :func:`shift_batch_norm` with its parameters."""

    def __init__(self, bn: nn.BatchNorm1d):
        super().__init__()
        if not isinstance(bn, nn.BatchNorm1d):
            raise TypeError(f"bn must be a BatchNorm1d, got {type(bn).__name__}")
        if bn.running_mean is None:
            raise ValueError("bn must track running statistics")
        gamma = bn.weight.detach().clone() if bn.affine else torch.ones_like(bn.running_mean)
        beta = bn.bias.detach().clone() if bn.affine else torch.zeros_like(bn.running_mean)
        for name, value in (("gamma", gamma), ("beta", beta), ("mean", bn.running_mean.clone()),
                            ("var", bn.running_var.clone())):
            self.register_buffer(name, value)
        self.eps = bn.eps

    def forward(self, x):
        return shift_batch_norm(x, self.gamma, self.beta, self.mean, self.var, self.eps)


def with_shift_batch_norm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (in eval mode) with every ``BatchNorm1d`` replaced by :class:`ShiftBatchNorm1d`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model).eval()
    for name, module in list(new.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm1d):
                setattr(module, child_name, ShiftBatchNorm1d(child))
    return new


# --------------------------------------------------------------------------------------------------------------
# Throughput of a BNN layer
# --------------------------------------------------------------------------------------------------------------

def layer_cycles(fan_in: int, fan_out: int, pes: int, simd: int) -> int:
    r"""Clock cycles for one input of a binarized fully connected layer on ``pes`` PEs of ``simd`` lanes:

    .. math:: T = \Big\lceil \frac{N_{out}}{P} \Big\rceil \cdot \Big\lceil \frac{K}{S} \Big\rceil

    Each PE owns a neuron at a time and XNOR-popcounts :math:`S` of its :math:`K` inputs per cycle.
    """
    fan_in, fan_out = require_int(fan_in, "fan_in", 1), require_int(fan_out, "fan_out", 1)
    pes, simd = require_int(pes, "pes", 1), require_int(simd, "simd", 1)
    return -(-fan_out // pes) * -(-fan_in // simd)


def pe_luts(simd: int, fan_in: int, design: str = "compressor") -> int:
    r"""LUTs of one PE under :data:`COST_RULES`: :math:`S` XNORs, an :math:`S`-input popcount of the given design,
    and an accumulator plus threshold comparator wide enough for a popcount of :math:`K` (:math:`\lceil\log_2(K+1)
    \rceil` bits each)."""
    simd = require_int(simd, "simd", 1)
    fan_in = require_int(fan_in, "fan_in", 1)
    acc_bits = fan_in.bit_length()
    xnor = -(-simd // COST_RULES["xnors_per_lut"])
    tail = acc_bits * (COST_RULES["luts_per_accumulator_bit"] + COST_RULES["luts_per_comparator_bit"])
    return xnor + popcount_cost(simd, design).luts + tail


def layer_throughput(fan_in: int, fan_out: int, lut_budget: int, simd: int, clock_hz: float,
                     design: str = "compressor") -> dict:
    r"""How fast one binarized layer runs when ``lut_budget`` LUTs are filled with identical PEs.

    .. math:: P = \min\Big(N_{out}, \Big\lfloor \frac{\text{budget}}{\text{LUTs per PE}} \Big\rfloor\Big), \qquad
        \text{inputs/s} = \frac{f}{T}, \qquad \text{GOPS} = \frac{2 K N_{out} f}{T \cdot 10^9}

    (one XNOR and one popcount addition per weight, the usual count of 2 operations per binary MAC). Returns a dict
    with ``pes``, ``luts_per_pe``, ``luts_used``, ``cycles``, ``inputs_per_s`` and ``gops``; ``pes`` is 0 (and the
    rates 0) when one PE does not fit.
    """
    lut_budget = require_int(lut_budget, "lut_budget", 1)
    clock_hz = require_positive_number(clock_hz, "clock_hz")
    fan_out = require_int(fan_out, "fan_out", 1)
    per_pe = pe_luts(simd, fan_in, design)
    pes = min(fan_out, lut_budget // per_pe)
    if pes == 0:
        return {"pes": 0, "luts_per_pe": per_pe, "luts_used": 0, "cycles": math.inf, "inputs_per_s": 0.0,
                "gops": 0.0}
    cycles = layer_cycles(fan_in, fan_out, pes, simd)
    rate = clock_hz / cycles
    return {"pes": pes, "luts_per_pe": per_pe, "luts_used": pes * per_pe, "cycles": cycles, "inputs_per_s": rate,
            "gops": 2 * fan_in * fan_out * rate / 1e9}
