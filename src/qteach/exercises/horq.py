"""Self-checks of the chapter "Performance Guaranteed Network Acceleration via High-Order Residual Quantization".

Each check calls the student's function on several inputs, compares with a reference from
:mod:`qteach.papers.horq` (exercise 1) or with the least-squares minimum (exercise 2), and either prints the success line or raises ``AssertionError`` with a hint naming the
likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import horq

_SLUG = "horq"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the order needed for a target error --------------------------------------------------------------

@self_check
def check_1(order_needed) -> str:
    """Check ``order_needed(x, tolerance)``: the smallest K with ||x - approx_K||^2 <= tolerance * ||x||^2."""
    label = _label(1)
    expect(callable(order_needed), label, "pass your function itself, e.g. check_1(order_needed)")
    cases = [
        ("Gaussian x (500 values), tolerance 0.1", weight_samples(500, "gaussian", seed=42), 0.1),
        ("Gaussian x (500 values), tolerance 0.01", weight_samples(500, "gaussian", seed=42), 0.01),
        ("Laplace x (300 values), tolerance 0.05", weight_samples(300, "laplace", seed=43), 0.05),
        ("uniform x (400 values), tolerance 0.5", weight_samples(400, "uniform", seed=44), 0.5),
        ("x = [1, -3, 0.5, 2.5], tolerance 1e-9", torch.tensor([1.0, -3.0, 0.5, 2.5]), 1e-9),
    ]
    for what, x, tolerance in cases:
        got = order_needed(x.clone(), tolerance)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"order_needed should return an int, got {type(got).__name__}")
        norms = horq.residual_norms(x[None].double(), 32)
        relative = (norms / norms[0]).tolist()
        reference = next(k for k in range(1, 33) if relative[k] <= tolerance)
        if got != reference:
            if got == reference + 1:
                hint = "off by one: the error after order K is ||R_K||^2 (K terms subtracted), not ||R_(K+1)||^2."
            elif got == reference - 1:
                hint = ("off by one: stop at the first K with ||R_K||^2 <= tolerance * ||x||^2; R_0 = x is the "
                        "error of order 0.")
            else:
                hint = ("compute the residual norms ||R_K||^2 for K = 1, 2, ... (e.g. with horq.residual_norms) "
                        "and return the first K whose ratio to ||x||^2 is <= tolerance.")
            fail(label, f"on {what}: got order {got}, expected {reference} (relative errors by order: "
                        f"{[round(r, 4) for r in relative[1:6]]}...). {hint}")
    return passed(label, f"the smallest orders match on {len(cases)} inputs")


# --- exercise 2: refitting the scales jointly ---------------------------------------------------------------------

def _cases_2():
    digit_like = torch.tensor([0.0, 0.0, 0.25, 1.0, 0.75, 0.0, 0.5, 1.0, 0.0, 0.125, 0.0, 0.875])
    return [
        ("x = [1, -3, 0.5, 2.5], order 3 (the greedy expansion is already exact)", torch.tensor([1.0, -3.0, 0.5, 2.5]),
         3),
        ("Gaussian x (64 values), order 2", weight_samples(64, "gaussian", seed=45), 2),
        ("Gaussian x (64 values), order 4", weight_samples(64, "gaussian", seed=46), 4),
        ("Laplace x (100 values), order 3", weight_samples(100, "laplace", seed=47), 3),
        ("non-negative pixels (12 values), order 2", digit_like, 2),
    ]


def _lstsq_error(x: torch.Tensor, signs) -> float:
    h = torch.stack([s.double() for s in signs], dim=1)
    betas = torch.linalg.lstsq(h, x.double()[:, None]).solution
    return float(((x.double()[:, None] - h @ betas) ** 2).sum())


@self_check
def check_2(refit_betas) -> str:
    """Check ``refit_betas(x, signs) -> K scales``: the least-squares scales for fixed sign tensors; any minimiser
    of ||x - sum_i beta_i H_i||^2 is accepted."""
    label = _label(2)
    expect(callable(refit_betas), label, "pass your function itself, e.g. check_2(refit_betas)")
    for what, x, order in _cases_2():
        greedy, signs = horq.residual_binarize(x, order, dims=0)
        got = refit_betas(x.clone(), [s.clone() for s in signs])
        if isinstance(got, torch.Tensor):
            got = got.detach().flatten().tolist()
        expect(isinstance(got, (list, tuple)) and len(got) == order, label,
               f"on {what}: return {order} scales (a list or a 1-D tensor), one per sign tensor")
        betas = [as_number(b, label, f"beta_{i}") for i, b in enumerate(got, start=1)]
        approx = sum(b * s.double() for b, s in zip(betas, signs))
        error = float(((x.double() - approx) ** 2).sum())
        best = _lstsq_error(x, signs)
        if error <= best + 1e-6 * max(1.0, float((x.double() ** 2).sum())):
            continue
        greedy_betas = [float(g) for g in greedy]
        projections = [float((x.double() * s.double()).mean()) for s in signs]
        hint = ("with H_1..H_K fixed, x ~ H @ beta is a linear least-squares problem in beta, with the H_i as the "
                "columns of H: solve it jointly (normal equations or torch.linalg.lstsq).")
        if all(abs(b - g) < 1e-5 for b, g in zip(betas, greedy_betas)):
            hint = ("those are the greedy scales of the recursion; the exercise asks for the scales that minimise "
                    "the error jointly, for the same sign tensors. " + hint)
        elif all(abs(b - p) < 1e-5 for b, p in zip(betas, projections)):
            hint = ("projecting x on each H_i separately, <x, H_i> / n, ignores that the H_i overlap (they are not "
                    "orthogonal): solve for all the scales together.")
        fail(label, f"on {what}: your scales {[round(b, 4) for b in betas]} leave a squared error of {error:.5g}, "
                    f"the least-squares minimum is {best:.5g}. {hint}")
    x = weight_samples((200, 64), "gaussian", seed=3).double()
    lines = []
    for order in (2, 3):
        greedy, signs = horq.residual_binarize(x, order)
        h = torch.stack(signs, dim=2)                                              # (200, 64, K)
        betas = torch.linalg.solve(h.transpose(1, 2) @ h, h.transpose(1, 2) @ x[:, :, None])   # normal equations
        greedy_error = float(((x - sum(b * s for b, s in zip(greedy, signs))) ** 2).sum() / (x**2).sum())
        refit = float(((x[:, :, None] - h @ betas) ** 2).sum() / (x**2).sum())
        lines.append(f"order {order}: greedy {greedy_error:.3f}, refit {refit:.3f}")
    return passed(label, f"your scales reach the least-squares minimum on {len(_cases_2())} inputs. Relative squared "
                         f"error on 200 Gaussian vectors of 64 values, " + "; ".join(lines))
