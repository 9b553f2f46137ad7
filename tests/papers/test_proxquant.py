"""Tests of qteach.papers.proxquant: the W-shaped regularizer, its prox, the schedule, training, the toy problem.

The paper's text beyond its abstract, introduction and Figure 1 caption could not be read; the official code
(github.com/allenbai01/ProxQuant at commit 1a9240e, files reg.py and main_binary_reg.py) defines the behaviour
and is transcribed line by line below.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import comparison, data
from qteach import nn as qnn
from qteach.papers import proxquant as pq

# --- line-by-line transcriptions of the official code (allenbai01/ProxQuant) ----------------------------------


def official_prox_binary(p: torch.Tensor, reg: float) -> torch.Tensor:
    """reg.py lines 279-281, BinOp.prox_operator(reg, reg_type='binary'), on one tensor."""
    p_sign, p_abs = p.sign(), p.abs()
    return p_sign * (F.relu((p_abs - 1).abs() - reg)
                     * (p_abs - 1).sign() + 1)


def official_binary_reg(w: torch.Tensor) -> torch.Tensor:
    """reg.py line 23, binary_reg (one layer's term)."""
    return torch.min(torch.abs(w - 1), torch.abs(w + 1)).mean()


def official_soft_threshold(w, w_hat, reg=0.0):
    """reg.py lines 75-76, soft_threshold."""
    w_sign, w_res = (w - w_hat).sign(), (w - w_hat).abs()
    return w_hat + w_sign * F.relu(w_res - reg)


def official_br(reg_rate: float, epoch: int) -> float:
    """main_binary_reg.py line 250: br = args.reg_rate * epoch (projection_mode 'prox')."""
    return reg_rate * epoch


# --- the regularizer and its prox ------------------------------------------------------------------------------


def test_regularizer_hand_values():
    theta = torch.tensor([1.0, -1.0, 0.0, 0.5, -0.25, 2.0])
    # min(|t - 1|, |t + 1|): 0, 0, 1, 0.5, 0.75, 1
    assert pq.binary_regularizer(theta).item() == pytest.approx(3.25)
    assert pq.binary_regularizer(torch.tensor([1.0, -1.0, 1.0])).item() == 0.0


def test_regularizer_equals_official_mean_times_count():
    w = torch.randn(7, 9, generator=torch.Generator().manual_seed(0))
    assert pq.binary_regularizer(w).item() == pytest.approx(official_binary_reg(w).item() * w.numel(), rel=1e-6)


def test_prox_hand_values():
    theta = torch.tensor([0.2, -0.7, 1.5, -1.05, 0.95, 1.0, -1.0])
    expected = torch.tensor([0.3, -0.8, 1.4, -1.0, 1.0, 1.0, -1.0])
    assert torch.allclose(pq.prox_binary(theta, 0.1), expected)
    assert torch.allclose(pq.prox_binary(theta, 0.0), theta, atol=1e-7, rtol=0)  # up to float rounding
    assert torch.equal(pq.prox_binary(theta, 5.0), torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0]))


@pytest.mark.parametrize("strength", [0.0, 1e-3, 0.1, 0.5, 1.0, 3.0])
def test_prox_equals_official_code(strength):
    theta = torch.randn(1000, generator=torch.Generator().manual_seed(1)) * 1.5
    theta = theta[theta != 0]  # at exactly 0 both signs are minimisers; the official code leaves 0 in place
    assert torch.equal(pq.prox_binary(theta, strength), official_prox_binary(theta, strength))
    # and the official soft_threshold toward the sign (reg.py line 73) is the same map
    assert torch.allclose(pq.prox_binary(theta, strength), official_soft_threshold(theta, theta.sign(), strength))


def test_prox_is_the_argmin():
    """The closed form minimises s R(x) + (x - theta)^2 / 2, checked on a fine grid per coordinate."""
    grid = torch.linspace(-2, 2, 40001, dtype=torch.float64)
    r_grid = torch.minimum((grid - 1).abs(), (grid + 1).abs())
    for theta in (-1.7, -0.6, -0.05, 0.3, 0.9, 1.2):
        for s in (0.05, 0.4, 1.5):
            objective = s * r_grid + 0.5 * (grid - theta) ** 2
            best = grid[objective.argmin()].item()
            got = pq.prox_binary(torch.tensor([theta], dtype=torch.float64), s).item()
            assert got == pytest.approx(best, abs=2e-4)


def test_prox_never_increases_regularizer_and_moves_at_most_strength():
    theta = torch.randn(500, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for s in (0.01, 0.2, 0.7):
        out = pq.prox_binary(theta, s)
        assert ((out - theta).abs() <= s + 1e-12).all()
        r_in = torch.minimum((theta - 1).abs(), (theta + 1).abs())
        r_out = torch.minimum((out - 1).abs(), (out + 1).abs())
        assert torch.allclose(r_out, (r_in - s).clamp(min=0))


def test_schedule_equals_official():
    for epoch in (0, 1, 7, 200):
        assert pq.reg_strength(epoch, 1e-4) == official_br(1e-4, epoch)
    assert pq.reg_strength(0, 5.0) == 0.0


# --- layers and training -------------------------------------------------------------------------------------


def test_binarize_at_eval():
    q = pq.BinarizeAtEval()
    w = torch.tensor([0.3, -0.2, 0.0])
    assert torch.equal(q.train()(w), w)
    assert q.eval()(w).tolist() == [1.0, -1.0, 1.0]


def test_prox_step_and_hard_quantize():
    torch.manual_seed(0)
    layer = qnn.QuantLinear(4, 3, weight_quantizer=pq.BinarizeAtEval())
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), layer)
    first = model[0].weight.detach().clone()
    with torch.no_grad():
        layer.weight.mul_(3)
    before = layer.weight.detach().clone()
    pq.prox_step(model, 0.1)
    assert torch.equal(layer.weight, official_prox_binary(before, 0.1).clamp(-1, 1))
    assert torch.equal(model[0].weight, first)  # full-precision layers untouched
    pq.hard_quantize(model)
    assert set(layer.weight.unique().tolist()) <= {-1.0, 1.0}
    assert not layer.weight.requires_grad and model[0].weight.requires_grad


