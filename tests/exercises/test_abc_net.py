"""The self-checks of "ABC-Net": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.data import weight_samples
from qteach.exercises import abc_net as ex
from qteach.papers import abc_net as abc

LABEL = "ex-abc_net-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def m2_prediction():
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    tail = math.erfc(1 / math.sqrt(2))
    return 1.0, 1 - (2 * phi) ** 2 / tail


def m2_measured():
    """Another correct answer: measure it on many Gaussian weights."""
    w = weight_samples(400_000, "gaussian", seed=0).double()
    _, _, bases = abc.approximate(w, 2)
    middle = bases[0] != bases[1]  # the middle level of the staircase
    delta = (w - w.mean())[middle].abs().max() / w.std(unbiased=False)
    return delta, abc.relative_error(w, 2)


def test_check_1_passes_the_solution(capsys):
    ex.check_1(m2_prediction)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_accepts_a_measurement_and_other_forms():
    ex.check_1(m2_measured)
    ex.check_1(lambda: [torch.tensor(1), 0.26])


@pytest.mark.parametrize("wrong, hint", [
    (lambda: (2.0, 0.262), "distance between the two thresholds"),
    (lambda: (0.612, 0.262), "TWN's optimal threshold"),
    (lambda: (0.5, 0.262), "the shifts are u = -1 and +1"),
    (lambda: (1.0, 1 - 2 / math.pi), "error of one sign"),
    (lambda: (1.0, 0.19), "TWN's optimal ternary error"),
    (lambda: (1.0, 0.512), "not its root"),
    (lambda: (1.0, 0.683), "fraction of weights set to 0"),
    (lambda: (1.0, 0.3), "2 phi(1)"),
    (lambda: 1.0, "two numbers"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


def abc_alphas(w, bases):
    b = bases.reshape(bases.shape[0], -1).T
    return torch.linalg.lstsq(b, w.reshape(-1, 1)).solution.reshape(-1)


def test_check_2_passes_the_solution(capsys):
    ex.check_2(abc_alphas)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out
    ex.check_2(abc.basis_scales)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, b: b.reshape(b.shape[0], -1) @ w.reshape(-1) / w.numel(), "basis i alone"),
    (lambda w, b: torch.full((b.shape[0],), w.abs().mean().item()), "XNOR-Net"),
    (lambda w, b: abc_alphas(w, b)[:1], "one per basis"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
