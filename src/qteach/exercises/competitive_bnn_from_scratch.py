"""Self-checks of the chapter on training competitive BNNs from scratch
(notebooks/2018/competitive_bnn_from_scratch.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "competitive_bnn_from_scratch"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: how much gradient survives the threshold -----------------------------------------------------


def _surviving(t: float) -> float:
    return math.erf(t / math.sqrt(2))


_THRESHOLDS = (0.1, 0.5, 1.0, 1.3, 2.0, 3.0)


@self_check
def check_1(surviving_fraction) -> str:
    """Check ``surviving_fraction(t)``: P(|x| <= t) for x ~ N(0, 1)."""
    label = _label(1)
    expect(callable(surviving_fraction), label, "pass your function itself, e.g. check_1(surviving_fraction)")
    values = {t: as_number(surviving_fraction(t), label, f"surviving_fraction({t})") for t in _THRESHOLDS}

    def all_near(target):
        return all(abs(values[t] - target(t)) <= 5e-3 for t in _THRESHOLDS)

    if all_near(_surviving):
        return passed(label, "P(|x| <= t) = erf(t / sqrt 2): about 68 % of the gradient passes at t = 1, 99.7 % "
                             "at t = 3")
    if all_near(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))):
        fail(label, "that is P(x <= t), one side only: the gradient is cancelled where |x| > t, on both sides.")
    if all_near(lambda t: 1 - _surviving(t)):
        fail(label, "that is the cancelled fraction P(|x| > t); the question asks for the fraction that passes.")
    if all_near(lambda t: math.erf(t)):
        fail(label, "erf(t) is P(|x| <= t) for a variance of 1/2; for N(0, 1) divide t by sqrt(2).")
    if any(not 0 <= v <= 1 for v in values.values()):
        fail(label, "a fraction lies between 0 and 1.")
    fail(label, "the gradient passes where -t <= x <= t: integrate the standard normal density between -t and t "
                "(math.erf(t / math.sqrt(2)), or 2 * Phi(t) - 1).")


# --- exercise 2: binary operations of a dense binary network --------------------------------------------------


def _dense_macs(width: int, growth: int, blocks: int) -> int:
    return sum((width + i * growth) * growth for i in range(blocks))


_CASES = ((64, 32, 4), (64, 32, 8), (16, 8, 1), (10, 3, 5), (128, 64, 3))


@self_check
def check_2(dense_macs) -> str:
    """Check ``dense_macs(width, growth, blocks)``: binary multiply-accumulates of the dense blocks per sample."""
    label = _label(2)
    expect(callable(dense_macs), label, "pass your function itself, e.g. check_2(dense_macs)")
    values = {c: as_number(dense_macs(*c), label, f"dense_macs{c}") for c in _CASES}
    if all(values[c] == _dense_macs(*c) for c in _CASES):
        return passed(label, "block i reads width + i * growth features and writes growth of them")
    if all(values[c] == c[0] * c[1] * c[2] for c in _CASES):
        fail(label, "every block reads all the features before it, not only the first layer's width: the input "
                    "of block i has width + i * growth features.")
    if all(values[c] == _dense_macs(c[0], c[1], c[2] + 1) for c in _CASES) or all(
            values[c] == sum((c[0] + i * c[1]) * c[1] for i in range(1, c[2] + 1)) for c in _CASES):
        fail(label, "off by one block, or each block's output width (input + growth) taken as its fan-in: the "
                    "first block (i = 0) reads the width features of the first layer, the last (i = blocks - 1) "
                    "reads width + (blocks - 1) * growth.")
    fail(label, "sum over the blocks i = 0 .. blocks - 1 of (input features) x (growth): one multiply-accumulate "
                "per input feature and new feature.")
