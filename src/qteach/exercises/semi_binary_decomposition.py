"""Self-checks of the semi-binary decomposition chapter (notebooks/2018/semi_binary_decomposition.ipynb).

Each check calls the student's function on fixed inputs, compares with :mod:`qteach.papers.semi_binary_decomposition`
or a closed form, and prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import semi_binary_decomposition as sbd

_SLUG = "semi_binary_decomposition"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the d-step -----------------------------------------------------------------------------------


def _cases():
    g = torch.Generator().manual_seed(11)
    out = []
    for m, n, k in ((5, 4, 3), (8, 6, 2), (4, 7, 4)):
        w = torch.randn(m, n, generator=g, dtype=torch.float64)
        u = torch.where(torch.rand(m, k, generator=g) < 0.5, -1.0, 1.0).double()
        v = torch.where(torch.rand(n, k, generator=g) < 0.5, -1.0, 1.0).double()
        out.append((w, u, v))
    return out


@self_check
def check_1(optimal_d) -> str:
    """Check ``optimal_d(w, u, v)`` -> ``d``: the least-squares diagonal for fixed binary ``u``, ``v``."""
    label = _label(1)
    expect(callable(optimal_d), label, "pass your function itself, e.g. check_1(optimal_d)")
    for w, u, v in _cases():
        d = optimal_d(w.clone(), u.clone(), v.clone())
        expect_type(d, torch.Tensor, label, "d")
        expect(d.numel() == u.shape[1], label, f"d should hold one value per column of u ({u.shape[1]}), got "
                                               f"{d.numel()} values")
        d = d.reshape(-1).double()
        best_d, best_u = sbd.fit_d(w, u, v)
        best = sbd.decomposition_error(w, best_u, best_d, v).item()
        got = sbd.decomposition_error(w, u, d, v).item()
        if got <= best + 1e-6 * (1 + best):
            continue
        naive = ((u.T @ w) * v.T).sum(1) / (w.shape[0] * w.shape[1])
        if torch.allclose(d, naive, atol=1e-6):
            fail(label, "u_j^T W v_j / (mn) is the answer only when the rank-one terms u_j v_j^T are orthogonal; "
                        "here they are not: solve the normal equations G d = b with "
                        "G_ij = (u_i^T u_j)(v_i^T v_j).")
        if torch.allclose(d.abs(), best_d, atol=1e-6):
            fail(label, "the magnitudes are right but some signs are wrong: with u and v fixed, d is the plain "
                        "least-squares solution and may be negative.")
        fail(label, f"the error |W - U diag(d) V^T|^2 is {got:.4f}, the least-squares d reaches {best:.4f}: "
                    "write U diag(d) V^T = sum_j d_j u_j v_j^T and solve the least-squares problem in d.")
    return passed(label, "your d minimises |W - U diag(d) V^T|^2 for fixed binary U and V")


# --- exercise 2: the rank at equal storage --------------------------------------------------------------------

_SHAPES = ((128, 64, 32), (10, 128, 32), (256, 256, 32), (64, 27, 16), (3, 5, 8))


@self_check
def check_2(equal_storage_rank) -> str:
    """Check ``equal_storage_rank(m, n, scale_bits)`` -> the largest k whose semi-binary storage does not exceed
    BWN's."""
    label = _label(2)
    expect(callable(equal_storage_rank), label, "pass your function itself, e.g. check_2(equal_storage_rank)")
    for m, n, s in _SHAPES:
        k = as_number(equal_storage_rank(m, n, s), label, "the rank")
        right = (m * n + m * s) // (m + n + s)
        if k == right:
            continue
        if k == (m * n) // (m + n):
            fail(label, "you left out the scales: BWN stores m scales and the decomposition k, each scale_bits "
                        "bits.")
        if k == right + 1 or abs(k - (m * n + m * s) / (m + n + s)) < 1e-9:
            fail(label, "round down: the largest integer k with (m + n) k + k scale_bits <= mn + m scale_bits.")
        fail(label, f"for m={m}, n={n}, scale_bits={s} the answer is not {k:g}: compare storage_bits(m, n, k) = "
                    "(m + n + scale_bits) k with BWN's mn + m scale_bits.")
    return passed(label, "k = floor((mn + m s) / (m + n + s)) gives the decomposition BWN's storage")
