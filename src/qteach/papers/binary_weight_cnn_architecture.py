r"""A binary-weight CNN datapath: add/subtract instead of multiply, compressor trees, approximate adders
(Wang, Lin and Wang, IEEE TVLSI 26(2), 2018).

What we could read: the abstract only (IEEE TVLSI, DOI 10.1109/TVLSI.2017.2767624, via a bohrium page). It names,
for binary-weight CNNs (BCNNs: weights :math:`\pm 1`, activations multi-bit), a processing schedule that minimizes
off-chip I/O, *optimized compressor trees*, *approximate binary multipliers with two compensation schemes*, an
*approximate adder* that exploits the error resilience of BCNNs, algorithmic transformations of some layers and a
memory-efficient quantization; SMIC 130 nm post-layout results give over 2.0 TOp/s/W when scaled to 65 nm, more
than twice the prior art. The circuits themselves are not in the abstract. Everything below is therefore **our
reconstruction**, labelled as such:

1. **The binary-weight multiplier** (ours). With :math:`w \in \{-1, +1\}` a product is :math:`\pm x`. In two's
   complement, :math:`-x = \bar{x} + 1`, so with :math:`s = 1` for :math:`w = -1` (and :math:`0` otherwise)

   .. math:: x \cdot w = (x \oplus \underbrace{s\,s \dots s}_{W}) + s .

   The *approximate* multiplier drops the :math:`+s` (ones' complement, :math:`-x - 1`); the sum of a neuron is
   then short by the number of its negative weights, a constant known offline. Two compensations (ours): add that
   count per output channel (exact), or one rounded constant per layer (approximate, one register).
2. **Accumulation**: a Wallace tree of 3:2 compressors (rows of full adders) reduces the :math:`K` products to two
   rows, and one carry-propagate adder finishes; or, for comparison, a binary tree of :math:`K - 1` adders.
3. **The approximate adder** (a stand-in, not the paper's design): the lower-part-OR adder (LOA) of Mahdiani et
   al. (IEEE TCAS-I 57(4), 2010): the low :math:`k` bits are OR-ed, the upper part is added exactly with a carry-in
   equal to the AND of the two operands' bits :math:`k-1`.
4. **Cost** (ours, structural): full adders, OR gates and the critical path in full-adder delays. The only
   energy figure is the paper's abstract's (:data:`PAPER`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary
from qteach._validate import (
    require_bits,
    require_int,
    require_integer_tensor,
    require_integer_values,
    require_module,
    require_tensor,
)
from qteach.deploy import InputCode

__all__ = [
    "PAPER",
    "ActivationCode",
    "adder_tree",
    "bw_conv2d",
    "bw_forward",
    "bw_matmul",
    "bw_mlp",
    "bw_products",
    "compensation",
    "datapath_cost",
    "energy_per_inference_nj",
    "loa_add",
    "loa_errors",
    "required_width",
    "to_signed",
    "wallace_reduce",
]

#: The abstract's numbers (Wang, Lin, Wang, IEEE TVLSI 2018): SMIC 130 nm post-layout; "over 2.0 TOp/s/W when
#: scaled to 65 nm", "more than two times" the prior art. Nothing else is read from the paper.
PAPER = {"technology_nm": 130, "scaled_to_nm": 65, "tops_per_watt_65nm": 2.0, "times_prior_art": 2.0}

MULTIPLIERS = ("exact", "ones")
COMPENSATIONS = ("none", "channel", "layer")
TREES = ("compressor", "adder")


def _mask(width: int) -> int:
    return (1 << width) - 1


def _require_width(width) -> int:
    return require_int(width, "width", minimum=2, maximum=62)


def required_width(k: int, max_abs: int) -> int:
    r"""Bits of a two's-complement word that holds any sum of ``k`` terms of magnitude at most ``max_abs`` (the
    ones'-complement product :math:`-x - 1` included), plus one guard bit: :math:`\lceil\log_2(k\,(m+1))\rceil + 2`."""
    k = require_int(k, "k", minimum=1)
    max_abs = require_int(max_abs, "max_abs", minimum=0)
    return (k * (max_abs + 1)).bit_length() + 2


