"""Tests of qteach.papers.group_net: hand-computed values of the branch sum and the bit-exact XNOR check.

The paper's method section could not be read (abstract and introduction only, arXiv 1811.10413), and the catalog
links no official code, so the sum over branches is checked against hand computation of the abstract's
statement: a group = the scaled sum of K binary branches.
"""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.papers import group_net as gn


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_branch_preactivation_hand_computed():
    x = torch.tensor([[0.3, -1.0, 0.0]])            # sign: +1, -1, +1 (sign(0) = +1)
    w = torch.tensor([[1.0, 1.0, -2.0], [-0.1, -5.0, 4.0]])  # sign rows: (+,+,-), (-,-,+)
    # row 1: (+1)(+1) + (-1)(+1) + (+1)(-1) = -1; row 2: -1 + 1 + 1 = 1
    assert gn.branch_preactivation(x, w).tolist() == [[-1.0, 1.0]]


def test_group_output_hand_computed():
    x = torch.tensor([[1.0, -1.0]])
    weights = torch.tensor([[[1.0, 1.0]], [[1.0, -1.0]]])  # branch 1: 1 - 1 = 0; branch 2: 1 + 1 = 2
    scales = torch.tensor([0.5, 2.0])
    # 0.5 * 0 + 2.0 * 2 = 4
    assert gn.group_output(x, weights, scales).tolist() == [[4.0]]
    assert gn.group_output(x, weights, scales, xnor=True).tolist() == [[4.0]]


@pytest.mark.parametrize("n", [1, 7, 8, 63, 64, 65, 130])
def test_each_branch_xnor_popcount_equals_float(n):
    x, w = randn(5, n, seed=1), randn(3, n, seed=2)
    exact = bitops.xnor_matmul(x, w)
    assert torch.equal(gn.branch_preactivation(x, w), exact.float())


def test_group_output_xnor_equals_float():
    x, weights, scales = randn(6, 33, seed=3), randn(4, 5, 33, seed=4), randn(4, seed=5)
    assert torch.allclose(gn.group_output(x, weights, scales, xnor=True), gn.group_output(x, weights, scales),
                          rtol=0, atol=1e-5)


def test_trained_branch_layer_is_xnor_popcount():
    """A binary layer of a model computes sign(x) sign(W)^T, the XNOR-popcount of its packed bits."""
    model = gn.group_net_mlp(in_features=8, width=16, num_branches=2, seed=0).eval()
    layer = model[3].branches[1][0][0]
    h = randn(4, 16, seed=6)
    assert torch.equal(layer(h), bitops.xnor_matmul(h, layer.weight.detach()).float())


def test_k_one_is_a_plain_binary_block_and_scales_start_at_one_over_k():
    block = gn.GroupBlock(8, num_branches=4)
    assert len(block.branches) == 4 and block.scales.tolist() == [0.25] * 4
    assert len(gn.GroupBlock(8, num_branches=1).branches) == 1


def test_group_block_is_the_scaled_sum_of_its_branches():
    block = gn.GroupBlock(6, num_branches=3).eval()
    with torch.no_grad():
        block.scales.copy_(torch.tensor([1.0, -2.0, 0.5]))
    x = randn(5, 6, seed=7)
    expected = sum(s * b(x) for s, b in zip([1.0, -2.0, 0.5], block.branches))
    assert torch.allclose(block(x), expected)


def test_models_run_and_have_the_right_shapes():
    x = randn(7, 64, seed=8)
    for model in (gn.group_net_mlp(num_branches=2), gn.group_net_mlp(binary=False),
                  gn.abc_net_mlp(weight_bases=2, activation_bases=2)):
        assert model(x).shape == (7, 10)


def test_binary_ops_equal_budget():
    assert gn.binary_ops(64, depth=2, num_branches=4) == 4 * 2 * 64 * 64
    assert gn.binary_ops(64, 2, num_branches=4) == gn.binary_ops(64, 2, weight_bases=2, activation_bases=2)
    assert gn.binary_ops(3, 1) == 9


def test_bad_input_raises():
    with pytest.raises(ValueError, match="columns"):
        gn.branch_preactivation(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="scales"):
        gn.group_output(torch.ones(2, 3), torch.ones(2, 1, 3), torch.ones(3))
    with pytest.raises(ValueError, match="weights"):
        gn.group_output(torch.ones(2, 3), torch.ones(2, 1, 4), torch.ones(2))
    with pytest.raises(TypeError):
        gn.branch_preactivation(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3))
    with pytest.raises(ValueError, match="num_branches"):
        gn.GroupBlock(8, num_branches=0)
    with pytest.raises(ValueError, match="width"):
        gn.binary_ops(0)
