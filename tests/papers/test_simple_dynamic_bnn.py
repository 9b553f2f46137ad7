"""Simple dynamic binary neural networks: dynamics, periodic orbits, storage, stability and the logic model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qteach.papers import simple_dynamic_bnn as d


def ring(n):
    """The ring shift register x_i <- x_{i-1}: w has a 1 below the diagonal (and in the corner), T = 0."""
    return torch.roll(torch.eye(n, dtype=torch.int64), 1, dims=0), torch.zeros(n, dtype=torch.int64)


def random_orbit(n, p, seed):
    idx = np.random.default_rng(seed).choice(2**n, size=p, replace=False)
    return d.all_states(n)[torch.as_tensor(idx)]


def test_step_by_hand():
    w = torch.tensor([[0, 1], [-1, 0]])
    t = torch.tensor([0, 1])
    # x = (+1, -1): neuron 0 sees -1 - 0 -> -1; neuron 1 sees -1 - 1 = -2 -> -1
    assert d.dbnn_step(torch.tensor([1, -1]), w, t).tolist() == [-1, -1]
    # x = (-1, -1): neuron 0: -1 -> -1; neuron 1: +1 - 1 = 0 -> sgn(0) = +1
    assert d.dbnn_step(torch.tensor([-1, -1]), w, t).tolist() == [-1, 1]


def test_states_and_indices_round_trip():
    s = d.all_states(5)
    assert s.shape == (32, 5) and torch.equal(d.state_index(s), torch.arange(32))
    assert s[0].tolist() == [1] * 5 and s[1].tolist() == [-1, 1, 1, 1, 1]


def test_return_map_equals_stepping_every_state():
    w, t = d.ternary_design(random_orbit(6, 4, 0))
    succ = d.return_map(w, t)
    for k in range(64):
        assert int(d.state_index(d.dbnn_step(d.all_states(6)[k], w, t))) == int(succ[k])


def test_periodic_orbits_of_a_small_map_by_hand():
    succ = torch.tensor([1, 2, 1, 3, 3, 4])           # 0 -> 1 <-> 2; 3 fixed; 5 -> 4 -> 3
    orbits, orbit_of, transient = d.periodic_orbits(succ)
    assert orbits == [[1, 2], [3]]
    assert orbit_of.tolist() == [0, 0, 0, 1, 1, 1]
    assert transient.tolist() == [1, 0, 0, 0, 1, 2]


@pytest.mark.parametrize("seed", range(6))
def test_every_orbit_is_checked_by_stepping_and_basins_partition(seed):
    n = 7
    w = torch.as_tensor(np.random.default_rng(seed).integers(-1, 2, size=(n, n)))
    t = torch.as_tensor(np.random.default_rng(seed + 100).integers(-2, 3, size=n))
    succ = d.return_map(w, t)
    orbits, orbit_of, transient = d.periodic_orbits(succ)
    states = d.all_states(n)
    for o, cycle in enumerate(orbits):
        assert d.is_stored(states[torch.tensor(cycle)], w, t)
        assert all(int(orbit_of[c]) == o and int(transient[c]) == 0 for c in cycle)
    assert sorted(set(orbit_of.tolist())) == list(range(len(orbits)))
    # following the map transient[k] steps from k lands on its orbit
    for k in range(2**n):
        j = k
        for _ in range(int(transient[k])):
            j = int(succ[j])
        assert int(transient[j]) == 0 and int(orbit_of[j]) == int(orbit_of[k])


def test_ring_shift_register_is_a_permutation():
    w, t = ring(6)
    orbits, _, transient = d.periodic_orbits(d.return_map(w, t))
    assert int(transient.max()) == 0                  # every state is periodic
    assert len(orbits) == 14                          # binary necklaces of length 6
    assert sum(map(len, orbits)) == 64


@pytest.mark.parametrize("seed", range(8))
def test_ternary_design_stores_or_proves_impossible(seed):
    n, p = 6, 2 + seed % 5
    z = random_orbit(n, p, seed)
    result = d.ternary_design(z)
    if result is None:                                # no ternary row for some neuron, checked by brute force
        target, u = torch.roll(z, -1, dims=0), d._ternary_rows(n) @ z.T
        feasible = []
        for i in range(n):
            plus, minus = target[:, i] > 0, target[:, i] < 0
            if not plus.any() or not minus.any():
                feasible.append(True)
                continue
            feasible.append(bool((u[:, minus].max(1).values < u[:, plus].min(1).values).any()))
        assert not all(feasible)
    else:
        w, t = result
        assert set(w.unique().tolist()) <= {-1, 0, 1}
        assert d.is_stored(z, w, t)


def test_ternary_design_margin_and_sparsity_on_a_hand_example():
    z = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]])   # a period-4 rotation in 2 dimensions
    w, t = d.ternary_design(z)
    assert d.is_stored(z, w, t)
    assert int((w != 0).sum()) == 2                     # one wire per neuron suffices: x0 <- -x1, x1 <- x0
    assert w.tolist() == [[0, -1], [1, 0]] and t.tolist() == [0, 0]


def test_constant_neuron_gets_no_wires():
    z = torch.tensor([[1, 1, 1], [-1, 1, -1]])
    w, t = d.ternary_design(z)
    assert d.is_stored(z, w, t) and w[1].abs().sum() == 0 and int(t[1]) == 0
    w, t = d.ternary_design(-z)
    assert d.is_stored(-z, w, t) and w[1].abs().sum() == 0 and int(t[1]) == 1


def test_impossible_orbit_returns_none():
    # visiting the 4 states of 2 neurons in this order asks neuron 0 for XNOR(x0, x1): not a threshold function
    z = torch.tensor([[1, 1], [1, -1], [-1, 1], [-1, -1]])
    assert d.ternary_design(z) is None
    assert d.ternary_design(z[[0, 1, 3, 2]]) is not None     # the Gray-code order is storable


def test_correlation_design_is_ternary_and_stores_a_period_two_orbit():
    z = torch.tensor([[1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1]])
    w, t = d.correlation_design(z)
    assert set(w.unique().tolist()) <= {-1, 0, 1} and torch.equal(t, torch.zeros(6, dtype=torch.int64))
    # hand value: w_ij = sign(z_i(2) z_j(1) + z_i(1) z_j(2))
    expected = torch.sign(torch.outer(z[1], z[0]) + torch.outer(z[0], z[1]))
    assert torch.equal(w, expected)


def test_stability_of_the_ring_and_of_a_globally_stable_orbit():
    w, t = ring(4)
    z = d.all_states(4)[torch.tensor([1, 2, 4, 8])]       # a single -1 travelling round the ring
    s = d.stability(w, t, z)
    assert s["stored"] and s["basin"] == 4 / 16 and s["max_transient"] == 0 and s["flip_recovery"] == 0.0
    # the period-4 rotation in 2 dimensions uses all 4 states: globally stable by construction
    z = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    s = d.stability(*d.ternary_design(z), z)
    assert s == {"stored": True, "basin": 1.0, "max_transient": 0, "flip_recovery": 1.0, "orbits": 1}


def test_not_stored_has_zero_basin():
    w, t = ring(4)
    z = d.all_states(4)[torch.tensor([0, 3])]
    s = d.stability(w, t, z)
    assert not s["stored"] and s["basin"] == 0.0


def test_cut_each_wire_and_sparsify():
    z = random_orbit(8, 6, 1)
    w, t = d.ternary_design(z)
    cuts = d.cut_each_wire(w, t, z)
    assert len(cuts) == int((w != 0).sum())
    for c in cuts:
        damaged = w.clone()
        damaged[c["i"], c["j"]] = 0
        assert c["stored"] == d.is_stored(z, damaged, t) and c["weight"] == int(w[c["i"], c["j"]])
    sparse = d.sparsify(w, t, z)
    assert int((sparse != 0).sum()) < int((w != 0).sum())
    assert bool(((sparse == 0) | (sparse == w)).all())      # only cuts, never new wires
    assert d.stability(sparse, t, z)["basin"] >= d.stability(w, t, z)["basin"]
    with pytest.raises(ValueError, match="orbit"):
        d.sparsify(*ring(4), d.all_states(4)[torch.tensor([0, 3])])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9])
def test_hardware_step_is_bit_exact(n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        w = torch.as_tensor(rng.integers(-1, 2, size=(n, n)))
        t = torch.as_tensor(rng.integers(-n - 1, n + 2, size=n))
        states = d.all_states(n)
        assert torch.equal(d.hardware_step(states < 0, w, t), d.dbnn_step(states, w, t) < 0)
        assert torch.equal(d.hardware_step((states < 0).to(torch.uint8), w, t), d.dbnn_step(states, w, t) < 0)


def test_hardware_cost_counts():
    w, t = ring(8)
    cost = d.hardware_cost(w, t)
    assert cost["connections (wires)"] == 8 and cost["inverted wires (w = -1)"] == 0 and cost["LUTs"] == 8
    dense = torch.ones(8, 8, dtype=torch.int64)
    cost = d.hardware_cost(dense, t)
    from qteach.papers.fp_bnn import popcount_cost
    assert cost["LUTs"] == 8 * (popcount_cost(8).luts + 4) and cost["max fan-in"] == 8
    assert cost["weight bits if programmable"] == 128 and cost["multipliers"] == 0


@pytest.mark.parametrize("call, error, name", [
    (lambda: d.dbnn_step(torch.tensor([1, -1]), torch.tensor([[2, 0], [0, 1]]), torch.zeros(2, dtype=torch.int64)),
     ValueError, "w must be ternary"),
    (lambda: d.dbnn_step(torch.tensor([1, 0]), *ring(2)), ValueError, "x must be binary"),
    (lambda: d.dbnn_step(torch.tensor([1.0, -1.0]), *ring(2)), TypeError, "x must have an integer dtype"),
    (lambda: d.dbnn_step(torch.tensor([1, -1, 1]), *ring(2)), ValueError, "x must have shape"),
    (lambda: d.dbnn_step(torch.tensor([1, -1]), torch.zeros(2, 3, dtype=torch.int64),
                         torch.zeros(2, dtype=torch.int64)), ValueError, "w must be a square"),
    (lambda: d.dbnn_step(torch.tensor([1, -1]), ring(2)[0], torch.zeros(3, dtype=torch.int64)), ValueError,
     "t must have shape"),
    (lambda: d.dbnn_step(torch.tensor([1, -1]), ring(2)[0], torch.zeros(2)), TypeError, "t must have an integer"),
    (lambda: d.all_states(0), ValueError, "n must be >= 1"),
    (lambda: d.all_states(13), ValueError, "n must be <= 12"),
    (lambda: d.all_states(2.0), TypeError, "n must be an int"),
    (lambda: d.periodic_orbits(torch.tensor([0, 5])), ValueError, "succ must be"),
    (lambda: d.ternary_design(torch.tensor([[1, 1], [1, 1]])), ValueError, "distinct"),
    (lambda: d.ternary_design(torch.ones(0, 3, dtype=torch.int64)), ValueError, "orbit must be"),
    (lambda: d.is_stored(torch.tensor([[1, 1, 1]]), *ring(2)), ValueError, "orbit must have shape"),
    (lambda: d.hardware_step(torch.tensor([0.0, 1.0]), *ring(2)), ValueError, "bits must be"),
    (lambda: d.hardware_step(torch.tensor([0, 2]), *ring(2)), ValueError, "bits must be"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
