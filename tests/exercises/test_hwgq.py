"""The self-checks of "Half-wave Gaussian Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import hwgq as ex

LABEL = "ex-hwgq-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------

def hwgq_forward(x, levels):
    levels = torch.tensor(levels, dtype=x.dtype)
    thresholds = (levels[1:] + levels[:-1]) / 2
    index = torch.searchsorted(thresholds, x)          # first threshold >= x
    return torch.where(x > 0, levels[index], torch.zeros_like(x))


def hwgq_loop(x, levels):
    out = torch.zeros_like(x)
    for i, v in enumerate(x.tolist()):
        if v > 0:
            out[i] = levels[-1]
            for j in range(len(levels) - 1):
                if v <= (levels[j] + levels[j + 1]) / 2:
                    out[i] = levels[j]
                    break
    return out


def nearest_with_zero(x, levels):
    options = torch.tensor([0.0, *levels], dtype=x.dtype)
    return options[(x.clamp(min=0)[:, None] - options[None]).abs().argmin(dim=1)]


def ties_up(x, levels):
    levels = torch.tensor(levels, dtype=x.dtype)
    thresholds = (levels[1:] + levels[:-1]) / 2
    return torch.where(x > 0, levels[torch.searchsorted(thresholds, x, right=True)], torch.zeros_like(x))


def thresholds_at_levels(x, levels):
    levels = torch.tensor(levels, dtype=x.dtype)
    index = (torch.searchsorted(levels, x, right=True) - 1).clamp(min=0)
    return torch.where(x > 0, levels[index], torch.zeros_like(x))


def keeps_negatives(x, levels):
    return torch.where(x > 0, hwgq_forward(x, levels), x)


def test_check_1_passes_the_solutions(capsys):
    line = ex.check_1(hwgq_forward)
    assert line.startswith("✅ " + LABEL.format(1)) and "passed" in capsys.readouterr().out
    ex.check_1(hwgq_loop)


@pytest.mark.parametrize("wrong, hint", [
    (nearest_with_zero, "reserves 0"),
    (ties_up, "*lower* level"),
    (thresholds_at_levels, "midpoints"),
    (keeps_negatives, "negative inputs"),
    (lambda x, levels: x.clamp(min=0), "Q(x) = 0 for x <= 0"),
    (lambda x, levels: x.tolist(), "Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


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
