"""The self-checks of "ShiftCNN": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import shiftcnn as ex
from qteach.papers import shiftcnn as sc

LABEL = "ex-shiftcnn-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def nearest_power_of_two(r):
    mantissa, exponent = torch.frexp(r.abs())
    k = exponent - 1 + (mantissa > 0.75).to(exponent.dtype)
    return torch.where(r == 0, torch.zeros_like(r), torch.sign(r) * torch.pow(2.0, k.to(r.dtype)))


def with_log2(r):
    k = torch.floor(torch.log2(r.abs()))
    k = k + (r.abs() > 1.5 * torch.pow(2.0, k)).to(r.dtype)
    return torch.where(r == 0, torch.zeros_like(r), torch.sign(r) * torch.pow(2.0, k))


def rounded_log(r):
    return torch.sign(r) * torch.pow(2.0, torch.round(torch.log2(r.abs())))


def floored_log(r):
    return torch.sign(r) * torch.pow(2.0, torch.floor(torch.log2(r.abs())))


def ties_up(r):
    k = torch.floor(torch.log2(r.abs()))
    k = k + (r.abs() >= 1.5 * torch.pow(2.0, k)).to(r.dtype)
    return torch.where(r == 0, torch.zeros_like(r), torch.sign(r) * torch.pow(2.0, k))


def zero_to_nan(r):
    k = torch.floor(torch.log2(r.abs()))
    k = k + (r.abs() > 1.5 * torch.pow(2.0, k)).to(r.dtype)
    return torch.pow(2.0, k) * r / r.abs()


def test_check_1_passes_the_solutions(capsys):
    line = ex.check_1(nearest_power_of_two)
    assert line.startswith("✅ " + LABEL.format(1)) and "passed" in capsys.readouterr().out
    ex.check_1(with_log2)


@pytest.mark.parametrize("wrong, hint", [
    (rounded_log, "sqrt(2)"),
    (floored_log, "always rounds down"),
    (lambda r: torch.sign(r) * torch.pow(2.0, torch.ceil(torch.log2(r.abs()))), "always rounds up"),
    (ties_up, "strictly"),
    (zero_to_nan, "zero input"),
    (lambda r: r.tolist(), "Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


# --- exercise 2 ---------------------------------------------------------------------------------------------

def best_two_terms(w, bits):
    c1, c2 = sc.codebook(1, bits).to(w.dtype), sc.codebook(2, bits).to(w.dtype)
    sums = (c1[:, None] + c2[None, :]).flatten()           # every value two terms can take
    scale = w.abs().max()
    nearest = (w[:, None] / scale - sums[None, :]).abs().argmin(dim=1)
    return scale * sums[nearest]


def loop_over_pairs(w, bits):  # a plain double loop, the last of equally close pairs wins
    scale = w.abs().max()
    out = torch.zeros_like(w)
    for i, v in enumerate((w / scale).tolist()):
        best = None
        for a in sc.codebook(1, bits).tolist():
            for b in sc.codebook(2, bits).tolist():
                if best is None or abs(v - a - b) <= abs(v - best):
                    best = a + b
        out[i] = scale * best
    return out


def normalised_only(w, bits):
    return best_two_terms(w, bits) / w.abs().max()


def not_normalised(w, bits):
    c1, c2 = sc.codebook(1, bits).to(w.dtype), sc.codebook(2, bits).to(w.dtype)
    sums = (c1[:, None] + c2[None, :]).flatten()
    return sums[(w[:, None] - sums[None, :]).abs().argmin(dim=1)]


def same_codebook(w, bits):
    c1 = sc.codebook(1, bits).to(w.dtype)
    sums = (c1[:, None] + c1[None, :]).flatten()
    scale = w.abs().max()
    return scale * sums[(w[:, None] / scale - sums[None, :]).abs().argmin(dim=1)]


def one_term(w, bits):
    c1 = sc.codebook(1, bits).to(w.dtype)
    scale = w.abs().max()
    return scale * c1[(w[:, None] / scale - c1[None, :]).abs().argmin(dim=1)]


def test_check_2_passes_the_solutions(capsys):
    line = ex.check_2(best_two_terms)
    assert line.startswith("✅ " + LABEL.format(2)) and "B = 3: greedy" in capsys.readouterr().out
    ex.check_2(loop_over_pairs)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, b: sc.shift_quantize(w, 2, b), "greedy search"),
    (normalised_only, "multiply back"),
    (not_normalised, "divide the weights by max|w|"),
    (same_codebook, "not from C_1 again"),
    (one_term, "that is one term from C_1"),
    (lambda w, b: w.clone(), "max|w| * (c1 + c2)"),
    (lambda w, b: best_two_terms(w, b)[:1], "shape"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message, message
