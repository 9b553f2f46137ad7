"""The self-checks of "WRPN": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach.exercises import wrpn as ex
from qteach.papers import wrpn

LABEL = "ex-wrpn-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def dead_fraction(k, n_in):
    half_step = 0.5 / (2 ** (k - 1) - 1)
    return min(1.0, half_step * math.sqrt(n_in))


def test_check_1_passes_the_solution(capsys):
    ex.check_1(dead_fraction)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_passes_another_correct_form():
    # a tensor answer, the bound written as a ratio of the fan-in
    ex.check_1(lambda k, n: torch.tensor(n ** 0.5 / (2 * (2 ** (k - 1) - 1))).clamp(max=1.0))


def test_reference_matches_the_quantizer():
    """The closed form is what WRPN's quantizer does to a fresh PyTorch layer (statistically)."""
    for k, n_in in [(4, 64), (3, 16), (5, 256)]:
        torch.manual_seed(0)
        w = nn.Linear(n_in, 2000).weight.detach()
        measured = float((wrpn.quantize_weights(w, k) == 0).float().mean())
        assert abs(measured - ex.dead_fraction_reference(k, n_in)) < 0.01
    assert (wrpn.quantize_weights(nn.Linear(64, 64).weight.detach(), 3) == 0).all()


@pytest.mark.parametrize("wrong, hint", [
    (lambda k, n: 0.5 / (2 ** (k - 1) - 1) * n ** 0.5, "in [0, 1]"),
    (lambda k, n: min(1.0, 0.5 / (2**k - 1) * n ** 0.5), "one of the k bits is the sign"),
    (lambda k, n: min(1.0, 1 / (2 ** (k - 1) - 1) * n ** 0.5), "HALF a step"),
    (lambda k, n: min(1.0, 0.5 / (2 ** (k - 1) - 1) * n), "1/sqrt(n_in)"),
    (lambda k, n: 0.5, "half a step of the grid"),
    (lambda k, n: "all", "number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


def widest_within(bits, budget):
    m = 0
    while (64 * 16 * (m + 1) + (16 * (m + 1)) ** 2 + 16 * (m + 1) * 10) * bits**2 <= budget:
        m += 1
    return m


def test_check_2_passes_the_solution(capsys):
    ex.check_2(widest_within)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


def test_check_2_passes_the_library_way():
    def with_network_bops(bits, budget):
        m = 0
        while wrpn.network_bops(wrpn.wrpn_mlp(width=m + 1, weight_bits=bits, activation_bits=bits), (64,)) <= budget:
            m += 1
        return m
    ex.check_2(with_network_bops)


def test_check_2_passes_the_quadratic_formula():
    def closed_form(bits, budget):  # 256 m^2 + 1184 m <= budget / bits^2
        c = budget / bits**2
        m = int((-1184 + math.sqrt(1184**2 + 4 * 256 * c)) / (2 * 256))
        while (256 * (m + 1) ** 2 + 1184 * (m + 1)) <= c:
            m += 1
        return m
    ex.check_2(closed_form)


def test_mlp_bops_matches_network_bops():
    for width, bits in [(1, 32), (2, 4), (3, 2), (5, 8)]:
        model = wrpn.wrpn_mlp(width=width, weight_bits=bits, activation_bits=bits)
        assert ex.mlp_bops(width, bits) == wrpn.network_bops(model, (64,))


@pytest.mark.parametrize("wrong, hint", [
    (lambda b, budget: widest_within(b, budget) + 1, "return the largest width that fits"),
    (lambda b, budget: math.floor(math.sqrt(budget / (1440 * b * b))), "square"),
    (lambda b, budget: int(budget // (1440 * b * b)), "too wide"),
    (lambda b, budget: max(0, widest_within(b, budget) - 1), "only the hidden-to-hidden layer"),
    (lambda b, budget: float(widest_within(b, budget)), "int"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
