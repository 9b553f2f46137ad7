"""The MoBiNet chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.exercises import mobinet as ex


def conv_solution(x, w):
    k = w.shape[1]
    return F.conv1d(torch.sign(x), torch.sign(w).unsqueeze(1), padding=k // 2, groups=x.shape[1])


def conv_unfold(x, w):  # another correct answer: windows times the filter, summed
    k = w.shape[1]
    windows = F.pad(torch.where(x >= 0, 1.0, -1.0), (k // 2, k // 2)).unfold(2, k, 1)  # (N, C, L, k)
    return (windows * torch.where(w >= 0, 1.0, -1.0)[None, :, None, :]).sum(-1)


@pytest.mark.parametrize("answer", [conv_solution, conv_unfold])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-mobinet-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda x, w: F.conv1d(torch.sign(x), torch.sign(w).unsqueeze(1), groups=x.shape[1]), "pad the signal"),
    (lambda x, w: F.conv1d(x, torch.sign(w).unsqueeze(1), padding=w.shape[1] // 2, groups=x.shape[1]),
     "not binarized"),
    (lambda x, w: conv_solution(x, w).sum(1, keepdim=True).expand(-1, x.shape[1], -1), "own channel"),
    (lambda x, w: conv_solution(x, w.flip(-1)), "flipped"),
    (lambda x, w: 2 * conv_solution(x, w), "should be"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-mobinet-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


@pytest.mark.parametrize("answer", [
    lambda c, t, dw: (t if dw else c * t) + 1,
    lambda c, t, dw: len(range(-(t if dw else c * t), (t if dw else c * t) + 1, 2)),
    lambda c, t, dw: float(t * (1 if dw else c) + 1),
])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-mobinet-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda c, t, dw: 2 * (t if dw else c * t) + 1, "parity"),
    (lambda c, t, dw: t if dw else c * t, "off by one"),
    (lambda c, t, dw: (c * t if dw else t) + 1, "swapped"),
    (lambda c, t, dw: c + t, "takes the values"),
    (lambda c, t, dw: "many", "whole number"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-mobinet-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
