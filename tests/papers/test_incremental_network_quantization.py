"""Incremental Network Quantization: eq. 2-4 by hand, the partition, the frozen mask of eq. 8, Algorithm 1, and the
official Caffe code's nearest-level search."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import data
from qteach import nn as qnn
from qteach.papers import incremental_network_quantization as inq


# ------------------------------------------------------------------------------------- eq. 2-3 and n2

def test_exponents_by_hand():
    # s = 0.75: 4 s / 3 = 1 = 2^0, so n1 = 0; b = 5: n2 = 0 + 1 - 2^4 / 2 = -7
    assert inq.exponent_range(torch.tensor([0.1, -0.75, 0.3]), 5) == (0, -7)
    # the paper's example: b = 3 and n1 = -1 give n2 = -2 (s = 0.5: 4 s / 3 = 0.667, floor(log2) = -1)
    assert inq.exponent_range(torch.tensor([0.5, -0.2]), 3) == (-1, -2)
    # b = 2 (ternary): n2 = n1 + 1 - 1 = n1
    assert inq.exponent_range(torch.tensor([0.5, -0.2]), 2) == (-1, -1)
    # s = 1.5: 4 s / 3 = 2 exactly, n1 = 1; s just below: n1 = 0
    assert inq.exponent_range(torch.tensor([1.5]), 4)[0] == 1
    assert inq.exponent_range(torch.tensor([1.4999]), 4)[0] == 0
    # b = 4: n2 = n1 + 1 - 4 = n1 - 3
    assert inq.exponent_range(torch.tensor([-3.0]), 4) == (2, -1)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
def test_number_of_levels_is_2_pow_b_minus_1_plus_zero(bits):
    n1, n2 = inq.exponent_range(torch.tensor([0.9]), bits)
    assert inq.levels(n1, n2).numel() == 2 ** (bits - 1) + 1


@pytest.mark.parametrize("seed", range(5))
def test_largest_weight_lands_in_the_top_interval(seed):
    # the 4/3 of eq. 2 pairs with the 3/2 of eq. 4: 3/4 2^n1 <= s < 3/2 2^n1
    w = data.weight_samples(100, "laplace", scale=10.0 ** (seed - 2), seed=seed)
    n1, n2 = inq.exponent_range(w, 5)
    s = w.abs().max().item()
    assert 0.75 * 2.0**n1 <= s < 1.5 * 2.0**n1
    assert inq.quantize_power_of_two(w, n1, n2).abs().max().item() == 2.0**n1


def test_levels_by_hand():
    assert inq.levels(0, -2).tolist() == [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0]
    assert inq.levels(1, 1).tolist() == [-2.0, 0.0, 2.0]


# --------------------------------------------------------------------------------------------- eq. 4

def test_quantization_by_hand():
    # n1 = 0, n2 = -2: P = {0, +-1/4, +-1/2, +-1}; interval of beta = 2^k is [3/4 2^k, 3/2 2^k); zero below 1/8
    w = torch.tensor([0.1, 0.125, 0.2, 0.37, 0.375, 0.74, 0.75, 1.2, -0.6, -0.05, 0.0])
    expected = [0.0, 0.25, 0.25, 0.25, 0.5, 0.5, 1.0, 1.0, -0.5, 0.0, 0.0]
    # 0.125 = (0 + 1/4) / 2 and 0.375 = (1/4 + 1/2) / 2 and 0.75 = (1/2 + 1) / 2 are ties: eq. 4's <= sends them up
    assert inq.quantize_power_of_two(w, 0, -2).tolist() == expected


def test_values_above_the_top_interval_saturate():
    # 1.6 >= 3/2 * 2^0: eq. 4 read literally gives 0, the official code's nearest-level search gives 1
    assert inq.quantize_power_of_two(torch.tensor([1.6, -7.0]), 0, -2).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("seed", range(4))
def test_eq4_is_nearest_level_on_a_linear_scale(seed):
    w = data.weight_samples(2000, "gaussian", scale=0.3, seed=seed)
    n1, n2 = inq.exponent_range(w, 4)
    p = inq.levels(n1, n2).float()
    nearest = p[(w.unsqueeze(1) - p).abs().argmin(1)]  # no exact ties among random floats
    assert torch.equal(inq.quantize_power_of_two(w, n1, n2), nearest)


def _official_weight_cluster_zero(weight: float, m: int) -> float:
    """A line-by-line port of weightCluster_zero in the official src/caffe/util/power2.cpp (5-bit: M-7 .. M)."""
    best, ind, flag = 100.0, 0.0, 1.0
    if best > abs(weight):
        best, flag = abs(weight), 0.0
    for i in range(m - 7, m + 1):
        if best > abs(weight - 2.0**i):
            best, ind, flag = abs(weight - 2.0**i), i, 1.0
        if best > abs(weight + 2.0**i):
            best, ind, flag = abs(weight + 2.0**i), i, -1.0
    return flag * 2.0**ind


def test_agrees_with_the_official_code_away_from_ties():
    w = data.weight_samples(500, "laplace", scale=0.05, seed=7).double()
    n1, n2 = inq.exponent_range(w, 5)
    official = torch.tensor([_official_weight_cluster_zero(v, n1) for v in w.tolist()], dtype=torch.float64)
    assert torch.equal(inq.quantize_power_of_two(w, n1, n2), official)
    # at a tie the official code keeps the smaller level (strict >), eq. 4 takes the larger one
    assert _official_weight_cluster_zero(0.75, 0) == 0.5
    assert inq.quantize_power_of_two(torch.tensor([0.75]), 0, -7).item() == 1.0


def test_quantization_keeps_dtype_and_every_value_is_a_level():
    w = data.weight_samples((4, 3, 3, 3), "gaussian", scale=0.1, seed=0).double()
    n1, n2 = inq.exponent_range(w, 3)
    q = inq.quantize_power_of_two(w, n1, n2)
    assert q.dtype == torch.float64 and q.shape == w.shape
    assert set(q.unique().tolist()) <= set(inq.levels(n1, n2).tolist())


# -------------------------------------------------------------------------------------- eq. 5, partition

def test_magnitude_partition_by_hand():
    w = torch.tensor([0.1, -0.9, 0.5, -0.3])
    frozen = torch.zeros(4, dtype=torch.bool)
    first = inq.partition(w, frozen, 0.5)
    assert first.tolist() == [False, True, True, False]  # the two largest magnitudes
    second = inq.partition(w, first, 0.75)
    assert second.tolist() == [False, False, False, True]  # round(0.75 * 4) - 2 = 1 more: |-0.3|
    assert inq.partition(w, first | second, 0.75).sum() == 0  # nothing new for the same portion
    assert inq.partition(w, first | second, 1.0).tolist() == [True, False, False, False]


def test_random_partition_is_disjoint_and_counts():
    w = data.weight_samples(80, seed=1)
    g = torch.Generator().manual_seed(0)
    frozen = torch.zeros(80, dtype=torch.bool)
    for portion in inq.PORTIONS:
        new = inq.partition(w, frozen, portion, "random", g)
        assert not (new & frozen).any()
        frozen |= new
        assert frozen.sum() == round(portion * 80)


# ------------------------------------------------------------------------- the quantizer: eq. 8's mask

def test_quantizer_before_and_after_a_step():
    q = inq.INQQuantizer(bits=3)
    w = torch.tensor([0.1, -0.9, 0.5, -0.3], requires_grad=True)
    assert q(w) is w and q.portion == 0.0
    q.step(w, 0.5)
    # s = 0.9: n1 = floor(log2(1.2)) = 0, n2 = -1, P = {0, +-1/2, +-1}: -0.9 -> -1, 0.5 -> 0.5
    assert (q.n1, q.n2) == (0, -1)
    out = q(w)
    assert out.tolist() == [pytest.approx(0.1), -1.0, 0.5, pytest.approx(-0.3)]
    out.sum().backward()
    # eq. 8: T = 0 where quantized, so those latent weights get no gradient
    assert w.grad.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert q.portion == 0.5 and q.precision == 3


def test_frozen_values_do_not_follow_the_latent_weights():
    q = inq.INQQuantizer(bits=4)
    w = torch.tensor([1.0, 0.2, -0.4, 0.05])
    q.step(w, 0.5)
    moved = w + 10.0
    assert q(moved)[0].item() == 1.0 and q(moved)[2].item() == -0.5  # frozen: the stored power of two
    assert q(moved)[1].item() == pytest.approx(10.2)  # still float


def test_model_steps_and_final_weights_are_all_powers_of_two():
    torch.manual_seed(0)
    model = nn.Sequential(qnn.QuantLinear(6, 5, weight_quantizer=inq.INQQuantizer(4)), nn.ReLU(),
                          qnn.QuantLinear(5, 3, weight_quantizer=inq.INQQuantizer(4)))
    for portion in inq.PORTIONS:
        inq.inq_step(model, portion)
        for layer in (model[0], model[2]):
            assert layer.weight_quantizer.portion == pytest.approx(round(portion * layer.weight.numel())
                                                                   / layer.weight.numel())
    for layer in (model[0], model[2]):
        q = layer.quantized_weight()
        p = inq.levels(layer.weight_quantizer.n1, layer.weight_quantizer.n2).float()
        assert bool(torch.isin(q, p).all())


def test_algorithm_1_runs_and_reports_each_step():
    split = data.blobs(num_samples=200, num_features=8, num_classes=3, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(qnn.QuantLinear(8, 16, weight_quantizer=inq.INQQuantizer(5)), nn.ReLU(),
                          qnn.QuantLinear(16, 3, weight_quantizer=inq.INQQuantizer(5)))
    seen = []
    records = inq.incremental_quantization(model, split, portions=(0.5, 1.0), epochs=1,
                                           after_step=lambda record, m: seen.append(m[0].weight_quantizer.portion))
    assert [r["portion"] for r in records] == [0.5, 1.0]
    assert seen == [0.5, 1.0]
    assert records[-1]["quantized"] == records[-1]["retrained"]  # nothing left to re-train at 100 %
    assert all(0.0 <= r["retrained"] <= 1.0 for r in records)
    assert model[0].weight_quantizer.portion == 1.0


def test_state_dict_round_trip():
    q = inq.INQQuantizer(5)
    q.step(torch.tensor([0.3, -0.1, 0.02]), 0.7)
    other = inq.INQQuantizer(5)
    other.load_state_dict(q.state_dict())
    assert torch.equal(other.frozen, q.frozen) and torch.equal(other.values, q.values)


# ------------------------------------------------------------------------------------------- bad input

def test_bad_input():
    with pytest.raises(ValueError, match="bits"):
        inq.INQQuantizer(1)
    with pytest.raises(TypeError, match="bits"):
        inq.exponent_range(torch.ones(2), 4.0)
    with pytest.raises(ValueError, match="non-zero"):
        inq.exponent_range(torch.zeros(3), 4)
    with pytest.raises(ValueError, match="w"):
        inq.exponent_range(torch.tensor([float("nan")]), 4)
    with pytest.raises(TypeError, match="w"):
        inq.quantize_power_of_two([0.1, 0.2], 0, -1)
    with pytest.raises(ValueError, match="n2"):
        inq.levels(-2, 0)
    with pytest.raises(ValueError, match="portion"):
        inq.partition(torch.ones(3), torch.zeros(3, dtype=torch.bool), 0.0)
    with pytest.raises(ValueError, match="strategy"):
        inq.partition(torch.ones(3), torch.zeros(3, dtype=torch.bool), 0.5, strategy="smallest")
    with pytest.raises(TypeError, match="frozen"):
        inq.partition(torch.ones(3), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="INQQuantizer"):
        inq.inq_step(nn.Linear(2, 2), 0.5)
    with pytest.raises(ValueError, match="increase"):
        model = nn.Sequential(qnn.QuantLinear(2, 2, weight_quantizer=inq.INQQuantizer(3)))
        inq.incremental_quantization(model, data.blobs(num_features=2, seed=0), portions=(0.75, 0.5))
    with pytest.raises(TypeError, match="after_step"):
        model = nn.Sequential(qnn.QuantLinear(2, 2, weight_quantizer=inq.INQQuantizer(3)))
        inq.incremental_quantization(model, data.blobs(num_features=2, seed=0), after_step=3)
    with pytest.raises(ValueError, match="seed"):
        model = nn.Sequential(qnn.QuantLinear(2, 2, weight_quantizer=inq.INQQuantizer(3)))
        inq.incremental_quantization(model, data.blobs(num_features=2, seed=0), seed=-1)
    quantizer = inq.INQQuantizer(3)
    assert torch.equal(quantizer(torch.ones(2, 3)), torch.ones(2, 3))  # before the first step: any shape, float
    quantizer.step(torch.ones(2, 3), 0.5)
    with pytest.raises(ValueError, match="mask of shape"):
        quantizer(torch.ones(3, 2))
    with pytest.raises(ValueError, match="the mask"):
        quantizer.step(torch.ones(3, 2), 0.75)
    assert math.isclose(inq.PORTIONS[2], 0.875)
