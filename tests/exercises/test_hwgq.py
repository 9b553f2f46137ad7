"""The self-checks of "Half-wave Gaussian Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import hwgq as ex

LABEL = "ex-hwgq-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def error_split(x, q):
    error = (q - x) ** 2
    over = x > q.max()
    return (error[~over].sum() / x.numel()).item(), (error[over].sum() / x.numel()).item()


def error_split_masks(x, q):  # float64, multiplied masks, 0-d tensors, >= instead of > (same: the error is 0 there)
    x, q = x.double(), q.double()
    error = (q - x) ** 2
    over = (x >= q.max()).double()
    return (error * (1 - over)).mean(), (error * over).mean()


def conditional_means(x, q):
    error = (q - x) ** 2
    over = x > q.max()
    return error[~over].mean().item(), (error[over].mean().item() if over.any() else 0.0)


def top_level(x, q):
    error = (q - x) ** 2
    top = q == q.max()
    return (error[~top].sum() / x.numel()).item(), (error[top].sum() / x.numel()).item()


def test_check_1_passes_the_solutions(capsys):
    ex.check_1(error_split)
    out = capsys.readouterr().out
    assert "✅ " + LABEL.format(1) + " passed" in out and "min-max range, 2 bits: granular" in out
    ex.check_1(error_split_masks)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, q: error_split(x, q)[::-1], "swapped"),
    (conditional_means, "overloaded inputs only"),
    (top_level, "not all the inputs mapped to it"),
    (lambda x, q: (((q - x) ** 2).mean().item(), 0.0), "add up to"),
    (lambda x, q: (error_split(x, q)[0], (q - x).abs().mean().item()), "overload ="),
    (lambda x, q: error_split(x, q)[0], "pair"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as error:
        ex.check_1(wrong)
    assert hint in str(error.value), str(error.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------

def lloyd_levels(x, num_levels, iterations=100):
    x = x[x > 0].double()
    levels = torch.linspace(0.2, 2.0, num_levels, dtype=torch.float64)
    for _ in range(iterations):
        thresholds = (levels[1:] + levels[:-1]) / 2
        cell = torch.searchsorted(thresholds, x)
        levels = torch.stack([x[cell == i].mean() for i in range(num_levels)])
    return levels


def with_zeros(x, num_levels, iterations=100):
    x = x.double()
    levels = torch.linspace(0.2, 2.0, num_levels, dtype=torch.float64)
    for _ in range(iterations):
        thresholds = (levels[1:] + levels[:-1]) / 2
        cell = torch.searchsorted(thresholds, x)
        levels = torch.stack([x[cell == i].mean() for i in range(num_levels)])
    return levels


def no_iterations(x, num_levels):
    x = x[x > 0].double()
    return torch.quantile(x, (torch.arange(num_levels, dtype=torch.float64) + 0.5) / num_levels)


def test_check_2_passes_the_solution(capsys):
    line = ex.check_2(lloyd_levels)
    assert line.startswith("✅ " + LABEL.format(2)) and "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (with_zeros, "too low"),
    (no_iterations, "starting points"),
    (lambda x, m: torch.linspace(0.5, 1.5, m), "alternate"),
    (lambda x, m: torch.ones(m + 1), "positive levels"),
    (lambda x, m: "levels", "Tensor"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message
