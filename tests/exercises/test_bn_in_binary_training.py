"""The self-checks of the batch-norm-in-binary-training chapter: solutions pass, plausible mistakes fail with a
hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import bn_in_binary_training as ex
from qteach.papers import bn_in_binary_training as bn

LABEL = "ex-bn_in_binary_training-{}"


def _p(n, clip):
    return 1.0 if clip is None else sum(math.comb(n, k) for k in range(n + 1) if abs(2 * k - n) <= clip) / 2 ** n


def layers_to_millionfold(n, clip):
    g = math.sqrt(n * _p(n, clip))
    return math.floor(math.log(1e6) / math.log(g)) + 1


def layers_to_millionfold_loop(n, clip):
    """Another correct answer: the chapter's module and a loop, returned as a tensor."""
    g, norm, layers = math.sqrt(bn.backward_gain_squared(n, clip, False)), 1.0, 0
    while norm <= 1e6:
        norm, layers = norm * g, layers + 1
    return torch.tensor(layers)


def test_check_1_passes(capsys):
    ex.check_1(layers_to_millionfold)
    assert "✅ ex-bn_in_binary_training-1 passed" in capsys.readouterr().out
    ex.check_1(layers_to_millionfold_loop)


@pytest.mark.parametrize("wrong,hint", [
    (lambda n, c: math.floor(math.log(1e6) / math.log(n * _p(n, c))) + 1, "SQUARED norm"),
    (lambda n, c: math.floor(math.log(1e6) / math.log(math.sqrt(n))) + 1, "exact probability"),
    (lambda n, c: math.floor(math.log(1e6) / math.log(math.sqrt(n * _p(n, c)))), "off by one"),
    (lambda n, c: 3, "smallest integer L"),
    (lambda n, c: "3", "should be a number"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


def gradient_ratio(clip):
    return math.sqrt(math.erf(clip / math.sqrt(2)))


def gradient_ratio_torch(clip):
    """Another correct answer: the Gaussian CDF of torch, as a 0-d tensor."""
    normal = torch.distributions.Normal(0.0, 1.0)
    return (normal.cdf(torch.tensor(clip)) - normal.cdf(torch.tensor(-clip))).sqrt()


def gradient_ratio_monte_carlo(clip):
    """Another correct answer within the tolerance: a large Monte Carlo estimate."""
    z = torch.randn(4_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return (z.abs() <= clip).double().mean().sqrt().item()


def test_check_2_passes(capsys):
    ex.check_2(gradient_ratio)
    assert "✅ ex-bn_in_binary_training-2 passed" in capsys.readouterr().out
    ex.check_2(gradient_ratio_torch)
    ex.check_2(gradient_ratio_monte_carlo)


@pytest.mark.parametrize("wrong,hint", [
    (lambda c: math.erf(c / math.sqrt(2)), "square root"),
    (lambda c: math.sqrt(1 - math.erf(c / math.sqrt(2))), "not the fraction cut"),
    (lambda c: 1.0, "forward passes are identical"),
    (lambda c: c / 3, "sqrt(erf(clip / sqrt(2)))"),
    (lambda c: [1.0], "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
