"""Self-checks of the stochastic-weights chapter (notebooks/2018/stochastic_weights_fpga.ipynb).

Each check calls the student's function and either prints the success line or raises ``AssertionError`` with a
hint that names the likely mistake.
"""

from __future__ import annotations

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "stochastic_weights_fpga"
_GALOIS_TAPS = {3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5), 10: (10, 7)}


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: a Galois LFSR ----------------------------------------------------------------------------------


@self_check
def check_1(galois_step) -> str:
    """Check ``galois_step(state, n, taps)``: a Galois LFSR that runs through all 2^n - 1 non-zero states."""
    label = _label(1)
    expect(callable(galois_step), label, "pass your function itself, e.g. check_1(galois_step)")
    for n, taps in _GALOIS_TAPS.items():
        seen, state = set(), 1
        for _ in range(2**n - 1):
            state = galois_step(state, n, taps)
            expect(isinstance(state, int) and not isinstance(state, bool), label,
                   f"galois_step should return an int state, got {type(state).__name__}")
            if not 0 < state < 2**n:
                fail(label, f"with n = {n} the state {state} left the register: keep n bits (mask with 2^n - 1) "
                            "and never reach 0.")
            seen.add(state)
        if state != 1 or len(seen) != 2**n - 1:
            fail(label, f"with n = {n}, taps {taps} the register visits {len(seen)} states before repeating, not "
                        f"{2**n - 1}. Shift right; when the bit shifted out is 1, XOR the state with the mask "
                        "that has a 1 at position t - 1 for every tap t.")
    return passed(label, "your Galois LFSR has the maximal period for n = 3..10")


# --- exercise 2: the exact probability of a drawn +1 -------------------------------------------------------------


@self_check
def check_2(p_plus) -> str:
    """Check ``p_plus(code, k)``: P(w_b = +1) over one period of a k-bit maximal LFSR, for u <= code."""
    label = _label(2)
    expect(callable(p_plus), label, "pass your function itself, e.g. check_2(p_plus)")
    for k, code in [(3, 0), (3, 7), (4, 5), (8, 128), (8, 255), (12, 1000)]:
        got = as_number(p_plus(code, k), label, f"p_plus({code}, {k})")
        expected = code / (2**k - 1)
        if abs(got - expected) <= 1e-9:
            continue
        if abs(got - code / 2**k) <= 1e-9:
            fail(label, f"p_plus({code}, {k}) = {got}: the LFSR never produces 0, so u takes 2^k - 1 values, "
                        "not 2^k.")
        if abs(got - (code + 1) / (2**k - 1)) <= 1e-9 or abs(got - (code + 1) / 2**k) <= 1e-9:
            fail(label, f"p_plus({code}, {k}) = {got}: u starts at 1, so u <= code holds for exactly 'code' values.")
        fail(label, f"p_plus({code}, {k}) = {got}, expected {expected:.6f}: count the values of u in 1..2^k - 1 "
                    "with u <= code.")
    return passed(label, "c / (2^k - 1): every non-zero k-bit value appears once per period")
