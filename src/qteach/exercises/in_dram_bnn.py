"""Self-checks of the chapter "In-DRAM BNN accelerator" (2020).

Each check calls the student's function on several inputs, compares with a reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import itertools
import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "in_dram_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: a full adder from majority and NOT only -------------------------------------------------------

def _rows_1():
    """All 8 input combinations as 8 columns, then 200 random columns."""
    table = torch.tensor(list(itertools.product((False, True), repeat=3)))
    g = torch.Generator().manual_seed(0)
    rand = torch.rand(200, 3, generator=g) < 0.5
    cols = torch.cat([table, rand])
    return cols[:, 0].clone(), cols[:, 1].clone(), cols[:, 2].clone()


@self_check
def check_1(full_adder) -> str:
    """Check ``full_adder(a, b, c, maj3, inv)`` -> (sum, carry) on bool rows, built from ``maj3`` and ``inv`` only."""
    label = _label(1)
    expect(callable(full_adder), label, "pass your function itself, e.g. check_1(full_adder)")
    a, b, c = _rows_1()
    calls = {"maj": 0, "not": 0}

    def maj3(x, y, z):
        for t in (x, y, z):
            expect(isinstance(t, torch.Tensor) and t.dtype == torch.bool and t.shape == a.shape, label,
                   "maj3 takes three bool rows of the same length (use inv(x), not 1 - x or ~x on other types)")
        calls["maj"] += 1
        return (x & y) | (z & (x | y))

    def inv(x):
        expect(isinstance(x, torch.Tensor) and x.dtype == torch.bool, label, "inv takes one bool row")
        calls["not"] += 1
        return ~x

    # the student's function sees read-only-by-convention copies and no &, |, ^ of ours
    out = full_adder(a.clone(), b.clone(), c.clone(), maj3, inv)
    expect(isinstance(out, tuple) and len(out) == 2, label, "return a pair (sum, carry)")
    total, carry = out
    for name, t in (("sum", total), ("carry", carry)):
        expect(isinstance(t, torch.Tensor) and t.shape == a.shape, label, f"{name} must be a row (tensor) like a")
    total, carry = total.bool(), carry.bool()
    ref_sum, ref_carry = a ^ b ^ c, (a & b) | (c & (a | b))
    if not torch.equal(carry, ref_carry):
        hint = "the carry of a full adder is exactly one majority: maj3(a, b, c)."
        if torch.equal(carry, a & b):
            hint = "a & b is a half adder's carry: the carry-in c counts too, carry = maj3(a, b, c)."
        fail(label, hint)
    if not torch.equal(total, ref_sum):
        hint = "the sum is a XOR b XOR c; one form: maj3(inv(carry), c, maj3(a, b, inv(c)))."
        if torch.equal(total, a ^ b):
            hint = "that is a XOR b: the carry-in c is missing from the sum."
        elif torch.equal(total, ~ref_sum):
            hint = "your sum is inverted (that is XNOR): check where inv goes."
        fail(label, hint)
    expect(calls["maj"] > 0, label, "build the adder from maj3 and inv (each maj3 is one triple-row activation); "
                                    "&, |, ^ are not DRAM row operations")
    return passed(label, f"your full adder is right on all 8 input combinations with {calls['maj']} TRAs and "
                         f"{calls['not']} NOTs (the model answer uses 3 TRAs and 2 NOTs)")


# --- exercise 2: off-chip bits, host accumulation vs in-DRAM counter ---------------------------------------------

_CASES_2 = (1, 3, 7, 8, 9, 2, 64, 127, 128, 129, 576, 1152, 4608)


def offchip_ratio_reference(k: int) -> float:
    """Bits read per output: k XNOR bits (host adds) over floor(log2 k) + 1 counter bits (in-DRAM popcount)."""
    return k / k.bit_length()


@self_check
def check_2(offchip_ratio) -> str:
    """Check ``offchip_ratio(k)`` = k / (floor(log2 k) + 1)."""
    label = _label(2)
    expect(callable(offchip_ratio), label, "pass your function itself, e.g. check_2(offchip_ratio)")
    for k in _CASES_2:
        got = as_number(offchip_ratio(k), label, f"offchip_ratio({k})")
        ref = offchip_ratio_reference(k)
        if abs(got - ref) <= 1e-9 * ref:
            continue
        hint = "the host reads all k XNOR bits of an output; the counter holds the popcount (0 ... k) in binary."
        if abs(got - k) < 1e-9 * k:
            hint = ("k is the host's bits only: divide by the counter's bits, since the host then reads the counter "
                    "rows, not the XNOR rows.")
        elif k > 1 and (abs(got - k / math.log2(k)) < 1e-6 * ref or abs(got - k / math.ceil(math.log2(k))) < 1e-9 * ref):
            hint = ("log2(k) (or its ceiling) is not the bit count: a count from 0 to k needs floor(log2 k) + 1 bits "
                    "(128 needs 8).")
        elif abs(got - 1 / ref) < 1e-9 / ref:
            hint = "the ratio is upside down: host bits (k) over counter bits."
        fail(label, f"offchip_ratio({k}) = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, f"your ratio is right for k from 1 to {_CASES_2[-1]}")
