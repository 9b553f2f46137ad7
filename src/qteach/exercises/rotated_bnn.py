"""Self-checks of the RBNN chapter (notebooks/2020/rotated_bnn.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "rotated_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the angle between w and sign(w) ----------------------------------------------------------------


def _cases():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 12, generator=g, dtype=torch.float64)
    w[0, :4] = 0.0  # zeros: sign(0) must be +1 (or -1), never 0
    return [w, torch.tensor([[3.0, -4.0, 0.0, 0.0]], dtype=torch.float64), torch.randn(3, 50, generator=g)]


def _angle(w):
    w = w.double()
    return torch.arccos((w.abs().sum(1) / (math.sqrt(w.shape[1]) * w.norm(dim=1))).clamp(-1, 1))


@self_check
def check_1(angle) -> str:
    """Check ``angle(w)``: the angle (radians) between each row of ``w`` and its sign vector."""
    label = _label(1)
    expect(callable(angle), label, "pass your function itself, e.g. check_1(angle)")
    for w in _cases():
        got = angle(w.clone())
        expect_type(got, torch.Tensor, label, "angle(w)")
        got = got.detach().double().reshape(-1)
        expected = _angle(w)
        expect(got.numel() == w.shape[0], label, f"one angle per row of w ({w.shape[0]} here), got {got.numel()} "
                                                 "numbers: reduce over dim 1 only.")
        if torch.allclose(got, torch.rad2deg(expected), atol=1e-4):
            fail(label, "those are degrees: return radians (torch.arccos gives radians; drop the conversion).")
        if torch.allclose(got, torch.cos(expected), atol=1e-5):
            fail(label, "that is cos(theta): take torch.arccos of it.")
        expect(not torch.isnan(got).any(), label, "NaN: the cosine left [-1, 1]; divide w . sign(w) by "
                                                  "||w||_2 * ||sign(w)||_2 = ||w||_2 * sqrt(n).")
        b = torch.sign(w.double())
        wrong = torch.arccos(((w.double() * b).sum(1) / (w.double().norm(dim=1) * b.norm(dim=1))).clamp(-1, 1))
        if not torch.allclose(wrong, expected) and torch.allclose(got, wrong, atol=1e-5):
            fail(label, "torch.sign(0) is 0, so your sign vector is shorter than sqrt(n) where w has zeros: a "
                        "binary weight is +1 or -1 (use qteach.binary.sign, or sqrt(n) for its norm).")
        expect(torch.allclose(got, expected, atol=1e-5), label,
               "cos(theta) = w . sign(w) / (||w||_2 ||sign(w)||_2) = ||w||_1 / (sqrt(n) ||w||_2) per row; "
               "theta = arccos of it, in radians.")
    return passed(label, "cos(theta) = ||w||_1 / (sqrt(n) ||w||_2): the angle no scaling factor can close")


# --- exercise 2: the full rotation (one large R) by orthogonal Procrustes -----------------------------------------


def _procrustes_case(seed: int):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(20, 6, generator=g, dtype=torch.float64)
    b = torch.where(torch.randn(20, 6, generator=g) >= 0, 1.0, -1.0).to(torch.float64)
    return w, b


@self_check
def check_2(best_rotation) -> str:
    """Check ``best_rotation(w, b)``: the orthogonal R maximising tr(B^T W R), i.e. minimising ||W R - B||."""
    label = _label(2)
    expect(callable(best_rotation), label, "pass your function itself, e.g. check_2(best_rotation)")
    for seed in (0, 1, 2):
        w, b = _procrustes_case(seed)
        r = best_rotation(w.clone(), b.clone())
        expect_type(r, torch.Tensor, label, "best_rotation(w, b)")
        r = r.detach().double()
        expect(r.shape == (6, 6), label, f"R rotates the rows of W (n = 6 here): it is (6, 6), got {tuple(r.shape)}")
        if not torch.allclose(r @ r.t(), torch.eye(6, dtype=r.dtype), atol=1e-6):
            fail(label, "R is not orthogonal (R R^T != I): drop the singular values, R = U V^T from the SVD of "
                        "W^T B = U S V^T.")
        s = torch.linalg.svd(w.t() @ b)[1]
        best = s.sum().item()  # max over orthogonal R of tr(B^T W R)
        value = torch.trace(b.t() @ w @ r).item()
        if math.isclose(value, -best, rel_tol=1e-6) or math.isclose(torch.trace(b.t() @ w @ r.t()).item(), best,
                                                                    rel_tol=1e-6):
            fail(label, "R is transposed (or reflected): for W^T B = U S V^T, tr(B^T W R) = tr(S V^T R U) is "
                        "largest at R = U V^T, not V U^T.")
        expect(math.isclose(value, best, rel_tol=1e-6), label,
               f"tr(B^T W R) is {value:.4f}, the best rotation reaches {best:.4f}: take the SVD of W^T B "
               "= U S V^T (W^T B, not B^T W) and return U V^T.")
    return passed(label, "R = U V^T from the SVD of W^T B (orthogonal Procrustes): the step RBNN applies to each "
                         "of its two small rotations")