def test_fit_proxquant_ends_binary_and_records():
    digits = comparison.split(comparison.DIGITS)
    torch.manual_seed(0)
    model = comparison.protocol_mlp(comparison.Method("PQ", "proxquant", ((1, 32),), layer=pq.comparison_layer),
                                    1, 32)
    recorder = pq.EpochRecorder(11)
    history = pq.fit_proxquant(model, digits, epochs=3, lr=3e-3, batch_size=128, reg_rate=3.0, seed=0,
                               recorder=recorder)
    assert len(history.test_accuracy) == 3
    assert pq.binary_fraction(model) == 1.0
    assert len(recorder.binary) == 3 and len(recorder.flips) == 2
    assert recorder.binary[-1] == 1.0
    assert history.test_accuracy[-1] > 0.5


def test_comparison_layer():
    weight, inputs, activation = pq.comparison_layer(1, 32)
    assert isinstance(weight, pq.BinarizeAtEval) and inputs is None and isinstance(activation, torch.nn.ReLU)
    with pytest.raises(ValueError, match="w_bits"):
        pq.comparison_layer(2, 32)
    with pytest.raises(ValueError, match="w_bits"):
        pq.comparison_layer(1, 1)


def test_protocol_fit_runs_the_protocol():
    small = comparison.Protocol("tiny", "tiny", "digits", comparison.DIGITS.load, epochs=3, lr=3e-3, batch_size=256)
    split = data.digits(flatten=True, seed=0)
    model = comparison.protocol_mlp(comparison.Method("PQ", "proxquant", ((1, 32),), layer=pq.comparison_layer),
                                    1, 32)
    history = pq.protocol_fit(model, split, 0, small)
    assert len(history.test_accuracy) == 3 and pq.binary_fraction(model) == 1.0


# --- the toy problem of Figure 1b -----------------------------------------------------------------------------


def test_toy_lazy_hand_values_and_identical_on_both_functions():
    path = pq.toy_trajectory("lazy", 1, x0=0.2, lr=0.05, steps=8)
    assert path[:6] == [0.2, 0.15, 0.1, 0.05, 0.0, -0.05]
    # f_1 and f_-1 have the same derivative at +-1: the lazy (BinaryConnect) iterates coincide
    assert pq.toy_trajectory("lazy", 1, steps=200) == pq.toy_trajectory("lazy", -1, steps=200)


def test_toy_lazy_keeps_flipping_proxquant_converges():
    for s in (1, -1):
        lazy = pq.toy_trajectory("lazy", s, steps=200)
        signs = [1 if x >= 0 else -1 for x in lazy[-50:]]
        assert len(set(signs)) == 2  # still flipping after 150 steps
        prox = pq.toy_trajectory("proxquant", s, steps=200)
        assert prox[-1] == -s and all(x == -s for x in prox[-50:])  # the right minimiser, and stays


def test_toy_proxquant_first_steps_by_hand():
    # s = 1: f'(x) = sign(x + 0.5) = +1 near 0.2; strengths lr * reg_rate * t = 0, 0.005, 0.01
    path = pq.toy_trajectory("proxquant", 1, x0=0.2, lr=0.05, steps=3, reg_rate=0.1)
    assert path == pytest.approx([0.2, 0.15, 0.105, 0.065])


# --- bad input ---------------------------------------------------------------------------------------------


def test_bad_input():
    with pytest.raises(TypeError, match="theta"):
        pq.prox_binary([0.1], 0.1)
    with pytest.raises(ValueError, match="strength"):
        pq.prox_binary(torch.tensor([0.1]), -0.1)
    with pytest.raises(ValueError, match="theta"):
        pq.binary_regularizer(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="epoch"):
        pq.reg_strength(-1, 1.0)
    with pytest.raises(ValueError, match="reg_rate"):
        pq.reg_strength(1, -1.0)
    with pytest.raises(TypeError, match="model"):
        pq.prox_step("model", 0.1)
    with pytest.raises(TypeError, match="freeze"):
        pq.hard_quantize(torch.nn.Linear(2, 2), freeze=1)
    with pytest.raises(ValueError, match="method"):
        pq.toy_trajectory("eager", 1)
    with pytest.raises(ValueError, match="s must"):
        pq.toy_trajectory("lazy", 0)
    with pytest.raises(TypeError, match="x0"):
        pq.toy_trajectory("lazy", 1, x0="0.2")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        pq.EpochRecorder(0)
    with pytest.raises(TypeError, match="data"):
        pq.fit_proxquant(torch.nn.Linear(2, 2), "data")
    digits = data.digits(flatten=True, seed=0)
    with pytest.raises(ValueError, match="freeze_epoch"):
        pq.fit_proxquant(torch.nn.Linear(64, 10), digits, epochs=2, freeze_epoch=3)
