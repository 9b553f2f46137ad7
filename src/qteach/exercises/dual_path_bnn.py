"""Self-checks of the Dual Path BNN chapter (notebooks/2019/dual_path_bnn.ipynb).

Each check calls the student's function, compares it with a closed form or a direct computation, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach import binary
from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "dual_path_bnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: with delta = 0 the two paths are one layer with ternary weights ---------------------------


def _weights(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(7, 12, generator=g), torch.randn(7, 12, generator=g)


@self_check
def check_1(merged_weight) -> str:
    """Check ``merged_weight(w1, w2)``: the one weight matrix equal to both paths when delta = 0."""
    label = _label(1)
    expect(callable(merged_weight), label, "pass your function itself, e.g. check_1(merged_weight)")
    w1, w2 = _weights()
    out = merged_weight(w1.clone(), w2.clone())
    expect(isinstance(out, torch.Tensor), label, f"return a tensor, got {type(out).__name__}")
    expect(out.shape == w1.shape, label, f"return one weight per pair: shape {tuple(w1.shape)}, got "
                                         f"{tuple(out.shape)}")
    ref = binary.sign(w1) + binary.sign(w2)
    if torch.equal(out.to(ref.dtype), ref):
        return passed(label, "with delta = 0 both paths see sign(h), so the layer is sign(h) times "
                             "sign(W1) + sign(W2): ternary weights in {-2, 0, 2}")
    if torch.allclose(out.to(ref.dtype), w1 + w2):
        fail(label, "the paths use the *binarized* weights: add sign(W1) and sign(W2), not the latent W1 + W2.")
    if torch.equal(out.to(ref.dtype), binary.sign(w1 + w2)):
        fail(label, "sign(W1 + W2) is binary: the sum of the two signs is 0 where they disagree (the paths "
                    "cancel), so the merged weight takes three values.")
    if torch.equal(out.to(ref.dtype), ref / 2):
        fail(label, "half the answer: the two paths are added, not averaged.")
    fail(label, "write sign(h) sign(W1)^T + sign(h) sign(W2)^T as sign(h) W^T and read off W.")


# --- exercise 2: how often do the two paths disagree? --------------------------------------------------------


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _zero_fraction(delta: float) -> float:
    return 2 * _phi(delta) - 1


_DELTAS = (0.0, 0.25, 0.5, 1.0, 2.0)


@self_check
def check_2(zero_fraction) -> str:
    """Check ``zero_fraction(delta)``: P(sign(h + delta) + sign(h - delta) = 0) for h ~ N(0, 1)."""
    label = _label(2)
    expect(callable(zero_fraction), label, "pass your function itself, e.g. check_2(zero_fraction)")
    values = {d: as_number(zero_fraction(d), label, f"zero_fraction({d})") for d in _DELTAS}

    def all_near(target, tol=5e-3):
        return all(abs(values[d] - target(d)) <= tol for d in _DELTAS)

    if all_near(_zero_fraction):
        return passed(label, "the paths disagree where -delta <= h < delta: 2 Phi(delta) - 1, about 38 % at "
                             "delta = 0.5 and 68 % at delta = 1")
    if any(not 0 <= v <= 1 for v in values.values()):
        fail(label, "a fraction lies between 0 and 1.")
    if all_near(lambda d: _phi(d) - 0.5):
        fail(label, "half the answer: the code is 0 on both sides of 0, for -delta <= h < delta.")
    if all_near(lambda d: 1 - _zero_fraction(d)):
        fail(label, "that is the fraction where the paths agree (code -2 or +2); the question asks where the "
                    "code is 0.")
    if all_near(lambda d: 2 * _phi(d / 2) - 1) or all_near(lambda d: 2 * _phi(2 * d) - 1):
        fail(label, "the thresholds are at -delta and +delta (a band of width 2 delta), for h of standard "
                    "deviation 1.")
    fail(label, "the code sign(h + delta) + sign(h - delta) is 0 exactly when -delta <= h < delta: integrate "
                "the standard normal density over that band (or sample a million h).")
