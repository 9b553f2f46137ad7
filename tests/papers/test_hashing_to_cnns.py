"""From Hashing to CNNs: the alpha- and B-steps by hand, monotone descent, exhaustive search on tiny codes, the
whitened-input case where hashing is XNOR-Net, held-out error, the quantizer and the layer-by-layer binarization."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from qteach import data
from qteach import nn as qnn
from qteach.papers import hashing_to_cnns as hh
from qteach.papers import xnor_net


def test_xnor_baseline_is_xnor_nets_binary_weights():
    w = data.weight_samples((5, 7), "gaussian", seed=0)
    alpha, b = hh.xnor_binarize(w)
    a_ref, b_ref = xnor_net.binary_weight_approximation(w)
    assert torch.equal(b, b_ref) and torch.allclose(alpha, a_ref.reshape(-1))


def test_alpha_step_by_hand():
    w = torch.tensor([[1.0, 2.0]])
    b = torch.tensor([[1.0, 1.0]])
    # S = I: alpha = b.w / b.b = 3 / 2 (the data-free least squares)
    assert hh.optimal_scales(w, b, torch.eye(2)).item() == pytest.approx(1.5)
    # S = diag(1, 4): b^T S w = 1 + 8 = 9, b^T S b = 5 -> 1.8 (the heavier input counts more)
    assert hh.optimal_scales(w, b, torch.diag(torch.tensor([1.0, 4.0]))).item() == pytest.approx(1.8)


def test_b_step_by_hand():
    # one filter w = [1, -0.2], alpha = 1, S = [[1, 0.9], [0.9, 1]] (strongly correlated inputs)
    w = torch.tensor([[1.0, -0.2]])
    s = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, -1.0]])  # sign(w)
    # S w = [1 - 0.18, 0.9 - 0.2] = [0.82, 0.7]
    # bit 1: sign(0.82 - 0.9 * (-1)) = +1; bit 2: sign(0.7 - 0.9 * (+1)) = sign(-0.2) = -1
    assert hh.update_codes(w, b, torch.tensor([1.0]), s).tolist() == [[1.0, -1.0]]
    # with alpha = 0.5: bit 1: sign(0.5 * 0.82 - 0.25 * 0.9 * (-1)) = +1;
    # bit 2: sign(0.5 * 0.7 - 0.25 * 0.9 * 1) = sign(0.125) = +1, the bit flips to +1
    assert hh.update_codes(w, b, torch.tensor([0.5]), s).tolist() == [[1.0, 1.0]]
    # check against the objective: with alpha = 0.5, [1, 1] is better than [1, -1]
    better = hh.objective(w, torch.tensor([[1.0, 1.0]]), torch.tensor([0.5]), s)
    worse = hh.objective(w, b, torch.tensor([0.5]), s)
    assert better < worse


def _correlated_inputs(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) + 2 * torch.eye(d)
    scales = torch.linspace(0.2, 3.0, d)
    return (torch.randn(n, d, generator=g) @ mix) * scales


@pytest.mark.parametrize("seed", range(3))
def test_objective_never_increases_and_beats_xnor(seed):
    x = _correlated_inputs(200, 12, seed)
    w = data.weight_samples((6, 12), "gaussian", seed=seed)
    alpha, b, history = hh.hash_binarize(w, x, iterations=8, return_history=True)
    assert all(later <= earlier + 1e-9 for earlier, later in zip(history, history[1:]))
    s = hh.input_gram(x)
    a_x, b_x = hh.xnor_binarize(w)
    assert history[0] == pytest.approx(float(hh.objective(w, b_x, a_x, s)))
    assert hh.objective(w, b, alpha, s) < hh.objective(w, b_x, a_x, s)
    assert set(b.unique().tolist()) <= {-1.0, 1.0}


def test_between_the_exhaustive_optimum_and_xnor_on_tiny_codes():
    # d = 6: all 64 codes per filter (each with its best alpha) can be tried. Alternation is a local method: it
    # lands between the global optimum and XNOR-Net's starting point, and closes most of the gap overall
    x = _correlated_inputs(100, 6, 5)
    w = data.weight_samples((4, 6), "gaussian", seed=5)
    s = hh.input_gram(x)
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=6)), dtype=torch.float64)
    alpha, b = hh.hash_binarize(w, x, iterations=10)
    a_x, b_x = hh.xnor_binarize(w)
    gap_mine, gap_xnor = 0.0, 0.0
    for i in range(4):
        wi = w[i:i + 1].double()
        best = min(float(hh.objective(wi, c, hh.optimal_scales(wi, c, s), s)) for c in codes.split(1))
        mine = float(hh.objective(wi, b[i:i + 1], alpha[i:i + 1], s))
        xnor = float(hh.objective(wi, b_x[i:i + 1], a_x[i:i + 1], s))
        assert best - 1e-9 <= mine <= xnor + 1e-9
        gap_mine, gap_xnor = gap_mine + mine - best, gap_xnor + xnor - best
    assert gap_mine < 0.5 * gap_xnor


def test_whitened_inputs_give_xnor_nets_solution():
    # S = c I: ||X w - alpha X b||^2 = c ||w - alpha b||^2, XNOR-Net's objective
    x = torch.eye(10) * 3.0
    w = data.weight_samples((4, 10), "laplace", seed=2)
    alpha, b = hh.hash_binarize(w, x, iterations=5)
    a_x, b_x = hh.xnor_binarize(w)
    assert torch.equal(b, b_x) and torch.allclose(alpha, a_x)


def test_held_out_error_is_lower_than_xnors():
    x = _correlated_inputs(600, 16, 9)
    w = data.weight_samples((8, 16), "gaussian", seed=9)
    fit, held_out = x[:400], x[400:]
    alpha, b = hh.hash_binarize(w, fit, iterations=10)
    a_x, b_x = hh.xnor_binarize(w)
    assert hh.inner_product_error(held_out, w, alpha, b) < hh.inner_product_error(held_out, w, a_x, b_x)
    assert hh.inner_product_error(held_out, a_x.reshape(-1, 1) * b_x, a_x, b_x) == 0.0


def test_quantizer_falls_back_to_xnor_then_uses_the_data():
    w = data.weight_samples((3, 8), "gaussian", seed=4).requires_grad_(True)
    q = hh.HashingWeightQuantizer(iterations=4)
    a_x, b_x = hh.xnor_binarize(w)
    assert torch.allclose(q(w), a_x.reshape(-1, 1) * b_x)
    x = _correlated_inputs(120, 8, 4)
    q.observe(x[:60])
    q.observe(x[60:])
    assert torch.allclose(q.gram, hh.input_gram(x))
    alpha, b = hh.hash_binarize(w, x, iterations=4)
    out = q(w)
    assert torch.allclose(out, alpha.reshape(-1, 1) * b)
    g = torch.randn(3, 8)
    out.backward(g)
    assert torch.equal(w.grad, g)  # straight-through
    layer = qnn.QuantLinear(8, 3, weight_quantizer=hh.HashingWeightQuantizer())
    assert layer.weight_quantizer.precision == 1 and layer(torch.randn(2, 8)).shape == (2, 3)


def test_binarize_mlp_layer_by_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x = _correlated_inputs(50, 8, 1)
    xnor = hh.binarize_mlp(model, x, "xnor")
    a0, b0 = hh.xnor_binarize(model[0].weight)
    assert torch.allclose(xnor[0].weight, a0.reshape(-1, 1) * b0)
    assert torch.equal(xnor[0].bias, model[0].bias)
    hashed = hh.binarize_mlp(model, x, "hashing", iterations=3, skip=(2,))
    assert torch.equal(hashed[2].weight, model[2].weight)  # skipped: float
    alpha, b = hh.hash_binarize(model[0].weight, x, iterations=3)
    assert torch.allclose(hashed[0].weight, alpha.reshape(-1, 1) * b)
    assert model[0].weight.unique().numel() > 12  # the original is untouched


def test_bad_input():
    with pytest.raises(ValueError, match="features"):
        hh.hash_binarize(torch.ones(3, 4), torch.ones(10, 5))
    with pytest.raises(ValueError, match="w"):
        hh.xnor_binarize(torch.ones(4))
    with pytest.raises(TypeError, match="x"):
        hh.input_gram([[1.0, 2.0]])
    with pytest.raises(ValueError, match="s must be"):
        hh.optimal_scales(torch.ones(2, 3), torch.ones(2, 3), torch.eye(2))
    with pytest.raises(ValueError, match="alpha"):
        hh.update_codes(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3), torch.eye(3))
    with pytest.raises(ValueError, match="method"):
        hh.binarize_mlp(nn.Sequential(nn.Linear(2, 2)), torch.ones(3, 2), method="pca")
    with pytest.raises(TypeError, match="Sequential"):
        hh.binarize_mlp(nn.Linear(2, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="iterations"):
        hh.HashingWeightQuantizer(iterations=-1)
