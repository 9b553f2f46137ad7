r"""OrthrusPE: one FPGA DSP block switched at runtime between SIMD binary products and fixed-point arithmetic.

Fasfous, Vemparala, Frickenstein and Stechele observe that modern binary networks need two kinds of arithmetic:
binary convolutions, often with several weight and activation bases, and fixed-point operations (scaling,
shifting, batch normalization, non-binary layers). Their processing element (PE) uses the DSP48 blocks of an
off-the-shelf FPGA for both: in one mode the DSP computes *binary Hadamard products* (bitwise, on a wide packed
word), in the other fixed-point arithmetic. Only the abstract (DATE 2020 proceedings page) could be read for this
book; the bit-level model below is **ours**, a reconstruction consistent with the abstract.

**The slice (external fact).** The widths are those of the Xilinx DSP48E2 (UltraScale), Xilinx UG579: a 27-bit
pre-adder, a 27 x 18 two's-complement multiplier and a 48-bit ALU whose logic unit computes bitwise functions of
two 48-bit operands (:data:`DSP48E2`).

**Binary mode (ours).** :math:`\pm 1` vectors are packed 48 signs per word (bit 1 for -1, as
:func:`qteach.bitops.pack_bits`); one DSP instruction XNORs two words, and the fabric counts the ones,

.. math:: a \cdot w = 2\sum_{j} \operatorname{popcount}\big(\operatorname{XNOR}(a_j, w_j) \wedge m_j\big) - K,

with :math:`m_j` the mask of the valid lanes of word :math:`j` (:func:`simd_binary_matmul`).

**Fixed-point mode (ours).** The same slice computes :math:`P = (D + A)\cdot B + C` modulo :math:`2^{48}`
(:func:`dsp_multiply_add`): the scale :math:`\alpha_m\beta_n` of a base pair, in fixed point, times the binary
dot product, accumulated through :math:`C` (:func:`multibase_layer`).

References:

- N. Fasfous, M.-R. Vemparala, A. Frickenstein, W. Stechele, *OrthrusPE: Runtime Reconfigurable Processing
  Elements for Binary Neural Networks*, DATE 2020, pp. 1662-1667.
- Xilinx, *UltraScale Architecture DSP Slice User Guide* (UG579): the DSP48E2 widths.
"""

from __future__ import annotations

import torch

from qteach import binary
from qteach._validate import require_int, require_integer_tensor, require_tensor
from qteach.papers import abc_net, fp_bnn

__all__ = [
    "DSP48E2",
    "PAPER_HEADLINE",
    "abc_weight_and_activation_bases",
    "dsp_logic",
    "dsp_multiply_add",
    "layer_instructions",
    "multibase_layer",
    "pack_words",
    "pe_luts",
    "simd_binary_matmul",
]

#: Widths of the Xilinx DSP48E2 slice (UG579, an external fact, not from the OrthrusPE paper).
DSP48E2 = {"alu_bits": 48, "mult_a_bits": 27, "mult_b_bits": 18, "preadder_bits": 27}

#: The paper's headline (abstract): common PEs need this much MORE than an OrthrusPE.
PAPER_HEADLINE = {"dynamic_power": 0.67, "luts": 0.39}

_W = DSP48E2["alu_bits"]
_MASK = (1 << _W) - 1
LOGIC_OPS = ("xnor", "xor", "and", "or")


def _require_word(x, name: str) -> torch.Tensor:
    require_integer_tensor(x, name)
    if bool(((x < 0) | (x > _MASK)).any()):
        raise ValueError(f"{name} must hold unsigned 48-bit words (0 <= word < 2**48)")
    return x.to(torch.int64)


def _require_signed(x, name: str, bits: int) -> torch.Tensor:
    require_integer_tensor(x, name)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if bool(((x < lo) | (x > hi)).any()):
        raise ValueError(f"{name} must be {bits}-bit signed integers in [{lo}, {hi}]")
    return x.to(torch.int64)


def dsp_logic(a: torch.Tensor, b: torch.Tensor, op: str = "xnor") -> torch.Tensor:
    r"""The DSP48E2 logic unit on 48-bit words (binary mode): ``op`` of :math:`a` and :math:`b`, bit by bit.

    .. math:: \operatorname{XNOR}(a, b) = \lnot(a \oplus b) \wedge (2^{48} - 1)

    ``a``, ``b``: int64 tensors of unsigned 48-bit words (broadcast); ``op`` one of :data:`LOGIC_OPS`.
    """
    a, b = _require_word(a, "a"), _require_word(b, "b")
    if op not in LOGIC_OPS:
        raise ValueError(f"op must be one of {LOGIC_OPS}, got {op!r}")
    result = {"xnor": lambda: ~(a ^ b), "xor": lambda: a ^ b, "and": lambda: a & b, "or": lambda: a | b}[op]()
    return result & _MASK


