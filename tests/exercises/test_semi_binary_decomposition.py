"""The self-checks of the semi-binary decomposition chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import semi_binary_decomposition as ex
from qteach.papers import semi_binary_decomposition as sbd

LABEL = "ex-semi_binary_decomposition-{}"


def optimal_d(w, u, v):
    gram = (u.T @ u) * (v.T @ v)
    b = torch.einsum("ij,ik,jk->k", w, u, v)
    return torch.linalg.solve(gram, b)


def optimal_d_lstsq(w, u, v):
    """Another correct answer: least squares on the vectorised problem."""
    design = torch.stack([torch.outer(u[:, j], v[:, j]).flatten() for j in range(u.shape[1])], 1)
    return torch.linalg.lstsq(design, w.flatten().unsqueeze(1)).solution.squeeze(1)


def test_check_1_passes(capsys):
    ex.check_1(optimal_d)
    assert "✅ ex-semi_binary_decomposition-1 passed" in capsys.readouterr().out
    ex.check_1(optimal_d_lstsq)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, u, v: ((u.T @ w) * v.T).sum(1) / w.numel(), "normal equations"),
    (lambda w, u, v: optimal_d(w, u, v).abs(), "signs are wrong"),
    (lambda w, u, v: torch.ones(u.shape[1], dtype=w.dtype), "least-squares problem"),
    (lambda w, u, v: torch.ones(2), "one value per column"),
    (lambda w, u, v: [1.0], "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


def equal_storage_rank(m, n, scale_bits):
    return (m * n + m * scale_bits) // (m + n + scale_bits)


def equal_storage_rank_search(m, n, scale_bits):
    """Another correct answer: search with the module's storage counts."""
    k = 0
    while sbd.storage_bits(m, n, k + 1, scale_bits) <= sbd.bwn_storage_bits(m, n, scale_bits):
        k += 1
    return torch.tensor(k)


def test_check_2_passes(capsys):
    ex.check_2(equal_storage_rank)
    assert "✅ ex-semi_binary_decomposition-2 passed" in capsys.readouterr().out
    ex.check_2(equal_storage_rank_search)
    ex.check_2(lambda m, n, s: float(math.floor((m * n + m * s) / (m + n + s))))


@pytest.mark.parametrize("wrong,hint", [
    (lambda m, n, s: (m * n) // (m + n), "left out the scales"),
    (lambda m, n, s: (m * n + m * s) / (m + n + s), "round down"),
    (lambda m, n, s: min(m, n), "is not"),
    (lambda m, n, s: "3", "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
