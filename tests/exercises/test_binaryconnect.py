"""The self-checks of "BinaryConnect": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

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

def bc_update(w, grad_wb, lr):
    return torch.clamp(w - lr * grad_wb, -1.0, 1.0)


def bc_update_in_place(w, grad_wb, lr):
    w -= lr * grad_wb
    return w.clamp_(-1, 1)


@pytest.mark.parametrize("solution", [bc_update, bc_update_in_place, bc.binaryconnect_update])
def test_check_2_passes_the_solutions(solution, capsys):
    line = ex.check_2(solution)
    assert line.startswith("✅ " + LABEL.format(2))
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, g, lr: w - lr * g, "not clipped"),
    (lambda w, g, lr: torch.clamp(w, -1, 1) - lr * g, "clips before the update"),
    (lambda w, g, lr: torch.clamp(w + lr * g, -1, 1), "climbs the gradient"),
    (lambda w, g, lr: torch.where(w - lr * g >= 0, 1.0, -1.0), "binary values"),
    (lambda w, g, lr: torch.clamp(w - g, -1, 1), "differs from clip"),
])
def test_check_2_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(err.value) and hint in str(err.value)


def test_check_2_rejects_a_non_tensor():
    with pytest.raises(AssertionError, match="torch.Tensor"):
        ex.check_2(lambda w, g, lr: bc_update(w, g, lr).tolist())
