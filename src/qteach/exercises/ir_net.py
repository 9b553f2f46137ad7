"""Self-checks of the IR-Net chapter (notebooks/2020/ir_net.ipynb).

Each check calls the student's function, compares it with the official code's formulas (transcribed in
:mod:`qteach.papers.ir_net`), and either prints the success line or raises ``AssertionError`` with a hint that names
the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import (
    as_number,
    expect,
    expect_tensor_like,
    fail,
    passed,
    self_check,
)

_SLUG = "ir_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: EDE's gradient at a given epoch ------------------------------------------------------------------

_X = torch.arange(-40, 41, dtype=torch.float64) / 10
_CASES = ((0, 10), (3, 10), (9, 10), (5, 8), (0, 1), (199, 200))


def _t(epoch: int, epochs: int, t_min: float = 1e-3, t_max: float = 10.0) -> float:
    return 10 ** (math.log10(t_min) + (math.log10(t_max) - math.log10(t_min)) * epoch / epochs)


def _grad(x, t, k):
    return k * t * (1 - torch.tanh(t * x) ** 2)


@self_check
def check_1(ede_grad) -> str:
    """Check ``ede_grad(x, epoch, epochs)``: EDE's derivative k t (1 - tanh^2(t x)) with t from 1e-3 to 10 on a
    log scale (t = 10^(-3 + 4 epoch / epochs)) and k = max(1 / t, 1)."""
    label = _label(1)
    expect(callable(ede_grad), label, "pass your function itself, e.g. check_1(ede_grad)")
    for epoch, epochs in _CASES:
        got = ede_grad(_X.clone(), epoch, epochs)
        expect_tensor_like(got, _X, label, f"ede_grad(x, {epoch}, {epochs})")
        got = got.detach().double()
        t = _t(epoch, epochs)
        if torch.allclose(got, _grad(_X, t, max(1 / t, 1.0)), rtol=1e-4, atol=1e-6):
            continue
        if torch.allclose(got, _grad(_X, t, 1.0), rtol=1e-4, atol=1e-6):
            fail(label, "k is missing: k = max(1 / t, 1), so that the early gradient k t (1 - tanh^2) is about 1 "
                        "(the identity's), not t.")
        if torch.allclose(got, torch.tanh(t * _X) * max(1 / t, 1.0), rtol=1e-4, atol=1e-6):
            fail(label, "that is g(x) = k tanh(t x) itself; the backward pass uses its derivative k t (1 - tanh^2(t x)).")
        t_lin = 1e-3 + (10 - 1e-3) * epoch / epochs
        if torch.allclose(got, _grad(_X, t_lin, max(1 / t_lin, 1.0)), rtol=1e-4, atol=1e-6):
            fail(label, "t grows on a log scale (10^(log10 T_min + (log10 T_max - log10 T_min) epoch / epochs)), "
                        "not linearly.")
        t_end = _t(epoch + 1, epochs)
        if torch.allclose(got, _grad(_X, t_end, max(1 / t_end, 1.0)), rtol=1e-4, atol=1e-6):
            fail(label, "off by one epoch: epoch 0 uses t = T_min, and the last epoch stops one step short of T_max.")
        fail(label, f"at epoch {epoch} of {epochs} your gradient differs from k t (1 - tanh^2(t x)) with "
                    f"t = {t:.4g}, k = {max(1 / t, 1.0):.4g}.")
    return passed(label, "EDE starts as the identity's gradient (t = 0.001, k = 1000) and ends as a bump of height "
                         "about 4 (t = 10^0.6 in the last of 10 epochs)")


# --- exercise 2: where the bit-shift scale changes --------------------------------------------------------------

@self_check
def check_2(switch_point) -> str:
    """Check ``switch_point()``: the mean |w_std| above which Libra-PB's scale 2^round(log2 mean|w_std|) becomes 2
    instead of 1 (sqrt 2 = 1.41421...)."""
    label = _label(2)
    expect(callable(switch_point), label, "pass your function itself, e.g. check_2(switch_point)")
    value = as_number(switch_point(), label, "switch_point()")
    if math.isclose(value, math.sqrt(2), rel_tol=1e-4):
        return passed(label, "the scale rounds in the log domain: it switches at sqrt(2), the geometric mean of 1 "
                             "and 2, not at their arithmetic mean 1.5")
    if math.isclose(value, 1.5, rel_tol=1e-4):
        fail(label, "1.5 would be the switch if mean |w_std| itself were rounded; here log2 of it is rounded, so "
                    "the switch is where log2(m) = 0.5.")
    if math.isclose(value, 0.5, rel_tol=1e-4):
        fail(label, "0.5 is log2 of the switch point; the question asks for the value of mean |w_std| itself.")
    if math.isclose(value, 1 / math.sqrt(2), rel_tol=1e-4):
        fail(label, "that is the switch from 1/2 to 1; the switch from 1 to 2 is where log2(m) = +0.5.")
    fail(label, "round(log2 m) changes from 0 to 1 where log2 m = 0.5: solve for m.")
