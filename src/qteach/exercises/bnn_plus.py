"""Self-checks of the BNN+ chapter (notebooks/2019/bnn_plus.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "bnn_plus"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the scale that minimises each regularizer ------------------------------------------------------

def _weights(seed: int, n: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.3


_CASES = tuple(_weights(seed, n) for seed, n in ((0, 9), (1, 50), (2, 7), (3, 128)))


def _r(w: torch.Tensor, alpha: float, kind: str) -> float:
    gap = alpha - w.abs()
    return float((gap.abs() if kind == "l1" else gap ** 2).mean())


@self_check
def check_1(best_alpha) -> str:
    """Check ``best_alpha(w, kind)``: the alpha >= 0 that minimises R_1 (kind "l1") or R_2 (kind "l2") for fixed w."""
    label = _label(1)
    expect(callable(best_alpha), label, "pass your function itself, e.g. check_1(best_alpha)")
    for kind in ("l2", "l1"):
        for w in _CASES:
            alpha = as_number(best_alpha(w.clone(), kind), label, f"best_alpha(w, {kind!r})")
            best = _r(w, float(w.abs().mean() if kind == "l2" else w.abs().median()), kind)
            if _r(w, alpha, kind) <= best + 1e-6:
                continue
            if kind == "l2" and math.isclose(alpha, float(w.abs().median()), abs_tol=1e-6):
                fail(label, "for R_2 (squares) the minimiser is the mean of |w|, not the median: set the derivative "
                            "2 * sum(alpha - |w_i|) to zero.")
            if kind == "l1" and math.isclose(alpha, float(w.abs().mean()), abs_tol=1e-6):
                fail(label, "for R_1 (absolute values) the minimiser is a median of |w|, not the mean: the "
                            "derivative counts how many |w_i| lie below alpha minus how many lie above.")
            if math.isclose(alpha, float(w.mean()), abs_tol=1e-6) or math.isclose(alpha, float(w.median()),
                                                                                abs_tol=1e-6):
                fail(label, "use the magnitudes |w|: the regularizer compares alpha with |w_i|, not with w_i.")
            fail(label, f"for kind {kind!r} your alpha gives a larger regularizer than the best one: minimise "
                        "the mean of (alpha - |w_i|)^2 (l2) or of |alpha - |w_i|| (l1) over alpha.")
    return passed(label, "R_2 is minimised by mean|w| (XNOR-Net's scale), R_1 by a median of |w|")


# --- exercise 2: where the SignSwish gradient turns negative ------------------------------------------------------

_T = 2.399357280515467  # the root of t tanh(t / 2) = 2
_BETAS = (0.5, 1.0, 2.0, 5.0, 10.0)


@self_check
def check_2(turning_point) -> str:
    """Check ``turning_point(beta)``: the x > 0 where dSS_beta/dx crosses zero (= 2.3994 / beta)."""
    label = _label(2)
    expect(callable(turning_point), label, "pass your function itself, e.g. check_2(turning_point)")
    values = {b: as_number(turning_point(b), label, f"turning_point({b})") for b in _BETAS}
    if all(math.isclose(values[b], _T / b, rel_tol=1e-3) for b in _BETAS):
        return passed(label, "the gradient changes sign at x = 2.3994 / beta: the window shrinks as 1 / beta")
    if all(math.isclose(values[b], _T, rel_tol=1e-3) for b in _BETAS):
        fail(label, "that is the crossing in the variable t = beta * x; divide by beta to get x.")
    if all(math.isclose(values[b], _T * b, rel_tol=1e-3) for b in _BETAS):
        fail(label, "multiplied instead of divided: a larger beta gives a narrower window, x = t / beta.")
    if all(math.isclose(values[b], 2 / b, rel_tol=1e-2) for b in _BETAS):
        fail(label, "tanh(t / 2) is not 1 there: solve t * tanh(t / 2) = 2 numerically (bisection), t is about 2.4.")
    if any(values[b] <= 0 for b in _BETAS):
        fail(label, "the question asks for the positive crossing x > 0.")
    fail(label, "the derivative beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x)) is zero where "
                "beta x tanh(beta x / 2) = 2: solve for t = beta x (bisection on [1, 4]), then x = t / beta.")


