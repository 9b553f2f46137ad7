"""The XNOR-Net++ chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import xnor_net_plus_plus as ex


def rank1_solution(alpha, beta, gamma):
    return alpha[:, None, None] * beta[None, :, None] * gamma[None, None, :]


def rank1_einsum(alpha, beta, gamma):
    return torch.einsum("o,h,w->ohw", alpha, beta, gamma)


def best_solution(target, counts):
    return (target * counts).sum(dim=(0, 2, 3)) / (counts * counts).sum(dim=(0, 2, 3))


def best_lstsq(target, counts):  # another correct answer: one least-squares problem per channel
    o = target.shape[1]
    return torch.stack([torch.linalg.lstsq(counts[:, k].reshape(-1, 1), target[:, k].reshape(-1, 1)).solution[0, 0]
                        for k in range(o)])


@pytest.mark.parametrize("answer", [rank1_solution, rank1_einsum])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-xnor_net_plus_plus-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda a, b, c: a[:, None, None] + b[None, :, None] + c[None, None, :], "sum"),
    (lambda a, b, c: a[:, None, None] * c[None, :, None] * b[None, None, :], "(o, w, h)"),
    (lambda a, b, c: a[:, None, None] * b[None, :, None] * c[None, None, :] * 2, "outer product"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-xnor_net_plus_plus-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


@pytest.mark.parametrize("answer", [best_solution, best_lstsq])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-xnor_net_plus_plus-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda t, c: (t / c).mean(dim=(0, 2, 3)), "mean of target / counts"),
    (lambda t, c: t.abs().mean(dim=(0, 2, 3)) / c.abs().mean(dim=(0, 2, 3)), "ignores the signs"),
    (lambda t, c: (t * c).sum(dim=(1, 2, 3)) / (c * c).sum(dim=(1, 2, 3)), "one factor per output channel"),
    (lambda t, c: (t * c).mean(dim=(0, 2, 3)), "derivative"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-xnor_net_plus_plus-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
