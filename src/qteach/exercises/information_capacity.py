"""Self-checks of the information-capacity chapter (notebooks/2020/information_capacity.ipynb).

Each check calls the student's function on fixed inputs, compares it with the exact count, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check

_SLUG = "information_capacity"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _entropy_bits(k: int, n: int) -> float:
    return -sum(q * math.log2(q) for q in (k / n, 1 - k / n) if q > 0)


# --- exercise 1: the exact entropy of each filter's sign bits ---------------------------------------------------

def _filters() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    random = torch.randn(6, 40, generator=g)
    awkward = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -2.0, -0.5, -3.0], [0.0, -1.0, 0.0, -1.0],
                            [0.5, -0.5, 0.25, 0.75]])
    return [random, awkward, torch.randn(3, 2, 3, 3, generator=g)]


@self_check
def check_1(entropy_bits) -> str:
    """Check ``entropy_bits(w)``: the exact entropy (bits per weight) of the sign bits of each filter ``w[f]``."""
    label = _label(1)
    expect(callable(entropy_bits), label, "pass your function itself, e.g. check_1(entropy_bits)")
    for w in _filters():
        bits = (w >= 0).flatten(1)
        n = bits.shape[1]
        expected = [_entropy_bits(int(k), n) for k in bits.sum(dim=1)]
        got = entropy_bits(w.clone())
        expect_type(got, torch.Tensor, label, "entropy_bits(w)")
        expect(got.shape == (w.shape[0],), label, f"return one entropy per filter (shape ({w.shape[0]},)), got "
                                                  f"shape {tuple(got.shape)}: average over each row only")
        got = got.detach().to(torch.float64)
        if bool(torch.isnan(got).any()):
            fail(label, "a filter whose weights all have one sign gives NaN: 0 * log 0 is 0 (torch.xlogy does it)")
        if all(math.isclose(float(g), e * math.log(2), abs_tol=1e-5) for g, e in zip(got, expected)):
            fail(label, "your entropies are in nats: divide by log(2) (or use log2) to get bits")
        if all(math.isclose(float(g), e, abs_tol=1e-5) for g, e in zip(got, expected)):
            continue
        zero_minus = [_entropy_bits(int(k), n) for k in (w > 0).flatten(1).sum(dim=1)]
        if all(math.isclose(float(g), e, abs_tol=1e-5) for g, e in zip(got, zero_minus)):
            fail(label, "sign(0) is +1 in this book (qteach.binary.sign): count w >= 0 as a +1 bit, not w > 0")
        fail(label, "compute p = (number of weights >= 0) / n for each filter, then "
                    "H = -p log2 p - (1 - p) log2 (1 - p)")
    return passed(label, "the entropy of each filter's sign bits, counted exactly")


# --- exercise 2: how many bits a filter with k ones can really hold --------------------------------------------

_CASES = ((9, 4), (9, 0), (64, 32), (128, 16), (128, 127), (1000, 500))


@self_check
def check_2(pattern_bits) -> str:
    """Check ``pattern_bits(n, k)``: log2 of the number of binary filters of n weights with exactly k ones."""
    label = _label(2)
    expect(callable(pattern_bits), label, "pass your function itself, e.g. check_2(pattern_bits)")
    for n, k in _CASES:
        got = as_number(pattern_bits(n, k), label, f"pattern_bits({n}, {k})")
        expected = math.log2(math.comb(n, k))
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
            continue
        if math.isclose(got, n * _entropy_bits(k, n), rel_tol=1e-9, abs_tol=1e-9):
            fail(label, f"n * H(k/n) = {got:.3f} is the upper bound, not the count: count the filters with "
                        "math.comb(n, k) and take log2")
        if math.isclose(got, math.log(math.comb(n, k)), rel_tol=1e-9, abs_tol=1e-9):
            fail(label, "that is the natural log: use math.log2 to get bits")
        if math.isclose(got, float(n), rel_tol=1e-9):
            fail(label, "n bits counts every filter of n weights; count only those with exactly k ones")
        fail(label, f"pattern_bits({n}, {k}) should be log2(comb({n}, {k})) = {expected:.4f}, got {got:.4f}")
    return passed(label, "log2 C(n, k) bits, always below the bound n H(k/n)")
