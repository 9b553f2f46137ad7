"""Self-checks of the RPR chapter (notebooks/2020/random_partition_relaxation.ipynb).

Each check calls the student's function on fixed inputs, compares it with a closed form, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "random_partition_relaxation"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the best binary scale in closed form --------------------------------------------------------


def _weights(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(64, 32, generator=g) * (0.1 + 0.2 * seed) + 0.05 * seed


@self_check
def check_1(best_binary_scale) -> str:
    """Check ``best_binary_scale(w)``: the s minimising sum (w - s sign(w))^2, i.e. mean |w|."""
    label = _label(1)
    expect(callable(best_binary_scale), label, "pass your function itself, e.g. check_1(best_binary_scale)")
    for seed in range(4):
        w = _weights(seed)
        got = as_number(best_binary_scale(w.clone()), label, "best_binary_scale(w)")
        a = w.abs().double()
        expected = float(a.mean())
        if math.isclose(got, float(a.max()), rel_tol=1e-4):
            fail(label, "max |w| is the scale that keeps every weight inside [-s, s], not the one with the least "
                        "squared error: most weights are far below the maximum.")
        if math.isclose(got, abs(float(w.double().mean())), rel_tol=1e-3, abs_tol=1e-6):
            fail(label, "that is the mean of the signed weights: positive and negative weights cancel. Each weight "
                        "goes to s sign(w), so its error is (|w| - s)^2: average the magnitudes.")
        if math.isclose(got, float(a.pow(2).mean().sqrt()), rel_tol=1e-4):
            fail(label, "that is the root mean square. Set the derivative of sum (|w| - s)^2 with respect to s to "
                        "zero: -2 sum (|w| - s) = 0.")
        if math.isclose(got, float(a.median()), rel_tol=1e-4):
            fail(label, "the median of |w| minimises the absolute error sum ||w| - s|; the squared error wants the "
                        "mean.")
        expect(math.isclose(got, expected, rel_tol=5e-3), label,
               f"for this w the best s is {expected:.4f}, got {got:.4f}. Each weight is quantized to s sign(w), "
               "so the error is sum (|w| - s)^2; its derivative vanishes at s = mean |w|.")
    return passed(label, "s* = mean |w|: the official code's 1000-point search lands on XNOR-Net's alpha")


# --- exercise 2: how many weights are never relaxed -----------------------------------------------------------


_SCHEDULES = ((0.6, 0.7, 0.8, 0.9, 1.0), (0.4, 1.0), (0.9, 0.9, 0.9, 0.95, 1.0), (0.3, 0.6, 1.0), (1.0,))


@self_check
def check_2(never_relaxed) -> str:
    """Check ``never_relaxed(schedule)``: the expected fraction of weights not relaxed at any step, prod(FF)."""
    label = _label(2)
    expect(callable(never_relaxed), label, "pass your function itself, e.g. check_2(never_relaxed)")
    for schedule in _SCHEDULES:
        got = as_number(never_relaxed(tuple(schedule)), label, f"never_relaxed({schedule})")
        expected = math.prod(schedule)
        relaxed = [1 - f for f in schedule]
        if len(schedule) > 1 and math.isclose(got, 1 - expected, abs_tol=1e-9):
            fail(label, "that is the fraction relaxed at least once; the question asks for the weights that are "
                        "frozen at every step.")
        if len(schedule) > 1 and math.isclose(got, max(0.0, 1 - sum(relaxed)), abs_tol=1e-9) \
                and not math.isclose(got, expected, abs_tol=1e-9):
            fail(label, "subtracting the relaxed fractions assumes that the partitions never overlap; they are "
                        "drawn independently at each step, so the probabilities of staying frozen multiply.")
        if math.isclose(got, min(schedule), abs_tol=1e-9) and not math.isclose(got, expected, abs_tol=1e-9):
            fail(label, "min(FF) is the chance of staying frozen at the worst single step; a weight must stay "
                        "frozen at every step: multiply.")
        expect(math.isclose(got, expected, abs_tol=1e-6), label,
               f"for the schedule {schedule} the expected fraction is {expected:.4f}, got {got:.4f}: a weight "
               "stays frozen at one step with probability FF, independently at each step.")
    return passed(label, "prod(FF): with the chapter's schedule about 30 % of the weights are never relaxed")
