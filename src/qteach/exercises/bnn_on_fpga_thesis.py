"""Self-checks of the chapter "Deep Learning Binary Neural Network on an FPGA" (Redkar, WPI thesis, 2017).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.bnn_on_fpga_thesis`,
and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import bnn_on_fpga_thesis as th

_SLUG = "bnn_on_fpga_thesis"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the popcount threshold of a neuron with gamma > 0 -------------------------------------------

_CASES_1 = [(torch.tensor([2.0, 3.0, -1.0, 0.0, -9.5, 4.2]), 10),
            (torch.tensor([0.5, -0.5, 1.0, 7.0]), 64),
            (torch.tensor([-3.3, 12.9, 0.01, -0.01]), 25)]


def _reference_1(t, k):
    """tau for gamma > 0 from t: fold a BN whose threshold on x is t (gamma 1, beta 0, mean t, eps 1, var 0)."""
    ones = torch.ones_like(t)
    tau, _ = th.popcount_threshold(ones, torch.zeros_like(t), t, torch.zeros_like(t), fan_in=k, eps=1.0)
    return tau


_WRONG_1 = [
    (lambda t, k: torch.floor((k + t.double()) / 2), "p is an integer and p >= (K + t)/2 must hold: round (K + t)/2 "
                                                     "up with torch.ceil, not down."),
    (lambda t, k: torch.round((k + t.double()) / 2), "rounding to nearest is wrong when (K + t)/2 has a fractional "
                                                     "part below one half: use torch.ceil."),
    (lambda t, k: torch.ceil(t.double() / 2), "x = 2p - K, not 2p: p >= (K + t) / 2, so add K before halving."),
    (lambda t, k: torch.ceil((k - t.double()) / 2), "the sign of t is turned around: x >= t <=> 2p - K >= t <=> "
                                                    "p >= (K + t) / 2."),
    (lambda t, k: torch.ceil(k + t.double()), "each agreement adds +1 and each disagreement -1, so x = 2p - K: "
                                              "divide (K + t) by 2."),
]


@self_check
def check_1(popcount_tau) -> str:
    """Check ``popcount_tau(t, fan_in)``: the smallest popcount p with 2p - K >= t (gamma > 0)."""
    label = _label(1)
    expect(callable(popcount_tau), label, "pass your function itself, e.g. check_1(popcount_tau)")
    for t, k in _CASES_1:
        got = popcount_tau(t.clone(), k)
        expect_type(got, torch.Tensor, label, f"popcount_tau(t, {k})")
        if got.is_floating_point():
            fail(label, "return an integer tensor (e.g. .to(torch.int64)): the comparator compares integers.")
        expected = _reference_1(t, k)
        if got.shape != expected.shape or not torch.equal(got.to(torch.int64), expected):
            hint = next((h for f, h in _WRONG_1 if got.shape == expected.shape
                         and torch.equal(got.double(), f(t, k).double())),
                        "the neuron fires when x = 2p - K >= t; solve for the integer p.")
            fail(label, f"popcount_tau(t={t.tolist()}, fan_in={k}) = {got.tolist()}, expected {expected.tolist()}. "
                        f"{hint}")
    return passed(label, "thresholds match the folded batch norm, including thresholds between two popcounts")


# --- exercise 2: a lower bound on the initiation interval for a budget of XNOR lanes ---------------------------

_CASES_2 = [
    ([(64, 128), (128, 128), (128, 10)], 384),
    ([(64, 128), (128, 128), (128, 10)], 25_856),
    ([(64, 128), (128, 128), (128, 10)], 1_000),
    ([(64, 128), (128, 128), (128, 10)], 7),
    ([(100, 10)], 30),
    ([(784, 1024), (1024, 1024), (1024, 10)], 4096),
    ([(37, 11), (11, 7), (7, 3)], 5),
]


def ii_lower_bound_reference(shapes, lanes: int) -> int:
    """ceil(sum K N / L): every weight needs one lane for one cycle per image, and II is a whole number of cycles."""
    work = sum(k * n for k, n in shapes)
    return -(-work // lanes)


@self_check
def check_2(ii_lower_bound) -> str:
    """Check ``ii_lower_bound(shapes, lanes)``: ceil(sum_l K_l N_l / lanes)."""
    label = _label(2)
    expect(callable(ii_lower_bound), label, "pass your function itself, e.g. check_2(ii_lower_bound)")
    for shapes, lanes in _CASES_2:
        got = ii_lower_bound([tuple(s) for s in shapes], lanes)
        if hasattr(got, "item"):
            got = got.item()
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), label,
               f"ii_lower_bound should return a number of cycles (an int), got {type(got).__name__}")
        ref = ii_lower_bound_reference(shapes, lanes)
        if got == ref:
            continue
        work = sum(k * n for k, n in shapes)
        hint = ("count lane-cycles: one image needs one XNOR lane for one cycle per weight, and L lanes deliver L "
                "lane-cycles per cycle.")
        if isinstance(got, float) and not got.is_integer() and abs(got - work / lanes) < 1e-9:
            hint = "the interval is a whole number of cycles: round W / L up."
        elif got == work // lanes:
            hint = "round up, not down: with floor(W / L) cycles the lanes cannot do all the work."
        elif got == -(-max(k * n for k, n in shapes) // lanes):
            hint = ("the lanes are shared by all stages, and every stage must finish its own work within one "
                    "interval: count the work of all layers, not only the largest.")
        elif got == max(-(-k * n // lanes) for k, n in shapes) or got == -(-work // (lanes * len(shapes))):
            hint = "the L lanes are the total over all stages, not per stage."
        fail(label, f"for layers {shapes} and {lanes:,} lanes you returned {got}, expected {ref}. {hint}")
    return passed(label, f"your bounds are right for {len(_CASES_2)} pipelines and lane budgets")
