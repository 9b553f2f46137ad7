"""Tests of qteach.quant: ranges, observer parameters, and fake quantization bit-exact against PyTorch."""

from __future__ import annotations

import math

import pytest
import torch
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

from qteach import quant

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

BITS = list(range(2, 9))
SIGNED = [False, True]
EPS = torch.finfo(torch.float32).eps


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """The integer range, written out independently of qteach.quant.qrange."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def random_x(*shape, seed=0, spread=3.0):
    generator = torch.Generator().manual_seed(seed)
    return spread * torch.randn(*shape, generator=generator)


def some_qparams(bits, signed, lo=-2.0, hi=2.5):
    """Per-tensor parameters for a range narrower than the random data, so that some values clip."""
    return quant.qparams(lo, hi, bits, signed)


# --------------------------------------------------------------------------------------------------- qrange


@pytest.mark.parametrize("bits, signed, expected", [
    (1, False, (0, 1)),
    (1, True, (-1, 0)),
    (2, False, (0, 3)),
    (2, True, (-2, 1)),
    (4, False, (0, 15)),
    (4, True, (-8, 7)),
    (8, False, (0, 255)),
    (8, True, (-128, 127)),
    (16, True, (-32768, 32767)),
    (32, False, (0, 4294967295)),
    (32, True, (-2147483648, 2147483647)),
])
def test_qrange_values(bits, signed, expected):
    assert quant.qrange(bits, signed) == expected


# -------------------------------------------------------------------------------------- qparams vs torch.ao

RANGES = [(-0.3, 1.7), (0.3, 1.7), (-2.5, -0.4), (-1.0, 1.0), (-0.001, 1000.0), (-7.25, 0.01)]
SCHEMES = [  # (torch dtype, signed, symmetric, torch qscheme)
    (torch.quint8, False, False, torch.per_tensor_affine),
    (torch.qint8, True, False, torch.per_tensor_affine),
    (torch.quint8, False, True, torch.per_tensor_symmetric),
    (torch.qint8, True, True, torch.per_tensor_symmetric),
]
PER_CHANNEL = {torch.per_tensor_affine: torch.per_channel_affine,
               torch.per_tensor_symmetric: torch.per_channel_symmetric}


def observer_qparams(lo, hi, dtype, qscheme, quant_min=None, quant_max=None):
    """Scale and zero point of torch.ao's MinMaxObserver (or PerChannelMinMaxObserver for 1-d lo/hi),
    converted to qteach's conventions (per tensor: 0-d; float32 scale, int64 zero point)."""
    custom = {} if quant_min is None else dict(quant_min=quant_min, quant_max=quant_max)
    lo, hi = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
    if lo.dim() == 1:
        observer = PerChannelMinMaxObserver(ch_axis=0, dtype=dtype, qscheme=PER_CHANNEL[qscheme], **custom)
        observer(torch.stack([lo, hi], dim=1))
        scale, zero_point = observer.calculate_qparams()
    else:
        observer = MinMaxObserver(dtype=dtype, qscheme=qscheme, **custom)
        observer(torch.stack([lo, hi]))
        scale, zero_point = observer.calculate_qparams()
        scale, zero_point = scale.reshape(()), zero_point.reshape(())
    return scale.to(torch.float32), zero_point.to(torch.int64)


def assert_qparams_equal(actual, expected):
    (scale, zero_point), (expected_scale, expected_zero_point) = actual, expected
    assert scale.dtype == torch.float32 and zero_point.dtype == torch.int64
    assert scale.shape == expected_scale.shape and zero_point.shape == expected_zero_point.shape
    assert torch.equal(scale, expected_scale), (scale, expected_scale)
    assert torch.equal(zero_point, expected_zero_point), (zero_point, expected_zero_point)


@pytest.mark.parametrize("dtype, signed, symmetric, qscheme", SCHEMES)
@pytest.mark.parametrize("lo, hi", RANGES)
def test_qparams_equals_minmax_observer(lo, hi, dtype, signed, symmetric, qscheme):
    expected = observer_qparams(lo, hi, dtype, qscheme)
    assert_qparams_equal(quant.qparams(lo, hi, 8, signed, symmetric), expected)


