"""Self-checks of the chapter "Ternary Weight Networks".

Each check calls the student's function on several weight tensors, compares with a reference built from
:mod:`qteach.papers.ternary_weight_networks`, and either prints the success line or raises ``AssertionError`` with
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



def _cases():
    return [
        ("the 4-weight example [0.1, -0.5, 1.0, -2.0]", torch.tensor([0.1, -0.5, 1.0, -2.0])),
        ("Gaussian weights (3 x 3 x 16)", weight_samples((16, 3, 3), "gaussian", scale=0.1, seed=1)),
        ("Laplace weights (200)", weight_samples(200, "laplace", seed=2)),
        ("weights with exact zeros", torch.tensor([0.0, 0.0, 0.3, -0.9, 0.0, 1.2])),
        ("a 2-D tensor of uniform weights", weight_samples((8, 5), "uniform", seed=3)),
    ]


# --- exercise 1: Delta and alpha ------------------------------------------------------------------------------

def _alpha_hint(w: torch.Tensor, delta: float, got: float) -> str:
    candidates = [
        (w.abs().mean().item(), "this is E|W| over all weights (the binary scale); average only the magnitudes "
                                "of the weights with |W_i| > Delta."),
        (w.abs().max().item(), "alpha is the mean of the surviving magnitudes, not their maximum."),
        ((w.abs() * (w.abs() > delta)).sum().item() / w.numel(),
         "you divided the survivors' sum by all n weights; divide by the number of survivors |I_Delta|."),
        (w[w.abs() > delta].mean().item() if bool((w.abs() > delta).any()) else math.nan,
         "take the magnitudes |W_i| of the survivors: averaging the signed values lets +/- cancel."),
    ]
    for value, hint in candidates:
        if math.isfinite(value) and math.isclose(got, value, rel_tol=1e-5, abs_tol=1e-7):
            return hint
    return "alpha = (1 / |I_Delta|) * sum of |W_i| over I_Delta = {i : |W_i| > Delta}."


@self_check
def check_1(twn_quantize) -> str:
    """Check ``twn_quantize(w) -> (delta, alpha)``: Delta = 0.7 E|W|, alpha = mean |W_i| over |W_i| > Delta."""
    label = _label(1)
    expect(callable(twn_quantize), label, "pass your function itself, e.g. check_1(twn_quantize)")
    for what, w in _cases():
        result = twn_quantize(w.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               f"twn_quantize should return a pair (delta, alpha), got {type(result).__name__}")
        delta = as_number(result[0], label, "delta")
        alpha = as_number(result[1], label, "alpha")
        ref_delta = twn.ternary_threshold(w).item()
        ref_alpha = twn.ternary_scale(w, ref_delta).item()
        if not math.isclose(delta, ref_delta, rel_tol=1e-5, abs_tol=1e-7):
            hint = "Delta = 0.7 * mean(|W|) over the whole tensor."
            if math.isclose(delta, 0.7 * w.abs().max().item(), rel_tol=1e-5):
                hint = "that is 0.7 * max|W|; TWN uses the mean magnitude E|W| (TTQ is the paper with a max)."
            elif math.isclose(delta, w.abs().mean().item(), rel_tol=1e-5):
                hint = "you forgot the factor 0.7: Delta = 0.7 * E|W|."
            elif math.isclose(delta, 0.7 * w.mean().item(), rel_tol=1e-5, abs_tol=1e-7):
                hint = "take the mean of the magnitudes |W|, not of the signed weights."
            fail(label, f"on {what}: delta = {delta:.6g}, expected {ref_delta:.6g}. {hint}")
        if not math.isclose(alpha, ref_alpha, rel_tol=1e-5, abs_tol=1e-7):
            fail(label, f"on {what}: alpha = {alpha:.6g}, expected {ref_alpha:.6g}. "
                        f"{_alpha_hint(w, ref_delta, alpha)}")
    return passed(label, f"Delta and alpha match the TWN formulas on {len(_cases())} tensors, including exact zeros")


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
