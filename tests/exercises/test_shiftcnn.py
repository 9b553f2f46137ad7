"""The self-checks of "ShiftCNN": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import shiftcnn as ex

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

def codebook_values(n, bits):
    half = (2**bits - 1) // 2
    powers = [2.0 ** (-n + 1 - j) for j in range(half)]
    return sorted([0.0] + powers + [-p for p in powers])


def test_check_2_passes_the_solution(capsys):
    line = ex.check_2(codebook_values)
    assert line.startswith("✅ " + LABEL.format(2)) and "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, b: [v for v in codebook_values(n, b) if v != 0], "contains 0"),
    (lambda n, b: sorted([0.0] + [s * 2.0 ** (-n + 1 - j) for s in (1, -1) for j in range(2 ** (b - 1))]),
     "M = 2^B - 1"),
    (lambda n, b: [v / 2 for v in codebook_values(n, b)], "not 2^-n"),
    (lambda n, b: [v * 2 for v in codebook_values(n, b)], "not 2^(-n+2)"),
    (lambda n, b: [0.0, 1.0], "C_n = {0"),
    (lambda n, b: "C", "list"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message