@pytest.mark.parametrize("dtype, signed, symmetric, qscheme", SCHEMES)
def test_qparams_per_channel_equals_per_channel_observer(dtype, signed, symmetric, qscheme):
    lo = torch.tensor([-0.3, 0.3, -2.5, -1.0, 0.0, -0.7, -1e-3])
    hi = torch.tensor([1.7, 1.7, -0.4, 1.0, 0.0, 3.1, 1e3])
    expected = observer_qparams(lo, hi, dtype, qscheme)
    assert_qparams_equal(quant.qparams(lo, hi, 8, signed, symmetric), expected)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("signed", SIGNED)
@pytest.mark.parametrize("lo, hi", RANGES)
def test_qparams_affine_custom_range_equals_observer(lo, hi, bits, signed):
    qmin, qmax = int_range(bits, signed)
    dtype = torch.qint8 if signed else torch.quint8
    expected = observer_qparams(lo, hi, dtype, torch.per_tensor_affine, qmin, qmax)
    assert_qparams_equal(quant.qparams(lo, hi, bits, signed), expected)


@pytest.mark.parametrize("bits", [12, 16])
@pytest.mark.parametrize("lo, hi", RANGES)
def test_qparams_affine_wide_signed_range_equals_observer(lo, hi, bits):
    qmin, qmax = int_range(bits, True)
    expected = observer_qparams(lo, hi, torch.qint32, torch.per_tensor_affine, qmin, qmax)
    assert_qparams_equal(quant.qparams(lo, hi, bits, True), expected)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7])
def test_qparams_affine_custom_range_per_channel_equals_observer(bits):
    lo = torch.tensor([-0.3, 0.3, -2.5, -1.0, 0.0])
    hi = torch.tensor([1.7, 1.7, -0.4, 1.0, 0.0])
    qmin, qmax = int_range(bits, False)
    expected = observer_qparams(lo, hi, torch.quint8, torch.per_tensor_affine, qmin, qmax)
    assert_qparams_equal(quant.qparams(lo, hi, bits, False), expected)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7])
def test_qparams_symmetric_signed_custom_range_equals_observer(bits):
    qmin, qmax = int_range(bits, True)
    expected = observer_qparams(-0.3, 1.7, torch.qint8, torch.per_tensor_symmetric, qmin, qmax)
    assert_qparams_equal(quant.qparams(-0.3, 1.7, bits, True, True), expected)


@pytest.mark.parametrize("bits, expected_zero_point", [(2, 2), (4, 8), (8, 128)])
def test_qparams_symmetric_unsigned_zero_point_is_half_range(bits, expected_zero_point):
    scale, zero_point = quant.qparams(-1.0, 3.0, bits, signed=False, symmetric=True)
    assert int(zero_point) == expected_zero_point
    qmin, qmax = int_range(bits, False)
    assert float(scale) == pytest.approx(3.0 / ((qmax - qmin) / 2), rel=1e-6)


def test_qparams_hand_computed_affine():
    scale, zero_point = quant.qparams(-1.0, 3.0, 8, signed=False)
    assert float(scale) == pytest.approx(4.0 / 255, rel=1e-7)
    assert int(zero_point) == 64  # 0 - round(-1 / (4/255)) = round(63.75)


@pytest.mark.parametrize("lo, hi, widened_lo, widened_hi", [
    (0.5, 2.0, 0.0, 2.0),     # all positive: min widened down to 0
    (-2.0, -0.5, -2.0, 0.0),  # all negative: max widened up to 0
])
def test_qparams_widens_range_to_contain_zero(lo, hi, widened_lo, widened_hi):
    assert_qparams_equal(quant.qparams(lo, hi), quant.qparams(widened_lo, widened_hi))


def test_qparams_widened_range_hand_computed():
    scale, zero_point = quant.qparams(-2.0, -0.5)
    assert float(scale) == pytest.approx(2.0 / 255, rel=1e-7)
    assert int(zero_point) == 255
    scale, zero_point = quant.qparams(0.5, 2.0)
    assert int(zero_point) == 0


