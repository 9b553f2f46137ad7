"""Self-checks for the exercises of the Foundations chapter *Numbers and quantization*.

- ``check_1(my_qparams)``: affine, unsigned scale and zero point, against :func:`qteach.quant.qparams`.
- ``check_2(my_fake_quantize)``: unsigned quantize-dequantize by hand, against :func:`qteach.quant.fake_quantize`.
"""

from __future__ import annotations

import math

import torch

from qteach import quant
from qteach.checks import as_number, expect, expect_type, fail, passed, self_check

_SLUG = "numbers_and_quantization"
_EPS = torch.finfo(torch.float32).eps

# (x_min, x_max, bits): ranges across 0, entirely positive, entirely negative, lopsided, and 1 bit. None of them
# puts -x_min / s on a tie (k + 0.5), where float32 (the library) and float64 (Python) arithmetic may round the
# zero point differently; a symmetric range such as [-1, 1] always does, so none is used here.
_RANGES = [(-1.0, 1.3, 8), (-0.2, 1.7, 4), (0.5, 2.0, 4), (-3.0, -1.0, 3), (-0.75, 0.3, 2), (-1.0, 0.6, 1),
           (-12.5, 3.25, 8)]



@self_check
def check_1(my_qparams) -> None:
    """Check ``my_qparams(x_min, x_max, bits) -> (scale, zero_point)`` (affine, unsigned) against the library."""
    label = f"ex-{_SLUG}-1"
    expect(callable(my_qparams), label, "pass your function itself, e.g. check_1(my_qparams)")
    for x_min, x_max, bits in [*_RANGES, (0.0, 0.0, 8)]:
        result = my_qparams(x_min, x_max, bits)
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               "return a pair (scale, zero_point)")
        scale = as_number(result[0], label, "the scale")
        zero_point = as_number(result[1], label, "the zero point")
        ref_scale, ref_zero_point = quant.qparams(x_min, x_max, bits)
        ref_scale, ref_zero_point = ref_scale.item(), int(ref_zero_point)
        case = f"for x_min={x_min}, x_max={x_max}, bits={bits}"
        if x_min == x_max == 0.0 and not math.isclose(scale, ref_scale, rel_tol=1e-6):
            fail(label, f"the scale {case} is {scale:.6g}; expected {ref_scale:.6g}. When the widened range is "
                        "empty, use the float32 machine epsilon torch.finfo(torch.float32).eps as the scale, so "
                        "that it is never 0")
        if not math.isclose(scale, ref_scale, rel_tol=1e-5):
            levels = 2**bits - 1
            if math.isclose(scale, (x_max - x_min) / levels, rel_tol=1e-5):
                hint = ("widen the range to contain 0 first (x_min -> min(x_min, 0), x_max -> max(x_max, 0)), so "
                        "that the real 0 is exactly representable")
            elif math.isclose(scale, (max(x_max, 0.0) - min(x_min, 0.0)) / 2**bits, rel_tol=1e-5):
                hint = "2**bits levels have 2**bits - 1 steps between them: divide by q_max - q_min = 2**bits - 1"
            else:
                hint = "the scale is s = (x_max - x_min) / (q_max - q_min) with the range widened to contain 0"
            fail(label, f"the scale {case} is {scale:.6g}; expected {ref_scale:.6g}. Hint: {hint}")
        if zero_point != ref_zero_point:
            ratio = min(x_min, 0.0) / ref_scale
            if zero_point == -math.floor(ratio) or zero_point == -math.ceil(ratio) or zero_point == -int(ratio):
                hint = "round x_min / s to the nearest integer (round, not floor, ceil or int())"
            elif zero_point == -ref_zero_point or zero_point == round(ratio):
                hint = "mind the sign: z = q_min - round(x_min / s), so a negative x_min gives a positive z"
            else:
                hint = "z = q_min - round(x_min / s), with q_min = 0 for unsigned codes"
            fail(label, f"the zero point {case} is {zero_point:g}; expected {ref_zero_point}. Hint: {hint}")
        expect(float(zero_point).is_integer(), label, f"the zero point {case} must be an integer")
    passed(label, f"scale and zero point equal qteach.quant.qparams on {len(_RANGES) + 1} ranges, "
                         "including ranges without 0 and an empty range")


