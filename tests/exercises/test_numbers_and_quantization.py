"""The self-checks of *Numbers and quantization* pass on the solutions and fail, with a hint, on plausible mistakes."""

import math
import time

import pytest
import torch

from qteach import quant

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


def _fake_quantize_minmax(x, bits, lo, hi):
    scale, zero_point = quant.qparams(lo, hi, bits, signed=True, symmetric=True)
    return quant.fake_quantize(x, scale, zero_point, bits, signed=True)


def _mse(x, bits, c):
    return (x - _fake_quantize_minmax(x, bits, -c, c)).pow(2).mean().item()


def mse_clip_grid(x, bits):
    """The notebook's solution: a grid of 200 clips."""
    x_max = x.abs().max().item()
    candidates = torch.linspace(0.01 * x_max, x_max, 200).tolist()
    errors = [_mse(x, bits, c) for c in candidates]
    return candidates[min(range(len(candidates)), key=errors.__getitem__)]


def mse_clip_golden_then_grid(x, bits):
    """Another correct search: golden section on the SQNR, refined by a small grid around it; returns a tensor."""
    lo, hi = 0.0, x.abs().max().item()
    ratio = (5 ** 0.5 - 1) / 2
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if _mse(x, bits, a) < _mse(x, bits, b):
            hi = b
        else:
            lo = a
    centre = (lo + hi) / 2
    candidates = torch.linspace(0.8 * centre, 1.2 * centre, 81)
    return candidates[min(range(81), key=lambda i: _mse(x, bits, candidates[i].item()))]


def mse_clip_percentile_search(x, bits):
    """A third: search over percentiles of |x| instead of a linear grid."""
    candidates = torch.quantile(x.abs(), torch.linspace(0.9, 1.0, 300, dtype=torch.float64).float()).tolist()
    return min(candidates, key=lambda c: _mse(x, bits, c))


@pytest.mark.parametrize("solution", [mse_clip_grid, mse_clip_golden_then_grid, mse_clip_percentile_search])
def test_check_2_passes_on_solution(solution, capsys):
    torch.set_num_threads(1)
    assert check_2(solution) is None
    assert f"✅ {LABEL_2} passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, bits: x.abs().max().item(), "min-max range"),
    (lambda x, bits: x.abs().max(), "min-max range"),  # a tensor is read as a number
    (lambda x, bits: torch.quantile(x.abs(), 0.99).item(), "search more finely"),
    (lambda x, bits: 1.0, "search more finely"),
    (lambda x, bits: 0.01 * x.abs().max().item(), "largest error"),
    (lambda x, bits: 3 * x.abs().max().item(), "above max|x|"),
    (lambda x, bits: -2.0, "positive number"),
    (lambda x, bits: float("nan"), "positive number"),
    (lambda x, bits: (1.0, 2.0), "should be a number"),
    (lambda x, bits: torch.ones(2), "single number"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_2(wrong)
    message = str(info.value)
    assert message.startswith(f"{LABEL_2}:")
    assert hint in message


def test_check_2_is_fast_and_stub_is_not_attempted(capsys):
    def stub(x, bits):
        raise NotImplementedError("Exercise 2")

    check_2(stub)
    assert "not attempted" in capsys.readouterr().out
    torch.set_num_threads(1)
    answers = {}

    def recorded(x, bits):
        answers[bits] = mse_clip_grid(x, bits)
        return answers[bits]

    check_2(recorded)
    start = time.perf_counter()
    check_2(lambda x, bits: answers[bits])  # the check's own work only
    assert time.perf_counter() - start < 5.0  # about 0.1 s; a loose bound, so that a loaded CI machine passes


def test_check_1_ranges_avoid_rounding_ties():
    """No test range puts -x_min / s near k + 0.5, where float32 and float64 may round the zero point apart."""
    from fractions import Fraction

    from qteach.exercises.numbers_and_quantization import _RANGES

    for x_min, x_max, bits in _RANGES:
        lo, hi = Fraction(min(x_min, 0.0)), Fraction(max(x_max, 0.0))
        ratio = -lo * (2**bits - 1) / (hi - lo)
        assert abs(ratio - math.floor(ratio) - Fraction(1, 2)) > Fraction(1, 100), (x_min, x_max, bits)
