"""The self-checks of the chapter on balanced circulant binary filters: solutions pass, plausible mistakes fail
with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach import binary
from qteach.exercises import balanced_circulant_bcn as ex
from qteach.papers import balanced_circulant_bcn as bal


def median_binarize(w):
    flat = w.flatten(1)
    return torch.where(flat > flat.median(dim=1, keepdim=True).values, 1.0, -1.0).view_as(w)


def median_binarize_topk(w):
    """Another correct answer: mark the n/2 largest of each filter with topk."""
    flat = w.flatten(1)
    b = -torch.ones_like(flat)
    b.scatter_(1, flat.topk(flat.shape[1] // 2, dim=1).indices, 1.0)
    return b.view_as(w)


@pytest.mark.parametrize("answer", [median_binarize, median_binarize_topk, bal.balanced_sign])
def test_check_1_passes(answer, capsys):
    ex.check_1(answer)
    assert "✅ ex-balanced_circulant_bcn-1 passed" in capsys.readouterr().out


def _ge_median(w):
    flat = w.flatten(1)
    return torch.where(flat >= flat.median(dim=1, keepdim=True).values, 1.0, -1.0).view_as(w)


@pytest.mark.parametrize("answer, hint", [
    (binary.sign, "threshold at 0"),
    (_ge_median, "not >="),
    (lambda w: torch.where(w > w.median(), 1.0, -1.0), "each filter's median"),
    (lambda w: -median_binarize(w), "swapped"),
    (lambda w: w[:1], "shape"),
    (lambda w: torch.ones_like(w), "each filter"),
])
def test_check_1_fails_with_hint(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(answer)


def best_scale(w, b):
    return (w * b).flatten(1).sum(1) / b.flatten(1).square().sum(1)


def best_scale_lstsq(w, b):
    """Another correct answer: a least-squares solve per filter."""
    return torch.stack([torch.linalg.lstsq(bi.reshape(-1, 1), wi.reshape(-1, 1)).solution.squeeze()
                        for wi, bi in zip(w, b)])


@pytest.mark.parametrize("answer", [best_scale, best_scale_lstsq, bal.balanced_scale])
def test_check_2_passes(answer, capsys):
    ex.check_2(answer)
    assert "✅ ex-balanced_circulant_bcn-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (lambda w, b: w.abs().flatten(1).mean(1), "only for b = sign"),
    (lambda w, b: (w * b).flatten(1).sum(1), "divide by"),
    (lambda w, b: w.abs().mean(), "one alpha per filter"),
    (lambda w, b: w.flatten(1).mean(1), "minimise"),
])
def test_check_2_fails_with_hint(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(answer)
