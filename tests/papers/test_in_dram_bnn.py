"""The in-DRAM BNN layer: row primitives by truth table, bit-exact XNOR-popcount against qteach.bitops, the
command counts of the cost model against the functional model, the error model, and bad inputs."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from qteach import bitops, hw
from qteach import nn as qnn
from qteach.nn import SignQuantizer
from qteach.papers import in_dram_bnn as d


def _signs(shape, g):
    return torch.where(torch.rand(*shape, generator=g) < 0.5, -1.0, 1.0)


def test_maj_truth_table_and_and_or():
    cols = torch.tensor(list(itertools.product((False, True), repeat=3)))
    a, b, c = cols[:, 0], cols[:, 1], cols[:, 2]
    ctr = d.RowCounter()
    assert d.maj(a, b, c, ctr).tolist() == [False, False, False, True, False, True, True, True]
    assert torch.equal(d.maj(a, b, torch.zeros_like(a), ctr), a & b)          # AND = MAJ(a, b, 0)
    assert torch.equal(d.maj(a, b, torch.ones_like(a), ctr), a | b)           # OR = MAJ(a, b, 1)
    assert (ctr.aap, ctr.tra) == (12, 3)                                      # 4 AAPs per TRA-based op (D1)


def test_xnor_rows_truth_table_and_cost():
    a = torch.tensor([False, False, True, True])
    b = torch.tensor([False, True, False, True])
    ctr = d.RowCounter()
    assert d.xnor_rows(a, b, ctr).tolist() == [True, False, False, True]
    assert (ctr.aap, ctr.tra) == (16, 3)                                      # 3 TRAs (12 AAPs) + 2 NOTs (4)


def test_counter_bits_hand_values():
    assert [d.counter_bits(k) for k in (1, 2, 3, 4, 7, 8, 127, 128, 1152)] == [1, 2, 2, 3, 3, 4, 7, 8, 11]


@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (3, 7, 2), (5, 64, 9), (2, 65, 1), (4, 130, 17), (1, 8, 3),
                                     (6, 33, 5)])
@pytest.mark.parametrize("accumulate", ["dram", "host"])
def test_bit_exact_against_xnor_matmul_and_cost_counts(n, k, m, accumulate):
    g = torch.Generator().manual_seed(n * 1000 + k * 10 + m)
    x, w = _signs((n, k), g), _signs((m, k), g)
    ctr = d.RowCounter()
    pop = d.dram_popcount(x > 0, w > 0, ctr, accumulate)
    assert pop.dtype == torch.int64
    assert torch.equal(2 * pop - k, bitops.xnor_matmul(x, w).long())
    assert torch.equal(2 * pop - k, bitops.xnor_matmul_reference(x, w).long())
    cost = d.layer_cost(n, k, m, accumulate)
    assert cost["aap"] == ctr.aap and cost["activations"] == 2 * ctr.aap and cost["tiles"] == 1


def test_all_ones_and_all_disagree_extremes():
    x = torch.ones(2, 129, dtype=torch.bool)
    assert torch.equal(d.dram_popcount(x, x[:1], d.RowCounter()), torch.full((2, 1), 129))
    assert torch.equal(d.dram_popcount(x, ~x[:1], d.RowCounter()), torch.zeros(2, 1, dtype=torch.int64))


def test_layer_cost_hand_values():
    host = d.layer_cost(2, 4, 3, "host", columns=4)
    # 2 tiles (6 pairs on 4 columns), 4 XNORs of 16 AAPs each; 6 outputs x 4 bits read out
    assert (host["tiles"], host["aap"], host["offchip_bits"]) == (2, 2 * 4 * 16, 24)
    dram = d.layer_cost(2, 4, 3, "dram", columns=4)
    # half adders at steps 1..4 touch 1, 2, 2, 3 bits = 8 adders of 14 AAPs; 3 counter bits per output
    assert (dram["aap"], dram["offchip_bits"]) == (2 * (4 * 16 + 8 * 14), 18)
    assert dram["offchip_nj"] == hw.memory_access_energy_pj(18, "dram") / 1e3
    expected_energy = 2 * dram["aap"] * d.ASSUMED_DRAM["activation_nj"] + dram["offchip_nj"]
    assert dram["energy_nj"] == pytest.approx(expected_energy)


def test_offchip_bits_ratio_is_k_over_counter_bits():
    for k in (8, 128, 1152):
        ratio = d.layer_cost(10, k, 10, "host")["offchip_bits"] / d.layer_cost(10, k, 10, "dram")["offchip_bits"]
        assert ratio == k / d.counter_bits(k)


def test_error_model_rate_and_reproducibility():
    a = torch.zeros(200_000, dtype=torch.bool)
    ctr = d.RowCounter(0.01, torch.Generator().manual_seed(0))
    flipped = d.maj(a, a, a, ctr)
    assert 0.009 < flipped.float().mean() < 0.011                 # Binomial draw, relative p/2 fewer flips
    again = d.maj(a, a, a, d.RowCounter(0.01, torch.Generator().manual_seed(0)))
    assert torch.equal(flipped, again)
    assert not a.any()                                            # the operands are not modified


def _tiny_bnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 20), SignQuantizer(), qnn.QuantLinear(20, 9, weight_quantizer=SignQuantizer()),
                         nn.BatchNorm1d(9), SignQuantizer(), nn.Linear(9, 3))


def test_dram_forward_equals_model_without_errors():
    model = _tiny_bnn().eval()
    x = torch.randn(17, 6, generator=torch.Generator().manual_seed(1))
    for accumulate in ("dram", "host"):
        assert torch.allclose(d.dram_forward(model, x, accumulate), model(x), atol=1e-5)


def test_accuracy_under_errors_shape_and_seed():
    model = _tiny_bnn().eval()
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(2))
    y = model(x).argmax(1)
    clean = d.accuracy_under_errors(model, x, y, 0.0, draws=2)
    assert clean.tolist() == [1.0, 1.0]
    noisy = d.accuracy_under_errors(model, x, y, 0.05, draws=2, seed=3)
    assert torch.equal(noisy, d.accuracy_under_errors(model, x, y, 0.05, draws=2, seed=3))


def test_bad_inputs():
    b = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(TypeError, match="x_bits"):
        d.dram_popcount(torch.zeros(2, 3), b, d.RowCounter())
    with pytest.raises(ValueError, match="share K"):
        d.dram_popcount(b, torch.zeros(2, 4, dtype=torch.bool), d.RowCounter())
    with pytest.raises(ValueError, match="accumulate"):
        d.dram_popcount(b, b, d.RowCounter(), "cpu")
    with pytest.raises(ValueError, match="tra_error"):
        d.RowCounter(1.5)
    with pytest.raises(ValueError, match="tra_error"):
        d.RowCounter(-0.1)
    with pytest.raises(TypeError, match="generator"):
        d.RowCounter(0.1, generator=0)
    with pytest.raises(TypeError, match="ctr"):
        d.xnor_rows(b, b, None)
    with pytest.raises(ValueError, match="k"):
        d.counter_bits(0)
    with pytest.raises(ValueError, match="accumulate"):
        d.layer_cost(1, 2, 3, "gpu")
    with pytest.raises(ValueError, match="columns"):
        d.layer_cost(1, 2, 3, columns=0)
    with pytest.raises(TypeError):
        d.dram_forward("model", torch.zeros(1, 6))
    with pytest.raises(ValueError, match="draws"):
        d.accuracy_under_errors(_tiny_bnn(), torch.zeros(2, 6), torch.zeros(2), 0.0, draws=0)
