"""Self-checks of the chapter "An Energy-Efficient Bagged Binary Neural Network Accelerator" (BBNA, 2020).

Each check calls the student's function on several inputs, compares with
:mod:`qteach.papers.bagged_bnn_accelerator`, and either prints the success line or raises ``AssertionError``
with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import (
    as_number,
    expect,
    expect_close,
    expect_type,
    fail,
    passed,
    self_check,
)
from qteach.papers import bagged_bnn_accelerator as bb

_SLUG = "bagged_bnn_accelerator"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the vote unit ----------------------------------------------------------------------------------

def _cases_1():
    g = torch.Generator().manual_seed(0)
    cases = [torch.tensor([[3, 1, 1, 0], [3, 2, 1, 0], [1, 2, 4, 5]]),  # a clear majority, a three-way tie, ...
             torch.tensor([[2, 7], [7, 2]]),                           # K = 2: every disagreement is a tie
             torch.tensor([[9, 0, 5]])]                                # K = 1: the member's own labels
    cases += [torch.randint(0, 10, (k, 50), generator=g) for k in (2, 3, 4, 5, 7)]
    return cases


@self_check
def check_1(vote) -> str:
    """Check ``vote(labels, num_classes)``: the plurality vote of (K, N) labels, ties to the smallest class."""
    label = _label(1)
    expect(callable(vote), label, "pass your function itself, e.g. check_1(vote)")
    for labels in _cases_1():
        got = vote(labels.clone(), 10)
        expect_type(got, torch.Tensor, label, f"vote(labels of shape {tuple(labels.shape)}, 10)")
        expected = bb.vote_unit(labels, 10)
        expect(got.shape == expected.shape, label, f"the result should have one label per sample, shape "
                                                   f"{tuple(expected.shape)}; got {tuple(got.shape)}: count over "
                                                   "the members (dimension 0), not over the samples")
        if not torch.equal(got.long(), expected):
            counts = torch.nn.functional.one_hot(labels, 10).sum(0)  # (N, C)
            largest = 9 - counts.flip(1).argmax(1)
            if torch.equal(got.long(), largest):
                fail(label, "on a tie your vote picks the largest class; the comparator chain keeps the first "
                            "maximum (replace only on a strictly larger count), i.e. the smallest class.")
            fail(label, f"the vote differs from the plurality vote on labels {labels.tolist()[:3]}...: count each "
                        "class's votes per sample over the K members, then take the class with the most votes.")
    return passed(label, "your vote unit agrees with the counters-and-comparators model, ties included")


# --- exercise 2: how much of the training set does a member see? ------------------------------------------------

_NS_2 = (1, 2, 3, 10, 100, 1347, 10**6)


@self_check
def check_2(seen_fraction) -> str:
    """Check ``seen_fraction(n)``: the expected fraction of n examples that appear in a bootstrap sample."""
    label = _label(2)
    expect(callable(seen_fraction), label, "pass your function itself, e.g. check_2(seen_fraction)")
    for n in _NS_2:
        got = as_number(seen_fraction(n), label, f"seen_fraction({n})")
        expected = 1 - (1 - 1 / n) ** n
        if math.isclose(got, 1 - expected, rel_tol=1e-4, abs_tol=1e-9):
            fail(label, f"seen_fraction({n}) = {got:.4g} is the fraction left OUT of the sample, (1 - 1/n)^n; "
                        "the question asks for the fraction that appears at least once.")
        if math.isclose(got, 1 - math.exp(-1), rel_tol=1e-6) and n < 1000:
            fail(label, f"seen_fraction({n}) = {got:.4g} is the limit 1 - 1/e for large n; for small n the exact "
                        "value 1 - (1 - 1/n)^n differs (n = 1 gives 1).")
        expect_close(got, expected, label, f"seen_fraction({n})", rtol=1e-6, atol=1e-9,
                     hint="each of the n draws misses a given example with probability 1 - 1/n, independently.")
    return passed(label, "a bootstrap member sees 1 - (1 - 1/n)^n of the data, about 63 % for large n")
