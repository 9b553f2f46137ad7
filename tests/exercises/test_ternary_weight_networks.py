"""The self-checks of "Ternary Weight Networks": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import ternary_weight_networks as ex
from qteach.papers import ternary_weight_networks as twn

LABEL = "ex-ternary_weight_networks-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def twn_quantize(w):
    delta = 0.7 * w.abs().mean()
    survivors = w.abs()[w.abs() > delta]
    alpha = survivors.mean() if survivors.numel() else torch.zeros(())
    return delta, alpha


def alpha_over_all(w):
    return 0.7 * w.abs().mean(), w.abs().mean()


def delta_from_max(w):
    delta = 0.7 * w.abs().max()
    return delta, w.abs()[w.abs() > delta].mean()


def no_factor(w):
    delta = w.abs().mean()
    return delta, w.abs()[w.abs() > delta].mean()


def divide_by_n(w):
    delta = 0.7 * w.abs().mean()
    return delta, (w.abs() * (w.abs() > delta)).sum() / w.numel()


def signed_mean(w):
    delta = 0.7 * w.abs().mean()
    return delta, w[w.abs() > delta].mean()


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(twn_quantize)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_passes_the_library():
    ex.check_1(lambda w: (twn.ternary_threshold(w), twn.ternary_scale(w, twn.ternary_threshold(w))))


@pytest.mark.parametrize("wrong, hint", [
    (alpha_over_all, "binary scale"),
    (delta_from_max, "max|W|"),
    (no_factor, "factor 0.7"),
    (divide_by_n, "number of survivors"),
    (signed_mean, "magnitudes"),
    (lambda w: twn_quantize(w)[0], "pair"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


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
