"""Random Partition Relaxation: the levels, nearest-level quantization and the scale search by hand, the random
partition, the assembled weight and its gradient, the algorithm, and the authors' own code (QuantLab's
``quantlib/algorithms/inq/inq_ops.py``, "RPR" strategy, read in the Xeratec/quantlib copy at commit bd5e3a9)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from qteach import comparison, data
from qteach import nn as qnn
from qteach.papers import random_partition_relaxation as rpr

# ---------------------------------------------------------------------------- transcriptions of the official code


def official_inq_quantize(weight, quant_levels):
    """inq_ops.py lines 159-169 (``INQNodeController.inq_quantize``), line by line."""
    best_quant_level = torch.zeros_like(weight)
    min_quant_err = torch.full_like(weight, float("Inf"))
    for ql in quant_levels:
        quant_err = (weight - ql).abs()
        mask = quant_err < min_quant_err
        best_quant_level[mask] = ql
        min_quant_err[mask] = quant_err[mask]
    return best_quant_level


def official_rpr_step(weight, quant_levels, fraction):
    """inq_ops.py lines 238-245 (the "RPR" branch of ``inq_step``): quantize all, NaN marks the relaxed ones."""
    weight_frozen = official_inq_quantize(weight, quant_levels)
    num_unfreeze = int((1 - fraction) * weight.numel())
    idx_unfreeze = torch.randperm(weight.numel())[:num_unfreeze]
    weight_frozen.flatten()[idx_unfreeze] = float("NaN")
    return weight_frozen


def official_assemble(weight, weight_frozen):
    """inq_ops.py lines 270-283 (``inq_assemble_weight``)."""
    weight_frozen = weight_frozen.detach()
    idx_frozen = ~torch.isnan(weight_frozen)
    weight_assembled = torch.zeros_like(weight_frozen)
    weight_assembled[idx_frozen] = weight_frozen[idx_frozen]
    mask_full_prec = torch.isnan(weight_frozen).float()
    return weight_assembled + mask_full_prec * weight


# ------------------------------------------------------------------------------------------------- levels


def test_levels_by_hand():
    assert rpr.uniform_levels(0.5, 2).tolist() == [-0.5, 0.5]
    assert rpr.uniform_levels(0.5, 3).tolist() == [-0.5, 0.0, 0.5]
    assert rpr.levels_for_bits(1) == 2 and rpr.levels_for_bits(2) == 3


def test_quantize_nearest_by_hand_ties_go_down():
    levels = rpr.uniform_levels(1.0, 3)
    w = torch.tensor([0.2, 0.6, -0.7, -0.5, 0.5, 3.0, -3.0])
    assert rpr.quantize_nearest(w, levels).tolist() == [0.0, 1.0, -1.0, -1.0, 0.0, 1.0, -1.0]
    binary = rpr.uniform_levels(0.25, 2)
    assert rpr.quantize_nearest(torch.tensor([0.0, 0.1, -2.0]), binary).tolist() == [-0.25, 0.25, -0.25]


@pytest.mark.parametrize("num_levels,seed", itertools.product((2, 3), range(4)))
def test_quantize_nearest_equals_official_inq_quantize(num_levels, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(7, 5, generator=g, dtype=torch.float64)
    w[0, :3] = torch.tensor([-0.35, 0.35, 0.0], dtype=torch.float64)  # ties at s/2 and at 0
    levels = rpr.uniform_levels(0.7, num_levels)
    assert torch.equal(rpr.quantize_nearest(w, levels), official_inq_quantize(w, levels.tolist()))


# ------------------------------------------------------------------------------------------ the scale search


def _l2_error(w, s, num_levels):
    return float((w.double() - rpr.quantize_nearest(w, rpr.uniform_levels(s, num_levels))).pow(2).sum())


@pytest.mark.parametrize("seed", range(4))
def test_binary_scale_is_mean_abs_within_one_grid_step(seed):
    w = torch.randn(300, generator=torch.Generator().manual_seed(seed))
    s = rpr.optimal_scale(w, 2)
    assert abs(s - float(w.abs().mean())) <= float(w.abs().max()) / 1000 + 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_ternary_scale_minimises_the_error_over_the_grid(seed):
    w = torch.randn(200, generator=torch.Generator().manual_seed(seed)) * 0.3
    s = rpr.optimal_scale(w, 3, grid=200)
    top = float(w.abs().max())
    best = min(_l2_error(w, top * (i + 1) / 200, 3) for i in range(200))
    assert _l2_error(w, s, 3) == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_ternary_scale_by_hand():
    # three weights at +-1 and one small one: s = 1 sends 0.1 to 0 and makes the error 0.01, the minimum
    w = torch.tensor([1.0, -1.0, 1.0, 0.1])
    assert rpr.optimal_scale(w, 3, grid=10) == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------- the partition


@pytest.mark.parametrize("ff,shape", [(0.0, (4, 5)), (0.5, (4, 5)), (0.7, (3, 7)), (0.95, (128, 128)), (1.0, (6,))])
def test_relaxed_count_is_the_official_int(ff, shape):
    mask = rpr.relaxed_mask(shape, ff, torch.Generator().manual_seed(0))
    n = torch.Size(shape).numel()
    assert mask.shape == shape and mask.dtype == torch.bool
    assert int(mask.sum()) == int((1 - ff) * n)


def test_partition_is_redrawn_and_seeded():
    g = torch.Generator().manual_seed(3)
    a, b = rpr.relaxed_mask((50,), 0.5, g), rpr.relaxed_mask((50,), 0.5, g)
    assert not torch.equal(a, b)
    assert torch.equal(a, rpr.relaxed_mask((50,), 0.5, torch.Generator().manual_seed(3)))


# ------------------------------------------------------------------------------------------- the quantizer


def test_quantizer_is_identity_before_the_first_step():
    w = torch.randn(3, 4)
    assert torch.equal(rpr.RPRQuantizer(3)(w), w)


@pytest.mark.parametrize("num_levels,ff", itertools.product((2, 3), (0.0, 0.3, 0.8, 1.0)))
def test_forward_and_gradient_equal_the_official_assembly(num_levels, ff):
    w = torch.randn(6, 9, generator=torch.Generator().manual_seed(1), requires_grad=True)
    q = rpr.RPRQuantizer(num_levels)
    relaxed = q.step(w, ff, torch.Generator().manual_seed(2))
    levels = rpr.uniform_levels(q.scale, num_levels)
    frozen = official_inq_quantize(w.detach().double(), levels.tolist()).float()
    frozen[relaxed] = float("NaN")
    out = q(w)
    assert torch.equal(out, official_assemble(w, frozen))
    out.sum().backward()
    assert torch.equal(w.grad, relaxed.float())  # frozen weights get no gradient
    assert abs(q.freezing_fraction - (1 - int((1 - ff) * 54) / 54)) < 1e-6


def test_every_weight_is_requantized_at_each_step_and_the_scale_is_kept():
    w = torch.tensor([[0.9, -0.8, 0.1, 0.05]])
    q = rpr.RPRQuantizer(3)
    q.step(w, 1.0)
    s = q.scale
    assert torch.equal(q(w), rpr.quantize_nearest(w, rpr.uniform_levels(s, 3)))
    moved = torch.tensor([[0.9, -0.8, 0.1, 0.7]])  # a weight trained while relaxed: its new value is used
    q.step(moved, 1.0)
    assert q.scale == s
    assert q(moved)[0, 3].item() == pytest.approx(s)


def test_all_weights_quantized_at_ff_one():
    w = torch.randn(16, 16)
    q = rpr.RPRQuantizer(2)
    q.step(w, 1.0)
    used = q(w)
    assert len(used.unique()) == 2
    assert torch.allclose(used.abs(), torch.full_like(used, q.scale))
    assert torch.equal(torch.sign(used), torch.sign(w))


# ----------------------------------------------------------------------------------------------- the algorithm


def _tiny():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return data.Split(x[:90], y[:90], x[90:], y[90:])


def _model(num_levels=3):
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(),
                         qnn.QuantLinear(16, 16, weight_quantizer=rpr.RPRQuantizer(num_levels)), nn.ReLU(),
                         nn.Linear(16, 2))


def test_algorithm_ends_with_every_weight_quantized():
    model, split = _model(), _tiny()
    records = rpr.random_partition_relaxation(model, split, schedule=(0.5, 0.9, 1.0), epochs=1, seed=0)
    assert [r["freezing_fraction"] for r in records] == [0.5, 0.9, 1.0]
    assert records[-1]["quantized"] == records[-1]["retrained"]
    layer = model[2]
    used = layer.quantized_weight().detach()
    assert set(used.unique().tolist()) <= set(rpr.uniform_levels(layer.weight_quantizer.scale, 3).float().tolist())


def test_protocol_post_training_gives_binary_weights():
    full = comparison.Method("Full precision", "", ((32, 32),), layer=lambda w, a: (None, None, nn.ReLU()))
    model = comparison.protocol_mlp(full, 32, 32, in_features=8)
    out = rpr.protocol_post_training(model, 1, _tiny(), 0, SimpleNamespace(batch_size=32))
    for layer in comparison._middle_layers(out):
        assert len(layer.quantized_weight().detach().unique()) == 2


# ----------------------------------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(ValueError, match="num_levels"):
        rpr.RPRQuantizer(4)
    with pytest.raises(ValueError, match="w_bits"):
        rpr.levels_for_bits(3)
    with pytest.raises(ValueError, match="scale"):
        rpr.uniform_levels(0.0, 3)
    with pytest.raises(TypeError, match="levels"):
        rpr.quantize_nearest(torch.ones(3), [0.0, 1.0])
    with pytest.raises(ValueError, match="w"):
        rpr.quantize_nearest(torch.tensor([float("nan")]), rpr.uniform_levels(1.0, 2))
    with pytest.raises(ValueError, match="non-zero"):
        rpr.optimal_scale(torch.zeros(4), 3)
    with pytest.raises(ValueError, match="freezing_fraction"):
        rpr.relaxed_mask((3,), 1.5)
    with pytest.raises(TypeError, match="freezing_fraction"):
        rpr.relaxed_mask((3,), "half")
    with pytest.raises(TypeError, match="shape"):
        rpr.relaxed_mask((3, 0), 0.5)
    with pytest.raises(ValueError, match="no layer"):
        rpr.rpr_step(nn.Linear(2, 2), 0.5)
    with pytest.raises(ValueError, match="schedule"):
        rpr.random_partition_relaxation(_model(), _tiny(), schedule=(0.5, 0.9))
    with pytest.raises(ValueError, match="schedule"):
        rpr.random_partition_relaxation(_model(), _tiny(), schedule=(0.9, 0.5, 1.0))
    with pytest.raises(TypeError, match="after_step"):
        rpr.random_partition_relaxation(_model(), _tiny(), after_step=3)
    q = rpr.RPRQuantizer(2)
    q.step(torch.randn(2, 3), 0.5)
    with pytest.raises(ValueError, match="shape"):
        q(torch.randn(3, 2))
