"""Self-checks of the chapter "Incremental Network Quantization".

Each check calls the student's function on several weight tensors, compares with
:mod:`qteach.papers.incremental_network_quantization` (exercise 1: eq. 4; exercise 2: how many of the first frozen
half become zero), and either prints the success line or raises ``AssertionError`` with a hint naming the likely
mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import incremental_network_quantization as inq

_SLUG = "incremental_network_quantization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the ladder of powers (eq. 4) -------------------------------------------------------------------

@self_check
def check_1(quantize_to_powers) -> None:
    """Check ``quantize_to_powers(w, n1, n2)`` against eq. 4 (nearest level on a linear scale, ties up)."""
    label = _label(1)
    expect(callable(quantize_to_powers), label, "pass your function itself, e.g. check_1(quantize_to_powers)")
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


# --- exercise 2: one weight sets the levels: zeros in the first frozen half ------------------------------------

def _half_cases():
    gaussian = weight_samples((16, 9), "gaussian", scale=0.1, seed=1)
    outlier = gaussian.clone()
    outlier.view(-1)[0] = 3 * gaussian.abs().max()
    return [
        ("144 Gaussian weights, 3 bits", gaussian, 3),
        ("the same weights, one of them set to 3 times the largest, 3 bits", outlier, 3),
        ("144 Gaussian weights, 2 bits", gaussian, 2),
        ("200 Laplace weights, 4 bits", weight_samples(200, "laplace", scale=0.05, seed=2), 4),
        ("the outlier layer, 5 bits", outlier, 5),
    ]


def _zero_fraction(w, bits, mask):
    n1, n2 = inq.exponent_range(w, bits)
    zero = inq.quantize_power_of_two(w, n1, n2) == 0
    return float(zero[mask].float().mean()), int(zero[mask].sum())


@self_check
def check_2(zeros_in_first_half) -> None:
    """Check ``zeros_in_first_half(w, bits)``: the fraction of the larger half of ``|w|`` that eq. 4 sets to 0, with
    the layer's own n1, n2; one weight more or less in the half (a median taken either way) is accepted."""
    label = _label(2)
    expect(callable(zeros_in_first_half), label, "pass your function itself, e.g. check_2(zeros_in_first_half)")
    found = []
    for what, w, bits in _half_cases():
        first = inq.partition(w, torch.zeros_like(w, dtype=torch.bool), 0.5)
        expected, count = _zero_fraction(w, bits, first)
        got = as_number(zeros_in_first_half(w.clone(), bits), label, "zeros_in_first_half(w, bits)")
        found.append(expected)
        half = int(first.sum())
        if abs(got - expected) <= 1 / half + 1e-6:
            continue
        hint = ("take the half of the weights with the largest |w| (what the 50 % step freezes), quantize the "
                "layer with eq. 4 using n1, n2 of the whole layer, and count the zeros among that half.")
        everywhere, _ = _zero_fraction(w, bits, torch.ones_like(first))
        smaller, _ = _zero_fraction(w, bits, ~first)
        if count > 1 and math.isclose(got, count):
            hint = "return a fraction of the half (between 0 and 1), not a count."
        elif math.isclose(got, everywhere, abs_tol=1e-6):
            hint = "that is the fraction over all the weights; count only the larger half, the one frozen first."
        elif math.isclose(got, smaller, abs_tol=1e-6):
            hint = "that is the smaller half (still float after the 50 % step); the first step freezes the larger |w|."
        elif math.isclose(got, 1 - expected, abs_tol=1 / half + 1e-6):
            hint = "that is the fraction that stays non-zero; the question asks for the zeros."
        fail(label, f"on {what}: got {got:.4g}, expected {expected:.4g}. {hint}")
    return passed(label, f"your fractions match on {len(found)} layers; at 3 bits, {100 * found[0]:.0f} % of the "
                         f"larger half of 144 Gaussian weights become 0, and {100 * found[1]:.0f} % once one weight "
                         f"is 3 times the largest")
