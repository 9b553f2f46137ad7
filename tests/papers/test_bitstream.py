"""BitStream (ACM MM 2018): memory of the computation flows, max-pool on packed bits, the all-binary layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.papers import bitstream as bs


def _plus_bits(x):
    """Pack with 1 = +1: the complement of pack_bits on the real channels, 0 on the padding bits."""
    c = x.shape[-1]
    valid = bitops.pack_bits(-torch.ones(c))                 # 1 on the c real bit positions
    return ~bitops.pack_bits(x) & valid


# --- max-pooling on packed bits -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, kernel, stride", [((2, 8, 8, 5), 2, None), ((1, 7, 9, 70), 3, 2),
                                                   ((1, 4, 6, 8), (2, 3), (2, 1)), ((3, 5, 5, 1), 5, None),
                                                   ((1, 9, 4, 130), 2, 1)])
def test_pool_equals_max_pool2d(shape, kernel, stride):
    g = torch.Generator().manual_seed(sum(shape))
    x = sign(torch.randn(*shape, generator=g))                 # (N, H, W, C) of +-1
    reference = F.max_pool2d(x.movedim(-1, 1), kernel, stride).movedim(1, -1)
    minus = bs.packed_max_pool2d(bitops.pack_bits(x), kernel, stride)
    assert torch.equal(minus, bitops.pack_bits(reference))
    assert torch.equal(bitops.unpack_bits(minus, shape[-1]), reference)
    plus = bs.packed_max_pool2d(_plus_bits(x), kernel, stride, encoding="plus")
    assert torch.equal(plus, _plus_bits(reference))


def test_pool_by_hand():
    # one channel, a 2x2 window of bits (1 = -1): all -1 -> -1; one +1 -> +1
    packed = torch.tensor([[[[1], [1]], [[1], [0]]]], dtype=torch.uint8)
    assert bs.packed_max_pool2d(packed, 2).tolist() == [[[[0]]]]
    assert bs.packed_max_pool2d(torch.ones(1, 2, 2, 1, dtype=torch.uint8), 2).tolist() == [[[[1]]]]
    # the same in the +1 encoding: OR of 0, 0, 0, 1 = 1
    assert bs.packed_max_pool2d(1 - packed, 2, encoding="plus").tolist() == [[[[1]]]]
    # bytes: 8 channels at once; AND of 0b1111_0000 and 0b1010_1010 = 0b1010_0000
    two = torch.tensor([[[[0b11110000], [0b10101010]]]], dtype=torch.uint8)
    assert bs.packed_max_pool2d(two, (1, 2)).item() == 0b10100000
    assert bs.packed_max_pool2d(two, (1, 2), encoding="plus").item() == 0b11111010


def test_pool_commutes_with_sign():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2, 6, 8, 8, generator=g)
    assert torch.equal(F.max_pool2d(sign(a), 2), sign(F.max_pool2d(a, 2)))


# --- the all-binary layer -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, c, h, w, o, kernel, padding, pool", [
    (2, 3, 8, 8, 5, (3, 3), 1, 2), (1, 70, 9, 7, 66, (3, 3), 1, 2), (1, 16, 6, 6, 8, (1, 3), (0, 1), 3),
    (1, 8, 5, 5, 8, (3, 3), 0, (1, 2)), (1, 64, 4, 4, 64, (3, 3), 1, 1)])
def test_stream_layer_is_bit_exact(n, c, h, w, o, kernel, padding, pool):
    g = torch.Generator().manual_seed(c + o)
    x, wt = torch.randn(n, c, h, w, generator=g), torch.randn(o, c, *kernel, generator=g)
    tau = torch.randint(-4, 5, (o,), generator=g).float() + 0.5 * (torch.rand(o, generator=g) > 0.5)
    conv = F.conv2d(sign(x), sign(wt), padding=padding)
    reference = F.max_pool2d(sign(conv - tau[:, None, None]), pool)
    got = bs.binary_stream_layer(bitops.pack_bits(x.movedim(1, -1)), c, wt, tau, padding, pool)
    assert got.dtype == torch.uint8
    assert torch.equal(bitops.unpack_bits(got, o).movedim(-1, 1), reference)


def test_stream_layers_chain():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 8, 8, generator=g)
    w1, w2 = torch.randn(32, 16, 3, 3, generator=g), torch.randn(8, 32, 3, 3, generator=g)
    t1, t2 = torch.zeros(32), torch.ones(8)
    h = bs.binary_stream_layer(bitops.pack_bits(x.movedim(1, -1)), 16, w1, t1)
    y = bs.binary_stream_layer(h, 32, w2, t2)
    ref = F.max_pool2d(sign(F.conv2d(sign(x), sign(w1), padding=1)), 2)
    ref = F.max_pool2d(sign(F.conv2d(ref, sign(w2), padding=1) - 1), 2)
    assert torch.equal(bitops.unpack_bits(y, 8).movedim(-1, 1), ref)


# --- memory model ---------------------------------------------------------------------------------------------

def test_flow_bytes_by_hand():
    m = bs.flow_bytes(64, 8, 8, 128, 3, 1, 1)        # 8x8 output, K = 576
    assert m["float im2col"] == {"input": 4 * 64 * 64, "buffer": 4 * 576 * 64, "output": 4 * 128 * 64,
                                 "weights": 4 * 128 * 576}
    assert m["binary im2col"] == {"input": 16384, "buffer": 64 * 72, "output": 32768, "weights": 128 * 72}
    assert m["bitstream"] == {"input": 64 * 8, "buffer": 512, "output": 64 * 16, "weights": 128 * 9 * 8}
    odd = bs.flow_bytes(3, 5, 5, 10, 3)              # 3x3 output, K = 27 -> one word per column
    assert odd["binary im2col"]["buffer"] == 9 * 8 and odd["bitstream"]["input"] == 25 * 8
    assert odd["bitstream"]["output"] == 9 * 8 and odd["float im2col"]["buffer"] == 4 * 27 * 9


def test_flow_bytes_ratios():
    m = bs.flow_bytes(256, 16, 16, 256, 3, 1, 1)
    assert m["float im2col"]["buffer"] / m["float im2col"]["input"] == 9          # im2col copies the input 9 times
    assert m["float im2col"]["input"] / m["bitstream"]["input"] == 32
    assert m["float im2col"]["weights"] / m["bitstream"]["weights"] == 32
    assert set(m) == set(bs.FLOWS)


def test_bad_inputs():
    packed = torch.zeros(1, 4, 4, 1, dtype=torch.uint8)
    with pytest.raises(TypeError, match="packed"):
        bs.packed_max_pool2d(packed.float())
    with pytest.raises(ValueError, match="encoding"):
        bs.packed_max_pool2d(packed, encoding="both")
    with pytest.raises(ValueError, match="kernel_size"):
        bs.packed_max_pool2d(packed, 5)
    with pytest.raises(ValueError, match="stride"):
        bs.packed_max_pool2d(packed, 2, 0)
    w = torch.randn(2, 8, 3, 3)
    with pytest.raises(ValueError, match="pixels"):
        bs.binary_stream_layer(torch.zeros(1, 4, 4, 2, dtype=torch.uint8), 8, w, torch.zeros(2))
    with pytest.raises(ValueError, match="w must"):
        bs.binary_stream_layer(packed, 8, torch.randn(2, 4, 3, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="thresholds"):
        bs.binary_stream_layer(packed, 8, w, torch.zeros(3))
    with pytest.raises(ValueError, match="thresholds"):
        bs.binary_stream_layer(packed, 8, w, torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="channels"):
        bs.binary_stream_layer(packed, 0, w, torch.zeros(2))
    with pytest.raises(ValueError, match="channels"):
        bs.flow_bytes(0, 4, 4, 4)
    with pytest.raises(ValueError, match="kernel_size"):
        bs.flow_bytes(4, 2, 2, 4, 3)
    with pytest.raises(ValueError, match="padding"):
        bs.flow_bytes(4, 4, 4, 4, 3, 1, -1)
