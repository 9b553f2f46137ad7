"""Self-checks of the FQN chapter (notebooks/2019/fully_quantized_detection.ipynb).

Each check calls the student's function, compares it with a closed form or :mod:`qteach.nn`, and either prints
the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.nn import fold_batch_norm

_SLUG = "fully_quantized_detection"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: how many levels does a range leave for the ink? ---------------------------------------------

#: (hi, bits): no level falls exactly on 1.0, so no answer depends on rounding
_CASES_1 = ((6.0, 4), (2.0, 4), (1.2, 4), (0.9, 4), (4.0, 2), (6.0, 8), (2.5, 3))


def ink_levels_reference(hi: float, bits: int) -> int:
    """Levels k * hi / (2^b - 1), k = 0 .. 2^b - 1, that lie in [0, 1]."""
    top = 2**bits - 1
    return min(top, math.floor(top / hi)) + 1


@self_check
def check_1(ink_levels) -> str:
    """Check ``ink_levels(hi, bits)``: the number of levels of the unsigned ``bits``-bit grid on [0, hi] that
    lie in [0, 1] (the digit's ink)."""
    label = _label(1)
    expect(callable(ink_levels), label, "pass your function itself, e.g. check_1(ink_levels)")
    for hi, bits in _CASES_1:
        got = as_number(ink_levels(hi, bits), label, f"ink_levels({hi}, {bits})")
        want = ink_levels_reference(hi, bits)
        if got == want:
            continue
        if got == want - 1:
            fail(label, f"ink_levels({hi}, {bits}) = {got:g}, one short: count level 0 too (k = 0 .. 2^b - 1).")
        if got == 2**bits and want < 2**bits:
            fail(label, f"ink_levels({hi}, {bits}) = {got:g}: that is every level; only those k * step <= 1 "
                        f"count, with step = hi / (2^b - 1).")
        if hi < 1 and got < 2**bits:
            fail(label, f"ink_levels({hi}, {bits}) = {got:g}: when hi < 1 the whole grid lies in [0, 1].")
        fail(label, f"ink_levels({hi}, {bits}) = {got:g}, expected {want}: the step is hi / (2^b - 1) "
                    "(2^b levels, 2^b - 1 steps), and level k is k * step.")
    return passed(label, f"your count matches on {len(_CASES_1)} ranges and bit widths: min/max over hot "
                         "pixels of 6 leaves 3 of the 16 levels of 4 bits for the ink")


# --- exercise 2: fold a frozen batch norm ----------------------------------------------------------------------


def _bn_cases():
    g = torch.Generator().manual_seed(5)
    for out_f, in_f in ((3, 5), (4, 2)):
        bn = nn.BatchNorm1d(out_f, eps=1e-3)
        with torch.no_grad():
            bn.weight.copy_(torch.rand(out_f, generator=g) * 2 - 0.5)
            bn.bias.copy_(torch.randn(out_f, generator=g))
            bn.running_mean.copy_(torch.randn(out_f, generator=g))
            bn.running_var.copy_(torch.rand(out_f, generator=g) * 0.01 + 0.0005 * (out_f == 3))
        yield torch.randn(out_f, in_f, generator=g), bn.eval()


@self_check
def check_2(fold) -> str:
    """Check ``fold(weight, gamma, beta, mean, var, eps) -> (w_fold, b_fold)`` against
    :func:`qteach.nn.fold_batch_norm` (no bias before the batch norm)."""
    label = _label(2)
    expect(callable(fold), label, "pass your function itself, e.g. check_2(fold)")
    for w, bn in _bn_cases():
        args = (w.clone(), bn.weight.detach().clone(), bn.bias.detach().clone(), bn.running_mean.clone(),
                bn.running_var.clone(), bn.eps)
        out = fold(*args)
        expect(isinstance(out, (tuple, list)) and len(out) == 2, label, "return the pair (w_fold, b_fold)")
        w_fold, b_fold = out
        expect_type(w_fold, torch.Tensor, label, "w_fold")
        expect_type(b_fold, torch.Tensor, label, "b_fold")
        w_ref, b_ref = fold_batch_norm(w, None, bn)
        expect(tuple(w_fold.shape) == tuple(w.shape), label, f"w_fold should have the shape of weight, "
                                                              f"{tuple(w.shape)}, got {tuple(w_fold.shape)}")
        expect(tuple(b_fold.shape) == (w.shape[0],), label, f"b_fold should have one value per output row, "
                                                             f"shape ({w.shape[0]},)")
        gamma, beta, mean, var, eps = args[1:]
        if not torch.allclose(w_fold.detach(), w_ref, rtol=1e-4, atol=1e-5):
            if torch.allclose(w_fold.detach(), w * (gamma / var.sqrt())[:, None], rtol=1e-4, atol=1e-5):
                fail(label, "w_fold divides by sqrt(var) without eps: use sqrt(var + eps) (small variances "
                            "make the difference visible).")
            if torch.allclose(w_fold.detach(), w * (gamma / (var + eps))[:, None], rtol=1e-4, atol=1e-5):
                fail(label, "w_fold divides by the variance: divide by the standard deviation sqrt(var + eps).")
            fail(label, "w_fold differs: scale each OUTPUT row i of W (dim 0) by gamma_i / sqrt(var_i + eps).")
        if not torch.allclose(b_fold.detach(), b_ref, rtol=1e-4, atol=1e-5):
            if torch.allclose(b_fold.detach(), beta, rtol=1e-4, atol=1e-5):
                fail(label, "b_fold is beta: subtract gamma * mean / sqrt(var + eps), the frozen mean's share.")
            if torch.allclose(b_fold.detach(), beta + gamma * mean / (var + eps).sqrt(), rtol=1e-4, atol=1e-5):
                fail(label, "b_fold has the wrong sign: b_fold = beta - gamma * mean / sqrt(var + eps).")
            fail(label, "b_fold differs: b_fold = beta - gamma * mean / sqrt(var + eps).")
    return passed(label, "your folding equals qteach.nn.fold_batch_norm on two layers (non-square weights, small "
                         "variances)")
