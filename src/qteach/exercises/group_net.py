"""Self-checks of the Group-Net chapter (notebooks/2018/group_net.ipynb).

Each check calls the student's function, compares with :mod:`qteach.papers.group_net` or a closed form, and
either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import group_net

_SLUG = "group_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _cases():
    g = torch.Generator().manual_seed(11)
    for rows, n, out, k in ((3, 10, 4, 2), (5, 67, 3, 4), (2, 8, 6, 1)):
        yield (torch.randn(rows, n, generator=g), torch.randn(k, out, n, generator=g),
               torch.randn(k, generator=g) + 0.5)


# --- exercise 1: a group's output from XNOR-popcounts --------------------------------------------------------


@self_check
def check_1(group_xnor) -> str:
    """Check ``group_xnor(x, weights, scales)`` -> (rows, out): sum_k scales[k] * xnor_matmul(x, weights[k])."""
    label = _label(1)
    expect(callable(group_xnor), label, "pass your function itself, e.g. check_1(group_xnor)")
    for x, weights, scales in _cases():
        result = group_xnor(x.clone(), weights.clone(), scales.clone())
        expect(isinstance(result, torch.Tensor), label, "return a torch tensor of shape (rows, out)")
        expected = group_net.group_output(x, weights, scales)
        expect(result.shape == expected.shape, label, f"the result should have shape {tuple(expected.shape)} "
               f"(rows of x, outputs of one branch), got {tuple(result.shape)}")
        result = result.double()
        if torch.allclose(result, expected.double(), rtol=1e-5, atol=1e-4):
            continue
        unscaled = sum(group_net.branch_preactivation(x, w) for w in weights)
        if torch.allclose(result, unscaled.double(), atol=1e-4):
            fail(label, "the branches are summed without their scales: multiply branch k by scales[k].")
        if torch.allclose(result, (scales[0] * group_net.branch_preactivation(x, weights[0])).double(), atol=1e-4):
            fail(label, "only the first branch is there: loop over all K branches and add them up.")
        real = sum(s * (x @ w.T) for s, w in zip(scales, weights))
        if torch.allclose(result, real.double(), atol=1e-4):
            fail(label, "that is the full-precision product x @ W.T: each branch must use the signs "
                        "(bitops.xnor_matmul(x, weights[k]) packs and compares the signs for you).")
        fail(label, "each branch is bitops.xnor_matmul(x, weights[k]) (int32: convert it to float), scaled by "
                    "scales[k]; the group is the sum over k.")
    return passed(label, "the group is the scaled sum of its branches' XNOR-popcounts")


# --- exercise 2: equal binary operations, unequal storage ----------------------------------------------------


@self_check
def check_2(budget) -> str:
    """Check ``budget(m, n, width)`` -> ``(k, group_net_bits, abc_net_bits)`` for one width x width layer."""
    label = _label(2)
    expect(callable(budget), label, "pass your function itself, e.g. check_2(budget)")
    for m, n, width in ((2, 2, 64), (3, 1, 16), (1, 3, 8), (4, 5, 10)):
        result = budget(m, n, width)
        expect(isinstance(result, (tuple, list)) and len(result) == 3, label,
               "return three numbers (k, group_net_bits, abc_net_bits)")
        k, g_bits, a_bits = (as_number(v, label, name) for v, name in zip(result, ("k", "group_net_bits",
                                                                                  "abc_net_bits")))
        if k == m + n and m * n != m + n:
            fail(label, "K is not M + N: every weight basis meets every activation basis, so ABC-Net does "
                        "M x N binary products per weight.")
        expect(k == m * n, label, f"for M = {m}, N = {n}: an ABC-Net layer does M x N binary products per weight, "
                                  "a Group-Net layer K, so equal cost needs K = M x N.")
        if g_bits == m * width**2 and a_bits == k * width**2 and m != k:
            fail(label, "the two storage counts are swapped: Group-Net stores a weight matrix per branch.")
        expect(g_bits == k * width**2, label, "Group-Net keeps K binary weight matrices of width x width bits, "
                                              "one per branch.")
        if a_bits == m * n * width**2 and n != 1:
            fail(label, "ABC-Net's activation bases are computed at run time, not stored: it stores M weight "
                        "bases only.")
        expect(a_bits == m * width**2, label, "ABC-Net stores M binary weight bases of width x width bits.")
    return passed(label, "equal binary operations need K = M x N, and Group-Net then stores N times more bits")
