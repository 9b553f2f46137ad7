import math

import pytest

from qteach.exercises import fixed_point_image_compression as ex


def solution_1(peak, bits):
    return math.floor(math.log2((2 ** (bits - 1) - 1) / peak))


def alternative_1(peak, bits):
    f = 64
    while peak * 2 ** f > 2 ** (bits - 1) - 1:
        f -= 1
    return f


def test_check_1_solution_and_alternative(capsys):
    ex.check_1(solution_1)
    ex.check_1(alternative_1)
    assert "ex-fixed_point_image_compression-1" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda peak, bits: math.floor(math.log2(2 ** (bits - 1) / peak)), "2\\^\\(bits-1\\) - 1"),
    (lambda peak, bits: math.ceil(math.log2((2 ** (bits - 1) - 1) / peak)), "one too large"),
    (lambda peak, bits: math.floor(math.log2((2 ** (bits - 1) - 1) / peak)) - 1, "one too small"),
    (lambda peak, bits: 0.5, "integer"),
    (lambda peak, bits: 3, "expected F|one too"),
])
def test_check_1_wrong(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_2():
    ex.check_2(lambda b, n, g: 1 - (b * n + 8 * g) / (32 * n))
    ex.check_2(lambda b, n, g: (32 * n - b * n - 8 * g) / (32 * n))
    with pytest.raises(AssertionError, match="kept"):
        ex.check_2(lambda b, n, g: b / 32)
    with pytest.raises(AssertionError, match="fractional length"):
        ex.check_2(lambda b, n, g: 1 - b / 32)
    with pytest.raises(AssertionError, match="percentage"):
        ex.check_2(lambda b, n, g: 100 * (1 - (b * n + 8 * g) / (32 * n)))
    with pytest.raises(AssertionError, match="function"):
        ex.check_2(0.75)


def test_not_attempted(capsys):
    def stub(peak, bits):
        raise NotImplementedError
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out
