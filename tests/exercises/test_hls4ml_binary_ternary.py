"""The self-checks of the hls4ml binary/ternary chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import hls4ml_binary_ternary as ex
from qteach.papers import hls4ml_binary_ternary as P


def integer_thresholds(t_hi, t_lo):
    return torch.floor(t_hi), torch.floor(t_lo)


def integer_thresholds_other(t_hi, t_lo):          # another correct form: ceil(t) - 1 where t is an integer
    return (torch.where(t_hi == t_hi.floor(), t_hi, t_hi.ceil() - 1),
            [int(v) for v in torch.floor(t_lo).tolist()])


def test_check_1_passes_the_solution(capsys):
    ex.check_1(integer_thresholds)
    assert "passed" in capsys.readouterr().out
    ex.check_1(integer_thresholds_other)


@pytest.mark.parametrize("wrong, hint", [
    (lambda hi, lo: (torch.ceil(hi), torch.ceil(lo)), "ceil is one too high"),
    (lambda hi, lo: (torch.round(hi), torch.round(lo)), "rounding"),
    (lambda hi, lo: (hi, lo), "integers"),
    (lambda hi, lo: torch.floor(hi), "pair"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert hint in str(info.value)


def multipliers(in_features, width, first_bits):
    return 0 if first_bits is None else in_features * 64 * width


def multipliers_from_model(in_features, width, first_bits):
    model = P.jet_mlp("binary", width=width, first_bits=first_bits, in_features=in_features)
    return sum(m.weight.numel() for m in model if hasattr(m, "weight_quantizer")
               and not isinstance(m.weight_quantizer, (P.BinaryWeight, P.TernaryWeight)))


def test_check_2_passes_the_solution(capsys):
    ex.check_2(multipliers)
    assert "passed" in capsys.readouterr().out
    ex.check_2(multipliers_from_model)


@pytest.mark.parametrize("wrong, hint", [
    (lambda i, w, b: (i * 64 * w if b else 0) + 64 * w * 32 * w + 32 * w * 32 * w + 32 * w * 5, "sign flip"),
    (lambda i, w, b: i * 64 * w, "first_bits=None"),
    (lambda i, w, b: i * 64 if b else 0, "64 * width"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert hint in str(info.value)
