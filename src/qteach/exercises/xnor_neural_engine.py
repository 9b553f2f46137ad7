"""Self-checks of the chapter "XNOR Neural Engine" (Conti, Schiavone, Benini, TCAD 2018).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.xnor_neural_engine`,
and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import xnor_neural_engine as xne

_SLUG = "xnor_neural_engine"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: fixed-width words with padding ------------------------------------------------------------------

_CASES_1 = [(3, 4, 5, 4), (2, 3, 8, 4), (1, 2, 1, 8), (4, 5, 130, 64), (2, 2, 7, 3), (3, 3, 100, 128)]


@self_check
def check_1(padded_popcount) -> str:
    """Check ``padded_popcount(x, w, tp)``: the popcount accumulators when the last word is zero-padded."""
    label = _label(1)
    expect(callable(padded_popcount), label, "pass your function itself, e.g. check_1(padded_popcount)")
    g = torch.Generator().manual_seed(7)
    for n, m, k, tp in _CASES_1:
        x, w = torch.randn(n, k, generator=g), torch.randn(m, k, generator=g)
        got = padded_popcount(x, w, tp)
        expect_type(got, torch.Tensor, label, "padded_popcount(x, w, tp)")
        expect(tuple(got.shape) == (n, m), label, f"the result should have shape (N, M) = {(n, m)}, got "
                                                  f"{tuple(got.shape)}")
        ref = xne.xne_popcount_accumulate(x, w, tp)
        got = got.to(torch.int64)
        if torch.equal(got, ref):
            continue
        pad = -k % tp
        if torch.equal(got, ref + pad):
            hint = (f"the {pad} padding lanes hold bit 0 in both operands, so their XNOR is 1 and they are counted: "
                    "subtract the number of padding lanes.")
        elif torch.equal(got, ref - pad):
            hint = "the correction has the wrong sign: the padding lanes add to the count, so subtract them once."
        elif torch.equal(got, 2 * ref - k):
            hint = "that is the dot product 2*acc - K; return the popcount accumulator acc itself."
        elif torch.equal(got, k - ref):
            hint = "that counts the disagreements (XOR); the XNE counts agreements (XNOR)."
        else:
            hint = ("pad x and w with zero bits up to a multiple of tp, count the agreements word by word, then "
                    "correct for the padding lanes.")
        fail(label, f"K = {k}, tp = {tp}: wrong accumulators. {hint}")
    return passed(label, f"zero-padded words give the exact accumulators on {len(_CASES_1)} shapes")


# --- exercise 2: when does memory stop dominating? ------------------------------------------------------------------

_CASES_2 = [("sram_8kb", 21.6), ("sram_32kb", 21.6), ("sram_1mb", 21.6), ("dram", 21.6), ("sram_32kb", 100.0)]


def break_even_reuse_reference(level: str, fj_per_op: float) -> float:
    """Reuse R at which memory energy per MAC (2 bits, each read once per R MACs) equals compute (2 ops)."""
    return 2 * xne.memory_fj_per_bit(level) / (xne.OPS_PER_BINARY_MAC * fj_per_op)


@self_check
def check_2(break_even_reuse) -> str:
    """Check ``break_even_reuse(level, fj_per_op)``: the reuse factor at which memory equals compute energy."""
    label = _label(2)
    expect(callable(break_even_reuse), label, "pass your function itself, e.g. check_2(break_even_reuse)")
    for level, fj in _CASES_2:
        got = as_number(break_even_reuse(level, fj), label, f"break_even_reuse({level!r}, {fj})")
        ref = break_even_reuse_reference(level, fj)
        if math.isclose(got, ref, rel_tol=1e-6):
            continue
        ratio = got / ref if ref else float("nan")
        if math.isclose(ratio, 2.0, rel_tol=1e-6):
            hint = "a binary MAC is two operations (XNOR and add): the compute energy per MAC is 2 x fJ/op."
        elif math.isclose(ratio, 0.5, rel_tol=1e-6):
            hint = "each MAC reads two bits without reuse, a weight and an activation."
        elif math.isclose(ratio, 64.0, rel_tol=1e-6) or math.isclose(ratio, 128.0, rel_tol=1e-6) \
                or math.isclose(ratio, 32.0, rel_tol=1e-6):
            hint = "the table's energy is for a 64-bit access: divide by 64 for one bit (memory_fj_per_bit)."
        elif math.isclose(ratio, 1000.0, rel_tol=1e-3) or math.isclose(ratio, 0.001, rel_tol=1e-3):
            hint = "mind the units: the memory table is in pJ, the XNE's energy in fJ (1 pJ = 1000 fJ)."
        elif math.isclose(got * ref, 1.0, rel_tol=1e-3):
            hint = "the ratio is upside down: R = memory energy without reuse / compute energy."
        else:
            hint = "solve 2 * E_bit / R = 2 * E_op for R, with E_bit = xne.memory_fj_per_bit(level)."
        fail(label, f"break_even_reuse({level!r}, {fj}) = {got:.6g}, expected about {ref:.6g}. {hint}")
    return passed(label, f"the break-even reuse is right for {len(_CASES_2)} memory levels and energies")
