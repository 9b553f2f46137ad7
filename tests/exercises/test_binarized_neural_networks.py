"""The self-checks of the BNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import binarized_neural_networks as ex

LABEL = "ex-binarized_neural_networks-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def approx_pow2(x):
    power = torch.exp2(torch.round(torch.log2(x.abs())))
    return torch.where(x == 0, torch.zeros_like(x), torch.sign(x) * power)


def ap2_no_sign(x):
    return torch.where(x == 0, torch.zeros_like(x), torch.exp2(torch.round(torch.log2(x.abs()))))


def ap2_floor(x):
    return torch.where(x == 0, torch.zeros_like(x), torch.sign(x) * torch.exp2(torch.floor(torch.log2(x.abs()))))


def ap2_no_zero_case(x):
    return torch.sign(x) * torch.exp2(torch.round(torch.log2(x.abs()))) + (x == 0) * 1.0


def ap2_round_x(x):
    return torch.sign(x) * torch.round(x.abs())


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(approx_pow2)
    assert "✅ ex-binarized_neural_networks-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (ap2_no_sign, "keep the sign"),
    (ap2_floor, "floor always rounds down"),
    (ap2_no_zero_case, "AP2(0) should be 0"),
    (ap2_round_x, "round the exponent"),
    (lambda x: x.sum(), "shape"),
    (lambda x: x.tolist(), "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def bitplane_dot(q, w_b):
    total = torch.zeros(q.shape[0], w_b.shape[0], dtype=torch.float64)
    for n in range(1, 9):
        plane = ((q >> (n - 1)) & 1).double()
        total += 2 ** (n - 1) * (plane @ w_b.double().T)
    return total


def planes_doubled(q, w_b):
    return 2 * bitplane_dot(q, w_b)


def seven_planes(q, w_b):
    return sum(2 ** (n - 1) * (((q >> (n - 1)) & 1).double() @ w_b.double().T) for n in range(1, 8))


def planes_as_signs(q, w_b):
    return sum(2 ** (n - 1) * ((2 * ((q >> (n - 1)) & 1) - 1).double() @ w_b.double().T) for n in range(1, 9))


def unweighted(q, w_b):
    return sum(((q >> (n - 1)) & 1).double() @ w_b.double().T for n in range(1, 9))


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(bitplane_dot)
    assert "✅ ex-binarized_neural_networks-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (planes_doubled, "counts 1, not 2"),
    (seven_planes, "one is missing"),
    (planes_as_signs, "not -1/+1"),
    (unweighted, "weight plane n"),
    (lambda q, w: (q.double() @ w.double().T).T, "shape"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
