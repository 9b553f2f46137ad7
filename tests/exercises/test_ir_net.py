"""The self-checks of the IR-Net chapter: solutions pass, other correct answers pass, plausible mistakes fail with
a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import ir_net as ex
from qteach.papers import ir_net as ir

LABEL = "ex-ir_net-{}"


def ede_grad(x, epoch, epochs):
    t, k = ir.ede_schedule(epoch, epochs)
    return ir.ede_derivative(x, k, t)


def ede_grad_by_autograd(x, epoch, epochs):
    """Another correct answer: differentiate k tanh(t x) with autograd."""
    t = 10 ** (-3 + 4 * epoch / epochs)
    k = max(1 / t, 1)
    x = x.clone().requires_grad_()
    (k * torch.tanh(t * x)).sum().backward()
    return x.grad


def test_check_1_passes(capsys):
    ex.check_1(ede_grad)
    assert "✅ ex-ir_net-1 passed" in capsys.readouterr().out
    ex.check_1(ede_grad_by_autograd)


def _t(epoch, epochs):
    return 10 ** (-3 + 4 * epoch / epochs)


@pytest.mark.parametrize("wrong,hint", [
    (lambda x, e, n: ir.ede_derivative(x, 1.0, _t(e, n)), "k is missing"),
    (lambda x, e, n: torch.tanh(_t(e, n) * x) * max(1 / _t(e, n), 1), "derivative"),
    (lambda x, e, n: ede_grad(x, 0, 1) if n == 1 else ir.ede_derivative(
        x, max(1 / (1e-3 + 9.999 * e / n), 1), 1e-3 + 9.999 * e / n), "log scale"),
    (lambda x, e, n: ir.ede_derivative(x, max(1 / _t(e + 1, n), 1), _t(e + 1, n)), "off by one"),
    (lambda x, e, n: torch.ones_like(x), "differs"),
    (lambda x, e, n: 1.0, "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


def test_check_2_passes(capsys):
    ex.check_2(lambda: math.sqrt(2))
    assert "✅ ex-ir_net-2 passed" in capsys.readouterr().out
    ex.check_2(lambda: torch.tensor(2.0).sqrt())
    ex.check_2(lambda: 2 ** 0.5)


@pytest.mark.parametrize("wrong,hint", [
    (lambda: 1.5, "rounded"),
    (lambda: 0.5, "log2 of the switch"),
    (lambda: 1 / math.sqrt(2), "from 1/2 to 1"),
    (lambda: 2.0, "solve for m"),
    (lambda: "1.41", "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)


def test_the_switch_point_is_where_the_module_switches():
    below = torch.tensor([[1.414, -1.414]])
    above = torch.tensor([[1.4143, -1.4143]])
    assert ir.power_of_two_scale(below).item() == 1.0 and ir.power_of_two_scale(above).item() == 2.0
