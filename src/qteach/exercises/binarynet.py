"""Self-checks of the BinaryNet chapter (notebooks/2016/binarynet.ipynb).

Each check calls the student's function on several inputs, compares with a reference computed independently (a
float dot product of signs, for the fixed version of :func:`buggy_dot`; batch norm evaluated in float64 at every integer of a range), and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math
import numbers

import torch

from qteach.binary import sign
from qteach.checks import expect, fail, passed, self_check

_SLUG = "binarynet"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: find the bug in a port of the paper's kernel --------------------------------------------------


def buggy_dot(a_words, b_words, k):
    """sign(a) . sign(b) from the 32-bit words of ``binarynet.concatenate`` (a port of the paper's kernel; buggy)."""
    p = 0
    for x, y in zip(a_words.tolist(), b_words.tolist()):
        p += (~(x ^ y) & 0xFFFFFFFF).bit_count()  # agreements in one 32-bit word
    return 2 * p - k


def _dot_inputs():
    g = torch.Generator().manual_seed(2)
    pairs = [(torch.randn(k, generator=g), torch.randn(k, generator=g)) for k in (70, 5, 32, 100, 64, 33)]
    pairs.append((torch.tensor([0.0, -1.0, 2.0, 0.0]), torch.tensor([1.0, 1.0, -3.0, 0.5])))  # sign(0) = +1
    pairs.append((torch.tensor([-1.0]), torch.tensor([-4.0])))
    pairs.append((torch.ones(31), -torch.ones(31)))
    return pairs


@self_check
def check_1(fixed_dot) -> str:
    """Check ``fixed_dot(a_words, b_words, k)`` for the words of two 1-D tensors of length k: sign(a) . sign(b)."""
    label = _label(1)
    expect(callable(fixed_dot), label, "pass your function itself, e.g. check_1(fixed_dot)")
    from qteach.papers.binarynet import concatenate

    for a, b in _dot_inputs():
        k = a.numel()
        got = fixed_dot(concatenate(a), concatenate(b), k)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Real) or got != int(got):
            fail(label, f"return an integer (a Python int), got {got!r}")
        expected = int((sign(a) * sign(b)).sum())
        if got != expected:
            pad = -k % 32
            hints = {
                expected + 2 * pad: "that is what buggy_dot returns: the padding bits are still counted.",
                expected + pad: "half-way there: each padding bit counted as an agreement adds 2 to 2p - K, "
                                "not 1.",
                expected - 2 * pad: "you corrected for the padding even where it was not counted, or twice.",
                expected - pad: "the correction is off: only the padding bits of the last word are extra "
                                "agreements, 32 ceil(K / 32) - K of them.",
            }
            default = ("count the agreements p among the K real bits only (mask the padding of the last word), "
                       "and return 2p - K.")
            fail(label, f"for K = {k} ({pad} padding bits) you returned {int(got)}, expected {expected}. "
                        f"{hints.get(int(got), default)}")
    return passed(label, "the dot product of signs is right for K = 70, 5, 32, 100, 64, 33, 4, 1 and 31, with and "
                         "without padding")


# --- exercise 2: batch norm + sign as an integer threshold ------------------------------------------------------


_CASES = [  # (mean, var, gamma, beta, eps)
    (3.3, 4.0, 1.5, 0.2, 1e-5),
    (-7.1, 9.0, 0.5, -1.1, 1e-5),
    (2.6, 1.0, -2.0, 0.3, 1e-5),
    (0.4, 16.0, -0.7, -2.3, 1e-5),
    (5.0, 2.0, 0.0, 0.5, 1e-5),
    (5.0, 2.0, 0.0, -0.5, 1e-5),
    (12.2, 0.5, 3.0, 1.0, 1e-5),
]
_RANGE = range(-40, 41)


def _bn_sign(s, mean, var, gamma, beta, eps):
    value = gamma * (s - mean) / math.sqrt(var + eps) + beta
    return 1 if value >= 0 else -1


@self_check
def check_2(fold) -> str:
    """Check ``fold(mean, var, gamma, beta, eps)`` -> ``(flip, tau)``: +1 iff flip * s >= tau, for integer s."""
    label = _label(2)
    expect(callable(fold), label, "pass your function itself, e.g. check_2(fold)")
    for mean, var, gamma, beta, eps in _CASES:
        try:
            result = fold(mean, var, gamma, beta, eps)
        except ZeroDivisionError:
            fail(label, "gamma = 0 divides by zero: then the output is the constant sign(beta); return a threshold "
                        "that every s passes (beta >= 0) or none does.")
        expect(isinstance(result, tuple) and len(result) == 2, label, "return a pair (flip, tau)")
        flip, tau = (v.item() if isinstance(v, torch.Tensor) else v for v in result)
        expect(flip in (1, -1), label, f"flip must be +1 or -1, got {flip!r}")
        if isinstance(tau, float) and tau == int(tau):
            tau = int(tau)
        expect(isinstance(tau, int) and not isinstance(tau, bool), label,
               f"tau must be an integer (the accumulator is an integer), got {tau!r}; round the real threshold")
        wrong = [s for s in _RANGE if (1 if flip * s >= tau else -1) != _bn_sign(s, mean, var, gamma, beta, eps)]
        if wrong:
            t = mean - beta * math.sqrt(var + eps) / gamma if gamma else None
            if gamma < 0 and flip == 1:
                hint = "for gamma < 0 the inequality turns round: +1 iff s <= t, i.e. -s >= -t (flip = -1)."
            elif gamma == 0:
                hint = "with gamma = 0 the output is sign(beta) for every s (sign(0) = +1)."
            elif t is not None and len(wrong) == 1:
                hint = (f"off by one at s = {wrong[0]}: s is an integer, so s >= t is s >= ceil(t) (and -s >= -t is "
                        "-s >= ceil(-t)); floor or round gives the wrong integer.")
            else:
                hint = "the real threshold is t = mean - beta * sqrt(var + eps) / gamma."
            fail(label, f"for mean={mean}, var={var}, gamma={gamma}, beta={beta} your (flip, tau) = ({flip}, {tau}) "
                        f"disagrees with sign(batch_norm(s)) at s = {wrong[:3]}. {hint}")
    return passed(label, f"(flip, tau) reproduces sign(batch_norm(s)) for every integer s in [-40, 40] in "
                         f"{len(_CASES)} cases (gamma > 0, gamma < 0, gamma = 0 with both signs of beta)")
