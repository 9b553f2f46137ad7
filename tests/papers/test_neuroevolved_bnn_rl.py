"""Tests of qteach.papers.neuroevolved_bnn_rl: the cart-pole physics against hand-computed values and a line-by-line
transcription of the official simulator, the binary policy against an XNOR-popcount computation, the evolution.

Official code: https://github.com/rval735/BiSUNA (commit 0475db3), src/environments/Single_Cart_Pole.cpp.
"""

from __future__ import annotations

import math

import pytest
import torch

from qteach import bitops
from qteach.papers import neuroevolved_bnn_rl as ne


def official_cart_pole(force, x, x_dot, theta, theta_dot):
    """Transcription of Single_Cart_Pole::cart_pole (Single_Cart_Pole.cpp:37-79), in Python floats."""
    GRAVITY, MASSCART, MASSPOLE = 9.81, 1.0, 0.1                  # :41-43
    TOTAL_MASS = MASSPOLE + MASSCART                             # :44
    LENGTH = 0.5                                                 # :45
    POLEMASS_LENGTH = MASSPOLE * LENGTH                          # :46
    TAU, FOURTHIRDS = 0.02, 1.3333333333333                     # :47-48
    force = max(-10.0, min(10.0, force))                         # :52-59 (FORCE_MAG = 10.0, .h:13)
    costheta, sintheta = math.cos(theta), math.sin(theta)        # :61-62
    temp = (force + POLEMASS_LENGTH * theta_dot * theta_dot * sintheta) / TOTAL_MASS           # :64-65
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (FOURTHIRDS - MASSPOLE * costheta * costheta / TOTAL_MASS))                   # :67-69
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS                          # :71
    return (x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc)  # :75-78


def test_step_from_rest_by_hand():
    # theta = 0, F = +10: temp = 10/1.1; theta_acc = -temp / (0.5 (4/3 - 0.1/1.1)); x_acc = temp - 0.05 theta_acc / 1.1
    temp = 10 / 1.1
    theta_acc = -temp / (0.5 * (4 / 3 - 0.1 / 1.1))
    x_acc = temp - 0.05 * theta_acc / 1.1
    assert theta_acc == pytest.approx(-14.6341, abs=1e-4)
    assert x_acc == pytest.approx(9.7561, abs=1e-4)
    new = ne.cartpole_step(torch.zeros(4, dtype=torch.float64), 10.0)
    assert torch.allclose(new, torch.tensor([0.0, 0.02 * x_acc, 0.0, 0.02 * theta_acc], dtype=torch.float64))


def test_step_gravity_only_by_hand():
    # no force, no velocity, theta = 0.1: theta_acc = g sin / (l (4/3 - m cos^2 / M)), x_acc = -m l theta_acc cos / M
    th = 0.1
    theta_acc = 9.81 * math.sin(th) / (0.5 * (4 / 3 - 0.1 * math.cos(th) ** 2 / 1.1))
    x_acc = -0.05 * theta_acc * math.cos(th) / 1.1
    new = ne.cartpole_step(torch.tensor([0.0, 0.0, th, 0.0], dtype=torch.float64), 0.0)
    assert new[3].item() == pytest.approx(0.02 * theta_acc, rel=1e-12)
    assert new[1].item() == pytest.approx(0.02 * x_acc, rel=1e-12)
    assert new[2].item() == th  # the position update uses the old velocity (Euler)


def test_step_matches_official_transcription_on_random_states():
    g = torch.Generator().manual_seed(0)
    states = (torch.rand(50, 4, generator=g, dtype=torch.float64) - 0.5) * torch.tensor([4.0, 3.0, 0.4, 4.0],
                                                                                          dtype=torch.float64)
    forces = (torch.rand(50, generator=g, dtype=torch.float64) - 0.5) * 30  # beyond +-10: clipped
    new = ne.cartpole_step(states, forces)
    for s, f, n in zip(states.tolist(), forces.tolist(), new):
        ref = official_cart_pole(f, *s)
        # the official FOURTHIRDS is 1.3333333333333, ours 4/3: relative difference < 1e-12
        assert torch.allclose(n, torch.tensor(ref, dtype=torch.float64), rtol=1e-10, atol=1e-12)


