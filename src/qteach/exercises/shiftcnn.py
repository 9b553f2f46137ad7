"""Self-checks of the chapter "ShiftCNN".

Each check calls the student's function on several inputs, compares with a reference computed independently
(exact binary exponents with ``torch.frexp``, or :mod:`qteach.papers.shiftcnn`), and either prints the success line
or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import shiftcnn as sc

_SLUG = "shiftcnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the nearest power of two -----------------------------------------------------------------------

def _reference_power(r: torch.Tensor) -> torch.Tensor:
    mantissa, exponent = torch.frexp(r.abs())
    k = exponent - 1 + (mantissa > 0.75).to(exponent.dtype)
    return torch.where(r == 0, torch.zeros_like(r), torch.sign(r) * torch.pow(2.0, k.to(r.dtype)))


def _cases_1():
    g = torch.Generator().manual_seed(21)
    return [
        ("hand-picked values", torch.tensor([0.8, -0.3, 0.05, 1.0, 0.7, -0.74, 0.76, 0.2])),
        ("values exactly on a border (0.75 = 1.5 * 2^-1, 0.1875 = 1.5 * 2^-3)", torch.tensor([0.75, -0.1875, 0.375])),
        ("zeros", torch.tensor([0.0, 0.5, -0.0, -1.0])),
        ("random values in [-1, 1]", (torch.rand(200, generator=g) * 2 - 1).to(torch.float64)),
    ]


@self_check
def check_1(nearest_power_of_two) -> str:
    """Check ``nearest_power_of_two(r)``: sign(r) * 2^k with the border at 1.5 * 2^k (ties down), 0 stays 0."""
    label = _label(1)
    expect(callable(nearest_power_of_two), label, "pass your function itself, e.g. check_1(nearest_power_of_two)")
    for what, r in _cases_1():
        got = nearest_power_of_two(r.clone())
        expect_type(got, torch.Tensor, label, "nearest_power_of_two(r)")
        expect(got.shape == r.shape, label, f"on {what}: the result should have shape {tuple(r.shape)}, got "
                                            f"{tuple(got.shape)}")
        reference = _reference_power(r)
        got = got.detach().to(r.dtype)
        if not torch.equal(got, reference):
            logs = torch.log2(r.abs())
            mantissa, exponent = torch.frexp(r.abs())
            k_up = exponent - 1 + (mantissa >= 0.75).to(exponent.dtype)
            ties_up = torch.sign(r) * torch.pow(2.0, k_up.to(r.dtype))
            candidates = [
                (ties_up, "a value exactly on the border 1.5 * 2^k must go *down* to 2^k: compare strictly "
                          "(|r| > 1.5 * 2^k), as the official script does."),
                (torch.sign(r) * torch.pow(2.0, torch.round(logs)),
                 "rounding log2|r| to the nearest integer puts the border at sqrt(2) * 2^k; ShiftCNN rounds to the "
                 "*linear* midpoint between 2^k and 2^(k+1), i.e. the border is 1.5 * 2^k."),
                (torch.sign(r) * torch.pow(2.0, torch.floor(logs)),
                 "floor(log2|r|) always rounds down; go up to 2^(k+1) when |r| > 1.5 * 2^k."),
                (torch.sign(r) * torch.pow(2.0, torch.ceil(logs)),
                 "ceil(log2|r|) always rounds up; go up only when |r| > 1.5 * 2^k."),
            ]
            hint = "k = floor(log2|r|), plus 1 when |r| > 1.5 * 2^k (strictly); keep the sign; zero stays zero."
            for value, candidate_hint in candidates:
                value = torch.where(r == 0, torch.zeros_like(r), value)
                if torch.equal(got, value):
                    hint = candidate_hint
                    break
            if bool(torch.isnan(got).any()) or bool(((r == 0) & (got != 0)).any()):
                hint = "a zero input must give 0 (log2(0) is -inf: handle it separately)."
            bad = int((got != reference).nonzero()[0])
            fail(label, f"on {what}: for r = {r[bad].item():.6g} you return {got[bad].item():.6g}, expected "
                        f"{reference[bad].item():.6g}. {hint}")
    return passed(label, f"nearest powers of two match on {len(_cases_1())} inputs, borders and zeros included")


# --- exercise 2: the codebooks ----------------------------------------------------------------------------------

@self_check
def check_2(codebook_values) -> str:
    """Check ``codebook_values(n, bits)`` against the paper's C_n (sorted values; a list or a tensor)."""
    label = _label(2)
    expect(callable(codebook_values), label, "pass your function itself, e.g. check_2(codebook_values)")
    cases = [(1, 4), (2, 4), (3, 2), (1, 3), (4, 5)]
    for n, bits in cases:
        got = codebook_values(n, bits)
        if isinstance(got, torch.Tensor):
            got = got.flatten().tolist()
        expect(isinstance(got, (list, tuple)), label, f"codebook_values should return a list or a 1-D tensor, got "
                                                     f"{type(got).__name__}")
        got = sorted(float(v) for v in got)
        reference = sc.codebook(n, bits).tolist()
        if got != reference:
            m = 2**bits - 1
            what = f"n = {n}, B = {bits}"
            nonzero = [v for v in got if v != 0]
            if len(got) == len(reference) - 1 and 0.0 not in got:
                hint = "every codebook contains 0 (a term may be switched off)."
            elif len(got) == len(reference) + 2:
                hint = f"M = 2^B - 1 = {m} entries in total: zero plus floor(M/2) = {m // 2} powers of each sign."
            elif len(got) == len(reference) and nonzero and max(nonzero) == 2.0 ** -n:
                hint = "the largest power of C_n is 2^(-n+1) (1 for the first codebook), not 2^-n."
            elif len(got) == len(reference) and nonzero and max(nonzero) == 2.0 ** (-n + 2):
                hint = "the largest power of C_n is 2^(-n+1), not 2^(-n+2): the first codebook tops out at 1."
            else:
                hint = ("C_n = {0, +-2^(-n+1), +-2^(-n), ..., +-2^(-n-floor(M/2)+2)} with M = 2^B - 1: "
                        f"{len(reference)} values here.")
            fail(label, f"for {what}: got {len(got)} values {got[:4]}..., expected {reference}. {hint}")
    return passed(label, f"the codebooks C_n match the paper's definition for {len(cases)} (n, B) pairs")
