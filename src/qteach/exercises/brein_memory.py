"""Self-checks of the chapter "BRein Memory" (Ando et al., JSSC 2018).

Each check calls the student's function on several inputs, compares with a reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import brein_memory as br

_SLUG = "brein_memory"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: predicted flip probability --------------------------------------------------------------------------

_MARGINS = torch.tensor([-7, -3, -2, -1, 0, 1, 2, 5, 12])
_SIGMAS = [0.5, 1.0, 2.0, 4.0]


def _phi(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2.0))


def flip_probability_reference(margin: torch.Tensor, sigma: float) -> torch.Tensor:
    """P(output changes) for y = +1 iff m + o >= 0 with o ~ N(0, sigma^2): Phi(-|m| / sigma) (0 for sigma = 0)."""
    m = margin.double()
    if sigma == 0:
        return torch.zeros_like(m)
    return _phi(-m.abs() / sigma)


@self_check
def check_1(flip_probability) -> str:
    """Check ``flip_probability(margin, sigma)`` against the Gaussian tail Phi(-|m| / sigma)."""
    label = _label(1)
    expect(callable(flip_probability), label, "pass your function itself, e.g. check_1(flip_probability)")
    for sigma in _SIGMAS:
        got = flip_probability(_MARGINS.clone(), sigma)
        expect_type(got, torch.Tensor, label, "flip_probability(margin, sigma)")
        expect(got.shape == _MARGINS.shape, label, f"return one probability per margin, shape {tuple(_MARGINS.shape)}"
                                                   f", got {tuple(got.shape)}")
        got = got.double()
        ref = flip_probability_reference(_MARGINS, sigma)
        if torch.allclose(got, ref, rtol=1e-4, atol=1e-7):
            continue
        if torch.allclose(got, 2 * ref, rtol=1e-4, atol=1e-7):
            hint = ("only one side of the Gaussian flips the output: a +1 output flips for o < -m, not for "
                    "|o| > m.")
        elif torch.allclose(got, 1 - ref, rtol=1e-4, atol=1e-7):
            hint = "that is the probability that the output stays the same."
        elif torch.allclose(got, flip_probability_reference(_MARGINS, sigma ** 2), rtol=1e-4, atol=1e-7):
            hint = "sigma is the standard deviation of the offset; divide the margin by sigma, not by sigma**2."
        elif torch.allclose(got[_MARGINS >= 0], ref[_MARGINS >= 0], rtol=1e-4, atol=1e-7):
            hint = ("right for +1 outputs (m >= 0); a -1 output (m < 0) flips when o >= -m = |m|: use |m| for "
                    "both signs.")
        else:
            hint = "a +1 output (m >= 0) flips when o < -m, with probability Phi(-m / sigma); use |m| for both signs."
        fail(label, f"wrong probabilities for sigma = {sigma}. {hint}")
    zero = flip_probability(_MARGINS.clone(), 0.0)
    expect(isinstance(zero, torch.Tensor) and bool((zero.double().nan_to_num(1.0) == 0).all()), label,
           "with sigma = 0 (no offset) no output flips: return zeros (avoid dividing by zero).")
    return passed(label, f"your flip probabilities match the Gaussian tail for {len(_SIGMAS)} offsets and sigma = 0")


# --- exercise 2: fJ per operation --------------------------------------------------------------------------------------

_CASES_2 = [(1.4, 0.6), (1.0, 1.0), (46.3, 1.0), (0.5, 0.002)]


@self_check
def check_2(fj_per_op) -> str:
    """Check ``fj_per_op(tops, watts)``: the energy of one operation in femtojoules."""
    label = _label(2)
    expect(callable(fj_per_op), label, "pass your function itself, e.g. check_2(fj_per_op)")
    for tops, watts in _CASES_2:
        got = as_number(fj_per_op(tops, watts), label, f"fj_per_op({tops}, {watts})")
        ref = br.chip_efficiency(tops, watts)[1]
        if math.isclose(got, ref, rel_tol=1e-6):
            continue
        ratio = got / ref
        if math.isclose(got, tops / watts, rel_tol=1e-6) and not math.isclose(tops / watts, ref, rel_tol=1e-6):
            hint = "that is TOPS/W, operations per joule; the energy per operation is its inverse."
        elif math.isclose(ratio, 1e-3, rel_tol=1e-6):
            hint = "that is in picojoules: 1 pJ = 1000 fJ."
        elif math.isclose(ratio, 1e-15, rel_tol=1e-6):
            hint = "that is in joules; multiply by 1e15 for femtojoules."
        elif math.isclose(ratio, 1e-12, rel_tol=1e-6) or math.isclose(ratio, 1e12, rel_tol=1e-6):
            hint = "a tera-operation is 1e12 operations: convert TOPS to operations per second first."
        else:
            hint = "energy per operation = power / operations per second = watts / (tops * 1e12) J, times 1e15 fJ."
        fail(label, f"fj_per_op({tops}, {watts}) = {got:.6g}, expected about {ref:.6g}. {hint}")
    return passed(label, f"your energies per operation are right for {len(_CASES_2)} chips")