def test_step_batch_equals_single_and_symmetry():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(3, 5, 4, generator=g, dtype=torch.float64) * 0.1
    f = torch.where(torch.rand(3, 5, generator=g) < 0.5, 10.0, -10.0).double()
    batch = ne.cartpole_step(s, f)
    for i in range(3):
        for j in range(5):
            assert torch.equal(batch[i, j], ne.cartpole_step(s[i, j], f[i, j]))
    # mirror symmetry: (state, F) -> (-state, -F) gives the mirrored next state
    assert torch.allclose(ne.cartpole_step(-s, -f), -batch, atol=1e-15)
    assert torch.equal(ne.cartpole_step(s, 5.0), ne.cartpole_step(s, torch.tensor(5.0)))


def test_constants_are_the_official_ones():
    assert (ne.GRAVITY, ne.MASS_CART, ne.MASS_POLE, ne.HALF_LENGTH, ne.TAU, ne.FORCE_MAG) == (
        9.81, 1.0, 0.1, 0.5, 0.02, 10.0)
    assert ne.X_LIMIT == 2.4 and ne.THETA_LIMIT == pytest.approx(math.radians(12), abs=2e-6)  # .cpp:90


def test_decode_layout_and_genome_bits():
    assert ne.genome_bits(8) == 40
    bits = torch.zeros(10, dtype=torch.bool)
    bits[0] = bits[8] = True
    w1, w2 = ne.decode(bits, 2)
    assert w1.shape == (1, 2, 4) and w2.shape == (1, 2)
    assert w1[0, 0].tolist() == [1, -1, -1, -1] and w1[0, 1].tolist() == [-1] * 4
    assert w2[0].tolist() == [1, -1]
    real = torch.arange(10, dtype=torch.float32)
    assert ne.decode(real, 2)[1][0].tolist() == [8.0, 9.0]


def test_policy_equals_xnor_popcount():
    g = torch.Generator().manual_seed(2)
    hidden = 7
    genomes = torch.rand(5, ne.genome_bits(hidden), generator=g) < 0.5
    state = torch.randn(5, 30, 4, generator=g, dtype=torch.float64)
    forces = ne.policy_forces(genomes, state, hidden)
    w1, w2 = ne.decode(genomes, hidden)
    for p in range(5):
        s = state[p] / torch.tensor(ne.OBS_SCALE, dtype=torch.float64)
        h = torch.where(s @ w1[p].T >= 0, 1.0, -1.0).float()
        out = bitops.xnor_matmul(h, w2[p:p + 1].float())[:, 0]  # exact integer popcount
        assert torch.equal(forces[p], torch.where(out >= 0, 10.0, -10.0).double())
        assert torch.equal(out.double(), h.double() @ w2[p])


def test_balance_steps_and_trajectory_agree():
    g = torch.Generator().manual_seed(3)
    genomes = torch.rand(6, 40, generator=g) < 0.5
    starts = torch.rand(3, 4, generator=g, dtype=torch.float64) * 0.1 - 0.05
    steps = ne.balance_steps(genomes, starts, 8, max_steps=300)
    assert steps.shape == (6, 3) and steps.dtype == torch.int64
    assert int(steps.min()) >= 0 and int(steps.max()) <= 300
    for p in range(6):
        for s in range(3):
            traj = ne.trajectory(genomes[p], starts[s], 8, steps=300)
            fell = traj[-1, 0].abs() > 2.4 or traj[-1, 2].abs() > ne.THETA_LIMIT
            assert int(steps[p, s]) == len(traj) - 1 - int(fell)


