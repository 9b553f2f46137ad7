"""Self-checks of the ADMM low-bit chapter (notebooks/2018/admm_low_bit.ipynb).

Each check calls the student's function on fixed tensors, compares with :mod:`qteach.papers.admm_low_bit`, and
either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_tensor_like, expect_type, fail, passed, self_check
from qteach.papers import admm_low_bit as admm

_SLUG = "admm_low_bit"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the projection onto the powers-of-two set ---------------------------------------------------

def _vectors():
    g = torch.Generator().manual_seed(11)
    return [torch.randn(500, generator=g), 0.05 * torch.randn(64, 16, generator=g),
            torch.tensor([0.1, -0.5, 1.0, -2.0, 3.7, -0.05])]


@self_check
def check_1(project_pow2) -> str:
    """Check ``project_pow2(v)`` -> ``(g, alpha)``: a point alpha * Q with Q in {0, +-1, +-2, +-4} close to v.

    Any fixed point of the alternating projection is accepted: its squared error must be within 2 % of the
    library's (other starting scales reach slightly different local minima)."""
    label = _label(1)
    expect(callable(project_pow2), label, "pass your function itself, e.g. check_1(project_pow2)")
    allowed = torch.tensor([0.0, 1.0, -1.0, 2.0, -2.0, 4.0, -4.0])
    for v in _vectors():
        result = project_pow2(v.clone())
        expect(isinstance(result, tuple) and len(result) == 2, label, "return a pair (g, alpha)")
        g, alpha = result
        expect_tensor_like(g, v, label, "g")
        alpha = torch.as_tensor(alpha, dtype=v.dtype)
        expect(alpha.numel() == 1 and alpha.item() > 0, label, "alpha should be one positive number for the tensor")
        q = g.detach() / alpha
        if not torch.isclose(q.unsqueeze(-1), allowed, atol=1e-4).any(-1).all():
            fail(label, "g / alpha should only take the values 0, +-1, +-2, +-4: round V / alpha to the nearest "
                        "of these levels (keep the sign), then multiply by alpha.")
        if torch.isclose(q.abs().unsqueeze(-1), torch.tensor([0.0, 1.0]), atol=1e-4).any(-1).all() and \
                (v.abs() > 3 * v.abs().mean()).any():
            fail(label, "only 0 and +-1 appear: those are the ternary levels; the set here also has +-2 and +-4.")
        ref_g, _ = admm.project(v, admm.POWERS_OF_TWO)
        error, ref_error = ((v - g) ** 2).sum().item(), ((v - ref_g) ** 2).sum().item()
        if error > 1.02 * ref_error + 1e-9:
            best_alpha = admm.fit_scale(v, q)
            if abs(best_alpha.item() - alpha.item()) > 1e-3 * alpha.item():
                fail(label, "alpha is not the least-squares scale of your Q: after rounding, set alpha = V.Q / Q.Q, "
                            "and alternate the two steps until Q stops changing.")
            fail(label, f"the error ||V - G||^2 = {error:.4g} is larger than the alternating projection reaches "
                        f"({ref_error:.4g}): round V / alpha to the NEAREST level and repeat both steps until Q "
                        "no longer changes.")
    return passed(label, "your projection lies on alpha{0, +-1, +-2, +-4} and is as close to V as the alternating "
                         "algorithm gets, on 3 tensors")


# --- exercise 2: the proximal step ---------------------------------------------------------------------------

def _prox_case():
    g = torch.Generator().manual_seed(12)
    w = torch.randn(6, 3, generator=g)
    lam = 0.3 * torch.randn(6, 3, generator=g)
    gq, _ = admm.project(w + lam)
    grad_f = torch.randn(6, 3, generator=g)
    return w, gq, lam, grad_f


@self_check
def check_2(proximal_step) -> str:
    """Check ``proximal_step(w, g, lam, grad_f, rho, lr)``: one gradient step on f(W) + rho/2 ||W - G + lam||^2."""
    label = _label(2)
    expect(callable(proximal_step), label, "pass your function itself, e.g. check_2(proximal_step)")
    w, g, lam, grad_f = _prox_case()
    for rho, lr in ((2.0, 0.1), (0.5, 0.03)):
        result = proximal_step(w.clone(), g.clone(), lam.clone(), grad_f.clone(), rho, lr)
        expect_type(result, torch.Tensor, label, "the new W")
        expect_tensor_like(result, w, label, "the new W")
        expected = w - lr * (grad_f + rho * (w - g + lam))
        if torch.allclose(result, expected, atol=1e-5):
            continue
        if torch.allclose(result, w - lr * (grad_f + rho * (w - g - lam)), atol=1e-5):
            fail(label, "the dual variable enters with a plus sign: the penalty is rho/2 ||W - G + lambda||^2.")
        if torch.allclose(result, w - lr * (grad_f + (w - g + lam)), atol=1e-5):
            fail(label, "the penalty's gradient is rho (W - G + lambda): multiply by rho.")
        if torch.allclose(result, w - lr * rho * (w - g + lam), atol=1e-5):
            fail(label, "the loss's own gradient grad_f is missing: the step minimises f(W) plus the penalty.")
        if torch.allclose(result, w + lr * (grad_f + rho * (w - g + lam)), atol=1e-5):
            fail(label, "that step goes uphill: subtract lr times the gradient.")
        fail(label, "the new W should be W - lr * (grad_f + rho * (W - G + lambda)).")
    return passed(label, "W - lr (grad f + rho (W - G + lambda)) for two values of rho and lr")