def to_signed(u: torch.Tensor, width: int) -> torch.Tensor:
    """Read ``width``-bit two's-complement words (int64 in ``[0, 2**width)``) as signed integers."""
    require_integer_tensor(u, "u")
    width = _require_width(width)
    return torch.where(u >= 1 << (width - 1), u - (1 << width), u)


def _require_operands(x, w, width):
    """``x`` (N, K) integer values that fit ``width`` signed bits, ``w`` (M, K) real weights (their signs)."""
    require_tensor(x, "x")
    require_tensor(w, "w")
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1] or x.shape[1] < 1:
        raise ValueError(f"x (N, K) and w (M, K) must share K >= 1, got {tuple(x.shape)} and {tuple(w.shape)}")
    xi = require_integer_values(x, "x").to(torch.int64)
    if bool(w.isnan().any()):
        raise ValueError("w must not contain NaN")
    if bool((xi.abs() >= 1 << (width - 1)).any()):
        raise ValueError(f"x does not fit {width}-bit two's complement: raise width")
    return xi


def bw_products(x: torch.Tensor, w: torch.Tensor, width: int, multiplier: str = "exact") -> torch.Tensor:
    r"""The products :math:`x_{nk} w_{mk}` as ``width``-bit two's-complement words, shape (N, M, K).

    .. math:: x \cdot w = (x \oplus S) + s, \qquad s = [w < 0],\; S = s \cdot (2^W - 1)

    ``multiplier="exact"`` adds :math:`s` (two's-complement negation); ``"ones"`` drops it (ones' complement,
    :math:`-x - 1` for :math:`w = -1`), the approximate multiplier of our reconstruction. ``w`` is binarized
    with sign(0) = +1.
    """
    width = _require_width(width)
    xi = _require_operands(x, w, width)
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}, got {multiplier!r}")
    s = (w < 0).to(torch.int64)[None, :, :]                       # 1 where the weight is -1
    words = (xi[:, None, :] & _mask(width)) ^ (s * _mask(width))  # x, or its bitwise complement
    if multiplier == "exact":
        words = (words + s) & _mask(width)                        # the +1 that completes -x
    return words


def compensation(w: torch.Tensor, scheme: str) -> torch.Tensor:
    r"""The constant added to each output of the ones'-complement datapath, shape (M,) int64 (ours).

    .. math:: c_m = \sum_k [w_{mk} < 0] \;\text{("channel", exact)}, \qquad
        c_m = \Big\lfloor \tfrac{1}{M}\textstyle\sum_{m'} c_{m'} + \tfrac12 \Big\rfloor \;\text{("layer")},
        \qquad c_m = 0 \;\text{("none")}
    """
    require_tensor(w, "w")
    if w.dim() != 2:
        raise ValueError(f"w must have shape (M, K), got {tuple(w.shape)}")
    if scheme not in COMPENSATIONS:
        raise ValueError(f"scheme must be one of {COMPENSATIONS}, got {scheme!r}")
    negatives = (w < 0).sum(dim=1).to(torch.int64)
    if scheme == "channel":
        return negatives
    if scheme == "layer":
        return torch.full_like(negatives, math.floor(negatives.double().mean().item() + 0.5))
    return torch.zeros_like(negatives)


