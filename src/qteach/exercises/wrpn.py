"""Self-checks of the chapter "WRPN: Wide Reduced-Precision Networks".

Both exercises ask for a prediction made before running anything: how much of a freshly initialised layer WRPN's
fixed weight grid rounds to zero (exercise 1), and how wide the chapter's MLP can grow at a given precision within
a budget of bit operations (exercise 2). Each check compares with a closed form that the tests tie to
:mod:`qteach.papers.wrpn`, and either prints the success line or raises ``AssertionError`` with a hint naming the
likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "wrpn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the dead zone of a fresh layer ------------------------------------------------------------------

def dead_fraction_reference(k: int, n_in: int) -> float:
    """The expected fraction of a fresh ``nn.Linear(n_in, .)``'s weights (uniform on +-1/sqrt(n_in)) that WRPN's
    k-bit weight quantizer rounds to 0: |w| below half a step, 0.5 / (2^(k-1) - 1)."""
    half_step = 0.5 / (2 ** (k - 1) - 1)
    return min(1.0, half_step * math.sqrt(n_in))


@self_check
def check_1(dead_fraction) -> None:
    """Check ``dead_fraction(k, n_in)``: min(1, sqrt(n_in) / (2 (2^(k-1) - 1)))."""
    label = _label(1)
    expect(callable(dead_fraction), label, "pass your function itself, e.g. check_1(dead_fraction)")
    cases = [(8, 64), (4, 16), (2, 64), (3, 64), (4, 64), (3, 9), (5, 256), (8, 1024)]
    for k, n_in in cases:
        got = as_number(dead_fraction(k, n_in), label, f"dead_fraction({k}, {n_in})")
        ref = dead_fraction_reference(k, n_in)
        if math.isclose(got, ref, rel_tol=1e-4, abs_tol=1e-6):
            continue
        bound, steps = 1 / math.sqrt(n_in), 2 ** (k - 1) - 1
        hint = ("a weight becomes 0 when |w| is below half a step of the grid; the fresh weights are uniform on "
                "+-1/sqrt(n_in).")
        if got < 0 or got > 1:
            hint = "a fraction lies in [0, 1]: when half a step is wider than the initial range, every weight is 0."
        elif math.isclose(got, min(1.0, 0.5 / (2**k - 1) / bound), rel_tol=1e-4):
            hint = ("you used 2^k - 1 steps; one of the k bits is the sign, so the grid has 2^(k-1) - 1 steps per "
                    "unit.")
        elif math.isclose(got, min(1.0, 1 / steps / bound), rel_tol=1e-4):
            hint = "round() sends |w| to 0 below HALF a step, not below a whole step."
        elif math.isclose(got, min(1.0, 0.5 / steps * n_in), rel_tol=1e-4):
            hint = "PyTorch's default bound is 1/sqrt(n_in), not 1/n_in."
        fail(label, f"dead_fraction({k}, {n_in}) = {got:.4g}, expected {ref:.4g}. {hint}")
    passed(label, f"your dead-zone predictions are right for {len(cases)} (bits, fan-in) pairs")


# --- exercise 2: the widest network within a budget of bit operations ------------------------------------------

def mlp_bops(width: int, bits: int, base: int = 16, in_features: int = 64, num_classes: int = 10) -> int:
    """Bit operations of the chapter's MLP (``wrpn.wrpn_mlp`` with two hidden layers, weights and inputs at
    ``bits``) for one image: (in * h + h * h + h * classes) * bits^2 with h = base * width."""
    hidden = base * width
    return (in_features * hidden + hidden * hidden + hidden * num_classes) * bits * bits


def widest_within_reference(bits: int, budget: int) -> int:
    width = 0
    while mlp_bops(width + 1, bits) <= budget:
        width += 1
    return width


@self_check
def check_2(widest_within) -> None:
    """Check ``widest_within(bits, budget)``: the largest width of the chapter's MLP at ``bits`` whose bit
    operations per image stay within ``budget`` (0 if not even width 1 fits)."""
    label = _label(2)
    expect(callable(widest_within), label, "pass your function itself, e.g. check_2(widest_within)")
    float_x1 = mlp_bops(1, 32)
    cases = [(4, float_x1), (2, float_x1), (8, float_x1), (3, mlp_bops(1, 8)), (4, mlp_bops(1, 8)), (2, 5_000)]
    for bits, budget in cases:
        got = widest_within(bits, budget)
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"widest_within should return an int (a width), got {type(got).__name__}")
        ref = widest_within_reference(bits, budget)
        if got == ref:
            continue
        what = f"widest_within({bits}, {budget:,})"
        square = math.floor(math.sqrt(budget / (1440 * bits * bits)))  # every layer's MACs grown by width^2
        hint = ("count the three layers of 64 -> 16m -> 16m -> 10 at width m: only the hidden-to-hidden layer "
                "grows with m^2, the first and the last grow with m.")
        if got == ref + 1:
            hint = "that width already costs more than the budget: return the largest width that fits."
        elif ref > 0 and got == square:
            hint = ("that is the iso-BOPs width of a network whose every layer grows with m^2 (exercise 3's square "
                    "layer); the first and the last layer keep one side fixed (pixels, classes) and grow with m.")
        elif got > ref:
            hint = ("too wide: the hidden-to-hidden layer grows with m^2, and every MAC costs bits * bits bit "
                    "operations.")
        fail(label, f"{what} = {got}, expected {ref}. {hint}")
    passed(label, f"your widths are right for {len(cases)} budgets at 2, 3, 4 and 8 bits")
