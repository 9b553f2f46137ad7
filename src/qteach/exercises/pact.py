"""Self-checks of the PACT chapter (notebooks/2018/pact.ipynb).

Each check calls the student's function on fixed inputs, compares with :mod:`qteach.papers.pact` (eq. 1-3 of
Choi et al. 2018), and prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import functools

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import pact

_SLUG = "pact"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the gradient of alpha (eq. 3) -----------------------------------------------------------------


def _cases():
    g = torch.Generator().manual_seed(11)
    x = 2 * torch.randn(200, generator=g)
    x = x[(x - 1.25).abs() > 1e-3]  # no input exactly at alpha
    up = torch.randn(len(x), generator=g)
    return [(torch.tensor([-1.0, 0.5, 2.0, 3.0]), 1.5, torch.tensor([1.0, 3.0, 2.0, 4.0])),
            (x, 1.25, up), (x, torch.tensor(0.7), up)]


@self_check
def check_1(alpha_grad) -> str:
    """Check ``alpha_grad(x, alpha, g)`` -> dL/dalpha = sum of g over the inputs with x >= alpha (eq. 3)."""
    label = _label(1)
    expect(callable(alpha_grad), label, "pass your function itself, e.g. check_1(alpha_grad)")
    for x, alpha, g in _cases():
        got = alpha_grad(x.clone(), alpha, g.clone())
        if isinstance(got, torch.Tensor) and got.numel() == x.numel() and x.numel() > 1:
            fail(label, "alpha is one number shared by every input of the layer, so its gradient is one number: "
                        "sum the per-input terms.")
        value = as_number(got, label, "the gradient of alpha")
        a = float(alpha)
        expected = pact.alpha_gradient_rule(x, a, g).item()
        if abs(value - expected) <= 1e-4 * max(1.0, abs(expected)):
            continue
        if abs(value - float((x >= a).sum())) < 1e-4:
            fail(label, "that is the number of clipped inputs: weight each one by its upstream gradient g.")
        if abs(value - float((g * ((x >= 0) & (x < a))).sum())) < 1e-4:
            fail(label, "that sums g over 0 <= x < alpha, the inputs whose *input* gradient passes; the clipping "
                        "level only moves the outputs of the inputs at or above alpha (eq. 3).")
        if abs(value - float((g * (x >= 0)).sum())) < 1e-4:
            fail(label, "only the clipped inputs (x >= alpha) depend on alpha once rounding is passed straight "
                        "through; the others give 0 (eq. 3).")
        fail(label, f"expected sum(g * 1[x >= alpha]) = {expected:.4g}, got {value:.4g}.")
    return passed(label, "dL/dalpha = sum of g over the clipped inputs (eq. 3), on 3 inputs")


# --- exercise 2: the best fixed clipping level for a given bit width --------------------------------------------


def _activations() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.relu(torch.randn(4000, generator=g))  # a ReLU after batch norm: half-normal


def _mse(x: torch.Tensor, alpha: float, bits: int) -> float:
    return ((pact.pact_quantize(x, alpha, bits) - x) ** 2).mean().item()


@functools.lru_cache(maxsize=None)
def _grid_min(bits: int) -> float:
    x = _activations()
    return min(_mse(x, a, bits) for a in torch.linspace(0.05, float(x.max()), 500).tolist())


@self_check
def check_2(best_alpha) -> str:
    """Check ``best_alpha(x, bits)``: the alpha whose k-bit PACT quantizer has the smallest mean squared error on
    ``x`` (accepted when its error is within 2 % of the smallest one on a fine grid)."""
    label = _label(2)
    expect(callable(best_alpha), label, "pass your function itself, e.g. check_2(best_alpha)")
    x = _activations()
    found = {}
    for bits in (1, 2, 4):
        a = as_number(best_alpha(x.clone(), bits), label, "alpha")
        expect(a > 0, label, f"alpha must be > 0, got {a:.4g} for {bits} bits")
        found[bits] = a
    for bits, a in found.items():
        best = _grid_min(bits)
        err = _mse(x, a, bits)
        if err > 1.02 * best:
            if abs(a - float(x.max())) < 1e-3:
                fail(label, "alpha = max(x) clips nothing but spreads the few levels over a range that almost no "
                            "value reaches: search for the alpha with the smallest error.")
            if a < 0.2:
                fail(label, f"alpha = {a:.3g} clips almost everything. Measure the error against x itself, not "
                            "against the clipped x: against clip(x, 0, alpha) a tiny alpha looks perfect.")
            if len({round(v, 6) for v in found.values()}) == 1:
                fail(label, "the same alpha for every bit width: the best clipping level depends on the number "
                            "of levels (more levels, smaller rounding error, so clip later).")
            fail(label, f"for {bits} bits your alpha = {a:.3f} has a squared error {err:.4g}, but {best:.4g} is "
                        "reachable: compare the error of pact_quantize(x, alpha, bits) against x over a fine grid "
                        "of alpha, and measure the error against x itself (not against the clipped x).")
    expect(found[1] < found[2] < found[4], label, "the best alpha should grow with the bit width")
    return passed(label, "your clipping levels reach the smallest error for 1, 2 and 4 bits "
                         f"(alpha = {found[1]:.2f}, {found[2]:.2f}, {found[4]:.2f})")
