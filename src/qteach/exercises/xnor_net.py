"""Self-checks of the XNOR-Net chapter (notebooks/2016/xnor_net.ipynb).

Each check calls the student's function, compares with a reference (a closed form derived for Gaussian data, or
:mod:`qteach.papers.xnor_net`), and either prints the success line or raises ``AssertionError`` with a hint that
names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import xnor_net

_SLUG = "xnor_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: predict the error of binarization -----------------------------------------------------------

_BWN = math.sqrt(1 - 2 / math.pi)        # x_i (|w_i| - alpha) sign(w_i): variance 1 - 2/pi per term
_XNOR = math.sqrt(1 - 4 / math.pi**2)    # sign(x_i w_i)(|x_i||w_i| - alpha beta): variance 1 - (2/pi)^2 per term


@self_check
def check_1(predicted_errors) -> str:
    """Check ``predicted_errors()`` -> ``(bwn, xnor)``: the relative RMS errors of BWN's and XNOR-Net's dot product
    for large windows of independent standard-normal inputs and weights."""
    label = _label(1)
    expect(callable(predicted_errors), label, "pass your function itself, e.g. check_1(predicted_errors)")
    result = predicted_errors()
    expect(isinstance(result, (tuple, list)) and len(result) == 2, label, "return a pair (bwn, xnor) of numbers")
    bwn, xnor = (as_number(v, label, name) for v, name in zip(result, ("bwn", "xnor")))
    tol = 0.01

    def near(value, target):
        return abs(value - target) < tol

    if near(bwn, _BWN) and near(xnor, _XNOR):
        return passed(label, f"BWN's relative error sqrt(1 - 2/pi) = {_BWN:.3f} and XNOR-Net's sqrt(1 - 4/pi^2) = "
                             f"{_XNOR:.3f}")
    if near(bwn, _XNOR) and near(xnor, _BWN):
        fail(label, "the two are swapped: binarizing the inputs as well can only add error.")
    if near(bwn, _BWN**2):
        fail(label, "those look like squared errors (variances relative to the variance of the dot product): the "
                    "question asks for the relative root-mean-square error, its square root.")
    if near(bwn, _BWN):
        fail(label, "bwn is right; for xnor, write one term x_i w_i - beta alpha sign(x_i) sign(w_i) as "
                    "sign(x_i w_i) (|x_i| |w_i| - alpha beta), take its mean square with alpha = beta = E|z|, "
                    "and the square root.")
    if near(bwn, 1 - math.sqrt(2 / math.pi)) or near(bwn, math.sqrt(2 / math.pi)):
        fail(label, "E|z| = sqrt(2/pi) is the optimal alpha, not the error: the error of one term is "
                    "x_i (w_i - alpha sign(w_i)); take its mean square relative to that of x_i w_i, then the "
                    "square root.")
    fail(label, "the terms of the sum are independent, so compare one term's mean square error with the mean "
                "square of x_i w_i (which is 1), using alpha = beta = E|z| = sqrt(2/pi) for n large, then take the "
                "square root.")


# --- exercise 2: BWN's optimal binary filter ------------------------------------------------------------------


def _weights():
    g = torch.Generator().manual_seed(5)
    w1 = torch.randn(4, 3, 3, 3, generator=g)
    w1[0] *= 10  # filters of very different scales: one alpha per filter matters
    w2 = torch.tensor([[0.0, 1.0, -3.0], [2.0, -2.0, 0.5]])  # an exact zero: sign(0) = +1
    w3 = torch.randn(2, 5, generator=g) + 1.0
    return [w1, w2, w3]


@self_check
def check_2(binary_filter) -> str:
    """Check ``binary_filter(w)`` -> ``(alpha, b)``: one alpha per filter (dim 0), b = sign(w) with sign(0) = +1."""
    label = _label(2)
    expect(callable(binary_filter), label, "pass your function itself, e.g. check_2(binary_filter)")
    for w in _weights():
        result = binary_filter(w.clone())
        expect(isinstance(result, tuple) and len(result) == 2, label, "return a pair (alpha, b)")
        alpha, b = result
        expect_type(alpha, torch.Tensor, label, "alpha")
        expect_type(b, torch.Tensor, label, "b")
        ref_alpha, ref_b = xnor_net.binary_weight_approximation(w)
        if b.shape != w.shape or not torch.equal(b.float(), ref_b):
            if b.shape == w.shape and torch.equal(b.float(), torch.sign(w)):
                fail(label, "torch.sign(0) is 0, which is not a binary value: map 0 to +1 "
                            "(qteach.binary.sign does).")
            fail(label, "b should be sign(w), with the shape of w.")
        if alpha.numel() == 1 and w.shape[0] > 1:
            fail(label, "alpha should have one value per filter (output channel, dim 0), not one for the tensor.")
        try:
            scaled = alpha * b
        except RuntimeError:
            fail(label, f"alpha of shape {tuple(alpha.shape)} does not broadcast against w of shape "
                        f"{tuple(w.shape)}: keep the reduced dims (keepdim=True).")
        if scaled.shape != w.shape:
            fail(label, f"alpha * b has shape {tuple(scaled.shape)}, expected {tuple(w.shape)}: reduce over every "
                        "dim except dim 0 and keep them (keepdim=True).")
        if not torch.allclose(scaled, ref_alpha * ref_b, atol=1e-5):
            flat = w.reshape(w.shape[0], -1)
            if torch.allclose(alpha.flatten(), flat.mean(1), atol=1e-5):
                fail(label, "alpha is the mean of |W| (the L1 norm over n), not the mean of W.")
            if torch.allclose(alpha.flatten(), flat.abs().sum(1), atol=1e-5):
                fail(label, "divide the L1 norm by n, the number of weights in the filter.")
            fail(label, "alpha should be (1/n) * ||W||_1 for each filter.")
    return passed(label, "alpha and B equal the closed-form optimum of ||W - alpha B||^2 on 3 weight tensors "
                         "(conv filters of different scales, a linear layer, an exact zero)")
