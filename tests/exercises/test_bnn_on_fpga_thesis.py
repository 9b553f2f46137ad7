"""The self-checks of the BNN-on-FPGA thesis chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import bnn_on_fpga_thesis as ex

LABEL = "ex-bnn_on_fpga_thesis-{}"


def popcount_tau(t, fan_in):
    return torch.ceil((fan_in + t.double()) / 2).to(torch.int64)


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(popcount_tau).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, k: torch.floor((k + t.double()) / 2).to(torch.int64), "torch.ceil, not down"),
    (lambda t, k: torch.ceil(t.double() / 2).to(torch.int64), "add K before halving"),
    (lambda t, k: torch.ceil((k - t.double()) / 2).to(torch.int64), "sign of t is turned around"),
    (lambda t, k: torch.ceil(k + t.double()).to(torch.int64), "divide (K + t) by 2"),
    (lambda t, k: torch.ceil((k + t.double()) / 2), "integer tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def ii_and_latency(stages):
    cycles = [math.ceil(n / p) * math.ceil(k / s) for k, n, p, s in stages]
    return max(cycles), sum(cycles)


def ii_is_sum(stages):
    cycles = [math.ceil(n / p) * math.ceil(k / s) for k, n, p, s in stages]
    return sum(cycles), sum(cycles)


def floors(stages):
    cycles = [(n // p) * (k // s) for k, n, p, s in stages]
    return max(cycles), sum(cycles)


def swapped(stages):
    return ii_and_latency(stages)[::-1]


def latency_is_max(stages):
    ii, _ = ii_and_latency(stages)
    return ii, ii


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(ii_and_latency).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (ii_is_sum, "not the sum"),
    (floors, "use ceilings"),
    (swapped, "swapped"),
    (latency_is_max, "latency is the sum"),
    (lambda stages: 3, "should be a tuple"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
