"""Self-checks of the chapter "Deep Learning with Low Precision by Half-wave Gaussian Quantization".

Each check calls the student's function on several inputs, compares with a reference from
:mod:`qteach.papers.hwgq`, and either prints the success line or raises ``AssertionError`` with a hint naming the
likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import hwgq as H

_SLUG = "hwgq"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the forward quantizer --------------------------------------------------------------------------

def _cases_1():
    g = torch.Generator().manual_seed(31)
    return [
        ("hand-picked values, levels [0.5, 1.0, 1.5]", torch.tensor([-1.0, 0.0, 0.01, 0.3, 0.76, 1.3, 9.0]),
         [0.5, 1.0, 1.5]),
        ("values on the thresholds 0.75 and 1.25", torch.tensor([0.75, 1.25, 0.7500001]), [0.5, 1.0, 1.5]),
        ("Gaussian inputs, 2-bit uniform HWGQ levels", torch.randn(300, generator=g), [0.538, 1.076, 1.614]),
        ("Gaussian inputs, two non-uniform levels", torch.randn(300, generator=g) * 2, [0.453, 1.51]),
    ]


def _hint_1(x, levels, got):
    lv = torch.tensor(levels, dtype=x.dtype)
    with_zero = torch.cat([torch.zeros(1, dtype=x.dtype), lv])
    nearest = with_zero[(x.clamp(min=0)[:, None] - with_zero[None]).abs().argmin(dim=1)]
    floor_like = torch.where(x > 0, lv[(torch.searchsorted(lv, x, right=True) - 1).clamp(min=0)], torch.zeros_like(x))
    inner = H.thresholds(lv)[1:-1].contiguous()
    ties_up = torch.where(x > 0, lv[torch.searchsorted(inner, x, right=True)], torch.zeros_like(x))
    negative_kept = torch.where(x > 0, H.hwgq(x, lv), x)
    candidates = [
        (ties_up, "a value exactly on a threshold belongs to the *lower* level (the official layer tests x <= t)."),
        (nearest, "HWGQ reserves 0 for x <= 0: every positive x, however small, maps to a positive level. Rounding "
                  "to the nearest of {0, q_1, ...} sends small positive values to 0."),
        (floor_like, "the thresholds are the midpoints between consecutive levels, not the levels themselves."),
        (negative_kept, "negative inputs must become 0: the quantizer replaces the ReLU."),
    ]
    for value, hint in candidates:
        if torch.equal(got, value):
            return hint
    return ("Q(x) = 0 for x <= 0; otherwise the first level q_i whose upper threshold (q_i + q_(i+1)) / 2 is >= x "
            "(the last level has no upper threshold).")


@self_check
def check_1(hwgq_forward) -> str:
    """Check ``hwgq_forward(x, levels)`` against :func:`qteach.papers.hwgq.hwgq`."""
    label = _label(1)
    expect(callable(hwgq_forward), label, "pass your function itself, e.g. check_1(hwgq_forward)")
    for what, x, levels in _cases_1():
        got = hwgq_forward(x.clone(), list(levels))
        expect_type(got, torch.Tensor, label, "hwgq_forward(x, levels)")
        expect(got.shape == x.shape, label, f"on {what}: the result should have shape {tuple(x.shape)}, got "
                                            f"{tuple(got.shape)}")
        got = got.detach().to(x.dtype)
        reference = H.hwgq(x, levels)
        if not torch.equal(got, reference):
            bad = int((got != reference).nonzero()[0])
            fail(label, f"on {what}: for x = {x[bad].item():.6g} you return {got[bad].item():.6g}, expected "
                        f"{reference[bad].item():.6g}. {_hint_1(x, levels, got)}")
    return passed(label, f"the half-wave Gaussian quantizer matches on {len(_cases_1())} inputs, thresholds included")


# --- exercise 2: Lloyd's algorithm on samples -------------------------------------------------------------------

def _cells(positive: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    return torch.searchsorted(((levels[1:] + levels[:-1]) / 2).contiguous(), positive)


def _lloyd_step(positive: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    cell = _cells(positive, levels)
    sums = torch.zeros_like(levels).index_add_(0, cell, positive)
    counts = torch.zeros_like(levels).index_add_(0, cell, torch.ones_like(positive))
    return torch.where(counts > 0, sums / counts.clamp(min=1), levels)


def _mse(positive: torch.Tensor, levels: torch.Tensor) -> float:
    return ((levels[_cells(positive, levels)] - positive) ** 2).mean().item()


@self_check
def check_2(lloyd_levels) -> str:
    """Check ``lloyd_levels(x, num_levels)``: Lloyd's algorithm on the positive entries of ``x``."""
    label = _label(2)
    expect(callable(lloyd_levels), label, "pass your function itself, e.g. check_2(lloyd_levels)")
    g = torch.Generator().manual_seed(32)
    cases = [
        ("half-wave Gaussian samples, 3 levels", torch.randn(5_000, generator=g).clamp(min=0), 3),
        ("half-wave Gaussian samples, 2 levels", torch.randn(5_000, generator=g).clamp(min=0), 2),
        ("ReLU of N(0.5, 2^2) samples, 3 levels", (0.5 + 2 * torch.randn(5_000, generator=g)).clamp(min=0), 3),
    ]
    for what, x, m in cases:
        got = lloyd_levels(x.clone(), m)
        if isinstance(got, (list, tuple)):
            got = torch.tensor(got, dtype=torch.float64)
        expect_type(got, torch.Tensor, label, "lloyd_levels(x, num_levels)")
        got = got.detach().flatten().to(torch.float64).sort().values
        expect(got.numel() == m, label, f"on {what}: return {m} positive levels, got {got.numel()} values")
        reference = H.lloyd_max_samples(x, m, iterations=500)
        positive = x[x > 0].to(torch.float64)
        expect(bool((got > 0).all()) and bool((got[1:] > got[:-1]).all()), label,
               f"on {what}: the levels should be distinct and > 0, got {[round(v, 4) for v in got.tolist()]}")
        # a Lloyd solution is a fixed point: every level is the mean of the positive samples in its own cell
        moved = (_lloyd_step(positive, got) - got).abs().max().item()
        worse = _mse(positive, got) > 1.01 * _mse(positive, reference)
        if moved > 1e-3 or worse:
            hint = ("alternate: thresholds halfway between consecutive levels (the first is 0), then each level = mean "
                    "of the positive samples in its interval; repeat until the levels stop moving (100+ rounds).")
            if torch.allclose(got, torch.quantile(positive, (torch.arange(m, dtype=torch.float64) + 0.5) / m),
                              atol=1e-3):
                hint = "those look like the starting points: iterate the two Lloyd steps until convergence."
            elif bool((got < reference).all()) and got[0] < 0.8 * reference[0]:
                hint = ("your levels are too low: the zeros (x <= 0) must not take part, they are quantized to 0 "
                        "exactly. Use only the positive samples.")
            fail(label, f"on {what}: got levels {[round(v, 4) for v in got.tolist()]}, expected about "
                        f"{[round(v, 4) for v in reference.tolist()]} (a fixed point of Lloyd's iteration). {hint}")
    return passed(label, f"your Lloyd levels match the reference on {len(cases)} data sets")
