"""Tests of qteach.bitops: bit packing, XNOR-popcount products and convolutions, bit-serial products, and
TFLite/gemmlowp fixed-point requantization.

The fast (numba) path is checked bit for bit against the torch references and against float products of
signs; requantization is checked against a line-by-line Python transcription of the C++ and against values
published in TFLite's own tests.
"""

from __future__ import annotations

import math
import random

import numba
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qteach import _bitkernels, bitops
from qteach.binary import sign

AWKWARD_K = [1, 7, 63, 64, 65, 127, 129, 200]
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def with_zeros(x, seed=1):
    """``x`` with about a quarter of its entries set to exactly 0 (sign(0) = +1 must hold everywhere)."""
    mask = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < 0.25
    return x.masked_fill(mask, 0.0)


def sign_matmul(a, b):
    """The specification: sign(a) @ sign(b).T in float64 (exact for these sizes), as int32."""
    return (sign(a.double()) @ sign(b.double()).T).to(torch.int32)


def sign_conv(x, w, stride, padding):
    return F.conv2d(sign(x.double()), sign(w.double()), stride=stride, padding=padding).to(torch.int32)


# ------------------------------------------------------------------------------------------- packing


def test_packed_bit_convention_hand_computed():
    # element k -> bit k % 8 of byte k // 8; bit 1 for negative, 0 for +1 and for sign(0) = +1.
    x = torch.tensor([-1.0, 0.0, 1.0, -2.0, -0.0, 3.0, 0.5, -7.0, -3.0])
    packed = bitops.pack_bits(x)
    assert packed.dtype == torch.uint8
    assert packed.tolist() == [0b10001001, 0b00000001]
    assert bitops.pack_bits(torch.zeros(3)).tolist() == [0]
    assert bitops.pack_bits(-torch.ones(3)).tolist() == [0b111]


@pytest.mark.parametrize("k", AWKWARD_K)
def test_pack_unpack_round_trip(k):
    x = with_zeros(randn(3, 5, k, seed=k))
    packed = bitops.pack_bits(x)
    assert packed.shape == (3, 5, math.ceil(k / 8)) and packed.dtype == torch.uint8
    expected = np.packbits(x.numpy() < 0, axis=-1, bitorder="little")
    assert np.array_equal(packed.numpy(), expected)
    unpacked = bitops.unpack_bits(packed, k)
    assert unpacked.dtype == torch.float32 and unpacked.shape == x.shape
    assert torch.equal(unpacked, sign(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.int64])
def test_pack_bits_other_dtypes(dtype):
    x = torch.tensor([[-3, 0, 2, -1, 5, 0, -2, 1, 1, -4]]).to(dtype)
    assert torch.equal(bitops.unpack_bits(bitops.pack_bits(x), 10), sign(x).float())


