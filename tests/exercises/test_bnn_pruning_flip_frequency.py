"""The self-checks of the flip-frequency pruning chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import itertools

import pytest
import torch

from qteach.binary import sign
from qteach.exercises import bnn_pruning_flip_frequency as ex
from qteach.papers import bnn_pruning_flip_frequency as bp

LABEL = "ex-bnn_pruning_flip_frequency-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def count_flips(checkpoints):
    return sum(bp.flip_indicator(a, b) for a, b in itertools.pairwise(checkpoints))


def count_flips_stacked(checkpoints):
    """Another correct answer: stack the signs and count the changes along time."""
    s = sign(torch.stack(checkpoints))
    return (s[1:] != s[:-1]).sum(dim=0)


def count_flips_torch_sign(checkpoints):
    return sum((-(a.sign() * b.sign()) + 1) / 2 for a, b in itertools.pairwise(checkpoints))


def count_flips_vs_first(checkpoints):
    return sum((sign(c) != sign(checkpoints[0])).to(torch.int64) for c in checkpoints[1:])


def count_flips_float(checkpoints):
    return count_flips(checkpoints).float()


@pytest.mark.parametrize("answer", [count_flips, count_flips_stacked])
def test_check_1_accepts(answer, capsys):
    ex.check_1(answer)
    assert LABEL.format(1) in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [(count_flips_torch_sign, "torch.sign"),
                                          (count_flips_vs_first, "just before"),
                                          (count_flips_float, "integers")])
def test_check_1_rejects(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(answer)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def prune_neurons(flips, k):
    return bp.prune_mask(flips.sum(dim=1).to(torch.float32), k / flips.shape[0])


def prune_neurons_topk(flips, k):
    """Another correct answer: torch.topk on the totals."""
    mask = torch.ones(flips.shape[0])
    mask[torch.topk(flips.sum(dim=1), k).indices] = 0
    return mask


def prune_neurons_least(flips, k):
    mask = torch.ones(flips.shape[0])
    mask[torch.topk(-flips.sum(dim=1), k).indices] = 0
    return mask


def prune_neurons_columns(flips, k):
    mask = torch.ones(flips.shape[1])
    mask[torch.topk(flips.sum(dim=0), min(k, flips.shape[1])).indices] = 0
    return mask


def prune_neurons_off_by_one(flips, k):
    mask = torch.ones(flips.shape[0])
    mask[torch.topk(flips.sum(dim=1), min(k + 1, flips.shape[0])).indices] = 0
    return mask


@pytest.mark.parametrize("answer", [prune_neurons, prune_neurons_topk])
def test_check_2_accepts(answer, capsys):
    ex.check_2(answer)
    assert LABEL.format(2) in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [(prune_neurons_least, "LEAST"), (prune_neurons_columns, "ROW"),
                                          (prune_neurons_off_by_one, "exactly k")])
def test_check_2_rejects(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(answer)
