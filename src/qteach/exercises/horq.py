"""Self-checks of the chapter "Performance Guaranteed Network Acceleration via High-Order Residual Quantization".

Each check calls the student's function on several inputs, compares with a reference from
:mod:`qteach.papers.horq`, and either prints the success line or raises ``AssertionError`` with a hint naming the
likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import horq

_SLUG = "horq"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"



# --- exercise 1: the residual expansion -------------------------------------------------------------------------

def _cases_1():
    return [
        ("x = [1, -3, 0.5, 2.5], order 3", torch.tensor([1.0, -3.0, 0.5, 2.5]), 3),
        ("Gaussian x (50 values), order 4", weight_samples(50, "gaussian", seed=41), 4),
        ("x = [1, -1, 1, -1] (the residual becomes exactly 0), order 2", torch.tensor([1.0, -1.0, 1.0, -1.0]), 2),
        ("x with zeros, order 2", torch.tensor([0.0, 2.0, 0.0, -1.0, 0.5]), 2),
        ("non-negative pixels, order 3", torch.tensor([0.0, 0.0, 0.25, 1.0, 0.75, 0.0]), 3),
    ]


@self_check
def check_1(horq_expand) -> str:
    """Check ``horq_expand(x, order) -> [(beta_1, H_1), ..., (beta_K, H_K)]`` for a 1-D tensor ``x``."""
    label = _label(1)
    expect(callable(horq_expand), label, "pass your function itself, e.g. check_1(horq_expand)")
    for what, x, order in _cases_1():
        result = horq_expand(x.clone(), order)
        expect(isinstance(result, (list, tuple)) and len(result) == order, label,
               f"on {what}: return a list of {order} pairs (beta_i, H_i), got "
               f"{len(result) if isinstance(result, (list, tuple)) else type(result).__name__}")
        betas, signs = horq.residual_binarize(x, order, dims=0)
        residual = x
        for i, (pair, beta_ref, h_ref) in enumerate(zip(result, betas, signs), start=1):
            expect(isinstance(pair, (list, tuple)) and len(pair) == 2, label,
                   f"on {what}: term {i} should be a pair (beta, H)")
            beta = as_number(pair[0], label, f"beta_{i}")
            h = pair[1]
            expect_type(h, torch.Tensor, label, f"H_{i}")
            h = h.detach().to(x.dtype)
            if h.shape != x.shape or not torch.equal(h, h_ref):
                hint = f"H_{i} = sign(R_{i - 1}), the sign of the current residual (R_0 = x)."
                if h.shape == x.shape and torch.equal(h, torch.sign(residual)):
                    hint = ("sign(0) must be +1 so that every H_i is a pure +-1 (binary) tensor: use "
                            "qteach.binary.sign, not torch.sign, which returns 0.")
                elif h.shape == x.shape and torch.equal(h, torch.where(x >= 0, 1.0, -1.0)) and i > 1:
                    hint = "every H_i after the first is the sign of the *residual*, not of x."
                fail(label, f"on {what}: H_{i} = {h.tolist()}, expected {h_ref.tolist()}. {hint}")
            if abs(beta - beta_ref.item()) > 1e-5 * max(1.0, abs(beta_ref.item())):
                hint = f"beta_{i} = mean(|R_{i - 1}|), the mean magnitude of the current residual."
                if abs(beta - x.abs().mean().item()) < 1e-6:
                    hint = "beta_i is the mean magnitude of the *residual* R_(i-1), not of x."
                elif abs(beta - residual.abs().max().item()) < 1e-6:
                    hint = "beta_i is the *mean* of |R_(i-1)| (the optimal scale of a sign), not the maximum."
                elif abs(beta - residual.abs().sum().item()) < 1e-6:
                    hint = "divide the sum of |R_(i-1)| by n: beta_i is a mean."
                fail(label, f"on {what}: beta_{i} = {beta:.6g}, expected {beta_ref.item():.6g}. {hint}")
            residual = residual - beta_ref * h_ref
    return passed(label, f"betas and sign tensors match on {len(_cases_1())} inputs, zero residuals included")


# --- exercise 2: the order needed for a target error --------------------------------------------------------------

@self_check
def check_2(order_needed) -> str:
    """Check ``order_needed(x, tolerance)``: the smallest K with ||x - approx_K||^2 <= tolerance * ||x||^2."""
    label = _label(2)
    expect(callable(order_needed), label, "pass your function itself, e.g. check_2(order_needed)")
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
