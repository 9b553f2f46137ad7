"""SIMBA (Miriyala, Vishwanath and Fong, 2020): skyrmion storage, XNOR-popcount read, write and read errors, and
the energy arithmetic. No official code exists; the functional model is checked against ``bitops.xnor_matmul``."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops, comparison
from qteach.papers import simba as sb


def _signs(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(*shape, generator=g) < 0.5, -1.0, 1.0)


def test_store_weights_hand_example():
    w = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    assert sb.store_weights(w).tolist() == [[True, False, True], [False, False, True]]


def test_xnor_popcount_hand_example():
    # x = (+1, -1, +1): bits (1, 0, 1). Row 0 (1, 0, 1): 3 agreements -> 2*3 - 3 = 3; row 1 (0, 0, 1): 2 -> 1.
    x = torch.tensor([[1.0, -1.0, 1.0]])
    w = torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    assert sb.skyrmion_xnor_popcount(x, sb.store_weights(w)).tolist() == [[3, 1]]


@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (3, 7, 2), (5, 64, 9), (2, 65, 1), (4, 130, 17), (8, 128, 128)])
def test_ideal_read_is_bit_exact_with_xnor_matmul(n, k, m):
    x, w = _signs(n, k, seed=n + k), _signs(m, k, seed=m * k)
    got = sb.skyrmion_xnor_popcount(x, sb.store_weights(w))
    assert torch.equal(got, bitops.xnor_matmul(x, w).long())
    assert torch.equal(got, (x @ w.T).long())
    reads = sb.read_cells(sb.store_weights(w), n)                # per-input reads, no errors
    assert torch.equal(sb.skyrmion_xnor_popcount(x, reads), got)


def test_write_cells_rates_and_direction():
    present = torch.zeros(200, 200, dtype=torch.bool)
    present[:100] = True
    g = torch.Generator().manual_seed(0)
    chip = sb.write_cells(present, p_miss=0.2, p_extra=0.05, generator=g)
    assert abs(float((~chip[:100]).float().mean()) - 0.2) < 0.01      # missing skyrmions
    assert abs(float(chip[100:].float().mean()) - 0.05) < 0.01        # unwanted skyrmions
    assert torch.equal(sb.write_cells(present), present)               # no errors: what was written
    assert torch.equal(sb.write_cells(present, 1.0, 1.0), ~present)    # every write fails


def test_read_cells_rate_and_independence():
    present = torch.rand(50, 60, generator=torch.Generator().manual_seed(1)) < 0.5
    reads = sb.read_cells(present, 40, p_read=0.1, generator=torch.Generator().manual_seed(2))
    assert reads.shape == (40, 50, 60)
    assert abs(float((reads ^ present).float().mean()) - 0.1) < 0.01
    assert not torch.equal(reads[0], reads[1])                          # drawn afresh at every read


def test_read_errors_on_sums_matches_explicit_reads_in_distribution():
    x, w = _signs(1, 64, seed=3), _signs(8, 64, seed=4)
    y = sb.skyrmion_xnor_popcount(x, sb.store_weights(w))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)
    fast = torch.stack([sb.read_errors_on_sums(y, 64, 0.15, g1)[0] for _ in range(2000)]).double()
    slow = torch.stack([sb.skyrmion_xnor_popcount(x, sb.read_cells(sb.store_weights(w), 1, 0.15, g2))[0]
                        for _ in range(2000)]).double()
    assert torch.allclose(fast.mean(0), slow.mean(0), atol=0.6)
    assert torch.allclose(fast.std(0), slow.std(0), rtol=0.1)
    # expected value: y (1 - 2p), variance 4 K p (1 - p)
    assert torch.allclose(fast.mean(0), y[0].double() * 0.7, atol=0.6)
    assert torch.allclose(fast.var(0), torch.full((8,), 4 * 64 * 0.15 * 0.85, dtype=torch.float64), rtol=0.15)
    assert torch.equal(sb.read_errors_on_sums(y, 64, 0.0), y)
    assert torch.equal(sb.read_errors_on_sums(y, 64, 1.0), -y)          # every cell misread: the sign flips


def test_simba_forward_ideal_equals_model_and_errors_change_it():
    split = comparison.split(comparison.DIGITS)
    bnn = next(m for m in comparison.methods() if m.paper == "binarized_neural_networks")
    torch.manual_seed(0)
    model = comparison.protocol_mlp(bnn, 1, 1, split.x_train.shape[1]).eval()
    x = split.x_test[:50]
    with torch.no_grad():
        ref = model(x)
    assert torch.allclose(sb.simba_forward(model, x), ref, atol=1e-4)
    noisy = sb.simba_forward(model, x, p_read=0.3, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy, ref, atol=1e-4)
    acc = sb.accuracy_under_errors(model, x, split.y_test[:50], draws=2, seed=0, p_miss=0.1)
    assert acc.shape == (2,) and bool(((acc >= 0) & (acc <= 1)).all())
    again = sb.accuracy_under_errors(model, x, split.y_test[:50], draws=2, seed=0, p_miss=0.1)
    assert torch.equal(acc, again)                                       # seeded draws repeat


def test_vgg_like_macs_hand_computed():
    macs = sb.vgg_like_macs()
    # 3*128*9*32*32, 128*128*9*32*32, then 16x16, 8x8 maps, then 8192*1024, 1024*1024, 1024*10
    assert macs[:3] == [3 * 128 * 9 * 1024, 128 * 128 * 9 * 1024, 128 * 256 * 9 * 256]
    assert macs[-3:] == [8192 * 1024, 1024 * 1024, 10240]
    assert sum(macs) == 616_966_144


def test_cost_from_paper_arithmetic():
    cost = sb.cost_from_paper(1000, 1_000_000, energy_mj=1.0, latency_ms=2.0)
    assert cost["pj_per_mac"] == pytest.approx(1000.0)                  # 1 mJ / 1e6 MACs = 1 nJ
    assert cost["ps_per_mac"] == pytest.approx(2000.0)
    assert cost["energy_uj"] == pytest.approx(1.0) and cost["latency_us"] == pytest.approx(2.0)
    paper = sb.cost_from_paper(sum(sb.vgg_like_macs()), sum(sb.vgg_like_macs()))
    assert paper["energy_uj"] == pytest.approx(26.7e3) and paper["latency_us"] == pytest.approx(2.7e3)
    assert sb.PAPER["energy_mj"] == 26.7 and sb.PAPER["latency_ms"] == 2.7


@pytest.mark.parametrize("call, error, match", [
    (lambda: sb.store_weights(torch.tensor([0.5, 1.0])), ValueError, "w must hold"),
    (lambda: sb.store_weights([1.0]), TypeError, "w"),
    (lambda: sb.write_cells(torch.ones(3), 0.1), TypeError, "present"),
    (lambda: sb.write_cells(torch.ones(3, dtype=torch.bool), 1.5), ValueError, "p_miss"),
    (lambda: sb.write_cells(torch.ones(3, dtype=torch.bool), 0.1, -0.1), ValueError, "p_extra"),
    (lambda: sb.write_cells(torch.ones(3, dtype=torch.bool), generator=1), TypeError, "generator"),
    (lambda: sb.read_cells(torch.ones(3, dtype=torch.bool), 0), ValueError, "reads"),
    (lambda: sb.read_cells(torch.ones(3, dtype=torch.bool), 2, "0.1"), TypeError, "p_read"),
    (lambda: sb.skyrmion_xnor_popcount(torch.ones(2, 3), torch.ones(4, 5, dtype=torch.bool)), ValueError, "read"),
    (lambda: sb.skyrmion_xnor_popcount(torch.zeros(2, 3), torch.ones(4, 3, dtype=torch.bool)), ValueError, "x"),
    (lambda: sb.skyrmion_xnor_popcount(torch.ones(2, 3), torch.ones(4, 3)), TypeError, "read"),
    (lambda: sb.read_errors_on_sums(torch.tensor([[4]]), 3), ValueError, "y must"),
    (lambda: sb.read_errors_on_sums(torch.tensor([[2]]), 3), ValueError, "y must"),
    (lambda: sb.read_errors_on_sums(torch.tensor([[1]]), 0), ValueError, "k"),
    (lambda: sb.simba_forward("model", torch.ones(1, 64)), TypeError, "model"),
    (lambda: sb.vgg_like_macs({"conv": []}), TypeError, "net"),
    (lambda: sb.cost_from_paper(10, 0), ValueError, "paper_macs"),
    (lambda: sb.cost_from_paper(10, 10, energy_mj=-1.0), ValueError, "energy_mj"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
