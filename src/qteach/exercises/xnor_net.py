"""Self-checks of the XNOR-Net chapter (notebooks/2016/xnor_net.ipynb).

Each check calls the student's function on several inputs, compares with a reference computed independently
(:mod:`qteach.papers.xnor_net`, or plain torch for the window means), and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import xnor_net

_SLUG = "xnor_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _inputs():
    g = torch.Generator().manual_seed(11)
    x1 = torch.randn(2, 3, 6, 6, generator=g)
    x2 = torch.randn(1, 5, 4, 7, generator=g) * 3
    x3 = torch.zeros(1, 2, 3, 3)
    x3[0, 0, 1, 1] = -4.0  # one negative value: |I| matters
    return [(x1, 3), (x2, (2, 3)), (x3, 3), (x1, 1)]


# --- exercise 1: the scaling map K ------------------------------------------------------------------------------


def _k_hint(got, x, kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    window = lambda a: F.avg_pool2d(a, (kh, kw), stride=1)  # noqa: E731
    candidates = [
        (window(x.mean(1, keepdim=True)), "take the absolute value first: A is the channel mean of |I|, not of I."),
        (window(x.abs().sum(1, keepdim=True)), "A is the channel *mean* of |I|: divide the sum by the number of "
                                               "channels c."),
        (x.abs().mean(1, keepdim=True), "that is A; K is A averaged over each kh x kw window (convolve A with a "
                                         "filter whose entries are all 1/(kh*kw))."),
        (F.max_pool2d(x.abs().mean(1, keepdim=True), (kh, kw), stride=1),
         "K averages A over the window (the filter k has entries 1/(kh*kw)); it is not a maximum."),
        (F.conv2d(x.abs().mean(1, keepdim=True), torch.ones(1, 1, kh, kw)),
         "the filter k has entries 1/(kh*kw): divide the window sum by the window size."),
    ]
    for value, hint in candidates:
        if isinstance(got, torch.Tensor) and got.shape == value.shape and torch.allclose(got, value, atol=1e-5):
            return hint
    return "compute A = |I|.mean over channels (keep the channel dim), then average A over every kh x kw window."


@self_check
def check_1(scaling_map) -> str:
    """Check ``scaling_map(x, kernel_size)``: XNOR-Net's K for stride 1 and no padding, shape (N, 1, H', W')."""
    label = _label(1)
    expect(callable(scaling_map), label, "pass your function itself, e.g. check_1(scaling_map)")
    for x, kernel in _inputs():
        got = scaling_map(x.clone(), kernel)
        expect_type(got, torch.Tensor, label, f"scaling_map(x of shape {tuple(x.shape)}, {kernel})")
        expected = xnor_net.input_scaling_k(x, kernel)
        if got.shape != expected.shape or not torch.allclose(got.float(), expected, atol=1e-5):
            where = (f"has shape {tuple(got.shape)}, expected {tuple(expected.shape)}" if got.shape != expected.shape
                     else "has the right shape but other values")
            fail(label, f"for x of shape {tuple(x.shape)} and kernel {kernel} your K {where}. "
                        f"{_k_hint(got, x, kernel)}")
    return passed(label, "K matches the paper's A * k on 4 inputs (several channel counts, a non-square kernel, "
                         "a 1x1 kernel and a negative input)")


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
