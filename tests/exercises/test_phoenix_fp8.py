"""Tests of the self-checks of the chapter phoenix_fp8: the solution passes, another correct answer passes, wrong
answers fail with the hint that names the mistake."""

import math

import pytest
import torch

from qteach.exercises import phoenix_fp8 as ex
from qteach.papers import phoenix_fp8 as ph


def solution_1(v):
    a = abs(v)
    e = max(math.floor(math.log2(a)), -14) if a > 0 else -14
    q = round(a / 2.0 ** (e - 2)) * 2.0 ** (e - 2)
    return math.copysign(math.inf if q > 57344 else q, v)


def other_1(v):  # with the module's emulation, as a 0-d tensor
    return ph.quantize_float(torch.tensor(v, dtype=torch.float64), ph.E5M2, saturate=False)


def test_check_1_accepts_correct_answers(capsys):
    ex.check_1(solution_1)
    ex.check_1(other_1)
    assert "ex-phoenix_fp8-1" in capsys.readouterr().out


@pytest.mark.parametrize("mode, hint", [("half_up", "ties to even"), ("truncate", "do not truncate"),
                                        ("flush", "subnormals"), ("saturate", "inf")])
def test_check_1_rejects_wrong_answers(mode, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(lambda v: ex._wrong_1(v, mode))


def test_check_1_not_attempted(capsys):
    def stub(v):
        raise NotImplementedError
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out


def solution_2(x):
    scores = {e: ph.sqnr_db(x, ph.normalized_quantize(x, ph.float_format(e, 7 - e))) for e in range(1, 6)}
    return max(scores, key=scores.get)


def other_2(x):  # per-tensor normalization written out, MSE instead of SQNR
    peak = x.abs().max()
    errors = []
    for e in range(1, 6):
        fmt = ph.float_format(e, 7 - e)
        s = peak / ph.max_finite(fmt)
        errors.append(float(((ph.quantize_float(x / s, fmt) * s - x) ** 2).mean()))
    return 1 + errors.index(min(errors))


def test_check_2_accepts_correct_answers(capsys):
    ex.check_2(solution_2)
    ex.check_2(other_2)
    assert "ex-phoenix_fp8-2" in capsys.readouterr().out


def test_check_2_rejects_wrong_answers():
    def lowest(x):
        s = {e: ph.sqnr_db(x, ph.normalized_quantize(x, ph.float_format(e, 7 - e))) for e in range(1, 6)}
        return min(s, key=s.get)

    def raw(x):
        s = {e: ph.sqnr_db(x, ph.quantize_float(x, ph.float_format(e, 7 - e))) for e in range(1, 6)}
        return max(s, key=s.get)

    with pytest.raises(AssertionError, match="lowest SQNR"):
        ex.check_2(lowest)
    with pytest.raises(AssertionError, match="mantissa bits"):
        ex.check_2(lambda x: 7 - solution_2(x))
    with pytest.raises(AssertionError, match="normalize first"):
        ex.check_2(raw)
    with pytest.raises(AssertionError, match="must return an int"):
        ex.check_2(lambda x: 4.0)
    with pytest.raises(AssertionError, match="highest SQNR"):
        ex.check_2(lambda x: 4)
