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

def exponent_bounds(w, bits):
    s = w.abs().max().item()
    n1 = math.floor(math.log2(4 * s / 3))
    return n1, n1 + 1 - 2 ** (bits - 1) // 2


def test_check_1_passes_the_solution(capsys):
    ex.check_1(exponent_bounds)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(inq.exponent_range)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, b: (math.floor(math.log2(w.abs().max().item())), 0), "factor 4/3"),
    (lambda w, b: (math.floor(math.log2(4 * w.abs().mean().item() / 3)), 0), "not the mean"),
    (lambda w, b: (exponent_bounds(w, b)[0], exponent_bounds(w, b)[0] - 2 ** (b - 1) // 2), "forgot the + 1"),
    (lambda w, b: (exponent_bounds(w, b)[0], exponent_bounds(w, b)[0] + 1 - 2 ** (b - 1)), "two signs"),
    (lambda w, b: exponent_bounds(w, b)[0], "pair"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


# --- exercise 2 ---------------------------------------------------------------------------------------------

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


def test_check_2_passes_the_solution(capsys):
    ex.check_2(quantize_to_powers)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out
    ex.check_2(inq.quantize_power_of_two)


@pytest.mark.parametrize("wrong, hint", [
    (log_scale, "log scale"),
    (no_zero, "must become 0"),
    (lambda w, n1, n2: quantize_to_powers(w, n1, n2).abs(), "keep the sign"),
    (ties_down, "larger level"),
    (lambda w, n1, n2: quantize_to_powers(w, n1, n2).flatten(), "shape"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
