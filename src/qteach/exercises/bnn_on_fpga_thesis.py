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


# --- exercise 2: initiation interval and latency of a pipeline ----------------------------------------------

_CASES_2 = [
    [(64, 128, 16, 32), (128, 128, 8, 64), (128, 10, 10, 16)],
    [(100, 10, 3, 30)],
    [(784, 1024, 32, 49), (1024, 1024, 64, 64), (1024, 10, 10, 32)],
    [(37, 11, 4, 5), (11, 7, 2, 3), (7, 3, 1, 7)],
]


def _floor_version(stages):
    cycles = [(n // p) * (k // s) for k, n, p, s in stages]
    return max(cycles), sum(cycles)


@self_check
def check_2(ii_and_latency) -> str:
    """Check ``ii_and_latency(stages)`` with stages ``[(fan_in, fan_out, pes, simd), ...]``:
    returns ``(initiation interval, latency)`` in cycles."""
    label = _label(2)
    expect(callable(ii_and_latency), label, "pass your function itself, e.g. check_2(ii_and_latency)")
    for stages in _CASES_2:
        got = ii_and_latency([tuple(s) for s in stages])
        expect_type(got, tuple, label, "ii_and_latency(...)")
        expect(len(got) == 2, label, "return a pair (initiation interval, latency)")
        ii, latency = (int(v) for v in got)
        folds = [th.LayerFold(*s) for s in stages]
        timing = th.pipeline_timing(folds, clock_hz=1.0)
        expected = (timing["ii"], timing["latency_cycles"])
        if (ii, latency) != expected:
            if (ii, latency) == expected[::-1] and len(stages) > 1:
                hint = ("the two are swapped: a new image enters every max(T_l) cycles (the slowest stage), and one "
                        "image needs sum(T_l) cycles to pass through all stages.")
            elif ii == expected[1] and len(stages) > 1:
                hint = ("the stages work on different images at the same time, so the interval between images is "
                        "the slowest stage, max(T_l), not the sum.")
            elif (ii, latency) == _floor_version(stages):
                hint = "a partial round still takes a full cycle: use ceilings, ceil(N/P) * ceil(K/S)."
            elif latency == expected[0] and len(stages) > 1:
                hint = "one image passes through every stage in turn: the latency is the sum of the stage cycles."
            else:
                hint = "each stage takes ceil(N/P) * ceil(K/S) cycles; II = max over stages, latency = sum."
            fail(label, f"for stages {stages} you returned {(ii, latency)}, expected {expected}. {hint}")
    return passed(label, f"interval and latency match the pipeline model on {len(_CASES_2)} pipelines")
