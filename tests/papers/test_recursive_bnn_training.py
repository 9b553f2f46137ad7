"""Recursive BNN training: the storage ledger by hand, the growing network against the plain computation,
freezing, and bad inputs. Only the abstracts of the paper could be read and no official code exists, so the
ledger and the network are our reconstruction (see the module docstring)."""

from __future__ import annotations

import pytest
import torch

from qteach import data
from qteach.papers import recursive_bnn_training as rb


def test_conventional_units_by_hand():
    # 4736 bits, 74 weights per unit, 8-bit latent weights: 4736 / 592 = 8 units
    assert rb.conventional_units(4736, 74, 8) == 8
    assert rb.conventional_units(4735, 74, 8) == 7
    assert rb.conventional_units(100, 74, 8) == 0


def test_schedule_by_hand():
    # free bits 4736 -> 8 units (592 frozen) -> 4144 free -> 7 -> 3626 free -> 6 -> 3182 free -> 5 -> 2812 -> 4
    assert rb.recursive_schedule(4736, 74, 8, max_rounds=5) == [8, 7, 6, 5, 4]
    # 1184 bits: 2 units, then one unit per round while 592 free bits remain (1036, 962, ..., 592)
    assert rb.recursive_schedule(1184, 74, 8, max_rounds=10) == [2, 1, 1, 1, 1, 1, 1, 1]
    assert rb.recursive_schedule(591, 74, 8) == []
    # 1-bit "training" storage: everything fits in round 1
    assert rb.recursive_schedule(740, 74, 1) == [10]


def test_round_one_is_the_conventional_network():
    for budget in (600, 2368, 4736, 10_000):
        assert rb.recursive_schedule(budget, 74, 8, 1) == [rb.conventional_units(budget, 74, 8)]


@pytest.mark.parametrize("budget,bits", [(4736, 8), (9472, 16), (50_000, 8), (3000, 4)])
def test_ledger_never_exceeds_the_budget_and_tends_to_one_bit_per_weight(budget, bits):
    schedule = rb.recursive_schedule(budget, 74, bits, max_rounds=1000)
    ledger = rb.storage_ledger(schedule, 74, bits)
    assert all(row["peak_bits"] <= budget for row in ledger)
    assert all(row["peak_bits"] == row["frozen_bits"] + bits * row["training_weights"] for row in ledger)
    total = ledger[-1]["total_weights"]
    assert total == 74 * sum(schedule) <= budget  # at most one bit per weight
    assert budget - total < bits * 74  # it stops only when not one more unit fits
    # the continuous ledger: N_K = S (1 - (1 - 1/b)^K) is an upper bound of the rounded schedule
    for k, row in enumerate(ledger, start=1):
        assert row["total_weights"] <= budget * (1 - (1 - 1 / bits) ** k) + 1e-9


def test_ledger_rows_by_hand():
    rows = rb.storage_ledger([8, 7], 74, 8)
    assert rows[0] == {"round": 1, "new_units": 8, "frozen_weights": 0, "training_weights": 592,
                       "frozen_bits": 0, "training_bits": 4736, "peak_bits": 4736, "total_weights": 592}
    assert rows[1]["frozen_bits"] == 592 and rows[1]["training_bits"] == 8 * 518
    assert rows[1]["peak_bits"] == 592 + 4144 == 4736 and rows[1]["total_weights"] == 1110


