"""Tests of qteach.papers.stochastic_weights_fpga: LFSR periods, exact draw frequencies, bit-exact layers."""

from __future__ import annotations

import pytest
import torch

from qteach import data
from qteach.papers import binaryconnect as bc
from qteach.papers import stochastic_weights_fpga as sw


@pytest.mark.parametrize("n", sorted(sw.MAXIMAL_TAPS))
def test_maximal_taps_have_full_period(n):
    assert sw.lfsr_period(n, sw.MAXIMAL_TAPS[n]) == 2**n - 1


def test_non_maximal_taps_have_short_period():
    # x^4 + x^2 + 1 is not primitive: period 6
    assert sw.lfsr_period(4, (4, 2)) == 6


def test_lfsr_step_hand_computed():
    # n = 4, taps (4, 3): state 0b1000 -> feedback b4 ^ b3 = 1 ^ 0 = 1 -> (0b10000 | 1) & 0xF = 0b0001
    assert sw.lfsr_step(0b1000, 4, (4, 3)) == 0b0001
    # state 0b0110 -> b4 ^ b3 = 0 ^ 1 = 1 -> 0b1101
    assert sw.lfsr_step(0b0110, 4, (4, 3)) == 0b1101
    assert sw.lfsr_sequence(0b1000, 4, (4, 3), 2).tolist() == [0b0001, 0b0010]


def test_full_period_visits_every_nonzero_state():
    states = sw.lfsr_sequence(1, 8, sw.MAXIMAL_TAPS[8], 255)
    assert sorted(states.tolist()) == list(range(1, 256))


def test_probability_codes_hand_computed():
    w = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    # p = clip((w+1)/2): 0, 0, .5, .75, 1, 1 ; times 15 and rounded: 0, 0, 8 (7.5 rounds to even 8), 11 (11.25), 15, 15
    assert sw.probability_codes(w, 4).tolist() == [0, 0, 8, 11, 15, 15]


@pytest.mark.parametrize("k", [3, 4, 6, 8])
def test_draw_frequency_is_exact_over_a_period(k):
    period = 2**k - 1
    for c in range(period + 1):
        w_b, _ = sw.sample_weights(torch.full((period,), c), k, seed=1)
        assert int((w_b > 0).sum()) == c


def test_sample_weights_continue_state():
    codes = torch.full((2, 5), 100)
    a, state = sw.sample_weights(codes, 8, seed=1)
    b, _ = sw.sample_weights(codes, 8, seed=state)
    both, _ = sw.sample_weights(torch.full((4, 5), 100), 8, seed=1)
    assert torch.equal(torch.cat([a, b]), both)


def test_stochastic_xnor_layer_bit_exact():
    g = torch.Generator().manual_seed(0)
    for n, k_in, m in [(3, 7, 5), (1, 64, 1), (8, 65, 9), (2, 130, 33)]:
        x = torch.randint(0, 2, (n, k_in), generator=g).float() * 2 - 1
        codes = torch.randint(0, 256, (m, k_in), generator=g)
        y, w_b = sw.stochastic_xnor_layer(x, codes, 8, seed=5)
        assert torch.equal(y, x @ w_b.T)


def test_with_lfsr_weights_uses_binary_weights_and_keeps_original():
    model = bc.binaryconnect_mlp(8, (6,), 3, mode="stochastic", seed=0)
    latent = model[0].weight.detach().clone()
    drawn = sw.with_lfsr_weights(model, 8, seed=3)
    assert torch.equal(model[0].weight, latent)
    assert drawn[0].weight_quantizer is None and set(drawn[0].weight.unique().tolist()) <= {-1.0, 1.0}
    expected, state = sw.sample_weights(sw.probability_codes(latent, 8), 8, 3)
    assert torch.equal(drawn[0].weight, expected)
    expected2, _ = sw.sample_weights(sw.probability_codes(model[3].weight, 8), 8, state)
    assert torch.equal(drawn[3].weight, expected2)
    x = data.digits(flatten=True).x_test[:4, :8]
    assert drawn(x).shape == (4, 3)


def test_rng_overhead_hand_computed():
    r = sw.rng_overhead(simd=4, pe=2, fan_in=8, k=4)
    assert r["extra_luts"] == 8 * 5 and r["extra_ffs"] == 8 * 4 and r["weight_bits_factor"] == 4
    assert r["lut_overhead"] == pytest.approx(40 / r["base_luts"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="taps"):
        sw.lfsr_step(1, 4, (5,))
    with pytest.raises(ValueError, match="state"):
        sw.lfsr_step(0, 4, (4, 3))
    with pytest.raises(ValueError, match="n"):
        sw.lfsr_period(1, (1,))
    with pytest.raises(TypeError, match="codes"):
        sw.sample_weights(torch.zeros(3), 8)
    with pytest.raises(ValueError, match="codes"):
        sw.sample_weights(torch.tensor([300]), 8)
    with pytest.raises(ValueError, match="k"):
        sw.probability_codes(torch.zeros(2), 1)
    with pytest.raises(TypeError, match="model"):
        sw.with_lfsr_weights("net", 8)
    with pytest.raises(ValueError, match="simd"):
        sw.rng_overhead(0, 1, 8, 4)
