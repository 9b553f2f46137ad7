"""Self-checks of the MoBiNet chapter (notebooks/2020/mobinet.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach import binary
from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "mobinet"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: a binary depth-wise convolution of 1-D signals, without groups ------------------------------


def _reference_1(x, w):
    return F.conv1d(binary.sign(x), binary.sign(w).unsqueeze(1), padding=w.shape[1] // 2, groups=x.shape[1])


_CASES_1 = ((2, 3, 9, 5), (1, 1, 6, 3), (3, 7, 4, 3), (2, 16, 20, 5))


@self_check
def check_1(depthwise_sign_conv) -> str:
    """Check ``depthwise_sign_conv(x, w)``: x (N, C, L), w (C, k), k odd; sign(x) filtered channel by channel with
    sign(w), zero padding k // 2 ("same" length)."""
    label = _label(1)
    expect(callable(depthwise_sign_conv), label, "pass your function itself, e.g. check_1(depthwise_sign_conv)")
    for seed, (n, c, length, k) in enumerate(_CASES_1):
        g = torch.Generator().manual_seed(seed)
        x, w = torch.randn(n, c, length, generator=g), torch.randn(c, k, generator=g)
        got = depthwise_sign_conv(x.clone(), w.clone())
        expect_type(got, torch.Tensor, label, "depthwise_sign_conv(x, w)")
        expected = _reference_1(x, w)
        if tuple(got.shape) == (n, c, length - k + 1):
            fail(label, f"the output has {length - k + 1} samples instead of {length}: pad the signal with k // 2 "
                        "zeros on each side (the sign of a padded zero is not used: padding contributes 0).")
        expect(tuple(got.shape) == (n, c, length), label, f"the output should have the shape (N, C, L) = "
                                                          f"{(n, c, length)}, got {tuple(got.shape)}")
        got = got.detach().float()
        if torch.allclose(got, F.conv1d(x, binary.sign(w).unsqueeze(1), padding=k // 2, groups=c), atol=1e-4):
            fail(label, "the input is not binarized: take sign(x) before the convolution (MoBiNet's activations "
                        "are binary too).")
        if c > 1 and torch.allclose(got, expected.sum(dim=1, keepdim=True).expand_as(got), atol=1e-4):
            fail(label, "each output channel sums over all channels: a depth-wise filter sees its own channel only.")
        if torch.allclose(got, expected.flip(-1), atol=1e-4) or torch.allclose(
                got, F.conv1d(binary.sign(x), binary.sign(w).flip(-1).unsqueeze(1), padding=k // 2, groups=c),
                atol=1e-4) and not torch.allclose(got, expected, atol=1e-4):
            fail(label, "the filter is flipped: PyTorch's convolution is a correlation, y[i] = sum_t x[i + t - k // 2]"
                        " w[t].")
        expect(torch.allclose(got, expected, atol=1e-4), label,
               "y[n, c, i] should be sum_t sign(x[n, c, i + t - k // 2]) sign(w[c, t]), zero outside the signal "
               "(e.g. torch.nn.functional.conv1d(sign(x), sign(w)[:, None], padding=k // 2, groups=C)).")
    return passed(label, "one filter per channel: k binary products per output, not C k")


# --- exercise 2: how many values a binary output can take ----------------------------------------------------


def _levels(channels: int, taps: int, depthwise: bool) -> int:
    return (taps if depthwise else channels * taps) + 1


_CASES_2 = ((16, 5, True), (16, 5, False), (1, 9, False), (64, 9, True), (64, 9, False), (3, 1, False))


@self_check
def check_2(output_levels) -> str:
    """Check ``output_levels(channels, taps, depthwise)``: the number of values an interior output of a binary
    convolution (+-1 inputs and weights, ``taps`` = kh kw) can take: n + 1 for n = taps (depth-wise) or
    channels x taps (standard)."""
    label = _label(2)
    expect(callable(output_levels), label, "pass your function itself, e.g. check_2(output_levels)")
    for channels, taps, depthwise in _CASES_2:
        got = output_levels(channels, taps, depthwise)
        n = taps if depthwise else channels * taps
        expected = n + 1
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        expect(isinstance(got, int) or (isinstance(got, float) and float(got).is_integer()), label,
               f"return a whole number of values, got {got!r}")
        got = int(got)
        if got == expected:
            continue
        if got == 2 * n + 1:
            fail(label, f"{got} counts every integer from -{n} to {n}, but a sum of {n} terms +-1 has the parity "
                        f"of {n}: it moves in steps of 2.")
        if got == n:
            fail(label, f"off by one: the values -{n}, -{n} + 2, ..., {n} are {n} + 1 numbers.")
        if channels > 1 and got == (channels * taps + 1 if depthwise else taps + 1):
            fail(label, "depth-wise and standard are swapped: a depth-wise filter sums taps terms, a standard one "
                        "channels x taps.")
        fail(label, f"for channels={channels}, taps={taps}, depthwise={depthwise}: a sum of n = "
                    f"{n} terms +-1 takes the values -n, -n + 2, ..., n.")
    return passed(label, "a binary depth-wise output has C times fewer levels than a standard one")
