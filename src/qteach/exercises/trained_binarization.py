"""Self-checks of the trained-binarization chapter (notebooks/2019/trained_binarization.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "trained_binarization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the gradient of the loss with respect to the weight scales ------------------------------------

def _case(seed: int, out: int, inp: int):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g, dtype=torch.float64) * 0.3
    grad = torch.randn(out, inp, generator=g, dtype=torch.float64)
    alpha = torch.rand(out, 1, generator=g, dtype=torch.float64) * 0.2 + 0.01
    return w, grad, alpha


_CASES = tuple(_case(seed, o, i) for seed, o, i in ((0, 3, 5), (1, 8, 16), (2, 1, 7)))
_LAMS = (0.0, 0.01, 0.5)


def _as_column(value, rows: int, label: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(label, "return a tensor with one value per output (per row of w)")
    expect(value.numel() == rows, label, f"return one value per output: {rows} numbers, got {value.numel()}")
    return value.detach().to(torch.float64).reshape(rows, 1)


@self_check
def check_1(scale_grad) -> str:
    """Check ``scale_grad(w, grad_w_tilde, alpha, lam)``: dL/dalpha for W~ = alpha sign(W) plus lam * sum alpha^2."""
    label = _label(1)
    expect(callable(scale_grad), label, "pass your function itself, e.g. check_1(scale_grad)")
    for w, grad, alpha in _CASES:
        for lam in _LAMS:
            got = _as_column(scale_grad(w.clone(), grad.clone(), alpha.clone(), lam), w.shape[0], label)
            task = (grad * torch.where(w >= 0, 1.0, -1.0).to(w.dtype)).sum(dim=1, keepdim=True)
            want = task + 2 * lam * alpha
            if torch.allclose(got, want, rtol=1e-6, atol=1e-9):
                continue
            if lam and torch.allclose(got, task, rtol=1e-6, atol=1e-9):
                fail(label, "the L2 penalty lam * alpha^2 adds 2 * lam * alpha to the gradient: you left it out.")
            if lam and torch.allclose(got, task + lam * alpha, rtol=1e-6, atol=1e-9):
                fail(label, "the derivative of lam * alpha^2 is 2 * lam * alpha, not lam * alpha.")
            if torch.allclose(got, (grad * w).sum(dim=1, keepdim=True) + 2 * lam * alpha, rtol=1e-6, atol=1e-9):
                fail(label, "W~ = alpha * sign(W): multiply the incoming gradient by sign(W), not by W.")
            if torch.allclose(got.flatten()[:1], (task + 2 * lam * alpha).sum().reshape(1)[:1], rtol=1e-6) and \
                    w.shape[0] > 1:
                fail(label, "one alpha per output: sum over the inputs of each row (dim=1), not over everything.")
            fail(label, "dL/dalpha_o = sum_i dL/dW~_oi * sign(W_oi) + 2 * lam * alpha_o, one value per row of w.")
    return passed(label, "dL/dalpha = sum of grad * sign(W) per output, plus the penalty's 2 lam alpha")


# --- exercise 2: how tight is each approximation of the sign --------------------------------------------------

_ORDERS = (1, 2, 3, 5)


@self_check
def check_2(gap) -> str:
    """Check ``gap(order)``: the area between sign(x) and F_k(x) on [-1, 1], which is 2 / (k + 1)."""
    label = _label(2)
    expect(callable(gap), label, "pass your function itself, e.g. check_2(gap)")
    values = {k: as_number(gap(k), label, f"gap({k})") for k in _ORDERS}
    if all(math.isclose(values[k], 2 / (k + 1), rel_tol=1e-2) for k in _ORDERS):
        return passed(label, "the area between sign and F_k is 2 / (k + 1): 1 for Htanh, 2/3 for the quadratic "
                             "ApproxSign")
    if all(math.isclose(values[k], 1 / (k + 1), rel_tol=1e-2) for k in _ORDERS):
        fail(label, "that is one side only: integrate over [-1, 1], the negative inputs add the same area.")
    if all(math.isclose(values[k], 2.0, rel_tol=1e-2) for k in _ORDERS):
        fail(label, "2 is the area under the derivative F_k' (the jump of the sign); the question asks for the "
                    "area between sign(x) and F_k(x).")
    if all(values[k] < 0 for k in _ORDERS):
        fail(label, "an area is positive: integrate |sign(x) - F_k(x)|.")
    fail(label, "on [0, 1], sign(x) - F_k(x) = (1 - x)^k; integrate it and double it for the negative side.")
