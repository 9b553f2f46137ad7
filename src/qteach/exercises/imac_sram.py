"""Self-checks of the chapter "IMAC: In-Memory Multi-Bit Multiplication and ACcumulation in 6T SRAM Array"
(Ali et al., 2020).

Each check calls the student's function on several inputs, compares with the reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "imac_sram"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: ADC bits when the weight bits are summed in analog --------------------------------------------

_CASES_1 = [(64, 4, 4), (1, 1, 1), (16, 2, 3), (128, 4, 4), (32, 8, 2), (7, 3, 5)]


def analog_weight_bits_reference(rows: int, a_bits: int, w_bits: int) -> int:
    """Bits to read every sum of rows * (2^A - 1) * (2^W - 1) + 1 values exactly."""
    return (rows * (2**a_bits - 1) * (2**w_bits - 1)).bit_length()


@self_check
def check_1(adc_bits_analog) -> str:
    """Check ``adc_bits_analog(rows, a_bits, w_bits)``: exact ADC bits when one ADC reads the binary-weighted sum."""
    label = _label(1)
    expect(callable(adc_bits_analog), label, "pass your function itself, e.g. check_1(adc_bits_analog)")
    for rows, a_bits, w_bits in _CASES_1:
        got = as_number(adc_bits_analog(rows, a_bits, w_bits), label, "adc_bits_analog")
        ref = analog_weight_bits_reference(rows, a_bits, w_bits)
        if got == ref:
            continue
        full = rows * (2**a_bits - 1) * (2**w_bits - 1)
        hint = "the sum takes every integer from 0 to R (2^A - 1)(2^W - 1): the ADC needs that many + 1 levels."
        if got == (rows * (2**a_bits - 1)).bit_length():
            hint = ("that is the per-column ADC of the page; summing the weight bits in analog multiplies the full "
                    "scale by 2^W - 1.")
        elif full > 1 and got == full.bit_length() - 1:
            hint = "2^b levels must cover F + 1 values (0 included): b = ceil(log2(F + 1)), not floor(log2 F)."
        elif got == rows * a_bits * w_bits or got == a_bits + w_bits:
            hint = "bits of a product add, but the R-row sum adds about log2(R) more: count the values, F + 1."
        fail(label, f"adc_bits_analog({rows}, {a_bits}, {w_bits}) = {got:g}, expected {ref}. {hint}")
    return passed(label, f"your ADC resolution is exact for {len(_CASES_1)} array shapes")


# --- exercise 2: from the array's integer sum back to the layer's output ----------------------------------------

_CASES_2 = [(100.0, 20.0, 4, 4), (0.0, 0.0, 2, 2), (37.0, 11.0, 3, 2), (450.0, 30.0, 4, 4), (5.0, 9.0, 2, 4)]


def dequantized_dot_reference(dot: float, row_sum: float, a_bits: int, w_bits: int) -> float:
    """a_q . w_q with w_q = 2 W / (2^W - 1) - 1 and a_q = X / (2^A - 1)."""
    return (2 * dot / (2**w_bits - 1) - row_sum) / (2**a_bits - 1)


@self_check
def check_2(dequantized_dot) -> str:
    """Check ``dequantized_dot(dot, row_sum, a_bits, w_bits)`` against the DoReFa codes' affine map."""
    label = _label(2)
    expect(callable(dequantized_dot), label, "pass your function itself, e.g. check_2(dequantized_dot)")
    for dot, row_sum, a_bits, w_bits in _CASES_2:
        got = as_number(dequantized_dot(dot, row_sum, a_bits, w_bits), label, "dequantized_dot")
        ref = dequantized_dot_reference(dot, row_sum, a_bits, w_bits)
        if abs(got - ref) <= 1e-6 * max(1.0, abs(ref)):
            continue
        na, nw = 2**a_bits - 1, 2**w_bits - 1
        hint = "w_q = low + step W with low = -1, step = 2 / (2^W - 1), and a_q = X / (2^A - 1)."
        if abs(got - 2 * dot / nw / na) <= 1e-6 * max(1.0, abs(ref)):
            hint = "the offset low = -1 of every weight adds -sum(X): subtract the row sum (computed digitally)."
        elif abs(got - (2 * dot / nw - row_sum)) <= 1e-6 * max(1.0, abs(ref)):
            hint = "the activation codes are X = (2^A - 1) a_q: divide by 2^A - 1."
        elif abs(got - (dot / nw - row_sum) / na) <= 1e-6 * max(1.0, abs(ref)):
            hint = "the weight step is 2 / (2^W - 1) (levels from -1 to +1), not 1 / (2^W - 1)."
        fail(label, f"dequantized_dot({dot}, {row_sum}, {a_bits}, {w_bits}) = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, f"your correction recovers a_q . w_q in {len(_CASES_2)} cases")
