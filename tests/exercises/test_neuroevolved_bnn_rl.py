"""The self-checks of the BiSUNA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import neuroevolved_bnn_rl as ex

LABEL = "ex-neuroevolved_bnn_rl-{}"


def equivalent_genome(genome):
    other = genome.clone()
    other[0:4] = ~other[0:4]
    other[32] = ~other[32]
    return other


def negate_everything(genome):
    """Another correct answer: negate every hidden unit (all 40 bits)."""
    return ~genome


def negate_units_2_and_5(genome):
    other = genome.clone()
    for j in (2, 5):
        other[4 * j: 4 * j + 4] ^= True
        other[32 + j] ^= True
    return other


def only_inputs(genome):
    other = genome.clone()
    other[0:4] = ~other[0:4]
    return other


def only_output(genome):
    other = genome.clone()
    other[33] = ~other[33]
    return other


def test_check_1_passes(capsys):
    ex.check_1(equivalent_genome)
    assert "✅ ex-neuroevolved_bnn_rl-1 passed" in capsys.readouterr().out
    ex.check_1(negate_everything)
    ex.check_1(negate_units_2_and_5)


@pytest.mark.parametrize("wrong,hint", [
    (lambda g: g.clone(), "different"),
    (only_inputs, "negate its output"),
    (only_output, "input bits as well"),
    (lambda g: g.float(), "bool tensor"),
    (lambda g: [1], "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


def clone_probability(n_bits, flip_prob):
    return (1 - flip_prob) ** n_bits


def clone_probability_log(n_bits, flip_prob):
    """Another correct answer, through logarithms and a tensor."""
    return torch.tensor(math.exp(n_bits * math.log1p(-flip_prob)))


def test_check_2_passes(capsys):
    ex.check_2(clone_probability)
    assert "✅ ex-neuroevolved_bnn_rl-2 passed" in capsys.readouterr().out
    ex.check_2(clone_probability_log)


@pytest.mark.parametrize("wrong,hint", [
    (lambda n, p: 1 - (1 - p) ** n, "at least one bit flips"),
    (lambda n, p: p ** n, "every* bit flips"),
    (lambda n, p: 1 - n * p, "first-order"),
    (lambda n, p: 0.5, "independently"),
    (lambda n, p: "x", "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)


def test_stub_prints_not_attempted(capsys):
    def stub(*_):
        raise NotImplementedError
    ex.check_1(stub)
    ex.check_2(stub)
    assert capsys.readouterr().out.count("not attempted") == 2
