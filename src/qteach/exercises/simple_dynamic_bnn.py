"""Self-checks of the chapter "Analysis and Implementation of Simple Dynamic Binary Neural Networks" (2018).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.simple_dynamic_bnn`,
and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import expect, fail, passed, self_check
from qteach.papers import simple_dynamic_bnn as dbnn

_SLUG = "simple_dynamic_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _as_int(value, label: str, what: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    expect(isinstance(value, int) and not isinstance(value, bool), label,
           f"{what} should be an int, got {type(value).__name__}")
    return value


# --- exercise 1: transient and period from the return map -------------------------------------------------------

def _cases_1():
    ring = torch.roll(torch.eye(5, dtype=torch.int64), 1, dims=0)
    designed = dbnn.ternary_design(dbnn.all_states(6)[torch.tensor([3, 17, 40, 9, 60])])
    return [torch.tensor([1, 2, 1, 3, 3, 4]), torch.tensor([0]), torch.tensor([1, 2, 3, 0]),
            torch.tensor([1, 2, 3, 4, 5, 5]), dbnn.return_map(ring, torch.zeros(5, dtype=torch.int64)),
            dbnn.return_map(*designed)]


def transient_and_period_reference(succ: torch.Tensor, start: int) -> tuple[int, int]:
    """Steps before the trajectory of ``start`` reaches its periodic orbit, and that orbit's period."""
    orbits, orbit_of, transient = dbnn.periodic_orbits(succ)
    return int(transient[start]), len(orbits[int(orbit_of[start])])


@self_check
def check_1(transient_and_period) -> str:
    """Check ``transient_and_period(succ, start)`` against :func:`dbnn.periodic_orbits` on several maps."""
    label = _label(1)
    expect(callable(transient_and_period), label, "pass your function itself, e.g. check_1(transient_and_period)")
    count = 0
    for succ in _cases_1():
        for start in range(len(succ)):
            got = transient_and_period(succ.clone(), start)
            expect(isinstance(got, (tuple, list)) and len(got) == 2, label,
                   f"return a pair (transient, period), got {got!r}")
            got = (_as_int(got[0], label, "the transient"), _as_int(got[1], label, "the period"))
            ref = transient_and_period_reference(succ, start)
            count += 1
            if got == ref:
                continue
            hint = ("walk from start, remembering the step at which each state was first seen; the first state "
                    "seen twice is on the orbit.")
            if got == (ref[0] + 1, ref[1]):
                hint = "the transient counts the steps BEFORE the first orbit point: 0 for a state on the orbit."
            elif got == (ref[0], ref[0] + ref[1]):
                hint = ("the period is the length of the cycle only, not the number of steps until a state repeats "
                        "(that also counts the transient).")
            elif got == (ref[0] + ref[1], ref[1]) or got[0] == ref[0] + ref[1]:
                hint = ("the transient ends where the cycle begins: at the FIRST visit of the repeated state, "
                        "not at its second visit.")
            fail(label, f"transient_and_period(succ={succ.tolist() if len(succ) <= 8 else '...'}, start={start}) "
                        f"= {got}, expected {ref}. {hint}")
    return passed(label, f"transients and periods agree with the full orbit analysis on {count} starting states")


# --- exercise 2: the popcount threshold of a hard-wired neuron --------------------------------------------------

_CASES_2 = [(k, t) for k in range(9) for t in range(-k - 2, k + 3)]

_MISTAKES_2 = [
    (lambda k, t: (k + t) // 2, ("round UP, not down: when k + T is odd, A = floor((k + T) / 2) gives "
                                 "2A - k = T - 1 < T, and the neuron would fire one agreement too early.")),
    (lambda k, t: math.ceil(k / 2), "the threshold T moves the count too: A >= (k + T) / 2, not k / 2."),
    (lambda k, t: math.ceil((k - t) / 2), ("sign of T: the neuron computes sum - T >= 0, so a larger T needs "
                                           "MORE agreements.")),
]


def _same_neuron(a: int, b: int, k: int) -> bool:
    """Two thresholds give the same circuit: equal, both <= 0 (always fires) or both > k (never fires)."""
    return a == b or (a <= 0 and b <= 0) or (a > k and b > k)


@self_check
def check_2(popcount_threshold) -> str:
    """Check ``popcount_threshold(fan_in, t)``: the smallest agreement count with 2A - k >= T, i.e. ceil((k+T)/2)."""
    label = _label(2)
    expect(callable(popcount_threshold), label, "pass your function itself, e.g. check_2(popcount_threshold)")
    got = {(k, t): _as_int(popcount_threshold(k, t), label, f"popcount_threshold({k}, {t})") for k, t in _CASES_2}
    wrong = [(k, t) for k, t in _CASES_2 if not _same_neuron(got[k, t], math.ceil((k + t) / 2), k)]
    if wrong:
        k, t = wrong[0]
        hint = next((h for model, h in _MISTAKES_2
                     if all(_same_neuron(got[c], model(*c), c[0]) for c in _CASES_2)),
                    "the sum of k wires with A agreements is A - (k - A) = 2A - k; the neuron fires when "
                    "2A - k >= T: solve for the smallest integer A.")
        fail(label, f"popcount_threshold({k}, {t}) = {got[k, t]}, expected {math.ceil((k + t) / 2)}. {hint}")
    return passed(label, f"your threshold makes the popcount neuron equal the signum neuron for {len(_CASES_2)} "
                         "fan-ins and thresholds")
