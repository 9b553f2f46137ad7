"""The self-checks of "Incremental Network Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import incremental_network_quantization as ex
from qteach.papers import incremental_network_quantization as inq

LABEL = "ex-incremental_network_quantization-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


# --- exercise 1 ---------------------------------------------------------------------------------------------

def quantize_to_powers(w, n1, n2):
    m = w.abs()
    out = torch.zeros_like(w)
    for k in range(n2, n1 + 1):
        lower = 0.75 * 2.0**k if k > n2 else 0.5 * 2.0**k
        upper = 1.5 * 2.0**k if k < n1 else float("inf")
        out = torch.where((m >= lower) & (m < upper), torch.sign(w) * 2.0**k, out)
    return out


def log_scale(w, n1, n2):
    k = torch.clamp(torch.round(torch.log2(w.abs().clamp(min=1e-30))), n2, n1)
    return torch.where(w.abs() < 2.0 ** (n2 - 1), torch.zeros_like(w), torch.sign(w) * torch.exp2(k))


def no_zero(w, n1, n2):
    k = torch.floor(torch.log2(4 * w.abs().clamp(min=1e-30) / 3)).clamp(n2, n1)
    return torch.where(w >= 0, 1.0, -1.0) * torch.exp2(k)


def ties_down(w, n1, n2):
    p = inq.levels(n1, n2).to(w.dtype)
    distance = (w.unsqueeze(-1) - p).abs()
    return p[distance.argmin(-1)]  # argmin keeps the first (smaller) level at a tie


def test_check_1_passes_the_solution(capsys):
    ex.check_1(quantize_to_powers)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(inq.quantize_power_of_two)


@pytest.mark.parametrize("wrong, hint", [
    (log_scale, "log scale"),
    (no_zero, "must become 0"),
    (lambda w, n1, n2: quantize_to_powers(w, n1, n2).abs(), "keep the sign"),
    (ties_down, "larger level"),
    (lambda w, n1, n2: quantize_to_powers(w, n1, n2).flatten(), "shape"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


# --- exercise 2 ---------------------------------------------------------------------------------------------

def zeros_in_first_half(w, bits):
    n1, n2 = inq.exponent_range(w, bits)
    q = inq.quantize_power_of_two(w, n1, n2)
    first = w.abs() >= w.abs().flatten().sort(descending=True).values[w.numel() // 2 - 1]
    return (q[first] == 0).float().mean().item()


def by_hand(w, bits):  # eq. 2-4 written out, the larger half through the median (one weight more)
    s = w.abs().max().item()
    n1 = math.floor(math.log2(4 * s / 3))
    n2 = n1 + 1 - 2 ** (bits - 1) // 2
    big = w.abs()[w.abs() >= w.abs().median()]
    return float((big < 2.0 ** (n2 - 1)).sum()) / big.numel()


def _fraction(w, bits, which):
    n1, n2 = inq.exponent_range(w, bits)
    zero = inq.quantize_power_of_two(w, n1, n2) == 0
    first = inq.partition(w, torch.zeros_like(w, dtype=torch.bool), 0.5)
    mask = {"all": torch.ones_like(first), "small": ~first, "big": first}[which]
    return zero[mask].float().mean()


def test_check_2_passes_the_solution(capsys):
    ex.check_2(zeros_in_first_half)
    out = capsys.readouterr().out
    assert "✅ " + LABEL.format(2) + " passed" in out and "0 % of the larger half" in out and "96 %" in out


def test_check_2_accepts_other_correct_answers(capsys):
    ex.check_2(by_hand)
    ex.check_2(lambda w, b: _fraction(w, b, "big"))  # a 0-d tensor
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, b: _fraction(w, b, "all"), "over all the weights"),
    (lambda w, b: _fraction(w, b, "small"), "smaller half"),
    (lambda w, b: 1 - _fraction(w, b, "big"), "stays non-zero"),
    (lambda w, b: _fraction(w, b, "big") * (w.numel() // 2), "not a count"),
    (lambda w, b: float((w.abs() < 0.5 * w.abs().max()).float().mean()), "largest |w|"),
    (lambda w, b: [0.0], "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
