"""PA (our reconstruction): segment points, piece means and the sign-basis coefficients by hand; the piece means
are the least-squares optimum over the shifted-sign bases (numpy's lstsq); the XNOR-popcount evaluation equals the
float product; the quantizers' straight-through gradient and tracked statistics; bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from qteach import comparison, data
from qteach import nn as qnn
from qteach.papers import abc_net, horq
from qteach.papers import piecewise_approximation as pa


def test_segment_points_by_hand():
    x = torch.tensor([5.0, 1.0, 3.0, 2.0, 4.0, 6.0])
    # M = 2: the floor(6/3) + 1 = 3rd and floor(12/3) + 1 = 5th smallest values: 2 values below each piece
    assert pa.segment_points(x, 2).tolist() == [3.0, 5.0]
    # uniform: 1 + (6 - 1) * m / 3
    assert pa.segment_points(x, 2, "uniform").tolist() == pytest.approx([1 + 5 / 3, 1 + 10 / 3])
    # one basis: the upper median (the 4th smallest of 6)
    assert pa.segment_points(x, 1).tolist() == [4.0]


def test_levels_and_coefficients_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    points = torch.tensor([2.5, 4.5], dtype=torch.float64)
    levels = pa.piece_levels(x, points)
    assert levels.tolist() == [1.5, 3.5, 5.5]  # pieces {1, 2}, {3, 4}, {5, 6}
    b, alpha = pa.coefficients(levels)
    assert float(b) == 3.5 and alpha.tolist() == [1.0, 1.0]
    x_hat, _, _, bases = pa.approximate(x, 2)
    # points 3 and 5 (a value on a point belongs to the piece above): pieces {1, 2}, {3, 4}, {5, 6}
    assert bases.tolist() == [[-1, -1, 1, 1, 1, 1], [-1, -1, -1, -1, 1, 1]]
    assert x_hat.tolist() == [1.5, 1.5, 3.5, 3.5, 5.5, 5.5]


def test_empty_pieces_get_zero_scale():
    # ReLU-like: half the values are 0; ranks 3, 5, 7 of 8 give the points 0, 1, 3
    x = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    points = pa.segment_points(x, 3)
    assert points.tolist() == [0.0, 1.0, 3.0]
    levels = pa.piece_levels(x, points)
    # the piece x < 0 is empty and takes the level of the first non-empty piece {0, 0, 0, 0}
    assert levels.tolist() == [0.0, 0.0, 1.5, 3.5]
    b, alpha = pa.coefficients(levels)
    assert alpha.tolist() == [0.0, 0.75, 1.0]  # the empty piece's basis carries nothing
    x_hat = pa.approximate(x, 3)[0]
    assert torch.allclose(x_hat, (b + (alpha.reshape(-1, 1) * pa.pa_bases(x, points).double()).sum(0)).float())
    assert x_hat.tolist() == [0.0, 0.0, 0.0, 0.0, 1.5, 1.5, 3.5, 3.5]


@pytest.mark.parametrize("rule", pa.RULES)
@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_piece_means_are_the_least_squares_optimum(rule, m):
    x = data.weight_samples((32, 17), "gaussian", seed=m).double()
    points = pa.segment_points(x, m, rule)
    bases = pa.pa_bases(x, points).reshape(m, -1).T.numpy()
    design = np.concatenate([np.ones((bases.shape[0], 1)), bases], axis=1)
    best = np.linalg.lstsq(design, x.reshape(-1).numpy(), rcond=None)[0]
    x_hat = pa.approximate(x, m, rule)[0].reshape(-1).numpy()
    assert np.allclose(x_hat, design @ best, atol=1e-10)


def test_staircase_has_m_plus_one_levels_and_is_monotone():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    for m in (1, 2, 4):
        x_hat = pa.approximate(x, m)[0]
        assert len(torch.unique(x_hat)) == m + 1
        order = torch.argsort(x)
        assert bool((x_hat[order][1:] >= x_hat[order][:-1]).all())


def test_one_basis_is_xnor_net_on_symmetric_data():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.5, 1.0, 3.0])
    x_hat, b, alpha, _ = pa.approximate(x, 1)
    # median 0.5 belongs to the upper piece: pieces {-3, -1, -0.5} and {0.5, 1, 3}, means -1.5 and 1.5
    assert float(b) == 0.0 and alpha.tolist() == [1.5]
    assert x_hat.tolist() == (1.5 * torch.sign(x)).tolist()  # the mean |x| scale of XNOR-Net


def test_lloyd_never_worse_than_quantile():
    for seed in range(3):
        for x in (torch.randn(2000, generator=torch.Generator().manual_seed(seed)),
                  torch.relu(torch.randn(2000, generator=torch.Generator().manual_seed(seed)))):
            for m in (1, 2, 3, 5):
                assert pa.reconstruction_mse(x, m, rule="lloyd") <= pa.reconstruction_mse(x, m) + 1e-12


def test_reconstruction_mse_of_the_baselines():
    x = data.weight_samples((64, 64), "gaussian", seed=0)
    for m in (1, 3):
        abc_hat = abc_net.approximate(x.double(), m)[0]
        assert pa.reconstruction_mse(x, m, "abc") == pytest.approx(float(((x.double() - abc_hat) ** 2).mean()))
        res_hat = horq.horq_approximation(x.double().reshape(1, -1), m).reshape(x.shape)
        assert pa.reconstruction_mse(x, m, "residual") == pytest.approx(float(((x.double() - res_hat) ** 2).mean()))
    errors = [pa.reconstruction_mse(x, m) for m in range(1, 6)]
    assert all(a > b for a, b in itertools.pairwise(errors))


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 64, 2), (5, 65, 4), (7, 130, 3), (2, 200, 9)])
def test_bitwise_product_equals_float_product(shape):
    n, k, o = shape
    g = torch.Generator().manual_seed(k)
    a, w = torch.relu(torch.randn(n, k, generator=g)), torch.randn(o, k, generator=g)
    for a_bases, w_bases in ((1, 1), (3, 2), (5, 4)):
        out = pa.pa_linear_bitwise(a, w, a_bases, w_bases)
        reference = pa.approximate(a.double(), a_bases)[0] @ pa.approximate(w.double(), w_bases)[0].T
        assert torch.allclose(out, reference, rtol=1e-12, atol=1e-10)


def test_xnor_terms_are_exact_integers():
    g = torch.Generator().manual_seed(1)
    a, w = torch.randn(4, 100, generator=g), torch.randn(6, 100, generator=g)
    _, _, _, a_b = pa.approximate(a, 3)
    _, _, _, w_b = pa.approximate(w, 2)
    from qteach import bitops
    for an in a_b:
        for wm in w_b:
            assert torch.equal(bitops.xnor_matmul(an, wm), (an @ wm.T).round().int())


def test_weight_quantizer_forward_and_ste():
    w = torch.randn(16, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    q = pa.PAWeightQuantizer(3)
    out = q(w)
    assert torch.equal(out.detach(), pa.approximate(w.detach(), 3)[0])
    out.sum().backward()
    _, b, alpha, _ = pa.approximate(w.detach(), 3)
    inside = (w.detach() >= b - alpha.abs().sum()) & (w.detach() <= b + alpha.abs().sum())
    assert torch.equal(w.grad, inside.float())


def test_activation_quantizer_tracks_statistics():
    q = pa.PAActivationQuantizer(2, momentum=0.5)
    x1, x2 = torch.arange(8.0).reshape(2, 4), torch.arange(8.0).reshape(2, 4) + 8
    q.train()
    q(x1)
    assert q.points.tolist() == pa.segment_points(x1, 2).tolist()
    q(x2)
    expected = 0.5 * pa.segment_points(x1, 2) + 0.5 * pa.segment_points(x2, 2)
    assert torch.allclose(q.points, expected)
    q.eval()
    out = q(x1)
    b, beta = pa.coefficients(q.levels)
    ref = b + (beta.reshape(-1, 1, 1) * pa.pa_bases(x1, q.points).double()).sum(0)
    assert torch.allclose(out.double(), ref)


def test_comparison_layer_in_protocol_mlp():
    method = comparison.Method("PA", "piecewise_approximation", ((3, 3),), layer=pa.comparison_layer)
    model = comparison.protocol_mlp(method, 3, 3)
    layers = [m for m in model if isinstance(m, qnn.QuantLinear)]
    assert len(layers) == 2
    assert isinstance(layers[0].weight_quantizer, pa.PAWeightQuantizer)
    assert isinstance(layers[0].input_quantizer, pa.PAActivationQuantizer)
    out = model(torch.randn(8, 64))
    out.sum().backward()
    assert out.shape == (8, 10)
    w, a, _ = pa.comparison_layer(4, 32)
    assert w.precision == 4 and a is None


def test_bad_input():
    x = torch.randn(10)
    with pytest.raises(ValueError, match="num_bases"):
        pa.segment_points(x, 0)
    with pytest.raises(ValueError, match="rule"):
        pa.segment_points(x, 2, "median")
    with pytest.raises(TypeError, match="x"):
        pa.approximate([1.0, 2.0], 2)
    with pytest.raises(ValueError, match="x"):
        pa.approximate(torch.tensor([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="x"):
        pa.approximate(torch.tensor([]), 2)
    with pytest.raises(ValueError, match="points"):
        pa.piece_levels(x, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="levels"):
        pa.coefficients(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="method"):
        pa.reconstruction_mse(x, 2, "greedy")
    with pytest.raises(ValueError, match="same K"):
        pa.pa_linear_bitwise(torch.randn(2, 3), torch.randn(2, 4), 1, 1)
    with pytest.raises(ValueError, match="momentum"):
        pa.PAActivationQuantizer(2, momentum=0)
    with pytest.raises(ValueError, match="w_bits"):
        pa.comparison_layer(0, 3)
