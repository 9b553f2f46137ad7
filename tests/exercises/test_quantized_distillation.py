"""The self-checks of the quantized distillation chapter: the solutions pass, other correct answers pass, plausible
mistakes fail with a hint naming them."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import quantized_distillation as ex
from qteach.papers import quantized_distillation as qd

LABEL = "ex-quantized_distillation-{}"


def _scale(v):
    beta = v.min()
    alpha = v.max() - beta
    return beta, (alpha if alpha > 1e-10 else torch.ones_like(alpha))


# --- exercise 1 ---------------------------------------------------------------------------------------------


def quantize_bucket(v, bits):
    beta, alpha = _scale(v)
    s = 2**bits - 1
    return torch.round((v - beta) / alpha * s) / s * alpha + beta


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(quantize_bucket)
    assert "✅ ex-quantized_distillation-1 passed" in capsys.readouterr().out


def test_check_1_accepts_other_forms():
    ex.check_1(lambda v, bits: qd.uniform_quantize(v, bits))

    def via_levels(v, bits):  # nearest of the 2**bits explicit levels
        beta, alpha = _scale(v)
        levels = beta + alpha * torch.linspace(0, 1, 2**bits)
        return levels[(v.unsqueeze(-1) - levels).abs().argmin(-1)]
    ex.check_1(via_levels)


def _wrong_steps(v, bits):
    beta, alpha = _scale(v)
    s = 2**bits
    return torch.round((v - beta) / alpha * s) / s * alpha + beta


def _floor(v, bits):
    beta, alpha = _scale(v)
    s = 2**bits - 1
    return torch.floor((v - beta) / alpha * s) / s * alpha + beta


def _no_guard(v, bits):
    beta, s = v.min(), 2**bits - 1
    alpha = v.max() - beta
    return torch.round((v - beta) / alpha * s) / s * alpha + beta


def _not_scaled_back(v, bits):
    beta, alpha = _scale(v)
    s = 2**bits - 1
    return torch.round((v - beta) / alpha * s) / s


@pytest.mark.parametrize("wrong,hint", [
    (_wrong_steps, "2\\*\\*bits - 1"),
    (_floor, "floor"),
    (_no_guard, "range 0"),
    (_not_scaled_back, "scale back"),
    (lambda v, bits: v.clone(), "differs"),
    (lambda v, bits: quantize_bucket(v, bits).reshape(-1), "shape"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def stochastic_quantize(v, bits, u):
    beta, alpha = _scale(v)
    s = 2**bits - 1
    scaled = (v - beta) / alpha * s
    low = torch.floor(scaled)
    return (low + (u < scaled - low).float()) / s * alpha + beta


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(stochastic_quantize)
    assert "✅ ex-quantized_distillation-2 passed" in capsys.readouterr().out


def test_check_2_accepts_other_forms():
    def with_ceil(v, bits, u):  # ceil where u < remainder, floor elsewhere; <= instead of < (measure zero)
        beta, alpha = _scale(v)
        s = 2**bits - 1
        x = (v - beta) / alpha * s
        return torch.where(u <= x - x.floor(), x.ceil(), x.floor()) / s * alpha + beta
    ex.check_2(with_ceil)


def _reversed(v, bits, u):  # rounds up where u > remainder
    beta, alpha = _scale(v)
    s = 2**bits - 1
    scaled = (v - beta) / alpha * s
    low = torch.floor(scaled)
    return (low + (u > scaled - low).float()) / s * alpha + beta


@pytest.mark.parametrize("wrong,hint", [
    (_reversed, "1 - remainder"),
    (lambda v, bits, u: quantize_bucket(v, bits), "deterministic"),
    (lambda v, bits, u: stochastic_quantize(v, bits, u) * 2, "differs"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_check_2_hint_on_steps():
    def wrong(v, bits, u):
        beta, alpha = _scale(v)
        s = 2**bits - 1
        scaled = (v - beta) / alpha * s
        low = torch.floor(scaled)
        return (low + (u < scaled - low).float()) / 2**bits * alpha + beta
    with pytest.raises(AssertionError, match="2\\*\\*bits - 1"):
        ex.check_2(wrong)


# --- exercise 3 ---------------------------------------------------------------------------------------------


def test_check_3_passes_on_the_solution(capsys):
    ex.check_3(lambda w, t, c: w * t**2 / c)
    assert "✅ ex-quantized_distillation-3 passed" in capsys.readouterr().out


def test_check_3_accepts_other_forms():
    ex.check_3(lambda w, t, c: torch.tensor(w * t * t) / c)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, t, c: w * t**2, "number of classes"),
    (lambda w, t, c: w / c, "temperature\\*\\*2"),
    (lambda w, t, c: w * t / c, "temperature squared"),
    (lambda w, t, c: (1 - w) * t**2 / c, "1 - teacher_weight"),
    (lambda w, t, c: 0.28, "expected"),
    (lambda w, t, c: "0.28", "number"),
])
def test_check_3_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_3(wrong)


def test_checks_reject_non_callables():
    for check in (ex.check_1, ex.check_2, ex.check_3):
        with pytest.raises(AssertionError, match="pass your function"):
            check(0.28)
