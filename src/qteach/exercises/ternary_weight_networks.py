"""Self-checks of the chapter "Ternary Weight Networks".

Each check calls the student's function, compares with a reference (a closed form derived for Laplace weights, or
one built from :mod:`qteach.papers.ternary_weight_networks` on several weight tensors), and either prints the success line or raises ``AssertionError`` with
a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import ternary_weight_networks as twn

_SLUG = "ternary_weight_networks"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"



# --- exercise 1: the optimal threshold for Laplace weights -------------------------------------------------------

_RATIO = 1.0                        # Delta* / E|W| for Laplace weights
_ZEROS = 1 - math.exp(-1.0)         # P(|W| <= E|W|): |W| is exponential with mean E|W|
_ALPHA = 2.0                        # alpha* / E|W| = E[|W| | |W| > b] / b = (b + b) / b: the law is memoryless


@self_check
def check_1(laplace_prediction) -> str:
    """Check ``laplace_prediction() -> (delta_ratio, zeros, alpha_ratio)`` for Laplace weights."""
    label = _label(1)
    expect(callable(laplace_prediction), label, "pass your function itself, e.g. check_1(laplace_prediction)")
    result = laplace_prediction()
    expect(isinstance(result, (tuple, list)) and len(result) == 3, label,
           "return three numbers: (delta_ratio, zeros, alpha_ratio)")
    ratio, zeros, alpha = (as_number(v, label, name) for v, name in
                           zip(result, ("delta_ratio", "zeros", "alpha_ratio")))
    tol = 0.01
    if abs(ratio - _RATIO) >= tol:
        hints = {0.7: "0.7 is the paper's rule of thumb, the thing to be judged; derive the optimum for the Laplace "
                      "law instead.",
                 2 / 3: "2/3 is the optimum for uniform weights (exercise 3); the Laplace law has heavier tails.",
                 0.767: "about 0.77 is the Gaussian optimum; the Laplace law has heavier tails."}
        hint = next((h for v, h in hints.items() if abs(ratio - v) < tol),
                    "with |W| exponential of mean b, the objective is ((Delta + b) e^(-Delta/b))^2 / e^(-Delta/b); "
                    "set its derivative to zero and divide the root by E|W| = b.")
        fail(label, f"delta_ratio = {ratio:.4g} is not Delta*/E|W| for Laplace weights. {hint}")
    if abs(zeros - _ZEROS) >= tol:
        if abs(zeros - (1 - _ZEROS)) < tol:
            hint = "that is the fraction that survives, P(|W| > E|W|); a weight becomes zero when |W| <= Delta."
        elif zeros > 1.5:
            hint = "give a fraction between 0 and 1, not a percentage."
        else:
            hint = "|W| is exponential with mean b = E|W|, so P(|W| <= t) = 1 - e^(-t/b), here at t = Delta* = b."
        fail(label, f"zeros = {zeros:.4g} is not the fraction of Laplace weights set to zero at Delta*. {hint}")
    if abs(alpha - _ALPHA) >= tol:
        if abs(alpha - 1.0) < tol:
            hint = "E|W| is the binary scale; alpha averages only the survivors, |W| > Delta*, which are larger."
        elif abs(alpha - 1.7) < tol:
            hint = "that is the scale at the rule's threshold 0.7 E|W|; the question asks at the optimum Delta*."
        else:
            hint = ("alpha* is the mean of |W| over |W| > Delta*; for an exponential law, E[|W| - t | |W| > t] = b "
                    "whatever t is (it has no memory).")
        fail(label, f"alpha_ratio = {alpha:.4g} is not alpha*/E|W| at the optimal threshold. {hint}")
    return passed(label, f"for Laplace weights Delta* = E|W|, which zeroes 1 - 1/e = {_ZEROS:.3f} of them, and "
                         f"alpha* = 2 E|W|")


# --- exercise 2: the exact optimal threshold by search ------------------------------------------------------------

@self_check
def check_2(best_threshold) -> str:
    """Check ``best_threshold(w) -> delta``: any threshold whose TWN error equals the exact minimum."""
    label = _label(2)
    expect(callable(best_threshold), label, "pass your function itself, e.g. check_2(best_threshold)")
    cases = [
        ("Laplace weights (300)", weight_samples(300, "laplace", seed=4).double()),
        ("Gaussian weights (250)", weight_samples(250, "gaussian", seed=5).double()),
        ("the 4-weight example [0.1, -0.5, 1.0, -2.0]", torch.tensor([0.1, -0.5, 1.0, -2.0], dtype=torch.float64)),
        ("tied magnitudes [1, -1, 1, 0.1]", torch.tensor([1.0, -1.0, 1.0, 0.1], dtype=torch.float64)),
        ("one large outlier", torch.tensor([0.2, -0.25, 0.3, -0.2, 0.22, 5.0], dtype=torch.float64)),
    ]
    for what, w in cases:
        delta = as_number(best_threshold(w.clone()), label, "best_threshold(w)")
        expect(math.isfinite(delta) and delta >= 0, label, f"on {what}: the threshold must be a number >= 0, "
                                                         f"got {delta}")
        _, best = twn.optimal_threshold(w)
        got = twn.approximation_error(w, delta).item()
        if not math.isclose(got, best.item(), rel_tol=1e-9, abs_tol=1e-12):
            rule = twn.approximation_error(w, twn.ternary_threshold(w)).item()
            hint = "try every candidate 0 and |W_i|, score each with twn.approximation_error, keep the smallest."
            if math.isclose(got, rule, rel_tol=1e-9):
                hint = "that is the 0.7 * E|W| rule of thumb, an approximation; search the candidates instead."
            elif delta < float(w.abs().min()):
                hint = ("your threshold keeps every weight (the binary solution); the minimum switches some off. "
                        "Did you stop at the first candidate?")
            elif delta >= float(w.abs().max()):
                hint = ("your threshold switches every weight off (alpha = 0, the largest error): keep the "
                        "candidate with the smallest error, not the largest.")
            fail(label, f"on {what}: Delta = {delta:.6g} gives error {got:.6g}, but the minimum is "
                        f"{best.item():.6g}. {hint}")
    return passed(label, f"your thresholds reach the exact minimum error on {len(cases)} tensors, "
                         "including ties and an outlier")
