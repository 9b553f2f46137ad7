"""Self-checks of the chapter "OrthrusPE: Runtime Reconfigurable Processing Elements for Binary Neural Networks"
(Fasfous et al., DATE 2020).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.orthrus_pe`, and either
prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import orthrus_pe as op

_SLUG = "orthrus_pe"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the dot product from the XOR instruction -------------------------------------------------------

_SIZES_1 = (1, 5, 47, 48, 49, 100, 144, 300)


@self_check
def check_1(xor_dot) -> str:
    """Check ``xor_dot(a_words, w_words, k)``: the dot product of two packed sign vectors through ``dsp_logic``'s
    XOR (no lane mask)."""
    label = _label(1)
    expect(callable(xor_dot), label, "pass your function itself, e.g. check_1(xor_dot)")
    g = torch.Generator().manual_seed(0)
    results = []                                                  # (k, got, expected) over every case
    for k in _SIZES_1:
        for _ in range(3):
            a, w = torch.randn(k, generator=g), torch.randn(k, generator=g)
            expected = int((torch.where(a >= 0, 1, -1) * torch.where(w >= 0, 1, -1)).sum())
            got = round(as_number(xor_dot(op.pack_words(a), op.pack_words(w), k), label, f"xor_dot(..., k={k})"))
            results.append((k, got, expected))
    wrong = [(k, got, e) for k, got, e in results if got != e]
    if wrong:
        k, got, expected = wrong[0]
        start = f"k={k}: got {got}, expected {expected}."
        if all(got == -e for _, got, e in results):
            fail(label, f"{start} XOR marks the DISagreements: the dot product is k - 2 * popcount(a XOR w), "
                        "not 2 * popcount - k.")
        if all(got in ((k - e) // 2, (k + e) // 2) for k, got, e in results):
            fail(label, f"{start} That is a count of (dis)agreeing lanes; turn it into a sum of +1 and -1: "
                        "agreements minus disagreements.")
        fail(label, f"{start} Count the ones of every word of op.dsp_logic(a_words, w_words, 'xor') and return "
                    "k - 2 * that count.")
    return passed(label, f"the XOR form gives the exact dot product for k in {list(_SIZES_1)}, padding included")


# --- exercise 2: how much of the work is fixed point? -----------------------------------------------------------

_CASES_2 = [(128, 3, 2, 2), (64, 3, 1, 1), (256, 3, 3, 3), (3, 3, 2, 2), (512, 1, 2, 2), (10, 5, 1, 4), (48, 1, 5, 1)]


def fixed_share_reference(in_channels: int, kernel: int, weight_bases: int, activation_bases: int) -> float:
    """Share of an OrthrusPE's DSP instructions spent in fixed-point mode (:func:`op.layer_instructions`)."""
    c = op.layer_instructions(in_channels, 1, kernel, 1, weight_bases, activation_bases)
    return c["fixed_instructions"] / (c["fixed_instructions"] + c["binary_instructions"])


@self_check
def check_2(fixed_share) -> str:
    """Check ``fixed_share(in_channels, kernel, weight_bases, activation_bases)``."""
    label = _label(2)
    expect(callable(fixed_share), label, "pass your function itself, e.g. check_2(fixed_share)")
    for c_in, k, m, n in _CASES_2:
        what = f"fixed_share({c_in}, {k}, {m}, {n})"
        got = as_number(fixed_share(c_in, k, m, n), label, what)
        expected = fixed_share_reference(c_in, k, m, n)
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
            continue
        words = -(-c_in * k * k // 48)
        if math.isclose(got, m * n / (m * n * words + m * n), rel_tol=1e-9):
            fail(label, f"{what} = {got:.6g}, expected {expected:.6g}. Batch normalization also runs in "
                        "fixed-point mode: one more multiply-add per output, after the base pairs.")
        if math.isclose(got, (m * n + 1) / (m * n * c_in * k * k / 48 + m * n + 1), rel_tol=1e-9):
            fail(label, f"{what} = {got:.6g}, expected {expected:.6g}. A partly filled word still costs a whole "
                        "instruction: the number of words is ceil(C_in k^2 / 48).")
        if math.isclose(got, (m * n + 1) / (m * n * words), rel_tol=1e-9):
            fail(label, f"{what} = {got:.6g}, expected {expected:.6g}. That is fixed / binary; the share is "
                        "fixed / (fixed + binary).")
        fail(label, f"{what} = {got:.6g}, expected {expected:.6g}. Per output: M N ceil(C_in k^2 / 48) binary "
                    "instructions, M N + 1 fixed-point ones.")
    return passed(label, f"the fixed-point share matches the instruction count on {len(_CASES_2)} layers")
