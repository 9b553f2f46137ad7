"""The chapter on batch normalization in binary training: initialisations, the deep binary MLP, the exact mask
probability and our per-layer backward gain, checked by hand and against measured gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from qteach import nn as qnn
from qteach.papers import bn_in_binary_training as bn


def test_init_std_by_hand():
    assert bn.init_std("glorot", 64, 64) == pytest.approx(0.125)
    assert bn.init_std("he", 50, 10) == pytest.approx(0.2)
    assert bn.init_std("normal", 7, 3) == 1.0


def test_mask_probability_by_hand():
    # n = 4: S in {-4, -2, 0, 2, 4} with weights 1, 4, 6, 4, 1 (/16)
    assert bn.mask_probability(4, 1.0) == 6 / 16
    assert bn.mask_probability(4, 2.0) == 14 / 16
    assert bn.mask_probability(3, 1.0) == 6 / 8  # S = +-1 has 3 + 3 of 8 outcomes
    assert bn.mask_probability(5, None) == 1.0
    # the Gaussian approximation sqrt(2 / (pi n)) for even n
    assert bn.mask_probability(256, 1.0) == pytest.approx(math.sqrt(2 / (math.pi * 256)), rel=0.01)


def test_mask_probability_equals_enumeration():
    for n in (1, 2, 5, 8):
        outcomes = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0])] * n).reshape(-1, n).sum(1)
        for clip in (0.5, 1.0, 2.0, 3.0):
            assert bn.mask_probability(n, clip) == pytest.approx((outcomes.abs() <= clip).double().mean().item())


def test_backward_gain_by_hand():
    assert bn.backward_gain_squared(64, None, False) == 64
    assert bn.backward_gain_squared(4, 1.0, False) == 4 * 6 / 16
    assert bn.backward_gain_squared(64, None, True) == 1.0
    assert bn.backward_gain_squared(64, 1.0, True) < 1.0


def test_three_initialisations_give_the_same_forward_pass():
    x = torch.rand(32, 64)
    outs = [bn.deep_binary_mlp(64, 32, 5, batch_norm=b, init=i, seed=3)(x) for b in (False, True) for i in bn.INITS]
    for group in (outs[:3], outs[3:]):
        assert all(torch.equal(group[0], o) for o in group[1:])


def test_deep_binary_mlp_layout():
    model = bn.deep_binary_mlp(64, 32, 4, 10, batch_norm=True, init="he", ste_clip=None, seed=1)
    linears = [m for m in model if isinstance(m, qnn.QuantLinear)]
    assert len(linears) == 4 and sum(isinstance(m, nn.BatchNorm1d) for m in model) == 4
    assert linears[0].input_quantizer is None and linears[1].input_quantizer.clip is None
    assert all(m.bias is None for m in linears)
    g = torch.Generator().manual_seed(1)
    assert torch.allclose(linears[0].weight, torch.randn(32, 64, generator=g) * math.sqrt(2 / 64))
    assert len(bn.deep_binary_mlp(batch_norm=False, depth=3)) == 3


def test_gradients_glorot_equal_he_and_normal_is_masked():
    x, y = torch.rand(128, 64), torch.randint(0, 10, (128,))
    norms = {i: bn.layer_gradient_norms(bn.deep_binary_mlp(64, 64, 6, batch_norm=False, init=i), x, y)
             for i in bn.INITS}
    assert norms["glorot"] == norms["he"]
    ratio = [a / b for a, b in zip(norms["normal"], norms["glorot"])]
    assert all(abs(r - math.sqrt(math.erf(1 / math.sqrt(2)))) < 0.05 for r in ratio)


@pytest.mark.parametrize("clip,batch_norm", [(1.0, False), (None, False), (1.0, True), (None, True)])
def test_measured_gain_matches_the_derivation(clip, batch_norm):
    x, y = torch.rand(512, 64), torch.randint(0, 10, (512,))
    logs = []
    for seed in range(4):
        norms = bn.layer_gradient_norms(bn.deep_binary_mlp(64, 64, 8, batch_norm=batch_norm, ste_clip=clip,
                                                           seed=seed), x, y)
        logs += [math.log(a / b) for a, b in itertools.pairwise(norms[1:7])]  # hidden layers only
    measured = math.exp(sum(logs) / len(logs))
    predicted = math.sqrt(bn.backward_gain_squared(64, clip, batch_norm))
    assert measured == pytest.approx(predicted, rel=0.15)


def test_bad_arguments():
    with pytest.raises(ValueError, match="init"):
        bn.init_std("xavier", 3, 3)
    with pytest.raises(TypeError, match="init"):
        bn.init_std(1, 3, 3)
    with pytest.raises(ValueError, match="fan_in"):
        bn.init_std("he", 0, 3)
    with pytest.raises(ValueError, match="depth"):
        bn.deep_binary_mlp(depth=1)
    with pytest.raises(TypeError, match="batch_norm"):
        bn.deep_binary_mlp(batch_norm=1)
    with pytest.raises(ValueError, match="clip"):
        bn.deep_binary_mlp(ste_clip=-1.0)
    with pytest.raises(ValueError, match="n"):
        bn.mask_probability(0, 1.0)
    with pytest.raises(TypeError, match="batch_norm"):
        bn.backward_gain_squared(4, 1.0, "yes")
    model = bn.deep_binary_mlp(64, 8, 3)
    with pytest.raises(TypeError, match="x"):
        bn.layer_gradient_norms(model, torch.ones(4, 64, dtype=torch.int64), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="y"):
        bn.layer_gradient_norms(model, torch.ones(4, 64), torch.zeros(4))
    with pytest.raises(TypeError, match="model"):
        bn.layer_gradient_norms("model", torch.ones(4, 64), torch.zeros(4, dtype=torch.int64))
