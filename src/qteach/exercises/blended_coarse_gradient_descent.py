"""Self-checks of the BCGD chapter (notebooks/2018/blended_coarse_gradient_descent.ipynb).

Each check calls the student's function on fixed values, compares with
:mod:`qteach.papers.blended_coarse_gradient_descent`, and either prints the success line or raises
``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_tensor_like, fail, passed, self_check
from qteach.papers import blended_coarse_gradient_descent as bcgd

_SLUG = "blended_coarse_gradient_descent"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: one BCGD step from the float weights ---------------------------------------------------------

def _case():
    g = torch.Generator().manual_seed(21)
    w_f = 0.5 * torch.randn(40, generator=g)
    w_f[3] = 0.0  # sign(0) = +1
    grad = torch.randn(40, generator=g)
    return w_f, grad


@self_check
def check_1(bcgd_step) -> str:
    """Check ``bcgd_step(w_f, grad, lr, rho)``: quantize w_f to alpha sign(w_f), then blend and step."""
    label = _label(1)
    expect(callable(bcgd_step), label, "pass your function itself, e.g. check_1(bcgd_step)")
    w_f, grad = _case()
    for lr, rho in ((0.1, 0.2), (0.05, 0.0), (0.2, 0.5)):
        result = bcgd_step(w_f.clone(), grad.clone(), lr, rho)
        expect_tensor_like(result, w_f, label, "the new w_f")
        w_q = bcgd.quantize_binary(w_f)
        expected = bcgd.blended_step(w_f, w_q, grad, lr, rho)
        if torch.allclose(result, expected, atol=1e-6):
            continue
        sign_only = torch.where(w_f >= 0, 1.0, -1.0)
        if torch.allclose(result, (1 - rho) * w_f + rho * sign_only - lr * grad, atol=1e-6):
            fail(label, "the quantized weights are alpha * sign(w_f), with alpha = mean |w_f|: the scale is missing.")
        if torch.allclose(result, (1 - rho) * w_f + rho * w_q.abs()[0] * torch.sign(w_f) - lr * grad, atol=1e-6):
            fail(label, "torch.sign(0) is 0: a weight at exactly 0 must quantize to +alpha.")
        if torch.allclose(result, rho * w_f + (1 - rho) * w_q - lr * grad, atol=1e-6):
            fail(label, "the weights are swapped: (1 - rho) multiplies the float weights, rho the quantized ones.")
        if torch.allclose(result, (1 - rho) * w_f + rho * w_q + lr * grad, atol=1e-6):
            fail(label, "that step goes uphill: subtract lr times the gradient.")
        fail(label, "the new w_f should be (1 - rho) w_f + rho Q(w_f) - lr grad, with Q(w_f) = mean|w_f| sign(w_f).")
    return passed(label, "(1 - rho) w_f + rho alpha sign(w_f) - lr grad, for three (lr, rho), rho = 0 included")


# --- exercise 2: where the float weights come to rest -------------------------------------------------------

@self_check
def check_2(rest_distance) -> str:
    """Check ``rest_distance(grad_norm, lr, rho)``: ||w_f - w|| at a fixed point of BCGD (inf for rho = 0)."""
    label = _label(2)
    expect(callable(rest_distance), label, "pass your function itself, e.g. check_2(rest_distance)")
    for grad_norm, lr, rho in ((2.0, 0.1, 0.05), (0.3, 0.2, 0.01), (1.0, 0.05, 0.5)):
        value = as_number(rest_distance(grad_norm, lr, rho), label, "the distance")
        expected = bcgd.fixed_point_distance(grad_norm, lr, rho)
        if math.isclose(value, expected, rel_tol=1e-6):
            continue
        if math.isclose(value, rho / lr * grad_norm, rel_tol=1e-6):
            fail(label, "lr and rho are swapped: at rest rho (w_f - w) = -lr grad, so divide lr by rho.")
        if math.isclose(value, lr / rho, rel_tol=1e-6):
            fail(label, "multiply by the gradient's norm: rho ||w_f - w|| = lr ||grad||.")
        if math.isclose(value, lr * grad_norm, rel_tol=1e-6):
            fail(label, "divide by rho: the pull towards w is rho (w_f - w), which must balance lr grad.")
        fail(label, "set w_f^{t+1} = w_f^t with w fixed in the update and solve for ||w_f - w||.")
    value = as_number(rest_distance(1.0, 0.1, 0.0), label, "the distance for rho = 0")
    if not math.isinf(value):
        fail(label, "with rho = 0 (BinaryConnect) nothing pulls w_f back: a non-zero gradient keeps moving it, so "
                    "there is no finite resting distance; return math.inf.")
    return passed(label, "||w_f - w|| = (lr / rho) ||grad|| at rest, and no finite distance for rho = 0")
