"""The self-checks of the chapter on training competitive BNNs from scratch: solutions pass, plausible mistakes
fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import competitive_bnn_from_scratch as ex
from qteach.papers import competitive_bnn_from_scratch as cb

LABEL = "ex-competitive_bnn_from_scratch-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def surviving_fraction(t):
    return math.erf(t / math.sqrt(2))


def surviving_fraction_normal_cdf(t):
    """Another correct answer: 2 Phi(t) - 1 with torch's normal distribution, returned as a tensor."""
    phi = torch.distributions.Normal(0.0, 1.0).cdf(torch.tensor(float(t)))
    return 2 * phi - 1


def surviving_fraction_measured(t):
    """Another correct answer: measured through qactivation's gradient on many normal samples."""
    x = torch.randn(400_000, generator=torch.Generator().manual_seed(0)).requires_grad_()
    cb.qactivation(x, t).sum().backward()
    return x.grad.mean().item()


def test_check_1_passes(capsys):
    ex.check_1(surviving_fraction)
    assert "✅ ex-competitive_bnn_from_scratch-1 passed" in capsys.readouterr().out
    ex.check_1(surviving_fraction_normal_cdf)
    ex.check_1(surviving_fraction_measured)


@pytest.mark.parametrize("wrong,hint", [
    (lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))), "one side only"),
    (lambda t: 1 - math.erf(t / math.sqrt(2)), "cancelled fraction"),
    (lambda t: math.erf(t), "divide t by sqrt(2)"),
    (lambda t: t, "between 0 and 1"),
    (lambda t: min(t / 3, 1.0), "integrate the standard normal"),
    (lambda t: "0.68", "should be a"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def dense_macs(width, growth, blocks):
    return sum((width + i * growth) * growth for i in range(blocks))


def dense_macs_closed_form(width, growth, blocks):
    """Another correct answer: the arithmetic series in closed form, as a float."""
    return float(growth * (blocks * width + growth * blocks * (blocks - 1) / 2))


def dense_macs_from_model(width, growth, blocks):
    """Another correct answer: build the network and count."""
    return cb.binary_macs(cb.binary_mlp(8, width=width, blocks=blocks, shortcut="dense", growth=growth))


def test_check_2_passes(capsys):
    ex.check_2(dense_macs)
    assert "✅ ex-competitive_bnn_from_scratch-2 passed" in capsys.readouterr().out
    ex.check_2(dense_macs_closed_form)
    ex.check_2(dense_macs_from_model)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, g, b: w * g * b, "every block reads all the features"),
    (lambda w, g, b: dense_macs(w, g, b + 1), "off by one block"),
    (lambda w, g, b: sum((w + i * g) * g for i in range(1, b + 1)), "off by one block"),
    (lambda w, g, b: sum((w + (i + 1) * g) * g for i in range(b)), "output width"),
    (lambda w, g, b: w * w * b, "sum over the blocks"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
