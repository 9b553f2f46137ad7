"""The self-checks of the PXNOR chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import binary
from qteach.exercises import pxnor as ex


def flip_fraction(level):
    steps = 1000
    h = level / steps
    phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))
    return sum(phi((i + 0.5) * h) - 0.5 for i in range(steps)) * h / level


def flip_fraction_sampled(level):
    """Another correct answer: a Monte-Carlo estimate."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1_000_000, generator=g)
    n = (torch.rand(1_000_000, generator=g) * 2 - 1) * level
    return (binary.sign(x + n) != binary.sign(x)).float().mean()


def test_check_1_passes(capsys):
    ex.check_1(flip_fraction)
    assert "✅ ex-pxnor-1 passed" in capsys.readouterr().out
    ex.check_1(flip_fraction_sampled)


@pytest.mark.parametrize("wrong,hint", [
    (lambda lv: 2 * flip_fraction(lv), "twice too large"),
    (lambda lv: flip_fraction(lv * math.sqrt(3)), "uniform on"),
    (lambda lv: 1.5, "between 0 and 1"),
    (lambda lv: lv / 4, "average over n"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def _s(t):
    return t.reshape(-1, 1, 1)


def binarize_folded(x, noise, mean, var, gamma, beta, eps):
    t = _s(mean) - _s(beta / gamma) * torch.sqrt(_s(var) + eps) - noise
    up = torch.where(x >= t, 1.0, -1.0).to(x.dtype)
    down = torch.where(x <= t, 1.0, -1.0).to(x.dtype)
    return torch.where(_s(gamma) > 0, up, down)


def binarize_scaled(x, noise, mean, var, gamma, beta, eps):
    """Another correct answer: compare gamma * (x + N - T0) with 0, never dividing by gamma."""
    h = _s(gamma) * (x + noise - _s(mean)) + _s(beta) * torch.sqrt(_s(var) + eps)
    return binary.sign(h)


def test_check_2_passes(capsys):
    ex.check_2(binarize_folded)
    assert "✅ ex-pxnor-2 passed" in capsys.readouterr().out
    ex.check_2(binarize_scaled)


def no_flip(x, noise, mean, var, gamma, beta, eps):
    t = _s(mean) - _s(beta / gamma) * torch.sqrt(_s(var) + eps) - noise
    return torch.where(x >= t, 1.0, -1.0).to(x.dtype)


def no_noise(x, noise, mean, var, gamma, beta, eps):
    return binarize_folded(x, torch.zeros_like(noise), mean, var, gamma, beta, eps)


@pytest.mark.parametrize("wrong,hint", [
    (no_flip, "gamma < 0"),
    (no_noise, "does not depend on the noise"),
    (lambda x, *rest: torch.zeros_like(x), "only \\+1 and -1"),
    (lambda x, noise, *rest: binary.sign(x + noise), "bits differ"),
    (lambda x, *rest: x[0], "one bit per input"),
    (lambda x, *rest: 1, "return a tensor"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
