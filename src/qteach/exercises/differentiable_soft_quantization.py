"""Self-checks of the DSQ chapter (notebooks/2019/differentiable_soft_quantization.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.differentiable_soft_quantization`
or a closed form, and either prints the success line or raises ``AssertionError`` with a hint.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import differentiable_soft_quantization as dsq

_SLUG = "differentiable_soft_quantization"
_CASES = ((0.2, 1.0), (0.05, 2 / 3), (0.5, 0.25), (0.9, 3.0), (0.01, 0.1))


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


@self_check
def check_1(parameters) -> str:
    """Check ``parameters(alpha, delta)`` -> ``(k, s)``, the tanh's shape and scale for a given alpha."""
    label = _label(1)
    expect(callable(parameters), label, "pass your function itself, e.g. check_1(parameters)")
    for alpha, delta in _CASES:
        result = parameters(alpha, delta)
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label, "return the pair (k, s)")
        k = as_number(result[0], label, "k")
        s = as_number(result[1], label, "s")
        k_ref, s_ref = (float(v) for v in dsq.tanh_parameters(alpha, delta))
        if not math.isclose(s, s_ref, rel_tol=1e-4):
            if math.isclose(s, 1 / alpha, rel_tol=1e-4):
                fail(label, "s is 1/alpha: alpha = 1 - 1/s, so s = 1 / (1 - alpha).")
            fail(label, f"s is wrong for alpha={alpha}: from alpha = 1 - 1/s, s = 1 / (1 - alpha).")
        if not math.isclose(k, k_ref, rel_tol=1e-4):
            if math.isclose(k, k_ref * delta, rel_tol=1e-4):
                fail(label, "k does not depend on delta: tanh(0.5 k delta) = 1 - alpha, so divide by delta.")
            if math.isclose(k, 2 * k_ref, rel_tol=1e-4) or math.isclose(k, k_ref / 2, rel_tol=1e-4):
                fail(label, "k is off by a factor 2: solve tanh(0.5 k delta) = 1 - alpha with "
                            "atanh(y) = 0.5 log((1 + y) / (1 - y)).")
            fail(label, f"k is wrong for alpha={alpha}, delta={delta}: check tanh(0.5 k delta) = 1 - alpha.")
    return passed(label, "your k and s reproduce tanh(0.5 k delta) = 1 - alpha and s = 1/(1 - alpha) on 5 cases")


@self_check
def check_2(peak_slope) -> str:
    """Check ``peak_slope(alpha)`` -> dQ_S/dx at an interval's midpoint, in closed form."""
    label = _label(2)
    expect(callable(peak_slope), label, "pass your function itself, e.g. check_2(peak_slope)")
    for alpha in (0.01, 0.05, 0.2, 0.5, 0.8):
        value = as_number(peak_slope(alpha), label, f"peak_slope({alpha})")
        x = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
        dsq.soft_quantize(x, -1.0, 1.0, 2, alpha).sum().backward()
        expected = float(x.grad)
        if math.isclose(value, expected, rel_tol=1e-4):
            continue
        if math.isclose(value, 2 * expected, rel_tol=1e-4):
            fail(label, "twice the slope: Q_S = l + delta (i + (phi + 1) / 2) halves phi's slope s k.")
        if math.isclose(value, 1.0, rel_tol=1e-4):
            fail(label, "1 is the STE's slope; differentiate Q_S at x = m_i, where tanh' = 1.")
        fail(label, f"peak_slope({alpha}) = {value:.4g}, autograd gives {expected:.4g}: delta * s * k / 2 with "
                    "k and s from alpha.")
    return passed(label, "your closed form matches autograd's slope at the midpoint for 5 values of alpha")
