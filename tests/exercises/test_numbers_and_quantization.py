"""The self-checks of *Numbers and quantization* pass on the solutions and fail, with a hint, on plausible mistakes."""

import math

import pytest
import torch

from qteach.exercises.numbers_and_quantization import check_1, check_2

EPS = torch.finfo(torch.float32).eps
LABEL_1 = "ex-numbers_and_quantization-1"
LABEL_2 = "ex-numbers_and_quantization-2"


def qparams_solution(x_min, x_max, bits):
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    q_min, q_max = 0, 2**bits - 1
    scale = max((x_max - x_min) / (q_max - q_min), EPS)
    zero_point = q_min - round(x_min / scale)
    return scale, min(max(zero_point, q_min), q_max)


def qparams_tensor_solution(x_min, x_max, bits):
    scale, zero_point = qparams_solution(x_min, x_max, bits)
    return torch.tensor(scale), torch.tensor(zero_point)


def qparams_no_widening(x_min, x_max, bits):
    scale = max((x_max - x_min) / (2**bits - 1), EPS)
    return scale, -round(x_min / scale)


def qparams_floor(x_min, x_max, bits):
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = max((x_max - x_min) / (2**bits - 1), EPS)
    return scale, -math.floor(x_min / scale)


def qparams_wrong_sign(x_min, x_max, bits):
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = max((x_max - x_min) / (2**bits - 1), EPS)
    return scale, round(x_min / scale)


def qparams_two_to_the_bits(x_min, x_max, bits):
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = max((x_max - x_min) / 2**bits, EPS)
    return scale, -round(x_min / scale)


def qparams_no_eps(x_min, x_max, bits):
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = (x_max - x_min) / (2**bits - 1)
    return scale, (-round(x_min / scale) if scale else 0)


@pytest.mark.parametrize("solution", [qparams_solution, qparams_tensor_solution])
def test_check_1_passes_on_solution(solution, capsys):
    assert check_1(solution) is None  # prints its line, returns nothing
    assert f"✅ {LABEL_1} passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (qparams_no_widening, "widen the range to contain 0"),
    (qparams_floor, "round, not floor"),
    (qparams_wrong_sign, "mind the sign"),
    (qparams_two_to_the_bits, "2**bits - 1 steps"),
    (qparams_no_eps, "machine epsilon"),
    (lambda x_min, x_max, bits: 1.0, "return a pair"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_1(wrong)
    message = str(info.value)
    assert message.startswith(f"{LABEL_1}:")
    assert hint in message


def fake_quantize_solution(x, scale, zero_point, bits):
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, 2**bits - 1)
    return scale * (q - zero_point)


def fake_quantize_reciprocal_solution(x, scale, zero_point, bits):
    q = torch.clamp(torch.round(x * (1.0 / scale)) + zero_point, 0, 2**bits - 1)
    return (q - zero_point) * scale


def fake_quantize_floor(x, scale, zero_point, bits):
    q = torch.clamp(torch.floor(x / scale) + zero_point, 0, 2**bits - 1)
    return scale * (q - zero_point)


def fake_quantize_no_clamp(x, scale, zero_point, bits):
    return scale * torch.round(x / scale)


def fake_quantize_clamp_too_high(x, scale, zero_point, bits):
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, 2**bits)
    return scale * (q - zero_point)


def fake_quantize_no_zero_point(x, scale, zero_point, bits):
    return scale * torch.clamp(torch.round(x / scale), 0, 2**bits - 1)


def fake_quantize_no_dequant_zero_point(x, scale, zero_point, bits):
    return scale * torch.clamp(torch.round(x / scale) + zero_point, 0, 2**bits - 1)


@pytest.mark.parametrize("solution", [fake_quantize_solution, fake_quantize_reciprocal_solution])
def test_check_2_passes_on_solution(solution, capsys):
    assert check_2(solution) is None  # prints its line, returns nothing
    assert f"✅ {LABEL_2} passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (fake_quantize_floor, "not floor"),
    (fake_quantize_no_clamp, "clamp the codes"),
    (fake_quantize_clamp_too_high, "not 2**bits"),
    (fake_quantize_no_zero_point, "add the zero point"),
    (fake_quantize_no_dequant_zero_point, "subtract the zero point"),
    (lambda x, scale, zero_point, bits: x, "q = clamp(round(x / s) + z"),
    (lambda x, scale, zero_point, bits: x.numpy(), "should be a Tensor"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_2(wrong)
    message = str(info.value)
    assert message.startswith(f"{LABEL_2}:")
    assert hint in message


def test_check_1_ranges_avoid_rounding_ties():
    """No test range puts -x_min / s near k + 0.5, where float32 and float64 may round the zero point apart."""
    from fractions import Fraction

    from qteach.exercises.numbers_and_quantization import _RANGES

    for x_min, x_max, bits in _RANGES:
        lo, hi = Fraction(min(x_min, 0.0)), Fraction(max(x_max, 0.0))
        ratio = -lo * (2**bits - 1) / (hi - lo)
        assert abs(ratio - math.floor(ratio) - Fraction(1, 2)) > Fraction(1, 100), (x_min, x_max, bits)
