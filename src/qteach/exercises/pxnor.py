"""Self-checks of the PXNOR chapter (notebooks/2019/pxnor.ipynb).

Each check calls the student's function, compares it with a closed form or a direct computation, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach import binary
from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "pxnor"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: how many bits does the noise flip? -----------------------------------------------------------


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _flip(level: float, sigma: float = 1.0) -> float:
    """P(sign(x + n) != sign(x)) for x ~ N(0, sigma^2), n ~ U(-level, level): (1/l) int_0^l (Phi(n/s) - 1/2) dn."""
    steps = 2000
    h = level / steps
    return sum(_phi((i + 0.5) * h / sigma) - 0.5 for i in range(steps)) * h / level


_LEVELS = (0.1, 0.5, 1.0, 2.0)


@self_check
def check_1(flip_fraction) -> str:
    """Check ``flip_fraction(level)``: P(sign(x + n) != sign(x)), x ~ N(0, 1), n ~ U(-level, level)."""
    label = _label(1)
    expect(callable(flip_fraction), label, "pass your function itself, e.g. check_1(flip_fraction)")
    values = {lv: as_number(flip_fraction(lv), label, f"flip_fraction({lv})") for lv in _LEVELS}

    def all_near(target):
        return all(abs(values[lv] - target(lv)) <= 6e-3 for lv in _LEVELS)

    if all_near(_flip):
        return passed(label, "a uniform mask of level 0.5 flips about 10 % of the bits of a normalised input, "
                             "level 2 about 30 %")
    if any(not 0 <= v <= 1 for v in values.values()):
        fail(label, "a fraction lies between 0 and 1.")
    if all_near(lambda lv: 2 * _flip(lv)):
        fail(label, "twice too large: a bit flips only when the noise pushes x across 0, i.e. n has the other "
                    "sign than x AND |n| > |x| (P(|x| < |n|) counts both signs of n).")
    if all_near(lambda lv: _flip(lv * math.sqrt(3))) or all_near(lambda lv: _flip(lv / math.sqrt(3))):
        fail(label, "the noise is uniform on [-level, level] (its standard deviation is level / sqrt(3)), "
                    "not of standard deviation level.")
    fail(label, "average over n ~ U(-level, level) the probability P(0 < x < |n|) = Phi(|n|) - 1/2 that x lies "
                "between 0 and the negated noise (or estimate it with a million samples).")


# --- exercise 2: the noisy batch-normalised sign as a comparison with a threshold -----------------------------


def _case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    c = 6
    mean = torch.rand(c, generator=g, dtype=torch.float64) * 2 - 1
    var = torch.rand(c, generator=g, dtype=torch.float64) * 2 + 0.2
    gamma = torch.tensor([1.5, -0.7, 0.4, -2.0, 0.9, 1.1], dtype=torch.float64)
    beta = torch.rand(c, generator=g, dtype=torch.float64) * 2 - 1
    noise = (torch.rand(c, 4, 4, generator=g, dtype=torch.float64) * 2 - 1) * 0.6
    x = torch.randn(40, c, 4, 4, generator=g, dtype=torch.float64)
    return x, noise, mean, var, gamma, beta, 1e-4


def _reference(x, noise, mean, var, gamma, beta, eps):
    shape = (-1, 1, 1)
    h = (x + noise - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) \
        + beta.reshape(shape)
    return binary.sign(h)


@self_check
def check_2(binarize_folded) -> str:
    """Check ``binarize_folded(x, noise, mean, var, gamma, beta, eps)`` against sign(BN(x + N))."""
    label = _label(2)
    expect(callable(binarize_folded), label, "pass your function itself, e.g. check_2(binarize_folded)")
    case = _case()
    x, noise, mean, var, gamma, beta, eps = case
    out = binarize_folded(*case)
    expect(isinstance(out, torch.Tensor), label, f"return a tensor of +-1, got {type(out).__name__}")
    expect(out.shape == x.shape, label, f"return one bit per input: shape {tuple(x.shape)}, got {tuple(out.shape)}")
    ref = _reference(*case)
    wrong = out.to(ref.dtype) != ref
    if not bool(wrong.any()):
        return passed(label, "sign(BN(x + N)) is one comparison per position: x >= T (gamma > 0) or x <= T "
                             "(gamma < 0), with the noise folded into T")
    expect(bool(((out == 1) | (out == -1)).all()), label, "the result holds only +1 and -1 (sign(0) = +1).")
    neg = (gamma < 0).reshape(1, -1, 1, 1).expand_as(wrong)
    if bool(wrong[~neg].sum() == 0) and bool(wrong[neg].float().mean() > 0.9):
        fail(label, "right where gamma > 0, wrong where gamma < 0: dividing by a negative gamma flips the "
                    "comparison, so those channels give +1 where x <= T.")
    if bool((binarize_folded(x, torch.zeros_like(noise), mean, var, gamma, beta, eps).to(ref.dtype) == out).all()):
        fail(label, "your result does not depend on the noise: the mask N shifts the threshold, T = ... - N.")
    fail(label, f"{int(wrong.sum())} of {wrong.numel()} bits differ from sign(BN(x + N)): solve "
                "gamma (x + N - mean) / sqrt(var + eps) + beta >= 0 for x.")
