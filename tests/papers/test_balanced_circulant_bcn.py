"""Balanced binarization (our construction, B1-B2): exact equal counts, hand-computed examples, the least-squares
scale, zero response to a constant input, balance kept by circulant filters, the straight-through gradient."""

from __future__ import annotations

import pytest
import torch

from qteach import binary
from qteach.papers import balanced_circulant_bcn as bal
from qteach.papers import circulant_bcn as cb


def test_hand_example():
    w = torch.tensor([[0.5, 2.0, 1.0, 3.0]])  # all positive: sign gives +1 everywhere
    assert bal.balanced_sign(w).tolist() == [[-1, 1, -1, 1]]
    assert binary.sign(w).tolist() == [[1, 1, 1, 1]]
    # alpha = <w, b> / n = (-0.5 + 2 - 1 + 3) / 4
    assert bal.balanced_scale(w, bal.balanced_sign(w)).item() == pytest.approx(0.875)


def test_ties_are_broken_by_position_and_counts_stay_equal():
    w = torch.zeros(3, 2, 3, 3)
    b = bal.balanced_sign(w)
    assert torch.equal((b > 0).flatten(1).sum(1), torch.full((3,), 9))
    assert b.flatten(1)[0, :9].eq(1).all()  # the earlier positions count as larger


@pytest.mark.parametrize("shape", [(5, 2, 3, 3), (1, 4, 3, 3), (7, 6), (3, 16, 3, 3)])
def test_exactly_balanced_and_zero_sum(shape):
    w = torch.randn(shape) + 2.0
    b = bal.balanced_sign(w)
    assert set(b.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(b.flatten(1).sum(1), torch.zeros(shape[0]))
    # the largest weights are the +1s: every +1 weight exceeds every -1 weight of its filter
    flat, bits = w.flatten(1), b.flatten(1)
    for f in range(shape[0]):
        assert flat[f][bits[f] > 0].min() > flat[f][bits[f] < 0].max()


def test_zero_sum_filter_ignores_a_constant_input():
    w = torch.randn(4, 2, 3, 3)
    b = bal.balanced_sign(w)
    out = torch.nn.functional.conv2d(torch.full((1, 2, 5, 5), 3.0), b)
    assert torch.equal(out, torch.zeros_like(out))


def test_scale_is_least_squares_and_matches_xnor_for_sign():
    w = torch.randn(6, 4, 3, 3)
    b = bal.balanced_sign(w)
    alpha = bal.balanced_scale(w, b)
    w64, b64 = w.double(), b.double()
    for f in range(6):
        solution = torch.linalg.lstsq(b64[f].reshape(-1, 1), w64[f].reshape(-1, 1)).solution
        assert alpha[f].item() == pytest.approx(solution.item(), rel=1e-5)
    s = binary.sign(w)
    assert torch.allclose(bal.balanced_scale(w, s), binary.mean_abs_scale(w), atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_circulant_filters_of_a_balanced_filter_are_balanced(n):
    w = torch.randn(5, 4, 3, 3)
    cifs = cb.circulant_filters(w, n)
    for k in range(n):
        assert torch.equal(bal.balanced_sign(cifs[k]), cb.circulant_filters(bal.balanced_sign(w), n)[k])
        assert torch.equal(bal.balanced_sign(cifs[k]).flatten(1).sum(1), torch.zeros(5))


def test_quantizer_forward_and_straight_through_gradient():
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    q = bal.BalancedBinaryWeight()(w)
    b = bal.balanced_sign(w)
    assert torch.allclose(q, bal.balanced_scale(w.detach(), b) * b)
    g = torch.randn_like(q)
    (q * g).sum().backward()
    assert torch.equal(w.grad, g)
    layer = cb.CirculantBinaryConv2d(2, 3, orientations=4, weight_quantizer=bal.BalancedBinaryWeight())
    assert layer(torch.randn(1, 2, 5, 5)).shape == (1, 12, 5, 5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="w"):
        bal.balanced_sign(torch.randn(3, 3, 3))  # 9 weights per filter: odd
    with pytest.raises(ValueError, match="w"):
        bal.balanced_sign(torch.randn(4))
    with pytest.raises(TypeError, match="w"):
        bal.balanced_sign([[1.0, 2.0]])
    with pytest.raises(ValueError, match="b"):
        bal.balanced_scale(torch.randn(2, 4), torch.ones(2, 3))
    with pytest.raises(TypeError, match="weight_quantizer"):
        cb.CirculantBinaryConv2d(2, 3, weight_quantizer=3)
