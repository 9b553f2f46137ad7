"""Self-checks of the chapter "Incremental Network Quantization".

Each check calls the student's function on several weight tensors, compares with
:mod:`qteach.papers.incremental_network_quantization`, and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import incremental_network_quantization as inq

_SLUG = "incremental_network_quantization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _as_int(value, label: str, what: str) -> int:
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, label, f"{what} should be a single integer, got a tensor of shape "
                                          f"{tuple(value.shape)}")
        value = value.item()
    expect(isinstance(value, (int, float)) and not isinstance(value, bool), label,
           f"{what} should be an integer, got {type(value).__name__}")
    expect(float(value) == int(value), label, f"{what} should be an integer exponent, got {value}")
    return int(value)


# --- exercise 1: n1 and n2 (eq. 2-3) ---------------------------------------------------------------------------

def _n1_hint(w: torch.Tensor, got: int) -> str:
    s = float(w.abs().max())
    candidates = [
        (math.floor(math.log2(s)), "that is floor(log2(s)): you forgot the factor 4/3 of eq. 2."),
        (round(math.log2(s)), "eq. 2 rounds down (floor) log2(4 s / 3); it does not round log2(s)."),
        (math.ceil(math.log2(4 * s / 3)), "eq. 2 takes the floor of log2(4 s / 3), not the ceiling."),
        (math.floor(math.log2(4 * float(w.abs().mean()) / 3)),
         "s is the largest magnitude max(abs(W)) (eq. 3), not the mean."),
    ]
    hints = [hint for value, hint in candidates if got == value]
    return " Or: ".join(hints) if hints else "n1 = floor(log2(4 s / 3)) with s = max(abs(W))."


@self_check
def check_1(exponent_bounds) -> None:
    """Check ``exponent_bounds(w, bits) -> (n1, n2)`` against eq. 2-3 and n2 = n1 + 1 - 2^(b-1) / 2."""
    label = _label(1)
    expect(callable(exponent_bounds), label, "pass your function itself, e.g. check_1(exponent_bounds)")
    cases = [
        ("[0.1, -0.75, 0.3] (4 s / 3 is exactly 1)", torch.tensor([0.1, -0.75, 0.3]), 5),
        ("the paper's example, s = 0.5", torch.tensor([0.5, -0.2, 0.05]), 3),
        ("ternary, s = 0.5", torch.tensor([0.5, -0.2, 0.05]), 2),
        ("Gaussian weights, scale 0.05", weight_samples((16, 9), "gaussian", scale=0.05, seed=1), 4),
        ("a negative maximum, -3", torch.tensor([-3.0, 1.0, 0.4]), 5),
        ("Laplace weights, scale 2", weight_samples(200, "laplace", scale=2.0, seed=2), 3),
    ]
    for what, w, bits in cases:
        result = exponent_bounds(w.clone(), bits)
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               f"exponent_bounds should return a pair (n1, n2), got {type(result).__name__}")
        n1, n2 = _as_int(result[0], label, "n1"), _as_int(result[1], label, "n2")
        ref1, ref2 = inq.exponent_range(w, bits)
        if n1 != ref1:
            fail(label, f"on {what}: n1 = {n1}, expected {ref1}. {_n1_hint(w, n1)}")
        if n2 != ref2:
            hint = "n2 = n1 + 1 - 2^(b-1) / 2."
            if n2 == n1 - 2 ** (bits - 1) // 2:
                hint = "you forgot the + 1: n2 = n1 + 1 - 2^(b-1) / 2."
            elif n2 == n1 + 1 - 2 ** (bits - 1):
                hint = ("divide 2^(b-1) by 2: the b - 1 bits index 2^(b-1) non-zero values, which are "
                        "2^(b-2) magnitudes with two signs.")
            fail(label, f"on {what} with b = {bits}: n2 = {n2}, expected {ref2}. {hint}")
    return passed(label, f"n1 and n2 match eq. 2-3 on {len(cases)} tensors and bit widths 2 to 5")


# --- exercise 2: the ladder of powers (eq. 4) -------------------------------------------------------------------

@self_check
def check_2(quantize_to_powers) -> None:
    """Check ``quantize_to_powers(w, n1, n2)`` against eq. 4 (nearest level on a linear scale, ties up)."""
    label = _label(2)
    expect(callable(quantize_to_powers), label, "pass your function itself, e.g. check_2(quantize_to_powers)")
    hand = torch.tensor([0.1, 0.125, 0.2, 0.37, 0.375, 0.5, 0.74, 0.75, 1.2, -0.6, -0.05, 0.0, -1.0])
    cases = [
        ("the hand-made tensor of the text (ties included)", hand, 0, -2),
        ("Laplace weights, 5 bits", weight_samples(400, "laplace", scale=0.05, seed=3), None, 5),
        ("Gaussian weights, 3 bits", weight_samples((8, 3, 3), "gaussian", scale=0.2, seed=4), None, 3),
        ("ternary, 2 bits", weight_samples(100, "gaussian", seed=5), None, 2),
    ]
    for what, w, n1, n2_or_bits in cases:
        if n1 is None:
            n1, n2 = inq.exponent_range(w, n2_or_bits)
        else:
            n2 = n2_or_bits
        got = quantize_to_powers(w.clone(), n1, n2)
        expect(isinstance(got, torch.Tensor), label, f"quantize_to_powers should return a tensor, got "
                                                     f"{type(got).__name__}")
        expect(got.shape == w.shape, label, f"on {what}: the result has shape {tuple(got.shape)}, expected "
                                            f"{tuple(w.shape)}")
        ref = inq.quantize_power_of_two(w, n1, n2)
        got = got.detach().to(ref.dtype)
        if torch.allclose(got, ref, rtol=0, atol=1e-12):
            continue
        magnitude = w.abs().double()
        log_rounded = torch.sign(w) * torch.exp2(torch.clamp(torch.round(torch.log2(magnitude.clamp(min=1e-30))),
                                                             n2, n1)).to(w.dtype)
        log_rounded = torch.where(magnitude < 2.0 ** (n2 - 1), torch.zeros_like(w), log_rounded)
        if torch.allclose(got, log_rounded.to(ref.dtype)):
            hint = ("you rounded log2|w|, i.e. on a log scale (boundaries at sqrt(2) * 2^k); eq. 4 rounds on a linear "
                    "scale: beta = 2^k for 3/4 * 2^k <= |w| < 3/2 * 2^k.")
        elif bool((got.abs() > 0).all()) and bool((ref == 0).any()):
            hint = "weights with |w| < 2^(n2 - 1) must become 0 (the element 0 of P, alpha = 0 in eq. 4)."
        elif bool((got >= 0).all()) and bool((ref < 0).any()):
            hint = "keep the sign: beta * sgn(W)."
        elif bool(((got.abs() > 0) & (got.abs() < 2.0**n2)).any()):
            hint = "the smallest non-zero level is 2^n2; clamp the exponent to [n2, n1]."
        else:
            wrong = (got != ref).nonzero()[0]
            index = tuple(wrong.tolist())
            hint = (f"e.g. w = {w[index].item():.6g} should give {ref[index].item():.6g}, not {got[index].item():.6g}. "
                    "Mind the ties: eq. 4 says (alpha + beta) / 2 <= |w|, so a tie goes to the larger level.")
        fail(label, f"on {what} (n1 = {n1}, n2 = {n2}): the result differs from eq. 4. {hint}")
    return passed(label, f"your quantizer matches eq. 4 on {len(cases)} tensors, ties and zeros included")
