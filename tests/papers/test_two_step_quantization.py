"""Tests of qteach.papers.two_step_quantization against hand-computed values, brute force, and a line-by-line
transcription of the official demo layer (peiswang/Two-Step-Quantization-AlexNet, relu2b_layer.cpp)."""

from __future__ import annotations

import itertools

import pytest
import torch

from qteach.papers import two_step_quantization as tsq


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def relu2b_forward_transcribed(x, th, d):
    """relu2b_layer.cpp, Forward_cpu, lines 18-26, transcribed element by element."""
    out = []
    for v in x.tolist():
        if v <= th:
            out.append(0.0)
        elif v <= 1.5 * d:
            out.append(d)
        elif v <= 2.5 * d:
            out.append(2 * d)
        else:
            out.append(3 * d)
    return torch.tensor(out)


def test_sparse_quantize_hand_computed():
    x = torch.tensor([-1.0, 0.0, 0.32, 0.33, 0.9, 1.0, 1.5, 2.0, 9.0])
    q = tsq.sparse_quantize(x, threshold=0.32, step=0.6, bits=2)
    # 0.33 > eps -> delta (even though nearer 0); 0.9 = 1.5*delta -> delta (boundary goes down); top 3*delta
    assert torch.allclose(q, torch.tensor([0, 0, 0, 0.6, 0.6, 1.2, 1.2, 1.8, 1.8]))


def test_sparse_quantize_equals_the_official_layer():
    x = torch.linspace(-1, 3, 401)
    ours = tsq.sparse_quantize(x, tsq.OFFICIAL_THRESHOLD, tsq.OFFICIAL_STEP, bits=2)
    ref = relu2b_forward_transcribed(x, tsq.OFFICIAL_THRESHOLD, tsq.OFFICIAL_STEP)
    assert torch.allclose(ours, ref)


def test_sparse_quantize_3_bits_levels():
    x = torch.tensor([0.1, 0.5, 1.26, 3.0, 100.0])
    q = tsq.sparse_quantize(x, threshold=0.2, step=0.5, bits=3)
    assert q.tolist() == [0.0, 0.5, 1.5, 3.0, 3.5]  # 7 levels, top 7 * 0.5


def test_backward_is_the_official_window():
    # relu2b_layer.cpp line 41: grad * (x > 0) * (x < 3d), including (0, eps] where the output is 0
    x = torch.tensor([-0.5, 0.1, 0.5, 1.9, 2.0], requires_grad=True)
    tsq.sparse_quantize_ste(x, threshold=0.32, step=0.65).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_optimal_step_reproduces_the_official_constant_and_hwgq():
    assert abs(tsq.optimal_step(0.32, 2) - tsq.OFFICIAL_STEP) < 2e-4
    assert abs(tsq.optimal_step(0.0, 2) - 0.5388) < 2e-4  # HWGQ's 2-bit step for a half Gaussian


def test_gaussian_error_matches_monte_carlo():
    g = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q = tsq.sparse_quantize(g, 0.32, 0.7, 2)
    mc = float(((g - q) ** 2 * (g > 0.32)).mean())
    assert abs(mc - tsq.gaussian_quantization_error(0.32, 0.7, 2)) < 1e-3


