"""Self-checks of the BinaryDuo chapter (notebooks/2020/binaryduo.ipynb).

Each check calls the student's function, compares it with what the decoupling must compute, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import binaryduo as bd

_SLUG = "binaryduo"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _case(seed: int, n: int, k: int, m: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, k, generator=g) * 1.4 - 0.2
    y[0, : min(k, 4)] = torch.tensor([1 / 6, 0.5, 5 / 6, 1.0])[: min(k, 4)]
    return y, torch.randn(m, k, generator=g)


# --- exercise 1: decouple a 2-bit activation into three binary ones -------------------------------------------


@self_check
def check_1(decouple_2bit) -> str:
    """Check ``decouple_2bit(y, w) -> (bits, w3)``: 0/1 ``bits`` (N, 3K) and ``w3`` (M, 3K) with
    ``bits @ w3.T`` equal to ``activation(y, 3) @ w.T``."""
    label = _label(1)
    expect(callable(decouple_2bit), label, "pass your function itself, e.g. check_1(decouple_2bit)")
    for seed, (n, k, m) in enumerate(((6, 5, 3), (1, 1, 1), (40, 9, 4))):
        y, w = _case(seed, n, k, m)
        out = decouple_2bit(y.clone(), w.clone())
        expect(isinstance(out, tuple) and len(out) == 2, label, "return a pair (bits, w3)")
        bits, w3 = out
        expect_type(bits, torch.Tensor, label, "bits")
        expect_type(w3, torch.Tensor, label, "w3")
        expect(bits.shape == (n, 3 * k), label, f"bits should have the shape (N, 3K) = {(n, 3 * k)}, got "
                                                f"{tuple(bits.shape)}: three binary activations per 2-bit one")
        expect(w3.shape == (m, 3 * k), label, f"w3 should have the shape (M, 3K) = {(m, 3 * k)}, got "
                                              f"{tuple(w3.shape)}")
        expect(bool(((bits == 0) | (bits == 1)).all()), label, "bits must be 0 or 1: compare y with a threshold")
        expected = bd.activation(y, 3) @ w.T
        got = bits.to(expected.dtype) @ w3.to(expected.dtype).T
        if torch.allclose(got, 3 * expected, atol=1e-4):
            fail(label, "the sum is 3 times too large: each of the three copies of W must be divided by 3.")
        if torch.allclose(got, 1.5 * expected, atol=1e-4):
            fail(label, "the copies of W are halved as in the ternary case; with three bits divide by 3.")
        expect(torch.allclose(got, expected, atol=1e-4), label,
               "bits @ w3.T differs from activation(y, 3) @ w.T: the 2-bit levels 0, 1/3, 2/3, 1 switch at the "
               "midpoints y = 1/6, 1/2 and 5/6 (round to nearest), so the three bits are y >= 1/6, y >= 1/2 and "
               "y >= 5/6, and w3 is [W/3, W/3, W/3] in the same order.")
    return passed(label, "a 2-bit activation is the mean of three binary ones, the next weight split in thirds")


# --- exercise 2: a float32 input where the official bias shift disagrees -----------------------------------------


@self_check
def check_2(find_tie) -> str:
    """Check ``find_tie() -> y``: a float32 tensor holding at least one value where the official bias-shifted
    pair ``activation(y - 0.25, 1) + activation(y + 0.25, 1)`` differs from ``2 * activation(y, 2)``."""
    label = _label(2)
    expect(callable(find_tie), label, "pass your function itself, e.g. check_2(find_tie)")
    y = find_tie()
    expect_type(y, torch.Tensor, label, "find_tie()")
    expect(y.dtype == torch.float32, label, f"y should be float32 (the rounding depends on it), got {y.dtype}")
    expect(y.numel() > 0 and bool(torch.isfinite(y).all()), label, "y should hold finite numbers")
    y = y.flatten()
    shifted = bd.activation(y - bd.SHIFT, 1) + bd.activation(y + bd.SHIFT, 1)
    differs = shifted != 2 * bd.activation(y, 2)
    if not bool(differs.any()):
        fail(label, "the two forms agree on all your values. They can only differ where y +- 0.25 is rounded: "
                    "try the float32 just below 1/4, 0.25 - 2**-26 (y + 0.25 then rounds to 0.5, a tie).")
    return passed(label, f"at y = {y[differs][0].item():.10g} the shifted copy rounds onto the threshold")
