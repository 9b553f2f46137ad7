"""Tests of qteach.papers.channel_wise_interactions against hand-computed values, brute force and a transcription
of the official code.

Official code: https://github.com/ZiweiWangTHU/CI-BCNN (commit 6780fbb), files cited by path and line.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.papers import channel_wise_interactions as ci


def ints(*shape, seed=0, high=40):
    return torch.randint(-high, high + 1, shape, generator=torch.Generator().manual_seed(seed))


def official_fp_add(x_original, dep_feature, alpha):
    """Transcription of ``fp_add.forward`` (models/binarized_modules.py:68-107) without ``.cuda()``:
    m_1 = 200 (:71), n_1 = -200 (:76)."""
    m_1, n_1 = 200, -200
    if alpha == 0.04:                                                                   # :95
        return x_original + ((dep_feature >= m_1).float() - (dep_feature <= n_1).float()) * 100   # :96-97
    if alpha == 0:                                                                      # :98
        return x_original                                                               # :99
    if alpha == -0.04:                                                                  # :100
        return x_original - ((dep_feature >= m_1).float() + (dep_feature <= n_1).float()) * 100   # :101-102


def official_forward(out, xx, yy, influence):
    """Transcription of the loop of ``BinarizeConv2d.forward`` (binarized_modules.py:57-61), in place."""
    out = out.clone()
    for i in range(len(xx)):
        out[:, yy[i], :, :] = official_fp_add(out[:, yy[i], :, :], out[:, xx[i], :, :], influence[xx[i]][yy[i]])
    return out


def test_prior_hand_computed():
    y = torch.tensor([-300, -200, -199, 0, 199, 200, 300])
    assert ci.interaction_prior(y, 200).tolist() == [-1, -1, 0, 0, 0, 1, 1]


def test_interacted_bitcount_hand_computed():
    y = torch.zeros(1, 2, 1, 3, dtype=torch.int64)
    y[0, 0, 0] = torch.tensor([-5, 1, 7])
    y[0, 1, 0] = torch.tensor([2, 2, -2])
    out = ci.interacted_bitcount(y, [(0, 1, 1)], threshold=5, strength=3)
    assert out[0, 1, 0].tolist() == [-1, 2, 1]  # 2 - 3, 2, -2 + 3
    assert torch.equal(out[0, 0], y[0, 0])
    out = ci.interacted_bitcount(y, [(0, 1, -1)], threshold=5, strength=3)
    assert out[0, 1, 0].tolist() == [5, 2, -5]


def test_matches_official_positive_edges_with_official_constants():
    y = ints(2, 5, 6, 6, seed=1, high=400).float()
    xx, yy = [0, 3, 1, 2], [1, 1, 4, 0]
    influence = [[0.0] * 5 for _ in range(5)]
    for a, b in zip(xx, yy):
        influence[a][b] = 0.04
    ours = ci.interacted_bitcount(y, [(a, b, 1) for a, b in zip(xx, yy)], threshold=200, strength=100)
    assert torch.equal(ours, official_forward(y, xx, yy, influence))


def test_official_negative_edge_differs_only_where_source_is_confidently_negative():
    y = ints(2, 3, 5, 5, seed=2, high=400).float()
    influence = [[0.0] * 3 for _ in range(3)]
    influence[0][2] = -0.04
    official = official_forward(y, [0], [2], influence)
    ours = ci.interacted_bitcount(y, [(0, 2, -1)], 200, 100)
    diff = ours[:, 2] - official[:, 2]
    assert torch.equal(diff, 200 * (y[:, 0] <= -200).float())  # the official line pushes down there too


def test_bit_exact_on_xnor_popcount_bitcounts():
    g = torch.Generator().manual_seed(3)
    for (n, c, h, w, o) in [(2, 5, 7, 6, 4), (1, 64, 3, 3, 3), (3, 70, 5, 4, 6)]:
        x, wt = torch.randn(n, c, h, w, generator=g), torch.randn(o, c, 3, 3, generator=g)
        counts = bitops.binary_conv2d(x, wt, padding=1)
        plain = F.conv2d(sign(x), sign(wt), padding=1)
        edges = ci.random_interactions(o, 5, seed=c)
        fast = ci.interacted_bitcount(counts, edges, 4, 3)
        assert fast.dtype == torch.int32
        assert torch.equal(fast.float(), ci.interacted_bitcount(plain, edges, 4, 3))


def test_no_edges_is_identity_and_module_backward_is_identity():
    y = ints(2, 3, 4, 4).float().requires_grad_()
    layer = ci.InteractedBitcount(3, 5, 2)
    assert layer(y) is y
    layer.set_edges([(0, 1, 1), (2, 1, -1)])
    out = layer(y)
    assert torch.equal(out.detach(), ci.interacted_bitcount(y.detach(), layer.edges, 5, 2))
    out.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))


def test_ci_cnn_without_edges_equals_plain_binary_network():
    from qteach.papers import xnor_net
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a, b = ci.ci_cnn(seed=3).eval(), xnor_net.xnor_cnn("binary", channels=(16, 32), seed=3).eval()
    assert torch.equal(a(x), b(x))


def test_flip_rate_hand_computed_and_scale_invariant():
    f = torch.tensor([1.0, -2.0, 0.5, -0.1])
    y = torch.tensor([3, 1, -2, 0])  # flips at 1 (sign -1 vs +1), 2, 3 (sign(0) = +1)
    assert ci.flip_rate(f, y) == 0.75
    assert ci.flip_rate(f * 7.5, y * 3) == 0.75


def brute_best(yb, yf, tau, c):
    base = ci.flip_rate(yf, yb) * yf.numel()
    best = (0, None)
    for s, i, j in itertools.product((1, -1), range(yb.shape[1]), range(yb.shape[1])):
        if i != j:
            gain = base - ci.flip_rate(yf, ci.interacted_bitcount(yb, [(i, j, s)], tau, c)) * yf.numel()
            if round(gain) > best[0]:
                best = (round(gain), (i, j, s))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_first_edge_is_brute_force_best_and_flips_are_exact(seed):
    g = torch.Generator().manual_seed(seed)
    yf = torch.randn(6, 4, 5, 5, generator=g)
    mix = torch.randn(4, 4, generator=g)
    yb = (10 * torch.einsum("nchw,cd->ndhw", yf, mix.abs() + torch.eye(4))).round()
    edges, flips = ci.greedy_interactions(yb, yf, 6, 4, max_edges=4)
    gain, edge = brute_best(yb, yf, 6, 4)
    if edge is None:
        assert len(edges) == 0
    else:
        assert flips[0] - flips[1] == gain
    for k in range(len(flips)):
        out = ci.interacted_bitcount(yb, edges[:k], 6, 4)
        assert round(ci.flip_rate(yf, out) * yf.numel()) == flips[k]
    assert all(a > b for a, b in itertools.pairwise(flips))


def test_greedy_finds_a_planted_interaction():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(64, 1, 4, 4, generator=g) * 20
    yf = torch.cat([src, src.sign() * 0.5 + torch.randn(64, 1, 4, 4, generator=g) * 0.01], 1)
    yb = torch.cat([src.round(), torch.zeros_like(src) - 1], 1)  # channel 1 lost its sign
    edges, flips = ci.greedy_interactions(yb, yf, 5, 2, max_edges=1)
    assert edges.tolist() == [[0, 1, 1]] and flips[1] < flips[0]


def test_constants_and_ops():
    assert ci.official_constants(720) == (200, 100)
    assert ci.official_constants(144) == (40, 20)
    assert ci.book_constants(144) == (9, 9) and ci.book_constants(288) == (18, 18)
    assert ci.edge_ops(torch.zeros(4, 3), 64) == 768
    r = ci.random_interactions(5, 50, seed=1)
    assert torch.equal(ci.check_edges(r, 5), r)


@pytest.mark.parametrize("call, match", [
    (lambda: ci.interacted_bitcount(torch.zeros(2, 3), [], 1, 1), "y"),
    (lambda: ci.interacted_bitcount(torch.zeros(1, 3, 2, 2), [(0, 0, 1)], 1, 1), "edges"),
    (lambda: ci.interacted_bitcount(torch.zeros(1, 3, 2, 2), [(0, 3, 1)], 1, 1), "edges"),
    (lambda: ci.interacted_bitcount(torch.zeros(1, 3, 2, 2), [(0, 1, 2)], 1, 1), "edges"),
    (lambda: ci.interacted_bitcount(torch.zeros(1, 3, 2, 2), [(0, 1, 1)], 0, 1), "threshold"),
    (lambda: ci.interacted_bitcount(torch.zeros(1, 3, 2, 2), [(0, 1, 1)], 1, 0), "strength"),
    (lambda: ci.interacted_bitcount(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3), 1, 1), "edges"),
    (lambda: ci.flip_rate(torch.zeros(3), torch.zeros(4)), "y_float"),
    (lambda: ci.greedy_interactions(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 3), 1, 1), "y_float"),
    (lambda: ci.greedy_interactions(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), 1, 1, -1), "max_edges"),
    (lambda: ci.random_interactions(1, 3), "channels"),
    (lambda: ci.official_constants(0), "fan_in"),
    (lambda: ci.InteractedBitcount(3, 0, 1), "threshold"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="y"):
        ci.interacted_bitcount([[1]], [], 1, 1)
    with pytest.raises(TypeError, match="edges"):
        ci.check_edges("edges", 3)
    with pytest.raises(ValueError, match="y"):
        ci.interacted_bitcount(torch.full((1, 2, 2, 2), float("nan")), [], 1, 1)
