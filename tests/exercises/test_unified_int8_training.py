"""The self-checks of the unified INT8 training chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import unified_int8_training as ex
from qteach.papers import unified_int8_training as u

# --- exercise 1 ---------------------------------------------------------------------------------------------


def mse_clip(g, bits):
    peak = g.abs().max().item()
    best = None
    for r in u.RATIOS:
        q, s = u.quantize_gradient(g, r * peak, bits)
        err = ((q.float() * s - g) ** 2).sum().item()
        if best is None or err < best[1]:
            best = (r * peak, err)
    return best[0]


def mse_clip_vectorised(g, bits):
    """Another correct answer: all ratios at once, in float64, the grid rebuilt by hand."""
    peak = g.abs().max().double()
    ratios = torch.tensor([2.0 ** (-k / 4) for k in range(24, -1, -1)], dtype=torch.float64)
    c = ratios[:, None] * peak
    top = 2 ** (bits - 1) - 1
    x = g.double().flatten()[None, :]
    g_hat = torch.round(torch.maximum(torch.minimum(x, c), -c) / (c / top)).clamp(-top, top) * (c / top)
    return float(c[((g_hat - x) ** 2).sum(1).argmin(), 0])


def mse_clip_largest(g, bits):
    peak = g.abs().max().item()
    return max(((r * peak, ((u.quantize_gradient(g, r * peak, bits)[0].float() * u.quantize_gradient(
        g, r * peak, bits)[1] - g) ** 2).sum().item()) for r in u.RATIOS), key=lambda t: t[1])[0]


def test_check_1_passes(capsys):
    ex.check_1(mse_clip)
    assert "✅ ex-unified_int8_training-1 passed" in capsys.readouterr().out


def test_check_1_accepts_vectorised_answer(capsys):
    ex.check_1(mse_clip_vectorised)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda g, bits: u.dsgc_clip(g, bits)[0], "DSGC's clipping value"),
    (lambda g, bits: g.abs().max().item(), "max|g| is not the MSE-optimal"),
    (lambda g, bits: 0.5 * g.abs().max().item() * 0.9, "one of the grid's values"),
    (mse_clip_largest, "smaller squared error"),
])
def test_check_1_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint.replace("|", r"\|")):
        ex.check_1(wrong)


def test_check_1_rejects_ratio():
    def ratio_only(g, bits):
        return mse_clip(g, bits) / g.abs().max().item()
    with pytest.raises(AssertionError, match="not the ratio"):
        ex.check_1(ratio_only)


def test_check_1_not_attempted(capsys):
    def stub(g, bits):
        raise NotImplementedError
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out


# --- exercise 2 ---------------------------------------------------------------------------------------------


def test_check_2_passes(capsys):
    ex.check_2(lambda alpha, beta: math.log(1 / beta) / alpha)
    assert "✅ ex-unified_int8_training-2 passed" in capsys.readouterr().out


def test_check_2_accepts_tensor_form(capsys):
    ex.check_2(lambda alpha, beta: float(-torch.log(torch.tensor(beta, dtype=torch.float64)) / alpha))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda a, b: math.log(b) / a, "sign is off"),
    (lambda a, b: math.log(1 / b) * a, "divide by alpha"),
    (lambda a, b: 1 / (a * b), "take the logarithm"),
    (lambda a, b: 0.2, "should make"),
])
def test_check_2_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
