"""The self-checks of the Eyeriss v2 chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import eyeriss_v2 as ex

LABEL = "ex-eyeriss_v2-{}"


def csc_macs(weight, act):
    return int(((weight != 0) & (act != 0)[None]).sum())


def csc_macs_loop(weight, act):                      # another correct answer, a tensor result
    return sum((weight[:, c] != 0).sum() for c in range(act.numel()) if act[c] != 0) + torch.tensor(0)


def csc_entries(column, count_bits):
    entries, run = 0, 0
    for value in column.tolist():
        if value == 0:
            run += 1
        else:
            entries += 1 + run // 2**count_bits
            run = 0
    return entries


def csc_entries_vectorized(column, count_bits):      # another correct answer
    idx = torch.nonzero(column).flatten()
    runs = torch.diff(idx, prepend=torch.tensor([-1])) - 1
    return int(idx.numel() + (runs // 2**count_bits).sum())


@pytest.mark.parametrize("answer", [csc_macs, csc_macs_loop])
def test_check_1_accepts_correct_answers(answer, capsys):
    ex.check_1(answer)
    assert LABEL.format(1) in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, a: w.numel(), "dense count"),
    (lambda w, a: int((w != 0).sum() * (a != 0).sum()), "its own column"),
    (lambda w, a: int((w != 0).sum()), "skip the columns"),
    (lambda w, a: int((a != 0).sum()) * w.shape[0], "not all M rows"),
    (lambda w, a: 0, "for each non-zero"),
    (lambda w, a: "3", "should be a number"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


@pytest.mark.parametrize("answer", [csc_entries, csc_entries_vectorized])
def test_check_2_accepts_correct_answers(answer, capsys):
    ex.check_2(answer)
    assert LABEL.format(2) in capsys.readouterr().out


def _off_by_one(column, count_bits):
    idx = torch.nonzero(column).flatten()
    runs = torch.diff(idx, prepend=torch.tensor([-1])) - 1
    return int(idx.numel() + (runs // (2**count_bits - 1)).sum())


def _trailing(column, count_bits):
    tail = len(column) - 1 - int(torch.nonzero(column).flatten()[-1]) if column.any() else len(column)
    return csc_entries(column, count_bits) + tail // 2**count_bits + (1 if tail else 0)


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, b: int((c != 0).sum()), "needs padding zeros"),
    (_off_by_one, "not 2\\*\\*count_bits - 1"),
    (_trailing, "need no entry"),
    (lambda c, b: -1, "one entry per non-zero"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_checks_report_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise")
    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
