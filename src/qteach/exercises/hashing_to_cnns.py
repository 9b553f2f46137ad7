"""Self-checks of the chapter "From Hashing to CNNs".

Each check calls the student's function on several weights, codes and inputs, compares with an independent
reference (:mod:`qteach.papers.hashing_to_cnns`, or brute force over the two values of a bit), and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach import binary
from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import hashing_to_cnns as hh

_SLUG = "hashing_to_cnns"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _inputs(n: int, d: int, seed: int) -> torch.Tensor:
    """Correlated, unevenly scaled inputs, like a layer's activations (not whitened)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) + 2 * torch.eye(d)
    return (torch.randn(n, d, generator=g) @ mix) * torch.linspace(0.2, 3.0, d)


def _cases():
    return [
        ("3 filters, 4 inputs", weight_samples((3, 4), "gaussian", seed=1), _inputs(30, 4, 1)),
        ("6 filters, 12 inputs", weight_samples((6, 12), "gaussian", seed=2), _inputs(100, 12, 2)),
        ("4 filters, 30 inputs, non-negative inputs", weight_samples((4, 30), "laplace", seed=3),
         _inputs(200, 30, 3).abs()),
    ]


# --- exercise 1: the two-input example by hand -----------------------------------------------------------------

_CASES_1 = [(1.0, -0.2), (0.5, 0.3), (-2.0, 0.5), (-1.0, -3.0), (0.7, -0.1), (0.25, 1.5)]


def copies_reference(w1: float, w2: float) -> tuple:
    """For inputs whose two coordinates are equal (x2 = x1): XNOR-Net's relative error and the best scale of the code
    (+1, +1). Xw = (w1 + w2) x1; XNOR-Net's code gives alpha (s1 + s2) x1 with alpha = (|w1| + |w2|) / 2."""
    exact = w1 + w2
    alpha_xnor = (abs(w1) + abs(w2)) / 2
    signs = (1.0 if w1 >= 0 else -1.0) + (1.0 if w2 >= 0 else -1.0)
    error = (exact - alpha_xnor * signs) ** 2 / exact**2
    return error, exact / 2


@self_check
def check_1(copies) -> None:
    """Check ``copies(w1, w2)`` -> (XNOR-Net's relative error, best alpha for the code (+1, +1)) on inputs x2 = x1."""
    label = _label(1)
    expect(callable(copies), label, "pass your function itself, e.g. check_1(copies)")
    for w1, w2 in _CASES_1:
        got = copies(w1, w2)
        expect(isinstance(got, (tuple, list)) and len(got) == 2, label,
               "return a pair (XNOR-Net's relative error, the best alpha for the code (+1, +1))")
        error = as_number(got[0], label, "the relative error")
        alpha = as_number(got[1], label, "alpha")
        ref_error, ref_alpha = copies_reference(w1, w2)
        what = f"w = ({w1:g}, {w2:g})"
        if abs(error - ref_error) > 1e-6:
            if ref_error == 1 and error == 0:
                hint = ("the signs of w1 and w2 differ, so XNOR-Net's code is (+1, -1) or (-1, +1) and its output "
                        "alpha (x1 - x2) is 0 on these inputs: the whole signal is lost.")
            elif ref_error == 0:
                hint = ("with equal signs XNOR-Net's output is alpha * 2 * sign * x1 with alpha = mean|w|, which is "
                        "exactly (w1 + w2) x1.")
            else:
                hint = "relative error = ||Xw - X(alpha b)||^2 / ||Xw||^2, with x2 = x1 in every input."
            fail(label, f"for {what}, XNOR-Net's relative error is {ref_error:g}, you returned {error:g}. {hint}")
        if abs(alpha - ref_alpha) > 1e-6:
            if abs(alpha - (abs(w1) + abs(w2)) / 2) < 1e-6:
                hint = "mean|w| is XNOR-Net's data-free scale; fit alpha to the outputs: Xw = alpha X b."
            elif abs(alpha - (w1 + w2)) < 1e-6:
                hint = "X b for b = (+1, +1) is x1 + x2 = 2 x1, not x1."
            elif abs(alpha - abs(ref_alpha)) < 1e-6:
                hint = "alpha can be negative: when w1 + w2 < 0 the best multiple of (+1, +1) is a negative one."
            else:
                hint = "solve (w1 + w2) x1 = alpha (x1 + x2) with x2 = x1."
            fail(label, f"for {what}, the best alpha for the code (+1, +1) is {ref_alpha:g}, you returned "
                        f"{alpha:g}. {hint}")
    passed(label, f"your hand computation matches on {len(_CASES_1)} filters, equal and opposite signs")


