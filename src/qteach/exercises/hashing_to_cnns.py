"""Self-checks of the chapter "From Hashing to CNNs".

Each check calls the student's function on several weights, codes and inputs, compares with an independent
reference (:mod:`qteach.papers.hashing_to_cnns`, or brute force over the two values of a bit), and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach import binary
from qteach.checks import expect, fail, passed, self_check
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


# --- exercise 1: the data-aware scale ----------------------------------------------------------------------------

@self_check
def check_1(data_aware_alpha) -> None:
    """Check ``data_aware_alpha(x, w, b)`` -> (c,): the alpha_i minimising ||X w_i - alpha_i X b_i||^2."""
    label = _label(1)
    expect(callable(data_aware_alpha), label, "pass your function itself, e.g. check_1(data_aware_alpha)")
    for k, (what, w, x) in enumerate(_cases()):
        for codes_name, b in (("B = sign(W)", binary.sign(w)),
                              ("random codes", binary.sign(weight_samples(tuple(w.shape), seed=20 + k)))):
            got = data_aware_alpha(x.clone(), w.clone(), b.clone())
            expect(isinstance(got, torch.Tensor), label,
                   f"data_aware_alpha should return a tensor, got {type(got).__name__}")
            expect(got.numel() == w.shape[0], label, f"on {what}: {got.numel()} scales, expected one per filter "
                                                     f"({w.shape[0]})")
            ref = hh.optimal_scales(w, b, hh.input_gram(x))
            got = got.detach().reshape(-1).double()
            if torch.allclose(got, ref, rtol=1e-4, atol=1e-6):
                continue
            hint = "alpha_i = (X b_i) . (X w_i) / ||X b_i||^2."
            if torch.allclose(got, ((b * w).sum(1) / (b * b).sum(1)).double(), rtol=1e-4):
                hint = ("that is b . w / b . b, the data-free least squares, which ignores X (for b = sign(w) it is "
                        "XNOR-Net's mean|w_i|); put the inputs in: (X b_i) . (X w_i) / ||X b_i||^2.")
            elif torch.allclose(got, w.abs().mean(1).double(), rtol=1e-4):
                hint = "mean|w_i| is XNOR-Net's data-free scale; the data-aware one weighs the inputs."
            elif torch.allclose(got, ((x @ b.T) * (x @ w.T)).sum(0).double() / (x @ w.T).pow(2).sum(0).double(),
                                rtol=1e-4):
                hint = "divide by ||X b_i||^2 (the binary side), not by ||X w_i||^2."
            fail(label, f"on {what} with {codes_name}: the scales differ. {hint}")
    passed(label, f"your scales minimise the inner-product error on {len(_cases())} layers, for two sets of codes")


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
