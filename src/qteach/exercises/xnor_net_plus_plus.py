"""Self-checks of the XNOR-Net++ chapter (notebooks/2019/xnor_net_plus_plus.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "xnor_net_plus_plus"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _vectors(seed: int, o: int, h: int, w: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(o, generator=g), torch.randn(h, generator=g), torch.randn(w, generator=g)


# --- exercise 1: the rank-1 Gamma ------------------------------------------------------------------------------


_SIZES = ((3, 4, 5), (1, 2, 2), (6, 1, 3), (2, 7, 7))


@self_check
def check_1(rank1_gamma) -> str:
    """Check ``rank1_gamma(alpha, beta, gamma)``: the (o, h, w) tensor alpha ⊗ beta ⊗ gamma."""
    label = _label(1)
    expect(callable(rank1_gamma), label, "pass your function itself, e.g. check_1(rank1_gamma)")
    for seed, (o, h, w) in enumerate(_SIZES):
        a, b, c = _vectors(seed, o, h, w)
        got = rank1_gamma(a.clone(), b.clone(), c.clone())
        expect_type(got, torch.Tensor, label, "rank1_gamma(alpha, beta, gamma)")
        expected = a[:, None, None] * b[None, :, None] * c[None, None, :]
        if got.shape == (o, w, h) and h != w:
            fail(label, f"the shape is (o, w, h) = {tuple(got.shape)}: beta runs along the rows (h), gamma along "
                        "the columns (w), so Gamma[k, i, j] = alpha[k] * beta[i] * gamma[j].")
        expect(got.shape == (o, h, w), label, f"Gamma should have the shape (o, h, w) = {(o, h, w)}, got "
                                              f"{tuple(got.shape)}")
        if torch.allclose(got, a[:, None, None] + b[None, :, None] + c[None, None, :], atol=1e-5):
            fail(label, "that is a sum alpha + beta + gamma: the outer product multiplies the three factors.")
        if h == w and torch.allclose(got, a[:, None, None] * c[None, :, None] * b[None, None, :], atol=1e-5):
            fail(label, "beta and gamma are swapped: beta indexes the rows (h), gamma the columns (w).")
        expect(torch.allclose(got, expected, rtol=1e-5, atol=1e-6), label,
               "Gamma[k, i, j] should be alpha[k] * beta[i] * gamma[j] (an outer product: broadcast the three "
               "vectors to (o, 1, 1), (1, h, 1) and (1, 1, w), or use torch.einsum('o,h,w->ohw', ...)).")
    return passed(label, "o + h + w learned numbers give all o x h x w factors")


# --- exercise 2: the best per-channel Gamma in closed form ----------------------------------------------------


def _best_channel(target, counts):
    return (target * counts).sum(dim=(0, 2, 3)) / (counts * counts).sum(dim=(0, 2, 3))


def _case(seed: int):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(-9, 10, (8, 3, 4, 4), generator=g).float()
    counts[counts == 0] = 1.0
    target = counts * torch.tensor([0.5, 2.0, 1.0]).reshape(1, 3, 1, 1) + torch.randn(8, 3, 4, 4, generator=g) * 3
    return target, counts


@self_check
def check_2(best_channel_gamma) -> str:
    """Check ``best_channel_gamma(target, counts)``: the least-squares Gamma, one factor per output channel."""
    label = _label(2)
    expect(callable(best_channel_gamma), label, "pass your function itself, e.g. check_2(best_channel_gamma)")
    for seed in (0, 1, 2):
        target, counts = _case(seed)
        got = best_channel_gamma(target.clone(), counts.clone())
        expect_type(got, torch.Tensor, label, "best_channel_gamma(target, counts)")
        got = got.detach().reshape(-1)
        expected = _best_channel(target, counts)
        expect(got.numel() == 3, label, f"there is one factor per output channel (3 here), got {got.numel()} "
                                        "numbers: sum over the batch and the positions (dims 0, 2, 3), not dim 1.")
        if torch.allclose(got, (target / counts).mean(dim=(0, 2, 3)), rtol=1e-4):
            fail(label, "the mean of target / counts is not the least-squares factor: it weights every position "
                        "alike and blows up where counts are small. Minimise sum (t - g c)^2: g = sum(t c) / "
                        "sum(c^2).")
        if torch.allclose(got, target.abs().mean(dim=(0, 2, 3)) / counts.abs().mean(dim=(0, 2, 3)), rtol=1e-4):
            fail(label, "a ratio of mean magnitudes ignores the signs: set the derivative of sum (t - g c)^2 to "
                        "zero, g = sum(t c) / sum(c^2).")
        expect(torch.allclose(got, expected, rtol=1e-4, atol=1e-6), label,
               "set the derivative of sum over (n, i, j) of (target - g * counts)^2 to zero for each channel: "
               "g = sum(target * counts) / sum(counts^2), summed over dims 0, 2 and 3.")
    return passed(label, "Gamma_o = <target, counts> / <counts, counts> per channel, the projection of the real "
                         "output on the binary one")
