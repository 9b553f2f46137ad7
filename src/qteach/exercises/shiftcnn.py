"""Self-checks of the chapter "ShiftCNN".

Each check calls the student's function on several inputs, compares with a reference computed independently
(exact binary exponents with ``torch.frexp``, or an exhaustive search over the codebooks of
:mod:`qteach.papers.shiftcnn`), and either prints the success line
or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_tensor_like, fail, passed, self_check
from qteach.data import weight_samples
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
        expect_tensor_like(got, r, label, f"on {what}, nearest_power_of_two(r)")
        reference = _reference_power(r)
        got = got.detach().to(r.dtype)
        if not torch.equal(got, reference):
            logs = torch.log2(r.abs())
            mantissa, exponent = torch.frexp(r.abs())
            k_up = exponent - 1 + (mantissa >= 0.75).to(exponent.dtype)
            ties_up = torch.sign(r) * torch.pow(2.0, k_up.to(r.dtype))
            candidates = [
                (ties_up, ("a value exactly on the border 1.5 * 2^k must go *down* to 2^k: compare strictly "
                          "(|r| > 1.5 * 2^k), as the official script does.")),
                (torch.sign(r) * torch.pow(2.0, torch.round(logs)),
                 ("rounding log2|r| to the nearest integer puts the border at sqrt(2) * 2^k; ShiftCNN rounds to the "
                 "*linear* midpoint between 2^k and 2^(k+1), i.e. the border is 1.5 * 2^k.")),
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


# --- exercise 2: is the greedy search optimal? ------------------------------------------------------------------

def _pair_values(bits: int) -> torch.Tensor:
    c1, c2 = sc.codebook(1, bits).double(), sc.codebook(2, bits).double()
    return (c1[:, None] + c2[None, :]).flatten().unique()


def _best(w: torch.Tensor, bits: int) -> torch.Tensor:
    scale = w.abs().max()
    values = _pair_values(bits)
    normalised = w / scale
    return scale * values[(normalised[:, None] - values[None, :]).abs().argmin(dim=1)]


def _cases_2():
    return [
        ("300 Gaussian weights (scale 0.05), B = 3", weight_samples(300, "gaussian", scale=0.05, seed=51).double(), 3),
        ("w = [0.34, 1.0], B = 3 (greedy stops at 0.25)", torch.tensor([0.34, 1.0], dtype=torch.float64), 3),
        ("w = [0.8, -0.3, 0.05, 1.0], B = 4", torch.tensor([0.8, -0.3, 0.05, 1.0], dtype=torch.float64), 4),
        ("300 Laplace weights (scale 0.05), B = 4", weight_samples(300, "laplace", scale=0.05, seed=52).double(), 4),
        ("200 Gaussian weights, B = 2", weight_samples(200, "gaussian", seed=53).double(), 2),
    ]


@self_check
def check_2(best_two_terms) -> str:
    """Check ``best_two_terms(w, bits)``: for every weight, a value max|w| * (c1 + c2), c1 in C_1, c2 in C_2, at the
    smallest distance from the weight (any of several equally close values is accepted)."""
    label = _label(2)
    expect(callable(best_two_terms), label, "pass your function itself, e.g. check_2(best_two_terms)")
    for what, w, bits in _cases_2():
        got = best_two_terms(w.clone(), bits)
        expect_tensor_like(got, w, label, f"on {what}, best_two_terms(w, bits)")
        got = got.detach().double()
        scale = w.abs().max()
        best = _best(w, bits)
        tolerance = 1e-9 * float(scale)
        values = _pair_values(bits) * scale
        allowed = (got[:, None] - values[None, :]).abs().min(dim=1).values <= tolerance
        closest = (w - got).abs() <= (w - best).abs() + tolerance
        if bool(allowed.all()) and bool(closest.all()):
            continue
        greedy = sc.shift_quantize(w, 2, bits)
        c1 = sc.codebook(1, bits).double()
        same_book = (c1[:, None] + c1[None, :]).flatten().unique()
        if torch.allclose(got, _best(w / scale, bits), rtol=0, atol=1e-9):
            hint = "you returned normalised values: multiply back by max|w|."
        elif torch.allclose(got, _pair_values(bits)[(w[:, None] - _pair_values(bits)[None, :]).abs().argmin(1)],
                            rtol=0, atol=1e-9):
            hint = "divide the weights by max|w| before matching them with the codebooks (and multiply back after)."
        elif torch.allclose(got, scale * same_book[((w / scale)[:, None] - same_book[None, :]).abs().argmin(1)],
                            rtol=0, atol=tolerance):
            hint = "the second term comes from C_2, the first codebook halved, not from C_1 again."
        elif torch.allclose(got, scale * c1[((w / scale)[:, None] - c1[None, :]).abs().argmin(1)], rtol=0,
                            atol=tolerance):
            hint = "that is one term from C_1; the exercise asks for the best sum of two, c1 + c2 with c2 from C_2."
        elif torch.allclose(got, greedy, rtol=0, atol=tolerance):
            hint = ("that is ShiftCNN's greedy search. It is not always the best pair: compare the weight with every "
                    "sum c1 + c2 and keep the closest.")
        elif not bool(allowed.all()):
            hint = "every result must be max|w| * (c1 + c2) with c1 from C_1 and c2 from C_2 (sc.codebook(n, bits))."
        else:
            hint = "some weights have a closer sum c1 + c2: search all the pairs (there are only M^2)."
        bad = int((~(allowed & closest)).nonzero()[0])
        fail(label, f"on {what}: for w = {w[bad].item():.6g} you return {got[bad].item():.6g}, the closest sum is "
                    f"{best[bad].item():.6g}. {hint}")
    w = weight_samples(10_000, "gaussian", seed=4).double()
    lines = []
    for bits in (3, 4):
        greedy, best = sc.shift_quantize(w, 2, bits), _best(w, bits)
        worse = ((w - greedy).abs() > (w - best).abs() + 1e-12).double().mean().item()
        lines.append(f"B = {bits}: greedy {((w - greedy) ** 2).sum().item() / (w**2).sum().item():.3g}, best pair "
                     f"{((w - best) ** 2).sum().item() / (w**2).sum().item():.3g} (greedy is farther for {100 * worse:.0f} % of the "
                     f"weights)")
    return passed(label, f"your pairs are the closest on {len(_cases_2())} tensors. Relative squared error of two terms "
                         f"on 10,000 Gaussian weights, " + "; ".join(lines))
