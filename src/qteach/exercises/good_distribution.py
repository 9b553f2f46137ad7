"""Self-checks of the good_distribution notebook's exercises."""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check


@self_check
def check_1(optimal_alpha):
    """Exercise 1: the uniform distribution's optimal clip, a * (2^b - 1) / 2^b, as a function of bits."""
    exercise = "ex-good_distribution-1"
    for bits in (2, 3, 4, 8):
        got = as_number(optimal_alpha(bits), exercise, f"optimal_alpha({bits})")
        want = math.sqrt(3) * (2 ** bits - 1) / 2 ** bits
        if abs(got - math.sqrt(3)) < 1e-6:
            fail(exercise, "alpha* is not the half-width sqrt(3): clipping a little trades tail error for a "
                           "finer step. Set dL/dalpha = 0 in the closed form.")
        if abs(got - want) > 1e-4 * want:
            fail(exercise, f"for {bits} bits expected about {want:.4f}, got {got:.4f}: set the derivative of "
                           "(alpha^3 / (2^b - 1)^2 + (a - alpha)^3) / (3a) to zero (2^b - 1 steps, not 2^b).")
    return passed(exercise, "alpha* = sqrt(3) (2^b - 1) / 2^b for the unit-variance uniform distribution")


@self_check
def check_2(predict):
    """Exercise 2: ``predict()`` names the distribution with the largest optimal 2-bit loss at unit variance."""
    exercise = "ex-good_distribution-2"
    expect(callable(predict), exercise, "pass the function predict itself, not its result")
    answer = predict()
    expect(isinstance(answer, str), exercise, "answer with a string: 'gaussian', 'laplace' or 'uniform'")
    answer = answer.strip().lower()
    expect(answer in ("gaussian", "laplace", "uniform"), exercise,
           "answer with one of 'gaussian', 'laplace' or 'uniform'")
    expect(answer != "uniform", exercise, "the uniform distribution has the smallest loss: no tail to clip")
    expect(answer == "laplace", exercise, "the Gaussian is in the middle: the heavier tail (and the sharper peak) "
                                          "of the Laplace costs the most")
    return passed(exercise, "Laplace > Gaussian > uniform, as the paper reports")
