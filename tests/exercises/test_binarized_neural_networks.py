"""The self-checks of the BNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import binarized_neural_networks as ex

LABEL = "ex-binarized_neural_networks-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def stochastic_sign(x, generator):
    p = ((x + 1) / 2).clamp(0, 1)
    return torch.where(torch.rand(x.shape, generator=generator) < p, 1.0, -1.0)


def stochastic_sign_bernoulli(x, generator):
    """Another correct answer: torch.bernoulli, and the hard sigmoid written with hardtanh."""
    p = (torch.nn.functional.hardtanh(x) + 1) / 2
    return 2 * torch.bernoulli(p, generator=generator) - 1


def stochastic_sign_threshold(x, generator):
    """Another correct answer: compare x with a uniform threshold in [-1, 1)."""
    return torch.where(x > 2 * torch.rand(x.shape, generator=generator, dtype=torch.float64) - 1, 1, -1)


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(stochastic_sign)
    assert "✅ ex-binarized_neural_networks-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("right", [stochastic_sign_bernoulli, stochastic_sign_threshold])
def test_check_1_accepts_other_correct_answers(right):
    ex.check_1(right)


@pytest.mark.parametrize("wrong,hint", [
    (lambda x, g: torch.where(torch.rand(x.shape, generator=g) < torch.sigmoid(x), 1.0, -1.0), "logistic"),
    (lambda x, g: -stochastic_sign(x, g), "swapped"),
    (lambda x, g: torch.where(x >= 0, 1.0, -1.0), "deterministic"),
    (lambda x, g: torch.where(torch.rand(x.shape, generator=g) < 0.5, 1.0, -1.0), "depend on x"),
    (lambda x, g: (stochastic_sign(x, g) + 1) / 2, "0s and 1s"),
    (lambda x, g: stochastic_sign(x, g) * 2, "only -1 and +1"),
    (lambda x, g: torch.where(torch.rand(x.shape) < ((x + 1) / 2).clamp(0, 1), 1.0, -1.0), "generator passed in"),
    (lambda x, g: torch.where(torch.rand(x.shape, generator=g) < ((x + 1) / 3).clamp(0, 1), 1.0, -1.0),
     "u < p"),
    (lambda x, g: stochastic_sign(x, g)[0], "shape"),
    (lambda x, g: x.tolist(), "should be a Tensor"),
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
