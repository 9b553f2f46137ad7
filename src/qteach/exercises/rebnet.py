"""Self-checks of the ReBNet chapter (notebooks/2018/rebnet.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.rebnet` or a closed form, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.binary import sign
from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import rebnet

_SLUG = "rebnet"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the M-level encoder -------------------------------------------------------------------------


def _cases():
    g = torch.Generator().manual_seed(11)
    yield torch.randn(40, generator=g), rebnet.initial_gammas(3)
    yield torch.randn(3, 17, generator=g) * 2, torch.tensor([0.9, 0.3])
    yield torch.tensor([0.0, 0.25, -0.25, 1.0]), torch.tensor([0.5, 0.25, 0.125])  # exact zero and ties
    yield torch.randn(25, generator=g), torch.tensor([-0.6, 0.2])  # a negative scale: the code uses |gamma|


@self_check
def check_1(encode) -> str:
    """Check ``encode(x, gammas)`` -> list of M tensors of +-1, the residual levels b_1..b_M."""
    label = _label(1)
    expect(callable(encode), label, "pass your function itself, e.g. check_1(encode)")
    for x, gammas in _cases():
        planes = encode(x.clone(), gammas.clone())
        expect(isinstance(planes, (list, tuple)), label, "return a list of the M planes b_1, ..., b_M")
        expect(len(planes) == len(gammas), label, f"return one plane per level: {len(gammas)} for "
                                                  f"{len(gammas)} scales, got {len(planes)}")
        _, ref = rebnet.residual_binarize(x, gammas)
        for level, (b, r) in enumerate(zip(planes, ref), start=1):
            expect_type(b, torch.Tensor, label, f"plane {level}")
            expect(b.shape == x.shape, label, f"plane {level} should have the shape of x")
            if torch.equal(b.float(), r):
                continue
            if gammas.min() < 0:
                fail(label, f"plane {level} differs when a scale is negative: the official code uses |gamma_l| "
                            "(K.abs(self.means[l])).")
            if level > 1 and torch.equal(b.float(), sign(x)):
                fail(label, f"plane {level} is sign(x) again: subtract gamma_l * b_l from the residual after "
                            "each level and binarize the residual, not x.")
            if torch.equal(b.float(), torch.sign(r) * (r != 0)) or (b == 0).any():
                fail(label, "a plane contains 0: torch.sign(0) is 0; use qteach.binary.sign (0 -> +1).")
            fail(label, f"plane {level} differs from sign(r_{level}) with r_(l+1) = r_l - |gamma_l| b_l.")
    return passed(label, "your encoder gives the M residual planes of ReBNet on 4 inputs (an exact zero, ties, "
                         "a negative scale)")


# --- exercise 2: predict the error of M levels on uniform data ------------------------------------------------


def _mse(m: int) -> float:
    return (1 / 3) * 4.0 ** (-m)


@self_check
def check_2(predicted_mse) -> str:
    """Check ``predicted_mse(m)``: mean squared error of m greedy residual levels on x ~ U(-1, 1)."""
    label = _label(2)
    expect(callable(predicted_mse), label, "pass your function itself, e.g. check_2(predicted_mse)")
    values = {m: as_number(predicted_mse(m), label, f"predicted_mse({m})") for m in range(0, 6)}

    def near(m, target):
        return abs(values[m] - target) <= 0.02 * target + 1e-9

    if all(near(m, _mse(m)) for m in values):
        return passed(label, "MSE(M) = 4^-M / 3: each greedy level halves the residual's range, so the error "
                             "drops by 4 per level (6 dB)")
    if all(near(m, 2.0 ** (-m) / 3) for m in values):
        fail(label, "each level halves the residual's amplitude; the squared error therefore drops by 4, not 2.")
    if all(near(m, 4.0 ** (-m + 1) / 3) for m in values if m >= 1) or all(
            near(m, 4.0 ** (-m - 1) / 3) for m in values):
        fail(label, "off by one level: with M = 0 levels the error is Var(x) = 1/3; after one level "
                    "(gamma_1 = E|x| = 1/2) the residual is uniform on [-1/2, 1/2].")
    if all(near(m, 4.0 ** (-m)) for m in values):
        fail(label, "the variance of U(-a, a) is a^2 / 3, not a^2.")
    if not near(0, _mse(0)):
        fail(label, "start from M = 0: no level at all, the error is the variance of x, 1/3.")
    fail(label, "find gamma_1 = E|x| for x ~ U(-1, 1), then the distribution of r_2 = x - gamma_1 sign(x); "
                "the same step repeats on a range half as wide.")
