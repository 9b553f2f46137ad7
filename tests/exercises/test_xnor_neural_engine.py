"""The self-checks of the XNOR Neural Engine chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import xnor_neural_engine as ex
from qteach.papers import xnor_neural_engine as xne


def padded_popcount(x, w, tp):
    k = x.shape[1]
    pad = -k % tp
    xb = torch.nn.functional.pad((x >= 0).int(), (0, pad))
    wb = torch.nn.functional.pad((w >= 0).int(), (0, pad))
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.int64)
    for start in range(0, k + pad, tp):
        acc += (xb[:, None, start:start + tp] == wb[None, :, start:start + tp]).sum(-1)
    return acc - pad


def padded_popcount_other(x, w, tp):          # another correct answer: one matrix product of +-1 values
    s = torch.where(x >= 0, 1.0, -1.0).double() @ torch.where(w >= 0, 1.0, -1.0).double().T
    return ((s + x.shape[1]) / 2).round().long()


def _uncorrected(x, w, tp):
    return padded_popcount(x, w, tp) + (-x.shape[1] % tp)


def _dot(x, w, tp):
    return 2 * padded_popcount(x, w, tp) - x.shape[1]


def _xor(x, w, tp):
    return x.shape[1] - padded_popcount(x, w, tp)


def test_check_1_accepts_solutions(capsys):
    assert "passed" in ex.check_1(padded_popcount)
    assert "passed" in ex.check_1(padded_popcount_other)
    assert "passed" in ex.check_1(xne.xne_popcount_accumulate)


@pytest.mark.parametrize("wrong,hint", [(_uncorrected, "padding lanes"), (_dot, "dot product"),
                                        (_xor, "disagreements"), (lambda x, w, tp: torch.zeros(2), "shape")])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_stub_is_not_attempted(capsys):
    def stub(x, w, tp):
        raise NotImplementedError("Exercise 1")
    assert "not attempted" in ex.check_1(stub)


def break_even_reuse(level, fj_per_op):
    return 2 * xne.memory_fj_per_bit(level) / (2 * fj_per_op)


def break_even_reuse_other(level, fj_per_op):   # the same, from the table directly, as a tensor
    from qteach import hw
    return torch.tensor(hw.MEMORY_PJ_PER_64BIT_45NM[level] * 1000 / 64 / fj_per_op)


def test_check_2_accepts_solutions(capsys):
    assert "passed" in ex.check_2(break_even_reuse)
    assert "passed" in ex.check_2(break_even_reuse_other)


@pytest.mark.parametrize("wrong,hint", [
    (lambda level, fj: 2 * break_even_reuse(level, fj), "two operations"),
    (lambda level, fj: break_even_reuse(level, fj) / 2, "two bits"),
    (lambda level, fj: 64 * break_even_reuse(level, fj), "64-bit access"),
    (lambda level, fj: break_even_reuse(level, fj) / 1000, "units"),
    (lambda level, fj: 1 / break_even_reuse(level, fj), "upside down"),
    (lambda level, fj: "many", "number"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
