"""The self-checks of the WAGEUBN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import wageubn_int8_training as ex
from qteach.papers import wageubn_int8_training as w


def underflow_fraction(e, mode, bits):
    nonzero = e != 0
    return (w.error_quantize(e, mode, bits)[nonzero] == 0).float().mean().item()


def underflow_fraction_counts(e, mode, bits):
    """Another correct answer: counts, in float64, as a 0-d tensor."""
    q = w.error_quantize(e, mode, bits)
    lost = torch.logical_and(e != 0, q == 0).sum().double()
    return lost / torch.count_nonzero(e).double()


def test_check_1_passes(capsys):
    ex.check_1(underflow_fraction)
    assert "✅ ex-wageubn_int8_training-1 passed" in capsys.readouterr().out


def test_check_1_accepts_another_answer(capsys):
    ex.check_1(underflow_fraction_counts)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda e, m, b: 100 * underflow_fraction(e, m, b), "not a percentage"),
    (lambda e, m, b: 1 - underflow_fraction(e, m, b), "fraction that survives"),
    (lambda e, m, b: (w.error_quantize(e, m, b) == 0).float().mean().item(), "non-zero before"),
    (lambda e, m, b: (w.direct_quantize(e, b) == 0).float().mean().item(), "became exactly zero"),
])
def test_check_1_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def max_step(lr, bits, g_scale):
    return lr * (g_scale - 1) / (128 * 2 ** (bits - 1))


def test_check_2_passes(capsys):
    ex.check_2(max_step)
    assert "✅ ex-wageubn_int8_training-2 passed" in capsys.readouterr().out


def test_check_2_accepts_another_answer(capsys):
    ex.check_2(lambda lr, bits, g_scale: torch.tensor(lr * (g_scale - 1) * 2.0 ** (-6 - bits)))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda lr, b, g: lr * g / (128 * 2 ** (b - 1)), "g_scale - 1"),
    (lambda lr, b, g: (g - 1) / (128 * 2 ** (b - 1)), "learning rate"),
    (lambda lr, b, g: lr * (g - 1) / 2 ** (b - 1), "128"),
    (lambda lr, b, g: lr / 2 ** b, "the largest n"),
])
def test_check_2_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_stub_is_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")

    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
