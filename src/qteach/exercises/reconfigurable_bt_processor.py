"""Self-checks of the chapter "An Energy-Efficient Reconfigurable Processor for Binary- and Ternary-Weight Neural
Networks With Flexible Data Bit Width" (Yin et al., 2019).

Each check calls the student's function on several inputs, compares with the exact result, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "reconfigurable_bt_processor"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: most-significant bit plane first --------------------------------------------------------------

def _cases_1():
    g = torch.Generator().manual_seed(7)
    cases = []
    for m, k, n, bits in ((1, 2, 1, 4), (3, 7, 5, 2), (4, 16, 3, 8), (2, 33, 4, 16), (5, 9, 2, 1), (1, 64, 6, 4)):
        x = torch.randint(0, 2**bits, (m, k), generator=g)
        w = torch.randint(-1, 2, (n, k), generator=g)
        cases.append((x, w, bits))
    x = torch.tensor([[5, 3, 1, 0]])
    cases.insert(0, (x, torch.tensor([[1, -1, 0, 1], [-1, -1, 1, 0]]), 4))
    return cases


def _planes_sum(x, w, bits, order, use_neg=True, shift=True):
    pos, neg = (w == 1).to(torch.int64), (w == -1).to(torch.int64)
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    planes = range(bits - 1, -1, -1) if order == "msb" else range(bits)
    for i in planes:
        p = (x >> i) & 1
        partial = p @ pos.T - (p @ neg.T if use_neg else 0)
        acc = (2 * acc if shift else acc) + partial
    return acc


@self_check
def check_1(msb_first) -> str:
    """Check ``msb_first(x, w, a_bits)``: x @ w.T, fed from the most significant activation bit plane down."""
    label = _label(1)
    expect(callable(msb_first), label, "pass your function itself, e.g. check_1(msb_first)")
    cases = _cases_1()
    for x, w, bits in cases:
        got = msb_first(x.clone(), w.clone(), bits)
        expect(isinstance(got, torch.Tensor), label, f"msb_first should return a tensor, got {type(got).__name__}")
        expected = x @ w.T
        expect(tuple(got.shape) == tuple(expected.shape), label,
               f"the result should have shape (M, N) = {tuple(expected.shape)}, got {tuple(got.shape)}")
        if got.is_floating_point():   # an integer-valued float tensor is an equivalent answer
            expect(bool((got == got.round()).all()), label,
                   "the result has fractions: the bit-serial product of integer codes is an integer.")
        got = got.to(torch.int64)
        if torch.equal(got, expected):
            continue
        hint = ("start from acc = 0, then for i = a_bits - 1 down to 0: acc = 2 * acc + (popcount with w+ minus "
                "popcount with w-) of bit plane i.")
        if torch.equal(got, _planes_sum(x, w, bits, "lsb")):
            hint = ("the planes go in the wrong order: doubling the accumulator before each new plane weights the "
                    "FIRST plane most, so the first plane must be the most significant one (i = a_bits - 1).")
        elif torch.equal(got, _planes_sum(x, w, bits, "msb", use_neg=False)):
            hint = "the -1 weights are missing: subtract the popcount with the w- plane (w == -1) as well."
        elif torch.equal(got, _planes_sum(x, w, bits, "msb", shift=False)):
            hint = "every plane counts once: double the accumulator (shift left by one) before adding each plane."
        fail(label, f"wrong result for x of shape {tuple(x.shape)}, {bits}-bit activations. {hint}")
    return passed(label, f"your MSB-first bit-serial product equals x @ w.T on {len(cases)} cases, 1 to 16 bits")


# --- exercise 2: sum the minority sign -------------------------------------------------------------------------

def _cases_2():
    g = torch.Generator().manual_seed(3)
    cases = [torch.tensor([[1, 1, 1, -1]]), torch.tensor([[-1, -1, -1, -1], [1, 1, 1, 1]]),
             torch.tensor([[1, -1, 1, -1, 1, -1]])]
    for n, k, p in ((8, 9, 0.2), (16, 27, 0.5), (4, 64, 0.8), (1, 1, 0.5)):
        cases.append(torch.where(torch.rand(n, k, generator=g) < p, 1, -1))
    return cases


def minority_reference(w: torch.Tensor) -> int:
    """K (the shared total) + per kernel min(#(+1), #(-1)) + one combine per kernel."""
    n, k = w.shape
    plus = (w == 1).sum(dim=1)
    return int(k + torch.minimum(plus, k - plus).sum() + n)


@self_check
def check_2(minority_accumulations) -> str:
    """Check ``minority_accumulations(w)``: additions per window when each kernel sums its rarer sign."""
    label = _label(2)
    expect(callable(minority_accumulations), label, "pass your function itself, e.g. check_2(minority_accumulations)")
    for w in _cases_2():
        got = as_number(minority_accumulations(w.clone()), label, "minority_accumulations(w)")
        ref = minority_reference(w)
        if got == ref:
            continue
        n, k = w.shape
        plus = (w == 1).sum(dim=1)
        hint = "count K for the shared total, then for each kernel min(p, K - p) additions and one combine."
        if got == ref - k:
            hint = "the window total T (K additions, once for all kernels) is missing."
        elif got == ref - n:
            hint = "each kernel still needs one combine (2P - T or T - 2M) after its partial sum."
        elif got == int(k + plus.sum() + n):
            hint = "that is the +1-only scheme: each kernel may sum whichever sign is rarer, min(p, K - p)."
        elif got == int(k + torch.maximum(plus, k - plus).sum() + n):
            hint = "use the rarer sign (min), not the more common one."
        elif got == n * k:
            hint = "that is the dense count N * K; the point is to add fewer inputs per kernel."
        fail(label, f"for w of shape {tuple(w.shape)} you counted {got}, expected {ref}. {hint}")
    return passed(label, f"your counts are right for {len(_cases_2())} weight sets, from all-+1 to balanced")
