"""The Real-to-Binary chapter's self-checks accept correct answers and reject wrong ones with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import real_to_binary as ex
from qteach.papers import real_to_binary as r2b


def map_solution(a):
    q = a.pow(2).mean(dim=1).flatten(1)
    return q / q.norm(dim=1, keepdim=True)


def map_sum(a):  # another correct answer: the sum over channels, normalised by torch.nn.functional.normalize
    return torch.nn.functional.normalize((a * a).sum(dim=1).reshape(a.shape[0], -1), dim=1)


@pytest.mark.parametrize("answer", [map_solution, map_sum, lambda a: r2b.attention_map(a, normalise="l2")])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert "ex-real_to_binary-1" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (r2b.attention_map, "maximum"),
    (lambda a: a.pow(2).mean(dim=1).flatten(1) / a.pow(2).mean(dim=1).flatten(1).norm(), "whole batch"),
    (lambda a: map_solution(a.abs().sqrt()), "squares"),
    (lambda a: a.pow(2).mean(dim=1).flatten(1), "L2 norm"),
    (lambda a: a.pow(2).mean(dim=(1, 2, 3)), "one value per example and position"),
])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-real_to_binary-1") as error:
        ex.check_1(answer)
    assert hint in str(error.value)


def params_solution(cin, cout, r):
    return math.ceil(cin / r) * (cin + cout)


def params_by_counting(cin, cout, r):  # another correct answer: build the gate and count
    return sum(p.numel() for p in r2b.ChannelGate(cin, cout, r).parameters())


@pytest.mark.parametrize("answer", [params_solution, params_by_counting, lambda c, o, r: torch.tensor(
    float(-(-c // r) * (c + o)))])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert "ex-real_to_binary-2" in capsys.readouterr().out


@pytest.mark.parametrize("answer,hint", [
    (lambda c, o, r: (c // r) * (c + o), "round up"),
    (lambda c, o, r: math.ceil(c / r) * (c + o) + math.ceil(c / r) + o, "no biases"),
    (lambda c, o, r: 2 * math.ceil(c / r) * c, "output"),
    (lambda c, o, r: c * o, "W_1 is hidden x C_in"),
    (lambda c, o, r: "64", "return a number"),
])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match="ex-real_to_binary-2") as error:
        ex.check_2(answer)
    assert hint in str(error.value)
