"""Self-checks of the main/subsidiary pruning chapter (notebooks/2018/main_subsidiary_pruning.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.main_subsidiary_pruning` or a closed
form, and either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import itertools

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import main_subsidiary_pruning as ms

_SLUG = "main_subsidiary_pruning"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the binary mask with its straight-through gradient -------------------------------------------


@self_check
def check_1(mask_from_scores) -> str:
    """Check ``mask_from_scores(s)``: forward 1 where s >= 0 else 0, gradient 1/2 where |s| <= 1 else 0."""
    label = _label(1)
    expect(callable(mask_from_scores), label, "pass your function itself, e.g. check_1(mask_from_scores)")
    s = torch.tensor([-3.0, -1.0, -0.5, -1e-4, 0.0, 0.25, 0.999, 1.5, 4.0], requires_grad=True)
    m = mask_from_scores(s)
    expect_type(m, torch.Tensor, label, "the mask")
    expect(m.shape == s.shape, label, "return one mask value per score, the shape of s")
    want = (s.detach() >= 0).float()
    if not torch.equal(m.detach().float(), want):
        if torch.equal(m.detach().float(), (s.detach() > 0).float()) or m.detach()[4] == 0.5:
            fail(label, "a score of exactly 0 must keep its filter (mask 1): torch.sign(0) is 0; use "
                        "qteach.binary.sign or ste_sign (0 -> +1).")
        fail(label, "the forward mask is H(s) = (sign(s) + 1) / 2: 1 for s >= 0, 0 for s < 0.")
    expect(m.requires_grad, label, "no gradient reaches the scores: a comparison (s >= 0) has none; use the "
                                   "straight-through estimator (e.g. qteach.binary.ste_sign).")
    m.sum().backward()
    grad = s.grad
    inside = (s.detach().abs() <= 1).float()
    if torch.allclose(grad, 0.5 * inside):
        return passed(label, "forward H(s), backward 1/2 on |s| <= 1: the gradient of (Htanh(s) + 1) / 2")
    if torch.allclose(grad, inside):
        fail(label, "the gradient is 1 inside |s| <= 1: H(s) = (sign(s) + 1) / 2 carries the factor 1/2 into "
                    "the derivative.")
    if torch.allclose(grad, torch.full_like(grad, 0.5)) or torch.allclose(grad, torch.ones_like(grad)):
        fail(label, "the gradient never vanishes: cancel it where |s| > 1 (ste_sign's clip=1), as BNN does.")
    fail(label, "backward should be 1/2 where |s| <= 1 and 0 elsewhere, the derivative of (clip(s, -1, 1) + 1) / 2.")


# --- exercise 2: binary operations after pruning -------------------------------------------------------------


def _macs(widths, fraction) -> int:
    kept = [ms.keep_count(w, fraction) for w in widths]
    return sum(a * b for a, b in itertools.pairwise(kept))


_CASES = (((96, 96, 96), 0.0), ((96, 96, 96), 0.5), ((96, 96, 96), 0.75), ((128, 64), 0.25), ((10, 7, 5, 3), 0.5),
          ((96, 96, 96), 0.875))


@self_check
def check_2(binary_macs_after_pruning) -> str:
    """Check ``binary_macs_after_pruning(widths, pruned_fraction)``: the binary MACs between the hidden layers."""
    label = _label(2)
    expect(callable(binary_macs_after_pruning), label,
           "pass your function itself, e.g. check_2(binary_macs_after_pruning)")
    values = {c: as_number(binary_macs_after_pruning(*c), label, f"binary_macs_after_pruning{c}") for c in _CASES}
    if all(values[c] == _macs(*c) for c in _CASES):
        return passed(label, "pruning a fraction p of every layer's filters leaves about (1 - p)^2 of the binary "
                             "operations: both the fan-in and the outputs shrink")
    if all(abs(values[c] - _macs(c[0], 0.0) * (1 - c[1])) < 1 for c in _CASES):
        fail(label, "a pruned filter of layer i removes an output of layer i AND an input of layer i + 1: the "
                    "count shrinks by (1 - p) twice, not once.")
    if all(abs(values[c] - _macs(c[0], 0.0) * (1 - c[1]) ** 2) < 1e-6 * max(1, _macs(c[0], 0.0)) for c in _CASES):
        fail(label, "close, but the kept count is a whole number of filters: use keep_count (rounded, at least 1) "
                    "before multiplying.")
    if all(values[c] == sum(a * a for a in [ms.keep_count(w, c[1]) for w in c[0]]) for c in _CASES):
        fail(label, "count the binary layers between consecutive hidden layers, kept_i x kept_(i+1), not "
                    "kept_i^2 for every layer.")
    fail(label, "sum over consecutive hidden layers of kept_i * kept_(i+1), with kept = keep_count(width, p).")
