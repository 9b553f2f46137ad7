"""Self-checks of the SIMBA chapter: the solution passes, another correct answer passes, wrong answers fail with
the right hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import simba as ex
from qteach.papers import simba as sb


def skyrmion_dot(x, w):                       # the notebook's solution
    cells = sb.store_weights(w)
    agree = ((x > 0)[:, None, :] == cells[None]).sum(-1)
    return 2 * agree - x.shape[1]


def skyrmion_dot_float(x, w):                 # another correct answer: XNOR as 1 - XOR on float bits
    b, s = (x > 0).float(), sb.store_weights(w).float()
    xor = b @ (1 - s).T + (1 - b) @ s.T
    return x.shape[1] - 2 * xor


def test_check_1_accepts_correct_answers(capsys):
    ex.check_1(skyrmion_dot)
    ex.check_1(skyrmion_dot_float)
    ex.check_1(lambda x, w: x @ w.T)
    assert "passed" in capsys.readouterr().out


def _agree(x, w):
    return ((x > 0)[:, None, :] == sb.store_weights(w)[None]).sum(-1)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w: _agree(x, w), "2 \\* count - K"),
    (lambda x, w: x.shape[1] - _agree(x, w), "disagreeing"),
    (lambda x, w: 2 * _agree(x, w), "subtract K"),
    (lambda x, w: torch.zeros(x.shape[0], w.shape[0]), "store w with store_weights"),
    (lambda x, w: (x @ w.T).T, "must be \\(N, M\\)"),
    (lambda x, w: 3, "return a tensor"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def read_noise_std(k, p_read):
    return 2 * math.sqrt(k * p_read * (1 - p_read))


def test_check_2_accepts_correct_answers(capsys):
    ex.check_2(read_noise_std)
    ex.check_2(lambda k, p: torch.tensor(4.0 * k * p * (1 - p)).sqrt())
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda k, p: math.sqrt(k * p * (1 - p)), "by 2, not by 1"),
    (lambda k, p: 4 * k * p * (1 - p), "variance"),
    (lambda k, p: 2 * math.sqrt(k * p), "p \\(1 - p\\), not p"),
    (lambda k, p: 2 * k * p, "expected number"),
    (lambda k, p: 0.0, "misread cell changes"),
    (lambda k, p: "x", "number"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
