"""Self-checks of the chapter "FP-BNN: Binarized neural network on FPGA" (Liang et al., 2018).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.fp_bnn`, and either
prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import fp_bnn as fb

_SLUG = "fp_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: one stage of 6:3 compression -------------------------------------------------------------------

_CASES_1 = [[6], [12], [7], [3], [5], [2, 1], [0, 3], [64], [9, 8, 4], [36, 0, 0], [1], [13, 13, 13, 13], [17, 2, 5]]


def _wrong_stage(heights, compress_remainder=True, route_s2_for_three=False, carry=True):
    new = [0] * (len(heights) + 2)
    for w, h in enumerate(heights):
        full, rest = divmod(h, 6)
        groups = [6] * full + ([rest] if compress_remainder and rest >= 3 else [])
        passed_through = rest if (rest < 3 or not compress_remainder) else 0
        new[w] += len(groups) + passed_through
        if carry:
            new[w + 1] += len(groups)
            new[w + 2] += sum(1 for g in groups if g >= 4 or route_s2_for_three)
    while len(new) > 1 and new[-1] == 0:
        new.pop()
    return new


_HINTS_1 = [
    (dict(compress_remainder=False), "a remainder of 3, 4 or 5 bits also goes into a compressor (with its unused "
                                     "inputs tied to 0); only 1 or 2 leftover bits pass through."),
    (dict(route_s2_for_three=True), "a group of only three bits counts at most 3 = 0b11: its s2 output is always 0 "
                                    "and is not wired to column w + 2."),
    (dict(carry=False), "each compressor also sends s1 to column w + 1 (and s2 to column w + 2): the count's higher "
                        "bits move to the heavier columns."),
]


@self_check
def check_1(stage_heights) -> str:
    """Check ``stage_heights(heights)``: column heights after one stage of 6:3 compressors."""
    label = _label(1)
    expect(callable(stage_heights), label, "pass your function itself, e.g. check_1(stage_heights)")
    for heights in _CASES_1:
        got = stage_heights(list(heights))
        expect_type(got, (list, tuple), label, f"stage_heights({heights})")
        got = list(got)
        while len(got) > 1 and got[-1] == 0:   # trailing empty columns do not matter
            got.pop()
        expected = fb.compressor_stage_heights(list(heights))
        if got != expected:
            hint = next((h for kwargs, h in _HINTS_1 if got == _wrong_stage(heights, **kwargs)),
                        "for each column: floor(h/6) groups of six, one more group if the remainder is 3 to 5; "
                        "each group leaves one bit in its column, one in the next, and (four or more inputs) one "
                        "two columns up.")
            fail(label, f"stage_heights({heights}) = {got}, expected {expected}. {hint}")
    return passed(label, f"one compression stage matches the simulated compressor tree on {len(_CASES_1)} "
                         "column profiles")


# --- exercise 2: the PEs that matter ----------------------------------------------------------------------------

_CASES_2 = [(4096, 1351), (4096, 1219), (4096, 961), (4096, 505), (10, 4), (10, 3), (100, 33), (7, 7), (7, 20),
            (100, 1), (4096, 61)]


def pes_needed_reference(fan_out: int, pes: int) -> int:
    """The fewest PEs that finish ``fan_out`` neurons in as few rounds as ``pes`` PEs do: ceil(N / ceil(N / P))."""
    rounds = -(-fan_out // pes)
    return -(-fan_out // rounds)


@self_check
def check_2(pes_needed) -> str:
    """Check ``pes_needed(fan_out, pes)``: ceil(N / ceil(N / P)), the PEs that set the cycle count."""
    label = _label(2)
    expect(callable(pes_needed), label, "pass your function itself, e.g. check_2(pes_needed)")
    for fan_out, pes in _CASES_2:
        got = pes_needed(fan_out, pes)
        if hasattr(got, "item"):
            got = got.item()
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"pes_needed should return an int (a number of PEs), got {type(got).__name__}")
        ref = pes_needed_reference(fan_out, pes)
        if got == ref:
            continue
        rounds = -(-fan_out // pes)
        hint = ("count the rounds R = ceil(N / P) that P PEs need, then the fewest PEs that still finish in R rounds.")
        if got == rounds:
            hint = "that is the number of rounds ceil(N / P); the question asks for PEs."
        elif got == fan_out // rounds:
            hint = ("round up: with floor(N / R) PEs, R rounds leave some neurons over and need one round more.")
        elif got == min(pes, fan_out):
            hint = ("not every PE is busy in the last round: fewer PEs can finish the same number of rounds "
                    "(4096 outputs on 1351 PEs take 4 rounds, and so do they on 1024).")
        elif got == pes:
            hint = "with more PEs than neurons the extra PEs have nothing to do at all."
        fail(label, f"pes_needed({fan_out}, {pes}) = {got}, expected {ref}. {hint}")
    return passed(label, f"your PE counts are right for {len(_CASES_2)} layers, divisible or not")
