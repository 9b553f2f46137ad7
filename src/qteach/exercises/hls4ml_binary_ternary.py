"""Self-checks of the chapter "Compressing deep neural networks on FPGAs to binary and ternary precision with
hls4ml" (Ngadiuba et al., 2020).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.hls4ml_binary_ternary`
or a direct count, and either prints the success line or raises ``AssertionError`` with a hint naming the likely
mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, fail, passed, self_check

_SLUG = "hls4ml_binary_ternary"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: integer thresholds for an integer accumulator --------------------------------------------------

_T_HI = torch.tensor([2.5, -3.0, 0.0, 7.9, -0.2, 11.0, -5.5, 0.49], dtype=torch.float64)
_T_LO = torch.tensor([-1.5, -9.0, -4.0, 2.1, -0.7, 3.0, -12.25, -0.49], dtype=torch.float64)
_GRID = torch.arange(-20, 21, dtype=torch.float64).unsqueeze(1)


@self_check
def check_1(integer_thresholds) -> str:
    """Check ``integer_thresholds(t_hi, t_lo)``: integer T_hi, T_lo with x > T_hi iff x > t_hi and x <= T_lo iff
    x <= t_lo for every integer x (gamma > 0)."""
    label = _label(1)
    expect(callable(integer_thresholds), label, "pass your function itself, e.g. check_1(integer_thresholds)")
    got = integer_thresholds(_T_HI.clone(), _T_LO.clone())
    expect(isinstance(got, tuple) and len(got) == 2, label, "return a pair (T_hi, T_lo)")
    hi, lo = (torch.as_tensor(g, dtype=torch.float64) for g in got)
    expect(hi.shape == _T_HI.shape and lo.shape == _T_LO.shape, label,
           f"return one threshold per neuron: shapes {tuple(_T_HI.shape)}")
    expect(bool((hi == hi.round()).all() and (lo == lo.round()).all()), label,
           "the thresholds must be integers: the accumulator is an integer register")
    ok_hi = bool(((_GRID > hi) == (_GRID > _T_HI)).all())
    ok_lo = bool(((_GRID <= lo) == (_GRID <= _T_LO)).all())
    if not (ok_hi and ok_lo):
        which = "T_hi" if not ok_hi else "T_lo"
        hint = "for an integer x, x > t holds exactly when x > floor(t) (hls4ml floors, bn_quant.py line 162)."
        if bool((hi == torch.ceil(_T_HI)).all()) or bool((lo == torch.ceil(_T_LO)).all()):
            hint = ("ceil is one too high where t is not an integer: x = ceil(t) is > t but not > ceil(t). "
                    + hint)
        elif bool((hi == torch.round(_T_HI)).all()) or bool((lo == torch.round(_T_LO)).all()):
            hint = "rounding to the nearest integer goes up for fractions above one half. " + hint
        fail(label, f"{which} decides differently from the float threshold for some integer x. {hint}")
    return passed(label, "your integer thresholds decide exactly like the float ones for every integer in [-20, 20]")


# --- exercise 2: where the multipliers are ---------------------------------------------------------------------

_CASES_2 = [(16, 1, 8), (16, 4, 8), (16, 1, None), (40, 2, 8), (7, 3, 6), (16, 2, None)]


def _multipliers_reference(in_features: int, width: int, first_bits) -> int:
    return 0 if first_bits is None else in_features * 64 * width


@self_check
def check_2(multipliers) -> str:
    """Check ``multipliers(in_features, width, first_bits)``: the multipliers of a freshly built binary jet_mlp."""
    label = _label(2)
    expect(callable(multipliers), label, "pass your function itself, e.g. check_2(multipliers)")
    for in_features, width, first_bits in _CASES_2:
        got = multipliers(in_features, width, first_bits)
        if hasattr(got, "item"):
            got = got.item()
        expected = _multipliers_reference(in_features, width, first_bits)
        if got == expected:
            continue
        hint = ("only the first layer multiplies two multi-bit numbers (16-bit inputs by 8-bit weights); every "
                "later layer multiplies by +-1, which is a negation, not a multiplier.")
        hidden = 64 * width * 32 * width + 32 * width * 32 * width + 32 * width * 5
        if first_bits is not None and got == expected + hidden:
            hint = "the binary layers need no multiplier: a product by +-1 is a sign flip. " + hint
        elif first_bits is None and got != 0:
            hint = "with first_bits=None the first layer is binary too: no multiplier is left anywhere."
        elif got == in_features * 64:
            hint = "the first layer is 64 * width neurons wide."
        fail(label, f"multipliers({in_features}, {width}, {first_bits}) = {got}, expected {expected}. {hint}")
    return passed(label, f"your multiplier counts are right for {len(_CASES_2)} models")
