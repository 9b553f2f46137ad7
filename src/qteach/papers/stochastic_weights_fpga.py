r"""Stochastic-weight binary networks on an FPGA: binary weights drawn at inference by an LFSR.

*Stochastic weights binary neural networks on FPGA* (2018; authors and venue not verified) proposes SWBNNs,
"BNNs that behave stochastically". Only the abstract could be read: on CIFAR-10 the gap between training and test
accuracy falls from 6% (BNN) to 2% (SWBNN), and on an FPGA the SWBNN circuits are about 10% larger than the BNN
ones. The abstract does not say how the weights are drawn. **Everything below is our reconstruction**, built from
the standard pieces such a design would use:

- the stochastic binarization of BinaryConnect (eq. 2-3 there; :func:`qteach.papers.binaryconnect.
  binarize_stochastic`): :math:`w_b = +1` with probability :math:`p = \operatorname{clip}((w+1)/2, 0, 1)`;
- in hardware each weight stores its probability as a :math:`k`-bit code
  :math:`c = \operatorname{round}(p\,(2^k - 1))` (:func:`probability_codes`), and a :math:`k`-bit maximal-length
  linear-feedback shift register (LFSR) supplies a pseudo-random :math:`u \in \{1, \dots, 2^k - 1\}` per weight:

  .. math:: w_b = \begin{cases} +1 & u \le c \\ -1 & u > c \end{cases}, \qquad
      P(w_b = +1) = \frac{c}{2^k - 1} \text{ over one period of the LFSR;}

- the layer then is an ordinary XNOR-popcount product with the drawn weights (:func:`stochastic_xnor_layer`).

The Fibonacci LFSR (:func:`lfsr_step`) shifts left and feeds back the XOR of its tap bits; with the taps of
:data:`MAXIMAL_TAPS` it runs through all :math:`2^n - 1` non-zero states, which :func:`lfsr_period` checks by
running it (the taps are not from the paper).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qteach import bitops
from qteach._validate import require_float_tensor, require_int, require_tensor
from qteach.nn import QuantLinear
from qteach.papers import finn_r
from qteach.papers.binaryconnect import BinaryConnect, hard_sigmoid

__all__ = ["MAXIMAL_TAPS", "lfsr_period", "lfsr_sequence", "lfsr_step", "probability_codes", "rng_overhead",
           "sample_weights", "stochastic_xnor_layer", "with_lfsr_weights"]

#: Feedback taps (1-indexed bit positions) of maximal-length Fibonacci LFSRs, as in the commonly published tables
#: (the source table was not re-read for this book); every entry's period is checked by :func:`lfsr_period` in the
#: tests and the notebook, which is what makes them maximal-length, whatever their source.
MAXIMAL_TAPS = {3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5), 10: (10, 7),
                11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1), 14: (14, 5, 3, 1), 15: (15, 14),
                16: (16, 15, 13, 4)}


def _require_register(n: int, taps) -> tuple:
    n = require_int(n, "n", minimum=2, maximum=32)
    if not isinstance(taps, (tuple, list)) or not taps or any(not isinstance(t, int) or not 1 <= t <= n
                                                                  for t in taps):
        raise ValueError(f"taps must be a non-empty tuple of bit positions in 1..{n}, got {taps!r}")
    return n, tuple(taps)


def lfsr_step(state: int, n: int, taps) -> int:
    r"""One step of an :math:`n`-bit Fibonacci LFSR: the feedback bit is the XOR of the tap bits
    :math:`b_{t}` (bit :math:`t` is ``(state >> (t - 1)) & 1``), shifted in at the bottom:

    .. math:: s' = \big((s \ll 1) \,|\, \textstyle\bigoplus_{t \in T} b_t\big) \bmod 2^n
    """
    n, taps = _require_register(n, taps)
    state = require_int(state, "state", minimum=1, maximum=2**n - 1)
    feedback = 0
    for t in taps:
        feedback ^= (state >> (t - 1)) & 1
    return ((state << 1) | feedback) & (2**n - 1)


def lfsr_sequence(seed: int, n: int, taps, length: int) -> torch.Tensor:
    """``length`` successive states after ``seed`` (int64), the pseudo-random numbers the sampler compares."""
    length = require_int(length, "length", minimum=0)
    out, state = [], seed
    for _ in range(length):
        state = lfsr_step(state, n, taps)
        out.append(state)
    return torch.tensor(out, dtype=torch.int64)


def lfsr_period(n: int, taps, seed: int = 1) -> int:
    """Steps until the register returns to ``seed`` (at most :math:`2^n - 1`, reached only by maximal taps)."""
    n, taps = _require_register(n, taps)
    state, steps = lfsr_step(seed, n, taps), 1
    while state != seed:
        state, steps = lfsr_step(state, n, taps), steps + 1
    return steps


def probability_codes(w: torch.Tensor, k: int) -> torch.Tensor:
    r""":math:`k`-bit codes of the probabilities :math:`P(w_b = +1)`: :math:`c = \operatorname{round}\big(
    \operatorname{clip}(\tfrac{w + 1}{2}, 0, 1)\,(2^k - 1)\big)` (int64, 0 to :math:`2^k - 1`)."""
    require_float_tensor(w, "w")
    k = require_int(k, "k", minimum=2, maximum=16)
    return torch.round(hard_sigmoid(w.detach()) * (2**k - 1)).to(torch.int64)


def sample_weights(codes: torch.Tensor, k: int, seed: int = 1) -> tuple:
    r"""One draw of binary weights from their codes with a :math:`k`-bit LFSR: :math:`w_b = +1` iff :math:`u \le c`,
    one LFSR state :math:`u` per weight in row-major order. Returns ``(w_b, last_state)``: :math:`\pm 1` float32
    of the shape of ``codes``, and the state to continue from (pass it as ``seed`` for the next draw)."""
    require_tensor(codes, "codes")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"codes must be an integer tensor, got {codes.dtype}")
    k = require_int(k, "k", minimum=3, maximum=16)
    if bool((codes < 0).any()) or bool((codes > 2**k - 1).any()):
        raise ValueError(f"codes must lie in 0..{2**k - 1}")
    u = lfsr_sequence(seed, k, MAXIMAL_TAPS[k], codes.numel()).reshape(codes.shape)
    w_b = torch.where(u <= codes, 1.0, -1.0)
    return w_b, int(u.flatten()[-1]) if codes.numel() else seed


def stochastic_xnor_layer(x: torch.Tensor, codes: torch.Tensor, k: int, seed: int = 1) -> tuple:
    r"""A binary layer with freshly drawn weights: :math:`y = x\,w_b^\top` computed by XNOR-popcount
    (:func:`qteach.bitops.xnor_matmul`), with :math:`w_b` from :func:`sample_weights`. Returns ``(y, w_b)``."""
    require_float_tensor(x, "x")
    w_b, _ = sample_weights(codes, k, seed)
    return bitops.xnor_matmul(x, w_b), w_b


def with_lfsr_weights(model: nn.Module, k: int, seed: int = 1) -> nn.Module:
    """A copy of ``model`` (eval mode) in which every layer with a :class:`~qteach.papers.binaryconnect.
    BinaryConnect` weight quantizer holds one LFSR draw of its weights (:func:`sample_weights`, the LFSR state
    running on from layer to layer) and no quantizer."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    new, state = copy.deepcopy(model).eval(), seed
    for layer in new.modules():
        if isinstance(layer, QuantLinear) and isinstance(layer.weight_quantizer, BinaryConnect):
            w_b, state = sample_weights(probability_codes(layer.weight, k), k, state)
            with torch.no_grad():
                layer.weight.copy_(w_b)
            layer.weight_quantizer = None
    return new


def rng_overhead(simd: int, pe: int, fan_in: int, k: int) -> dict:
    r"""LUTs and flip-flops that stochastic weights add to a binary PE array, under OUR cost rules (the paper's
    circuit was not readable): one :math:`k`-bit LFSR per lane (:math:`k` flip-flops, its XOR feedback one LUT),
    one :math:`k`-bit comparator per lane (:math:`k` LUTs), and weight memory of :math:`k` bits per weight instead
    of 1. The base is FINN's MVTU cost model at W1A1 (:func:`qteach.papers.finn_r.mvau_luts`)."""
    simd, pe = require_int(simd, "simd", minimum=1), require_int(pe, "pe", minimum=1)
    fan_in, k = require_int(fan_in, "fan_in", minimum=1), require_int(k, "k", minimum=3, maximum=16)
    base = finn_r.mvau_luts(finn_r.Layer("bnn", pe, fan_in), pe, simd)   # simd must divide fan_in
    lanes = pe * simd
    extra_luts = lanes * (1 + k)
    return {"base_luts": base, "extra_luts": extra_luts, "extra_ffs": lanes * k, "lut_overhead": extra_luts / base,
            "weight_bits_factor": k}
