"""The self-checks of the chapter on the Binary Ensemble Neural Network: solutions pass, plausible mistakes fail
with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import binary_ensemble as ex
from qteach.papers import binary_ensemble as be

LABEL = "ex-binary_ensemble-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def samme_alpha(error, num_classes):
    return math.log((1 - error) / error) + math.log(num_classes - 1)


def samme_alpha_from_module(error, num_classes):
    """Another correct answer: the module's boost_alpha with scale 1."""
    return be.boost_alpha(error, num_classes, scale=1.0)


def samme_alpha_tensor(error, num_classes):
    """Another correct answer, as a tensor: log((C - 1)(1 - e) / e)."""
    e = torch.tensor(error, dtype=torch.float64)
    return torch.log((num_classes - 1) * (1 - e) / e)


def test_check_1_passes(capsys):
    ex.check_1(samme_alpha)
    assert "✅ ex-binary_ensemble-1 passed" in capsys.readouterr().out
    ex.check_1(samme_alpha_from_module)
    ex.check_1(samme_alpha_tensor)


@pytest.mark.parametrize("wrong,hint", [
    (lambda e, c: 0.5 * samme_alpha(e, c), "no factor 1/2"),
    (lambda e, c: math.log((1 - e) / e), "missing the + log(C - 1)"),
    (lambda e, c: math.log(e / (1 - e)) + math.log(c - 1), "upside down"),
    (lambda e, c: math.log((1 - e) / e) + math.log(c), "not log(C)"),
    (lambda e, c: 1 - e, "natural logarithms"),
    (lambda e, c: "1.0", "should be a"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def unique_fraction(n):
    return 1 - (1 - 1 / n) ** n


def unique_fraction_counted(n):
    """Another correct answer for small n: count over all n^n equally likely bootstrap samples."""
    import itertools

    if n > 6:
        return 1 - math.exp(n * math.log1p(-1 / n))
    samples = list(itertools.product(range(n), repeat=n))
    return sum(len(set(s)) for s in samples) / (n * len(samples))


def test_check_2_passes(capsys):
    ex.check_2(unique_fraction)
    assert "✅ ex-binary_ensemble-2 passed" in capsys.readouterr().out
    ex.check_2(unique_fraction_counted)


@pytest.mark.parametrize("wrong,hint", [
    (lambda n: 1 - math.exp(-1), "limit for large n"),
    (lambda n: (1 - 1 / n) ** n, "never drawn"),
    (lambda n: 1 - (1 - 1 / n) ** (n - 1), "n independent draws"),
    (lambda n: 1.5, "between 0 and 1"),
    (lambda n: 0.5, "linearity of expectation"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)


def test_bootstrap_matches_exercise_2():
    """The module's bootstrap sample sees about 1 - (1 - 1/n)^n of the examples."""
    n = 2000
    idx = be.bootstrap_indices(n, torch.Generator().manual_seed(0))
    assert abs(idx.unique().numel() / n - unique_fraction(n)) < 0.02
