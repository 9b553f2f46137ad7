r"""A binary layer computed inside DRAM: bulk XNOR by row activations and an in-DRAM popcount (2020).

H. Choi, Y. Lee, J.-J. Kim, S. Yoo, *A Novel In-DRAM Accelerator Architecture for Binary Neural Network*, IEEE
COOL CHIPS 2020, DOI 10.1109/COOLCHIPS49199.2020.9097642.

**What could be read.** The abstract only (:data:`PAPER_ABSTRACT`): a new charge-sharing circuit in each DRAM
sub-array performs all logic operations *and the accumulation* inside the sub-array (1.22% area); keeping the
accumulation in DRAM cuts off-chip accesses; on VGG-9 / CIFAR-10 on DDR4 it reports 2.56x lower latency per image
and 19.57x lower off-chip transfer energy than modified Ambit and DRISA, at 0.23% accuracy loss. The circuit, its
command sequence, its data layout and its constants were not read.

**Our reconstruction (labels (D1)-(D4) are ours).** It uses the primitives of Ambit (Seshadri et al., MICRO 2017),
the in-DRAM scheme the paper compares against:

* (D1) *Row commands.* ``AAP(a, b)``: ACTIVATE row a, ACTIVATE row b, PRECHARGE, which copies row a into row b
  across every column of the sub-array (RowClone). A *triple-row activation* (TRA) of the designated rows T0, T1,
  T2 leaves :math:`\mathrm{MAJ}(T_0, T_1, T_2)` in all three; ``AAP(TRA, d)`` also copies the result to row d. So
  :math:`\mathrm{MAJ}(a, b, c)` costs 4 AAPs (three copies into T0-T2, one TRA + copy out), AND is
  :math:`\mathrm{MAJ}(a, b, 0)` and OR :math:`\mathrm{MAJ}(a, b, 1)` with a constant row, and NOT is 2 AAPs through
  a dual-contact cell (DCC). Our counts, in Ambit's style, not the paper's circuit.
* (D2) *Layout (ours).* One column per output pair :math:`(n, m)`; the :math:`K` bits of :math:`x_n` and of
  :math:`w_m` are stored vertically, one row per bit (bit-serial over rows). Then
  :math:`e_k = \mathrm{XNOR}(x_{nk}, w_{mk}) = (x \wedge w) \vee (\bar x \wedge \bar w)` is 3 MAJ + 2 NOT.
* (D3) *In-DRAM accumulation (ours).* A vertical counter of :math:`B = \lfloor \log_2 K \rfloor + 1` rows adds each
  :math:`e_k` with a ripple of half adders, :math:`c' = s \wedge c`, :math:`s' = (s \vee c) \wedge \overline{c'}`,
  touching only the bits the count can have reached after :math:`k` steps. The host then reads :math:`B` bits per
  output instead of :math:`K`, and :math:`y = 2\,\mathrm{popcount} - K`.
* (D4) *Error model (ours).* Each TRA result flips independently in each column with rate ``tra_error`` (Ambit
  studies TRA failures under process variation; the paper's error data were not read). Copies and NOT are exact.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from qteach import hw
from qteach import nn as qnn
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_module,
    require_non_negative_number,
)

__all__ = [
    "ASSUMED_DRAM",
    "PAPER_ABSTRACT",
    "RowCounter",
    "accuracy_under_errors",
    "counter_bits",
    "dram_forward",
    "dram_popcount",
    "layer_cost",
    "maj",
    "xnor_rows",
]

#: The abstract's numbers (VGG-9 on CIFAR-10, DDR4, vs modified Ambit and DRISA).
PAPER_ABSTRACT = {"area_overhead": 0.0122, "latency_speedup": 2.56, "offchip_energy_reduction": 19.57,
                  "accuracy_loss": 0.0023}

#: DRAM constants of our cost model. ALL are assumptions, not the paper's: a DDR4-like sub-array row of 8 KiB
#: (65,536 columns), ACTIVATE + PRECHARGE timing of about 49 ns per AAP (tRAS 35 ns + tRP 14 ns, typical DDR4
#: values), 1 nJ per row activation (order of magnitude), a 64-bit DDR4-2400 channel (19.2 GB/s). Off-chip energy
#: per bit comes from :data:`qteach.hw.MEMORY_PJ_PER_64BIT_45NM` (Horowitz 2014).
ASSUMED_DRAM = {"columns": 65536, "aap_ns": 49.0, "activation_nj": 1.0, "channel_bytes_per_s": 19.2e9}

#: AAPs per operation under (D1)-(D3).
AAP_PER = {"maj": 4, "not": 2}


class RowCounter:
    """Counts the row commands of a sub-array run and draws the TRA failures of (D4)."""

    def __init__(self, tra_error: float = 0.0, generator: torch.Generator | None = None):
        self.tra_error = require_non_negative_number(tra_error, "tra_error")
        if self.tra_error > 1:
            raise ValueError(f"tra_error must be a probability in [0, 1], got {tra_error}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator, self.aap, self.tra = generator, 0, 0
        self._next, self._failures = 0, np.empty(0, dtype=np.int64)   # the Bernoulli stream of (D4)

    def failures(self, size: int) -> torch.Tensor:
        """Which of the next ``size`` TRA outputs fail: independent Bernoulli(``tra_error``) draws, sampled as
        geometric gaps between failures (exact, and cheap when failures are rare)."""
        end = self._next + size
        while self._failures.size == 0 or self._failures[-1] < end:
            last = self._failures[-1] if self._failures.size else self._next - 1
            gaps = torch.empty(int(self.tra_error * size * 16) + 64, dtype=torch.float64)
            gaps = gaps.geometric_(self.tra_error, generator=self.generator).long().numpy()
            self._failures = np.concatenate([self._failures, last + np.cumsum(gaps)])
        cut = int(np.searchsorted(self._failures, end))
        hits, self._failures = self._failures[:cut] - self._next, self._failures[cut:]
        self._next = end
        return torch.from_numpy(hits)


def maj(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, ctr: RowCounter) -> torch.Tensor:
    r"""One triple-row activation (D1): :math:`\mathrm{MAJ}(a, b, c) = ab + bc + ca` in every column, 4 AAPs,
    each column's result flipped independently with rate ``ctr.tra_error`` (D4). Rows: bool tensors of one shape."""
    out = (a & b) | (c & (a | b))
    ctr.aap, ctr.tra = ctr.aap + AAP_PER["maj"], ctr.tra + 1
    if ctr.tra_error > 0:
        out = out.flatten()                                           # out is new: the operands stay as they are
        hits = ctr.failures(out.numel())
        if hits.numel():
            out[hits] = ~out[hits]
        out = out.view(a.shape)
    return out


