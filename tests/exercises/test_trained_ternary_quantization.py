"""The self-checks of "Trained Ternary Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import trained_ternary_quantization as ex
from qteach.papers import trained_ternary_quantization as ttq

LABEL = "ex-trained_ternary_quantization-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


# --- exercise 1 ---------------------------------------------------------------------------------------------

def ttq_forward(w, w_p, w_n, t):
    delta = t * w.abs().max()
    return w_p * (w > delta).float() - w_n * (w < -delta).float()


def test_check_1_passes_the_solution(capsys):
    ex.check_1(ttq_forward)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(lambda w, p, n, t: ttq.ttq_ternarize(w, p, n, t))


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, p, n, t: p * (w > 0.7 * w.abs().mean()).float() - n * (w < -0.7 * w.abs().mean()).float(), "TWN"),
    (lambda w, p, n, t: p * (w > t * w.abs().max()).float() + n * (w < -t * w.abs().max()).float(), "minus sign"),
    (lambda w, p, n, t: p * (w > t * w.abs().max()).float() - p * (w < -t * w.abs().max()).float(), "own scale"),
    (lambda w, p, n, t: p * (w >= t * w.abs().max()).float() - n * (w <= -t * w.abs().max()).float(), "not w >="),
    (lambda w, p, n, t: ttq_forward(w, p, n, t).flatten(), "shape"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


# --- exercise 2 ---------------------------------------------------------------------------------------------

def sparsity_threshold(w, r):
    k = round(r * w.numel())
    return w.abs().flatten().kthvalue(k).values


def test_check_2_passes_the_solution(capsys):
    ex.check_2(sparsity_threshold)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("other", [
    lambda w, r: torch.quantile(w.abs().flatten(), r),                                  # interpolated quantile
    lambda w, r: float(w.abs().flatten().sort().values[int(r * w.numel()) - 1]),        # floor, a float
    lambda w, r: w.abs().flatten().sort().values[math.ceil(r * w.numel()) - 1].item(),  # ceil
    lambda w, r: w.abs().flatten().kthvalue(round(r * w.numel())).values - 1e-7,         # just below: one fewer
])
def test_check_2_accepts_other_correct_answers(other, capsys):
    ex.check_2(other)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, r: r * w.abs().max(), "first rule"),
    (lambda w, r: sparsity_threshold(w, 1 - r), "1 - r"),
    (lambda w, r: torch.quantile(w.flatten(), r), "signed weights"),
    (lambda w, r: 0.7 * w.abs().mean(), "sort the magnitudes"),
    (lambda w, r: w.abs() <= sparsity_threshold(w, r), "single number"),
    (lambda w, r: "0.5", "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
