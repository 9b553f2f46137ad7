"""Fine-grained ternary quantization: hand-computed groups, the grouping layout, invariants, cost, gradients."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from qteach.data import weight_samples
from qteach.nn import QuantConv2d, QuantLinear
from qteach.papers import fine_grained_ternary as fgq
from qteach.papers import ternary_weight_networks as twn

W8 = torch.tensor([[0.1, -0.5, 1.0, -2.0, 0.3, 0.3, -0.2, 0.9]])


# ------------------------------------------------------------------------------------- hand-computed values

def test_two_groups_by_hand_optimal_rule():
    w_t, alpha, delta = fgq.group_ternary(W8, group_size=4)
    # group 1 = [0.1, -0.5, 1.0, -2.0]: sorted magnitudes 2, 1, 0.5, 0.1; S_k^2 / k = 4, 4.5, 4.083, 3.24
    #   -> keep k = 2, Delta = 0.5 (the 3rd magnitude), alpha = 3 / 2 = 1.5
    # group 2 = [0.3, 0.3, -0.2, 0.9]: sorted 0.9, 0.3, 0.3, 0.2; k = 1: 0.81, k = 2 not selectable (tie 0.3/0.3),
    #   k = 3: 1.5^2 / 3 = 0.75, k = 4: 1.7^2 / 4 = 0.7225 -> keep k = 1, Delta = 0.3, alpha = 0.9
    assert torch.equal(w_t, torch.tensor([[0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 1.0]]))
    assert torch.allclose(alpha, torch.tensor([[1.5] * 4 + [0.9] * 4]))
    assert torch.allclose(delta, torch.tensor([[0.5] * 4 + [0.3] * 4]))
    # errors: 0.01 + 3 * 0.25 = 0.76 and 0.09 + 0.09 + 0.04 + 0 = 0.22
    assert fgq.approximation_error(W8, 4).item() == pytest.approx(0.98)


def test_one_group_per_layer_by_hand_is_worse():
    # the whole row as one group: sorted 2, 1, 0.9, 0.5, 0.3, 0.3, 0.2, 0.1; S_k^2/k = 4, 4.5, 5.07, 4.84, -, 4.17,
    # 3.86, 3.51 -> k = 3, Delta = 0.5, alpha = 3.9 / 3 = 1.3
    w_t, alpha, delta = fgq.group_ternary(W8, group_size=8)
    assert torch.equal(w_t, torch.tensor([[0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 1.0]]))
    assert alpha[0, 0].item() == pytest.approx(1.3) and delta[0, 0].item() == pytest.approx(0.5)
    # error 0.01 + 0.25 + 0.09 + 0.49 + 0.09 + 0.09 + 0.04 + 0.16 = 1.22 > 0.98 with two groups
    assert fgq.approximation_error(W8, 8).item() == pytest.approx(1.22)


def test_twn_rule_per_group_by_hand():
    w_t, alpha, delta = fgq.group_ternary(W8, group_size=4, rule="twn")
    # group 1: E|W| = 0.9 -> Delta = 0.63, survivors 1.0 and -2.0, alpha 1.5
    # group 2: E|W| = 1.7 / 4 = 0.425 -> Delta = 0.2975, survivors 0.3, 0.3, 0.9, alpha = 0.5
    assert torch.equal(w_t, torch.tensor([[0.0, 0.0, 1.0, -1.0, 1.0, 1.0, 0.0, 1.0]]))
    assert torch.allclose(delta, torch.tensor([[0.63] * 4 + [0.2975] * 4]))
    assert torch.allclose(alpha, torch.tensor([[1.5] * 4 + [0.5] * 4]))
    # group 2 error 0.04 + 0.04 + 0.04 + 0.16 = 0.28 > 0.22 of the optimal rule
    assert fgq.approximation_error(W8, 4, rule="twn").item() == pytest.approx(0.76 + 0.28)


def test_asymmetric_scales_by_hand():
    w = torch.tensor([[1.0, 0.8, -0.1, -3.0]])
    # positive magnitudes 1.0, 0.8 (others 0): k = 2 wins (1.62 > 1) -> Delta_p = 0, alpha_p = 0.9
    # negative magnitudes 3.0, 0.1: k = 1 wins (9 > 4.8) -> Delta_n = 0.1, alpha_n = 3.0
    q = fgq.fgq_quantize(w, 4, asymmetric=True)
    assert torch.allclose(q, torch.tensor([[0.9, 0.9, 0.0, -3.0]]))
    assert fgq.approximation_error(w, 4, asymmetric=True).item() == pytest.approx(0.03)
    # symmetric: sorted 3, 1, 0.8, 0.1 -> k = 1 (9 > 8 > 7.68), only -3 survives: error 1 + 0.64 + 0.01
    assert fgq.approximation_error(w, 4).item() == pytest.approx(1.65)


def test_all_zero_group_gives_zero_scale():
    w = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.5, 0.0]])
    w_t, alpha, _ = fgq.group_ternary(w, 4)
    assert torch.equal(w_t[0, :4], torch.zeros(4)) and torch.equal(alpha[0, :4], torch.zeros(4))
    # second group [1, -1, 0.5, 0]: S_k^2 / k = 1, 2, 2.5^2 / 3 = 2.083 -> keep three, alpha = 2.5 / 3
    assert torch.allclose(fgq.fgq_quantize(w, 4)[0, 4:], torch.tensor([5 / 6, -5 / 6, 5 / 6, 0.0]))


# --------------------------------------------------------------------------------------------------- layout

def test_groups_run_along_input_channels_of_one_output_and_position():
    o, c, k = 2, 8, 2
    w = torch.zeros(o, c, 1, k)
    for oi, ci, ki in itertools.product(range(o), range(c), range(k)):
        w[oi, ci, 0, ki] = 100 * oi + 10 * ki + ci
    groups, valid = fgq.group_weights(w, 4)
    assert groups.shape == (o * k * 2, 4) and bool(valid.all())
    # first group: output 0, kernel position 0, input channels 0..3; second: channels 4..7; then position 1
    assert groups[0].tolist() == [0, 1, 2, 3] and groups[1].tolist() == [4, 5, 6, 7]
    assert groups[2].tolist() == [10, 11, 12, 13] and groups[4].tolist() == [100, 101, 102, 103]
    assert torch.equal(fgq.ungroup_weights(groups, w.shape, 4), w)


def test_ragged_last_group_is_padded_and_masked():
    w = torch.arange(1.0, 13.0).reshape(2, 6)
    groups, valid = fgq.group_weights(w, 4)
    assert groups.tolist() == [[1, 2, 3, 4], [5, 6, 0, 0], [7, 8, 9, 10], [11, 12, 0, 0]]
    assert valid.tolist() == [[True] * 4, [True, True, False, False]] * 2
    assert torch.equal(fgq.ungroup_weights(groups, w.shape, 4), w)
    # the padding does not count in a group's mean: TWN rule on [5, 6] is 0.7 * 5.5
    _, _, delta = fgq.group_ternary(w, 4, rule="twn")
    assert delta[0, 4].item() == pytest.approx(0.7 * 5.5)


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3, 3), (3, 1, 2, 2), (2, 9, 1)])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 16])
def test_group_round_trip(shape, n):
    w = weight_samples(shape, seed=1)
    groups, valid = fgq.group_weights(w, n)
    assert groups.shape[1] == n and int(valid.sum()) == w.numel()
    assert torch.equal(fgq.ungroup_weights(groups, shape, n), w)


# -------------------------------------------------------------------------------------------------- invariants

def test_smaller_nested_groups_never_increase_the_error():
    w = weight_samples((16, 64), "laplace", seed=2).double()
    errors = [fgq.approximation_error(w, n).item() for n in (1, 2, 4, 8, 16, 32, 64)]
    assert errors[0] == 0.0  # one weight per group: alpha = |W_i| is exact
    assert all(a <= b + 1e-12 for a, b in zip(errors, errors[1:]))
    assert errors[-1] > 2 * errors[2]


def test_optimal_rule_matches_brute_force_and_beats_the_rule_of_thumb():
    w = weight_samples((6, 12), "gaussian", seed=3).double()
    groups, _ = fgq.group_weights(w, 4)
    q = fgq.group_weights(fgq.fgq_quantize(w, 4), 4)[0]
    for g, qg in zip(groups, q):
        best = min(twn.approximation_error(g, d).item() for d in [0.0, *g.abs().tolist()])
        assert ((g - qg) ** 2).sum().item() == pytest.approx(best, abs=1e-12)
    assert fgq.approximation_error(w, 4).item() <= fgq.approximation_error(w, 4, rule="twn").item()
    assert fgq.approximation_error(w, 4, asymmetric=True).item() <= fgq.approximation_error(w, 4).item()


def test_one_group_per_row_is_twn_optimal_threshold_per_row():
    w = weight_samples((3, 20), "laplace", seed=4).double()
    w_t, alpha, delta = fgq.group_ternary(w, 20)
    for row in range(3):
        d, err = twn.optimal_threshold(w[row])
        assert delta[row, 0].item() == pytest.approx(d.item())
        assert ((w[row] - alpha[row] * w_t[row]) ** 2).sum().item() == pytest.approx(err.item())


def test_values_and_dtype():
    w = weight_samples((8, 5, 3, 3), seed=5)
    w_t, alpha, delta = fgq.group_ternary(w, 4)
    assert w_t.dtype == w.dtype and set(w_t.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert bool((alpha >= 0).all()) and bool((delta >= 0).all())
    # weights above their group's threshold keep their sign
    assert torch.equal(w_t != 0, w.abs() > delta)
    assert torch.equal(torch.sign(w)[w_t != 0], w_t[w_t != 0])


# ------------------------------------------------------------------------------------------------------ cost

def test_multiplications_eliminated_are_the_abstracts_numbers():
    assert fgq.multiplications_eliminated(4) == 0.75          # "eliminating 75% of all multiplications"
    assert fgq.multiplications_eliminated(64) == pytest.approx(0.984375)  # "we eliminate ~99%"
    assert fgq.bits_per_weight(4) == 2 + 32 / 4 and fgq.bits_per_weight(64, 8, asymmetric=True) == 2.25


def test_grouped_linear_needs_one_multiplication_per_group():
    w = weight_samples((5, 10), seed=6)
    x = weight_samples((3, 10), seed=7)
    w_t, alpha, _ = fgq.group_ternary(w, 4)
    y, mults = fgq.grouped_ternary_linear(x, w_t, alpha, 4)
    assert torch.allclose(y, F.linear(x, alpha * w_t), atol=1e-6)
    assert mults == 3 * 5 * 3  # batch x outputs x ceil(10 / 4) groups, instead of 3 * 5 * 10


# ------------------------------------------------------------------------------------------------- quantizer

def test_quantizer_forward_and_straight_through_backward():
    q = fgq.FineGrainedTernaryQuantizer(group_size=4)
    assert q.precision == 2
    w = weight_samples((6, 8), seed=8).requires_grad_()
    out = q(w)
    assert torch.equal(out, fgq.fgq_quantize(w.detach(), 4))
    g = torch.randn(6, 8)
    out.backward(g)
    assert torch.equal(w.grad, g)


def test_quantizer_in_layers():
    lin = QuantLinear(12, 4, weight_quantizer=fgq.FineGrainedTernaryQuantizer(4, asymmetric=True))
    conv = QuantConv2d(8, 3, 3, padding=1, weight_quantizer=fgq.FineGrainedTernaryQuantizer(8, rule="twn"))
    x = torch.randn(2, 12)
    assert torch.allclose(lin(x), F.linear(x, fgq.fgq_quantize(lin.weight, 4, asymmetric=True), lin.bias))
    x = torch.randn(1, 8, 5, 5)
    ref = F.conv2d(x, fgq.fgq_quantize(conv.weight, 8, rule="twn"), conv.bias, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-6)
    w_t, _, _ = fgq.group_ternary(conv.weight.detach(), 8, "twn")
    assert bool((w_t == 0).any())
    assert "group_size=8" in repr(conv.weight_quantizer)


# ------------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, error, name", [
    (dict(group_size=0), ValueError, "group_size"),
    (dict(group_size=2.0), TypeError, "group_size"),
    (dict(rule="mean"), ValueError, "rule"),
    (dict(rule="twn", asymmetric=True), ValueError, "asymmetric"),
    (dict(asymmetric=1), TypeError, "asymmetric"),
])
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        fgq.group_ternary(W8, **{"group_size": 4, **kwargs})
    with pytest.raises(error, match=name):
        fgq.FineGrainedTernaryQuantizer(**{"group_size": 4, **kwargs})


@pytest.mark.parametrize("w, error", [
    (torch.tensor([1.0, 2.0]), ValueError),
    (torch.ones(2, 2, dtype=torch.int64), TypeError),
    (torch.tensor([[1.0, float("nan")]]), ValueError),
    (torch.tensor([[1.0, float("inf")]]), ValueError),
    ([[1.0, 2.0]], TypeError),
])
def test_bad_weights(w, error):
    with pytest.raises(error, match="w"):
        fgq.group_ternary(w, 2)


def test_bad_grouped_linear_input():
    w_t, alpha, _ = fgq.group_ternary(W8, 4)
    with pytest.raises(ValueError, match="x"):
        fgq.grouped_ternary_linear(torch.randn(2, 7), w_t, alpha, 4)
    with pytest.raises(ValueError, match="w_t"):
        fgq.grouped_ternary_linear(torch.randn(2, 8), W8, alpha, 4)
    with pytest.raises(ValueError, match="alpha"):
        fgq.grouped_ternary_linear(torch.randn(2, 8), w_t, alpha[:, :4], 4)
