"""Self-checks of the chapter "BitStream: Efficient Computing Architecture for ... Binary Neural Networks on CPUs".

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.bitstream` and
PyTorch, and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach.binary import sign
from qteach.bitops import pack_bits
from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import bitstream as bs

_SLUG = "bitstream"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: min-pooling on packed bits -----------------------------------------------------------------------

def _maps_1():
    g = torch.Generator().manual_seed(11)
    maps = [sign(torch.randn(*s, generator=g)) for s in ((1, 4, 4, 8), (2, 6, 8, 3), (1, 2, 2, 70), (1, 5, 7, 16))]
    maps.append(-torch.ones(1, 2, 4, 9))                       # all -1
    maps.append(torch.ones(1, 4, 2, 9))                        # all +1
    return maps


@self_check
def check_1(min_pool) -> str:
    """Check ``min_pool(packed)``: 2x2 min-pooling (stride 2) of pack_bits-encoded maps (1 = -1), on the bits."""
    label = _label(1)
    expect(callable(min_pool), label, "pass your function itself, e.g. check_1(min_pool)")
    for x in _maps_1():
        packed = pack_bits(x)
        got = min_pool(packed.clone())
        expect_type(got, torch.Tensor, label, f"min_pool(packed) for a map of shape {tuple(packed.shape)}")
        expected = pack_bits(-F.max_pool2d(-x.movedim(-1, 1), 2).movedim(1, -1))
        if got.shape != expected.shape:
            fail(label, f"expected shape {tuple(expected.shape)} (N, H / 2, W / 2, bytes), got {tuple(got.shape)}: "
                        "pool 2x2 windows with stride 2 over the axes H and W (dims 1 and 2), not over the bytes.")
        expect(got.dtype == torch.uint8, label, f"return packed uint8 bytes, got {got.dtype}")
        if not torch.equal(got, expected):
            hint = "the bytes differ from pack_bits of the min-pooled map."
            if torch.equal(got, bs.packed_max_pool2d(packed, 2)):
                hint += (" You computed the max (AND of bits that mean -1). The min is -1 as soon as one value is "
                         "-1: with 1 = -1 that is an OR.")
            fail(label, hint)
    return passed(label, "your min-pooling on packed bits equals -max_pool2d(-x) on 6 maps")


# --- exercise 2: what fits in a cache ------------------------------------------------------------------------------

_CASES_2 = [("float im2col", 64, 256 * 1024), ("bitstream", 64, 256 * 1024), ("binary im2col", 64, 256 * 1024),
            ("float im2col", 256, 1024 * 1024), ("bitstream", 256, 32 * 1024), ("float im2col", 512, 64 * 1024),
            ("bitstream", 3, 1024), ("binary im2col", 128, 32 * 1024)]


def _activation_bytes(flow, channels, side, weights=False):
    parts = bs.flow_bytes(channels, side, side, channels, 3, 1, 1)[flow]
    return parts["input"] + parts["buffer"] + parts["output"] + (parts["weights"] if weights else 0)


def largest_side_reference(flow: str, channels: int, cache_bytes: int, weights: bool = False) -> int:
    """The largest square side H whose activations (input + buffer + output) fit in ``cache_bytes``; 0 if none."""
    side = 0
    while _activation_bytes(flow, channels, side + 1, weights) <= cache_bytes:
        side += 1
    return side


@self_check
def check_2(largest_side) -> str:
    """Check ``largest_side(flow, channels, cache_bytes)`` against the memory model of :func:`bs.flow_bytes`."""
    label = _label(2)
    expect(callable(largest_side), label, "pass your function itself, e.g. check_2(largest_side)")
    for flow, channels, cache in _CASES_2:
        got = largest_side(flow, channels, cache)
        if hasattr(got, "item"):
            got = got.item()
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"largest_side should return an int (a side in pixels), got {type(got).__name__}")
        expected = largest_side_reference(flow, channels, cache)
        if got == expected:
            continue
        hint = "add input, buffer and output of flow_bytes(channels, H, H, channels, 3, 1, 1)[flow]."
        if got == expected + 1:
            hint = "off by one: return the last side that fits, not the first that does not."
        elif got == largest_side_reference(flow, channels, cache, weights=True):
            hint = "count the activations only (input + buffer + output): the weights are stored elsewhere."
        fail(label, f"largest_side({flow!r}, {channels}, {cache}) = {got}, expected {expected}. {hint}")
    return passed(label, f"your cache sizes match the memory model on {len(_CASES_2)} layers")
