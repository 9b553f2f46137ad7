"""Self-checks of the chapter "ABC-Net: Towards Accurate Binary Convolutional Neural Network".

Each check calls the student's function, compares with a closed form (exercise 1) or with
:mod:`qteach.papers.abc_net` on several weight tensors, and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import abc_net as abc

_SLUG = "abc_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: two bases are a ternary quantizer -------------------------------------------------------------

_PHI_1 = math.exp(-0.5) / math.sqrt(2 * math.pi)        # standard normal density at 1
_TAIL_1 = math.erfc(1 / math.sqrt(2))                   # P(|z| > 1)
_M2_ERROR = 1 - (2 * _PHI_1) ** 2 / _TAIL_1             # relative error of the ternary quantizer at Delta = std
_TWN_ERROR = 0.190                                     # the ternary optimum for Gaussian weights (TWN chapter)


@self_check
def check_1(m2_prediction) -> str:
    """Check ``m2_prediction() -> (delta_over_std, relative_error)``: ABC-Net with M = 2 on Gaussian weights."""
    label = _label(1)
    expect(callable(m2_prediction), label, "pass your function itself, e.g. check_1(m2_prediction)")
    result = m2_prediction()
    expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
           "return two numbers: (delta_over_std, relative_error)")
    delta, error = (as_number(v, label, name) for v, name in zip(result, ("delta_over_std", "relative_error")))
    if abs(delta - 1.0) >= 0.01:
        hint = ("with M = 2 the shifts are u = -1 and +1: B_1 flips where W - mean(W) = std(W), B_2 where it is "
                "-std(W); the level 0 lies between them.")
        if abs(delta - 2.0) < 0.01:
            hint = "that is the distance between the two thresholds; Delta is half of it, measured from the mean."
        elif abs(delta - 0.612) < 0.02:
            hint = "0.61 std is TWN's optimal threshold; ABC-Net's thresholds are fixed by u = +-1 instead."
        fail(label, f"delta_over_std = {delta:.4g} is not where the zero level of M = 2 ends. {hint}")
    if abs(error - _M2_ERROR) >= 0.01:
        hints = [(1 - 2 / math.pi, "that is the error of one sign (M = 1, or XNOR-Net); two bases do better."),
                 (_TWN_ERROR, ("that is TWN's optimal ternary error, at Delta = 0.61 std; ABC-Net's Delta is "
                               "fixed elsewhere.")),
                 (math.sqrt(_M2_ERROR), "the question asks for the squared error relative to ||W||^2, not its root."),
                 (1 - _TAIL_1, "that is the fraction of weights set to 0, not the error.")]
        hint = next((h for v, h in hints if abs(error - v) < 0.01),
                    "for a ternary quantizer with threshold Delta, the relative error is 1 - (E[|W|; |W| > Delta])^2 "
                    "/ (P(|W| > Delta) E[W^2]); for a standard normal, E[|W|; |W| > 1] = 2 phi(1) with phi the "
                    "density.")
        fail(label, f"relative_error = {error:.4g} is not the error of M = 2 on Gaussian weights. {hint}")
    return passed(label, f"M = 2 is a ternary quantizer with Delta = std(W); its relative error on Gaussian weights "
                         f"is {_M2_ERROR:.3f}, against {_TWN_ERROR:.2f} at TWN's optimal threshold")


# --- exercise 2: the least-squares scales ------------------------------------------------------------------------

@self_check
def check_2(abc_alphas) -> None:
    """Check ``abc_alphas(w, bases)`` -> (M,) least-squares scales of the fixed bases."""
    label = _label(2)
    expect(callable(abc_alphas), label, "pass your function itself, e.g. check_2(abc_alphas)")
    cases = [
        ("[1, 2, 3, 4], M = 2 (orthogonal bases)", torch.tensor([1.0, 2.0, 3.0, 4.0]), 2),
        ("Gaussian filters, M = 3", weight_samples((16, 3, 3), "gaussian", scale=0.1, seed=3), 3),
        ("Laplace weights, M = 5", weight_samples(400, "laplace", seed=4), 5),
        ("shifted uniform weights, M = 1", weight_samples(50, "uniform", seed=5) + 0.3, 1),
    ]
    for what, w, m in cases:
        w = w.double()
        bases = abc.binary_bases(w, m)
        got = abc_alphas(w.clone(), bases.clone())
        expect(isinstance(got, torch.Tensor), label, f"abc_alphas should return a tensor, got {type(got).__name__}")
        expect(got.numel() == m, label, f"on {what}: {got.numel()} scales, expected one per basis ({m})")
        ref = abc.basis_scales(w, bases)
        got = got.detach().reshape(-1).double()
        if torch.allclose(got, ref, rtol=1e-5, atol=1e-7):
            continue
        flat = bases.reshape(m, -1)
        separate = flat @ w.reshape(-1) / flat.shape[1]
        hint = "solve the joint least squares (B^T B) alpha = B^T w, B the n x M matrix of flattened bases."
        if torch.allclose(got, separate, rtol=1e-5):
            hint = ("each alpha_i = B_i . w / n is the best scale for basis i alone; the bases are correlated, so "
                    "solve for all the alphas together: (B^T B) alpha = B^T w.")
        elif torch.allclose(got, torch.full_like(got, float(w.abs().mean()))):
            hint = "mean|W| is XNOR-Net's scale for a single sign basis; with several bases solve the least squares."
        fail(label, f"on {what}: alpha = {[round(v, 5) for v in got.tolist()]}, expected "
                    f"{[round(v, 5) for v in ref.tolist()]}. {hint}")
    passed(label, f"your scales are the least-squares solution on {len(cases)} tensors, M = 1 to 5")
