"""daBNN (Zhang et al., 2019): direct binary convolution vs im2col + BGEMM, bit-exact; the cost models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.papers import dabnn as d

SHAPES = [  # (n, c, h, w, o, kernel, stride, padding)
    (2, 3, 7, 5, 4, 3, 1, 1),
    (1, 70, 9, 9, 5, 3, 2, 1),
    (1, 64, 8, 8, 8, 1, 1, 0),
    (1, 5, 6, 6, 3, (2, 3), (1, 2), (0, 2)),
    (1, 130, 5, 5, 2, 5, 1, 2),
    (3, 1, 4, 4, 1, 4, 1, 0),      # one output pixel, one channel, odd number of output channels
    (1, 128, 6, 6, 7, 3, 1, 1),
]
# daBNN's two paths, both in qteach.bitops, with daBNN's -1 padding
KERNELS = tuple(
    (lambda x, w, stride=1, padding=0, method=method:
     bitops.binary_conv2d(x, w, stride, padding, pad_value=-1, method=method))
    for method in bitops.CONV_METHODS)


def _minus_one_padded_reference(x, w, stride, padding):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return F.conv2d(F.pad(sign(x), (pw, pw, ph, ph), value=-1.0), sign(w), stride=stride).round().to(torch.int32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kernel_fn", KERNELS)
def test_bit_exact_against_conv_of_signs(shape, kernel_fn):
    n, c, h, wd, o, k, s, p = shape
    kernel = (k, k) if isinstance(k, int) else k
    g = torch.Generator().manual_seed(c * 31 + h)
    x, w = torch.randn(n, c, h, wd, generator=g), torch.randn(o, c, *kernel, generator=g)
    out = kernel_fn(x, w, s, p)
    assert out.dtype == torch.int32
    assert torch.equal(out, _minus_one_padded_reference(x, w, s, p))
    ph, pw = (p, p) if isinstance(p, int) else p
    padded = F.pad(x, (pw, pw, ph, ph), value=-1.0)
    assert torch.equal(out, bitops.binary_conv2d(padded, w, s))          # the library's kernel on -1 padding
    if p == 0:
        assert torch.equal(out, bitops.binary_conv2d(x, w, s))


def test_both_paths_agree_and_zero_is_plus_one():
    x = torch.tensor([[[[0.0, -1.0, 2.0], [-0.5, 0.0, 3.0], [1.0, -2.0, -0.0]]]])
    w = torch.tensor([[[[1.0, -1.0], [0.0, -3.0]]]])
    ref = _minus_one_padded_reference(x, w, 1, 1)
    for fn in KERNELS:
        assert torch.equal(fn(x, w, 1, 1), ref)
    xi, wi = torch.randint(-3, 4, (1, 4, 5, 5)), torch.randint(-3, 4, (2, 4, 3, 3))
    assert torch.equal(KERNELS[0](xi, wi), KERNELS[1](xi, wi))


def test_hand_example_padding_is_minus_one():
    # a 1x1 image of +1, 3x3 kernel of +1, padding 1: 1 inside term and 8 padded terms of -1 -> 1 - 8 = -7
    x, w = torch.ones(1, 1, 1, 1), torch.ones(1, 1, 3, 3)
    for fn in KERNELS:
        assert fn(x, w, 1, 1).item() == -7
    assert bitops.binary_conv2d(x, w, 1, 1).item() == 1            # zero padding: only the inside term


def test_bad_inputs():
    x, w = torch.randn(1, 3, 5, 5), torch.randn(2, 3, 3, 3)
    for fn in KERNELS:
        with pytest.raises(ValueError, match="x"):
            fn(torch.full((1, 3, 5, 5), float("nan")), w)
        with pytest.raises(ValueError, match="input channels"):
            fn(x, torch.randn(2, 4, 3, 3))
        with pytest.raises(ValueError, match="stride"):
            fn(x, w, stride=0)
        with pytest.raises(TypeError, match="x"):
            fn(x.numpy(), w)


# --- daBNN's conventions, transcribed from the official code -------------------------------------------------

def _pack_64_bitset(values):
    """common/common_bitpack.h l. 12-34 (pack_64_bitset): bits[i] = (*(fptr + i) > 0), bits past eff_bits 0."""
    word = 0
    for i, v in enumerate(values[:64]):
        if v > 0:
            word |= 1 << i
    return word


def _baseline_bconv_count(x_words, w_words):
    """common/baseline.h l. 90-110 (baseline_bconv): acc += bitcount(w_value ^ bottom_value) over the window."""
    return sum((a ^ b).bit_count() for a, b in zip(x_words, w_words))


def test_dabnn_bits_match_official_packing_and_give_the_same_xor():
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(64, generator=g), torch.randn(64, generator=g)
    assert int(sum(int(b) << i for i, b in enumerate(d.dabnn_bits(x).tolist()))) == _pack_64_bitset(x.tolist())
    ours = [int(v) for v in bitops.pack_bits(x).tolist()], [int(v) for v in bitops.pack_bits(w).tolist()]
    ours_x = sum(b << (8 * i) for i, b in enumerate(ours[0]))
    ours_w = sum(b << (8 * i) for i, b in enumerate(ours[1]))
    assert ours_x ^ ((1 << 64) - 1) == _pack_64_bitset(x.tolist())        # complement of qteach's bits
    count = _baseline_bconv_count([_pack_64_bitset(x.tolist())], [_pack_64_bitset(w.tolist())])
    assert count == (ours_x ^ ours_w).bit_count()                        # XOR unchanged
    assert 64 - 2 * count == int((sign(x) * sign(w)).sum())
    assert not d.dabnn_bits(torch.tensor([0.0])).item()                    # daBNN: 0 packs as -1


def test_fold_batchnorm_transcribes_onnx2bnn():
    g = torch.Generator().manual_seed(0)
    gamma, beta, mean = (torch.randn(5, generator=g) for _ in range(3))
    var, k, eps = torch.rand(5, generator=g) + 0.1, 27, 1e-5
    a2, b2 = d.fold_batchnorm(gamma, beta, mean, var, k, eps)
    # OnnxConverter.cpp l. 598-602 (coeff_a = scale / sqrt(var + eps), coeff_b = b - scale * mean / sqrt(...)),
    # l. 612-616 (coeff_b += channels * width * height * coeff_a), l. 626 (coeff_a *= -2)
    for i in range(5):
        tmp = math.sqrt(var[i].item() + eps)
        ca, cb = gamma[i].item() / tmp, beta[i].item() - gamma[i].item() * mean[i].item() / tmp
        cb += k * ca
        ca *= -2
        assert a2[i].item() == pytest.approx(ca, rel=1e-5) and b2[i].item() == pytest.approx(cb, rel=1e-5, abs=1e-5)
    m = torch.arange(0, k + 1, dtype=torch.float32)[:5]
    bn = F.batch_norm((k - 2 * m)[None], mean, var, gamma, beta, eps=eps)[0]
    assert torch.allclose(a2 * m + b2, bn, atol=1e-4)
    with pytest.raises(ValueError, match="var"):
        d.fold_batchnorm(gamma, beta, mean, -var, k)
    with pytest.raises(ValueError, match="beta"):
        d.fold_batchnorm(gamma, beta[:2], mean, var, k)
    with pytest.raises(ValueError, match="k"):
        d.fold_batchnorm(gamma, beta, mean, var, 0)


# --- cost models ---------------------------------------------------------------------------------------------

def test_instruction_counts_from_the_paper():
    # "four instructions: xnor, cnt, addv, and addition" (ARMv8); ceil(log2 N) + 3 for N = 16 bytes (ARMv7)
    assert d.instructions_per_output("im2col_bgemm", 1, "armv8") == 4
    assert d.instructions_per_output("im2col_bgemm", 1, "armv7") == math.ceil(math.log2(16)) + 3 == 7
    assert d.instructions_per_output("direct", 9, "armv8") == 27 + 2
    assert d.instructions_per_output("direct", 31, "armv8") == 93 + 2
    assert d.instructions_per_output("direct", 32, "armv8") == 96 + 4       # byte lanes overflow after 31
    assert d.instructions_per_output("direct", 9, "armv7") == 27 + 5
    assert d.LANE_VECTORS * 8 <= 255 < (d.LANE_VECTORS + 1) * 8
    with pytest.raises(ValueError, match="path"):
        d.instructions_per_output("gemm", 3)
    with pytest.raises(ValueError, match="arch"):
        d.instructions_per_output("direct", 3, "x86")
    with pytest.raises(ValueError, match="vectors"):
        d.instructions_per_output("direct", 0)


def _instrumented(path, c, h, wd, o, kh, kw, s, p, block=1):
    """Count the word loads/stores of the loop nests, one by one (tiny shapes)."""
    cw = -(-c // 64)
    oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    n = {"input_reads": 0, "weight_reads": 0, "buffer_writes": 0, "buffer_words": 0, "outputs": 0}
    if path == "im2col_bgemm":
        for _ in range(oh * ow * kh * kw * cw):           # im2col: read a word, write it to the buffer
            n["input_reads"] += 1
            n["buffer_writes"] += 1
        n["buffer_words"] = n["buffer_writes"]
    for y in range(oh):
        xs = range(0, ow, block) if path == "direct_registers" else range(ow)
        for x0 in xs:
            if path == "direct_registers":
                cols = set()
                for x in range(x0, min(x0 + block, ow)):
                    cols.update(range(x * s, x * s + kw))
                n["input_reads"] += kh * len(cols) * cw if x0 + block <= ow else kh * ((block - 1) * s + kw) * cw
            for _ in range(o):
                n["outputs"] += block if path == "direct_registers" else 1
                if path == "direct_registers":
                    n["weight_reads"] += kh * kw * cw
                else:
                    n["input_reads"] += kh * kw * cw
                    n["weight_reads"] += kh * kw * cw
    if path == "direct_registers":
        n["outputs"] = o * oh * ow
    return n


@pytest.mark.parametrize("path", d.PATHS)
@pytest.mark.parametrize("shape", [(64, 6, 6, 4, 3, 3, 1, 1), (130, 5, 7, 3, 3, 3, 2, 0), (3, 4, 4, 2, 1, 1, 1, 0)])
def test_traffic_counts_match_the_loop_nests(path, shape):
    c, h, wd, o, kh, kw, s, p = shape
    block = 2 if path == "direct_registers" else 1
    expected = _instrumented(path, c, h, wd, o, kh, kw, s, p, block)
    assert d.traffic_words(path, c, h, wd, o, (kh, kw), s, p, block=block) == expected


def test_traffic_register_reuse_saves_two_thirds_of_input_reads_for_wide_blocks():
    one = d.traffic_words("direct_registers", 128, 28, 28, 128, 3, 1, 1, block=1)["input_reads"]
    two = d.traffic_words("direct_registers", 128, 28, 28, 128, 3, 1, 1, block=2)["input_reads"]
    assert two * 3 == one * 2                                  # (3 + 1) / (2 * 3) = 2/3 of the loads
    direct = d.traffic_words("direct", 64, 8, 8, 16, 3, 1, 1)
    im2col = d.traffic_words("im2col_bgemm", 64, 8, 8, 16, 3, 1, 1)
    assert im2col["input_reads"] - direct["input_reads"] == im2col["buffer_words"] == 8 * 8 * 9
    with pytest.raises(ValueError, match="path"):
        d.traffic_words("gemm", 64, 8, 8, 16, 3)
    with pytest.raises(ValueError, match="kernel"):
        d.traffic_words("direct", 64, 2, 2, 16, 5)
    with pytest.raises(ValueError, match="block"):
        d.traffic_words("direct_registers", 64, 8, 8, 16, 3, block=0)
