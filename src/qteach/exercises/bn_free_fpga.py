"""Self-checks of the chapter "BN-free binarized CNN on an FPGA" (Yonekawa and Nakahara, 2017).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.bn_free_fpga`, and
either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import bn_free_fpga as bf

_SLUG = "bn_free_fpga"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the integer bias of a neuron with gamma > 0 -------------------------------------------------

def _cases_1():
    """(gamma, beta, mean, var, eps, acc_scale): hand-picked cases where floor, round and ceil differ, plus random."""
    f = lambda *v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    cases = [
        (f(2.0, 1.0, 0.5), f(1.0, 0.7, -0.3), f(3.0, 0.0, 2.0), f(3.0, 0.0, 1.0), 1.0, 1.0),
        (f(1.0, 1.0), f(0.0, 0.4), f(0.5, 0.2), f(0.0, 2.0), 1.0, 1 / 16),
        (f(0.25, 3.0), f(-0.9, 0.1), f(-7.3, 12.6), f(4.0, 0.5), 1e-5, 1.0),
    ]
    g = torch.Generator().manual_seed(7)
    gamma = torch.rand(50, generator=g) * 2 + 0.05
    beta, mean = torch.randn(50, generator=g), 20 * torch.randn(50, generator=g)
    var = torch.rand(50, generator=g) * 30
    cases.append((gamma, beta, mean, var, 1e-5, 1.0))
    return cases


def _b_prime(gamma, beta, mean, var, eps, acc_scale, sqrt=True, use_eps=True):
    g, b, m, v = (t.double() for t in (gamma, beta, mean, var))
    spread = v + (eps if use_eps else 0.0)
    spread = torch.sqrt(spread) if sqrt else spread
    return (b * spread / g - m) / acc_scale


def _hint_1(got, case):
    gamma, beta, mean, var, eps, acc_scale = case
    got = got.double()
    b = _b_prime(*case)
    candidates = [
        (torch.round(b), "rounding to the nearest integer fires one step too early or too late: for an integer x, "
                         "x + b' >= 0 is the same as x + floor(b') >= 0. Use torch.floor."),
        (torch.ceil(b), "ceil gives the right answer only when b' is an integer: x + b' >= 0 <=> x + floor(b') >= 0."),
        (torch.trunc(b), "truncation rounds negative b' towards zero; for an integer x the exact bias is floor(b')."),
        (torch.floor(-b), "the sign is turned around: y >= 0 <=> x >= -b', so the bias is +b' (floored), not -b'."),
        (torch.floor(_b_prime(*case, sqrt=False)), "the standard deviation is sqrt(var + eps), not var + eps."),
        (torch.floor(_b_prime(gamma, beta, mean, var, eps, 1.0)),
         "the accumulator is x_int and the BN input is acc_scale * x_int: divide b' by acc_scale."),
        (torch.floor(_b_prime(gamma, beta, mean, var, eps, acc_scale) * acc_scale * acc_scale),
         "divide by acc_scale (the BN input is acc_scale * x), do not multiply."),
        (torch.floor(beta.double() * gamma.double() / torch.sqrt(var.double() + eps) - mean.double()) ,
         "gamma belongs in the denominator: dividing y by gamma / sqrt(var + eps) leaves beta * sqrt(var + eps) / gamma."),
    ]
    for value, hint in candidates:
        if got.shape == value.shape and torch.equal(got, value):
            return hint
    return ("compute b' = (beta * sqrt(var + eps) / gamma - mean) / acc_scale in float64 and return floor(b') as "
            "an integer tensor.")


@self_check
def check_1(integer_bias) -> str:
    """Check ``integer_bias(gamma, beta, mean, var, eps, acc_scale)`` for gamma > 0 (int64 tensor of biases)."""
    label = _label(1)
    expect(callable(integer_bias), label, "pass your function itself, e.g. check_1(integer_bias)")
    for case in _cases_1():
        got = integer_bias(*case)
        expect_type(got, torch.Tensor, label, "integer_bias(...)")
        if got.shape != case[0].shape:
            fail(label, f"the result has shape {tuple(got.shape)}; expected one bias per neuron, shape "
                        f"{tuple(case[0].shape)}")
        if got.is_floating_point():
            fail(label, "return an integer tensor (e.g. .to(torch.int64)): the hardware stores an integer bias.")
        _, expected = bf.bn_free_bias(*case[:4], eps=case[4], acc_scale=case[5])
        if not torch.equal(got.to(torch.int64), expected):
            wrong = int((got.to(torch.int64) != expected).sum())
            fail(label, f"{wrong} of {expected.numel()} biases differ from the folded BN. {_hint_1(got, case)}")
    return passed(label, "floor(b') matches the folded batch norm on hand-picked and random neurons, "
                         "with and without an accumulator scale")


# --- exercise 2: bits of the integer bias ----------------------------------------------------------------------

_CASES_2 = [1, 2, 3, 7, 8, 63, 64, 65, 127, 128, 576, 1024, 4608, 6885]


_WRONG_2 = [
    (lambda m: math.ceil(math.log2(m)) + 1 if m > 1 else 1,
     "for M = 2^k that is one bit short: the bias must reach -M-1 and +M, so 2^(b-1) >= M + 1, "
     "i.e. b = ceil(log2(M + 1)) + 1."),
    (lambda m: math.ceil(math.log2(m + 1)),
     "one bit for the sign is missing: a two's-complement b-bit integer holds [-2^(b-1), 2^(b-1) - 1]."),
    (lambda m: math.ceil(math.log2(2 * m + 2)) + 1, "one bit too many: 2^(b-1) >= M + 1 is enough."),
    (lambda m: 32, "a float32 or int32 would work, but the point is the smallest width: b = ceil(log2(M + 1)) + 1."),
]


@self_check
def check_2(bias_bits) -> str:
    """Check ``bias_bits(acc_bound)``: the two's-complement width that holds every bias in [-M-1, M]."""
    label = _label(2)
    expect(callable(bias_bits), label, "pass your function itself, e.g. check_2(bias_bits)")
    answers = {}
    for m in _CASES_2:
        got = bias_bits(m)
        if hasattr(got, "item"):
            got = got.item()
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect_type(got, int, label, f"bias_bits({m})")
        answers[m] = got
    wrong = [m for m in _CASES_2 if answers[m] != bf.integer_bias_bits(m)]
    if wrong:
        m = wrong[0]
        hint = next((h for f, h in _WRONG_2 if all(answers[k] == f(k) for k in _CASES_2)),
                    "find the smallest b with -2^(b-1) <= -M-1 and M <= 2^(b-1) - 1.")
        fail(label, f"bias_bits({m}) = {answers[m]}, expected {bf.integer_bias_bits(m)}. {hint}")
    return passed(label, f"widths match for {len(_CASES_2)} accumulator bounds, powers of two included")