@pytest.mark.parametrize("symmetric, expected_zero_point", [(False, 0), (True, 128)])
@pytest.mark.parametrize("lo, hi", [(0.0, 0.0), (-1e-12, 1e-12)])
def test_qparams_scale_floored_at_float32_eps(lo, hi, symmetric, expected_zero_point):
    scale, zero_point = quant.qparams(lo, hi, 8, False, symmetric)
    assert float(scale) == EPS
    assert int(zero_point) == expected_zero_point


def test_qparams_accepts_tensors_and_returns_input_shape():
    scale, zero_point = quant.qparams(torch.tensor(-1.0), torch.tensor(1.0))
    assert scale.shape == () and zero_point.shape == ()
    scale, zero_point = quant.qparams(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 2.0]))
    assert scale.shape == (2,) and zero_point.shape == (2,)


# ------------------------------------------------------------------------------- fake_quantize vs PyTorch


def torch_fake_quantize(x, scale, zero_point, bits, signed, axis=None):
    qmin, qmax = int_range(bits, signed)
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), qmin, qmax)
    return torch.fake_quantize_per_channel_affine(x, scale.to(torch.float32), zero_point.to(torch.int32),
                                                  axis % x.dim(), qmin, qmax)


def per_channel_params(x, axis, bits, signed, shrink=0.8):
    """Per-channel parameters for ranges a little narrower than each channel's data (so some values clip)."""
    dims = [d for d in range(x.dim()) if d != axis % x.dim()]
    return quant.qparams(shrink * x.amin(dim=dims), shrink * x.amax(dim=dims), bits, signed)


def tie_points(scale: float, zero_point: int, bits: int, signed: bool) -> torch.Tensor:
    """Values exactly at every grid point and every half step k + 0.5 (plus a margin beyond the range)."""
    qmin, qmax = int_range(bits, signed)
    k = torch.arange(qmin - zero_point - 3, qmax - zero_point + 3, dtype=torch.float32)
    return torch.cat([k, k + 0.5, -(k + 0.5)]) * scale


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_per_tensor_equals_torch_on_random_data(bits, signed):
    x = random_x(4096, seed=bits)
    scale, zero_point = some_qparams(bits, signed)
    expected = torch_fake_quantize(x, scale, zero_point, bits, signed)
    assert torch.equal(quant.fake_quantize(x, scale, zero_point, bits, signed), expected)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
@pytest.mark.parametrize("scale", [2.0 ** -3, 0.5, 0.1, 0.3, 1.0 / 3])
def test_fake_quantize_per_tensor_equals_torch_on_ties(bits, signed, scale):
    qmin, qmax = int_range(bits, signed)
    zero_point = qmin + (qmax - qmin) // 3
    x = tie_points(scale, zero_point, bits, signed)
    expected = torch_fake_quantize(x, scale, zero_point, bits, signed)
    actual = quant.fake_quantize(x, torch.tensor(scale), torch.tensor(zero_point), bits, signed)
    assert torch.equal(actual, expected)


def test_exact_ties_round_half_to_even():
    # scale 1, zero point 0: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5])
    actual = quant.fake_quantize(x, torch.tensor(1.0), torch.tensor(0), 8, signed=True)
    assert actual.tolist() == [0.0, 2.0, 2.0, 0.0, -2.0]


