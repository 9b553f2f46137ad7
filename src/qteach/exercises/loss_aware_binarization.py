"""Self-checks of the loss-aware binarization chapter (notebooks/2018/loss_aware_binarization.ipynb).

Each check calls the student's function on fixed inputs, compares with :mod:`qteach.papers.loss_aware_binarization`
and either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.binary import sign
from qteach.checks import expect, fail, passed, self_check
from qteach.papers import loss_aware_binarization as lab

_SLUG = "loss_aware_binarization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _as_tensor(value, label: str, what: str) -> torch.Tensor:
    if isinstance(value, (int, float)):
        value = torch.tensor(float(value), dtype=torch.float64)
    expect(isinstance(value, torch.Tensor), label, f"{what} should be a tensor or a number, got "
                                                   f"{type(value).__name__}")
    return value.detach().to(torch.float64)


# --- exercise 1: the official code's alpha from the raw accumulator --------------------------------------------


def _cases_1():
    g = torch.Generator().manual_seed(11)
    w = torch.randn(6, 5, generator=g, dtype=torch.float64) * 0.2
    acc = torch.rand(6, 5, generator=g, dtype=torch.float64) ** 3 * 1e-3
    acc[0] *= 400  # one row of weights with much larger gradients
    return [(w, acc), (w, torch.zeros_like(w)), (torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64),
                                                  torch.tensor([1.0, 9.0, 0.25, 0.25], dtype=torch.float64))]


@self_check
def check_1(official_alpha) -> str:
    """Check ``official_alpha(w, acc)`` -> alpha = sum(|L * w|) / sum(L), L = sqrt(acc) + 1e-8."""
    label = _label(1)
    expect(callable(official_alpha), label, "pass your function itself, e.g. check_1(official_alpha)")
    for w, acc in _cases_1():
        got = _as_tensor(official_alpha(w.clone(), acc.clone()), label, "alpha")
        expect(got.numel() == 1, label, "return one alpha for the whole layer (a number or a 0-d tensor)")
        got = got.reshape(())
        d = acc.sqrt() + 1e-8
        want, _ = lab.lab_binarize(w, d)
        if torch.isclose(got, want, rtol=1e-4):
            continue
        if not torch.isfinite(got):
            fail(label, "alpha is not finite: at the first step the accumulator is all zeros, so L = sqrt(acc) "
                        "needs the + 1e-8 of the official code to avoid 0 / 0.")
        if torch.isclose(got, w.abs().mean(), rtol=1e-4):
            fail(label, "that is BWN's mean |w|: weight each |w_i| by L_i = sqrt(acc_i) + 1e-8 and divide by the "
                        "sum of the L_i.")
        no_sqrt, _ = lab.lab_binarize(w, acc + 1e-8)
        if torch.isclose(got, no_sqrt, rtol=1e-4):
            fail(label, "the weights are sqrt(acc) + 1e-8, not acc: Adam divides by the square root of its second "
                        "moment, and that square root is LAB's curvature d.")
        if torch.isclose(got, (d * w.abs()).sum(), rtol=1e-4) or torch.isclose(got, (d * w.abs()).mean(), rtol=1e-4):
            fail(label, "divide the weighted sum by the sum of the weights L (= ||d||_1), not by 1 or by n.")
        fail(label, f"expected alpha = {want.item():.6g} for one of the test layers, got {got.item():.6g}; "
                    "alpha = sum(|L * w|) / sum(L) with L = sqrt(acc) + 1e-8.")
    return passed(label, "alpha = ||d * w||_1 / ||d||_1 with d = sqrt(acc) + 1e-8, and BWN's mean |w| when acc = 0")


# --- exercise 2: one proximal Newton step -------------------------------------------------------------------------


def _cases_2():
    g = torch.Generator().manual_seed(12)
    b0 = sign(torch.randn(4, 6, generator=g, dtype=torch.float64))
    w_hat = 0.05 * b0
    grad = torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.02
    d = torch.rand(4, 6, generator=g, dtype=torch.float64) * 3 + 0.2
    hand = (torch.tensor([0.5, 0.5, -0.5], dtype=torch.float64), torch.tensor([2.0, -1.0, -0.5], dtype=torch.float64),
            torch.tensor([1.0, 4.0, 1.0], dtype=torch.float64))  # w = (-1.5, 0.75, 0): sign(0) = +1
    return [(w_hat, grad, d), hand]


def _reference_2(w_hat, grad, d):
    w = w_hat - grad / d
    return lab.lab_binarize(w, d)


@self_check
def check_2(prox_newton_step) -> str:
    """Check ``prox_newton_step(w_hat, grad, d)`` -> ``(alpha, b)`` of the next binary weights."""
    label = _label(2)
    expect(callable(prox_newton_step), label, "pass your function itself, e.g. check_2(prox_newton_step)")
    for w_hat, grad, d in _cases_2():
        result = prox_newton_step(w_hat.clone(), grad.clone(), d.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label, "return a pair (alpha, b)")
        alpha = _as_tensor(result[0], label, "alpha")
        b = _as_tensor(result[1], label, "b")
        expect(alpha.numel() == 1, label, "alpha is one number for the whole layer")
        expect(b.shape == w_hat.shape, label, f"b should have the shape of w_hat {tuple(w_hat.shape)}, got "
                                              f"{tuple(b.shape)}")
        want_alpha, want_b = _reference_2(w_hat, grad, d)
        alpha = alpha.reshape(())
        if torch.equal(b, want_b) and torch.isclose(alpha, want_alpha, rtol=1e-6):
            continue
        times, _ = lab.lab_binarize(w_hat - grad * d, d)
        if torch.isclose(alpha, times, rtol=1e-6) and not torch.isclose(times, want_alpha, rtol=1e-6):
            fail(label, "the Newton step divides the gradient by the curvature: w = w_hat - grad / d, not grad * d.")
        plain, _ = lab.lab_binarize(w_hat - grad, d)
        if torch.isclose(alpha, plain, rtol=1e-6) and not torch.isclose(plain, want_alpha, rtol=1e-6):
            fail(label, "scale the gradient by 1 / d before stepping: w = w_hat - grad / d (a Newton step with the "
                        "diagonal Hessian d), not w_hat - grad.")
        bwn = (w_hat - grad / d).abs().mean()
        if torch.isclose(alpha, bwn, rtol=1e-6) and not torch.isclose(bwn, want_alpha, rtol=1e-6):
            fail(label, "the step is right but alpha is BWN's mean |w|: weight it by d, alpha = ||d * w||_1 / "
                        "||d||_1.")
        if not torch.equal(b, want_b):
            fail(label, "b = sign(w) of the stepped weights w = w_hat - grad / d, with sign(0) = +1 "
                        "(qteach.binary.sign, not torch.sign).")
        fail(label, f"expected alpha = {want_alpha.item():.6g}, got {alpha.item():.6g}: first w = w_hat - grad / d, "
                    "then alpha = ||d * w||_1 / ||d||_1 and b = sign(w).")
    return passed(label, "w = w_hat - grad / d, then alpha = ||d * w||_1 / ||d||_1 and b = sign(w)")
