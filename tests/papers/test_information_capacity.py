"""The information-capacity chapter's mechanism: exact filter entropies from counts, the entropy penalty (our
reconstruction of Ignatov & Ignatov 2020, whose method section could not be read), its gradient, the capacity of a
model, the results-page layer and fit, and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import comparison, data
from qteach import nn as qnn
from qteach.papers import information_capacity as ic


def _h(p):
    return -sum(q * math.log2(q) for q in (p, 1 - p) if q > 0)


# --- exact entropies ----------------------------------------------------------------------------------------

def test_binary_entropy_hand_values():
    h = ic.binary_entropy(torch.tensor([0, 1, 2, 3, 4]), 4)
    # -(1/4 log2 1/4 + 3/4 log2 3/4) = 0.5 + 0.311278... = 0.811278...
    expected = [0.0, 0.8112781244591328, 1.0, 0.8112781244591328, 0.0]
    assert h.dtype == torch.float64
    assert h.tolist() == pytest.approx(expected, abs=1e-15)


def test_filter_entropy_counts_sign_bits_with_sign_zero_plus_one():
    w = torch.tensor([[0.3, -0.1, 0.0, -2.0],      # +, -, + (zero), -  -> p = 1/2, 1 bit
                      [1.0, 2.0, 3.0, 0.5],        # all +               -> 0 bits
                      [-1.0, -2.0, -3.0, 0.0],     # one + (the zero)    -> 0.811 bits
                      [-1.0, -1.0, -1.0, -1.0]])   # all -               -> 0 bits
    assert ic.filter_entropy(w).tolist() == pytest.approx([1.0, 0.0, 0.8112781244591328, 0.0], abs=1e-15)


def test_filter_entropy_of_conv_filters_is_per_output_channel():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, 3, 3, generator=g)
    expected = [_h(float((w[f] >= 0).sum()) / 27) for f in range(5)]
    assert ic.filter_entropy(w).tolist() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (3, 64), (2, 5, 1, 1)])
def test_filter_entropy_bounds_and_symmetry(shape):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    h = ic.filter_entropy(w)
    assert bool(((h >= 0) & (h <= 1)).all())
    w_nonzero = torch.where(w == 0, torch.ones_like(w), w)
    assert torch.allclose(ic.filter_entropy(w_nonzero), ic.filter_entropy(-w_nonzero), atol=1e-15, rtol=0)  # flipping every sign


def test_capacity_is_mean_over_binary_filters_only():
    method = comparison.Method("x", "information_capacity", ((1, 1),), layer=ic.comparison_layer)
    torch.manual_seed(0)
    model = comparison.protocol_mlp(method, 1, 1, 64)
    filters = ic.binary_filters(model)
    assert len(filters) == 2 and all(f.shape == (128, 128) for f in filters)  # first/last layers stay real
    expected = torch.cat([ic.filter_entropy(f) for f in filters]).mean().item()
    assert ic.capacity(model) == pytest.approx(expected, abs=1e-15)
    real = nn.Sequential(qnn.QuantLinear(4, 4, weight_quantizer=qnn.MinMaxFakeQuantizer(8)), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="no binary layers"):
        ic.capacity(real)


# --- the penalty --------------------------------------------------------------------------------------------

def test_penalty_value_equals_counted_entropy():
    g = torch.Generator().manual_seed(2)
    w = [torch.randn(6, 40, generator=g) + 0.3, torch.randn(4, 2, 3, 3, generator=g)]
    h = torch.cat([ic.filter_entropy(x) for x in w])
    for target in (1.0, 0.5, 0.0):
        assert ic.entropy_penalty(w, target).item() == pytest.approx(((h - target) ** 2).mean().item(), abs=1e-5)


def test_penalty_hand_value_and_zero_at_target():
    w = torch.tensor([[0.5, 0.5, 0.5, -0.5], [0.5, -0.5, 0.5, -0.5]])  # H = 0.811 and 1.0
    expected = ((0.8112781244591328 - 1.0) ** 2 + 0.0) / 2
    assert ic.entropy_penalty(w, 1.0).item() == pytest.approx(expected, abs=1e-6)
    assert ic.entropy_penalty(w[1:], 1.0).item() == pytest.approx(0.0, abs=1e-12)


def test_penalty_gradient_pushes_towards_the_missing_sign_through_the_clipped_ste():
    w = torch.tensor([[0.5, 0.2, 0.9, -0.4, 3.0]], requires_grad=True)  # 4 of 5 positive, one beyond the clip
    ic.entropy_penalty(w, 1.0).backward()
    grad = w.grad[0]
    assert grad[4].item() == 0.0                       # |w| > 1: the clipped STE passes nothing
    assert bool((grad[:4] > 0).all())                  # descent lowers every weight: fewer +1, entropy up
    assert torch.allclose(grad[:4], grad[0].expand(4))  # the same push for every weight of the filter
    # d/dw (H - 1)^2 = 2 (H - 1) * log2((1 - p) / p) * (1/2) * (1/n) with p = 4/5, n = 5
    p, n = 0.8, 5
    expected = 2 * (_h(p) - 1) * math.log2((1 - p) / p) / (2 * n)
    assert grad[0].item() == pytest.approx(expected, rel=1e-5)


def test_penalty_gradient_is_finite_for_a_one_sign_filter():
    w = torch.full((2, 8), 0.5, requires_grad=True)
    ic.entropy_penalty(w, 1.0).backward()
    assert bool(torch.isfinite(w.grad).all()) and bool((w.grad > 0).all())


# --- results page and bad inputs ----------------------------------------------------------------------------

def test_comparison_layer_is_bnn_sign():
    weight, inp, act = ic.comparison_layer(1, 1)
    assert isinstance(weight, qnn.SignQuantizer) and inp is None and isinstance(act, qnn.SignQuantizer)
    with pytest.raises(ValueError, match="w_bits and a_bits"):
        ic.comparison_layer(2, 2)


def test_protocol_fit_controls_capacity():
    digits = data.digits(flatten=True, seed=0)
    protocol = comparison.Protocol("tiny", "tiny", "digits", lambda: digits, epochs=3, lr=3e-3, batch_size=128)
    method = comparison.Method("x", "information_capacity", ((1, 1),), layer=ic.comparison_layer)
    capacities = {}
    for lam in (0.0, 100.0):
        torch.manual_seed(0)
        model = comparison.protocol_mlp(method, 1, 1, 64)
        ic.protocol_fit(model, digits, 0, protocol, lam=lam, target=0.3)
        capacities[lam] = ic.capacity(model)
    assert capacities[0.0] > 0.95 and capacities[100.0] < 0.6


@pytest.mark.parametrize("call, error, name", [
    (lambda: ic.binary_entropy(torch.tensor([0.5]), 4), TypeError, "k"),
    (lambda: ic.binary_entropy(torch.tensor([5]), 4), ValueError, "k"),
    (lambda: ic.binary_entropy(torch.tensor([1]), 0), ValueError, "n"),
    (lambda: ic.filter_entropy(torch.ones(4)), ValueError, "w"),
    (lambda: ic.filter_entropy(torch.tensor([[1, 2]])), TypeError, "w"),
    (lambda: ic.filter_entropy(torch.tensor([[float("nan"), 1.0]])), ValueError, "w"),
    (lambda: ic.entropy_penalty([], 1.0), ValueError, "weights"),
    (lambda: ic.entropy_penalty(torch.ones(4), 1.0), ValueError, "weights"),
    (lambda: ic.entropy_penalty(torch.ones(2, 4), 1.5), ValueError, "target"),
    (lambda: ic.entropy_penalty(torch.ones(2, 4), -0.1), ValueError, "target"),
    (lambda: ic.binary_filters("model"), TypeError, "model"),
    (lambda: ic.protocol_fit(nn.Linear(2, 2), None, 0, comparison.DIGITS), ValueError, "binary layers"),
    (lambda: ic.protocol_fit(nn.Linear(2, 2), None, 0, comparison.DIGITS, lam=-1.0), ValueError, "lam"),
])
def test_bad_inputs(call, error, name):
    with pytest.raises(error, match=name):
        call()
