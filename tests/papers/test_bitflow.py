"""BitFlow (Hu et al., 2018): channel vs spatial packing, bit-exact, and the word-count cost model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.papers import bitflow as bf

SHAPES = [  # (n, c, h, w, o, kernel, stride, padding)
    (2, 3, 7, 5, 4, 3, 1, 1),
    (1, 70, 9, 9, 5, 3, 2, 1),
    (1, 64, 8, 8, 8, 1, 1, 0),
    (1, 5, 6, 6, 3, (2, 3), (1, 2), (0, 2)),
    (1, 130, 5, 5, 2, 5, 1, 2),
    (1, 2, 9, 9, 2, 9, 1, 4),      # 81 taps: two words per window in the spatial layout
    (3, 1, 4, 4, 1, 4, 1, 0),      # one output pixel, one channel
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("layout", bf.LAYOUTS)
def test_layouts_are_bit_exact(shape, layout):
    n, c, h, w, o, k, s, p = shape
    kernel = (k, k) if isinstance(k, int) else k
    g = torch.Generator().manual_seed(c * 31 + h)
    x, wt = torch.randn(n, c, h, w, generator=g), torch.randn(o, c, *kernel, generator=g)
    out = bf.layout_conv2d(x, wt, layout, s, p)
    assert out.dtype == torch.int32
    assert torch.equal(out, bitops.binary_conv2d(x, wt, s, p))
    assert torch.equal(out, F.conv2d(sign(x), sign(wt), stride=s, padding=p).round().to(torch.int32))


def test_exact_with_zeros_and_integer_inputs():
    x = torch.tensor([[[[0.0, -1.0, 2.0], [-0.5, 0.0, 3.0], [1.0, -2.0, -0.0]]]])   # sign(0) = +1
    w = torch.tensor([[[[1.0, -1.0], [0.0, -3.0]]]])
    ref = F.conv2d(sign(x), sign(w), padding=1).to(torch.int32)
    for layout in bf.LAYOUTS:
        assert torch.equal(bf.layout_conv2d(x, w, layout, padding=1), ref)
    xi = torch.randint(-3, 4, (1, 4, 5, 5))
    wi = torch.randint(-3, 4, (2, 4, 3, 3))
    for layout in bf.LAYOUTS:
        assert torch.equal(bf.layout_conv2d(xi, wi, layout), bitops.binary_conv2d(xi, wi))


def test_hand_example_one_window():
    # one 3x3 window, one channel: x all +1, w has four -1: dot = 5 - 4 = 1
    x = torch.ones(1, 1, 3, 3)
    w = torch.tensor([[[[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]]]])
    for layout in bf.LAYOUTS:
        assert bf.layout_conv2d(x, w, layout).item() == 1


def test_rows_shapes_and_layout():
    x, w = torch.randn(2, 128, 6, 6), torch.randn(3, 128, 3, 3)
    xr, wr, k = bf.channel_rows(x, w)
    assert xr.shape == (2 * 16, 9 * 16) and wr.shape == (3, 9 * 16) and k == 9 * 128   # 16 bytes per pixel
    # row 0, first tap = pixel (0, 0) of image 0, packed along channels
    assert torch.equal(xr[0, :16], bitops.pack_bits(x[0, :, 0, 0]))
    xs, ws, ks = bf.spatial_rows(x, w)
    assert xs.shape == (2 * 16, 128 * 8) and ks == 128 * 64                             # one word per channel
    # first word of row 0 = channel 0's 3x3 window, 9 bits in row-major order, 55 zero bits
    assert torch.equal(xs[0, :8], bitops.pack_bits(F.pad(x[0, 0, :3, :3].flatten(), (0, 55))))
    assert torch.equal(ws[1, 8:16], bitops.pack_bits(F.pad(w[1, 1].flatten(), (0, 55))))


def test_padding_correction_by_hand():
    # 1x1 image, 3x3 kernel, padding 1: 8 of the 9 taps are padding; correction = sum of sign(w) off the centre
    w = torch.tensor([[[[1.0, -1, -1], [1, 5, -1], [-1, -1, -1]]]])
    corr = bf.padding_correction((2, 1, 1, 1), w, padding=1)
    assert corr.tolist() == [[-4], [-4]]          # 2 images x 1 position
    assert bf.padding_correction((1, 1, 3, 3), w).tolist() == [[0]]


def test_words_per_output_by_hand():
    assert bf.words_per_output(64, 3, "channel") == 9
    assert bf.words_per_output(64, 3, "spatial") == 64
    assert bf.words_per_output(65, 3, "channel") == 18
    assert bf.words_per_output(3, 3, "channel") == 9 and bf.words_per_output(3, 3, "spatial") == 3
    assert bf.words_per_output(512, 3, "channel", word_bits=512) == 9
    assert bf.words_per_output(10, (9, 9), "spatial") == 20          # 81 taps need two words
    assert bf.words_per_output(256, 1, "spatial") == 256


def test_word_counts_match_the_rows():
    for c, k in ((64, 3), (128, 3), (192, 5), (64, 1)):
        x, w = torch.randn(1, c, 6, 6), torch.randn(2, c, k, k)
        assert bf.channel_rows(x, w)[0].shape[1] // 8 == bf.words_per_output(c, k, "channel")
        assert bf.spatial_rows(x, w)[0].shape[1] // 8 == bf.words_per_output(c, k, "spatial")


def test_utilization():
    assert bf.bit_utilization(64, 3, "channel") == 1.0
    assert bf.bit_utilization(64, 3, "spatial") == pytest.approx(9 / 64)
    assert bf.bit_utilization(3, 3, "channel") == pytest.approx(3 / 64)
    ratio = bf.words_per_output(256, 3, "spatial") / bf.words_per_output(256, 3, "channel")
    assert ratio == pytest.approx(64 / 9)


def test_bad_inputs():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="layout"):
        bf.layout_conv2d(x, w, "diagonal")
    with pytest.raises(ValueError, match="input channels"):
        bf.layout_conv2d(x, torch.randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match="x"):
        bf.channel_rows(x.clone().fill_(float("nan")), w)
    with pytest.raises(ValueError, match="stride"):
        bf.spatial_rows(x, w, stride=0)
    with pytest.raises(ValueError, match="kernel"):
        bf.layout_conv2d(x, torch.randn(2, 4, 7, 7))
    with pytest.raises(TypeError, match="x"):
        bf.layout_conv2d(x.numpy(), w)
    with pytest.raises(ValueError, match="channels"):
        bf.words_per_output(0, 3)
    with pytest.raises(ValueError, match="kernel_size"):
        bf.words_per_output(4, (3, 3, 3))
    with pytest.raises(ValueError, match="layout"):
        bf.words_per_output(4, 3, "im2col")
    with pytest.raises(ValueError, match="word_bits"):
        bf.bit_utilization(4, 3, "channel", word_bits=0)
    with pytest.raises(ValueError, match="x_shape"):
        bf.padding_correction((1, 0, 3, 3), w)


def test_packed_windows_checks():
    pixels = bitops.pack_bits(torch.randn(1, 5, 5, 16))
    assert bf.packed_windows(pixels, 3, 1, 1).shape == (25, 9 * 2)
    with pytest.raises(TypeError, match="pixels"):
        bf.packed_windows(pixels.int(), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        bf.packed_windows(pixels, 7)
    with pytest.raises(ValueError, match="stride"):
        bf.packed_windows(pixels, 3, stride=0)