def loa_add(a: torch.Tensor, b: torch.Tensor, k: int, width: int) -> torch.Tensor:
    r"""Lower-part-OR adder (Mahdiani et al. 2010), a stand-in for the paper's approximate adder.

    .. math:: s_{[k-1:0]} = a_{[k-1:0]} \lor b_{[k-1:0]}, \qquad
        s_{[W-1:k]} = a_{[W-1:k]} + b_{[W-1:k]} + (a_{k-1} \land b_{k-1}) \pmod{2^{W-k}}

    ``a``, ``b``: int64 words in :math:`[0, 2^W)`; ``k = 0`` is the exact adder. Returns words mod :math:`2^W`.
    """
    width = _require_width(width)
    k = require_int(k, "k", minimum=0, maximum=width)
    for name, t in (("a", a), ("b", b)):
        require_integer_tensor(t, name)
        if bool(((t < 0) | (t > _mask(width))).any()):
            raise ValueError(f"{name} must hold {width}-bit words in [0, 2**{width})")
    if k == 0:
        return (a + b) & _mask(width)
    lower = (a | b) & _mask(k)                                   # k OR gates, no carries
    carry = (a >> (k - 1)) & (b >> (k - 1)) & 1                  # one AND gate
    upper = ((a >> k) + (b >> k) + carry) << k                   # exact (W - k)-bit adder
    return (upper | lower) & _mask(width)