def test_always_push_right_falls_fast():
    # output weights half +1, half -1 and all first-layer weights +1: o = 0 always, sign(0) = +1 -> push right
    genome = torch.ones(40, dtype=torch.bool)
    genome[36:] = False
    steps = ne.balance_steps(genome, torch.zeros(1, 4, dtype=torch.float64), 8)
    assert 0 < int(steps) < 30
    # all weights +1 is the controller sign(x + x_dot + theta + theta_dot) (scaled): it balances
    assert int(ne.balance_steps(torch.ones(40, dtype=torch.bool), torch.zeros(1, 4, dtype=torch.float64), 8)) == 500


def test_mutation():
    g = torch.Generator().manual_seed(4)
    parents = torch.zeros(2000, 40, dtype=torch.bool)
    child = ne.mutate_bits(parents, 0.05, g)
    assert abs(child.float().mean().item() - 0.05) < 0.01
    child = ne.mutate_bits(parents, 0.5, g)
    assert abs(child.float().mean().item() - 0.5) < 0.01
    real = ne.mutate_bits(torch.zeros(1000, 40, dtype=torch.float64), 0.3, g)
    assert abs(real.std().item() - 0.3) < 0.02


def test_evolve_is_deterministic_and_solves():
    starts = torch.rand(4, 4, generator=torch.Generator().manual_seed(123), dtype=torch.float64) * 0.1 - 0.05
    a = ne.evolve(starts, seed=1, generations=12, population=16, parents=4, max_steps=200)
    b = ne.evolve(starts, seed=1, generations=12, population=16, parents=4, max_steps=200)
    assert a["best"] == b["best"] and all(torch.equal(x, y) for x, y in zip(a["genomes"], b["genomes"]))
    assert len(a["best"]) == 13 and all(x <= y for x, y in zip(a["best"], a["best"][1:]))  # elitism
    assert a["solved"] and a["best"][-1] == 200
    fit = ne.balance_steps(a["genomes"][-1], starts, 8, 200).double().mean().item()
    assert fit == a["best"][-1]


@pytest.mark.parametrize("call,err,match", [
    (lambda: ne.cartpole_step(torch.zeros(3), 1.0), ValueError, "state"),
    (lambda: ne.cartpole_step(torch.zeros(4, dtype=torch.int64), 1.0), TypeError, "state"),
    (lambda: ne.cartpole_step(torch.zeros(4), "a"), TypeError, "force"),
    (lambda: ne.cartpole_step(torch.zeros(4), 1.0, gravity=-1.0), ValueError, "gravity"),
    (lambda: ne.decode(torch.zeros(39, dtype=torch.bool), 8), ValueError, "genomes"),
    (lambda: ne.decode(torch.zeros(40, dtype=torch.int64), 8), TypeError, "genomes"),
    (lambda: ne.genome_bits(0), ValueError, "hidden"),
    (lambda: ne.policy_forces(torch.zeros(40, dtype=torch.bool), torch.zeros(2, 4), 8), ValueError, "state"),
    (lambda: ne.balance_steps(torch.zeros(40, dtype=torch.bool), torch.zeros(4), 8), ValueError, "starts"),
    (lambda: ne.balance_steps(torch.zeros(40, dtype=torch.bool), torch.zeros(1, 4), 8, 0), ValueError, "max_steps"),
    (lambda: ne.mutate_bits(torch.zeros(4, dtype=torch.bool), 0.6, torch.Generator()), ValueError, "flip_prob"),
    (lambda: ne.mutate_bits(torch.zeros(4, dtype=torch.bool), 0.1, 0), TypeError, "generator"),
    (lambda: ne.evolve(torch.zeros(1, 4), population=4, parents=4), ValueError, "parents"),
    (lambda: ne.trajectory(torch.zeros(40, dtype=torch.bool), torch.zeros(1, 4), 8), ValueError, "start"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
