"""Self-checks of the chapter "SIMBA: a skyrmionic in-memory BNN accelerator" (2020).

Each check calls the student's function on several inputs, compares with a reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach import bitops
from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "simba"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: a binary dot product read from skyrmions by counting agreements ---------------------------------

def _cases_1():
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([[1.0, -1.0, 1.0]]), torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]))]
    for n, k, m in ((4, 7, 3), (2, 64, 5), (3, 1, 1), (5, 33, 8), (1, 130, 4)):
        x = torch.where(torch.rand(n, k, generator=g) < 0.5, -1.0, 1.0)
        w = torch.where(torch.rand(m, k, generator=g) < 0.5, -1.0, 1.0)
        cases.append((x, w))
    return cases


@self_check
def check_1(skyrmion_dot) -> str:
    """Check ``skyrmion_dot(x, w)``: x (N, K) and w (M, K) in +-1; store w as skyrmions, count per (n, m) the
    cells whose bit equals the input bit, and return 2 * count - K (N, M), equal to x @ w.T."""
    label = _label(1)
    expect(callable(skyrmion_dot), label, "pass your function itself, e.g. check_1(skyrmion_dot)")
    cases = _cases_1()
    for x, w in cases:
        got = skyrmion_dot(x.clone(), w.clone())
        expect(isinstance(got, torch.Tensor), label, f"return a tensor, got {type(got).__name__}")
        ref = bitops.xnor_matmul(x, w).double()
        expect(tuple(got.shape) == tuple(ref.shape), label,
               f"the result must be (N, M) = {tuple(ref.shape)}, got {tuple(got.shape)}: one sum per input and row")
        got = got.double()
        if torch.equal(got, ref):
            continue
        k = x.shape[1]
        agree = (ref + k) / 2
        hint = ("store w with store_weights (skyrmion = +1), compare each input bit (x > 0) with each cell, count "
                "the equal ones over K and return 2 * count - K.")
        if torch.equal(got, agree):
            hint = "that is the popcount of the XNOR: turn it into a +-1 sum with 2 * count - K."
        elif torch.equal(got, k - agree) or torch.equal(got, -ref):
            hint = "you counted the *disagreeing* cells (XOR): an agreement (XNOR) is a +1 product."
        elif torch.equal(got, 2 * agree):
            hint = "subtract K: each disagreeing cell contributes -1, not 0."
        fail(label, f"skyrmion_dot gives {got.flatten()[:4].tolist()} ... , expected {ref.flatten()[:4].tolist()} "
                    f"... . {hint}")
    return passed(label, f"your skyrmion read equals xnor_matmul on {len(cases)} shapes")


# --- exercise 2: how much do read errors move a sum? -------------------------------------------------------------

_CASES_2 = [(128, 0.1), (128, 0.0), (64, 0.5), (1, 0.2), (1000, 0.01), (128, 1.0), (17, 0.3)]


def read_noise_std_reference(k: int, p_read: float) -> float:
    """Each of the K cells is misread independently with p; a misread moves the sum by +-2: var = 4 K p (1 - p)."""
    return 2.0 * math.sqrt(k * p_read * (1.0 - p_read))


@self_check
def check_2(read_noise_std) -> str:
    """Check ``read_noise_std(k, p_read)`` = the standard deviation of the change that read errors make to a sum of
    k cells: 2 * sqrt(k * p * (1 - p))."""
    label = _label(2)
    expect(callable(read_noise_std), label, "pass your function itself, e.g. check_2(read_noise_std)")
    for k, p in _CASES_2:
        got = as_number(read_noise_std(k, p), label, f"read_noise_std({k}, {p})")
        ref = read_noise_std_reference(k, p)
        if abs(got - ref) <= 1e-9 + 1e-6 * abs(ref):
            continue
        hint = "a misread cell changes its +-1 product by 2 (from +1 to -1 or back); count K independent cells."
        if abs(got - ref / 2) <= 1e-9 + 1e-6 * ref:
            hint = "a misread cell moves the sum by 2, not by 1: the product goes from +1 to -1."
        elif abs(got - ref**2) <= 1e-9 + 1e-6 * ref**2:
            hint = "that is the variance: take its square root."
        elif abs(got - 2 * math.sqrt(k * p)) <= 1e-9 + 1e-6 * max(ref, 1.0):
            hint = "a misread is a Bernoulli(p) event: its variance is p (1 - p), not p."
        elif abs(got - 2 * k * p) <= 1e-9 + 1e-6 * max(ref, 1.0):
            hint = "2 K p is the expected number of misreads times 2, not the spread of the change."
        fail(label, f"read_noise_std({k}, {p}) = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, f"your read-noise spread is right on {len(_CASES_2)} cases")