def _not(a: torch.Tensor, ctr: RowCounter) -> torch.Tensor:
    ctr.aap += AAP_PER["not"]                                     # through a dual-contact cell
    return ~a


def _constant_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(x.shape, dtype=torch.bool), torch.ones(x.shape, dtype=torch.bool)


def xnor_rows(x: torch.Tensor, w: torch.Tensor, ctr: RowCounter) -> torch.Tensor:
    r"""Bulk XNOR of two rows (D2): :math:`(x \wedge w) \vee (\bar x \wedge \bar w)`, 3 TRAs + 2 NOTs = 16 AAPs."""
    if not isinstance(ctr, RowCounter):
        raise TypeError(f"ctr must be a RowCounter, got {type(ctr).__name__}")
    zero, one = _constant_rows(x)                                 # the constant rows C0 and C1
    both = maj(x, w, zero, ctr)
    neither = maj(_not(x, ctr), _not(w, ctr), zero, ctr)
    return maj(both, neither, one, ctr)


def counter_bits(k: int) -> int:
    r"""Rows of the vertical counter for a popcount of ``k`` bits: :math:`B = \lfloor\log_2 k\rfloor + 1`."""
    return require_int(k, "k", minimum=1).bit_length()


def _require_bits(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.bool or t.dim() != 2:
        raise TypeError(f"{name} must be a 2-D bool tensor (the bits, True for +1)")
    return t


def dram_popcount(x_bits: torch.Tensor, w_bits: torch.Tensor, ctr: RowCounter,
                  accumulate: str = "dram") -> torch.Tensor:
    r"""Popcounts (N, M) int64 of XNOR(``x_bits`` (N, K), ``w_bits`` (M, K)) by row operations (D2)-(D3).

    ``accumulate="dram"``: a vertical counter of half adders (:math:`c' = s \wedge c`, :math:`s' = (s \vee c)
    \wedge \overline{c'}`) in DRAM; ``"host"``: every XNOR row is read out and added on the host (Ambit-style).
    The XNOR-popcount product is :math:`2\,\mathrm{popcount} - K`.
    """
    _require_bits(x_bits, "x_bits"), _require_bits(w_bits, "w_bits")
    if x_bits.shape[1] != w_bits.shape[1] or x_bits.shape[1] == 0:
        raise ValueError(f"x_bits and w_bits must share K >= 1, got {tuple(x_bits.shape)}, {tuple(w_bits.shape)}")
    if accumulate not in ("dram", "host"):
        raise ValueError(f"accumulate must be 'dram' or 'host', got {accumulate!r}")
    n, k, m = x_bits.shape[0], x_bits.shape[1], w_bits.shape[0]
    count = [torch.zeros(n, m, dtype=torch.bool) for _ in range(counter_bits(k))]   # counter rows, LSB first
    host = torch.zeros(n, m, dtype=torch.int64)
    zero, one = _constant_rows(host)
    for j in range(k):
        e = xnor_rows(x_bits[:, j, None].expand(n, m), w_bits[None, :, j].expand(n, m), ctr)
        if accumulate == "host":
            host += e
            continue
        carry = e
        for b in range((j + 1).bit_length()):                    # the count after j + 1 steps fits here
            new_carry = maj(count[b], carry, zero, ctr)
            count[b] = maj(maj(count[b], carry, one, ctr), _not(new_carry, ctr), zero, ctr)
            carry = new_carry
    if accumulate == "host":
        return host
    return sum(row.long() << b for b, row in enumerate(count))


def layer_cost(n: int, k: int, m: int, accumulate: str = "dram", columns: int = ASSUMED_DRAM["columns"]) -> dict:
    r"""Row commands, off-chip bits, energy and time of one binary layer (N x K inputs, M x K weights) under
    (D1)-(D3), the operands already laid out (D2). Sub-arrays of ``columns`` columns work one tile at a time:

    .. math:: \text{tiles} = \lceil NM / C \rceil, \quad \text{bits off-chip} =
        \begin{cases} NMK & \text{host accumulates}\\ NMB & \text{in-DRAM counter} \end{cases}

    Constants: :data:`ASSUMED_DRAM` (assumptions) and Horowitz's DRAM access energy (:mod:`qteach.hw`)."""
    n, k, m = require_int(n, "n", minimum=1), require_int(k, "k", minimum=1), require_int(m, "m", minimum=1)
    columns = require_int(columns, "columns", minimum=1)
    if accumulate not in ("dram", "host"):
        raise ValueError(f"accumulate must be 'dram' or 'host', got {accumulate!r}")
    per_xnor = 3 * AAP_PER["maj"] + 2 * AAP_PER["not"]
    per_half_adder = 3 * AAP_PER["maj"] + AAP_PER["not"]
    adders = sum((j + 1).bit_length() for j in range(k)) if accumulate == "dram" else 0
    tiles = math.ceil(n * m / columns)
    aap = tiles * (k * per_xnor + adders * per_half_adder)
    bits = n * m * (k if accumulate == "host" else counter_bits(k))
    energy_nj = 2 * aap * ASSUMED_DRAM["activation_nj"] + hw.memory_access_energy_pj(bits, "dram") / 1e3
    seconds = aap * ASSUMED_DRAM["aap_ns"] * 1e-9 + bits / 8 / ASSUMED_DRAM["channel_bytes_per_s"]
    return {"tiles": tiles, "aap": aap, "activations": 2 * aap, "offchip_bits": bits,
            "offchip_nj": hw.memory_access_energy_pj(bits, "dram") / 1e3, "energy_nj": energy_nj,
            "seconds": seconds}


def dram_forward(model: nn.Sequential, x: torch.Tensor, accumulate: str = "dram", tra_error: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Logits of a BNN ``nn.Sequential`` whose binary ``QuantLinear`` layers (inputs and weights :math:`\pm 1`)
    run through :func:`dram_popcount`; the other layers run as usual (eval mode):

    .. math:: z = 2\,\mathrm{popcount}(\mathrm{XNOR}(x, w)) - K + b

    With ``tra_error=0`` the logits equal ``model(x)`` up to float32 rounding of the linear layers."""
    require_module(model)
    require_float_tensor(x, "x")
    ctr = RowCounter(tra_error, generator)
    model.eval()
    with torch.no_grad():
        for layer in model:
            if not isinstance(layer, qnn.QuantLinear):
                x = layer(x)
                continue
            x, w = layer.quantized_input(x), layer.quantized_weight()
            if not bool((x.abs() == 1).all() and (w.abs() == 1).all()):
                raise ValueError("the binary layers' inputs and weights must be -1 and +1")
            z = 2 * dram_popcount(x > 0, w > 0, ctr, accumulate) - x.shape[1]
            x = z.to(x.dtype) + (0 if layer.bias is None else layer.bias)
    return x


def accuracy_under_errors(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, tra_error: float,
                          accumulate: str = "dram", draws: int = 3, seed: int = 0) -> torch.Tensor:
    r"""Test accuracy (``draws``,) float64 of ``model`` run in DRAM ``draws`` times, each with fresh TRA failures
    (rate ``tra_error``) from one ``torch.Generator`` seeded with ``seed``."""
    draws = require_int(draws, "draws", minimum=1)
    generator = torch.Generator().manual_seed(require_int(seed, "seed", minimum=0))
    return torch.tensor([float((dram_forward(model, x, accumulate, tra_error, generator).argmax(1) == y)
                               .double().mean()) for _ in range(draws)], dtype=torch.float64)
