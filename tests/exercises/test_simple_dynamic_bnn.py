"""The self-checks of the simple dynamic BNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest

from qteach.exercises import simple_dynamic_bnn as ex

LABEL = "ex-simple_dynamic_bnn-{}"


def transient_and_period(succ, start):
    seen, k = {}, start
    while k not in seen:
        seen[k] = len(seen)
        k = int(succ[k])
    return seen[k], len(seen) - seen[k]


def transient_and_period_tortoise(succ, start):
    """Another correct answer: Floyd's cycle finding, no memory of visited states."""
    f = [int(s) for s in succ]
    slow, fast = f[start], f[f[start]]
    while slow != fast:
        slow, fast = f[slow], f[f[fast]]
    mu, slow = 0, start
    while slow != fast:
        slow, fast, mu = f[slow], f[fast], mu + 1
    lam, fast = 1, f[slow]
    while slow != fast:
        fast, lam = f[fast], lam + 1
    return mu, lam


def off_by_one(succ, start):
    mu, lam = transient_and_period(succ, start)
    return mu + 1, lam


def total_steps(succ, start):
    mu, lam = transient_and_period(succ, start)
    return mu, mu + lam


def second_visit(succ, start):
    mu, lam = transient_and_period(succ, start)
    return mu + lam, lam


def test_check_1_passes_the_solution_and_an_alternative(capsys):
    assert ex.check_1(transient_and_period).startswith("✅ " + LABEL.format(1))
    assert ex.check_1(transient_and_period_tortoise).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (off_by_one, "BEFORE the first orbit point"),
    (total_steps, "length of the cycle only"),
    (second_visit, "FIRST visit"),
    (lambda succ, start: [0], "return a pair"),
    (lambda succ, start: (0.5, 1), "should be an int"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def popcount_threshold(fan_in, t):
    return math.ceil((fan_in + t) / 2)


def popcount_threshold_integer(fan_in, t):
    return (fan_in + t + 1) // 2


def popcount_threshold_clipped(fan_in, t):
    return min(max((fan_in + t + 1) // 2, 0), fan_in + 1)


def test_check_2_passes_the_solution_and_alternatives(capsys):
    for answer in (popcount_threshold, popcount_threshold_integer, popcount_threshold_clipped):
        assert ex.check_2(answer).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda k, t: (k + t) // 2, "round UP"),
    (lambda k, t: math.ceil(k / 2), "moves the count too"),
    (lambda k, t: math.ceil((k - t) / 2), "sign of T"),
    (lambda k, t: "3", "should be an int"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_stub_is_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")
    assert "not attempted" in ex.check_1(stub)
    assert "not attempted" in ex.check_2(stub)
