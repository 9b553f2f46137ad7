"""The self-checks of the stochastic-weights chapter: solutions pass, mistakes fail with a hint."""

from __future__ import annotations

import pytest

from qteach.exercises import stochastic_weights_fpga as ex

LABEL = "ex-stochastic_weights_fpga-{}"


def galois_step(state, n, taps):
    mask = sum(1 << (t - 1) for t in taps)
    out = state & 1
    state >>= 1
    return state ^ mask if out else state


def galois_step_loop(state, n, taps):
    """Another correct form: build the toggle mask in a loop."""
    lsb = state & 1
    state = state >> 1
    if lsb:
        for t in taps:
            state ^= 1 << (t - 1)
    return state


def galois_no_shift(state, n, taps):
    mask = sum(1 << (t - 1) for t in taps)
    return (state ^ mask) & (2**n - 1) or 1


def galois_overflow(state, n, taps):
    return (state << 1) | 1


def test_check_1_passes_solutions(capsys):
    assert ex.check_1(galois_step).startswith("✅ " + LABEL.format(1))
    ex.check_1(galois_step_loop)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (galois_no_shift, "visits"),
    (galois_overflow, "left the register"),
    (lambda s, n, t: 1.0, "should return an int"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def test_check_2_passes_solutions(capsys):
    assert ex.check_2(lambda c, k: c / (2**k - 1)).startswith("✅ " + LABEL.format(2))
    ex.check_2(lambda c, k: sum(1 for u in range(1, 2**k) if u <= c) / (2**k - 1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, k: c / 2**k, "never produces 0"),
    (lambda c, k: (c + 1) / (2**k - 1), "starts at 1"),
    (lambda c, k: 0.5, "count the values"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
