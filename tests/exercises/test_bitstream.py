"""The self-checks of the BitStream chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.exercises import bitstream as ex
from qteach.papers import bitstream as bs

LABEL = "ex-bitstream-{}"


# --- exercise 1 -----------------------------------------------------------------------------------------------

def min_pool(packed):
    windows = packed.unfold(1, 2, 2).unfold(2, 2, 2)           # (N, H/2, W/2, B, 2, 2)
    return windows[..., 0, 0] | windows[..., 0, 1] | windows[..., 1, 0] | windows[..., 1, 1]


def min_pool_de_morgan(packed):
    # the min in the 1 = -1 encoding is the max in the 1 = +1 encoding: the library's OR version
    return bs.packed_max_pool2d(packed, 2, encoding="plus")


def test_check_1_accepts_solutions(capsys):
    ex.check_1(min_pool)
    ex.check_1(min_pool_de_morgan)
    assert capsys.readouterr().out.count(LABEL.format(1)) == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda p: bs.packed_max_pool2d(p, 2), "OR"),
    (lambda p: p[:, ::2, ::2], "differ"),
    (lambda p: p.unfold(3, 1, 1)[..., 0], "shape"),
    (lambda p: bs.packed_max_pool2d(p, 2, encoding="plus").int(), "uint8"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_stub():
    def stub(packed):
        raise NotImplementedError("Exercise 1")

    assert "not attempted" in ex.check_1(stub)


def test_min_pool_solution_is_min():
    x = torch.sign(torch.randn(1, 4, 4, 8)) + 0.0
    x[x == 0] = 1
    assert torch.equal(min_pool(bitops.pack_bits(x)),
                       bitops.pack_bits(-F.max_pool2d(-x.movedim(-1, 1), 2).movedim(1, -1)))


# --- exercise 2 -----------------------------------------------------------------------------------------------

def largest_side(flow, channels, cache_bytes):
    side = 0
    while True:
        parts = bs.flow_bytes(channels, side + 1, side + 1, channels, 3, 1, 1)[flow]
        if parts["input"] + parts["buffer"] + parts["output"] > cache_bytes:
            return side
        side += 1


def largest_side_search(flow, channels, cache_bytes):
    fits = [h for h in range(1, 2000)
            if sum(v for k, v in bs.flow_bytes(channels, h, h, channels, 3, 1, 1)[flow].items() if k != "weights")
            <= cache_bytes]
    return max(fits, default=0)


def test_check_2_accepts_solutions(capsys):
    ex.check_2(largest_side)
    ex.check_2(largest_side_search)
    assert capsys.readouterr().out.count(LABEL.format(2)) == 2


def _with_weights(flow, channels, cache_bytes):
    side = 0
    while sum(bs.flow_bytes(channels, side + 1, side + 1, channels, 3, 1, 1)[flow].values()) <= cache_bytes:
        side += 1
    return side


@pytest.mark.parametrize("wrong, hint", [
    (lambda f, c, b: largest_side(f, c, b) + 1, "off by one"),
    (_with_weights, "weights"),
    (lambda f, c, b: float(largest_side(f, c, b)), "int"),
    (lambda f, c, b: 8, "add input, buffer and output"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
