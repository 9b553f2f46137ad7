"""Self-checks of the Binarized Neural Networks chapter (notebooks/2016/binarized_neural_networks.ipynb).

Each check calls the student's function on several inputs, compares with a reference computed independently
(:func:`qteach.papers.binarized_neural_networks.ap2`, an integer matrix product), and either prints the success
line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import binarized_neural_networks as bnn

_SLUG = "binarized_neural_networks"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: AP2 ----------------------------------------------------------------------------------------


def _ap2_inputs():
    g = torch.Generator().manual_seed(3)
    return [
        torch.tensor([3.0, 0.3, 1.0, 0.75, 6.0, 1.5, 100.0]),
        torch.tensor([-3.0, -0.3, -6.0, 5.0]),
        torch.tensor([0.0, 2.0, -0.0, 0.5]),
        torch.randn(50, generator=g) * 4,
    ]


def _ap2_hint(got, x):
    sign = torch.where(x < 0, -1.0, 1.0)
    log = torch.log2(x.abs())
    candidates = [
        (torch.exp2(torch.round(log)), "keep the sign: AP2(x) = sign(x) * 2^round(log2|x|)."),
        (sign * torch.exp2(torch.floor(log)), "round log2|x| to the nearest integer; floor always rounds down."),
        (sign * torch.exp2(torch.ceil(log)), "round log2|x| to the nearest integer; ceil always rounds up."),
        (sign * torch.round(x.abs()), "round the exponent log2|x|, not x itself."),
    ]
    finite = x != 0
    for value, hint in candidates:
        if got.shape == x.shape and torch.allclose(got[finite], value[finite]):
            return hint
    return "compute sign(x) * 2 ** round(log2(|x|)), and return 0 where x == 0."


@self_check
def check_1(approx_pow2) -> str:
    """Check ``approx_pow2(x)``: AP2 elementwise, with AP2(0) = 0."""
    label = _label(1)
    expect(callable(approx_pow2), label, "pass your function itself, e.g. check_1(approx_pow2)")
    for x in _ap2_inputs():
        got = approx_pow2(x.clone())
        expect_type(got, torch.Tensor, label, f"approx_pow2 of a tensor of shape {tuple(x.shape)}")
        expected = bnn.ap2(x)
        if got.shape != x.shape:
            fail(label, f"the result has shape {tuple(got.shape)}, expected {tuple(x.shape)} (elementwise).")
        zero = x == 0
        if zero.any() and not torch.equal(got[zero].float().nan_to_num(1.0), torch.zeros(int(zero.sum()))):
            fail(label, "AP2(0) should be 0: log2(0) is -inf, handle x == 0 separately (e.g. torch.where).")
        if not torch.allclose(got.float(), expected):
            fail(label, f"wrong values for x = {[round(v, 3) for v in x[:6].tolist()]}... {_ap2_hint(got, x)}")
    return passed(label, "AP2 matches sign(x) 2^round(log2|x|) on 4 tensors (negatives, zeros, large and small "
                         "values, 50 random ones)")


# --- exercise 2: the first layer on bit planes --------------------------------------------------------------


def _bitplane_inputs():
    g = torch.Generator().manual_seed(8)
    q1 = torch.randint(0, 256, (5, 16), generator=g)
    w1 = torch.where(torch.rand(3, 16, generator=g) < 0.5, -1.0, 1.0)
    q2 = torch.tensor([[255, 0, 128, 1]])  # every bit set, none set, only the top one, only the bottom one
    w2 = torch.tensor([[1.0, -1.0, -1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    return [(q1, w1), (q2, w2)]


def _bitplane_hint(got, q, w):
    planes = [((q >> n) & 1).double() for n in range(8)]
    wd = w.double()
    candidates = [
        (sum(2 ** (n + 1) * (planes[n] @ wd.T) for n in range(8)),
         "the weights of the planes are 2^(n-1) for n = 1..8: the least significant plane counts 1, not 2."),
        (sum(2**n * (planes[n] @ wd.T) for n in range(7)), "there are 8 planes (n = 1..8): one is missing."),
        (sum(2**n * ((2 * planes[n] - 1) @ wd.T) for n in range(8)),
         "a plane x^n holds 0s and 1s (the bits of q), not -1/+1."),
        (sum(planes[n] @ wd.T for n in range(8)), "weight plane n by 2^(n-1) before adding."),
    ]
    for value, hint in candidates:
        if got.shape == value.shape and torch.allclose(got.double(), value):
            return hint
    return "split q into its 8 bits x^n = (q >> (n-1)) & 1 and add 2^(n-1) * (x^n @ w_b.T)."


@self_check
def check_2(bitplane_dot) -> str:
    """Check ``bitplane_dot(q, w_b)``: 8-bit codes (M, K) times +-1 weights (N, K) on bit planes, (M, N)."""
    label = _label(2)
    expect(callable(bitplane_dot), label, "pass your function itself, e.g. check_2(bitplane_dot)")
    for q, w in _bitplane_inputs():
        got = bitplane_dot(q.clone(), w.clone())
        expect_type(got, torch.Tensor, label, "bitplane_dot(q, w_b)")
        expected = q.double() @ w.double().T
        if got.shape != expected.shape:
            fail(label, f"the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)} = (M, N).")
        if not torch.equal(got.double(), expected):
            fail(label, f"for q = {q[0, :4].tolist()}... the result differs from q @ w_b.T. "
                        f"{_bitplane_hint(got, q, w)}")
    return passed(label, "the bit-plane sum equals the integer product q @ w_b.T exactly on 2 inputs (random codes; "
                         "codes 255, 0, 128 and 1)")
