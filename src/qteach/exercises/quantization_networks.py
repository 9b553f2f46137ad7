"""Self-checks of the Quantization Networks chapter (notebooks/2019/quantization_networks.ipynb).

Each check calls the student's function, compares it with the book's implementation or a closed form, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers.quantization_networks import quantization_function

_SLUG = "quantization_networks"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the soft quantization function with unequal gaps ----------------------------------------------

_LEVELS = (
    torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64),
    torch.tensor([-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0], dtype=torch.float64),
    torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64),
)
_BIASES = (
    torch.tensor([-0.4, 0.6], dtype=torch.float64),
    torch.tensor([-3.0, -1.5, -0.5, 0.5, 1.5, 3.0], dtype=torch.float64),
    torch.tensor([0.5, 1.4, 2.6], dtype=torch.float64),
)


@self_check
def check_1(soft_quantize) -> str:
    """Check ``soft_quantize(x, levels, biases, T)`` against (Q2) with alpha = beta = 1."""
    label = _label(1)
    expect(callable(soft_quantize), label, "pass your function itself, e.g. check_1(soft_quantize)")
    x = torch.linspace(-5, 5, 201, dtype=torch.float64)
    for levels, biases in zip(_LEVELS, _BIASES):
        for T in (1.0, 7.0, 50.0):
            got = soft_quantize(x.clone(), levels.clone(), biases.clone(), T)
            expect_type(got, torch.Tensor, label, "the result")
            expect(got.shape == x.shape, label, f"return one value per input, shape {tuple(x.shape)}")
            want = quantization_function(x, levels, biases, T)
            got = got.to(torch.float64)
            if torch.allclose(got, want, atol=1e-6):
                continue
            s = levels.diff()
            sig = torch.sigmoid(T * (x[:, None] - biases))
            if torch.allclose(got, want - levels[0], atol=1e-6):
                fail(label, "the offset is missing: subtract o = -q_0 (half the sum of the gaps for symmetric "
                            "levels), so that the lowest level is q_0 and not 0.")
            if torch.allclose(got, sig.sum(1) + levels[0], atol=1e-6):
                fail(label, "each sigmoid must be weighted by its gap s_i = q_i - q_(i-1); with unequal gaps "
                            "(the 3-bit levels -4, -2, -1, ...) a plain sum of sigmoids is wrong.")
            if torch.allclose(got, (torch.sigmoid(T * (x[:, None] + biases)) * s).sum(1) + levels[0], atol=1e-6):
                fail(label, "the sign of the bias: sigma(T (x - b_i)), not sigma(T (x + b_i)).")
            if torch.allclose(got, (torch.sigmoid(x[:, None] - biases) * s).sum(1) + levels[0], atol=1e-6):
                fail(label, "the temperature is missing: sigma(T (x - b_i)).")
            fail(label, f"levels {levels.tolist()}, T = {T}: expected sum_i s_i sigma(T (x - b_i)) + q_0, "
                        f"max difference {(got - want).abs().max().item():.3g}.")
    return passed(label, "sum of gap-weighted sigmoids minus the offset: correct for ternary, 3-bit (unequal gaps) "
                         "and unsigned 2-bit levels at T = 1, 7 and 50")


# --- exercise 2: how hot must the sigmoids be? -------------------------------------------------------------------


def _min_temperature(delta: float, eps: float) -> float:
    return math.log((1 - eps) / eps) / delta


_CASES = ((0.1, 0.01), (0.05, 0.001), (0.5, 0.2), (0.01, 0.05), (1.0, 0.4))


@self_check
def check_2(min_temperature) -> str:
    """Check ``min_temperature(delta, eps)``: the smallest T with sigma(T delta) >= 1 - eps."""
    label = _label(2)
    expect(callable(min_temperature), label, "pass your function itself, e.g. check_2(min_temperature)")
    got = {c: as_number(min_temperature(*c), label, f"min_temperature{c}") for c in _CASES}

    def matches(formula):
        return all(abs(got[c] - formula(*c)) <= 1e-4 * abs(formula(*c)) + 1e-9 for c in _CASES)

    if matches(_min_temperature):
        return passed(label, "T = ln((1 - eps) / eps) / delta: the temperature needed grows like 1/delta, "
                             "so the values closest to a bias are the last to become exactly quantized")
    if matches(lambda d, e: math.log(1 / e) / d):
        fail(label, "sigma(z) >= 1 - eps means e^(-z) <= eps / (1 - eps): z >= ln((1 - eps) / eps), not ln(1/eps) "
                    "(the two differ when eps is not small, e.g. eps = 0.2).")
    if matches(lambda d, e: math.log((1 - e) / e) * d):
        fail(label, "T delta >= ln((1 - eps) / eps): divide by delta, do not multiply.")
    if matches(lambda d, e: math.log10((1 - e) / e) / d):
        fail(label, "use the natural logarithm (math.log), the sigmoid is 1 / (1 + e^(-z)).")
    if matches(lambda d, e: math.log(e / (1 - e)) / d):
        fail(label, "the sign: the temperature must be positive, ln((1 - eps) / eps) / delta.")
    c = next(c for c in _CASES if abs(got[c] - _min_temperature(*c)) > 1e-4 * _min_temperature(*c))
    fail(label, f"for delta = {c[0]}, eps = {c[1]} expected {_min_temperature(*c):.4g}, got {got[c]:.4g}: solve "
                "sigma(T delta) = 1 / (1 + exp(-T delta)) >= 1 - eps for T.")
