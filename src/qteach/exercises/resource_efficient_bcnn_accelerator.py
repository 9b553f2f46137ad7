"""Self-checks of the chapter "A Resource-Efficient Inference Accelerator for Binary Convolutional Neural Networks"
(the related idea of Choi, Shin and Kim, Journal of IEIE 2020: 1x1 datapath, block-wise binary I/O).

Each check calls the student's function on several inputs, compares with
:mod:`qteach.papers.resource_efficient_bcnn_accelerator`, and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach import bitops
from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "resource_efficient_bcnn_accelerator"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _maps(seed: int):
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 3, 2, 2, 4), (3, 8, 4, 4, 10), (1, 70, 1, 3, 5), (2, 5, 3, 1, 2)]
    for n, c, h, w, o in shapes:
        yield torch.randn(n, c, h, w, generator=g), torch.randn(o, c * h * w, generator=g)


# --- exercise 1: a fully connected layer as H*W 1x1 convolutions ------------------------------------------------

@self_check
def check_1(fc_via_1x1) -> str:
    """Check ``fc_via_1x1(x, w)``: the FC layer on a flattened (C, H, W) map, as a sum of 1x1 convolutions."""
    label = _label(1)
    expect(callable(fc_via_1x1), label, "pass your function itself, e.g. check_1(fc_via_1x1)")
    for x, w in _maps(0):
        got = fc_via_1x1(x, w)
        expect_type(got, torch.Tensor, label, "fc_via_1x1(x, w)")
        ref = bitops.xnor_matmul(x.flatten(1), w)
        expect(tuple(got.shape) == tuple(ref.shape), label,
               f"the result should have shape (N, O) = {tuple(ref.shape)}, got {tuple(got.shape)}; sum the "
               "1x1 outputs at the position each weight slice belongs to, not over the whole map.")
        if torch.equal(got.to(torch.int64), ref.to(torch.int64)):
            continue
        c, h, wd = x.shape[1:]
        wrong_order = w.reshape(w.shape[0], h, wd, c).permute(0, 3, 1, 2)
        if torch.equal(got.to(torch.int64), _fc_sum(x, wrong_order).to(torch.int64)):
            fail(label, "the weight columns are in x.flatten(1) order, i.e. (c, i, j): reshape w to "
                        "(O, C, H, W), not (O, H, W, C).")
        fail(label, "for each position (i, j), take the 1x1 convolution with w[:, :, i, j] (O, C) and keep its "
                    "output at (i, j) only; the sum over all positions is the FC output.")
    return passed(label, "your sum of 1x1 convolutions equals the fully connected layer on 4 feature maps")


def _fc_sum(x, w4):
    from qteach.papers.resource_efficient_bcnn_accelerator import conv1x1

    total = 0
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            total = total + conv1x1(x, w4[:, :, i, j])[:, :, i, j]
    return total


# --- exercise 2: pool after binarizing ---------------------------------------------------------------------------

def _cases_2():
    g = torch.Generator().manual_seed(1)
    for c, h, pool in ((6, 4, 2), (9, 6, 3), (4, 5, 2), (3, 2, 1)):
        acc = torch.randint(-12, 13, (2, c, h, h), generator=g)
        flip = torch.where(torch.rand(c, generator=g) < 0.5, 1, -1)
        flip[0], flip[-1] = 1, -1
        tau = torch.randint(-6, 7, (c,), generator=g)
        yield acc, flip, tau, pool


def _binarize(values, flip, tau):
    keep = flip.reshape(1, -1, 1, 1) * values >= tau.reshape(1, -1, 1, 1)
    return torch.where(keep, 1.0, -1.0)


@self_check
def check_2(pool_bits) -> str:
    """Check ``pool_bits(bits, flip, pool)``: pooling of binarized maps equal to binarizing max-pooled integers."""
    label = _label(2)
    expect(callable(pool_bits), label, "pass your function itself, e.g. check_2(pool_bits)")
    for acc, flip, tau, pool in _cases_2():
        bits = _binarize(acc, flip, tau)
        got = pool_bits(bits.clone(), flip.clone(), pool)
        expect_type(got, torch.Tensor, label, "pool_bits(bits, flip, pool)")
        pooled = torch.nn.functional.max_pool2d(acc.float(), pool)
        ref = _binarize(pooled, flip, tau)
        expect(tuple(got.shape) == tuple(ref.shape), label,
               f"the pooled map should have shape {tuple(ref.shape)}, got {tuple(got.shape)} (non-overlapping "
               "pool x pool windows, the rest dropped as F.max_pool2d does).")
        if torch.equal(got.float(), ref):
            continue
        plain = torch.nn.functional.max_pool2d(bits, pool)
        if torch.equal(got.float(), plain):
            fail(label, "a plain max-pool (OR) is right only where flip = +1; where flip = -1 the binarization is "
                        "decreasing in the accumulator, so the window's maximum gives its *smallest* bit (AND).")
        if torch.equal(got.float(), -torch.nn.functional.max_pool2d(-bits, pool)):
            fail(label, "a min-pool (AND) is right only where flip = -1; channels with flip = +1 need the OR "
                        "(max-pool).")
        fail(label, "per channel: OR (max) over each window where flip = +1, AND (min) where flip = -1.")
    return passed(label, "pooling your bits equals binarizing the max-pooled accumulators on 4 maps, flips included")