def test_solve_alpha_is_the_closed_form_and_the_line_minimum():
    x = randn(20, 4, seed=1)
    w_t = torch.tensor([[1.0, 0.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    z = randn(20, 2, seed=2)
    alpha = tsq.solve_alpha(x, z, w_t)
    v = x @ w_t[0]
    assert torch.isclose(alpha[0], (z[:, 0] @ v) / (v @ v))
    assert alpha[1] == 0  # X w = 0
    grid = torch.linspace(-3, 3, 6001)
    errs = ((z[:, :1] - v[:, None] * grid) ** 2).sum(0)
    assert abs(float(grid[errs.argmin()]) - float(alpha[0])) < 1.5e-3


def brute_force(x, z_col):
    """min over all 3^n ternary w (and the best alpha for each) of ||z - alpha X w||^2."""
    best = (float("inf"), None)
    for p in itertools.product([-1.0, 0.0, 1.0], repeat=x.shape[1]):
        w = torch.tensor(p, dtype=x.dtype)
        v = x @ w
        a = float(z_col @ v / (v @ v)) if float(v @ v) > 0 else 0.0
        err = float(((z_col - a * v) ** 2).sum())
        best = min(best, (err, p), key=lambda t: t[0])
    return best


def test_each_coordinate_update_is_the_exact_minimiser():
    x, z = randn(15, 4, seed=3).double(), randn(15, 3, seed=4).double()
    alpha = torch.tensor([0.7, -0.4, 1.3], dtype=torch.float64)
    w0 = torch.zeros(3, 4, dtype=torch.float64)
    w1 = tsq.solve_ternary(x, z, alpha, w0, sweeps=1)
    # Replay the first sweep by brute force over {-1, 0, 1} for each coordinate in turn.
    w = w0.clone()
    for j in range(4):
        for i in range(3):
            costs = []
            for t in (-1.0, 0.0, 1.0):
                w[i, j] = t
                costs.append(float(tsq.linear_objective(x, z, alpha, w)[i]))
            w[i, j] = (-1.0, 0.0, 1.0)[min(range(3), key=costs.__getitem__)]
    assert torch.equal(w1, w)


def test_alternation_never_increases_the_objective_and_reaches_the_brute_force_optimum():
    x = randn(30, 5, seed=5).double()
    w_true = torch.tensor([[1.0, 0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0, -1.0]], dtype=torch.float64)
    z = (x @ w_true.T) * torch.tensor([0.8, 1.7], dtype=torch.float64) + 0.3 * randn(30, 2, seed=6).double()
    fit = tsq.fit_ternary_layer(x, z, randn(2, 5, seed=7).double(), iters=8)
    assert all(b <= a + 1e-9 for a, b in zip(fit.history, fit.history[1:]))
    for i in range(2):
        err, _ = brute_force(x, z[:, i])
        ours = float(tsq.linear_objective(x, z, fit.alpha, fit.w_t)[i])
        assert ours <= err * (1 + 1e-9) + 1e-9  # the global optimum over all 3^5 ternary filters
    assert bool((fit.alpha >= 0).all()) and set(fit.w_t.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_fit_beats_twn_on_the_outputs():
    x = (randn(200, 16, seed=8) > 0.3).float()  # code-like inputs
    w = randn(8, 16, seed=9)
    target = x @ w.T
    fit = tsq.fit_ternary_layer(x, target, w, iters=6)
    from qteach.papers import ternary_weight_networks as twn
    w_t, a, _ = twn.ternary_weights(w, per_channel=True)
    twn_err = float(tsq.linear_objective(x, target, a.reshape(-1), w_t).sum())
    assert fit.history[-1] < twn_err


def test_solve_auxiliary_against_a_grid():
    y = torch.tensor([0.0, 0.0, 1.0, 2.0, 0.5, 0.0])
    v = torch.tensor([-1.0, 0.5, -0.5, 3.0, -2.0, -0.1])
    for lam in (0.5, 1.0, 4.0):
        z = tsq.solve_auxiliary(y, v, lam)
        grid = torch.linspace(-4, 4, 80001)
        cost = (y[:, None] - grid.clamp(min=0)) ** 2 + lam * (grid - v[:, None]) ** 2
        best = cost.min(1).values
        ours = (y - z.clamp(min=0)) ** 2 + lam * (z - v) ** 2
        assert torch.all(ours <= best + 1e-6)


def test_solve_auxiliary_hand_computed():
    # y = 1, v = 3, lam = 1: z >= 0 branch (1 + 3) / 2 = 2; y = 0, v = -1: stays at v (cost 0)
    z = tsq.solve_auxiliary(torch.tensor([1.0, 0.0]), torch.tensor([3.0, -1.0]), 1.0)
    assert z.tolist() == [2.0, -1.0]


def test_two_step_replaces_weights_with_ternary_times_alpha():
    torch.manual_seed(0)
    model = tsq.mlp(6, hidden=5, classes=3)
    x = randn(40, 6, seed=10)
    model.train()
    model(x)  # give the batch norms running statistics
    fits = tsq.two_step(model, x, iters=3)
    assert len(fits) == 3
    for layer, fit in zip([m for m in model if hasattr(m, "weight_quantizer")], fits):
        per_row = [set(r.abs().unique().tolist()) - {0.0} for r in layer.weight.detach()]
        assert all(len(s) <= 1 for s in per_row)  # one magnitude per output channel
        assert torch.allclose(layer.weight, fit.weight)


@pytest.mark.parametrize("call", [
    lambda: tsq.sparse_quantize(torch.tensor([1, 2]), 0.3, 0.6),
    lambda: tsq.sparse_quantize(torch.ones(2), -0.1, 0.6),
    lambda: tsq.sparse_quantize(torch.ones(2), 0.3, 0.0),
    lambda: tsq.sparse_quantize(torch.ones(2), 0.3, 0.6, bits=0),
    lambda: tsq.solve_alpha(torch.ones(3, 2), torch.ones(3, 1), torch.ones(2, 2)),
    lambda: tsq.solve_auxiliary(torch.ones(2), torch.ones(3), 1.0),
    lambda: tsq.solve_auxiliary(torch.ones(2), torch.ones(2), 0.0),
    lambda: tsq.fit_ternary_layer(torch.ones(3, 2), torch.ones(3, 1), torch.ones(1, 3)),
    lambda: tsq.two_step(torch.nn.Linear(2, 2), torch.ones(1, 2)),
])
def test_bad_input_raises(call):
    with pytest.raises((ValueError, TypeError)):
        call()