def dsp_multiply_add(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor | None = None):
    r"""The DSP48E2 arithmetic path (fixed-point mode): pre-adder, 27 x 18 multiplier, 48-bit adder.

    .. math:: P = \big((D + A) \cdot B + C\big) \bmod 2^{48} \quad \text{(two's complement)}

    ``a``, ``d``: 27-bit signed (their sum must fit 27 bits, the multiplier's port); ``b``: 18-bit signed;
    ``c``: 48-bit signed. Returns the 48-bit signed result as int64 (it wraps, like the hardware).
    """
    a, b = _require_signed(a, "a", 27), _require_signed(b, "b", 18)
    c = _require_signed(c, "c", 48)
    d = torch.zeros_like(a) if d is None else _require_signed(d, "d", 27)
    _require_signed(d + a, "d + a", 27)
    p = ((d + a) * b + c) & _MASK
    return p - ((p >> (_W - 1)) << _W)


def pack_words(x: torch.Tensor) -> torch.Tensor:
    r"""Pack :math:`\operatorname{sign}(x)` along the last dimension, 48 signs per word.

    .. math:: \text{word}_j = \sum_{i=0}^{47} [x_{48j+i} < 0]\, 2^i

    ``x`` (..., K) real gives int64 (..., ceil(K/48)); unused high bits of the last word are 0.
    """
    require_tensor(x, "x")
    if x.dim() < 1 or x.shape[-1] < 1 or x.is_complex() or bool(torch.isnan(x.double()).any()):
        raise ValueError("x must be a real tensor without NaN with at least one value in its last dimension")
    k = x.shape[-1]
    bits = torch.nn.functional.pad((x < 0).to(torch.int64), (0, -k % _W)).unflatten(-1, (-1, _W))
    return (bits << torch.arange(_W)).sum(-1)


def _popcount48(x: torch.Tensor) -> torch.Tensor:
    return sum((x >> i) & 1 for i in range(_W))


def simd_binary_matmul(a: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, int]:
    r"""Binary matrix product :math:`\operatorname{sign}(a)\operatorname{sign}(w)^\top` in binary mode.

    .. math:: C_{ik} = 2\sum_j \operatorname{popcount}\big(\operatorname{XNOR}(a_{ij}, w_{kj}) \wedge m_j\big) - K

    ``a`` (M, K), ``w`` (N, K) real. Each packed word pair is one DSP logic instruction (:func:`dsp_logic`); the
    popcount is in the fabric. Returns ``(int64 (M, N), DSP instructions)``.
    """
    for t, name in ((a, "a"), (w, "w")):
        require_tensor(t, name)
        if t.dim() != 2:
            raise ValueError(f"{name} must be 2-D (rows, K), got shape {tuple(t.shape)}")
    if a.shape[1] != w.shape[1]:
        raise ValueError(f"a and w must have the same K, got {a.shape[1]} and {w.shape[1]}")
    k = a.shape[1]
    pa, pw = pack_words(a), pack_words(w)
    lanes = torch.full((pa.shape[1],), _W, dtype=torch.int64)
    lanes[-1] = k - _W * (pa.shape[1] - 1)
    mask = (1 << lanes) - 1                                   # the valid lanes of each word
    xnor = dsp_logic(pa[:, None, :], pw[None, :, :], "xnor") & mask
    matches = _popcount48(xnor).sum(-1)
    return 2 * matches - k, pa.shape[0] * pw.shape[0] * pa.shape[1]


def multibase_layer(x_bases: torch.Tensor, w_bases: torch.Tensor, scales_q: torch.Tensor):
    r"""A layer with :math:`M` weight and :math:`N` activation bases, run entirely on the DSP model.

    .. math:: y_{ik} = \sum_{m=1}^{M}\sum_{n=1}^{N} s_{mn}\, \big(A_n B_m^\top\big)_{ik},
        \qquad s_{mn} = \operatorname{round}\!\big(2^f \alpha_m \beta_n\big)

    ``x_bases`` (N, rows, K) and ``w_bases`` (M, outputs, K) of :math:`\pm 1`; ``scales_q`` (M, N) 18-bit integers
    (fixed point with :math:`f` fraction bits). Binary mode computes the :math:`MN` dot products
    (:func:`simd_binary_matmul`), fixed-point mode accumulates them through :math:`C` of :func:`dsp_multiply_add`.
    Returns ``(int64 y, binary-mode instructions, fixed-point-mode instructions)``; ``y / 2^f`` is the output.
    """
    for t, name in ((x_bases, "x_bases"), (w_bases, "w_bases")):
        require_tensor(t, name)
        if t.dim() != 3:
            raise ValueError(f"{name} must be 3-D (bases, rows, K), got shape {tuple(t.shape)}")
    scales_q = _require_signed(scales_q, "scales_q", 18)
    if scales_q.shape != (w_bases.shape[0], x_bases.shape[0]):
        raise ValueError(f"scales_q must have shape (M, N) = {(w_bases.shape[0], x_bases.shape[0])}, "
                         f"got {tuple(scales_q.shape)}")
    acc, binary_ops, fixed_ops = 0, 0, 0
    for m in range(w_bases.shape[0]):
        for n in range(x_bases.shape[0]):
            dot, ops = simd_binary_matmul(x_bases[n], w_bases[m])
            acc = dsp_multiply_add(dot, scales_q[m, n].expand_as(dot), acc + torch.zeros_like(dot))
            binary_ops, fixed_ops = binary_ops + ops, fixed_ops + dot.numel()
    return acc, binary_ops, fixed_ops


