"""Self-checks of the DBRC chapter (notebooks/2019/deep_binary_reconstruction.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.deep_binary_reconstruction` or a
closed form, and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import deep_binary_reconstruction as dbrc

_SLUG = "deep_binary_reconstruction"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: average precision of one ranked list ---------------------------------------------------------


_RANKINGS = ([1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1], [0, 1, 0, 1, 1, 0, 0, 1], [1] + [0] * 9 + [1])


def _reference_ap(ranked) -> float:
    rel = torch.tensor(ranked, dtype=torch.bool)[None]
    return dbrc.average_precision(torch.arange(rel.shape[1])[None], rel).item()


@self_check
def check_1(ap) -> str:
    """Check ``ap(ranked)``: average precision of a 0/1 relevance list given in ranked order."""
    label = _label(1)
    expect(callable(ap), label, "pass your function itself, e.g. check_1(ap)")
    for ranked in _RANKINGS:
        value = as_number(ap(list(ranked)), label, f"ap({ranked})")
        target = _reference_ap(ranked)
        if abs(value - target) <= 1e-9:
            continue
        hits = [sum(ranked[: n + 1]) / (n + 1) for n in range(len(ranked))]
        if abs(value - sum(hits) / len(ranked)) <= 1e-9:
            fail(label, f"ap({ranked}) = {value:.4f}: you averaged precision@n over every position; average it "
                        "only over the positions of relevant items.")
        if abs(value - sum(h for h, r in zip(hits, ranked) if r) / len(ranked)) <= 1e-9:
            fail(label, f"ap({ranked}) = {value:.4f}: divide by the number of relevant items R, not by the "
                        "length of the list.")
        fail(label, f"ap({ranked}) should be {target:.4f}, got {value:.4f}: at each relevant position n take "
                    "(relevant items in the top n) / n, then average over the relevant positions.")
    return passed(label, "your AP equals the exact one on 5 rankings (a perfect one, a worst one, gaps)")


# --- exercise 2: the mAP of codes that carry no information ---------------------------------------------------


def _chance_cases():
    g = torch.Generator().manual_seed(5)
    yield torch.randint(0, 10, (40,), generator=g), torch.randint(0, 10, (900,), generator=g)
    yield torch.tensor([0, 1, 1, 2]), torch.tensor([0] * 300 + [1] * 100 + [2] * 600)


def _chance(query_labels, db_labels) -> float:
    counts = torch.bincount(db_labels, minlength=int(query_labels.max()) + 1).double()
    return (counts[query_labels] / len(db_labels)).mean().item()


@self_check
def check_2(chance_map) -> str:
    """Check ``chance_map(query_labels, db_labels)``: expected mAP of a ranking that ignores the query."""
    label = _label(2)
    expect(callable(chance_map), label, "pass your function itself, e.g. check_2(chance_map)")
    for query_labels, db_labels in _chance_cases():
        value = as_number(chance_map(query_labels.clone(), db_labels.clone()), label, "chance_map(...)")
        target = _chance(query_labels, db_labels)
        if abs(value - target) <= 0.01:
            continue
        classes = int(max(query_labels.max(), db_labels.max())) + 1
        if abs(value - 1 / classes) <= 1e-6:
            fail(label, f"got {value:.4f} = 1 / number of classes: that holds only for balanced classes; use "
                        "the fraction of the database that shares each query's label.")
        if abs(value - 0.5) <= 1e-6:
            fail(label, "got 0.5: a random ranking puts relevant items anywhere, so the precision at a relevant "
                        "item is about the fraction of relevant items, not 1/2.")
        fail(label, f"expected about {target:.4f}, got {value:.4f}: for each query, precision at any position of "
                    "a random ranking is on average R_q / N (relevant fraction); average that over the queries.")
    return passed(label, "the mAP of uninformative codes is the mean fraction of relevant items, R_q / N")