def _plain_forward(model, x):
    """The network computed by hand: sign weights, batch norm with its running statistics, ReLU, sum, BN."""
    out = 0
    for lin1, bn, lin2 in model.blocks:
        w1, w2 = torch.where(lin1.weight >= 0, 1.0, -1.0), torch.where(lin2.weight >= 0, 1.0, -1.0)
        h = (x @ w1.T - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
        out = out + torch.relu(h) @ w2.T
    bn = model.out_bn
    return (out - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


@pytest.mark.parametrize("in_features,classes,growth", [(64, 10, (3, 2)), (7, 2, (1,)), (5, 3, (4, 1, 1))])
def test_growing_network_equals_the_plain_computation(in_features, classes, growth):
    model = rb.GrowingBinaryMLP(in_features, classes, seed=3)
    for units in growth:
        model.grow(units)
    with torch.no_grad():
        for block in model.blocks:
            block[1].running_mean.uniform_(-1, 1)
            block[1].running_var.uniform_(0.5, 2)
    x = torch.randn(9, in_features, generator=torch.Generator().manual_seed(0))
    model.eval()
    torch.testing.assert_close(model(x), _plain_forward(model, x), rtol=1e-5, atol=1e-5)
    assert model.units == sum(growth) and model.fan == in_features + classes


def test_grow_freezes_to_one_bit_and_training_leaves_frozen_blocks_unchanged():
    split = data.digits(flatten=True)
    model = rb.GrowingBinaryMLP(64, 10, seed=0)
    model.grow(3)
    model.grow(2)
    frozen = model.blocks[0]
    assert set(frozen[0].weight.unique().tolist()) <= {-1.0, 1.0}
    assert set(frozen[2].weight.unique().tolist()) <= {-1.0, 1.0}
    assert not frozen[0].weight.requires_grad and not frozen[1].weight.requires_grad
    before = [t.clone() for t in (frozen[0].weight, frozen[2].weight, frozen[1].running_mean, frozen[1].running_var)]
    model.train()
    assert not frozen[1].training and model.blocks[1][1].training
    rb._fit(model, split, epochs=1, lr=0.01, batch_size=256, seed=0)
    after = (frozen[0].weight, frozen[2].weight, frozen[1].running_mean, frozen[1].running_var)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert model.blocks[1][0].weight.abs().max() <= 1.0  # BinaryConnect clipping of the training block


def test_training_functions_run_and_follow_the_schedule():
    split = data.digits(flatten=True)
    model, rounds = rb.train_recursive(split, 1184, bits=8, max_rounds=3, epochs=1, seed=0)
    assert [units for units, _ in rounds] == [2, 3, 4]
    assert all(0 <= acc <= 1 for _, acc in rounds)
    model, acc = rb.train_conventional(split, 1184, bits=8, epochs=1, seed=0)
    assert model.units == 2 and 0 <= acc <= 1


def test_bad_inputs():
    with pytest.raises(TypeError, match="budget_bits"):
        rb.conventional_units(1.5, 74)
    with pytest.raises(ValueError, match="fan"):
        rb.recursive_schedule(100, 0)
    with pytest.raises(ValueError, match="bits"):
        rb.recursive_schedule(100, 10, bits=0)
    with pytest.raises(ValueError, match="max_rounds"):
        rb.recursive_schedule(100, 10, max_rounds=0)
    with pytest.raises(TypeError, match="schedule"):
        rb.storage_ledger(5, 74)
    with pytest.raises(ValueError, match="schedule"):
        rb.storage_ledger([3, 0], 74)
    with pytest.raises(ValueError, match="units"):
        rb.GrowingBinaryMLP().grow(0)
    with pytest.raises(ValueError, match="init_range"):
        rb.GrowingBinaryMLP(init_range=2.0)
    with pytest.raises(RuntimeError, match="grow"):
        rb.GrowingBinaryMLP()(torch.zeros(2, 64))
    split = data.digits(flatten=True)
    with pytest.raises(TypeError, match="data"):
        rb.train_recursive("digits", 1000)
    with pytest.raises(ValueError, match="budget_bits"):
        rb.train_recursive(split, 100)
    with pytest.raises(ValueError, match="budget_bits"):
        rb.train_conventional(split, 100)
    with pytest.raises(ValueError, match="flat"):
        rb.train_conventional(data.digits(), 5000)
    with pytest.raises(ValueError, match="lr"):
        rb.train_conventional(split, 5000, lr=-1.0)
