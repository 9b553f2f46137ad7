"""Self-checks of the chapter "An Energy-Efficient and High Throughput in-Memory Computing Bit-Cell With Excellent
Robustness Under Process Variations for Binary Neural Network" (Saha et al., 2020).

Each check calls the student's function on several inputs, compares with the reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "imc_bitcell_robust"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the word-line pulse that cancels a process corner ---------------------------------------------

_CASES_1 = [(2.0, 0.3), (2.0, -0.3), (1.0, 0.1), (4.0, 0.5), (0.5, -0.2), (3.0, 0.0), (2.5, 0.7)]


def tuned_pulse_reference(pulse: float, corner: float) -> float:
    """The pulse T' with 1 - exp(-T' / e^c) = 1 - exp(-T): T' = T e^c."""
    return pulse * math.exp(corner)


@self_check
def check_1(tuned_pulse) -> str:
    """Check ``tuned_pulse(pulse, corner)``: the pulse that restores the nominal charge at a process corner."""
    label = _label(1)
    expect(callable(tuned_pulse), label, "pass your function itself, e.g. check_1(tuned_pulse)")
    for pulse, corner in _CASES_1:
        got = as_number(tuned_pulse(pulse, corner), label, "tuned_pulse")
        ref = tuned_pulse_reference(pulse, corner)
        if abs(got - ref) <= 1e-6 * max(1.0, abs(ref)):
            continue
        hint = "the cell's charge depends on T / tau only; at the corner tau = e^c, so keep T' / e^c = T."
        if abs(got - pulse * math.exp(-corner)) <= 1e-6 * max(1.0, ref):
            hint = ("the direction is reversed: a slow corner (c > 0, a larger time constant) needs a longer "
                    "pulse, T' = T e^c, not a shorter one.")
        elif abs(got - pulse * (1 + corner)) <= 1e-6 * max(1.0, ref):
            hint = "T (1 + c) is only the first-order approximation of the exact T e^c."
        elif abs(got - (pulse + corner)) <= 1e-6 * max(1.0, ref):
            hint = "the corner multiplies the time constant by e^c; it does not add c to the pulse."
        fail(label, f"tuned_pulse({pulse}, {corner}) = {got:.4g}, expected {ref:.4g}. {hint}")
    return passed(label, f"your tuned pulse restores the nominal charge at {len(_CASES_1)} corners, slow and fast")


# --- exercise 2: batch norm folded into the comparator's reference ----------------------------------------------

_CASES_2 = [  # gamma > 0, beta, mean, var, eps, bias, k
    (1.0, 0.0, 0.0, 1.0, 1e-5, 0.0, 128),
    (0.7, 0.3, 4.0, 25.0, 1e-5, -1.5, 128),
    (2.0, -1.0, -6.0, 90.0, 0.1, 0.25, 128),
    (0.05, 0.2, 1.0, 0.5, 0.2, 0.8, 64),
    (1.3, 0.9, 10.0, 40.0, 1e-5, 2.0, 100),
]


def match_threshold_reference(gamma, beta, mean, var, eps, bias, k):
    """t with gamma (2m - k + bias - mean) / sqrt(var + eps) + beta >= 0  <=>  m >= t (for gamma > 0)."""
    return (k - bias + mean - beta * math.sqrt(var + eps) / gamma) / 2


@self_check
def check_2(match_threshold) -> str:
    """Check ``match_threshold(gamma, beta, mean, var, eps, bias, k)``: the number of matches at which the
    batch-normalised output turns +1."""
    label = _label(2)
    expect(callable(match_threshold), label, "pass your function itself, e.g. check_2(match_threshold)")
    for gamma, beta, mean, var, eps, bias, k in _CASES_2:
        got = as_number(match_threshold(gamma, beta, mean, var, eps, bias, k), label, "match_threshold")
        ref = match_threshold_reference(gamma, beta, mean, var, eps, bias, k)
        if abs(got - ref) <= 1e-6 * max(1.0, abs(ref)):
            continue
        sd = math.sqrt(var + eps)
        hint = "solve gamma (2m - K + b - mu) / sqrt(var + eps) + beta >= 0 for m."
        if abs(got - 2 * ref) <= 1e-6 * max(1.0, abs(ref)):
            hint = "the dot product is s = 2m - K, not m: divide by 2 at the end."
        elif abs(got - (k + bias + mean - beta * sd / gamma) / 2) <= 1e-6 * max(1.0, abs(ref)):
            hint = "the bias adds to s, so it lowers the threshold on m: subtract it."
        elif abs(got - (k - bias + mean + beta * sd / gamma) / 2) <= 1e-6 * max(1.0, abs(ref)):
            hint = "beta pushes the output up, so it lowers the threshold: subtract beta sqrt(var + eps) / gamma."
        elif abs(got - (k - bias + mean - beta * math.sqrt(var) / gamma) / 2) <= 1e-9 * max(1.0, abs(ref)):
            hint = "batch norm divides by sqrt(var + eps), not sqrt(var): keep eps."
        elif abs(got - (k - bias + mean - beta * gamma / sd) / 2) <= 1e-6 * max(1.0, abs(ref)):
            hint = "move beta across: gamma (s - mu) / sd >= -beta means s >= mu - beta sd / gamma."
        fail(label, f"match_threshold{(gamma, beta, mean, var, eps, bias, k)} = {got:.5g}, expected {ref:.5g}. "
                    f"{hint}")
    return passed(label, f"your thresholds are right for {len(_CASES_2)} batch-norm settings")
