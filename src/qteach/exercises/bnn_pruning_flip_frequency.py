"""Self-checks of the BNN-pruning-by-flipping-frequency chapter (notebooks/2020/bnn_pruning_flip_frequency.ipynb).

Each check calls the student's function on fixed inputs, compares it with
:mod:`qteach.papers.bnn_pruning_flip_frequency` or a closed form, and either prints the success line or raises
``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import itertools

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "bnn_pruning_flip_frequency"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: counting flips between checkpoints ----------------------------------------------------------


def _checkpoints() -> list:
    g = torch.Generator().manual_seed(11)
    snaps = [torch.randn(4, 6, generator=g) for _ in range(6)]
    snaps[2][0, :3] = 0.0  # exact zeros: sign(0) = +1
    snaps[3][0, :3] = torch.tensor([-0.5, 0.5, 0.0])
    return snaps


def _count(snaps) -> torch.Tensor:
    signs = [torch.where(s >= 0, 1, -1) for s in snaps]
    return sum((a != b).to(torch.int64) for a, b in itertools.pairwise(signs))


@self_check
def check_1(count_flips) -> str:
    """Check ``count_flips(checkpoints)``: int counts of sign changes between successive checkpoints."""
    label = _label(1)
    expect(callable(count_flips), label, "pass your function itself, e.g. check_1(count_flips)")
    snaps = _checkpoints()
    got = count_flips([s.clone() for s in snaps])
    expect_type(got, torch.Tensor, label, "the flip counts")
    expect(got.shape == snaps[0].shape, label, "return one count per weight, the shape of one checkpoint")
    want = _count(snaps)
    if torch.equal(got.to(torch.int64), want) and not got.is_floating_point():
        return passed(label, "the flip count is an exact integer per weight, sign(0) = +1 as in the book")
    if torch.equal(got.to(torch.int64), want):
        fail(label, "the values are right, but return integers (e.g. .to(torch.int64)): a count is not a float.")
    tsign = [s.sign() for s in snaps]
    official = sum((-(a * b) + 1) / 2 for a, b in itertools.pairwise(tsign))
    if torch.allclose(got.to(torch.float64), official.to(torch.float64)) or got.is_floating_point() and \
            not torch.equal(got, got.round()):
        fail(label, "torch.sign(0) is 0, so a weight at exactly 0 counts as half a flip: use qteach.binary.sign or "
                    "torch.where(w >= 0, 1, -1) so every weight has a sign.")
    first = sum((torch.where(s >= 0, 1, -1) != torch.where(snaps[0] >= 0, 1, -1)).to(torch.int64) for s in snaps[1:])
    if torch.equal(got.to(torch.int64), first):
        fail(label, "compare each checkpoint with the one just before it, not with the first one.")
    fail(label, "add 1 for every pair of successive checkpoints (t-1, t) where sign(W_t) != sign(W_(t-1)).")


# --- exercise 2: the structured variant, whole neurons ---------------------------------------------------------


def _flips() -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    f = torch.randint(0, 4, (10, 7), generator=g)
    f[3] = f[7].flip(0)  # two rows with the same total: any order between them is right
    return f


@self_check
def check_2(prune_neurons) -> str:
    """Check ``prune_neurons(flips, k)``: a 0/1 mask over the rows pruning the k rows with most flips in total."""
    label = _label(2)
    expect(callable(prune_neurons), label, "pass your function itself, e.g. check_2(prune_neurons)")
    flips = _flips()
    totals = flips.sum(dim=1)
    for k in (0, 3, 5, 10):
        got = prune_neurons(flips.clone(), k)
        expect_type(got, torch.Tensor, label, "the neuron mask")
        if got.shape == (flips.shape[1],):
            fail(label, "one mask value per output neuron, i.e. per ROW of the weight matrix (out, in): sum the "
                        "flips over dim=1, not dim=0.")
        expect(got.shape == (flips.shape[0],), label, f"return one value per row: shape ({flips.shape[0]},)")
        expect(bool(((got == 0) | (got == 1)).all()), label, "the mask holds 0 (pruned) and 1 (kept) only")
        pruned = got == 0
        expect(int(pruned.sum()) == k, label, f"prune exactly k rows: with k = {k} the mask has {int(pruned.sum())} "
                                              "zeros.")
        if 0 < k < flips.shape[0]:
            if totals[pruned].max() <= totals[~pruned].min() and totals[pruned].min() < totals[~pruned].max():
                fail(label, "you pruned the rows that flip LEAST: the official rule prunes the weights that flip, "
                            "the most frequently flipping ones are the least sensitive.")
            expect(totals[pruned].min() >= totals[~pruned].max(), label,
                   "every pruned row should have at least as many flips in total as every kept row.")
    return passed(label, "whole neurons ranked by their total flip count: each pruned row removes in_features "
                         "XNOR-popcount operations per sample at once")
