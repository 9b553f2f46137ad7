"""The self-checks of "BinaryConnect": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import binaryconnect as ex
from qteach.papers import binaryconnect as bc

LABEL = "ex-binaryconnect-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def stochastic_binarize(w, u):
    p = torch.clamp((w + 1) / 2, 0, 1)
    return torch.where(u < p, 1.0, -1.0)


def stochastic_binarize_library(w, u):
    return torch.where(u < bc.hard_sigmoid(w), 1, -1)  # integer output is accepted


@pytest.mark.parametrize("solution", [stochastic_binarize, stochastic_binarize_library])
def test_check_1_passes_the_solutions(solution, capsys):
    line = ex.check_1(solution)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, u: torch.where(u < torch.sigmoid(w), 1.0, -1.0), "logistic sigmoid"),
    (lambda w, u: torch.where(u > torch.clamp((w + 1) / 2, 0, 1), 1.0, -1.0), "reversed"),
    (lambda w, u: torch.where(u < torch.clamp((w + 1) / 2, 0, 1), 1.0, 0.0), "0/1"),
    (lambda w, u: torch.where(u < w + 1, 1.0, -1.0), "not w + 1"),
    (lambda w, u: torch.where(u < w, 1.0, -1.0), "not w itself"),
    (lambda w, u: torch.where(w >= 0, 1.0, -1.0), "differs from the reference"),
])
def test_check_1_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(err.value) and hint in str(err.value)


def test_check_1_rejects_a_wrong_shape():
    with pytest.raises(AssertionError, match="shape"):
        ex.check_1(lambda w, u: stochastic_binarize(w, u)[:-1])


# --- exercise 2 ---------------------------------------------------------------------------------------------

def steps_to_flip(w0, grad, lr, buggy):
    """The notebook's solution: simulate with the library."""
    w = torch.tensor([w0])
    start_sign = bc.binarize_deterministic(w).item()
    for step in range(1, 1001):
        w = bc.binaryconnect_update(bc.binarize_deterministic(w) if buggy else w, torch.tensor([grad]), lr)
        if bc.binarize_deterministic(w).item() != start_sign:
            return step
    return None


def steps_to_flip_python(w0, grad, lr, buggy):
    """Another: plain Python floats, and math.inf for 'never'."""
    sign = lambda v: 1.0 if v >= 0 else -1.0  # noqa: E731
    w = w0
    for step in range(1, 1001):
        w = min(1.0, max(-1.0, (sign(w) if buggy else w) - lr * grad))
        if sign(w) != sign(w0):
            return step
    return math.inf


def steps_to_flip_closed_form(w0, grad, lr, buggy):
    """A third, without a loop: the real weight moves by lr * grad per step; the buggy one restarts from +-1."""
    step = lr * grad
    start = (1.0 if w0 >= 0 else -1.0) if buggy else w0
    if start * step <= 0:  # pushed away from 0 (or not moved): the clip keeps the sign
        return None
    if buggy:
        return 1 if abs(step) > 1 else None
    t = math.floor(start / step) + 1 if start >= 0 else math.ceil(start / step)
    return t if t <= 1000 else None


@pytest.mark.parametrize("solution", [steps_to_flip, steps_to_flip_python, steps_to_flip_closed_form])
def test_check_2_passes_the_solutions(solution, capsys):
    line = ex.check_2(solution)
    assert line.startswith("✅ " + LABEL.format(2))
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


def _same_for_both(w0, grad, lr, buggy):
    return steps_to_flip(w0, grad, lr, False)


@pytest.mark.parametrize("wrong, hint", [
    (_same_for_both, "that is Algorithm 1's answer"),
    (lambda w0, g, lr, buggy: steps_to_flip(w0, g, lr, buggy) - 1 if steps_to_flip(w0, g, lr, buggy) else None,
     "off by one"),
    (lambda w0, g, lr, buggy: None, "must flip it"),
    (lambda w0, g, lr, buggy: 7, "that is Algorithm 1's answer"),  # the example's answer everywhere
    (lambda w0, g, lr, buggy: steps_to_flip(w0, g, lr, buggy) if buggy or steps_to_flip(w0, g, lr, False) else 5,
     "pushes the weight away"),
    (lambda w0, g, lr, buggy: steps_to_flip(w0, g, lr, buggy) if not buggy else 3, "every step starts again"),
    (lambda w0, g, lr, buggy: 7.0, "return an int"),
    (lambda w0, g, lr, buggy: "never", "return an int"),
])
def test_check_2_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(err.value) and hint in str(err.value)