def layer_instructions(in_channels: int, out_channels: int, kernel: int, out_size: int, weight_bases: int = 1,
                       activation_bases: int = 1, word_bits: int = 48) -> dict:
    r"""DSP instructions of one binary convolution on OrthrusPEs, per mode (our count, not the paper's).

    .. math:: I_{bin} = MN\,C_{out} H W \Big\lceil \frac{C_{in} k^2}{w} \Big\rceil, \qquad
        I_{fix} = MN\,C_{out} H W + C_{out} H W

    One XNOR instruction per packed word pair; one multiply-add per base pair and output (its scale) and one per
    output for batch normalization. Also returns ``binary_ops`` (:math:`MN C_{out}HWC_{in}k^2` XNORs), the
    ``popcount_bits`` the fabric counts, and ``lane_use`` (the share of XNOR lanes that hold a real product).
    """
    c_in, c_out = require_int(in_channels, "in_channels", 1), require_int(out_channels, "out_channels", 1)
    k, size = require_int(kernel, "kernel", 1), require_int(out_size, "out_size", 1)
    m, n = require_int(weight_bases, "weight_bases", 1), require_int(activation_bases, "activation_bases", 1)
    word_bits = require_int(word_bits, "word_bits", 1, _W)
    outputs = c_out * size * size
    words = -(-c_in * k * k // word_bits)
    binary_ops = m * n * outputs * c_in * k * k
    return {"binary_instructions": m * n * outputs * words, "fixed_instructions": m * n * outputs + outputs,
            "binary_ops": binary_ops, "popcount_bits": binary_ops,
            "lane_use": c_in * k * k / (words * word_bits)}


def pe_luts(word_bits: int = 48, fan_in: int = 1152, xnor_in_dsp: bool = True) -> int:
    r"""LUTs of one PE that consumes one ``word_bits``-wide binary word per cycle (our toy model).

    .. math:: \text{LUTs} = \underbrace{\lceil w/2 \rceil}_{\text{XNORs, only if in LUTs}}
        + \text{popcount}(w) + 2\lceil \log_2 (K+1) \rceil

    The rules are FP-BNN's chapter's :data:`qteach.papers.fp_bnn.COST_RULES` (labelled assumptions): two XNORs per
    fracturable LUT, a 6:3-compressor popcount, an accumulator and a comparator. An OrthrusPE does the XNORs in
    its DSP (``xnor_in_dsp=True``); both PEs use a DSP for fixed-point work.
    """
    word_bits = require_int(word_bits, "word_bits", 1)
    fan_in = require_int(fan_in, "fan_in", 1)
    if not isinstance(xnor_in_dsp, bool):
        raise TypeError(f"xnor_in_dsp must be a bool, got {type(xnor_in_dsp).__name__}")
    xnor = 0 if xnor_in_dsp else -(-word_bits // fp_bnn.COST_RULES["xnors_per_lut"])
    tail = fan_in.bit_length() * (fp_bnn.COST_RULES["luts_per_accumulator_bit"]
                                  + fp_bnn.COST_RULES["luts_per_comparator_bit"])
    return xnor + fp_bnn.popcount_cost(word_bits).luts + tail


def abc_weight_and_activation_bases(w: torch.Tensor, x: torch.Tensor, weight_bases: int, activation_bases: int):
    r"""ABC-Net bases for a layer (reusing :mod:`qteach.papers.abc_net`): weight bases :math:`B_m` with scales
    :math:`\alpha_m` (least squares), and activation bases :math:`A_n = H_{v_n}(x)` with the chapter's initial
    shifts and :math:`\beta_n = 1/N` (:func:`~qteach.papers.abc_net.initial_shifts`; no training here).
    Returns ``(B (M, out, K), alpha, A (N, rows, K), beta)``."""
    _, alpha, b = abc_net.approximate(w, weight_bases)
    shifts = abc_net.initial_shifts(activation_bases).to(x.dtype)
    a = torch.stack([abc_net.binary_activation(x, v) for v in shifts])
    return b, alpha, binary.sign(a), torch.full((activation_bases,), 1.0 / activation_bases, dtype=x.dtype)
