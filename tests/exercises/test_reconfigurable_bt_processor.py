"""The self-checks of the reconfigurable BT-processor chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import reconfigurable_bt_processor as ex
from qteach.papers import reconfigurable_bt_processor as rb

LABEL = "ex-reconfigurable_bt_processor-{}"


def msb_first(x, w, a_bits):
    pos, neg = rb.weight_planes(w)
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for i in reversed(range(a_bits)):
        plane = (x >> i) & 1
        acc = (acc << 1) + plane @ pos.T - plane @ neg.T
    return acc


def msb_first_float(x, w, a_bits):        # another correct answer: float arithmetic, exact for these sizes
    acc = torch.zeros(x.shape[0], w.shape[0])
    for i in range(a_bits - 1, -1, -1):
        acc = 2 * acc + ((x >> i) & 1).float() @ w.float().T
    return acc


def lsb_first_horner(x, w, a_bits):
    pos, neg = rb.weight_planes(w)
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for i in range(a_bits):
        plane = (x >> i) & 1
        acc = 2 * acc + plane @ pos.T - plane @ neg.T
    return acc


def no_negative_plane(x, w, a_bits):
    pos, _ = rb.weight_planes(w)
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for i in reversed(range(a_bits)):
        acc = 2 * acc + ((x >> i) & 1) @ pos.T
    return acc


def no_shift(x, w, a_bits):
    pos, neg = rb.weight_planes(w)
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for i in reversed(range(a_bits)):
        plane = (x >> i) & 1
        acc = acc + plane @ pos.T - plane @ neg.T
    return acc


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(msb_first).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


def test_check_1_accepts_another_correct_answer():
    assert ex.check_1(msb_first_float).startswith("✅")
    assert ex.check_1(lambda x, w, b: rb.bitserial_bt_matmul(x, w, b)).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lsb_first_horner, "wrong order"),
    (no_negative_plane, "-1 weights are missing"),
    (no_shift, "double the accumulator"),
    (lambda x, w, b: (x @ w.T).float() + 0.5, "fractions"),
    (lambda x, w, b: x @ w.T + 1, "start from acc = 0"),
    (lambda x, w, b: (x @ w.T)[:1], "shape"),
    (lambda x, w, b: [[0]], "tensor"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def minority_accumulations(w):
    n, k = w.shape
    plus = (w == 1).sum(dim=1)
    return k + int(torch.minimum(plus, k - plus).sum()) + n


def minority_loop(w):                     # another correct answer: a loop, returning a 0-d tensor
    total = torch.tensor(w.shape[1])
    for kernel in w:
        total = total + min(int((kernel == 1).sum()), int((kernel == -1).sum())) + 1
    return total


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(minority_accumulations).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


def test_check_2_accepts_another_correct_answer():
    assert ex.check_2(minority_loop).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda w: minority_accumulations(w) - w.shape[1], "window total"),
    (lambda w: minority_accumulations(w) - w.shape[0], "combine"),
    (lambda w: rb.accumulations(w, "total-partial"), "rarer"),
    (lambda w: w.shape[1] + int(torch.maximum((w == 1).sum(1), (w == -1).sum(1)).sum()) + w.shape[0], "min"),
    (lambda w: rb.accumulations(w, "dense"), "dense count"),
    (lambda w: "many", "number"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_unattempted_checks_say_so(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1: ...")
    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
