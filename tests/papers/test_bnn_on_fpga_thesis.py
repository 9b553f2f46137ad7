"""BNN as an FPGA pipeline (after Redkar, 2017): popcount thresholds, exactness, cycle and resource model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach.papers import bnn_on_fpga_thesis as th


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# --- thresholds by hand ------------------------------------------------------------------------------------

def test_threshold_positive_gamma_by_hand():
    # K = 10, gamma 1, beta 0, mean 2, var 0, eps 1: y = x - 2 >= 0 <=> 2p - 10 >= 2 <=> p >= 6.
    tau, invert = th.popcount_threshold(t(1.0), t(0.0), t(2.0), t(0.0), fan_in=10, eps=1.0)
    assert tau.tolist() == [6] and invert.tolist() == [False]
    # mean 3: 2p - 10 >= 3 <=> p >= 6.5 <=> p >= 7 (the ceiling)
    tau, _ = th.popcount_threshold(t(1.0), t(0.0), t(3.0), t(0.0), fan_in=10, eps=1.0)
    assert tau.tolist() == [7]


def test_threshold_negative_gamma_by_hand():
    # gamma -1, mean 2: y = -(x - 2) >= 0 <=> x <= 2 <=> p <= 6 <=> not (p >= 7)
    tau, invert = th.popcount_threshold(t(-1.0), t(0.0), t(2.0), t(0.0), fan_in=10, eps=1.0)
    assert tau.tolist() == [7] and invert.tolist() == [True]
    # beta shifts the threshold: gamma 2, beta 1, mean 0, var 3, eps 1 -> t = 0 - 1 * 2 / 2 = -1;
    # 2p - 10 >= -1 <=> p >= 4.5 <=> p >= 5
    tau, _ = th.popcount_threshold(t(2.0), t(1.0), t(0.0), t(3.0), fan_in=10, eps=1.0)
    assert tau.tolist() == [5]


def test_threshold_constant_and_clamped():
    tau, invert = th.popcount_threshold(t(0.0, 0.0, 1.0, 1.0), t(-1.0, 2.0, 0.0, 0.0), t(0.0, 0.0, 100.0, -100.0),
                                        t(1.0, 1.0, 1.0, 1.0), fan_in=8)
    assert tau.tolist() == [0, 0, 9, 0]                 # constant, constant, never fires (K + 1), always fires
    assert invert.tolist() == [True, False, False, False]
    fired = th.threshold_neuron(torch.arange(0, 9)[:, None].expand(-1, 4), tau, invert)
    assert (~fired[:, 0]).all() and fired[:, 1].all() and (~fired[:, 2]).all() and fired[:, 3].all()


@pytest.mark.parametrize("seed", [0, 1])
def test_threshold_is_exact_for_every_popcount(seed):
    g = torch.Generator().manual_seed(seed)
    c, k = 200, 37
    gamma = torch.randn(c, generator=g, dtype=torch.float64)
    beta, mean = torch.randn(c, generator=g, dtype=torch.float64), 8 * torch.randn(c, generator=g, dtype=torch.float64)
    var = torch.rand(c, generator=g, dtype=torch.float64) * 10
    p = torch.arange(0, k + 1)[:, None].expand(-1, c)
    x = (2 * p - k).double()
    y = gamma * (x - mean) / torch.sqrt(var + 1e-5) + beta
    tau, invert = th.popcount_threshold(gamma, beta, mean, var, fan_in=k)
    assert torch.equal(th.threshold_neuron(p, tau, invert), y >= 0)


def test_matches_torch_batchnorm():
    torch.manual_seed(3)
    bn = nn.BatchNorm1d(40).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(40))
        bn.bias.copy_(torch.randn(40))
        bn.running_mean.copy_(6 * torch.randn(40) + 0.3)
        bn.running_var.uniform_(0.2, 9.0)
    k = 33
    p = torch.arange(0, k + 1)[:, None].expand(-1, 40)
    with torch.no_grad():
        expected = bn((2 * p - k).float()) >= 0
    tau, invert = th.fold_thresholds(bn, k)
    assert torch.equal(th.threshold_neuron(p, tau, invert), expected)


def test_module_thresholds_are_exact_at_float32_ties():
    # integer means and beta = 0 put x = mu exactly on the tie, where float32 BN rounds to a tiny +- value:
    # fold_thresholds follows the module's own float32 arithmetic (qteach.deploy.fold_threshold)
    g = torch.Generator().manual_seed(0)
    bn = nn.BatchNorm1d(200).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(200, generator=g))
        bn.running_mean.copy_(torch.randint(-20, 20, (200,), generator=g).float())
        bn.running_var.copy_(torch.rand(200, generator=g) * 10)
    k = 28
    p = torch.arange(0, k + 1)[:, None].expand(-1, 200)
    with torch.no_grad():
        expected = bn((2 * p - k).float()) >= 0
    assert torch.equal(th.threshold_neuron(p, *th.fold_thresholds(bn, k)), expected)


# --- the pipeline equals the float model --------------------------------------------------------------------

def test_pipeline_equals_model():
    torch.manual_seed(1)
    model = th.binary_input_mlp(20, 30, 6, layers=2)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.BatchNorm1d):
                m.weight.copy_(torch.randn(30))
                m.bias.copy_(torch.randn(30))
                m.running_mean.copy_(4 * torch.randn(30))
                m.running_var.uniform_(0.5, 8.0)
    model.eval()
    pipe = th.ThresholdPipeline.from_sequential(model)
    x = torch.randn(400, 20)
    classes, scores, activations = pipe(x)
    with torch.no_grad():
        logits = model(x)
        hidden = [model[:3](x), model[:6](x)]
    assert torch.equal((2 * scores - 30).float(), logits)               # scores are popcounts: x = 2p - K
    assert torch.equal(classes, logits.argmax(dim=1))
    for fired, h in zip(activations, hidden):
        assert torch.equal(fired.float() * 2 - 1, h)
    assert any(inv.any() for _, _, inv in pipe.layers)                   # some neurons with gamma < 0 were folded


def test_pipeline_bad_input():
    pipe = th.ThresholdPipeline.from_sequential(th.binary_input_mlp(8, 4, 3, layers=1).eval())
    with pytest.raises(ValueError, match="x"):
        pipe(torch.zeros(2, 9))
    with pytest.raises(TypeError, match="model"):
        th.ThresholdPipeline.from_sequential(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="QuantLinear"):
        th.ThresholdPipeline.from_sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.ReLU(), nn.Linear(2, 2)))


# --- cycle and resource model ---------------------------------------------------------------------------------

def test_cycles_and_timing_by_hand():
    folds = [th.LayerFold(64, 128, pes=16, simd=32), th.LayerFold(128, 128, pes=8, simd=64),
             th.LayerFold(128, 10, pes=10, simd=16)]
    # 128/16 * 64/32 = 16, 128/8 * 128/64 = 32, 10/10 * 128/16 = 8
    assert [th.layer_cycles(f) for f in folds] == [16, 32, 8]
    timing = th.pipeline_timing(folds, clock_hz=100e6)
    assert timing["ii"] == 32 and timing["bottleneck"] == 1 and timing["latency_cycles"] == 56
    assert timing["images_per_s"] == pytest.approx(100e6 / 32)
    assert timing["latency_s"] == pytest.approx(56 / 100e6)
    assert th.layer_cycles(th.LayerFold(100, 10, pes=3, simd=30)) == 4 * 4          # ceilings


def test_resources_by_hand():
    r = th.layer_resources(th.LayerFold(128, 10, pes=5, simd=16))
    # accumulator 8 bits (p <= 128), tau in [0, 129]: 8 bits + 1 inversion bit
    assert r == {"xnor": 80, "popcount_inputs": 80, "accumulator_bits": 40, "comparators": 5,
                 "weight_bits": 1280, "threshold_bits": 90}


def test_fold_for_target_is_feasible_and_minimal():
    for fan_in, fan_out, target in [(64, 128, 64), (128, 10, 7), (100, 30, 1), (50, 50, 2500), (37, 11, 13)]:
        fold = th.fold_for_target(fan_in, fan_out, target)
        assert th.layer_cycles(fold) <= target
        cheapest = min(p * s for p in range(1, fan_out + 1) for s in range(1, fan_in + 1)
                       if -(-fan_out // p) * -(-fan_in // s) <= target)
        assert fold.pes * fold.simd == cheapest
    assert th.fold_for_target(64, 10, 1) == th.LayerFold(64, 10, 10, 64)


def test_model_bad_input():
    with pytest.raises(ValueError, match="pes"):
        th.LayerFold(64, 10, pes=11, simd=8)
    with pytest.raises(ValueError, match="simd"):
        th.LayerFold(64, 10, pes=1, simd=0)
    with pytest.raises(TypeError, match="fold"):
        th.layer_cycles((64, 10, 1, 1))
    with pytest.raises(ValueError, match="folds"):
        th.pipeline_timing([], 1e8)
    with pytest.raises(ValueError, match="clock_hz"):
        th.pipeline_timing([th.LayerFold(2, 2, 1, 1)], 0)
    with pytest.raises(ValueError, match="fan_in"):
        th.popcount_threshold(t(1.0), t(0.0), t(0.0), t(1.0), fan_in=0)
    with pytest.raises(TypeError, match="invert"):
        th.threshold_neuron(torch.zeros(2, 1, dtype=torch.int64), torch.zeros(1, dtype=torch.int64), torch.zeros(1))
    with pytest.raises(TypeError, match="bn"):
        th.fold_thresholds(nn.Linear(2, 2), 4)
