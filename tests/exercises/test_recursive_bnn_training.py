"""The self-checks of the chapter on recursive BNN training: solutions pass, plausible mistakes fail with a
hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import recursive_bnn_training as ex
from qteach.papers import recursive_bnn_training as rb

LABEL = "ex-recursive_bnn_training-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def bits_per_weight(bits, rounds):
    return 1 / (1 - (1 - 1 / bits) ** rounds)


def bits_per_weight_by_loop(bits, rounds):
    """Another correct answer: follow the free storage round by round, as a tensor."""
    budget, free, weights = torch.tensor(1.0, dtype=torch.float64), 1.0, 0.0
    for _ in range(rounds):
        weights += free / bits
        free -= free / bits
    return budget / weights


def test_check_1_passes(capsys):
    ex.check_1(bits_per_weight)
    assert "✅ ex-recursive_bnn_training-1 passed" in capsys.readouterr().out
    ex.check_1(bits_per_weight_by_loop)


@pytest.mark.parametrize("wrong,hint", [
    (lambda b, k: 1 + (b - 1) / k, "equal chunks"),
    (lambda b, k: 1 - (1 - 1 / b) ** k, "weights per bit"),
    (lambda b, k: 1 / (1 - (1 - 1 / b) ** (k + 1)), "off by one"),
    (lambda b, k: 2.0, "must be b"),
    (lambda b, k: b / k, "free storage"),
    (lambda b, k: "2.4", "should be a number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def fixed_chunk_rounds(budget_bits, fan, bits, chunk_units):
    chunk = chunk_units * fan
    if budget_bits < bits * chunk:
        return 0
    return (budget_bits - bits * chunk) // chunk + 1


def fixed_chunk_rounds_by_ledger(budget_bits, fan, bits, chunk_units):
    """Another correct answer: add rounds while the peak of the module's ledger fits, returned as a float."""
    rounds = 0
    while rb.storage_ledger([chunk_units] * (rounds + 1), fan, bits)[-1]["peak_bits"] <= budget_bits:
        rounds += 1
    return float(rounds)


def test_check_2_passes(capsys):
    ex.check_2(fixed_chunk_rounds)
    assert "✅ ex-recursive_bnn_training-2 passed" in capsys.readouterr().out
    ex.check_2(fixed_chunk_rounds_by_ledger)


@pytest.mark.parametrize("wrong,hint", [
    (lambda s, f, b, c: s // (c * f), "1 bit"),
    (lambda s, f, b, c: s // (b * c * f), "conventional ledger"),
    (lambda s, f, b, c: max(0, (s - b * c * f) // (c * f)), "off by one"),
    (lambda s, f, b, c: (s - b * c * f) // (c * f) + 1, "return 0"),
    (lambda s, f, b, c: 3, "round K fits"),
    (lambda s, f, b, c: 2.5, "whole number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)


def test_checks_print_not_attempted_for_the_stub(capsys):
    def stub(*_):
        raise NotImplementedError("Exercise")

    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted yet") == 2
