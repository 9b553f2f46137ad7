"""Self-checks of the chapter "FP-BNN: Binarized neural network on FPGA" (Liang et al., 2018).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.fp_bnn`, and either
prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import fp_bnn as fb

_SLUG = "fp_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: one stage of 6:3 compression -------------------------------------------------------------------

_CASES_1 = [[6], [12], [7], [3], [5], [2, 1], [0, 3], [64], [9, 8, 4], [36, 0, 0], [1], [13, 13, 13, 13], [17, 2, 5]]


def _wrong_stage(heights, compress_remainder=True, route_s2_for_three=False, carry=True):
    new = [0] * (len(heights) + 2)
    for w, h in enumerate(heights):
        full, rest = divmod(h, 6)
        groups = [6] * full + ([rest] if compress_remainder and rest >= 3 else [])
        passed_through = rest if (rest < 3 or not compress_remainder) else 0
        new[w] += len(groups) + passed_through
        if carry:
            new[w + 1] += len(groups)
            new[w + 2] += sum(1 for g in groups if g >= 4 or route_s2_for_three)
    while len(new) > 1 and new[-1] == 0:
        new.pop()
    return new


_HINTS_1 = [
    (dict(compress_remainder=False), "a remainder of 3, 4 or 5 bits also goes into a compressor (with its unused "
                                     "inputs tied to 0); only 1 or 2 leftover bits pass through."),
    (dict(route_s2_for_three=True), "a group of only three bits counts at most 3 = 0b11: its s2 output is always 0 "
                                    "and is not wired to column w + 2."),
    (dict(carry=False), "each compressor also sends s1 to column w + 1 (and s2 to column w + 2): the count's higher "
                        "bits move to the heavier columns."),
]


@self_check
def check_1(stage_heights) -> str:
    """Check ``stage_heights(heights)``: column heights after one stage of 6:3 compressors."""
    label = _label(1)
    expect(callable(stage_heights), label, "pass your function itself, e.g. check_1(stage_heights)")
    for heights in _CASES_1:
        got = stage_heights(list(heights))
        expect_type(got, (list, tuple), label, f"stage_heights({heights})")
        got = list(got)
        while len(got) > 1 and got[-1] == 0:   # trailing empty columns do not matter
            got.pop()
        expected = fb.compressor_stage_heights(list(heights))
        if got != expected:
            hint = next((h for kwargs, h in _HINTS_1 if got == _wrong_stage(heights, **kwargs)),
                        "for each column: floor(h/6) groups of six, one more group if the remainder is 3 to 5; "
                        "each group leaves one bit in its column, one in the next, and (four or more inputs) one "
                        "two columns up.")
            fail(label, f"stage_heights({heights}) = {got}, expected {expected}. {hint}")
    return passed(label, f"one compression stage matches the simulated compressor tree on {len(_CASES_1)} "
                         "column profiles")


# --- exercise 2: shift-based batch normalization --------------------------------------------------------------

def _cases_2():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 16, generator=g) * 5
    gamma = torch.randn(16, generator=g) * 2                 # some negative
    beta, mean = torch.randn(16, generator=g), torch.randn(16, generator=g) * 3
    var = torch.rand(16, generator=g) * 4
    f = lambda *v: torch.tensor(v)  # noqa: E731
    return [(f([5.0, 1.0]), f(3.0, -0.3), f(1.0, 0.0), f(2.0, 0.0), f(0.0, 0.0), 1.0),
            (x, gamma, beta, mean, var, 1e-5)]


def _wrong_2(x, gamma, beta, mean, var, eps, kind):
    scale = gamma / torch.sqrt(var + eps)
    if kind == "floor":
        p = torch.sign(scale) * torch.exp2(torch.floor(torch.log2(scale.abs())))
    elif kind == "abs":
        p = torch.exp2(torch.round(torch.log2(scale.abs())))
    elif kind == "gamma_only":
        p = fb.ap2(gamma) / torch.sqrt(var + eps)
    elif kind == "exact":
        p = scale
    else:  # shift applied to the whole output
        return fb.ap2((x - mean) * scale + beta)
    return (x - mean) * p + beta


_HINTS_2 = [
    ("exact", "that is ordinary batch norm: round the scale gamma / sqrt(var + eps) to a power of two, AP2(s) = "
              "sign(s) * 2**round(log2|s|)."),
    ("floor", "round log2|s| to the nearest integer (torch.round), do not floor it."),
    ("abs", "keep the sign of the scale: AP2(s) = sign(s) * 2**round(log2|s|); gamma can be negative."),
    ("gamma_only", "round the whole scale gamma / sqrt(var + eps), not gamma alone: the division is what costs a "
                   "multiplier."),
    ("output", "only the scale is a power of two; subtract the mean before and add beta after the shift."),
]


@self_check
def check_2(shift_bn) -> str:
    """Check ``shift_bn(x, gamma, beta, mean, var, eps)`` against :func:`qteach.papers.fp_bnn.shift_batch_norm`."""
    label = _label(2)
    expect(callable(shift_bn), label, "pass your function itself, e.g. check_2(shift_bn)")
    for case in _cases_2():
        got = shift_bn(*case)
        expect_type(got, torch.Tensor, label, "shift_bn(...)")
        expected = fb.shift_batch_norm(*case)
        if got.shape != expected.shape:
            fail(label, f"the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
        if not torch.allclose(got.double(), expected.double(), rtol=1e-5, atol=1e-5):
            hint = next((h for kind, h in _HINTS_2
                         if torch.allclose(got.double(), _wrong_2(*case, kind).double(), rtol=1e-5, atol=1e-5)),
                        "y = (x - mean) * AP2(gamma / sqrt(var + eps)) + beta with AP2(s) = sign(s) * "
                        "2**round(log2|s|).")
            fail(label, f"shift_bn differs from the shift-based BN. {hint}")
    return passed(label, "matches the AP2 shift-based batch norm, negative gammas included")
