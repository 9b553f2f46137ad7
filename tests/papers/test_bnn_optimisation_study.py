"""The optimisation study's pieces: the official STE with and without gradient clipping, the weight clipping, the
exponential learning-rate decay, the two-stage switch, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import data, train
from qteach import nn as qnn
from qteach.papers import bnn_optimisation_study as bo


def official_deterministic_binary_op(w, gradient_clipping=True):
    """Transcription of models/binaryconnect.py lines 68-79 (mi-lad/studying-binary-neural-networks):
    ``tf.sign(tf.clip_by_value(w, -1, 1))`` with Sign's gradient overridden by Identity (lines 70-72), or
    ``tf.sign(w)`` with the identity gradient (pure STE, lines 77-79). tf.clip_by_value passes the gradient where
    -1 <= w <= 1. (tf.sign(0) = 0; our sign(0) = +1, which the tests avoid.)"""
    x = torch.clamp(w, -1.0, 1.0) if gradient_clipping else w
    return x + (torch.sign(x) - x).detach()


def official_lr(epoch, start, finish, num_epochs):
    """Transcription of optimisers.py lines 26-30: decay_rate = (finish/start)**(1/NUM_EPOCHS), staircase per
    epoch: start * decay_rate ** floor(step / steps_per_epoch)."""
    rate = (finish / start) ** (1.0 / num_epochs)
    return start * rate ** epoch


@pytest.mark.parametrize("clipping", [True, False])
def test_ste_matches_the_official_transcription(clipping):
    g = torch.Generator().manual_seed(0)
    w = (3 * torch.randn(7, 13, generator=g)).requires_grad_()
    w_ref = w.detach().clone().requires_grad_()
    model = bo.binary_mlp(13, (7,), 3, gradient_clipping=clipping)
    quantizer = model[0].weight_quantizer
    upstream = torch.randn(7, 13, generator=g)
    (quantizer(w) * upstream).sum().backward()
    (official_deterministic_binary_op(w_ref, clipping) * upstream).sum().backward()
    assert torch.equal(quantizer(w.detach()), torch.sign(w.detach()))
    assert torch.equal(w.grad, w_ref.grad)


def test_hand_computed_gradients():
    w = torch.tensor([-1.5, -1.0, -0.2, 0.3, 1.0, 2.0], requires_grad=True)
    q = qnn.SignQuantizer(clip=1.0)
    q(w).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    model = bo.binary_mlp(6, (4,), 2)
    bo.set_gradient_clipping(model, False)
    assert all(m.weight_quantizer.clip is None for m in model.modules() if isinstance(m, qnn.QuantLinear))
    bo.set_gradient_clipping(model, True)
    assert all(m.weight_quantizer.clip == 1.0 for m in model.modules() if isinstance(m, qnn.QuantLinear))


def test_exponential_decay_matches_official():
    for e in range(10):
        assert math.isclose(bo.exponential_decay_lr(e, 3e-3, 2e-6, 10), official_lr(e, 3e-3, 2e-6, 10), rel_tol=1e-12)
    assert bo.exponential_decay_lr(0, 0.1, 0.01, 8) == 0.1
    assert math.isclose(bo.exponential_decay_lr(4, 0.1, 0.01, 8), 0.1 * 10 ** -0.5)
    assert bo.exponential_decay_lr(5, 0.1, 0.1, 8) == 0.1


def test_binary_mlp_layout_and_glorot_init():
    model = bo.binary_mlp(64, (128, 128), 10, seed=3)
    linears = [m for m in model.modules() if isinstance(m, qnn.QuantLinear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 128), (128, 128), (128, 10)]
    bound = math.sqrt(6 / (128 + 128))
    assert linears[1].weight.abs().max() <= bound and linears[1].weight.abs().max() > 0.9 * bound
    assert torch.equal(bo.binary_mlp(64, seed=1)[0].weight, bo.binary_mlp(64, seed=1)[0].weight)
    assert bo.binary_mlp(64, (8,), init_range=1.0)[0].weight.abs().max() > 0.9


def _tiny():
    d = data.blobs(num_samples=200, num_features=8, num_classes=3, seed=0)
    return d


def test_fit_sets_the_schedule_and_clips_weights():
    d = _tiny()
    model = bo.binary_mlp(8, (16,), 3, gradient_clipping=False, init_range=1.0)
    seen = []
    bo.fit_with_schedule(model, d, "sgd", lr=1.0, lr_finish=0.01, epochs=3, weight_clipping=True, batch_size=50)
    for m in model.modules():
        if isinstance(m, qnn.QuantLinear):
            seen.append(m.weight.abs().max().item())
    assert max(seen) <= 1.0
    model = bo.binary_mlp(8, (16,), 3, gradient_clipping=False, init_range=1.0)
    bo.fit_with_schedule(model, d, "adam", lr=0.5, epochs=3, weight_clipping=False, batch_size=50)
    assert max(m.weight.abs().max().item() for m in model.modules() if isinstance(m, qnn.QuantLinear)) > 1.0


def test_learning_rate_follows_the_decay():
    d = _tiny()
    model = bo.binary_mlp(8, (16,), 3)
    lrs = []
    original = train.fit

    def spy(*args, **kwargs):
        opt_factory, after = kwargs["optimizer"], kwargs["after_step"]

        def factory(params):
            opt = opt_factory(params)
            lrs.append(opt)
            return opt

        def after_step(m):
            after(m)
            lrs.append(lrs[0].param_groups[0]["lr"])

        kwargs["optimizer"], kwargs["after_step"] = factory, after_step
        return original(*args, **kwargs)

    bo.train.fit = spy
    try:
        bo.fit_with_schedule(model, d, "adam", lr=0.1, lr_finish=0.001, epochs=2, batch_size=100)
    finally:
        bo.train.fit = original
    steps = lrs[1:]  # 150 training samples, batch 100: 2 steps per epoch
    assert steps == pytest.approx([0.1, 0.01, 0.01, 0.01])


def test_two_stage_switches_clipping_on():
    d = _tiny()
    model = bo.binary_mlp(8, (16,), 3, init_range=1.0)
    history = bo.two_stage_fit(model, d, (2, 1), (0.5, 0.01), batch_size=50)
    assert len(history.test_accuracy) == 3
    assert all(m.weight_quantizer.clip == 1.0 for m in model.modules() if isinstance(m, qnn.QuantLinear))
    assert max(m.weight.abs().max().item() for m in model.modules() if isinstance(m, qnn.QuantLinear)) <= 1.0


def test_comparison_layer_and_fit():
    wq, iq, act = bo.comparison_layer()
    assert isinstance(wq, qnn.SignQuantizer) and wq.clip is None and iq is None
    assert isinstance(act, torch.nn.ReLU)
    with pytest.raises(ValueError, match="w_bits"):
        bo.comparison_layer(2, 32)
    from qteach import comparison
    method = comparison.Method("two-stage", "bnn_optimisation_study", ((1, 32),), layer=bo.comparison_layer,
                               fit=bo.comparison_fit)
    d = _tiny()
    model = comparison.protocol_mlp(method, 1, 32, 8)
    proto = comparison.Protocol("t", "t", "t", lambda: d, epochs=3, lr=3e-3, batch_size=50)
    history = bo.comparison_fit(model, d, 0, proto)
    assert len(history.test_accuracy) == 3


@pytest.mark.parametrize("call,match", [
    (lambda: bo.exponential_decay_lr(-1, 0.1, 0.01, 5), "epoch"),
    (lambda: bo.exponential_decay_lr(0, 0.0, 0.01, 5), "start"),
    (lambda: bo.exponential_decay_lr(0, 0.1, -1.0, 5), "finish"),
    (lambda: bo.exponential_decay_lr(0, 0.1, 0.01, 0), "epochs"),
    (lambda: bo.set_gradient_clipping("model", True), "model"),
    (lambda: bo.set_gradient_clipping(bo.binary_mlp(4, (4,), 2), 1), "on"),
    (lambda: bo.binary_mlp(4, (4,), 2, gradient_clipping="yes"), "gradient_clipping"),
    (lambda: bo.fit_with_schedule(bo.binary_mlp(8, (4,), 3), _tiny(), "rmsprop"), "optimiser"),
    (lambda: bo.fit_with_schedule(bo.binary_mlp(8, (4,), 3), _tiny(), "adam", lr=0), "lr"),
    (lambda: bo.fit_with_schedule(bo.binary_mlp(8, (4,), 3), _tiny(), "adam", lr_finish=0), "lr_finish"),
    (lambda: bo.two_stage_fit(bo.binary_mlp(8, (4,), 3), _tiny(), epochs=3), "epochs"),
    (lambda: bo.two_stage_fit(bo.binary_mlp(8, (4,), 3), _tiny(), lr=0.1), "lr"),
])
def test_bad_input(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
