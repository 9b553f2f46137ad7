"""The BNN information-bottleneck chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import information_bottleneck_bnn as ex


def _h(counts):
    p = counts[counts > 0].double() / counts.sum()
    return float(-(p * p.log2()).sum())


def mi_solution(t, y):
    ids = torch.unique(t, dim=0, return_inverse=True)[1]
    joint = ids * (int(y.max()) + 1) + y
    return _h(torch.bincount(ids)) + _h(torch.bincount(y)) - _h(torch.bincount(joint))


def mi_conditional(t, y):  # another correct answer: H(Y) - sum_c p(c) H(Y | T = c), as a tensor
    ids = torch.unique(t, dim=0, return_inverse=True)[1]
    h_y_t = sum((ids == c).double().mean() * _h(torch.bincount(y[ids == c])) for c in ids.unique())
    return torch.tensor(_h(torch.bincount(y))) - h_y_t


def mi_nats(t, y):
    return mi_solution(t, y) * math.log(2)


def h_t(t, y):
    return _h(torch.bincount(torch.unique(t, dim=0, return_inverse=True)[1]))


def h_y(t, y):
    return _h(torch.bincount(y))


def mi_unweighted(t, y):  # forgets p(c) when averaging H(Y|T=c)
    ids = torch.unique(t, dim=0, return_inverse=True)[1]
    return _h(torch.bincount(y)) - sum(_h(torch.bincount(y[ids == c])) for c in ids.unique()) / len(ids.unique())


@pytest.mark.parametrize("answer", [mi_solution, mi_conditional])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-information_bottleneck_bnn-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [(mi_nats, "nats"), (h_t, "H(T) = I(X;T)"), (h_y, "that is H(Y)"),
                                         (mi_unweighted, "weight H(Y|T=c)")])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-information_bottleneck_bnn-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


def determines_solution(t_prev, t_next):
    pairs = torch.unique(torch.cat([t_prev, t_next], dim=1), dim=0)
    return len(pairs) == len(torch.unique(t_prev, dim=0))


def determines_loop(t_prev, t_next):  # another correct answer: a dictionary from code to code
    seen = {}
    for a, b in zip(t_prev.tolist(), t_next.tolist()):
        if seen.setdefault(tuple(a), tuple(b)) != tuple(b):
            return False
    return True


def by_entropy(t_prev, t_next):
    return len(torch.unique(t_next, dim=0)) <= len(torch.unique(t_prev, dim=0))


def always(t_prev, t_next):
    return True


def reversed_direction(t_prev, t_next):
    return determines_solution(t_next, t_prev)


@pytest.mark.parametrize("answer", [determines_solution, determines_loop])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-information_bottleneck_bnn-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [(by_entropy, "comparing entropies"), (always, "comparing entropies"),
                                         (reversed_direction, "says no")])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-information_bottleneck_bnn-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