def wallace_reduce(words: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Reduce the last dimension (K operands) to two rows with 3:2 compressors (Wallace tree, carry-save).

    .. math:: \text{sum} = a \oplus b \oplus c, \qquad \text{carry} = (ab \lor ac \lor bc) \ll 1,
        \qquad \text{sum} + \text{carry} \equiv a + b + c \pmod{2^W}

    Each 3:2 compressor is a row of :math:`W` full adders and turns three operands into two.
    """
    width = _require_width(width)
    require_integer_tensor(words, "words")
    if words.dim() < 1 or words.shape[-1] < 1:
        raise ValueError("words must have at least one operand in its last dimension")
    ops = words
    while ops.shape[-1] > 2:
        n = ops.shape[-1] // 3
        a, b, c = ops[..., 0:3 * n:3], ops[..., 1:3 * n:3], ops[..., 2:3 * n:3]
        carry = (((a & b) | (a & c) | (b & c)) << 1) & _mask(width)
        ops = torch.cat([a ^ b ^ c, carry, ops[..., 3 * n:]], dim=-1)
    if ops.shape[-1] == 1:
        ops = torch.cat([ops, torch.zeros_like(ops)], dim=-1)
    return ops[..., 0], ops[..., 1]


def adder_tree(words: torch.Tensor, width: int, k: int = 0) -> torch.Tensor:
    r"""Sum the last dimension with a binary tree of :math:`K - 1` two-input adders, each a :func:`loa_add` with
    ``k`` approximate bits (``k = 0``: exact). An odd operand passes to the next level."""
    width = _require_width(width)
    require_integer_tensor(words, "words")
    if words.dim() < 1 or words.shape[-1] < 1:
        raise ValueError("words must have at least one operand in its last dimension")
    ops = words
    while ops.shape[-1] > 1:
        n = ops.shape[-1] // 2
        pairs = loa_add(ops[..., 0:2 * n:2], ops[..., 1:2 * n:2], k, width)
        ops = torch.cat([pairs, ops[..., 2 * n:]], dim=-1)
    return ops[..., 0]


def bw_matmul(x: torch.Tensor, w: torch.Tensor, width: int | None = None, multiplier: str = "exact",
              scheme: str = "none", k: int = 0, tree: str = "compressor") -> torch.Tensor:
    r"""The binary-weight layer's integer sums :math:`y_{nm} = \sum_k x_{nk} w_{mk}` through the datapath model,
    int64 (N, M).

    ``multiplier`` and ``scheme``: :func:`bw_products`, :func:`compensation`; ``tree="compressor"``: a Wallace
    tree then one adder with ``k`` approximate bits; ``tree="adder"``: :func:`adder_tree` (every adder
    approximate). With the defaults (or ``"ones"`` with ``"channel"``), the result equals ``x @ sign(w).T``.
    ``width`` defaults to :func:`required_width` of the data.
    """
    require_tensor(x, "x")
    if width is None:
        xi = require_integer_values(x, "x").to(torch.int64)
        width = required_width(x.shape[-1], int(xi.abs().max()) if xi.numel() else 0)
    if tree not in TREES:
        raise ValueError(f"tree must be one of {TREES}, got {tree!r}")
    require_int(k, "k", minimum=0, maximum=width)
    words = bw_products(x, w, width, multiplier)
    if tree == "compressor":
        total = loa_add(*wallace_reduce(words, width), k, width)
    else:
        total = adder_tree(words, width, k)
    return to_signed((total + compensation(w, scheme)) & _mask(width), width)


def bw_conv2d(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding: int = 0, **datapath) -> torch.Tensor:
    r"""A binary-weight convolution through :func:`bw_matmul` (zero padding, im2col), int64 (N, M, H', W').

    .. math:: y_{n,m,i,j} = \sum_{c,u,v} x_{n,c,i s+u-p,\,j s+v-p}\; \operatorname{sign}(w_{m,c,u,v})

    ``datapath``: the keyword arguments of :func:`bw_matmul`.
    """
    require_tensor(x, "x")
    require_tensor(w, "w")
    if x.dim() != 4 or w.dim() != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x (N, C, H, W) and w (M, C, kh, kw) must share C, got {tuple(x.shape)}, "
                         f"{tuple(w.shape)}")
    stride = require_int(stride, "stride", minimum=1)
    padding = require_int(padding, "padding", minimum=0)
    xi = require_integer_values(x, "x").to(torch.float64)          # integers below 2**53 unfold exactly
    cols = F.unfold(xi, w.shape[2:], padding=padding, stride=stride)   # (N, C*kh*kw, L)
    n, kk, positions = cols.shape
    out_h = (x.shape[2] + 2 * padding - w.shape[2]) // stride + 1
    y = bw_matmul(cols.transpose(1, 2).reshape(n * positions, kk).to(torch.int64), w.reshape(w.shape[0], -1),
                  **datapath)
    return y.reshape(n, positions, -1).transpose(1, 2).reshape(n, -1, out_h, positions // out_h)


def loa_errors(k: int) -> torch.Tensor:
    r"""Error :math:`(a + b) - \operatorname{LOA}_k(a, b)` for every pair of low parts, int64 (:math:`2^k`,
    :math:`2^k`). The error depends only on the low :math:`k` bits, so this table is exact for every width and
    every operand distribution that is uniform on the low bits.

    .. math:: e = \sum_{i<k-1} 2^i a_i b_i - 2^{k-1} a_{k-1} b_{k-1}, \qquad
        \mathbb{E}[e] = -\tfrac14 \;(k \ge 1)
    """
    k = require_int(k, "k", minimum=0, maximum=12)
    v = torch.arange(1 << k, dtype=torch.int64)
    a, b = v[:, None].expand(-1, 1 << k), v[None, :].expand(1 << k, -1)
    return (a + b) - loa_add(a, b, k, k + 2)


def datapath_cost(operands: int, width: int, k: int = 0, tree: str = "compressor") -> dict:
    r"""Structural cost of summing ``operands`` words of ``width`` bits (ours: a unit-gate count, no energies).

    Compressor tree: :math:`(K - 2)\,W` full adders in the 3:2 stages (each removes one operand), then one adder
    of :math:`W - k` full adders and :math:`k` OR gates; the critical path is the number of 3:2 stages plus the
    adder's carry chain, :math:`W - k` full-adder delays. Adder tree: :math:`K - 1` adders, each :math:`W - k`
    full adders and :math:`k` ORs; critical path :math:`\lceil \log_2 K \rceil` carry chains. Returns a dict with
    ``full_adders``, ``or_gates``, ``stages`` and ``critical_path`` (in full-adder delays).
    """
    operands = require_int(operands, "operands", minimum=1)
    width = _require_width(width)
    k = require_int(k, "k", minimum=0, maximum=width)
    if tree not in TREES:
        raise ValueError(f"tree must be one of {TREES}, got {tree!r}")
    if tree == "adder":
        levels = (operands - 1).bit_length()
        return {"full_adders": (operands - 1) * (width - k), "or_gates": (operands - 1) * k, "stages": levels,
                "critical_path": levels * (width - k)}
    stages, n = 0, operands
    while n > 2:
        n, stages = n - n // 3, stages + 1
    return {"full_adders": max(operands - 2, 0) * width + (width - k), "or_gates": k, "stages": stages,
            "critical_path": stages + width - k}


def energy_per_inference_nj(macs: int, tops_per_watt: float = PAPER["tops_per_watt_65nm"],
                            ops_per_mac: int = 2) -> float:
    r"""Energy of ``macs`` multiply-accumulates at an efficiency of ``tops_per_watt``, in nJ:
    :math:`E = \text{ops} / (\text{TOp/s/W} \cdot 10^{12})`. Two operations per MAC is the usual count (our
    assumption for this paper)."""
    macs = require_int(macs, "macs", minimum=0)
    ops_per_mac = require_int(ops_per_mac, "ops_per_mac", minimum=1)
    if isinstance(tops_per_watt, bool) or not isinstance(tops_per_watt, (int, float)) or not tops_per_watt > 0:
        raise ValueError(f"tops_per_watt must be a positive number, got {tops_per_watt!r}")
    return macs * ops_per_mac / (tops_per_watt * 1e12) * 1e9


# --------------------------------------------------------------------------------------------------------------
# A small binary-weight network with integer activations, and its inference through the datapath
# --------------------------------------------------------------------------------------------------------------

class ActivationCode(nn.Module):
    r"""Hidden activations as ``bits``-bit unsigned integers, :math:`q = \operatorname{round}((2^b - 1)
    \operatorname{clip}(x, 0, 1))`, with the straight-through estimator (gradient of the clipped ramp)."""

    def __init__(self, bits: int = 8):
        super().__init__()
        self.precision = require_bits(bits)

    def forward(self, x):
        ramp = x.clamp(0, 1) * (2**self.precision - 1)
        with torch.no_grad():
            codes = torch.round(ramp)
        return binary.straight_through(ramp, codes)


def bw_mlp(hidden: int = 64, input_bits: int = 8, act_bits: int = 8, seed: int = 0) -> nn.Sequential:
    """64 integer pixels -> binary-weight layer -> BN -> integer codes -> binary-weight layer -> BN (10 scores)."""
    from qteach import nn as qnn

    hidden = require_int(hidden, "hidden", minimum=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        return nn.Sequential(
            qnn.QuantLinear(64, hidden, bias=False, weight_quantizer=qnn.SignQuantizer(),
                            input_quantizer=InputCode(input_bits)), nn.BatchNorm1d(hidden), ActivationCode(act_bits),
            qnn.QuantLinear(hidden, 10, bias=False, weight_quantizer=qnn.SignQuantizer()), nn.BatchNorm1d(10))


@torch.no_grad()
def bw_forward(model: nn.Sequential, x: torch.Tensor, **datapath) -> torch.Tensor:
    """The scores of a :func:`bw_mlp` (eval mode) with both layers' sums computed by :func:`bw_matmul`
    (``datapath``: its keyword arguments). With the exact datapath they equal ``model(x)`` bit for bit."""
    require_module(model)
    require_tensor(x, "x")
    if len(model) != 5 or not isinstance(model[2], ActivationCode):
        raise ValueError("model must be a bw_mlp(...) network")
    model.eval()
    h = model[0].input_quantizer(x)
    for linear, after in ((model[0], (model[1], model[2])), (model[3], (model[4],))):
        h = bw_matmul(h, binary.sign(linear.weight), **datapath).to(torch.float32)
        for module in after:
            h = module(h)
    return h
