"""Self-checks of the chapter on balanced circulant binary filters (notebooks/2019/balanced_circulant_bcn.ipynb).

Each check calls the student's function on fixed filters, compares it with
:mod:`qteach.papers.balanced_circulant_bcn`, and either prints the success line or raises ``AssertionError`` with a
hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach import binary
from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import balanced_circulant_bcn as paper

_SLUG = "balanced_circulant_bcn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _filters() -> torch.Tensor:
    return torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0)) + 0.3  # no ties, mostly positive


# --- exercise 1: balanced binarization with a median threshold ------------------------------------------------


@self_check
def check_1(median_binarize) -> str:
    """Check ``median_binarize(w)``: +1 for the upper half of each filter's weights, -1 for the lower half."""
    label = _label(1)
    expect(callable(median_binarize), label, "pass your function itself, e.g. check_1(median_binarize)")
    w = _filters()
    got = median_binarize(w.clone())
    expect_type(got, torch.Tensor, label, "median_binarize(w)")
    expect(got.shape == w.shape, label, f"keep the shape of w {tuple(w.shape)}, got {tuple(got.shape)}")
    expected = paper.balanced_sign(w)
    if torch.equal(got.to(expected.dtype), expected):
        return passed(label, "thresholding at each filter's median gives exactly n/2 weights +1 and n/2 weights -1")
    if torch.equal(got.to(expected.dtype), binary.sign(w)):
        fail(label, "that is sign(w), a threshold at 0: these filters are mostly positive, so it is not balanced. "
                    "Threshold each filter at its own median.")
    if torch.equal(got.to(expected.dtype), torch.where(w > w.median(), 1.0, -1.0)):
        fail(label, "that is one median for the whole tensor; take each filter's median (flatten(1), dim=1).")
    counts = (got > 0).flatten(1).sum(1)
    if bool((counts == w[0].numel() // 2 + 1).any()):
        fail(label, "one weight too many is +1: torch.median returns the lower of the two middle values for an "
                    "even n, so compare with >, not >=.")
    if torch.equal(got.to(expected.dtype), -expected):
        fail(label, "the signs are swapped: the larger half becomes +1.")
    fail(label, "for each filter (dim 0), the weights above its median become +1 and the others -1.")


# --- exercise 2: the scale of a balanced filter ------------------------------------------------------------------


@self_check
def check_2(best_scale) -> str:
    """Check ``best_scale(w, b)``: the per-filter alpha minimising ||w - alpha b||^2 for a fixed binary b."""
    label = _label(2)
    expect(callable(best_scale), label, "pass your function itself, e.g. check_2(best_scale)")
    w = _filters()
    b = paper.balanced_sign(w)
    got = best_scale(w.clone(), b.clone())
    expect_type(got, torch.Tensor, label, "best_scale(w, b)")
    expected = paper.balanced_scale(w, b)
    expect(got.numel() == expected.numel(), label, f"one alpha per filter: expected {expected.numel()} values, got "
                                                   f"{got.numel()}")
    got = got.reshape(expected.shape)
    if torch.allclose(got, expected, atol=1e-5):
        return passed(label, "alpha = <w, b> / n: for b = sign(w) this is XNOR-Net's mean |w|, for a balanced b it "
                             "is smaller")
    if torch.allclose(got, w.abs().flatten(1).mean(1).view_as(got), atol=1e-5):
        fail(label, "mean |w| is the optimum only for b = sign(w); set the derivative of ||w - alpha b||^2 to "
                    "zero for this b: alpha = <w, b> / <b, b>.")
    if torch.allclose(got, (w * b).flatten(1).sum(1).view_as(got), atol=1e-5):
        fail(label, "divide by <b, b> = n, the number of weights in the filter.")
    fail(label, "minimise ||w - alpha b||^2 over alpha for each filter: alpha = <w, b> / n.")
