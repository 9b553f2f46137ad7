"""ADMM for low-bit networks: hand-computed projections, the scaled-ADMM updates, extragradient, a training run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import data, train
from qteach.papers import admm_low_bit as admm
from qteach.papers import ternary_weight_networks as twn


# ------------------------------------------------------------------------------------- hand-computed values

def test_nearest_levels_by_hand():
    x = torch.tensor([0.4, 0.5, 0.6, -1.6, -3.1, 2.9])
    # ternary: |x| > 1/2 -> +-1; the tie 0.5 goes to the smaller magnitude, 0
    assert admm.nearest_levels(x, admm.TERNARY).tolist() == [0.0, 0.0, 1.0, -1.0, -1.0, 1.0]
    # powers of two {0, 1, 2, 4}: 1.6 -> 2, 3.1 -> 4 (|3.1 - 4| = 0.9 < 1.1), 2.9 -> 2 (0.9 < 1.1)
    assert admm.nearest_levels(x, admm.POWERS_OF_TWO).tolist() == [0.0, 0.0, 1.0, -2.0, -4.0, 2.0]
    assert admm.nearest_levels(x, admm.BINARY).tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, 1.0]


def test_projection_by_hand():
    v = torch.tensor([0.1, -0.5, 1.0, -2.0])
    # alpha_0 = mean|V| = 0.9; V / 0.9 = [0.11, -0.56, 1.11, -2.22] -> Q = [0, -1, 1, -1]
    # alpha_1 = V.Q / Q.Q = (0.5 + 1 + 2) / 3 = 7/6; V / (7/6) = [0.09, -0.43, 0.86, -1.71] -> Q = [0, 0, 1, -1]
    # alpha_2 = (1 + 2) / 2 = 1.5; V / 1.5 -> Q = [0, 0, 1, -1] unchanged: stop
    g, alpha = admm.project(v, admm.TERNARY)
    assert alpha.item() == pytest.approx(1.5)
    assert torch.allclose(g, torch.tensor([0.0, 0.0, 1.5, -1.5]))
    # the same answer as TWN's exact search over thresholds for this vector
    delta, _ = twn.optimal_threshold(v)
    assert twn.ternary_scale(v, delta).item() == pytest.approx(1.5)
    # one round only: Q = [0, -1, 1, -1], alpha = 7/6
    g1, a1 = admm.project(v, admm.TERNARY, iters=1)
    assert a1.item() == pytest.approx(7 / 6)
    assert torch.allclose(g1, torch.tensor([0.0, -7 / 6, 7 / 6, -7 / 6]))


def test_fit_scale_is_least_squares():
    v = torch.tensor([0.3, -1.2, 2.5, 0.0])
    q = torch.tensor([1.0, -1.0, 2.0, 0.0])
    # (0.3 + 1.2 + 5.0) / (1 + 1 + 4) = 6.5 / 6
    assert admm.fit_scale(v, q).item() == pytest.approx(6.5 / 6)
    alphas = torch.linspace(0.5, 1.6, 1101)
    errors = torch.stack([((v - a * q) ** 2).sum() for a in alphas])
    assert alphas[errors.argmin()].item() == pytest.approx(6.5 / 6, abs=1e-3)
    assert admm.fit_scale(v, torch.zeros(4)).item() == 0.0


def test_admm_updates_by_hand():
    w = torch.tensor([0.2, -0.7])
    g = torch.tensor([0.0, -1.0])
    lam = torch.tensor([0.1, 0.1])
    # grad = grad_f + rho (W - G + lam) = [1, 1] + 2 * [0.3, 0.4]
    grad = admm.proximal_gradient(torch.ones(2), w, g, lam, rho=2.0)
    assert torch.allclose(grad, torch.tensor([1.6, 1.8]))
    assert torch.allclose(admm.dual_update(lam, w, g), torch.tensor([0.3, 0.4]))


def test_penalty_and_gradient_match_autograd():
    torch.manual_seed(0)
    w = torch.randn(5, 4, requires_grad=True)
    state = admm.ADMMState([w], rho=0.7)
    state.lam = [torch.randn(5, 4)]
    expected = 0.7 / 2 * ((w - state.g[0] + state.lam[0]) ** 2).sum()
    assert torch.allclose(state.penalty(), expected)
    (grad,) = torch.autograd.grad(state.penalty(), w)
    assert torch.allclose(grad, admm.proximal_gradient(torch.zeros(5, 4), w.detach(), state.g[0], state.lam[0], 0.7))


def test_extragradient_on_a_quadratic():
    # L(w) = 0.5 a w^2, grad = a w: w_bar = (1 - b a) w, w_new = w - b a w_bar = (1 - b a + (b a)^2) w
    a, b = 2.0, 0.1
    w = torch.tensor([3.0])
    admm.extragradient_step([w], lambda: [a * w], b)
    assert w.item() == pytest.approx(3.0 * (1 - b * a + (b * a) ** 2))
    # different predictor and corrector steps: w - bc * a * (1 - bp a) w
    w = torch.tensor([1.0])
    admm.extragradient_step([w], lambda: [a * w], 0.2, 0.05)
    assert w.item() == pytest.approx(1 - 0.05 * a * (1 - 0.2 * a))


# ------------------------------------------------------------------------------------- invariants

@pytest.mark.parametrize("levels", [admm.TERNARY, admm.BINARY, admm.POWERS_OF_TWO])
def test_projection_lies_in_the_set_and_never_increases_the_error(levels):
    g_ = torch.Generator().manual_seed(1)
    v = torch.randn(300, generator=g_)
    errors = []
    for iters in range(1, 8):
        g, alpha = admm.project(v, levels, iters=iters)
        q = g / alpha
        allowed = torch.tensor([s * lv for lv in levels for s in (1, -1)])
        assert torch.isclose(q.unsqueeze(-1), allowed).any(-1).all()
        errors.append(((v - g) ** 2).sum().item())
    assert all(e2 <= e1 + 1e-5 for e1, e2 in zip(errors, errors[1:]))


def test_projection_is_scale_equivariant_and_close_to_the_exact_ternary_optimum():
    v = data.weight_samples(2000, "gaussian", seed=3)
    g1, a1 = admm.project(v)
    g2, a2 = admm.project(3 * v)
    assert torch.allclose(3 * g1, g2, atol=1e-5) and a2.item() == pytest.approx(3 * a1.item(), rel=1e-5)
    delta, best = twn.optimal_threshold(v)
    exact = twn.approximation_error(v, delta).item()
    assert ((v - g1) ** 2).sum().item() <= exact * 1.01  # the alternating fixed point is within 1 % of the optimum


def test_admm_state_moves_g_to_the_projection_of_w_plus_lambda():
    w = torch.tensor([0.1, -0.5, 1.0, -2.0])
    state = admm.ADMMState([w], levels=admm.TERNARY)
    assert torch.allclose(state.g[0], torch.tensor([0.0, 0.0, 1.5, -1.5]))
    state.dual_()
    assert torch.allclose(state.lam[0], torch.tensor([0.1, -0.5, -0.5, -0.5]))
    state.project_()
    expected, _ = admm.project(w + state.lam[0], admm.TERNARY, alpha=1.5)
    assert torch.allclose(state.g[0], expected)


def test_admm_fit_ends_on_the_discrete_set_and_learns():
    torch.manual_seed(0)
    split = data.digits(flatten=True)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    train.fit(model, split, epochs=5, progress=False)  # ADMM starts from a trained float network, as the paper
    weights = [model[0].weight, model[2].weight]
    state, history = admm.admm_fit(model, split, weights, rho=2.0, epochs=3, lr=0.05)
    assert len(history["gap"]) == 4 and len(history["test_accuracy"]) == 4
    for w, alpha in zip(weights, state.alpha):
        q = (w.detach() / alpha)
        assert torch.isclose(q.unsqueeze(-1), torch.tensor([-1.0, 0.0, 1.0])).any(-1).all()
    assert history["test_accuracy"][-1] > 0.8


# ------------------------------------------------------------------------------------- bad input

def test_bad_input():
    with pytest.raises(ValueError, match="levels"):
        admm.project(torch.randn(4), levels=(0.0,))
    with pytest.raises(TypeError, match="levels"):
        admm.nearest_levels(torch.randn(4), levels=1.0)
    with pytest.raises(ValueError, match="levels"):
        admm.nearest_levels(torch.randn(4), levels=(-1.0, 1.0))
    with pytest.raises(TypeError, match="v"):
        admm.project([1.0, 2.0])
    with pytest.raises(ValueError, match="iters"):
        admm.project(torch.randn(4), iters=0)
    with pytest.raises(ValueError, match="rho"):
        admm.proximal_gradient(torch.ones(2), torch.ones(2), torch.ones(2), torch.ones(2), rho=0)
    with pytest.raises(ValueError, match="g"):
        admm.dual_update(torch.ones(2), torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="lr_predict"):
        admm.extragradient_step([torch.ones(1)], lambda: [torch.ones(1)], -1.0)
    with pytest.raises(TypeError, match="data"):
        admm.admm_fit(nn.Linear(2, 2), "digits", [nn.Linear(2, 2).weight])
