"""BinaryConnect (Courbariaux, Bengio, David, NIPS 2015): eq. 1-3, Algorithm 1 and the test-time rules of sec. 2.6."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import train
from qteach.data import blobs
from qteach.nn import QuantLinear
from qteach.papers import binaryconnect as bc


# ----------------------------------------------------------------------------------------------------------------
# eq. 3: hard sigmoid
# ----------------------------------------------------------------------------------------------------------------


def test_hard_sigmoid_hand_values():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    # clip((x + 1) / 2, 0, 1): (-1)/2 -> 0, 0 -> 0, 0.25, 0.5, 0.75, 1, 2 -> 1
    expected = torch.tensor([0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert torch.equal(bc.hard_sigmoid(x), expected)


def test_hard_sigmoid_is_the_clipped_line_through_the_logistic_midpoint():
    x = torch.linspace(-3, 3, 61)
    assert torch.equal(bc.hard_sigmoid(x), torch.clamp(0.5 * x + 0.5, 0, 1))
    # it agrees with the logistic sigmoid at 0 only (same value 1/2), not a rescaled copy of it
    assert bc.hard_sigmoid(torch.tensor(0.0)) == torch.sigmoid(torch.tensor(0.0))


# ----------------------------------------------------------------------------------------------------------------
# eq. 1: deterministic binarization
# ----------------------------------------------------------------------------------------------------------------


def test_deterministic_hand_values_and_sign_of_zero():
    w = torch.tensor([-0.3, 0.0, 0.2, -1.7, 5.0])
    # eq. 1: +1 if w >= 0 else -1 (zero is +1, unlike torch.sign)
    assert torch.equal(bc.binarize_deterministic(w), torch.tensor([-1.0, 1.0, 1.0, -1.0, 1.0]))


def test_deterministic_equals_the_official_code_rounding_rule():
    # binary_connect.py: Wb = round(hard_sigmoid(W / H)) with Theano's round-half-away-from-zero, then 0/1 -> -H/+H
    w = torch.tensor([-1.2, -0.5, -1e-6, 0.0, 1e-6, 0.5, 2.0])
    official = 2 * torch.floor(bc.hard_sigmoid(w) + 0.5) - 1
    assert torch.equal(bc.binarize_deterministic(w), official)


def test_deterministic_gradient_is_straight_through_without_clipping():
    # Algorithm 1 applies dC/dw_b to w unchanged, also where |w| > 1 (clipping w happens after the update)
    w = torch.tensor([-2.0, -0.4, 0.0, 0.6, 3.0], requires_grad=True)
    upstream = torch.tensor([1.0, -2.0, 3.0, 0.5, -1.0])
    (bc.binarize_deterministic(w) * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)


# ----------------------------------------------------------------------------------------------------------------
# eq. 2: stochastic binarization
# ----------------------------------------------------------------------------------------------------------------


def test_stochastic_values_are_plus_minus_one_and_saturate_outside_the_interval():
    g = torch.Generator().manual_seed(1)
    w = torch.tensor([-3.0, -1.0, 1.0, 2.5]).repeat(1000, 1)
    w_b = bc.binarize_stochastic(w, g)
    # p = hard_sigmoid(w) = 0, 0, 1, 1: no randomness left
    assert torch.equal(w_b, torch.tensor([-1.0, -1.0, 1.0, 1.0]).repeat(1000, 1))
    mixed = bc.binarize_stochastic(torch.zeros(1000), g)
    assert set(mixed.tolist()) == {-1.0, 1.0}


def test_stochastic_probability_hand_computed_and_empirical_frequency():
    # p = clip((w + 1) / 2, 0, 1): w = -0.5 -> 0.25, 0 -> 0.5, 0.3 -> 0.65, 0.9 -> 0.95
    w = torch.tensor([-0.5, 0.0, 0.3, 0.9])
    p = torch.tensor([0.25, 0.5, 0.65, 0.95])
    assert torch.allclose(bc.hard_sigmoid(w), p)
    n = 200_000
    g = torch.Generator().manual_seed(0)  # fixed seed: the draw is the same on every run, the test cannot flake
    w_b = bc.binarize_stochastic(w.expand(n, 4).contiguous(), g)
    freq = (w_b == 1).double().mean(dim=0)
    # standard error sqrt(p(1-p)/n) <= 0.00112; the tolerance is 5 standard errors
    assert torch.all((freq - p.double()).abs() < 0.0056), freq


def test_stochastic_mean_is_the_clipped_weight():
    # E[w_b] = (+1) p + (-1)(1 - p) = 2p - 1 = clip(w, -1, 1)
    w = torch.tensor([-1.5, -0.6, -0.1, 0.0, 0.45, 0.8, 1.3])
    assert torch.allclose(bc.expected_binary_weight(w), torch.clamp(w, -1, 1))
    g = torch.Generator().manual_seed(3)
    n = 200_000
    mean = bc.binarize_stochastic(w.expand(n, 7).contiguous(), g).double().mean(dim=0)
    # std of a +-1 variable <= 1, so the standard error is <= 1/sqrt(n) = 0.00224; 5 standard errors
    assert torch.all((mean - torch.clamp(w, -1, 1).double()).abs() < 0.0112), mean


def test_stochastic_is_reproducible_with_a_seeded_generator():
    w = torch.linspace(-1, 1, 101)
    a = bc.binarize_stochastic(w, torch.Generator().manual_seed(7))
    b = bc.binarize_stochastic(w, torch.Generator().manual_seed(7))
    c = bc.binarize_stochastic(w, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_stochastic_gradient_is_straight_through():
    w = torch.tensor([-0.7, 0.1, 0.9, 1.4], requires_grad=True)
    upstream = torch.tensor([2.0, -1.0, 0.25, 4.0])
    (bc.binarize_stochastic(w, torch.Generator().manual_seed(0)) * upstream).sum().backward()
    assert torch.equal(w.grad, upstream)


# ----------------------------------------------------------------------------------------------------------------
# Algorithm 1
# ----------------------------------------------------------------------------------------------------------------


def test_update_hand_values():
    w = torch.tensor([0.5, -0.9, 0.95])
    g = torch.tensor([1.0, 2.0, -1.0])
    # w - 0.1 g = 0.4, -1.1, 1.05 -> clip to [-1, 1]
    assert torch.allclose(bc.binaryconnect_update(w, g, 0.1), torch.tensor([0.4, -1.0, 1.0]))


def test_algorithm_1_gradient_is_computed_with_the_binary_weights():
    torch.manual_seed(0)
    layer = QuantLinear(5, 3, weight_quantizer=bc.BinaryConnect(stochastic=False))
    x = torch.randn(4, 5)
    target = torch.tensor([0, 2, 1, 1])
    F.cross_entropy(layer(x), target).backward()
    # reference: the same loss with the binary weights as a plain tensor; dC/dw must equal dC/dw_b
    w_b = torch.where(layer.weight >= 0, 1.0, -1.0).detach().requires_grad_(True)
    F.cross_entropy(F.linear(x, w_b, layer.bias.detach()), target).backward()
    assert torch.allclose(layer.weight.grad, w_b.grad)
    # one SGD step followed by the clip of qteach.train equals binaryconnect_update
    expected = bc.binaryconnect_update(layer.weight.detach(), layer.weight.grad, 0.5)
    with torch.no_grad():
        layer.weight -= 0.5 * layer.weight.grad
    train.clip_latent_weights(layer, 1.0)
    assert torch.allclose(layer.weight, expected)


def test_training_keeps_latent_weights_in_the_interval():
    data = blobs(num_samples=200, num_features=8, num_classes=3, seed=0)
    model = bc.binaryconnect_mlp(8, (16,), 3, mode="stochastic", seed=0)
    train.fit(model, data, epochs=3, lr=0.05, weight_clip=1.0, progress=False)
    for layer in model:
        if isinstance(layer, QuantLinear):
            assert layer.weight.abs().max() <= 1.0
            assert (layer.weight.abs() == 1.0).any()  # with lr 0.05 some weights reach the clip


# ----------------------------------------------------------------------------------------------------------------
# sec. 2.6: test-time inference
# ----------------------------------------------------------------------------------------------------------------


def test_test_time_defaults_follow_the_paper_and_the_official_code():
    w = torch.tensor([-0.4, 0.2, 0.0, 0.7])
    det, sto = bc.BinaryConnect(stochastic=False), bc.BinaryConnect(stochastic=True)
    assert det.test_time == "binary" and sto.test_time == "real"
    det.eval(), sto.eval()
    assert torch.equal(det(w), torch.tensor([-1.0, 1.0, 1.0, 1.0]))  # binary weights
    assert torch.equal(sto(w), w)  # real-valued weights (the noise is removed, as in Dropout)
    sto.train()
    assert set(sto(w.repeat(200)).tolist()) == {-1.0, 1.0}


def test_test_time_options():
    w = torch.zeros(1000)
    q = bc.BinaryConnect(stochastic=True, test_time="binary").eval()
    assert torch.equal(q(w), torch.ones(1000))  # sign(0) = +1
    q = bc.BinaryConnect(stochastic=True, test_time="sample", seed=1).eval()
    first, second = q(w), q(w)
    assert set(first.tolist()) == {-1.0, 1.0} and not torch.equal(first, second)  # fresh draws


def test_ensemble_of_a_deterministic_model_is_its_softmax():
    torch.manual_seed(0)
    model = bc.binaryconnect_mlp(6, (8,), 3, mode="deterministic", seed=0).eval()
    x = torch.randn(10, 6)
    assert torch.allclose(bc.ensemble_logits(model, x, samples=3), torch.log_softmax(model(x), dim=1), atol=1e-6)


def test_ensemble_samples_and_restores_the_quantizers():
    torch.manual_seed(0)
    model = bc.binaryconnect_mlp(6, (32,), 3, mode="stochastic", seed=0)
    x = torch.randn(20, 6)
    one = bc.ensemble_logits(model, x, samples=1)
    many = bc.ensemble_logits(model, x, samples=16)
    assert not torch.allclose(one, many)
    assert model.training  # mode restored
    assert all(q.test_time == "real" for q in model.modules() if isinstance(q, bc.BinaryConnect))
    assert torch.allclose(many.exp().sum(dim=1), torch.ones(20))


def test_mlp_layout_and_precision():
    model = bc.binaryconnect_mlp(64, (32, 16), 10, mode="deterministic", seed=0)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["QuantLinear", "BatchNorm1d", "ReLU", "QuantLinear", "BatchNorm1d", "ReLU", "QuantLinear",
                     "BatchNorm1d"]
    assert model[0].weight_quantizer.precision == 1
    assert model[0].weight.abs().max() <= 1.0 and model[0].weight.abs().max() > 0.9  # uniform on [-1, 1]
    assert model[0].weight_quantizer.generator.initial_seed() == 0
    assert model[3].weight_quantizer.generator.initial_seed() == 1
    float_model = bc.binaryconnect_mlp(64, (32, 16), 10, mode="float", seed=0)
    assert float_model[0].weight_quantizer is None
    state = torch.random.get_rng_state()
    bc.binaryconnect_mlp(4, (4,), 2, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())  # building a model leaves the global RNG alone


# ----------------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(TypeError, match="x"):
        bc.hard_sigmoid(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="w"):
        bc.binarize_deterministic([0.5])
    with pytest.raises(TypeError, match="generator"):
        bc.binarize_stochastic(torch.zeros(3), generator=0)
    with pytest.raises(ValueError, match="w"):
        bc.binarize_stochastic(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="grad_wb"):
        bc.binaryconnect_update(torch.zeros(3), torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match="lr"):
        bc.binaryconnect_update(torch.zeros(3), torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="test_time"):
        bc.BinaryConnect(test_time="average")
    with pytest.raises(TypeError, match="stochastic"):
        bc.BinaryConnect(stochastic="yes")
    with pytest.raises(ValueError, match="mode"):
        bc.binaryconnect_mlp(mode="ternary")
    with pytest.raises(ValueError, match="init_range"):
        bc.binaryconnect_mlp(init_range=2.0)
    with pytest.raises(ValueError, match="BinaryConnect"):
        bc.ensemble_logits(bc.binaryconnect_mlp(4, (4,), 2, mode="float"), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="samples"):
        bc.ensemble_logits(bc.binaryconnect_mlp(4, (4,), 2), torch.zeros(2, 4), samples=0)


def test_quantizer_checks_its_arguments_before_building_itself():
    from qteach import display

    shown = display.show_source(bc.BinaryConnect).text.split("<details>")[0]
    assert "raise" not in shown and shown.count(display.CHECKS_OMITTED) == 1
    assert bc.BinaryConnect().test_time == "binary" and bc.BinaryConnect(stochastic=True).test_time == "real"
    assert bc.BinaryConnect(test_time="sample").test_time == "sample"
    for kwargs, error, name in ((dict(stochastic=1), TypeError, "stochastic"),
                                (dict(test_time="x"), ValueError, "test_time"), (dict(seed=-1), ValueError, "seed"),
                                (dict(stochastic=1, seed=-1), TypeError, "stochastic")):
        with pytest.raises(error, match=name):
            bc.BinaryConnect(**kwargs)
