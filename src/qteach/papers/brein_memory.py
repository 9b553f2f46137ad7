r"""BRein Memory: binary/ternary neurons computed inside memory arrays (Ando et al., JSSC 2018).

BRein Memory is a 65 nm CMOS chip that stores a whole binary or ternary deep neural network on chip (at most 13
layers, 4.2 K neurons and 0.8 M synapses) and computes it with massively parallel processing inside its memory
arrays, reaching 1.4 TOPS at 0.6 W. What we could read is the **abstract of the VLSI Symposium 2017 conference
version** (doi 10.23919/VLSIC.2017.8008533) and the JSSC title; the circuits of the chip were not read.

This module implements, as *our reconstruction* of a generic digital in-memory scheme (not BRein's verified
circuit):

1. an in-memory accumulate: a neuron's weights are one memory row, two bits per ternary weight (a non-zero bit
   and a sign bit); reading the row, the sense amplifiers deliver the bits to the column periphery, where each
   column XNORs its weight's sign with the input's sign, gates the result with both non-zero bits, and a counter
   adds :math:`+1` for agreeing and :math:`-1` for disagreeing non-zero pairs. Binary weights and inputs are the
   case where every non-zero bit is 1. The result equals the integer dot product exactly.
2. a sense-amplifier comparator for the neuron's output, :math:`y = +1` iff :math:`s + o \ge \tau`, where the
   offset :math:`o` models the comparator's input offset (an **assumption** for exploring robustness; with
   :math:`o = 0` the output is exact).
3. the chip's efficiency arithmetic from the abstract: TOPS/W and fJ per operation.

References:

- K. Ando, K. Ueyoshi, K. Orimo, H. Yonekawa, S. Sato, H. Nakahara, et al., *BRein Memory: A Single-Chip
  Binary/Ternary Reconfigurable in-Memory Deep Neural Network Accelerator Achieving 1.4 TOPS at 0.6 W*, IEEE JSSC
  53(4), 2018; conference version: *BRein memory: A 13-layer 4.2 K neuron/0.8 M synapse binary/ternary
  reconfigurable in-memory deep neural network accelerator in 65 nm CMOS*, Symposium on VLSI Circuits 2017.
"""

from __future__ import annotations

import torch

from qteach._validate import (
    require_float_tensor,
    require_int,
    require_integer_values,
    require_no_nan,
    require_positive_number,
)

__all__ = ["CHIP", "chip_efficiency", "in_memory_accumulate", "on_chip_weight_bits", "sense_amplifier",
           "ternary_bits"]

#: The chip's figures from the abstract (VLSI 2017 version; TOPS and W also in the JSSC title).
CHIP = {"technology_nm": 65, "tops": 1.4, "watts": 0.6, "max_layers": 13, "neurons": 4_200, "synapses": 800_000}


def ternary_bits(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The two stored bits of ternary values :math:`t \in \{-1, 0, +1\}`: ``(nonzero, positive)``.

    .. math:: t = n\,(2p - 1), \qquad n = [t \ne 0],\; p = [t > 0]

    A binary value :math:`\pm 1` has :math:`n = 1`. Any other value raises ``ValueError``.
    """
    require_float_tensor(t, "t")
    if not bool(((t == -1) | (t == 0) | (t == 1)).all()):
        raise ValueError("t must hold -1, 0 and +1 only")
    return t != 0, t > 0


def in_memory_accumulate(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""The dot products of ternary (or binary) inputs ``x`` (N, K) with weight rows ``w`` (M, K), as the column
    periphery of a memory array computes them: XNOR of the sign bits, gated by both non-zero bits, counted.

    .. math:: s_{nm} = \sum_k n^x_{k} n^w_{mk}\,\big(2\,\operatorname{xnor}(p^x_{k}, p^w_{mk}) - 1\big)
        = 2\,\operatorname{popcount}(g \wedge \operatorname{xnor}) - \operatorname{popcount}(g),
        \quad g = n^x \wedge n^w

    Returns int64 (N, M), equal to ``x @ w.T``. Our reconstruction (module docstring), after Ando et al., 2018.
    """
    require_float_tensor(x, "x")
    require_float_tensor(w, "w")
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x and w must be (N, K) and (M, K), got {tuple(x.shape)} and {tuple(w.shape)}")
    nx, px = ternary_bits(x)
    nw, pw = ternary_bits(w)
    gate = nx[:, None, :] & nw[None, :, :]                 # both operands non-zero: the column takes part
    agree = px[:, None, :] == pw[None, :, :]               # XNOR of the sign bits at the sense amplifiers
    return 2 * (gate & agree).sum(-1) - gate.sum(-1)       # +1 per agreement, -1 per disagreement


def sense_amplifier(s: torch.Tensor, tau: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    r"""The neuron's binary output from its accumulator, through a comparator with input offset ``offset``.

    .. math:: y = \begin{cases} +1 & s + o \ge \tau \\ -1 & \text{otherwise} \end{cases}

    ``s`` (N, M) integer values, ``tau`` (M,) thresholds, ``offset`` broadcastable to ``s`` (None: an ideal,
    exact comparator). The offset is a modelling assumption, not a figure of the paper. Returns float32 ±1.
    """
    require_integer_values(s, "s")
    require_integer_values(tau, "tau")
    if s.dim() != 2 or tau.dim() != 1 or tau.numel() != s.shape[1]:
        raise ValueError(f"s must be (N, M) and tau (M,), got {tuple(s.shape)} and {tuple(tau.shape)}")
    if offset is not None:
        require_float_tensor(offset, "offset")
        require_no_nan(offset, "offset")
    value = s.double() + (0.0 if offset is None else offset.double())
    return torch.where(value >= tau.double(), 1.0, -1.0).float()


def chip_efficiency(tops: float, watts: float) -> tuple[float, float]:
    r"""``(TOPS/W, fJ per operation)`` of a chip doing ``tops`` tera-operations per second at ``watts``:
    :math:`\eta = \text{TOPS}/P`, :math:`E_\text{op} = P / (\text{TOPS}\cdot 10^{12}) \cdot 10^{15}` fJ."""
    tops = require_positive_number(tops, "tops")
    watts = require_positive_number(watts, "watts")
    return tops / watts, watts / (tops * 1e12) * 1e15


def on_chip_weight_bits(synapses: int, ternary: bool) -> int:
    """Bits to store ``synapses`` weights: one per binary weight, two per ternary one (non-zero and sign)."""
    synapses = require_int(synapses, "synapses", minimum=0)
    if not isinstance(ternary, bool):
        raise TypeError(f"ternary must be a bool, got {type(ternary).__name__}")
    return synapses * (2 if ternary else 1)
