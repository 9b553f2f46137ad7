"""The self-checks of "Ternary Weight Networks": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest

from qteach.data import weight_samples
from qteach.exercises import ternary_weight_networks as ex
from qteach.papers import ternary_weight_networks as twn

LABEL = "ex-ternary_weight_networks-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def laplace_prediction():
    return 1.0, 1 - math.exp(-1), 2.0


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(laplace_prediction)
    assert line.startswith("✅ ex-ternary_weight_networks-1")
    assert "passed" in capsys.readouterr().out


def test_check_1_accepts_a_measurement_and_other_forms():
    w = weight_samples(200_000, "laplace", seed=0).double()
    best, _ = twn.optimal_threshold(w)
    mean_abs = w.abs().mean()
    measured = ((best / mean_abs).item(), (w.abs() <= best).double().mean(),
                (twn.ternary_scale(w, best) / mean_abs).item())
    ex.check_1(lambda: measured)
    ex.check_1(lambda: [1, 0.63, 2])


@pytest.mark.parametrize("wrong, hint", [
    (lambda: (0.7, 0.5, 1.7), "rule of thumb"),
    (lambda: (2 / 3, 0.5, 2.0), "uniform"),
    (lambda: (0.767, 0.5, 2.0), "Gaussian"),
    (lambda: (2.0, 0.5, 2.0), "set its derivative to zero"),
    (lambda: (1.0, math.exp(-1), 2.0), "survives"),
    (lambda: (1.0, 63.2, 2.0), "percentage"),
    (lambda: (1.0, 0.5, 2.0), "1 - e^(-t/b)"),
    (lambda: (1.0, 0.632, 1.0), "binary scale"),
    (lambda: (1.0, 0.632, 1.7), "rule's threshold"),
    (lambda: (1.0, 0.632, 1.5), "no memory"),
    (lambda: (1.0, 0.632), "three numbers"),
    (lambda: ("1", 0.632, 2.0), "should be a number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith("ex-ternary_weight_networks-1") and hint in message, message


# --- exercise 2 ---------------------------------------------------------------------------------------------

def best_threshold(w):
    candidates = [0.0, *w.abs().unique().tolist()]
    errors = [twn.approximation_error(w, d).item() for d in candidates]
    return candidates[min(range(len(errors)), key=errors.__getitem__)]


def rule_of_thumb(w):
    return twn.ternary_threshold(w)


def maximise(w):
    candidates = [0.0, *w.abs().unique().tolist()]
    errors = [twn.approximation_error(w, d).item() for d in candidates]
    return candidates[max(range(len(errors)), key=errors.__getitem__)]


def test_check_2_passes_the_solution(capsys):
    line = ex.check_2(best_threshold)
    assert line.startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    ex.check_2(lambda w: twn.optimal_threshold(w)[0])


@pytest.mark.parametrize("wrong, hint", [
    (rule_of_thumb, "rule of thumb"),
    (lambda w: 0.0, "binary solution"),
    (maximise, "smallest error, not the largest"),
    (lambda w: float(w.abs().max()) / 2, "try every candidate"),
    (lambda w: -1.0, ">= 0"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message
