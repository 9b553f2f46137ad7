"""Self-checks of the chapter "Trained Ternary Quantization".

Each check calls the student's function on several latent-weight tensors, compares with
:mod:`qteach.papers.trained_ternary_quantization` (exercise 1, the forward pass) or with the fraction of zeros the
threshold must give (exercise 2, the paper's constant-sparsity rule), and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import trained_ternary_quantization as ttq

_SLUG = "trained_ternary_quantization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _cases():
    return [
        ("[0.1, -0.5, 1.0, -2.0] (0.1 sits exactly at Delta)", torch.tensor([0.1, -0.5, 1.0, -2.0]), 1.5, 0.5, 0.05),
        ("Gaussian weights, t = 0.05", weight_samples((8, 9), "gaussian", seed=1), 0.9, 1.2, 0.05),
        ("Laplace weights, t = 0.3", weight_samples(300, "laplace", seed=2), 1.1, 0.7, 0.3),
        ("uniform weights, t = 0.5", weight_samples((5, 4, 3), "uniform", seed=3), 2.0, 0.25, 0.5),
    ]



# --- exercise 1: the forward pass --------------------------------------------------------------------------------

@self_check
def check_1(ttq_forward) -> None:
    """Check ``ttq_forward(w, w_p, w_n, t)`` against the ternary function with Delta = t * max|w|."""
    label = _label(1)
    expect(callable(ttq_forward), label, "pass your function itself, e.g. check_1(ttq_forward)")
    for what, w, w_p, w_n, t in _cases():
        got = ttq_forward(w.clone(), w_p, w_n, t)
        expect(isinstance(got, torch.Tensor), label, f"ttq_forward should return a tensor, got {type(got).__name__}")
        expect(got.shape == w.shape, label, f"on {what}: shape {tuple(got.shape)}, expected {tuple(w.shape)}")
        ref = ttq.ttq_ternarize(w, w_p, w_n, t)
        got = got.detach().to(ref.dtype)
        if torch.allclose(got, ref, atol=1e-6):
            continue
        delta = t * w.abs().max()
        hint = "w_t = W_p where w > Delta, -W_n where w < -Delta, 0 otherwise, with Delta = t * max|w|."
        twn_delta = 0.7 * w.abs().mean()
        if torch.allclose(got.abs() > 0, w.abs() > twn_delta):
            hint = "that threshold is TWN's 0.7 * E|w|; TTQ uses Delta = t * max|w|."
        elif bool((got[w < -delta] > 0).any()):
            hint = "negative weights map to -W_n (W_n is a positive scale): mind the minus sign."
        elif bool((got[w < -delta] == -w_p).all()) and w_p != w_n:
            hint = "the negative side has its own scale: use -W_n there, not -W_p."
        elif bool((got[(w.abs() == delta)] != 0).any()):
            hint = "a weight exactly at +-Delta becomes 0: use w > Delta, not w >= Delta."
        fail(label, f"on {what}: the ternary weights differ from the paper's. {hint}")
    passed(label, f"your ternary weights match on {len(_cases())} tensors, including a weight exactly at Delta")


# --- exercise 2: the paper's other threshold rule, a constant sparsity r ---------------------------------------

def _sparsity_cases():
    return [
        ("Gaussian weights (8, 9), r = 0.5", weight_samples((8, 9), "gaussian", seed=1), 0.5),
        ("Laplace weights (300,), r = 0.9", weight_samples(300, "laplace", seed=2), 0.9),
        ("uniform weights (5, 4, 3), r = 0.25", weight_samples((5, 4, 3), "uniform", seed=3), 0.25),
        ("Gaussian weights shifted by +0.5 (1000,), r = 0.3", weight_samples(1000, "gaussian", seed=4) + 0.5, 0.3),
    ]


@self_check
def check_2(sparsity_threshold) -> None:
    """Check ``sparsity_threshold(w, r) -> Delta``: the zero region ``|w| <= Delta`` holds a fraction ``r`` of the
    weights, up to one weight (any Delta between the two neighbouring magnitudes is accepted)."""
    label = _label(2)
    expect(callable(sparsity_threshold), label, "pass your function itself, e.g. check_2(sparsity_threshold)")
    for what, w, r in _sparsity_cases():
        n = w.numel()
        delta = as_number(sparsity_threshold(w.clone(), r), label, "sparsity_threshold(w, r)")
        expect(math.isfinite(delta), label, f"on {what}: Delta should be a finite number, got {delta}")
        zeros = int((w.abs() <= delta).sum())
        if abs(zeros - r * n) <= 1:
            continue
        hint = ("sort the magnitudes |w| and take the one at position about r * n: then a fraction r of the "
                "weights satisfies |w| <= Delta.")
        if math.isclose(delta, r * float(w.abs().max()), rel_tol=1e-5):
            hint = ("that is the first rule, Delta = t * max|w| with t = r; here r is the fraction of zeros, "
                    "which fixes Delta through the sorted magnitudes, not through the maximum.")
        elif abs(zeros - (1 - r) * n) <= 1:
            hint = "r is the fraction of weights that become 0, not of those that stay nonzero: you zeroed 1 - r."
        elif abs(int((w <= delta).sum()) - r * n) <= 1:
            hint = ("you ranked the signed weights; the zero region |w| <= Delta is about the magnitudes, so rank "
                    "|w| instead.")
        fail(label, f"on {what}: {zeros} of {n} weights have |w| <= Delta, expected about {r * n:g} "
                    f"(r = {r}). {hint}")
    passed(label, f"your threshold zeroes the fraction r of the weights on {len(_sparsity_cases())} tensors")
