"""Self-checks of the chapter "An Energy-Efficient Architecture for Binary Weight CNNs" (Wang, Lin, Wang, TVLSI 2018).

Each check calls the student's function on several inputs, compares with a reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import binary_weight_cnn_architecture as bwa

_SLUG = "binary_weight_cnn_architecture"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the lower-part OR adder without its AND carry -------------------------------------------------

def or_adder_reference(a: torch.Tensor, b: torch.Tensor, k: int, width: int) -> torch.Tensor:
    """Low ``k`` bits OR-ed, upper ``width - k`` bits added exactly with carry-in 0, result mod 2**width."""
    mask, low = (1 << width) - 1, (1 << k) - 1
    return ((((a >> k) + (b >> k)) << k) | ((a | b) & low)) & mask


_WIDTH_1 = 6


@self_check
def check_1(or_adder) -> str:
    """Check ``or_adder(a, b, k, width)`` on every pair of 6-bit words and every k from 0 to 6."""
    label = _label(1)
    expect(callable(or_adder), label, "pass your function itself, e.g. check_1(or_adder)")
    v = torch.arange(1 << _WIDTH_1)
    a, b = v[:, None].expand(-1, v.numel()), v[None, :].expand(v.numel(), -1)
    for k in range(_WIDTH_1 + 1):
        got = or_adder(a, b, k, _WIDTH_1)
        expect_type(got, torch.Tensor, label, "or_adder(a, b, k, width)")
        expect(got.shape == a.shape, label, f"the result should have the shape of a, {tuple(a.shape)}, got "
                                            f"{tuple(got.shape)}")
        got = got.to(torch.int64)
        ref = or_adder_reference(a, b, k, _WIDTH_1)
        if torch.equal(got, ref):
            continue
        if torch.equal(got, bwa.loa_add(a, b, k, _WIDTH_1)):
            hint = "that is the LOA with its AND carry-in; the variant drops it (the upper part gets carry-in 0)."
        elif bool((got > (1 << _WIDTH_1) - 1).any()) and torch.equal(got & ((1 << _WIDTH_1) - 1), ref):
            hint = f"keep the result to {_WIDTH_1} bits: mask it with 2**width - 1 (a hardware word wraps around)."
        elif torch.equal(got, ((((a >> k) + (b >> k)) << k) | ((a ^ b) & ((1 << k) - 1))) & 63):
            hint = "the lower part is OR-ed, not XOR-ed: an OR is right whenever the two bits are not both 1."
        elif torch.equal(got, (a + b) & 63):
            hint = "that is the exact sum: the low k bits should be a OR b, with no carry out of them."
        else:
            hint = "lower part: (a | b) & (2**k - 1); upper part: ((a >> k) + (b >> k)) << k; then mask to width."
        fail(label, f"k = {k}: wrong sums. {hint}")
    return passed(label, f"the OR adder matches on all {a.numel()} pairs of {_WIDTH_1}-bit words for k = 0..6")


# --- exercise 2: its mean error ----------------------------------------------------------------------------------

@self_check
def check_2(mean_error) -> str:
    """Check ``mean_error(k)``: the mean of (a + b) - or_adder(a, b) over uniformly random operands."""
    label = _label(2)
    expect(callable(mean_error), label, "pass your function itself, e.g. check_2(mean_error)")
    for k in (2, 3, 4, 5, 6, 7, 8, 0, 1):            # k >= 2 first: there the mistakes differ
        got = as_number(mean_error(k), label, f"mean_error({k})")
        ref = (2**k - 1) / 4
        if math.isclose(got, ref, rel_tol=1e-9, abs_tol=1e-9):
            continue
        if math.isclose(got, -ref, abs_tol=1e-9):
            hint = "the sign: the error is exact minus approximate, and OR-ing loses the carries, so it is >= 0."
        elif math.isclose(got, -0.25, abs_tol=1e-9):
            hint = "-1/4 is the LOA with its AND carry; without it nothing gives back the lost carries."
        elif math.isclose(got, 2 * ref, abs_tol=1e-9):
            hint = "two bits are both 1 with probability 1/4, not 1/2."
        elif math.isclose(got, (2**k) / 4, abs_tol=1e-9) or math.isclose(got, (2**k - 1) / 2 ** (k + 2), abs_tol=1e-9):
            hint = "sum 2**i / 4 over i = 0..k-1 (the low k bit positions only)."
        else:
            hint = "a + b = (a | b) + (a & b): the error is the low part of a & b; average it bit by bit."
        fail(label, f"mean_error({k}) = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, "the mean error (2**k - 1) / 4 is right for k = 0..8")
