"""The self-checks of "PA: piecewise approximation": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import piecewise_approximation as ex
from qteach.papers import piecewise_approximation as pa

LABEL = "ex-piecewise_approximation-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def indicator_form(levels):
    return levels[0], levels[1:] - levels[:-1]


def indicator_form_from_sign_form(levels):
    """Another correct answer: from the sign form, b - sum(alpha) and 2 alpha, as Python floats."""
    b, alpha = pa.coefficients(levels)
    return float(b - alpha.sum()), (2 * alpha).tolist()


def test_check_1_passes_the_solution(capsys):
    ex.check_1(indicator_form)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_accepts_another_form():
    ex.check_1(indicator_form_from_sign_form)


@pytest.mark.parametrize("wrong, hint", [
    (lambda v: pa.coefficients(v), "b of the sign form"),
    (lambda v: (v[0], pa.coefficients(v)[1]), "those are the alphas of the sign form"),
    (lambda v: (v[0], (v[1:] - v[:-1]).flip(0)), "the jump between the levels"),
    (lambda v: (v[-1], v[1:] - v[:-1]), "the offset is v_0"),
    (lambda v: (v[0], v[1:]), "the jump between the levels"),
    (lambda v: (v[0], v - v[0]), "one per basis"),
    (lambda v: v[0], "return two things"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


def distinct_levels(m):
    return m + 1, 2**m


def distinct_levels_measured(m):
    """Another correct answer: count the levels on many Gaussian samples (as tensors)."""
    from qteach.papers import horq
    x = torch.linspace(-3, 3, 20001, dtype=torch.float64)
    n_pa = len(torch.unique(pa.approximate(x, m, "uniform")[0]))
    n_res = len(torch.unique(horq.horq_approximation(x.reshape(1, -1), m)))
    return torch.tensor(n_pa), n_res


def test_check_2_passes(capsys):
    ex.check_2(distinct_levels)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


def test_check_2_accepts_a_measurement():
    ex.check_2(distinct_levels_measured)


@pytest.mark.parametrize("wrong, hint", [
    (lambda m: (2**m, 2**m), "nested thresholds"),
    (lambda m: (m, 2**m), "count the piece below"),
    (lambda m: (m + 2, 2**m), "M + 1 pieces"),
    (lambda m: (m + 1, m + 1), "not nested"),
    (lambda m: (m + 1, 2 * m), "doubles the number of levels"),
    (lambda m: (m + 1, 3**m), "count the sign patterns"),
    (lambda m: m + 1, "two integers"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)


def test_checks_reject_non_callables():
    _fails(ex.check_1, 3, "pass your function itself", 1)
    _fails(ex.check_2, None, "pass your function itself", 2)
