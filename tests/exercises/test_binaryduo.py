"""Tests of qteach.exercises.binaryduo: each check passes the solution and another correct answer, and fails a
wrong answer with the hint that names the mistake."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises.binaryduo import check_1, check_2


def solution_1(y, w):
    bits = torch.cat([(y >= 1 / 6), (y >= 1 / 2), (y >= 5 / 6)], dim=1).float()
    return bits, torch.cat([w / 3, w / 3, w / 3], dim=1)


def other_order_1(y, w):  # another correct answer: the copies in another order, interleaved thresholds
    k = y.shape[1]
    bits = torch.stack([(y >= 5 / 6), (y >= 1 / 6), (y >= 1 / 2)], dim=2).reshape(-1, 3 * k).float()
    return bits, (w[:, :, None] / 3).expand(-1, -1, 3).reshape(w.shape[0], 3 * k)


def halved_1(y, w):
    bits, _ = solution_1(y, w)
    return bits, torch.cat([w / 2, w / 2, w / 2], dim=1)


def wrong_thresholds_1(y, w):
    bits = torch.cat([(y >= 1 / 3), (y >= 2 / 3), (y >= 1.0)], dim=1).float()
    return bits, torch.cat([w / 3, w / 3, w / 3], dim=1)


def test_check_1_passes_the_solution_and_another_order(capsys):
    check_1(solution_1)
    check_1(other_order_1)
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [(halved_1, "divide by 3"), (wrong_thresholds_1, "midpoints"),
                                         (lambda y, w: (y, w), "shape")])
def test_check_1_fails_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_1(wrong)


def test_check_1_not_attempted(capsys):
    def stub(y, w):
        raise NotImplementedError

    check_1(stub)
    assert "not attempted" in capsys.readouterr().out


def test_check_2_passes_ties_below_both_thresholds(capsys):
    check_2(lambda: torch.tensor([0.25 - 2**-26]))
    check_2(lambda: torch.tensor([0.3, 0.1, 0.25 - 2**-26]))
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [(lambda: torch.tensor([0.25, 0.75, 0.4]), "agree"),
                                         (lambda: torch.tensor([0.25 - 2**-26], dtype=torch.float64), "float32"),
                                         (lambda: 0.25, "Tensor")])
def test_check_2_fails_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_2(wrong)
