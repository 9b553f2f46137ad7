"""Tests of qteach.papers.self_binarizing_networks: the tanh limit, the schedule, exact binarization, export.

The paper's text beyond its abstract could not be read (arXiv 1902.00730); the values below are computed by hand
from tanh(v x) and from the book's geometric schedule (our reconstruction).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from qteach import data, deploy
from qteach import nn as qnn
from qteach.binary import sign
from qteach.papers import self_binarizing_networks as sb


def test_scaled_tanh_hand_values():
    x = torch.tensor([-0.5, 0.0, 0.25])
    assert torch.allclose(sb.scaled_tanh(x, 2.0), torch.tanh(torch.tensor([-1.0, 0.0, 0.5])))
    # slope 1: the plain tanh; tanh(0.25) = 0.244918...
    assert sb.scaled_tanh(torch.tensor([0.25]), 1.0).item() == pytest.approx(0.2449186624)


def test_limit_is_sign():
    x = torch.tensor([-2.0, -0.3, -1e-3, 1e-3, 0.3, 2.0])
    # float32 tanh is exactly +-1 once |v x| is large (about 9): the limit is reached at finite slope
    assert torch.equal(sb.scaled_tanh(x, 1e5), sign(x))
    # slope = inf is the sign itself, with sign(0) = +1
    assert sb.scaled_tanh(torch.tensor([0.0, -0.0, -1e-30]), math.inf).tolist() == [1.0, 1.0, -1.0]


def test_true_gradient_not_ste():
    x = torch.tensor([0.1, 2.0], requires_grad=True)
    sb.scaled_tanh(x, 3.0).sum().backward()
    expected = 3.0 * (1 - torch.tanh(3.0 * x.detach()) ** 2)  # v (1 - tanh^2(v x))
    assert torch.allclose(x.grad, expected)
    assert x.grad[1] > 0  # the STE would give 0 beyond |x| = 1; tanh's gradient is small but not 0


def test_slope_schedule_geometric():
    assert sb.slope_schedule(0, 10, 1.0, 100.0) == pytest.approx(1.0)
    assert sb.slope_schedule(5, 10, 1.0, 100.0) == pytest.approx(10.0)  # halfway: the geometric mean
    assert sb.slope_schedule(10, 10, 1.0, 100.0) == pytest.approx(100.0)
    values = [sb.slope_schedule(t, 7, 2.0, 50.0) for t in range(8)]
    assert all(b / a == pytest.approx(values[1] / values[0]) for a, b in itertools.pairwise(values))


def test_model_layout_and_binarize_gives_binary_mlp():
    model = sb.self_binarizing_mlp(64, (32, 16), slope=5.0, seed=0)
    assert sb.set_slope(model, 7.0) == 5  # 3 weight quantizers, 2 activations
    reference = deploy.binary_mlp(64, (32, 16), seed=0)
    assert [type(m) for m in model] == [type(m) for m in reference]
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)  # same initialisation as the book's BNN
    assert sb.binarize(model) == 5
    assert not any(isinstance(m, sb.SlopeTanh) for m in model.modules())
    model.eval()
    reference.eval()
    x = torch.rand(20, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(x), reference(x))  # exactly the BNN forward pass


def test_binarized_weights_and_activations_are_pm1_and_export_is_bit_exact():
    split = data.digits(flatten=True)
    small = data.Split(split.x_train[:256], split.y_train[:256], split.x_test[:64], split.y_test[:64])
    model = sb.self_binarizing_mlp(64, (32, 32), seed=1)
    sb.fit_self_binarizing(model, small, epochs=1, lr=0.01, end=50.0, seed=1)
    model.eval()
    seen = []
    for layer in model:
        if isinstance(layer, qnn.QuantLinear):
            w = layer.quantized_weight()
            assert bool(((w == 1) | (w == -1)).all())
            layer.register_forward_hook(lambda m, inp, out: seen.append(m.quantized_input(inp[0])))
    with torch.no_grad():
        out = model(small.x_test)
    for acts in seen[1:]:  # the hidden activations entering layers 2 and 3
        assert bool(((acts == 1) | (acts == -1)).all())
    packed = deploy.export(model)
    assert torch.equal(packed(small.x_test), out)


def test_slope_grows_during_fit():
    split = data.digits(flatten=True)
    small = data.Split(split.x_train[:128], split.y_train[:128], split.x_test[:32], split.y_test[:32])
    model = sb.self_binarizing_mlp(64, (16,), seed=0)
    sb.fit_self_binarizing(model, small, epochs=2, batch_size=64, start=2.0, end=32.0, final_binarize=False)
    assert all(m.slope == pytest.approx(32.0) for m in model.modules() if isinstance(m, sb.SlopeTanh))


def test_comparison_layer():
    wq, iq, act = sb.comparison_layer(1, 1)
    assert isinstance(wq, sb.SlopeTanh) and isinstance(iq, sb.SlopeTanh) and isinstance(act, torch.nn.Identity)
    with pytest.raises(ValueError, match="w_bits"):
        sb.comparison_layer(2, 1)


@pytest.mark.parametrize("call,exc,name", [
    (lambda: sb.scaled_tanh([1.0], 1.0), TypeError, "x"),
    (lambda: sb.scaled_tanh(torch.tensor([float("nan")]), 1.0), ValueError, "x"),
    (lambda: sb.scaled_tanh(torch.ones(2), 0.0), ValueError, "slope"),
    (lambda: sb.scaled_tanh(torch.ones(2), -math.inf), ValueError, "slope"),
    (lambda: sb.SlopeTanh("a"), TypeError, "slope"),
    (lambda: sb.slope_schedule(11, 10), ValueError, "step"),
    (lambda: sb.slope_schedule(0, 0), ValueError, "total_steps"),
    (lambda: sb.slope_schedule(0, 10, end=-1.0), ValueError, "end"),
    (lambda: sb.set_slope("model", 1.0), TypeError, "model"),
    (lambda: sb.fit_self_binarizing(torch.nn.Linear(2, 2), data.digits(flatten=True)), ValueError, "SlopeTanh"),
    (lambda: sb.fit_self_binarizing(sb.self_binarizing_mlp(), "data"), TypeError, "data"),
])
def test_bad_input(call, exc, name):
    with pytest.raises(exc, match=name):
        call()
