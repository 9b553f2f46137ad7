"""Self-checks of the chapter "Xcel-RAM: Accelerating Binary Neural Networks in High-Throughput SRAM Compute
Arrays" (Agrawal et al., 2019).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.xcel_ram`, and either
prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import expect, fail, passed, self_check
from qteach.papers import xcel_ram as xr

_SLUG = "xcel_ram"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _as_int(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


# --- exercise 1: the fewest ADC bits for an exact popcount ------------------------------------------------------

_CASES_1 = [1, 2, 3, 4, 7, 8, 9, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 256, 1000, 1023, 1024]


@self_check
def check_1(min_bits) -> str:
    """Check ``min_bits(columns)``: the fewest ADC bits that read every popcount of ``columns`` bits exactly."""
    label = _label(1)
    expect(callable(min_bits), label, "pass your function itself, e.g. check_1(min_bits)")
    for columns in _CASES_1:
        got = _as_int(min_bits(columns))
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"min_bits should return an int (a number of bits), got {type(got).__name__}")
        ref = xr.min_exact_bits(columns)
        if got == ref:
            continue
        hint = "count the values the popcount can take: 0, 1, ..., C, that is C + 1 of them; 2**b must cover them."
        if got == (math.ceil(math.log2(columns)) if columns > 1 else 0):
            hint = ("a popcount of C bits takes C + 1 values (0 to C included), not C: for C = 64 the count 0 and "
                    "the count 64 both need a level, so 6 bits (64 levels) are one short.")
        elif got == ref + 1:
            hint = "one bit too many: 2**b levels are enough as soon as 2**b >= C + 1."
        fail(label, f"min_bits({columns}) = {got}, expected {ref}. {hint}")
    return passed(label, f"your bit counts are right for {len(_CASES_1)} word widths, powers of two included")


# --- exercise 2: how much of the energy is the bit-line's? ------------------------------------------------------

_CASES_2 = [(2.5, 4), (4.0, 4), (1.0, 4), (1.5, 2), (2.0, 8), (1.2, 16), (3.0, 3)]


def bitline_share_reference(gain: float, sections: int) -> float:
    """The bit-line share s with 1 / ((1 - s) + s / n) = gain: s = (1 - 1/gain) / (1 - 1/n)."""
    return (1 - 1 / gain) / (1 - 1 / sections)


@self_check
def check_2(bitline_share) -> str:
    """Check ``bitline_share(gain, sections)``: invert the sectioning energy model."""
    label = _label(2)
    expect(callable(bitline_share), label, "pass your function itself, e.g. check_2(bitline_share)")
    for gain, sections in _CASES_2:
        got = bitline_share(gain, sections)
        if hasattr(got, "item"):
            got = got.item()
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), label,
               f"bitline_share should return a number, got {type(got).__name__}")
        ref = bitline_share_reference(gain, sections)
        if abs(got - ref) <= 1e-6:
            continue
        hint = ("solve 1 / gain = (1 - s) + s / n for s: the fixed part (1 - s) does not shrink with sections, "
                "the bit-line part s shrinks to s / n.")
        if abs(got - (1 - 1 / gain)) <= 1e-6:
            hint = "that is 1 - 1/gain: divide it by (1 - 1/n), the fraction of the bit-line energy a section saves."
        elif abs(got - (gain - 1) / (sections - 1)) <= 1e-6:
            hint = "the gain is E(1) / E(n), so the model is 1 / gain = (1 - s) + s / n, not gain = (1 - s) + s n."
        elif abs(got - gain / sections) <= 1e-6:
            hint = "gain / n is not a share; solve 1 / gain = (1 - s) + s / n for s."
        fail(label, f"bitline_share({gain}, {sections}) = {got:.4g}, expected {ref:.4g}. {hint}")
    return passed(label, "your bit-line share reproduces the gain for "
                         f"{len(_CASES_2)} (gain, sections) pairs; 2.5x at 4 sections needs 80 %")
