"""Self-checks of the binary-memristor chapter: the solution passes, another correct answer passes, wrong answers
fail with the right hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import binary_memristor_accelerator as ex
from qteach.papers import binary_memristor_accelerator as bm


def differential_dot(u, w, on_off):          # the notebook's solution
    g_plus, g_minus = bm.program_crossbar(w, on_off), bm.program_crossbar(-w, on_off)
    v = u.double()
    return (v @ g_plus - v @ g_minus) / (on_off - 1)


def differential_dot_float32(u, w, on_off):  # another correct answer: conductances by hand, float32
    g_plus = torch.where(w.T > 0, on_off, 1.0)
    g_minus = torch.where(w.T > 0, 1.0, on_off)
    return u @ (g_plus - g_minus) / (on_off - 1)


def test_check_1_accepts_correct_answers(capsys):
    ex.check_1(differential_dot)
    ex.check_1(differential_dot_float32)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda u, w, r: u.double() @ (bm.program_crossbar(w, r) - bm.program_crossbar(-w, r)), "divide by r - 1"),
    (lambda u, w, r: u.double() @ (bm.program_crossbar(w, r) - bm.program_crossbar(-w, r)) / (2 * (r - 1)),
     "not by 2"),
    (lambda u, w, r: u.double() @ bm.program_crossbar(w, r), "positive column only"),
    (lambda u, w, r: (2 * u - 1) @ w.T, "not the"),
    (lambda u, w, r: torch.zeros(u.shape[0], w.shape[0]), "program G\\+"),
    (lambda u, w, r: (u @ w.T).T, "must be \\(N, M\\)"),
    (lambda u, w, r: 3, "return a tensor"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def flip_rate(stuck_on, stuck_off, plus_share):
    return plus_share * stuck_off + (1 - plus_share) * stuck_on


def test_check_2_accepts_correct_answers(capsys):
    ex.check_2(flip_rate)
    ex.check_2(lambda on, off, plus: torch.tensor(on - plus * (on - off)))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda on, off, plus: on + off, "other\\* state"),
    (lambda on, off, plus: (on + off) / 2, "weight each rate"),
    (lambda on, off, plus: plus * on + (1 - plus) * off, "swapped"),
    (lambda on, off, plus: on * off, "a \\+1 weight flips"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_checks_need_a_function():
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(3)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_2(None)
