"""Self-checks of the chapter "Deep Learning with Low Precision by Half-wave Gaussian Quantization".

Each check calls the student's function on several inputs, compares with a reference computed from
:mod:`qteach.papers.hwgq` (and, for exercise 1, the quantizers the chapter compares), and either prints the success line or raises ``AssertionError`` with a hint naming the
likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach import quant
from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import dorefa_net
from qteach.papers import hwgq as H

_SLUG = "hwgq"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: granular and overload error ----------------------------------------------------------------

def _split(x: torch.Tensor, q: torch.Tensor) -> tuple[float, float]:
    x, q = x.double(), q.double()
    error = (q - x) ** 2
    over = x > q.max()
    return (error * ~over).sum().item() / x.numel(), (error * over).sum().item() / x.numel()


def _cases_ex1():
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(3)).clamp(min=0)
    scale, zero_point = quant.qparams(0.0, x.max(), bits=2)
    hand = torch.tensor([0.0, 0.2, 0.9, 1.5, 3.0])
    return [
        ("x = [0, 0.2, 0.9, 1.5, 3] through DoReFa's 2-bit [0, 1] quantizer", hand,
         dorefa_net.quantize_activations(hand, 2)),
        ("DoReFa: clip [0, 1], 2 bits", x, dorefa_net.quantize_activations(x, 2)),
        ("min-max range, 2 bits", x, quant.fake_quantize(x, scale, zero_point, bits=2)),
        ("HWGQ, uniform (step 0.538)", x, H.hwgq(x, H.uniform_levels(2))),
        ("HWGQ, Lloyd-Max (3 levels)", x, H.hwgq(x, H.lloyd_max_half_normal(3))),
    ]


@self_check
def check_1(error_split) -> str:
    """Check ``error_split(x, q) -> (granular, overload)``: the squared errors of the inputs up to the largest
    output value and of those beyond it, each summed and divided by the number of all samples."""
    label = _label(1)
    expect(callable(error_split), label, "pass your function itself, e.g. check_1(error_split)")
    lines = []
    for what, x, q in _cases_ex1():
        result = error_split(x.clone(), q.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               "error_split should return a pair (granular, overload)")
        granular = as_number(result[0], label, "granular")
        overload = as_number(result[1], label, "overload")
        ref_g, ref_o = _split(x, q)
        ok = all(math.isclose(got, ref, rel_tol=1e-4, abs_tol=1e-7)
                 for got, ref in ((granular, ref_g), (overload, ref_o)))
        if not ok:
            x64, q64 = x.double(), q.double()
            error = (q64 - x64) ** 2
            over = x64 > q64.max()
            at_top = q64 == q64.max()
            mse = ref_g + ref_o
            hint = ("overload = squared errors of the inputs x > max(q), granular = those of all other inputs, each "
                    "summed and divided by the number of ALL samples, so that the two add up to the MSE.")
            if math.isclose(granular, ref_o, rel_tol=1e-4, abs_tol=1e-7) and math.isclose(
                    overload, ref_g, rel_tol=1e-4, abs_tol=1e-7):
                hint = "you swapped the two: return (granular, overload), in that order."
            elif over.any() and math.isclose(overload, error[over].mean().item(), rel_tol=1e-4):
                hint = ("that is the mean over the overloaded inputs only; divide by the number of all samples, so "
                        "that granular + overload = MSE.")
            elif math.isclose(overload, (error * at_top).sum().item() / x.numel(), rel_tol=1e-4, abs_tol=1e-7):
                hint = ("overload counts the inputs *beyond* the largest output value (x > max(q)), not all the "
                        "inputs mapped to it: those up to max(q) are rounded, not clipped.")
            elif not math.isclose(granular + overload, mse, rel_tol=1e-4, abs_tol=1e-7):
                hint += f" Your two parts add up to {granular + overload:.4g}, the MSE is {mse:.4g}."
            fail(label, f"on {what}: got ({granular:.4g}, {overload:.4g}), expected ({ref_g:.4g}, {ref_o:.4g}). "
                        f"{hint}")
        if x.numel() > 5:
            lines.append(f"{what}: granular {ref_g:.3g}, overload {ref_o:.3g}")
    return passed(label, "the split adds up and matches on 5 quantizers. On 50,000 half-wave Gaussian samples: "
                         + "; ".join(lines))


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
