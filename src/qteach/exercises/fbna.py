"""Self-checks of the chapter "FBNA: A Fully Binarized Neural Network Accelerator" (Guo et al., FPL 2018).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.fbna` (or the
plain computation), and either prints the success line or raises ``AssertionError`` with a hint.
"""

from __future__ import annotations

import torch

from qteach import binary
from qteach.checks import expect, expect_tensor_like, fail, passed, self_check
from qteach.papers import fbna

_SLUG = "fbna"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _cases_1():
    g = torch.Generator().manual_seed(1)
    for shape, padding in (((2, 3, 5, 5), 1), ((1, 8, 4, 6), 1), ((2, 2, 3, 3), 2), ((1, 1, 1, 1), 1)):
        yield torch.randn(*shape, generator=g), torch.randn(3, shape[1], 3, 3, generator=g), padding


# --- exercise 1: zero padding from two binary paddings ------------------------------------------------------------

@self_check
def check_1(zero_padded_from_binary) -> str:
    """Check ``zero_padded_from_binary(x, w, padding)``: the zero-padded binary convolution, built from
    +1- and -1-padded ones."""
    label = _label(1)
    expect(callable(zero_padded_from_binary), label, "pass your function itself, e.g. check_1(zero_padded_from_binary)")
    for x, w, padding in _cases_1():
        got = zero_padded_from_binary(x, w, padding)
        expected = fbna.padded_binary_conv2d(x, w, padding, "zero").long()
        expect_tensor_like(got, expected, label, "the result")
        got = got.round().long() if got.is_floating_point() else got.long()
        if torch.equal(got, expected):
            continue
        plus = fbna.padded_binary_conv2d(x, w, padding, "plus").long()
        minus = fbna.padded_binary_conv2d(x, w, padding, "minus").long()
        if torch.equal(got, plus + minus):
            fail(label, "that is the sum of the two: inside the image each output is counted twice; halve it.")
        if torch.equal(got, plus) or torch.equal(got, minus):
            fail(label, "one binary padding alone is not zero padding: the border taps add sign(w) * pad value. "
                        "Combine the +1- and the -1-padded results so the border terms cancel.")
        if torch.equal(got, (plus - minus) // 2):
            fail(label, "(plus - minus) / 2 is the border's own contribution (pad_contribution with +1); "
                        "the image part cancels in a difference and survives in a sum.")
        fail(label, f"wrong values for x of shape {tuple(x.shape)} and padding {padding}: the zero-padded result "
                    "is the mean of the +1-padded and the -1-padded binary convolutions.")
    return passed(label, "two binary paddings average to zero padding, bit for bit, on 4 layer shapes")


# --- exercise 2: the first layer on bit planes ------------------------------------------------------------------

def _cases_2():
    g = torch.Generator().manual_seed(2)
    for bits, shape in ((8, (4, 9)), (8, (1, 27)), (4, (3, 5)), (1, (2, 7)), (6, (5, 1))):
        q = torch.randint(0, 2**bits, shape, generator=g)
        q[0, 0] = 2**bits - 1
        yield q, binary.sign(torch.randn(3, shape[1], generator=g)), bits


@self_check
def check_2(bitplane_dot) -> str:
    """Check ``bitplane_dot(q, w, bits)``: (M, K) codes times (N, K) signs through bit planes."""
    label = _label(2)
    expect(callable(bitplane_dot), label, "pass your function itself, e.g. check_2(bitplane_dot)")
    for q, w, bits in _cases_2():
        got = bitplane_dot(q.clone(), w.clone(), bits)
        expected = q.long() @ w.long().T
        expect_tensor_like(got, expected, label, "the result")
        got = got.round().long() if got.is_floating_point() else got.long()
        if torch.equal(got, expected):
            continue
        planes = [((q >> n) & 1).float() for n in range(bits)]
        unweighted = sum(p @ w.T for p in planes).long()
        pm = sum((2**n) * ((2 * p - 1) @ w.T) for n, p in enumerate(planes)).long()
        reversed_ = sum((2 ** (bits - 1 - n)) * (p @ w.T) for n, p in enumerate(planes)).long()
        if torch.equal(got, unweighted):
            fail(label, "plane n carries the weight 2**n: multiply each plane's product by 2**n before adding.")
        if torch.equal(got, pm):
            fail(label, "a plane holds 0/1, not ±1: (2x - 1) · w counts the zeros as -1. Use the 0/1 plane, or "
                        "add the weight row sum and halve: x · w = ((2x - 1) · w + sum(w)) / 2.")
        if torch.equal(got, reversed_):
            fail(label, "the planes are weighted in reverse: plane 0 (q & 1) is the least significant bit.")
        fail(label, f"wrong values for {bits}-bit codes of shape {tuple(q.shape)}: s = sum_n 2**n (x^n · w) with "
                    "x^n = (q >> n) & 1.")
    return passed(label, "your bit-plane products equal q @ w.T for 1- to 8-bit codes")