def test_fake_quantize_multiplies_by_reciprocal_like_torch():
    """Find inputs where round(x / s) and round(x * (1 / s)) disagree; qteach must follow torch there."""
    scale = torch.tensor(0.1)
    k = torch.arange(-100, 100, dtype=torch.float32)
    candidates = torch.cat([(k + 0.5) * scale, torch.nextafter((k + 0.5) * scale, torch.tensor(math.inf)),
                            torch.nextafter((k + 0.5) * scale, torch.tensor(-math.inf))])
    disagree = torch.round(candidates / scale) != torch.round(candidates * (1.0 / scale))
    x = candidates[disagree]
    assert x.numel() > 0, "no distinguishing inputs found; the test would be vacuous"
    expected = torch.fake_quantize_per_tensor_affine(x, float(scale), 0, -128, 127)
    assert torch.equal(quant.fake_quantize(x, scale, torch.tensor(0), 8, True), expected)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_fake_quantize_per_channel_equals_torch_on_random_data(bits, signed, axis):
    x = random_x(5, 6, 7, seed=bits + 10 * axis)
    scale, zero_point = per_channel_params(x, axis, bits, signed)
    expected = torch_fake_quantize(x, scale, zero_point, bits, signed, axis)
    assert torch.equal(quant.fake_quantize(x, scale, zero_point, bits, signed, axis=axis), expected)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_fake_quantize_per_channel_equals_torch_on_ties(bits, signed, axis):
    qmin, qmax = int_range(bits, signed)
    scales = torch.tensor([2.0 ** -2, 2.0 ** -4, 0.1])
    zero_points = torch.tensor([qmin, qmin + (qmax - qmin) // 2, qmax])
    columns = [tie_points(float(s), int(z), bits, signed) for s, z in zip(scales, zero_points)]
    n = min(len(c) for c in columns)
    x = torch.stack([c[:n] for c in columns])  # (3, n): channel c holds the ties of (scale_c, zp_c)
    x = x.reshape(3, 1, n) if axis == 0 else x.reshape(1, 3, n)  # channels on dim 0 or dim 1
    if axis == -1:
        x = x.permute(0, 2, 1).contiguous()  # channels on the last dim
    expected = torch_fake_quantize(x, scales, zero_points, bits, signed, axis)
    assert torch.equal(quant.fake_quantize(x, scales, zero_points, bits, signed, axis=axis), expected)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_per_tensor_gradient_equals_torch(bits, signed):
    scale, zero_point = some_qparams(bits, signed)
    x = torch.cat([random_x(512, seed=1), tie_points(float(scale), int(zero_point), bits, signed)])
    upstream = random_x(x.numel(), seed=2)
    ours = x.clone().requires_grad_(True)
    quant.fake_quantize(ours, scale, zero_point, bits, signed).backward(upstream)
    theirs = x.clone().requires_grad_(True)
    torch_fake_quantize(theirs, scale, zero_point, bits, signed).backward(upstream)
    assert torch.equal(ours.grad, theirs.grad)
    assert (ours.grad == 0).any() and (ours.grad != 0).any()  # both regions are exercised


@pytest.mark.parametrize("signed", SIGNED)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_fake_quantize_per_channel_gradient_equals_torch(signed, axis):
    x = random_x(4, 5, 6, seed=3)
    scale, zero_point = per_channel_params(x, axis, 4, signed, shrink=0.5)
    upstream = random_x(4, 5, 6, seed=4)
    ours = x.clone().requires_grad_(True)
    quant.fake_quantize(ours, scale, zero_point, 4, signed, axis=axis).backward(upstream)
    theirs = x.clone().requires_grad_(True)
    torch_fake_quantize(theirs, scale, zero_point, 4, signed, axis).backward(upstream)
    assert torch.equal(ours.grad, theirs.grad)
    assert (ours.grad == 0).any() and (ours.grad != 0).any()


def test_fake_quantize_gradient_is_straight_through_inside_zero_outside():
    scale, zero_point = torch.tensor(0.5), torch.tensor(0)  # 2-bit signed: levels -1.0 .. 0.5
    x = torch.tensor([-3.0, -1.0, 0.2, 0.5, 0.74, 0.76, 3.0], requires_grad=True)
    quant.fake_quantize(x, scale, zero_point, 2, True).sum().backward()
    # 0.74 rounds to code 1 (inside); 0.76 rounds to 2 > qmax = 1 (outside)
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


# ---------------------------------------------------------------------------- quantize and dequantize


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
def test_dequantize_quantize_round_trip_equals_fake_quantize(bits, signed):
    x = random_x(2048, seed=5)
    scale, zero_point = some_qparams(bits, signed)
    q = quant.quantize(x, scale, zero_point, bits, signed)
    assert q.dtype == torch.int64
    qmin, qmax = int_range(bits, signed)
    assert int(q.min()) >= qmin and int(q.max()) <= qmax
    x_hat = quant.dequantize(q, scale, zero_point)
    assert x_hat.dtype == torch.float32
    assert torch.equal(x_hat, quant.fake_quantize(x, scale, zero_point, bits, signed))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_dequantize_quantize_round_trip_per_channel(axis):
    x = random_x(3, 4, 5, seed=6)
    scale, zero_point = per_channel_params(x, axis, 4, True)
    q = quant.quantize(x, scale, zero_point, 4, True, axis=axis)
    x_hat = quant.dequantize(q, scale, zero_point, axis=axis)
    assert torch.equal(x_hat, quant.fake_quantize(x, scale, zero_point, 4, True, axis=axis))


@pytest.mark.parametrize("dtype, signed", [(torch.quint8, False), (torch.qint8, True)])
def test_quantize_codes_equal_torch_quantize_per_tensor(dtype, signed):
    # Random data only: on exact ties torch.quantize_per_tensor (fbgemm) rounds x/s + z as a whole, while
    # fake_quantize (and so qteach) rounds x/s first, then adds z; the two differ at ties when z is odd.
    x = random_x(4096, seed=7)
    scale, zero_point = quant.qparams(-2.0, 2.5, 8, signed)
    expected = torch.quantize_per_tensor(x, float(scale), int(zero_point), dtype).int_repr().to(torch.int64)
    assert torch.equal(quant.quantize(x, scale, zero_point, 8, signed), expected)


def test_dequantize_hand_computed():
    q = torch.tensor([0, 3, 10, 255])
    assert quant.dequantize(q, torch.tensor(0.5), torch.tensor(3)).tolist() == [-1.5, 0.0, 3.5, 126.0]


# ---------------------------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_is_idempotent(bits, signed):
    x = random_x(2048, seed=8)
    scale, zero_point = some_qparams(bits, signed)
    once = quant.fake_quantize(x, scale, zero_point, bits, signed)
    assert torch.equal(quant.fake_quantize(once, scale, zero_point, bits, signed), once)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_output_within_representable_range(bits, signed):
    x = random_x(2048, seed=9, spread=10.0)
    scale, zero_point = some_qparams(bits, signed)
    qmin, qmax = int_range(bits, signed)
    y = quant.fake_quantize(x, scale, zero_point, bits, signed)
    assert float(y.min()) == pytest.approx(float(scale) * (qmin - int(zero_point)), rel=1e-6)
    assert float(y.max()) == pytest.approx(float(scale) * (qmax - int(zero_point)), rel=1e-6)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_is_monotonic(bits, signed):
    x = torch.linspace(-6, 6, 5001)
    scale, zero_point = some_qparams(bits, signed)
    y = quant.fake_quantize(x, scale, zero_point, bits, signed)
    assert bool((y[1:] >= y[:-1]).all())


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_has_at_most_2_to_the_bits_levels(bits, signed):
    x = torch.linspace(-6, 6, 20001)
    scale, zero_point = some_qparams(bits, signed)
    levels = torch.unique(quant.fake_quantize(x, scale, zero_point, bits, signed))
    assert levels.numel() <= 2 ** bits
    assert levels.numel() == 2 ** bits  # the sweep covers the whole range, so every level is reached


@pytest.mark.parametrize("signed", SIGNED)
def test_infinities_saturate(signed):
    scale, zero_point = quant.qparams(-1.0, 2.0, 8, signed)
    qmin, qmax = int_range(8, signed)
    x = torch.tensor([math.inf, -math.inf])
    y = quant.fake_quantize(x, scale, zero_point, 8, signed)
    expected = torch.stack([(qmax - zero_point) * scale, (qmin - zero_point) * scale]).to(torch.float32)
    assert torch.equal(y, expected)
    assert quant.quantize(x, scale, zero_point, 8, signed).tolist() == [qmax, qmin]


@pytest.mark.parametrize("bits", [8, 16, 24, 25, 31, 32])
@pytest.mark.parametrize("signed", SIGNED)
def test_quantize_saturates_to_exact_range_ends_for_wide_codes(bits, signed):
    """Codes are int64 and must stay inside [qmin, qmax] even where qmax has no exact float32 value (bits > 24)."""
    qmin, qmax = int_range(bits, signed)
    x = torch.tensor([math.inf, -math.inf, 1e30, -1e30])
    assert quant.quantize(x, torch.tensor(1.0), torch.tensor(0), bits, signed).tolist() == [qmax, qmin, qmax, qmin]


def test_infinities_have_zero_gradient():
    x = torch.tensor([math.inf, -math.inf, 0.0], requires_grad=True)
    scale, zero_point = quant.qparams(-1.0, 2.0)
    quant.fake_quantize(x, scale, zero_point).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_fake_quantize_keeps_float64_dtype():
    x = random_x(100, seed=10).double()
    scale, zero_point = some_qparams(8, False)
    y = quant.fake_quantize(x, scale, zero_point)
    assert y.dtype == torch.float64
    assert torch.equal(y.float(), quant.fake_quantize(x.float(), scale, zero_point))


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                   reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
def test_device_is_preserved(device):
    x = random_x(64, seed=11).to(device)
    scale, zero_point = quant.qparams(x.min(), x.max(), 4)
    assert scale.device.type == device and zero_point.device.type == device
    assert quant.fake_quantize(x, scale, zero_point, 4).device.type == device
    q = quant.quantize(x, scale, zero_point, 4)
    assert q.device.type == device
    assert quant.dequantize(q, scale, zero_point).device.type == device
    # parameters given on the CPU follow x
    assert quant.fake_quantize(x, scale.cpu(), zero_point.cpu(), 4).device.type == device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("signed", SIGNED)
def test_fake_quantize_on_cuda_equals_torch_on_cuda(signed):
    x = torch.cat([random_x(4096, seed=12), tie_points(0.1, 5, 8, signed)]).cuda()
    scale, zero_point = quant.qparams(-2.0, 2.5, 8, signed)
    expected = torch_fake_quantize(x, scale, zero_point, 8, signed)
    assert torch.equal(quant.fake_quantize(x, scale.cuda(), zero_point.cuda(), 8, signed), expected)


# ---------------------------------------------------------------------------------------------- bad input

S, Z = torch.tensor(0.1), torch.tensor(0)
X = torch.randn(3, 4)


@pytest.mark.parametrize("bits, error", [(0, ValueError), (33, ValueError), (-1, ValueError), (True, TypeError),
                                         (2.0, TypeError), ("8", TypeError)])
def test_bad_bits(bits, error):
    with pytest.raises(error, match="bits"):
        quant.qrange(bits, False)
    with pytest.raises(error, match="bits"):
        quant.qparams(-1.0, 1.0, bits)
    with pytest.raises(error, match="bits"):
        quant.fake_quantize(X, S, Z, bits)
    with pytest.raises(error, match="bits"):
        quant.quantize(X, S, Z, bits)


@pytest.mark.parametrize("signed", [1, "yes", None])
def test_bad_signed(signed):
    with pytest.raises(TypeError, match="signed"):
        quant.qrange(8, signed)


def test_bad_symmetric():
    with pytest.raises(TypeError, match="symmetric"):
        quant.qparams(-1.0, 1.0, symmetric=1)


@pytest.mark.parametrize("scale", [0.0, -0.1, math.nan, math.inf, torch.tensor(0.0), torch.tensor(math.nan),
                                   torch.tensor(-1.0)])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_bad_scale(function, scale):
    with pytest.raises(ValueError, match="scale"):
        function(X, scale, Z)


@pytest.mark.parametrize("scale", [0.0, -0.1, math.nan])
def test_bad_scale_dequantize(scale):
    with pytest.raises(ValueError, match="scale"):
        quant.dequantize(torch.tensor([1, 2]), scale, Z)


@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_nan_in_x(function):
    x = torch.tensor([0.0, math.nan, 1.0])
    with pytest.raises(ValueError, match=r"\bx\b"):
        function(x, S, Z)


@pytest.mark.parametrize("x_min, x_max, name", [
    (math.nan, 1.0, "x_min"),
    (torch.tensor([0.0, math.nan]), torch.tensor([1.0, 1.0]), "x_min"),
    (-1.0, math.nan, "x_max"),
    (-math.inf, 1.0, "x_min"),
])
def test_nan_or_infinite_range(x_min, x_max, name):
    with pytest.raises(ValueError, match=name):
        quant.qparams(x_min, x_max)


@pytest.mark.parametrize("x_min, x_max", [(2.0, 1.0), (torch.tensor([0.0, 3.0]), torch.tensor([1.0, 2.0]))])
def test_x_min_greater_than_x_max(x_min, x_max):
    with pytest.raises(ValueError, match="x_min"):
        quant.qparams(x_min, x_max)


def test_x_min_2d():
    with pytest.raises(ValueError, match="x_min"):
        quant.qparams(torch.zeros(2, 2), torch.ones(2, 2))


def test_x_min_x_max_shape_mismatch():
    with pytest.raises(ValueError, match="x_min"):
        quant.qparams(torch.zeros(2), torch.ones(3))


@pytest.mark.parametrize("x_min", ["0", [0.0], True])
def test_x_min_wrong_type(x_min):
    with pytest.raises(TypeError, match="x_min"):
        quant.qparams(x_min, 1.0)


@pytest.mark.parametrize("x", [[1.0, 2.0], 1.0, None])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_non_tensor_x(function, x):
    with pytest.raises(TypeError, match=r"\bx\b"):
        function(x, S, Z)


@pytest.mark.parametrize("x", [torch.arange(5), torch.tensor([True, False])])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_integer_x(function, x):
    with pytest.raises(TypeError, match=r"\bx\b"):
        function(x, S, Z)


def test_float_q_for_dequantize():
    with pytest.raises(TypeError, match=r"\bq\b"):
        quant.dequantize(torch.tensor([1.0, 2.0]), S, Z)


@pytest.mark.parametrize("zero_point", [1.0, torch.tensor(1.0), torch.tensor(True)])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_float_zero_point(function, zero_point):
    with pytest.raises(TypeError, match="zero_point"):
        function(X, S, zero_point)


@pytest.mark.parametrize("zero_point, bits, signed", [(256, 8, False), (-1, 8, False), (128, 8, True),
                                                      (-129, 8, True), (2, 2, True), (4, 2, False)])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_zero_point_outside_range(function, zero_point, bits, signed):
    with pytest.raises(ValueError, match="zero_point"):
        function(X, S, torch.tensor(zero_point), bits, signed)


@pytest.mark.parametrize("scale, zero_point", [
    (torch.full((3,), 0.1), torch.zeros(4, dtype=torch.int64)),  # scale too short
    (torch.full((4,), 0.1), torch.zeros(3, dtype=torch.int64)),  # zero point too short
    (torch.full((5,), 0.1), torch.zeros(5, dtype=torch.int64)),  # both too long
])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_per_channel_length_mismatch(function, scale, zero_point):
    with pytest.raises(ValueError, match="scale"):
        function(X, scale, zero_point, axis=1)


def test_per_tensor_with_vector_parameters():
    with pytest.raises(ValueError, match="scale"):
        quant.fake_quantize(X, torch.full((4,), 0.1), torch.zeros(4, dtype=torch.int64))


@pytest.mark.parametrize("axis, error", [(2, ValueError), (-3, ValueError), (1.0, TypeError), (True, TypeError)])
@pytest.mark.parametrize("function", [quant.fake_quantize, quant.quantize])
def test_bad_axis(function, axis, error):
    with pytest.raises(error, match="axis"):
        function(X, torch.full((4,), 0.1), torch.zeros(4, dtype=torch.int64), axis=axis)