def _fake_quantize_variants(x, scale, zero_point, bits):
    """Plausible mistakes, to name the one a wrong answer made."""
    qmax = 2**bits - 1
    inv = 1.0 / torch.tensor(scale, dtype=torch.float32)
    codes = torch.round(x * inv)
    return {
        "use torch.round (to the nearest integer), not floor or int() truncation":
            scale * (torch.clamp(torch.floor(x * inv) + zero_point, 0, qmax) - zero_point),
        "clamp the codes to [0, 2**bits - 1]: values outside the range must saturate (clipping)":
            scale * (codes + zero_point - zero_point),
        "the largest unsigned code is 2**bits - 1, not 2**bits":
            scale * (torch.clamp(codes + zero_point, 0, qmax + 1) - zero_point),
        "add the zero point before clamping and subtract it again before multiplying by the scale":
            scale * torch.clamp(codes, 0, qmax),
        "subtract the zero point when dequantizing: x_hat = s * (q - z)":
            scale * torch.clamp(codes + zero_point, 0, qmax),
    }


@self_check
def check_2(my_fake_quantize) -> None:
    """Check ``my_fake_quantize(x, scale, zero_point, bits)`` (unsigned) against :func:`quant.fake_quantize`."""
    label = f"ex-{_SLUG}-2"
    expect(callable(my_fake_quantize), label, "pass your function itself, e.g. check_2(my_fake_quantize)")
    generator = torch.Generator().manual_seed(1234)
    cases = 0
    for (x_min, x_max), bits in [((-1.0, 1.0), 8), ((-1.0, 1.0), 4), ((-0.3, 2.0), 3), ((0.0, 1.0), 2),
                                 ((-1.0, 1.0), 1)]:
        scale_t, zero_point_t = quant.qparams(x_min, x_max, bits)
        scale, zero_point = scale_t.item(), int(zero_point_t)
        # Values inside the range, far outside it (clipping), and exact zeros.
        x = 2.5 * (x_max - x_min) * torch.randn(500, generator=generator)
        x = torch.cat([x, torch.zeros(3), torch.tensor([x_min, x_max])])
        expected = quant.fake_quantize(x, scale_t, zero_point_t, bits)
        actual = my_fake_quantize(x.clone(), scale, zero_point, bits)
        expect_type(actual, torch.Tensor, label, "the result")
        expect(actual.shape == x.shape, label, f"the result has shape {tuple(actual.shape)}; expected "
                                               f"{tuple(x.shape)}, the shape of x")
        actual = actual.detach().to(torch.float32)
        # Tolerance: a value sitting exactly on a rounding boundary may round differently when x / s is computed
        # as x * (1 / s) (PyTorch) or as a division; allow at most one such value per case.
        wrong = (actual - expected).abs() > 1e-5 * max(1.0, abs(x_min), abs(x_max))
        if int(wrong.sum()) > 1:
            for hint, variant in _fake_quantize_variants(x, scale, zero_point, bits).items():
                if torch.allclose(actual, variant, atol=1e-5):
                    fail(label, f"{int(wrong.sum())} of {len(x)} values differ from qteach.quant.fake_quantize "
                                f"for the range [{x_min}, {x_max}] at {bits} bits. Hint: {hint}")
            first = int(wrong.nonzero()[0])
            fail(label, f"{int(wrong.sum())} of {len(x)} values differ from qteach.quant.fake_quantize for the "
                        f"range [{x_min}, {x_max}] at {bits} bits, e.g. x = {x[first].item():.4f} gives "
                        f"{actual[first].item():.4f} instead of {expected[first].item():.4f}. Hint: "
                        "q = clamp(round(x / s) + z, 0, 2**bits - 1), then x_hat = s * (q - z)")
        cases += 1
    passed(label, f"equal to qteach.quant.fake_quantize on {cases} ranges and bit widths (1 to 8 bits), "
                         "with values inside, outside and at the ends of the range")