def test_pack_bits_infinities_and_negative_zero():
    x = torch.tensor([float("-inf"), float("inf"), -0.0, 0.0])
    assert bitops.unpack_bits(bitops.pack_bits(x), 4).tolist() == [-1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("k", AWKWARD_K)
def test_kernel_words_are_pack_bits_bytes(k):
    # The numba packers' uint64 words are pack_bits' bytes read as little-endian words (documented bit order),
    # for rows (matmul) and for channels (convolution: pack_bits along C of NHWC).
    x = with_zeros(randn(2, k, 3, 5, seed=k))
    rows = x.reshape(-1, k)
    words, nan_count = _bitkernels.pack_rows(rows.numpy())
    assert nan_count == 0
    assert np.array_equal(words, bitops._bytes_to_words(bitops.pack_bits(rows)))
    words, nan_count = _bitkernels.pack_channels(x.reshape(2, k, 15).numpy())
    assert nan_count == 0
    nhwc_bytes = bitops.pack_bits(x.movedim(1, -1)).reshape(30, -1)
    assert np.array_equal(words.reshape(30, -1), bitops._bytes_to_words(nhwc_bytes))


# --------------------------------------------------------------------------------------- xnor_matmul


@pytest.mark.parametrize("k", AWKWARD_K)
@pytest.mark.parametrize("m, n", [(1, 1), (1, 9), (13, 1), (17, 33)])
def test_xnor_matmul_equals_sign_product(m, n, k):
    a = with_zeros(randn(m, k, seed=m * 1000 + k))
    b = with_zeros(randn(n, k, seed=n * 1000 + k + 1), seed=2)
    expected = sign_matmul(a, b)
    fast = bitops.xnor_matmul(a, b)
    assert fast.dtype == torch.int32 and fast.shape == (m, n)
    assert torch.equal(fast, expected)
    assert torch.equal(bitops.xnor_matmul_reference(a, b), expected)
    packed = bitops.xnor_matmul_packed(bitops.pack_bits(a), bitops.pack_bits(b), k)
    assert torch.equal(packed, expected)


@pytest.mark.parametrize("m", range(1, 9))
def test_xnor_matmul_every_edge_of_the_4x4_register_block(m):
    # every remainder of rows and columns mod 4, inside one tile and at a tile's edge (64 + r)
    for n in (m, 8 - m + 1, 64 + m):
        a, b = randn(m, 130, seed=m), randn(n, 130, seed=n + 50)
        assert torch.equal(bitops.xnor_matmul(a, b), sign_matmul(a, b)), (m, n)


def test_xnor_matmul_several_tiles():
    # 150 x 130 outputs span several 64 x 64 tiles of the kernel, with partial tiles at the edges.
    a, b = randn(150, 1000, seed=3), randn(130, 1000, seed=4)
    assert torch.equal(bitops.xnor_matmul(a, b), sign_matmul(a, b))


def test_xnor_matmul_extreme_values():
    k = 129
    ones = torch.ones(2, k)
    assert bitops.xnor_matmul(ones, ones).tolist() == [[k, k], [k, k]]
    assert bitops.xnor_matmul(ones, -ones).tolist() == [[-k, -k], [-k, -k]]
    assert bitops.xnor_matmul(torch.zeros(1, k), -ones[:1]).tolist() == [[-k]]  # sign(0) = +1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.int64])
def test_xnor_matmul_other_dtypes(dtype):
    a = (with_zeros(randn(5, 70, seed=5)) * 100).to(dtype)
    b = (with_zeros(randn(4, 70, seed=6)) * 100).to(dtype)
    assert torch.equal(bitops.xnor_matmul(a, b), sign_matmul(a, b))
    assert torch.equal(bitops.xnor_matmul_reference(a, b), sign_matmul(a, b))


def test_xnor_matmul_tiny_float64_negatives_keep_their_sign():
    # -1e-300 is negative in float64 but would round to -0.0 (= +1) in float32: the kernel must not convert.
    a = torch.tensor([[-1e-300, 1e-300, -1e-310]], dtype=torch.float64)
    assert bitops.xnor_matmul(a, torch.ones(1, 3, dtype=torch.float64)).tolist() == [[-1]]


def test_xnor_matmul_non_contiguous_and_grad_inputs():
    a = randn(70, 9, seed=7).T  # (9, 70), transposed view
    b = randn(5, 70, seed=8).requires_grad_(True)
    out = bitops.xnor_matmul(a, b)
    assert not out.requires_grad
    assert torch.equal(out, sign_matmul(a, b.detach()))


def test_xnor_matmul_follows_torch_thread_count():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a, b = randn(40, 100, seed=9), randn(30, 100, seed=10)
        assert torch.equal(bitops.xnor_matmul(a, b), sign_matmul(a, b))
        assert numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    bitops.xnor_matmul(a, b)
    assert numba.get_num_threads() == min(threads, numba.config.NUMBA_NUM_THREADS)


# ------------------------------------------------------------------------------------- binary_conv2d

CONV_CASES = [
    # (x shape, w shape, stride, padding)
    ((2, 3, 9, 7), (5, 3, 3, 3), 1, 1),
    ((2, 3, 9, 7), (5, 3, 3, 3), 2, 0),
    ((1, 64, 8, 8), (4, 64, 3, 3), 1, 2),
    ((2, 65, 10, 11), (4, 65, 5, 5), 2, 2),
    ((1, 130, 6, 6), (3, 130, 1, 1), 1, 0),
    ((1, 130, 6, 5), (3, 130, 1, 1), 2, 2),  # a 1x1 kernel with padding 2: border windows are all padding
    ((2, 7, 12, 5), (3, 7, 3, 5), (2, 1), (1, 2)),  # non-square kernel, stride and padding pairs
    ((1, 20, 5, 5), (2, 20, 5, 5), 1, 2),  # kernel as large as the image: every window but the centre is cut
    ((2, 33, 11, 12), (70, 33, 3, 3), 1, 1),  # 70 filters x 132 positions: several kernel tiles per image
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_binary_conv2d_equals_sign_conv(x_shape, w_shape, stride, padding):
    x = with_zeros(randn(*x_shape, seed=sum(x_shape)))
    w = with_zeros(randn(*w_shape, seed=sum(w_shape) + 1), seed=3)
    expected = sign_conv(x, w, stride, padding)
    fast = bitops.binary_conv2d(x, w, stride=stride, padding=padding)
    assert fast.dtype == torch.int32 and fast.shape == expected.shape
    assert torch.equal(fast, expected)
    assert torch.equal(bitops.binary_conv2d_reference(x, w, stride=stride, padding=padding), expected)


@pytest.mark.parametrize("pad_value", [0, -1, 1])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_binary_conv2d_both_methods_and_every_pad_value(x_shape, w_shape, stride, padding, pad_value):
    # The specification: F.conv2d of the signs, the input padded with pad_value first (0: zero padding).
    x = with_zeros(randn(*x_shape, seed=sum(x_shape) + 7))
    w = with_zeros(randn(*w_shape, seed=sum(w_shape) + 8), seed=4)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    padded = F.pad(sign(x), (pw, pw, ph, ph), value=float(pad_value))
    expected = F.conv2d(padded.double(), sign(w).double(), stride=stride).round().to(torch.int32)
    assert torch.equal(bitops.binary_conv2d_reference(x, w, stride, padding, pad_value), expected)
    for method in bitops.CONV_METHODS:
        fast = bitops.binary_conv2d(x, w, stride, padding, pad_value=pad_value, method=method)
        assert fast.dtype == torch.int32 and torch.equal(fast, expected), method


def test_binary_conv2d_minus_one_padding_hand_computed():
    # daBNN pads with -1: a 1x1 image of +1 under a 3x3 kernel of +1 (padding 1) sums 1 - 8 = -7 per channel,
    # where zero padding gives 1 and +1 padding gives 9.
    c = 70
    x, w = torch.ones(1, c, 1, 1), torch.ones(1, c, 3, 3)
    for method in bitops.CONV_METHODS:
        for pad_value, per_channel in ((-1, -7), (0, 1), (1, 9)):
            out = bitops.binary_conv2d(x, w, padding=1, pad_value=pad_value, method=method)
            assert out.item() == c * per_channel, (method, pad_value)


def test_binary_conv2d_zero_padding_contributes_zero_hand_computed():
    # All inputs -1, all weights +1, 3x3 kernel, padding 1 on a 4x4 image: each output is -C times the number
    # of taps inside the image (4 at corners, 6 on edges, 9 inside); padding read as +1 or -1 would differ.
    c = 70
    x, w = -torch.ones(1, c, 4, 4), torch.ones(1, c, 3, 3)
    taps = torch.tensor([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=torch.int32)
    assert torch.equal(bitops.binary_conv2d(x, w, padding=1)[0, 0], -c * taps)
    assert torch.equal(bitops.binary_conv2d_reference(x, w, padding=1)[0, 0], -c * taps)


@pytest.mark.parametrize("x_shape, w_shape", [((0, 3, 5, 5), (2, 3, 3, 3)), ((1, 3, 5, 5), (0, 3, 3, 3)),
                                              ((2, 0, 5, 5), (2, 0, 3, 3))])
def test_binary_conv2d_empty_sizes(x_shape, w_shape):
    # Empty sums are 0 (F.conv2d itself rejects O = 0 and mis-shapes C = 0, so compare with zeros).
    x, w = randn(*x_shape), randn(*w_shape)
    expected = torch.zeros(x_shape[0], w_shape[0], 5, 5, dtype=torch.int32)
    assert torch.equal(bitops.binary_conv2d(x, w, 1, 1), expected)
    assert torch.equal(bitops.binary_conv2d_reference(x, w, 1, 1), expected)


@pytest.mark.parametrize("a_shape, b_shape", [((3, 0), (2, 0)), ((0, 5), (2, 5)), ((3, 5), (0, 5))])
def test_xnor_matmul_empty_sizes(a_shape, b_shape):
    a, b = randn(*a_shape), randn(*b_shape)
    assert torch.equal(bitops.xnor_matmul(a, b), sign_matmul(a, b))
    assert torch.equal(bitops.xnor_matmul_reference(a, b), sign_matmul(a, b))


def test_binary_conv2d_channels_last_and_float64():
    x = randn(2, 9, 6, 6, seed=11).to(memory_format=torch.channels_last)
    w = randn(3, 9, 3, 3, seed=12)
    assert torch.equal(bitops.binary_conv2d(x, w, padding=1), sign_conv(x, w, 1, 1))
    assert torch.equal(bitops.binary_conv2d(x.double(), w.double(), padding=1), sign_conv(x, w, 1, 1))


# ---------------------------------------------------------------------------------- bitserial_matmul


@pytest.mark.parametrize("a_bits, b_bits", [(1, 1), (2, 3), (4, 4), (8, 8), (3, 16), (32, 1), (1, 32)])
@pytest.mark.parametrize("k", [1, 9, 70])
def test_bitserial_matmul_equals_integer_product(a_bits, b_bits, k):
    g = torch.Generator().manual_seed(a_bits * 100 + b_bits + k)
    a = torch.randint(0, 2**a_bits, (5, k), generator=g)
    b = torch.randint(0, 2**b_bits, (3, k), generator=g)
    a[0] = 2**a_bits - 1  # the top value of the range, every bit plane set
    out = bitops.bitserial_matmul(a, b, a_bits, b_bits)
    assert out.dtype == torch.int64
    assert torch.equal(out, a @ b.T)


def test_bitserial_matmul_accepts_small_ints_and_exact_floats():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 16, (4, 11), generator=g)
    b = torch.randint(0, 4, (6, 11), generator=g)
    expected = a @ b.T
    assert torch.equal(bitops.bitserial_matmul(a.to(torch.uint8), b.to(torch.int16), 4, 2), expected)
    assert torch.equal(bitops.bitserial_matmul(a.float(), b.double(), 4, 2), expected)


def test_bitserial_matmul_largest_values_that_fit_int64():
    a = torch.full((1, 2), 2**31 - 1)
    b = torch.full((1, 2), 2**31 - 1)
    assert bitops.bitserial_matmul(a, b, 31, 31).item() == 2 * (2**31 - 1) ** 2
    with pytest.raises(ValueError, match="overflow int64"):
        bitops.bitserial_matmul(torch.full((1, 1), 2**32 - 1), torch.full((1, 1), 2**32 - 1), 32, 32)


# ------------------------------------------------------------ requantization: a transcription of the C++


def cpp_div(a: int, b: int) -> int:
    """C++ integer division: the quotient truncated toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm_cpp(a: int, b: int) -> int:
    # gemmlowp fixedpoint.h:
    #   bool overflow = a == b && a == std::numeric_limits<std::int32_t>::min();
    #   std::int64_t a_64(a);
    #   std::int64_t b_64(b);
    #   std::int64_t ab_64 = a_64 * b_64;
    #   std::int32_t nudge = ab_64 >= 0 ? (1 << 30) : (1 - (1 << 30));
    #   std::int32_t ab_x2_high32 = static_cast<std::int32_t>((ab_64 + nudge) / (1ll << 31));
    #   return overflow ? std::numeric_limits<std::int32_t>::max() : ab_x2_high32;
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = cpp_div(ab_64 + nudge, 1 << 31)
    return INT32_MAX if overflow else ab_x2_high32


def rounding_divide_by_pot_cpp(x: int, exponent: int) -> int:
    # gemmlowp fixedpoint.h (Python's & and >> on ints act as on two's complement, >> is arithmetic):
    #   assert(exponent >= 0); assert(exponent <= 31);
    #   const IntegerType mask = Dup<IntegerType>((1ll << exponent) - 1);
    #   const IntegerType remainder = BitAnd(x, mask);
    #   const IntegerType threshold = Add(ShiftRight(mask, 1), BitAnd(MaskIfLessThan(x, zero), one));
    #   return Add(ShiftRight(x, exponent), BitAnd(MaskIfGreaterThan(remainder, threshold), one));
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier_cpp(x: int, quantized_multiplier: int, shift: int) -> int:
    # tensorflow/lite/kernels/internal/common.h (double-rounding version):
    #   int left_shift = shift > 0 ? shift : 0;
    #   int right_shift = shift > 0 ? 0 : -shift;
    #   return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
    #                                  x * (1 << left_shift), quantized_multiplier),
    #                              right_shift);
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    shifted = x * (1 << left_shift)
    assert INT32_MIN <= shifted <= INT32_MAX  # int32 overflow is undefined behaviour in the C++
    return rounding_divide_by_pot_cpp(srdhm_cpp(shifted, quantized_multiplier), right_shift)


def quantize_multiplier_cpp(double_multiplier: float) -> tuple[int, int]:
    # tensorflow/lite/kernels/internal/quantization_util.cc:
    #   if (double_multiplier == 0.) { *quantized_multiplier = 0; *shift = 0; return; }
    #   const double q = std::frexp(double_multiplier, shift);
    #   auto q_fixed = static_cast<int64_t>(TfLiteRound(q * (1LL << 31)));
    #   TFLITE_CHECK(q_fixed <= (1LL << 31));
    #   if (q_fixed == (1LL << 31)) { q_fixed /= 2; ++*shift; }
    #   TFLITE_CHECK_LE(q_fixed, std::numeric_limits<int32_t>::max());
    #   if (*shift < -31) { *shift = 0; q_fixed = 0; }
    #   *quantized_multiplier = static_cast<int32_t>(q_fixed);
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    scaled = q * (1 << 31)
    q_fixed = int(math.floor(abs(scaled) + 0.5) * (1 if scaled >= 0 else -1))  # TfLiteRound = std::round
    assert q_fixed <= 1 << 31
    if q_fixed == 1 << 31:
        q_fixed = cpp_div(q_fixed, 2)
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def test_transcription_matches_tflite_published_values():
    # The C++ transcription itself reproduces TFLite's MultiplyByQuantizedMultiplierInt32 test.
    def quant_and_multiply(x, multiplier):
        return multiply_by_quantized_multiplier_cpp(x, *quantize_multiplier_cpp(multiplier))

    assert quant_and_multiply(0, 0.1) == 0
    assert quant_and_multiply(1, 0) == 0
    assert quant_and_multiply(10000, 0.00097656) == 10
    assert quant_and_multiply(-10000, 0.00097656) == -10
    assert quant_and_multiply(INT32_MIN, 0.00001) == -21475
    assert quant_and_multiply(INT32_MAX, 0.00001) == 21475


def edge_accumulators():
    values = [0, 1, -1, 2, -2, 3, -3, INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1, 2**30, -(2**30)]
    powers = [2**k for k in range(1, 31)]
    values += [sgn * p + d for p in powers for sgn in (1, -1) for d in (-1, 0, 1)]  # ties after a shift
    return values


def random_cases(n, seed):
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        shift = rng.randint(-31, 30)
        m0 = rng.choice([0, 1, 2**30, 2**31 - 1, rng.randint(2**30, 2**31 - 1), rng.randint(0, 2**31 - 1)])
        # accumulators small enough that acc * 2**shift stays in int32
        bound = INT32_MAX >> max(shift, 0)
        accs = [rng.randint(-bound - 1, bound) for _ in range(40)]
        accs += [v for v in edge_accumulators() if -bound - 1 <= v <= bound]
        cases.append((accs, m0, shift))
    return cases


@pytest.mark.parametrize("accs, m0, shift", random_cases(60, seed=0))
def test_requantize_matches_cpp_transcription(accs, m0, shift):
    acc = torch.tensor(accs, dtype=torch.int32)
    out = bitops.requantize(acc, m0, shift)
    assert out.dtype == torch.int32 and out.shape == acc.shape
    assert out.tolist() == [multiply_by_quantized_multiplier_cpp(v, m0, shift) for v in accs]


def test_requantize_tie_rules():
    # m0 = 2**30 is exactly 1/2 in Q31; with shift 0 only the high multiply acts, and odd x are ties. Its nudge
    # and truncation amount to floor((x * m0 + 2**30) / 2**31): ties go toward +infinity (-1.5 -> -1).
    acc = torch.tensor([1, -1, 3, -3, 5, -5, 2, -2], dtype=torch.int32)
    assert bitops.requantize(acc, 2**30, 0).tolist() == [1, 0, 2, -1, 3, -2, 1, -1]
    # RoundingDivideByPOT ties: m0 = 2**31 - 1 (~1), shift -2: x / 4 for x = +-2, +-6, +-10.
    acc = torch.tensor([2, -2, 6, -6, 10, -10], dtype=torch.int32)
    assert bitops.requantize(acc, 2**31 - 1, -2).tolist() == [1, -1, 2, -2, 3, -3]
    assert bitops.requantize(acc, 2**31 - 1, -2).tolist() == [
        multiply_by_quantized_multiplier_cpp(v, 2**31 - 1, -2) for v in acc.tolist()
    ]


def test_requantize_tflite_published_values():
    # tensorflow/lite/kernels/internal/quantization_util_test.cc, MultiplyByQuantizedMultiplierInt32.
    def quant_and_multiply(x, multiplier):
        return bitops.requantize(torch.tensor([x], dtype=torch.int32), *bitops.quantize_multiplier(multiplier)).item()

    assert quant_and_multiply(0, 0.1) == 0
    assert quant_and_multiply(1, 0) == 0
    assert quant_and_multiply(10000, 0.00097656) == 10
    assert quant_and_multiply(-10000, 0.00097656) == -10
    assert quant_and_multiply(INT32_MIN, 0.00001) == -21475
    assert quant_and_multiply(INT32_MAX, 0.00001) == 21475
    x, qm, shift = INT32_MAX, INT32_MAX, -3
    expected = math.floor(float(x * qm) / float(2 ** (31 - shift)) + 0.5)  # TfLiteRound of a positive double
    assert bitops.requantize(torch.tensor([x, -x], dtype=torch.int32), qm, shift).tolist() == [expected, -expected]


def test_requantize_close_to_real_product():
    rng = random.Random(1)
    for _ in range(200):
        r = math.exp(rng.uniform(math.log(1e-6), math.log(50.0)))
        m0, shift = bitops.quantize_multiplier(r)
        bound = min(INT32_MAX >> max(shift, 0), int(INT32_MAX / r) - 1)
        acc = torch.tensor([rng.randint(-bound, bound) for _ in range(50)], dtype=torch.int32)
        exact = [round(v * r) for v in acc.tolist()]
        got = bitops.requantize(acc, m0, shift).tolist()
        assert max(abs(g - e) for g, e in zip(got, exact)) <= 1


# -------------------------------------------------------------------------------- quantize_multiplier


def test_quantize_multiplier_tflite_published_values():
    # quantization_util_test.cc: QuantizeMultiplierSmallerThanOneExp, QuantizeMultiplierGreaterThanOne,
    # QuantizeMultiplierUnderflow and QuantizeMultiplierArray (non-negative entries).
    published = {
        0.25: (1073741824, -1),
        0.50 - 5e-9: (2147483627, -1),
        0.50 - 1e-10: (1073741824, 0),
        0.50: (1073741824, 0),
        0.75: (1610612736, 0),
        1 - 1e-9: (2147483646, 0),
        1 + 1e-11: (1073741824, 1),
        1.25: (1342177280, 1),
        1.50: (1610612736, 1),
        1.75: (1879048192, 1),
        2 - 1e-9: (2147483647, 1),
        2 - 1e-11: (1073741824, 2),
        2.0: (1073741824, 2),
        math.ldexp(1.0, -31): (1073741824, -30),
        math.ldexp(1.0, -32): (1073741824, -31),
        math.ldexp(float(np.float32(0.99)), -32): (0, 0),
        math.ldexp(1.0, -33): (0, 0),
        0.0: (0, 0),
        0.125: (1073741824, -2),
        4.0: (1073741824, 3),
    }
    for real, expected in published.items():
        assert bitops.quantize_multiplier(real) == expected, real


def test_quantize_multiplier_matches_cpp_transcription_and_invariants():
    rng = random.Random(2)
    reals = [math.exp(rng.uniform(-20.0, 20.0)) for _ in range(500)] + [1.0, 3, np.float32(0.1), 2.0**-31]
    for real in reals:
        m0, shift = bitops.quantize_multiplier(real)
        assert (m0, shift) == quantize_multiplier_cpp(float(real))
        assert 2**30 <= m0 < 2**31
        assert abs(m0 * 2.0 ** (shift - 31) - real) <= real * 2.0**-31


# ---------------------------------------------------------------------------------------- bad input


def test_bad_input_pack_and_unpack():
    with pytest.raises(TypeError, match="^x must"):
        bitops.pack_bits([1.0, -1.0])
    with pytest.raises(TypeError, match="^x must"):
        bitops.pack_bits(torch.tensor([True, False]))
    with pytest.raises(ValueError, match="^x must"):
        bitops.pack_bits(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="^x must"):
        bitops.pack_bits(torch.tensor(1.0))
    packed = bitops.pack_bits(randn(2, 10))
    with pytest.raises(TypeError, match="packed"):
        bitops.unpack_bits(packed.to(torch.int32), 10)
    with pytest.raises(ValueError, match="^k must"):
        bitops.unpack_bits(packed, 0)
    with pytest.raises(ValueError, match=r"ceil\(k / 8\) = 3 bytes"):
        bitops.unpack_bits(packed, 17)  # needs 3 bytes
    with pytest.raises(TypeError, match="^k must"):
        bitops.unpack_bits(packed, 10.0)
    with pytest.raises(ValueError, match="padding bits"):
        bitops.unpack_bits(torch.tensor([[0, 0b100]], dtype=torch.uint8), 10)


def test_bad_input_xnor_matmul():
    a, b = randn(3, 10), randn(4, 10)
    for fn in (bitops.xnor_matmul, bitops.xnor_matmul_reference):
        with pytest.raises(TypeError, match="^a must"):
            fn(a.numpy(), b)
        with pytest.raises(TypeError, match="^b must"):
            fn(a, b > 0)
        with pytest.raises(TypeError, match="^a must"):
            fn(a.to(torch.complex64), b)
        with pytest.raises(ValueError, match="a must be 2-D"):
            fn(a[None], b)
        with pytest.raises(ValueError, match="same K"):
            fn(a, randn(4, 11))
        with pytest.raises(ValueError, match="b must not contain NaN"):
            fn(a, b.index_put((torch.tensor(1), torch.tensor(9)), torch.tensor(float("nan"))))
        with pytest.raises(ValueError, match="a must not contain NaN"):
            fn(torch.full((2, 70), float("nan")), torch.ones(1, 70))
    pa, pb = bitops.pack_bits(a), bitops.pack_bits(b)
    with pytest.raises(TypeError, match="a_packed"):
        bitops.xnor_matmul_packed(a, pb, 10)
    with pytest.raises(ValueError, match="b_packed"):
        bitops.xnor_matmul_packed(pa, bitops.pack_bits(randn(4, 20)), 10)
    with pytest.raises(ValueError, match="a_packed must be 2-D"):
        bitops.xnor_matmul_packed(pa[None], pb, 10)
    with pytest.raises(ValueError, match="padding bits"):
        bitops.xnor_matmul_packed(pa, pb | 0b1000_0000, 10)
    with pytest.raises(ValueError, match="^k must"):
        bitops.xnor_matmul_packed(pa, pb, 0)


def test_bad_input_binary_conv2d():
    x, w = randn(1, 3, 6, 6), randn(2, 3, 3, 3)
    with pytest.raises(ValueError, match="^method must"):
        bitops.binary_conv2d(x, w, method="winograd")
    for fn in (bitops.binary_conv2d, bitops.binary_conv2d_reference):
        for bad in (2, 0.5, True, "-1"):
            with pytest.raises(ValueError, match="^pad_value must"):
                fn(x, w, 1, 1, pad_value=bad)
        with pytest.raises(ValueError, match="x must be 4-D"):
            fn(x[0], w)
        with pytest.raises(ValueError, match="w must be 4-D"):
            fn(x, w[0])
        with pytest.raises(ValueError, match="channels"):
            fn(x, randn(2, 4, 3, 3))
        with pytest.raises(TypeError, match="^w must"):
            fn(x, w.to(torch.complex64))
        with pytest.raises(ValueError, match="padding"):
            fn(x, w, padding=-1)
        with pytest.raises(ValueError, match="padding"):
            fn(x, w, padding=(1, -1))
        with pytest.raises(ValueError, match="stride"):
            fn(x, w, stride=0)
        with pytest.raises(ValueError, match="stride"):
            fn(x, w, stride=(1, 2, 3))
        with pytest.raises(TypeError, match="stride"):
            fn(x, w, stride=1.5)
        with pytest.raises(ValueError, match="larger than"):
            fn(x, randn(2, 3, 7, 7))
        with pytest.raises(ValueError, match="kernel"):
            fn(x, randn(2, 3, 0, 3))
        with pytest.raises(ValueError, match="x must not contain NaN"):
            fn(x.clone().fill_(float("nan")), w)
        with pytest.raises(ValueError, match="w must not contain NaN"):
            fn(x, w.clone().fill_(float("nan")))


def test_bad_input_bitserial_matmul():
    a = torch.tensor([[0, 1, 2, 3, 0], [3, 2, 1, 0, 1], [1, 1, 1, 1, 1]])
    b = torch.tensor([[0, 1, 2, 3, 3], [3, 2, 1, 0, 0]])
    with pytest.raises(ValueError, match="a_bits"):
        bitops.bitserial_matmul(a, b, 0, 2)
    with pytest.raises(ValueError, match="b_bits"):
        bitops.bitserial_matmul(a, b, 2, 33)
    with pytest.raises(TypeError, match="a_bits"):
        bitops.bitserial_matmul(a, b, 2.0, 2)
    with pytest.raises(ValueError, match=r"a must have values in \[0, 2\*\*2\)"):
        bitops.bitserial_matmul(a - 1, b, 2, 2)
    with pytest.raises(ValueError, match="b must have values"):
        bitops.bitserial_matmul(a, b, 2, 1)  # b holds 2 or 3
    with pytest.raises(ValueError, match="a must hold integer values"):
        bitops.bitserial_matmul(a.float() + 0.5, b, 2, 2)
    with pytest.raises(ValueError, match="a must hold integer values"):
        bitops.bitserial_matmul(torch.full((3, 5), float("nan")), b, 2, 2)
    with pytest.raises(ValueError, match="same K"):
        bitops.bitserial_matmul(a, b[:, :4], 2, 2)
    with pytest.raises(ValueError, match="b must be 2-D"):
        bitops.bitserial_matmul(a, b[0], 2, 2)
    with pytest.raises(TypeError, match="^a must"):
        bitops.bitserial_matmul(a > 0, b, 1, 2)


def test_bad_input_quantize_multiplier():
    for bad in (-0.5, float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="real_multiplier"):
            bitops.quantize_multiplier(bad)
    for bad in ("0.5", None, torch.tensor(0.5), True, 1j):
        with pytest.raises(TypeError, match="real_multiplier"):
            bitops.quantize_multiplier(bad)


def test_bad_input_requantize():
    acc = torch.tensor([1, 2], dtype=torch.int32)
    for bad in (acc.to(torch.int64), acc.float(), [1, 2]):
        with pytest.raises(TypeError, match="acc"):
            bitops.requantize(bad, 2**30, 0)
    for m0 in (-1, 2**31):
        with pytest.raises(ValueError, match="m0"):
            bitops.requantize(acc, m0, 0)
    with pytest.raises(TypeError, match="m0"):
        bitops.requantize(acc, float(2**30), 0)
    for shift in (-32, 31):
        with pytest.raises(ValueError, match="shift"):
            bitops.requantize(acc, 2**30, shift)
    with pytest.raises(ValueError, match="overflows int32"):
        bitops.requantize(torch.tensor([2**20], dtype=torch.int32), 2**30, 11)
    assert bitops.requantize(torch.tensor([2**20 - 1], dtype=torch.int32), 2**30, 11).item() == 2**30 - 2**10


# ------------------------------------------------------------------------------------------------ CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_in_device_out_and_equal_to_cpu():
    cuda = torch.device("cuda")
    a, b = with_zeros(randn(9, 129, seed=20)), randn(7, 129, seed=21)
    x, w = randn(2, 65, 9, 8, seed=22), randn(3, 65, 3, 3, seed=23)
    ia, ib = torch.randint(0, 16, (4, 33)), torch.randint(0, 8, (5, 33))
    acc = torch.randint(INT32_MIN, INT32_MAX, (100,), dtype=torch.int32)
    cases = [
        (bitops.pack_bits, (a,)),
        (bitops.unpack_bits, (bitops.pack_bits(a), 129)),
        (bitops.xnor_matmul, (a, b)),
        (bitops.xnor_matmul_reference, (a, b)),
        (bitops.xnor_matmul_packed, (bitops.pack_bits(a), bitops.pack_bits(b), 129)),
        (bitops.binary_conv2d, (x, w, (2, 1), 1)),
        (bitops.binary_conv2d_reference, (x, w, 1, (2, 0))),
        (bitops.bitserial_matmul, (ia, ib, 4, 3)),
        (bitops.requantize, (acc, 1518498372, -5)),
    ]
    for fn, args in cases:
        on_cuda = fn(*[t.to(cuda) if isinstance(t, torch.Tensor) else t for t in args])
        assert on_cuda.device.type == "cuda", fn.__name__
        assert torch.equal(on_cuda.cpu(), fn(*args)), fn.__name__


def test_concurrent_calls_from_python_threads():
    # The kernels' thread pool must not be entered twice at once (numba's workqueue pool would abort the
    # process); bitops serialises its kernel calls, so threads may share it.
    from concurrent.futures import ThreadPoolExecutor

    a, b = randn(64, 300, seed=30), randn(48, 300, seed=31)
    x, w = randn(2, 70, 9, 9, seed=32), randn(5, 70, 3, 3, seed=33)
    expected_mm, expected_conv = sign_matmul(a, b), sign_conv(x, w, 1, 1)
    with ThreadPoolExecutor(4) as pool:
        mms = [pool.submit(bitops.xnor_matmul, a, b) for _ in range(8)]
        convs = [pool.submit(bitops.binary_conv2d, x, w, 1, 1) for _ in range(8)]
        assert all(torch.equal(f.result(), expected_mm) for f in mms)
        assert all(torch.equal(f.result(), expected_conv) for f in convs)
