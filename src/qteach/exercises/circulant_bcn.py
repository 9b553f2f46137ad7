"""Self-checks of the chapter on circulant binary convolutional networks (notebooks/2019/circulant_bcn.ipynb).

Each check calls the student's function on fixed filters, compares it with :mod:`qteach.papers.circulant_bcn`,
and either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import circulant_bcn as paper

_SLUG = "circulant_bcn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _filters() -> torch.Tensor:
    return torch.arange(2 * 3 * 9, dtype=torch.float32).reshape(2, 3, 3, 3) - 20.0


# --- exercise 1: the four CiFs as rotations -------------------------------------------------------------------


@self_check
def check_1(four_cifs) -> str:
    """Check ``four_cifs(w)``: the 4 CiFs of 3x3 filters ``w`` (shape (4, ...)), in either turning direction."""
    label = _label(1)
    expect(callable(four_cifs), label, "pass your function itself, e.g. check_1(four_cifs)")
    w = _filters()
    got = four_cifs(w.clone())
    expect_type(got, torch.Tensor, label, "four_cifs(w)")
    expect(tuple(got.shape) == (4, *w.shape), label,
           f"stack the four filters on a new first dimension: expected shape {(4, *w.shape)}, got "
           f"{tuple(got.shape)}")
    clockwise = paper.circulant_filters(w, 4)
    counter = clockwise[[0, 3, 2, 1]]
    if torch.equal(got, clockwise) or torch.equal(got, counter):
        return passed(label, "the four CiFs of a 3x3 filter are its rotations by 0, 90, 180 and 270 degrees: "
                             "a ring shift by 2 places is a 90 degree turn")
    if torch.equal(got, torch.stack([w.transpose(-2, -1) if k % 2 else w for k in range(4)])):
        fail(label, "a transpose is a mirror image, not a rotation: use torch.rot90(w, k, dims=(-2, -1)).")
    if torch.equal(got[0], w) and not torch.equal(got[2], torch.rot90(w, 2, dims=(-2, -1))):
        fail(label, "filter k must be turned by k quarter turns (k = 0, 1, 2, 3), all in one direction.")
    fail(label, "filter k is w turned by k * 90 degrees: torch.rot90(w, k, dims=(-2, -1)) for k = 0..3, stacked.")


# --- exercise 2: circulant back-propagation by hand ------------------------------------------------------------


@self_check
def check_2(learned_filter_grad) -> str:
    """Check ``learned_filter_grad(grad_cifs)``: the learned filter's gradient from its 4 CiFs' gradients."""
    label = _label(2)
    expect(callable(learned_filter_grad), label, "pass your function itself, e.g. check_2(learned_filter_grad)")
    g = torch.randn(4, 2, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    got = learned_filter_grad(g.clone())
    expect_type(got, torch.Tensor, label, "learned_filter_grad(grad_cifs)")
    expect(tuple(got.shape) == tuple(g.shape[1:]), label,
           f"the gradient has the shape of one filter bank {tuple(g.shape[1:])}, got {tuple(got.shape)}")
    expected = paper.circulant_backprop(g)
    if torch.allclose(got, expected, atol=1e-5):
        return passed(label, "each CiF's gradient is turned back by the inverse rotation, then all are summed "
                             "(the transpose of a permutation is its inverse)")
    if torch.allclose(got, g.sum(0), atol=1e-5):
        fail(label, "you summed the gradients without turning them back: CiF k is w turned by k quarter turns, "
                    "so its gradient must be turned by -k quarter turns before it is added.")
    if torch.allclose(got, paper.circulant_backprop(g[[0, 3, 2, 1]]), atol=1e-5):
        fail(label, "you turned each gradient the same way as its filter: turn it back, the other way.")
    if torch.allclose(got, g.mean(0), atol=1e-5) or torch.allclose(got, expected / 4, atol=1e-5):
        fail(label, "the chain rule sums the four contributions; it does not average them.")
    fail(label, "for each k, turn grad_cifs[k] back by k quarter turns (torch.rot90 with -k), then add the four.")
