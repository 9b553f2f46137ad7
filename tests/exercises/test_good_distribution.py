import math

import pytest

from qteach.exercises import good_distribution as ex


def test_check_1_solution_and_alternative(capsys):
    ex.check_1(lambda bits: math.sqrt(3) * (2 ** bits - 1) / 2 ** bits)
    ex.check_1(lambda bits: math.sqrt(3) * (1 - 0.5 ** bits))  # an equivalent form
    assert "ex-good_distribution-1" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda bits: math.sqrt(3), "half-width"),
    (lambda bits: math.sqrt(3) * 2 ** bits / (2 ** bits + 1), "steps, not"),
])
def test_check_1_wrong(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_2():
    ex.check_2(lambda: "laplace")
    ex.check_2(lambda: " Laplace ")
    with pytest.raises(AssertionError, match="smallest loss"):
        ex.check_2(lambda: "uniform")
    with pytest.raises(AssertionError, match="middle"):
        ex.check_2(lambda: "gaussian")
    with pytest.raises(AssertionError, match="function"):
        ex.check_2("laplace")


def test_not_attempted(capsys):
    def stub(bits):
        raise NotImplementedError
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out
