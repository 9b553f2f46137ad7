"""Self-checks of the MeliusNet chapter (notebooks/2020/meliusnet.ipynb).

Each check calls the student's function, compares it with the chapter's mechanism, and either prints the success
line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import meliusnet

_SLUG = "meliusnet"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the improvement block's addition as a full-width sum ------------------------------------------

_CASES = ((2, 6, 2, 5), (1, 3, 3, 4), (3, 9, 1, 2), (2, 16, 8, 10))


@self_check
def check_1(improve_by_padding) -> str:
    """Check ``improve_by_padding(x, y)``: ``x`` plus ``y`` zero-padded in front to the channels of ``x``."""
    label = _label(1)
    expect(callable(improve_by_padding), label, "pass your function itself, e.g. check_1(improve_by_padding)")
    for seed, (n, channels, k, length) in enumerate(_CASES):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, channels, 1, length, generator=g)
        y = torch.randn(n, k, 1, length, generator=g)
        got = improve_by_padding(x.clone(), y.clone())
        expect_type(got, torch.Tensor, label, "improve_by_padding(x, y)")
        expect(got.shape == x.shape, label, f"the result keeps the shape of x, {tuple(x.shape)}; got "
                                            f"{tuple(got.shape)} (pad y with zeros, do not concatenate it)")
        expected = meliusnet.improve_last(x, y)
        if k < channels and torch.allclose(got[:, :k], x[:, :k] + y, atol=1e-6):
            fail(label, "y was added to the FIRST k channels: the improvement block adds it to the last k "
                        "(the ones the dense block has just made); put the zeros in front of y.")
        expect(torch.allclose(got, expected, atol=1e-6), label,
               "the result should be x + [0, ..., 0, y]: zeros for the first c - k channels, y for the last k "
               "(torch.nn.functional.pad over the channel axis, or torch.cat with torch.zeros).")
    return passed(label, "a sliced addition is a full-width addition of a zero-padded y")


# --- exercise 2: channels and binary weights of a stage ---------------------------------------------------------

_STAGES = ((8, 8, "DI", (1, 5)), (64, 64, "DI", (3, 3)), (8, 8, "DD", (1, 5)), (10, 4, "DIDI", (1, 3)),
           (5, 3, "I", (3, 3)), (32, 16, "DDD", (1, 1)))


@self_check
def check_2(stage_cost) -> str:
    """Check ``stage_cost(c, k, pattern, kernel)``: ``(out_channels, binary_weights)`` of a stage."""
    label = _label(2)
    expect(callable(stage_cost), label, "pass your function itself, e.g. check_2(stage_cost)")
    for c, k, pattern, kernel in _STAGES:
        got = stage_cost(c, k, pattern, kernel)
        expect(isinstance(got, (tuple, list)) and len(got) == 2, label,
               "return a pair (out_channels, binary_weights)")
        channels, weights = (int(v) for v in got)
        want_channels = c + k * pattern.count("D")
        want = meliusnet.stage_binary_weights(c, pattern, k, kernel)
        if channels == c + k * len(pattern) and "I" in pattern:
            fail(label, f"for {pattern!r} an improvement block does not add channels: it adds its k outputs "
                        "to the last k channels.")
        expect(channels == want_channels, label, f"c={c}, k={k}, {pattern!r}: {want_channels} channels expected, "
                                                 f"got {channels} (each D adds k channels, each I none)")
        if weights == want:
            continue
        kh, kw = kernel
        if weights * kh * kw == want and kh * kw > 1:
            fail(label, "the kernel is missing: a block on c channels has c * k * kh * kw binary weights.")
        if "I" in pattern and weights == meliusnet.stage_binary_weights(c, pattern.replace("I", "D"), k, kernel):
            fail(label, "the count is right for dense blocks only; after an I the channels do not grow, so the "
                        "next block reads as many channels as the I did.")
        expect(weights == want, label, f"c={c}, k={k}, {pattern!r}, kernel {kernel}: {want} binary weights "
                                       f"expected, got {weights}. Each block reads ALL current channels (c grows "
                                       "after each D) and writes k.")
    return passed(label, "a D adds k channels, an I costs as much as a D on the same input and adds none")