# --- exercise 2: one bit of the B-step -----------------------------------------------------------------------------

def _best_bit(w, b, alpha, s, j):
    """Brute force: try b_ij = +1 and -1 for every filter, keep the better (ties: +1)."""
    out = b.clone().double()
    for i in range(w.shape[0]):
        scores = {}
        for value in (1.0, -1.0):
            trial = out[i:i + 1].clone()
            trial[0, j] = value
            scores[value] = float(hh.objective(w[i:i + 1], trial, alpha[i:i + 1], s))
        out[i, j] = 1.0 if scores[1.0] <= scores[-1.0] + 1e-12 else -1.0
    return out


@self_check
def check_2(update_bit) -> None:
    """Check ``update_bit(w, b, alpha, s, j)`` -> codes with bit ``j`` of every filter set to its exact minimiser."""
    label = _label(2)
    expect(callable(update_bit), label, "pass your function itself, e.g. check_2(update_bit)")
    for k, (what, w, x) in enumerate(_cases()):
        s = hh.input_gram(x)
        w = w.double()
        b = binary.sign(weight_samples(tuple(w.shape), seed=30 + k)).double()
        alpha = hh.optimal_scales(w, b, s)
        for j in sorted({0, w.shape[1] // 2, w.shape[1] - 1}):
            got = update_bit(w.clone(), b.clone(), alpha.clone(), s.clone(), j)
            expect(isinstance(got, torch.Tensor) and got.shape == w.shape, label,
                   f"update_bit should return the codes, a tensor of shape {tuple(w.shape)}")
            ref = _best_bit(w, b, alpha, s, j)
            got = got.detach().double()
            if torch.equal(got, ref):
                continue
            if not torch.equal(torch.cat([got[:, :j], got[:, j + 1:]], 1), torch.cat([b[:, :j], b[:, j + 1:]], 1)):
                hint = "change only bit j (column j) of each filter; the other bits stay as they are."
            else:
                sw = w @ s
                with_self = binary.sign(alpha * sw[:, j] - alpha**2 * (b @ s[:, j]))
                no_square = binary.sign(alpha * sw[:, j] - alpha * (b @ s[:, j] - b[:, j] * s[j, j]))
                if torch.equal(got[:, j], -ref[:, j]):
                    hint = "the sign is flipped: b_ij = sign(alpha (S w)_j - alpha^2 sum_{k != j} S_jk b_ik)."
                elif torch.equal(got[:, j], with_self):
                    hint = ("leave out the k = j term of the sum: S_jj b_ij^2 = S_jj does not depend on the bit, "
                            "so the sum runs over k != j.")
                elif torch.equal(got[:, j], no_square):
                    hint = "the coupling term is alpha^2 * sum_{k != j} S_jk b_ik (alpha squared)."
                else:
                    hint = "b_ij = sign(alpha_i (S w_i)_j - alpha_i^2 sum_{k != j} S_jk b_ik), sign(0) = +1."
            fail(label, f"on {what}, bit j = {j}: the updated codes are not the minimiser. {hint}")
    passed(label, f"your bit update finds the better value of the bit for every filter, on {len(_cases())} layers")
