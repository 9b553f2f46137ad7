"""Self-checks of the unified INT8 training chapter (notebooks/2019/unified_int8_training.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.unified_int8_training` or a closed
form, and either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import unified_int8_training as u

_SLUG = "unified_int8_training"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the MSE-optimal clipping value (what DSGC replaces) -------------------------------------------


def _mse(g, c, bits):
    q, s = u.quantize_gradient(g, c, bits)
    return float(((q.double() * s - g.double()) ** 2).sum())


def _cases():
    gen = torch.Generator().manual_seed(7)
    yield torch.randn(800, generator=gen), 4
    yield torch.randn(30, 20, generator=gen) / torch.rand(30, 20, generator=gen).clamp_min(0.01) ** 0.5, 5
    laplace = -torch.log(torch.rand(600, generator=gen).clamp_min(1e-12)) * torch.randn(600, generator=gen).sign()
    yield laplace, 3
    yield torch.randn(500, generator=gen) * 1e-4, 8  # a small gradient: the grid is relative to max|g|
    heavy = torch.Generator().manual_seed(22)  # a gradient on which the two criteria pick different clips
    yield torch.randn(400, generator=heavy) / torch.rand(400, generator=heavy).clamp_min(0.01) ** 0.5, 3


@self_check
def check_1(mse_clip) -> str:
    """Check ``mse_clip(g, bits)`` -> the c = r max|g| (r in ``RATIOS``) minimizing the squared error."""
    label = _label(1)
    expect(callable(mse_clip), label, "pass your function itself, e.g. check_1(mse_clip)")
    for g, bits in _cases():
        peak = float(g.abs().max())
        errors = {r: _mse(g, r * peak, bits) for r in u.RATIOS}
        best = min(errors.values())
        c = as_number(mse_clip(g.clone(), bits), label, "mse_clip(g, bits)")
        matches = [r for r in u.RATIOS if math.isclose(c, r * peak, rel_tol=1e-5)]
        if not matches:
            if any(math.isclose(c, r, rel_tol=1e-5) for r in u.RATIOS):
                fail(label, "return the clipping value c = r * max|g|, not the ratio r.")
            fail(label, "return one of the grid's values c = r * max|g| for r in RATIOS.")
        if errors[matches[0]] > best * (1 + 1e-9) + 1e-30:
            if math.isclose(c, u.dsgc_clip(g, bits)[0], rel_tol=1e-5):
                fail(label, "that is DSGC's clipping value (the smallest cosine distance); the exercise asks for "
                            "the smallest squared error ||g - g_hat||^2.")
            if matches[0] == 1.0:
                fail(label, "max|g| is not the MSE-optimal clip here: try every ratio and keep the smallest "
                            "squared error.")
            fail(label, "another ratio gives a smaller squared error: compare sum((g_hat - g)**2) over the whole "
                        "grid (did you take the largest instead of the smallest?).")
    return passed(label, "your search returns the MSE-optimal clipping value on 5 gradients (Gaussian, "
                         "heavy-tailed, Laplace, tiny, and one where the cosine picks another clip)")


# --- exercise 2: the deviation at which DCLR reaches its floor -------------------------------------------------


@self_check
def check_2(floor_deviation) -> str:
    """Check ``floor_deviation(alpha, beta)`` -> the d_c at which exp(-alpha d_c) = beta."""
    label = _label(2)
    expect(callable(floor_deviation), label, "pass your function itself, e.g. check_2(floor_deviation)")
    for alpha, beta in ((20.0, 0.1), (10.0, 0.5), (50.0, 0.01)):
        value = as_number(floor_deviation(alpha, beta), label, f"floor_deviation({alpha}, {beta})")
        target = math.log(1 / beta) / alpha
        if math.isclose(value, target, rel_tol=1e-4):
            continue
        if math.isclose(value, -target, rel_tol=1e-4):
            fail(label, "the sign is off: ln(beta) is negative, so d = -ln(beta) / alpha = ln(1/beta) / alpha.")
        if math.isclose(value, math.log(1 / beta) * alpha, rel_tol=1e-4):
            fail(label, "divide by alpha, do not multiply: exp(-alpha d) = beta gives d = ln(1/beta) / alpha.")
        if math.isclose(value, 1 / (alpha * beta), rel_tol=1e-4) or math.isclose(value, beta / alpha, rel_tol=1e-4):
            fail(label, "take the logarithm: solve exp(-alpha d) = beta for d.")
        fail(label, f"floor_deviation({alpha}, {beta}) should make exp(-alpha d) equal to beta.")
    return passed(label, "DCLR's factor reaches its floor beta at d_c = ln(1/beta) / alpha (0.115 for the "
                         "paper's alpha = 20, beta = 0.1)")
