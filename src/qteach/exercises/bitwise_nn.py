"""Self-checks of the chapter "Bitwise Neural Networks" (Kim & Smaragdis, 2015).

Each check calls the student's function on several inputs (edge cases included), compares with a reference
computed independently (a floating-point product of the +-1 values), and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach import bitops
from qteach.checks import expect, fail, passed, self_check

_SLUG = "bitwise_nn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _bipolar(shape, generator) -> torch.Tensor:
    return torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)


def _as_int_tensor(value, label: str, call: str, shape) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(label, f"{call} should return a torch.Tensor, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        fail(label, f"{call} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    if value.dtype == torch.bool or value.is_complex():
        fail(label, f"{call} returned dtype {value.dtype}; return numbers (+-1 or integer counts)")
    if value.is_floating_point() and not torch.equal(value, value.round()):
        fail(label, f"{call} returned non-integer values; every quantity here is an integer")
    return value.to(torch.int64)


# --- exercise 1: one bitwise layer, eq. 1-2 --------------------------------------------------------------------

def _layer_cases():
    g = torch.Generator().manual_seed(5)
    cases = []
    for n, k, m in ((4, 9, 3), (6, 64, 5), (3, 70, 8), (1, 1, 2)):
        cases.append((_bipolar((n, k), g), _bipolar((m, k), g), _bipolar((m,), g)))
    # a case with ties: K = 2 and bias +1 or -1 gives a = 0 for some rows, where sign(0) must be +1
    z = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    w = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    cases.append((z, w, torch.tensor([1.0, -1.0])))
    z3 = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]])
    cases.append((z3, torch.tensor([[1.0, 1.0, -1.0]]), torch.tensor([-1.0])))  # a = -1 + 1 = 0
    return cases


def _layer_reference(z, w, b):
    a = z @ w.T + b
    return torch.where(a >= 0, 1, -1).to(torch.int64), a.to(torch.int64)


@self_check
def check_1(bitwise_layer) -> str:
    """Check ``bitwise_layer(z, w, b)`` = sign(b + sum_j w_ij XNOR z_j) against a float reference."""
    label = _label(1)
    expect(callable(bitwise_layer), label, "pass your function itself, e.g. check_1(bitwise_layer)")
    for z, w, b in _layer_cases():
        call = f"bitwise_layer(z {tuple(z.shape)}, w {tuple(w.shape)}, b {tuple(b.shape)})"
        expected, a = _layer_reference(z, w, b)
        got = _as_int_tensor(bitwise_layer(z.clone(), w.clone(), b.clone()), label, call, expected.shape)
        if torch.equal(got, expected):
            continue
        if torch.equal(got, a):
            fail(label, f"{call} returned the pre-activation a; eq. 2 takes its sign: z = sign(a).")
        if torch.equal(got, torch.sign(a)):
            fail(label, f"{call} returned 0 where a = 0 (torch.sign); a bitwise network has no 0: "
                        "sign(0) = +1, e.g. torch.where(a >= 0, 1, -1) or qteach.binary.sign.")
        no_bias = z @ w.T
        if torch.equal(got, torch.where(no_bias >= 0, 1, -1).to(torch.int64)):
            fail(label, f"{call} ignores the bias: eq. 1 is a = b + sum_j w_ij XNOR z_j, the bias is one more "
                        "+-1 term.")
        if torch.equal(got, torch.where(a > 0, -1, 1).to(torch.int64)) or torch.equal(got, -expected):
            fail(label, f"{call} has the sign flipped: XNOR of equal bits is 1, i.e. (+1)(+1) = (-1)(-1) = +1.")
        fail(label, f"{call} differs from sign(b + z @ w.T): compute the dot product with "
                    "qteach.bitops.xnor_matmul(z, w) (it returns sign(z) @ sign(w).T), add b, take the sign "
                    "with sign(0) = +1.")
    return passed(label, "one bitwise layer (XNOR-popcount + binary bias + sign) equals the +-1 float layer on 6 "
                         "cases, K from 1 to 70, ties included")


# --- exercise 2: sparse (ternary) weights with two XNOR products --------------------------------------------------

def _ternary_cases():
    g = torch.Generator().manual_seed(9)
    cases = []
    for m, k, n in ((3, 5, 2), (4, 13, 6), (2, 70, 3), (5, 64, 4)):
        cases.append((_bipolar((m, k), g), torch.randint(-1, 2, (n, k), generator=g).to(torch.float32)))
    z = _bipolar((3, 8), g)
    cases.append((z, torch.zeros(2, 8)))  # all weights masked: the product is 0
    cases.append((z, _bipolar((2, 8), g)))  # no zeros: a plain XNOR product
    return cases


@self_check
def check_2(ternary_dot) -> str:
    """Check ``ternary_dot(z, t)`` = z @ t.T for bipolar z and ternary t (values -1, 0, +1)."""
    label = _label(2)
    expect(callable(ternary_dot), label, "pass your function itself, e.g. check_2(ternary_dot)")
    for z, t in _ternary_cases():
        call = f"ternary_dot(z {tuple(z.shape)}, t {tuple(t.shape)})"
        expected = (z @ t.T).to(torch.int64)
        got = _as_int_tensor(ternary_dot(z.clone(), t.clone()), label, call, expected.shape)
        if torch.equal(got, expected):
            continue
        if torch.equal(got, bitops.xnor_matmul(z, t).to(torch.int64)):
            fail(label, f"{call} counts every zero weight as +1 (sign(0) = +1 in xnor_matmul). Split t into "
                        "t_plus (zeros -> +1) and t_minus (zeros -> -1): t = (t_plus + t_minus) / 2.")
        if torch.equal(got, 2 * expected):
            fail(label, f"{call} is twice the answer: the two XNOR products add up to 2 z @ t.T; halve the sum.")
        fail(label, f"{call} differs from z @ t.T. Write t = (t_plus + t_minus) / 2 with two bipolar copies "
                    "of t that disagree exactly on the zeros, and add the two XNOR products.")
    return passed(label, "ternary product from two XNOR-popcount products equals z @ t.T on 6 cases, all-zero "
                         "and zero-free weights included")
