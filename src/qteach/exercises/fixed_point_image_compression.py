"""Self-checks of the fixed_point_image_compression notebook's exercises."""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check


@self_check
def check_1(fractional_bits):
    """Exercise 1: ``fractional_bits(peak, bits)``, the largest F with peak * 2^F <= 2^(bits-1) - 1."""
    exercise = "ex-fixed_point_image_compression-1"
    expect(callable(fractional_bits), exercise, "pass the function fractional_bits itself, not its result")
    for peak, bits in ((0.7, 8), (1.0, 8), (3.0, 4), (0.05, 8), (0.26, 6), (5.0, 10), (0.999, 8)):
        got = as_number(fractional_bits(peak, bits), exercise, f"fractional_bits({peak}, {bits})")
        want = math.floor(math.log2((2 ** (bits - 1) - 1) / peak))
        if got == math.floor(math.log2(2 ** (bits - 1) / peak)) and got != want:
            fail(exercise, f"fractional_bits({peak}, {bits}) = {got:g} saturates: the largest code of a signed "
                           f"{bits}-bit integer is 2^(bits-1) - 1, not 2^(bits-1)")
        expect(got == int(got), exercise, f"F must be an integer, got {got} for peak {peak}, bits {bits}")
        if got == want + 1:
            fail(exercise, f"fractional_bits({peak}, {bits}) = {got:g} is one too large: {peak} * 2^{got:g} "
                           "overflows the largest code. Round log2 down (floor), not up")
        if got == want - 1:
            fail(exercise, f"fractional_bits({peak}, {bits}) = {got:g} is one too small: a finer step still "
                           "holds the peak. Take the largest F, floor(log2((2^(bits-1) - 1) / peak))")
        expect(got == want, exercise, f"for peak {peak} and {bits} bits expected F = {want}, got {got:g}")
    return passed(exercise, "F = floor(log2((2^(B-1) - 1) / max|w|)), the finest step that still holds the peak")


@self_check
def check_2(saving):
    """Exercise 2: ``saving(bits, num_weights, num_groups)``, the fraction of the float32 weight memory saved
    by ``bits``-bit weights plus one 8-bit fractional length per group."""
    exercise = "ex-fixed_point_image_compression-2"
    expect(callable(saving), exercise, "pass the function saving itself, not its result")
    for bits, weights, groups in ((8, 1000, 1), (8, 3000, 40), (4, 500, 10), (10, 64, 64)):
        got = as_number(saving(bits, weights, groups), exercise, f"saving({bits}, {weights}, {groups})")
        want = 1 - (bits * weights + 8 * groups) / (32 * weights)
        if abs(got - bits / 32) < 1e-9 or abs(got - (bits * weights + 8 * groups) / (32 * weights)) < 1e-9:
            fail(exercise, "that is the fraction kept, not saved: return 1 - stored / float32 size")
        if abs(got - (1 - bits / 32)) < 1e-9:
            fail(exercise, "each group also stores its fractional length (8 bits here): count num_groups * 8 bits")
        if abs(got - 100 * want) < 1e-6:
            fail(exercise, "return a fraction in [0, 1], not a percentage")
        expect(abs(got - want) < 1e-6, exercise, f"saving({bits}, {weights}, {groups}): expected {want:.6f}, "
                                                 f"got {got:.6f}")
    return passed(exercise, "8-bit weights save just under 75 % of float32 memory; the per-group F costs little")
