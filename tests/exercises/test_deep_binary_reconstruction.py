"""The self-checks of the DBRC chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import deep_binary_reconstruction as ex

LABEL = "ex-deep_binary_reconstruction-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def ap(ranked):
    hits, total = 0, 0.0
    for n, r in enumerate(ranked, start=1):
        if r:
            hits += 1
            total += hits / n
    return total / hits


def ap_torch(ranked):
    rel = torch.tensor(ranked, dtype=torch.float64)
    precision = rel.cumsum(0) / torch.arange(1, len(rel) + 1)
    return (precision * rel).sum() / rel.sum()  # a 0-d tensor is accepted


def ap_every_position(ranked):
    hits, total = 0, 0.0
    for n, r in enumerate(ranked, start=1):
        hits += r
        total += hits / n
    return total / len(ranked)


def ap_divide_by_length(ranked):
    hits, total = 0, 0.0
    for n, r in enumerate(ranked, start=1):
        if r:
            hits += 1
            total += hits / n
    return total / len(ranked)


def test_check_1_passes(capsys):
    ex.check_1(ap)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


def test_check_1_accepts_a_tensor_answer(capsys):
    ex.check_1(ap_torch)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [(ap_every_position, "only over the positions of relevant"),
                                         (ap_divide_by_length, "number of relevant items R"),
                                         (lambda ranked: 0.5, "should be"),
                                         (lambda ranked: "x", "should be a number")])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def chance_map(query_labels, db_labels):
    counts = torch.bincount(db_labels, minlength=int(query_labels.max()) + 1)
    return (counts[query_labels].double() / len(db_labels)).mean().item()


def chance_map_loop(query_labels, db_labels):
    """Another correct answer: a Python loop over queries."""
    return sum(float((db_labels == q).double().mean()) for q in query_labels) / len(query_labels)


def chance_map_simulated(query_labels, db_labels):
    """Another correct answer: the exact AP of a fixed random ranking, averaged (within the tolerance)."""
    from qteach.papers import deep_binary_reconstruction as dbrc

    g = torch.Generator().manual_seed(0)
    values = []
    for _ in range(20):
        dist = torch.rand(len(db_labels), generator=g).expand(len(query_labels), -1)
        values.append(dbrc.mean_average_precision(dist, query_labels[:, None] == db_labels[None, :]))
    return sum(values) / len(values)


def test_check_2_passes(capsys):
    ex.check_2(chance_map)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("other", [chance_map_loop, chance_map_simulated])
def test_check_2_accepts_other_answers(other, capsys):
    ex.check_2(other)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda q, d: 1 / (int(max(q.max(), d.max())) + 1), "balanced classes"),
    (lambda q, d: 0.5, "not 1/2"),
    (lambda q, d: 1.0, "R_q / N"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_checks_reject_non_callables():
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(0.5)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_2(0.5)
