"""Self-checks of the BDPE chapter: the solution passes, another correct answer passes, wrong answers fail."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import rram_product_engine as ex
from qteach.papers import rram_product_engine as rp


def symmetric_hits(counts, entries):          # the notebook's solution
    top = len(counts) - 1
    paired = [int(counts[c]) + int(counts[top - c]) for c in range(len(counts)) if c <= top - c]
    return sum(sorted(paired, reverse=True)[:entries])


def symmetric_hits_torch(counts, entries):    # another correct answer: fold the histogram, return a tensor
    half = counts.numel() // 2
    folded = counts[:half] + counts.flip(0)[:half]
    return rp.hit_counts(folded)[entries]


def test_check_1_accepts_correct_answers(capsys):
    ex.check_1(symmetric_hits)
    ex.check_1(symmetric_hits_torch)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda counts, entries: rp.hit_counts(counts)[entries], "plain store"),
    (lambda counts, entries: int(torch.sort(counts + counts.flip(0), descending=True).values[:entries].sum()),
     "counted twice"),
    (lambda counts, entries: 0, "pair every code"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def required_saving(gain, share):
    return (1 - 1 / (1 + gain)) / share


def test_check_2_accepts_correct_answers(capsys):
    ex.check_2(required_saving)
    ex.check_2(lambda gain, share: torch.tensor(gain / ((1 + gain) * share)))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda gain, share: gain / share, "linear approximation"),
    (lambda gain, share: 1 - 1 / (1 + gain), "divide by share"),
    (lambda gain, share: gain, "not a saving"),
    (lambda gain, share: gain * share, "solve"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_checks_need_a_function():
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(3)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_2(None)
