"""Self-checks for the exercises of the Foundations chapter *Numbers and quantization*.

- ``check_1(my_qparams)``: affine, unsigned scale and zero point, against :func:`qteach.quant.qparams`.
- ``check_2(mse_clip)``: the clip value that minimises the mean squared error of a signed, symmetric grid
  (the MSE rule the page mentions but does not show), against a fine grid search.
"""

from __future__ import annotations

import math

import torch

from qteach import quant
from qteach.checks import as_number, expect, fail, passed, self_check

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


def _clip_mse(x: torch.Tensor, bits: int, clip: float) -> float:
    """Mean squared error of the signed, symmetric ``bits``-bit grid over ``[-clip, clip]`` on ``x``."""
    scale, zero_point = quant.qparams(-clip, clip, bits, signed=True, symmetric=True)
    return (x - quant.fake_quantize(x, scale, zero_point, bits, signed=True)).pow(2).mean().item()


def _db(mse_ratio: float) -> float:
    return 10 * math.log10(mse_ratio)


@self_check
def check_2(mse_clip) -> None:
    """Check ``mse_clip(x, bits) -> c``: the clip of a signed symmetric grid with the least MSE, within 0.1 dB of
    the best of a 400-point grid of clips; accepts any search that gets there."""
    label = f"ex-{_SLUG}-2"
    expect(callable(mse_clip), label, "pass your function itself, e.g. check_2(mse_clip)")
    generator = torch.Generator().manual_seed(2024)
    u = torch.rand(5000, generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12) - 0.5
    x = (-torch.sign(u) * torch.log1p(-2 * u.abs())).to(torch.float32)  # Laplace(0, 1) by inverse CDF
    x_max = x.abs().max().item()
    grid = torch.linspace(0.005 * x_max, x_max, 400)
    for bits in (2, 3, 4, 6):
        answer = mse_clip(x.clone(), bits)
        clip = as_number(answer, label, f"the clip at {bits} bits")
        expect(math.isfinite(clip) and clip > 0, label, f"the clip at {bits} bits is {clip:g}; it must be a "
                                                        "positive number (the grid covers [-c, c])")
        scale, zero_point = quant.qparams(-grid, grid, bits, signed=True, symmetric=True)
        rows = quant.fake_quantize(x.expand(len(grid), -1), scale, zero_point, bits, signed=True, axis=0)
        errors = (rows - x).pow(2).mean(dim=1)  # one row per candidate clip, all at once
        best = errors.min().item()
        mine = _clip_mse(x, bits, clip)
        if mine > best * 10 ** (0.1 / 10):
            if abs(clip - x_max) <= 1e-3 * x_max:
                hint = ("you returned the min-max range, max|x|, which never clips; search the clips below "
                        "max|x| for the one with the least error")
            elif clip > x_max:
                hint = "a clip above max|x| only makes the steps larger: search between 0 and max|x|"
            elif mine >= 0.95 * errors.max().item():
                hint = "you picked a clip with about the largest error: minimise the MSE (or maximise the SQNR)"
            else:
                hint = ("search more finely: the best clip moves with the bit width, and the error jumps a little "
                        "whenever a value changes level, so a few candidates, one fixed percentile or a "
                        "derivative-based optimiser can miss it; try a few hundred clips between a small "
                        "fraction of max|x| and max|x|")
            fail(label, f"at {bits} bits your clip c = {clip:.4g} gives an error {_db(mine / best):.2f} dB above "
                        f"the best clip the check found. Hint: {hint}")
    passed(label, "on 5,000 Laplace samples your clips are within 0.1 dB of the least-error clip at 2, 3, 4 and "
                  "6 bits")
