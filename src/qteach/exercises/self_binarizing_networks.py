"""Self-checks of the self-binarizing networks chapter (notebooks/2019/self_binarizing_networks.ipynb).

Each check calls the student's function, compares it with a reference or a closed form, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.binary import sign
from qteach.checks import as_number, expect, expect_type, fail, passed, self_check

_SLUG = "self_binarizing_networks"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: batch norm followed by sign as one comparison ------------------------------------------------


def _bn_cases():
    g = torch.Generator().manual_seed(5)
    for gamma_sign in (1.0, -1.0, 0.0):  # all positive, all negative, mixed signs
        c = 12
        gamma = torch.rand(c, generator=g, dtype=torch.float64) * 2 + 0.2
        if gamma_sign < 0:
            gamma = -gamma
        elif gamma_sign == 0:
            gamma = gamma * torch.where(torch.arange(c) % 2 == 0, 1.0, -1.0).double()
        beta = torch.randn(c, generator=g, dtype=torch.float64)
        mean = torch.randn(c, generator=g, dtype=torch.float64) * 3
        var = torch.rand(c, generator=g, dtype=torch.float64) * 4 + 0.1
        x = torch.randn(200, c, generator=g, dtype=torch.float64) * 4 + mean
        bn = gamma * (x - mean) / torch.sqrt(var + 1e-5) + beta
        keep = bn.abs().min(dim=1).values > 1e-6  # no sample sits on a threshold (rounding could go either way)
        yield x[keep], gamma, beta, mean, var, sign(bn[keep])


@self_check
def check_1(bn_as_comparison) -> str:
    """Check ``bn_as_comparison(x, gamma, beta, mean, var, eps)`` == sign(BN(x)) without computing BN."""
    label = _label(1)
    expect(callable(bn_as_comparison), label, "pass your function itself, e.g. check_1(bn_as_comparison)")
    for x, gamma, beta, mean, var, expected in _bn_cases():
        got = bn_as_comparison(x.clone(), gamma.clone(), beta.clone(), mean.clone(), var.clone(), 1e-5)
        expect_type(got, torch.Tensor, label, "the result")
        expect(got.shape == x.shape, label, f"return one +-1 per input value, shape {tuple(x.shape)}")
        got = got.to(torch.float64)
        if torch.equal(got, expected):
            continue
        if (got == 0).any():
            fail(label, "your result contains 0: use qteach.binary.sign or torch.where(..., 1.0, -1.0), "
                        "not torch.sign.")
        if bool(((got != 1) & (got != -1)).any()):
            fail(label, "return +-1 values (the sign), not the normalized value or a bool.")
        negative = gamma < 0
        if torch.equal(got[:, ~negative], expected[:, ~negative]):
            fail(label, "right where gamma > 0, wrong where gamma < 0: dividing by a negative gamma flips the "
                        "comparison (x <= tau instead of x >= tau).")
        tau_wrong = mean + beta * torch.sqrt(var + 1e-5) / gamma
        flip = torch.where(gamma < 0, -1.0, 1.0).double()
        if torch.equal(got, sign(flip * (x - tau_wrong))):
            fail(label, "the threshold has the wrong sign of beta: gamma (x - mu) / sigma + beta >= 0 gives "
                        "x >= mu - beta * sigma / gamma.")
        fail(label, "solve gamma (x - mu) / sqrt(var + eps) + beta >= 0 for x: tau = mu - beta * sqrt(var + eps) "
                    "/ gamma, then compare x with tau (the direction depends on the sign of gamma).")
    return passed(label, "sign(BN(x)) is one comparison per channel, x >= tau (or x <= tau where gamma < 0): "
                         "correct on 3 sets of 12 channels")


# --- exercise 2: how much of a N(0, 1) activation is still not binary at slope v ------------------------------


def _fraction(v: float, delta: float) -> float:
    return math.erf(math.atanh(1 - delta) / (v * math.sqrt(2)))


_CASES = ((1.0, 0.01), (10.0, 0.01), (100.0, 0.01), (100.0, 1e-6), (1000.0, 1e-3), (3.0, 0.5))


@self_check
def check_2(fraction_not_binary) -> str:
    """Check ``fraction_not_binary(v, delta)``: P(|tanh(v x)| < 1 - delta) for x ~ N(0, 1)."""
    label = _label(2)
    expect(callable(fraction_not_binary), label, "pass your function itself, e.g. check_2(fraction_not_binary)")
    got = {(v, d): as_number(fraction_not_binary(v, d), label, f"fraction_not_binary({v}, {d})") for v, d in _CASES}

    def matches(formula):
        return all(abs(got[c] - formula(*c)) <= 0.03 * formula(*c) + 3e-3 for c in _CASES)

    if matches(_fraction):
        return passed(label, "the non-binary fraction is erf(atanh(1 - delta) / (v sqrt 2)): it falls like 1/v, "
                             "so each factor 10 of slope leaves about 10 times fewer activations between the levels")
    if matches(lambda v, d: math.erf(math.atanh(1 - d) / v)):
        fail(label, "P(|x| < a) for x ~ N(0, 1) is erf(a / sqrt(2)), not erf(a).")
    if matches(lambda v, d: 1 - _fraction(v, d)):
        fail(label, "you computed the fraction that IS within delta of +-1; the question asks for the rest.")
    if matches(lambda v, d: math.erf(math.atanh(d) / (v * math.sqrt(2)))):
        fail(label, "|tanh(v x)| < 1 - delta means |x| < atanh(1 - delta) / v, not atanh(delta) / v.")
    v, d = next(c for c in _CASES if abs(got[c] - _fraction(*c)) > 0.03 * _fraction(*c) + 3e-3)
    fail(label, f"for v = {v}, delta = {d} expected about {_fraction(v, d):.4g}, got {got[(v, d)]:.4g}: "
                "|tanh(v x)| < 1 - delta holds for |x| < atanh(1 - delta) / v; then use the normal distribution.")
