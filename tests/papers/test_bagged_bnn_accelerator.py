"""BBNA (bagged BNN accelerator): memory, bootstrap counts, stacked training, the vote unit, the cost model."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import deploy
from qteach.data import Split
from qteach.papers import bagged_bnn_accelerator as bb
from qteach.papers import binary_ensemble as be


def _data(n=96, d=12, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    y = (x[:, :c].argmax(1)).long()
    return Split(x[: n * 3 // 4], y[: n * 3 // 4], x[n * 3 // 4:], y[n * 3 // 4:])


def test_member_weight_bits_by_hand():
    assert bb.member_weight_bits(64) == 64 * 64 + 64 * 64 + 64 * 10 == 8832
    assert bb.member_weight_bits(1, 3, 2) == 3 + 1 + 2


@pytest.mark.parametrize("k, hidden", [(1, 64), (3, 28), (5, 18), (7, 14)])
def test_equal_memory_hidden_by_hand(k, hidden):
    # 3 (28^2 + 74*28) = 8568 <= 8832 < 3 (29^2 + 74*29) = 8961
    assert bb.equal_memory_hidden(8832, k) == hidden
    assert k * bb.member_weight_bits(hidden) <= 8832 < k * bb.member_weight_bits(hidden + 1)


def test_equal_memory_hidden_is_largest_fit_everywhere():
    for budget in (0, 1, 75, 76, 1000, 12345):
        for k in (1, 2, 9):
            h = bb.equal_memory_hidden(budget, k)
            assert h == 0 or k * bb.member_weight_bits(h) <= budget
            assert k * bb.member_weight_bits(h + 1) > budget


def test_bootstrap_counts_are_bootstrap_indices_counted():
    counts = bb.bootstrap_counts(50, 3, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    expected = torch.stack([torch.bincount(be.bootstrap_indices(50, g), minlength=50) for _ in range(3)])
    assert torch.equal(counts, expected)
    assert counts.shape == (3, 50) and counts.sum(1).tolist() == [50, 50, 50]


def test_stacked_members_equal_their_unstacked_models():
    data = _data()
    model = bb.StackedBinaryMLP([0, 5, 9], 8, in_features=12, num_classes=4)
    counts = bb.bootstrap_counts(len(data.x_train), 3, torch.Generator().manual_seed(0))
    bb.fit_bagged(model, data, counts, epochs=2, batch_size=16)
    with torch.no_grad():
        z = model(data.x_test)
        members = bb.unstack(model)
        for k, member in enumerate(members):
            assert torch.allclose(member(data.x_test), z[k], atol=1e-5)


def test_initial_members_are_binary_mlp_with_their_seed():
    model = bb.StackedBinaryMLP([3, 4], 6, in_features=5, num_classes=3)
    for k, seed in enumerate((3, 4)):
        reference = deploy.binary_mlp(5, (6, 6), 3, seed=seed)
        for i in range(3):
            assert torch.equal(model.weights[i][k], reference[2 * i].weight)


def test_members_train_independently_of_each_other():
    """The stacked loss is a sum over members: member 0 ends the same whether or not member 1 trains beside it."""
    data = _data()
    n = len(data.x_train)
    counts = bb.bootstrap_counts(n, 2, torch.Generator().manual_seed(1))
    pair = bb.fit_bagged(bb.StackedBinaryMLP([0, 1], 8, 12, 4), data, counts, epochs=2, batch_size=16)
    alone = bb.fit_bagged(bb.StackedBinaryMLP([0], 8, 12, 4), data, counts[:1], epochs=2, batch_size=16)
    for wp, wa in zip(pair.weights, alone.weights):
        assert torch.allclose(wp[0], wa[0], atol=1e-5)


def test_counts_are_a_bootstrap_sample():
    """Weights c_i on the whole set give the loss of the resampled set (batch norm in eval mode: in training mode
    its batch statistics are unweighted, the one difference, stated in fit_bagged)."""
    data = _data()
    n = len(data.x_train)
    idx = be.bootstrap_indices(n, torch.Generator().manual_seed(2))
    counts = torch.bincount(idx, minlength=n).float()
    model = bb.StackedBinaryMLP([0], 8, 12, 4).eval()
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(model(data.x_train)[0], data.y_train, reduction="none")
        ce_sample = torch.nn.functional.cross_entropy(model(data.x_train[idx])[0], data.y_train[idx], reduction="sum")
    assert torch.allclose((counts * ce).sum(), ce_sample, rtol=1e-5)


def test_vote_unit_by_hand_and_equals_hard_vote():
    labels = torch.tensor([[3, 1, 2, 0], [3, 2, 1, 0], [1, 2, 4, 5]])
    assert bb.vote_unit(labels, 6).tolist() == [3, 2, 1, 0]  # majority 3; majority 2; tie 2,1,4 -> 1; 0
    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 3, 4, 7):
        labels = torch.randint(0, 10, (k, 200), generator=g)
        assert torch.equal(bb.vote_unit(labels, 10), be.hard_vote(labels, 10))


def test_bagged_pipelines_are_bit_exact_with_the_float_members():
    data = _data(n=120)
    model = bb.StackedBinaryMLP([0, 1, 2], 10, 12, 4)
    counts = bb.bootstrap_counts(len(data.x_train), 3, torch.Generator().manual_seed(0))
    bb.fit_bagged(model, data, counts, epochs=3, batch_size=16)
    members = bb.unstack(model)
    packed = [deploy.export(m) for m in members]
    x = torch.cat([data.x_test, torch.rand(33, 12)])
    with torch.no_grad():
        for m, p in zip(members, packed):
            assert torch.equal(p(x), m(x))
        z = model(x)
    assert torch.equal(bb.bagged_predict(packed, x), be.hard_vote(z.argmax(2), 4))


def test_pipeline_cost_by_hand():
    cost = bb.pipeline_cost(64, 1)
    # MACs 8*64*64 = 32768, 64*64 = 4096, 64*10 = 640; 64 lanes: stages 512, 64, 10 cycles
    assert cost["binary_macs"] == 37504 and cost["ii_cycles"] == 512 and cost["latency_cycles"] == 586 + 10
    assert math.isclose(cost["energy_nj"], (37504 * 0.03 + 8832 * 10 / 64) / 1000)
    assert math.isclose(cost["images_per_s"], 100e6 / 512)
    three = bb.pipeline_cost(28, 3)
    assert three["weight_bits"] == 8568 and three["lanes"] == 192
    assert three["ii_cycles"] == math.ceil(8 * 64 * 28 / 64)
    assert bb.pipeline_cost(64, 2, constants={"lanes": 128})["ii_cycles"] == 256


@pytest.mark.parametrize("call, name", [
    (lambda: bb.member_weight_bits(0), "hidden"),
    (lambda: bb.equal_memory_hidden(-1, 1), "budget_bits"),
    (lambda: bb.equal_memory_hidden(10, 0), "k"),
    (lambda: bb.bootstrap_counts(0, 1), "n"),
    (lambda: bb.StackedBinaryMLP([], 4), "seeds"),
    (lambda: bb.StackedBinaryMLP([0], 0), "hidden"),
    (lambda: bb.fit_bagged("model", _data(), torch.ones(1, 72, dtype=torch.long)), "model"),
    (lambda: bb.fit_bagged(bb.StackedBinaryMLP([0], 4, 12, 4), _data(), torch.ones(2, 72, dtype=torch.long)),
     "counts"),
    (lambda: bb.fit_bagged(bb.StackedBinaryMLP([0], 4, 12, 4), _data(), torch.ones(1, 72)), "counts"),
    (lambda: bb.unstack(None), "model"),
    (lambda: bb.vote_unit(torch.tensor([[0, 5]]), 5), "labels"),
    (lambda: bb.vote_unit(torch.tensor([0, 1]), 5), "labels"),
    (lambda: bb.vote_unit(torch.tensor([[0.0]]), 5), "labels"),
    (lambda: bb.bagged_predict([], torch.rand(2, 3)), "packed"),
    (lambda: bb.pipeline_cost(8, 1, constants={"volts": 1}), "constants"),
    (lambda: bb.pipeline_cost(8, 1, constants={"lanes": 0}), "lanes"),
    (lambda: bb.pipeline_cost(8, 0), "k"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()
