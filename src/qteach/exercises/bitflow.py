"""Self-checks of the chapter "BitFlow: Exploiting Vector Parallelism for Binary Neural Networks on CPU" (Hu et al.).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.bitflow` and
:func:`qteach.bitops.pack_bits`, and either prints the success line or raises ``AssertionError`` with a hint.
"""

from __future__ import annotations

import torch

from qteach.bitops import pack_bits
from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import bitflow as bf

_SLUG = "bitflow"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the pressed (channel-packed) image ---------------------------------------------------------------

def _inputs_1():
    g = torch.Generator().manual_seed(1)
    shapes = [(1, 8, 2, 3), (2, 3, 4, 4), (1, 64, 3, 2), (1, 70, 2, 2), (3, 1, 5, 1)]
    xs = [torch.randn(*s, generator=g) for s in shapes]
    xs.append(torch.tensor([[[[0.0, -1.0]], [[-2.0, 0.0]], [[3.0, -0.5]]]]))   # zeros are +1 (bit 0)
    return xs


@self_check
def check_1(pressed) -> str:
    """Check ``pressed(x)``: the NHWC image packed along channels, uint8 (N, H, W, ceil(C / 8))."""
    label = _label(1)
    expect(callable(pressed), label, "pass your function itself, e.g. check_1(pressed)")
    for x in _inputs_1():
        got = pressed(x.clone())
        expect_type(got, torch.Tensor, label, f"pressed(x) for x of shape {tuple(x.shape)}")
        expected = pack_bits(x.movedim(1, -1))
        n, c, h, w = x.shape
        if got.shape != expected.shape:
            hint = f"expected shape {tuple(expected.shape)} = (N, H, W, ceil(C / 8)), got {tuple(got.shape)}."
            if got.shape == pack_bits(x).shape:
                hint += (" You packed along the last axis of NCHW, the width: that is spatial packing. Move the "
                         "channels last first (x.movedim(1, -1) or x.permute(0, 2, 3, 1)).")
            elif got.shape == (n, h, w, c):
                hint += " The layout is right but the signs are not packed: pass it through bitops.pack_bits."
            elif got.shape == (n, w, h, expected.shape[-1]):
                hint += " The axes H and W are swapped: (N, H, W, C) keeps H before W, as x.movedim(1, -1) does."
            fail(label, hint)
        expect(got.dtype == torch.uint8, label, f"the packed image should be uint8 bytes, got {got.dtype}")
        if not torch.equal(got, expected):
            hint = "the bytes differ from bitops.pack_bits(x.movedim(1, -1))."
            if torch.equal(got, pack_bits(-x.movedim(1, -1))) or torch.equal(got, 255 - expected):
                hint += " A set bit means -1 (x < 0) and a clear bit +1: your bits are inverted."
            fail(label, hint)
    return passed(label, "your pressed layout matches the channel packing of qteach.bitops on 6 images")


# --- exercise 2: which layout for which layer? -------------------------------------------------------------------

_CASES_2 = [(3, 3), (1, 3), (8, 3), (9, 3), (10, 3), (64, 3), (65, 3), (512, 3), (3, 1), (64, 1), (1, 1),
            (3, 5), (25, 5), (26, 5), (24, 5), (3, 7), (48, 7), (49, 7), (64, 11), (128, 11), (3, (3, 1)),
            (2, (1, 3)), (4, (1, 3))]


def better_layout_reference(channels: int, kernel_size) -> str:
    """The layout with fewer words per output; ``"channel"`` on a tie."""
    channel = bf.words_per_output(channels, kernel_size, "channel")
    spatial = bf.words_per_output(channels, kernel_size, "spatial")
    return "spatial" if spatial < channel else "channel"


@self_check
def check_2(better_layout) -> str:
    """Check ``better_layout(channels, kernel_size)``: the layout with fewer 64-bit words per output."""
    label = _label(2)
    expect(callable(better_layout), label, "pass your function itself, e.g. check_2(better_layout)")
    for channels, kernel in _CASES_2:
        got = better_layout(channels, kernel)
        expect(got in ("channel", "spatial"), label,
               f"better_layout({channels}, {kernel!r}) should return 'channel' or 'spatial', got {got!r}")
        expected = better_layout_reference(channels, kernel)
        if got != expected:
            words = {lay: bf.words_per_output(channels, kernel, lay) for lay in bf.LAYOUTS}
            hint = (f"channel packing needs kh * kw * ceil(C / 64) = {words['channel']} words and spatial "
                    f"packing C * ceil(kh * kw / 64) = {words['spatial']}.")
            if words["channel"] == words["spatial"]:
                hint += " On a tie the answer is 'channel' (the layout the rest of the network uses)."
            elif channels < 64 and got == "channel":
                hint += (" With few channels a pixel fills a small part of a word: count the ceilings, do not "
                         "compare C with kh * kw only by size.")
            fail(label, f"better_layout({channels}, {kernel!r}) = {got!r}, expected {expected!r}. {hint}")
    return passed(label, f"your choice of layout has the fewest words on all {len(_CASES_2)} layers")
