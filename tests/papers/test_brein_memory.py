"""BRein Memory (Ando et al., JSSC 2018): the in-memory accumulate is exact, the sense amplifier and the
efficiency arithmetic follow their formulas."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.papers import brein_memory as br


def test_ternary_bits_by_hand():
    nonzero, positive = br.ternary_bits(torch.tensor([-1.0, 0.0, 1.0]))
    assert nonzero.tolist() == [True, False, True] and positive.tolist() == [False, False, True]


def test_accumulate_by_hand():
    x = torch.tensor([[1.0, 0.0, -1.0, 1.0, -1.0]])
    w = torch.tensor([[1.0, 1.0, 1.0, 0.0, -1.0]])
    # columns: agree (+1), x zero (0), disagree (-1), w zero (0), agree (+1) -> 1
    assert br.in_memory_accumulate(x, w).tolist() == [[1]]


@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (3, 4, 7), (8, 5, 64), (4, 3, 129), (2, 16, 1000)])
def test_ternary_exact(n, m, k):
    g = torch.Generator().manual_seed(n * 1000 + k)
    x = torch.randint(-1, 2, (n, k), generator=g).float()
    w = torch.randint(-1, 2, (m, k), generator=g).float()
    assert torch.equal(br.in_memory_accumulate(x, w), (x.double() @ w.double().T).long())


@pytest.mark.parametrize("k", [1, 9, 64, 333])
def test_binary_equals_xnor_matmul(k):
    g = torch.Generator().manual_seed(k)
    x, w = torch.randn(6, k, generator=g), torch.randn(5, k, generator=g)
    xs, ws = torch.where(x >= 0, 1.0, -1.0), torch.where(w >= 0, 1.0, -1.0)
    assert torch.equal(br.in_memory_accumulate(xs, ws), bitops.xnor_matmul(x, w).long())


def test_all_zero_weights_give_zero():
    assert br.in_memory_accumulate(torch.ones(2, 4), torch.zeros(3, 4)).abs().sum() == 0


def test_sense_amplifier():
    s = torch.tensor([[3, -2, 0]])
    tau = torch.tensor([3, -3, 1])
    assert br.sense_amplifier(s, tau).tolist() == [[1.0, 1.0, -1.0]]         # s >= tau: +1 (ties go to +1)
    offset = torch.tensor([[-0.5, -1.0, 0.99]])
    assert br.sense_amplifier(s, tau, offset).tolist() == [[-1.0, 1.0, -1.0]]  # -2 - 1 >= -3 still holds
    assert br.sense_amplifier(s, tau, torch.tensor([[0.0, 0.0, 1.0]])).tolist() == [[1.0, 1.0, 1.0]]


def test_efficiency_by_hand():
    tops_w, fj = br.chip_efficiency(1.4, 0.6)
    assert tops_w == pytest.approx(2.3333, rel=1e-4)
    assert fj == pytest.approx(428.57, rel=1e-4)                            # 0.6 W / 1.4e12 op/s
    assert br.chip_efficiency(1.0, 1.0) == pytest.approx((1.0, 1000.0))
    assert br.on_chip_weight_bits(800_000, False) == 800_000
    assert br.on_chip_weight_bits(800_000, True) == 1_600_000


def test_bad_inputs():
    with pytest.raises(ValueError, match="t must"):
        br.ternary_bits(torch.tensor([0.5]))
    with pytest.raises(TypeError, match="x"):
        br.in_memory_accumulate(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3))
    with pytest.raises(ValueError, match="x and w"):
        br.in_memory_accumulate(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="s must"):
        br.sense_amplifier(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="offset"):
        br.sense_amplifier(torch.zeros(1, 2, dtype=torch.int64), torch.zeros(2, dtype=torch.int64),
                           torch.zeros(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="offset"):
        br.sense_amplifier(torch.zeros(1, 2, dtype=torch.int64), torch.zeros(2, dtype=torch.int64),
                           torch.full((1, 2), float("nan")))
    with pytest.raises(ValueError, match="s"):
        br.sense_amplifier(torch.full((1, 2), 0.5), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="tops"):
        br.chip_efficiency(0, 1)
    with pytest.raises(ValueError, match="watts"):
        br.chip_efficiency(1, -1)
    with pytest.raises(TypeError, match="ternary"):
        br.on_chip_weight_bits(10, 1)
    with pytest.raises(ValueError, match="synapses"):
        br.on_chip_weight_bits(-1, True)
