"""Self-checks of the chapter "Phoenix: low-precision floating point" (Wu et al., 2020).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.phoenix_fp8` (and
PyTorch's ``float8_e5m2`` cast), and either prints the success line or raises ``AssertionError`` with a hint
naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach import data
from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import phoenix_fp8 as ph

_SLUG = "phoenix_fp8"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: E5M2 rounding by hand ---------------------------------------------------------------------------

_CASES_1 = [1.0, 1.1, 1.125, 1.375, 1.3, -2.5, 0.0, 3.0e-5, 2.0 ** -17, 3 * 2.0 ** -18, 2.0 ** -18, 1.0e-7, 5.0e-6,
            57344.0, 60000.0, 61440.0, 1.0e6, -1.0e6, 300.7, -0.1, 1000.0, 7.0]


def _reference_1(v: float) -> float:
    return torch.tensor([v], dtype=torch.float32).to(torch.float8_e5m2).float().item()


def _wrong_1(v: float, mode: str) -> float:
    a = abs(v)
    if a == 0:
        return v
    e = max(math.floor(math.log2(a)), -14)
    if mode == "flush" and a < 2.0 ** -14:
        return math.copysign(0.0, v)
    step = 2.0 ** (e - 2)
    k = a / step
    k = math.floor(k + 0.5) if mode == "half_up" else (math.floor(k) if mode == "truncate" else round(k))
    q = k * step
    if q > 57344.0:
        q = 57344.0 if mode == "saturate" else math.inf
    return math.copysign(q, v)


_HINTS_1 = [
    ("half_up", ("a value exactly halfway between two neighbours goes to the one with an even mantissa (ties to "
                "even), not always up: Python's round() and torch.round do this, math.floor(x + 0.5) does not.")),
    ("truncate", "round to the nearest value, do not truncate: the step at exponent e is 2^(e-2)."),
    ("flush", "below 2^-14 E5M2 has subnormals: keep the step at 2^(-14-2) = 2^-16 there instead of flushing to 0."),
    ("saturate", ("E5M2 follows IEEE 754: a value that rounds above 57344 becomes inf (PyTorch's cast does not "
                 "saturate).")),
]


@self_check
def check_1(round_e5m2) -> str:
    """Check ``round_e5m2(v)``: the nearest E5M2 value of the Python float ``v``, as a float."""
    label = _label(1)
    expect(callable(round_e5m2), label, "pass your function itself, e.g. check_1(round_e5m2)")
    for v in _CASES_1:
        got = as_number(round_e5m2(v), label, f"round_e5m2({v})")
        expected = _reference_1(v)
        if got == expected and math.copysign(1, got) == math.copysign(1, expected):
            continue
        hint = next((h for mode, h in _HINTS_1 if got == _wrong_1(v, mode)),
                    "find the exponent e = floor(log2|v|) (at least -14), round |v| / 2^(e-2) to an integer with "
                    "ties to even, multiply back, and keep the sign.")
        fail(label, f"round_e5m2({v}) = {got}, expected {expected}. {hint}")
    return passed(label, f"your rounding equals torch.float8_e5m2 on {len(_CASES_1)} values (ties, subnormals, "
                         "overflow)")


# --- exercise 2: which 8-bit format for which tensor ------------------------------------------------------------

def _tensors_2() -> dict:
    g = data.weight_samples(4000, "gaussian", seed=3)
    heavy = g.clone()
    heavy[::100] *= 30
    uniform = data.weight_samples(4000, "uniform", seed=4)
    sparse = data.weight_samples(4000, "laplace", seed=5) ** 3
    return {"uniform": uniform, "gaussian": g, "gaussian with outliers": heavy, "cubed laplace": sparse}


def _sqnrs(x: torch.Tensor, normalize: bool = True) -> dict:
    out = {}
    for e in range(1, 6):
        fmt = ph.float_format(e, 7 - e)
        out[e] = ph.sqnr_db(x, ph.normalized_quantize(x, fmt) if normalize else ph.quantize_float(x, fmt))
    return out


@self_check
def check_2(best_exponent_bits) -> str:
    """Check ``best_exponent_bits(x)``: the E in 1..5 whose normalized 1-E-(7-E) format has the highest SQNR."""
    label = _label(2)
    expect(callable(best_exponent_bits), label, "pass your function itself, e.g. check_2(best_exponent_bits)")
    for name, x in _tensors_2().items():
        got = best_exponent_bits(x.clone())
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"best_exponent_bits must return an int (the number of exponent bits), got {type(got).__name__}")
        scores = _sqnrs(x)
        best = max(scores, key=scores.get)
        if got == best:
            continue
        raw = _sqnrs(x, normalize=False)
        if got == min(scores, key=scores.get):
            hint = "you picked the format with the lowest SQNR: a higher SQNR means less quantization noise."
        elif got == 7 - best:
            hint = "return the number of exponent bits E, not the number of mantissa bits 7 - E."
        elif got == max(raw, key=raw.get):
            hint = "normalize first (ph.normalized_quantize): without it the tensor's scale decides, not its shape."
        else:
            hint = "compute ph.sqnr_db(x, ph.normalized_quantize(x, ph.float_format(E, 7 - E))) for E = 1..5."
        fail(label, f"for the {name} tensor you returned E = {got}, but E = {best} has the highest SQNR. {hint}")
    return passed(label, "your choice of exponent bits is the best one on 4 tensors of different shapes")
