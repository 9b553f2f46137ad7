"""Tests of the reconfigurable binary/ternary-weight processor chapter: functional model, identity, cost model."""

from __future__ import annotations

import pytest
import torch

from qteach.papers import reconfigurable_bt_processor as rb
from qteach.papers.dorefa_net import quantize_activations


def _random(m, k, n, a_bits, seed, ternary=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2**a_bits, (m, k), generator=g)
    w = torch.randint(-1, 2, (n, k), generator=g) if ternary else 2 * torch.randint(0, 2, (n, k), generator=g) - 1
    return x, w


def test_hand_computed_example():
    # x = [5, 3] (3 bits), w = [+1, -1]: 5 - 3 = 2; planes: bit0 (1,1): 1-1=0, bit1 (0,1): 0-1=-1, bit2 (1,0): 1.
    # 0 * 1 + (-1) * 2 + 1 * 4 = 2
    x = torch.tensor([[5, 3]])
    w = torch.tensor([[1, -1], [1, 0], [0, 0]])
    assert rb.bitserial_bt_matmul(x, w, 4).tolist() == [[2, 5, 0]]


def test_weight_planes():
    pos, neg = rb.weight_planes(torch.tensor([[1, 0, -1, 1]]))
    assert pos.tolist() == [[1, 0, 0, 1]] and neg.tolist() == [[0, 0, 1, 0]]
    assert torch.equal(pos - neg, torch.tensor([[1, 0, -1, 1]]))


@pytest.mark.parametrize("a_bits", rb.ACTIVATION_BITS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (4, 8, 2), (2, 9, 3), (5, 65, 4), (1, 200, 1)])
@pytest.mark.parametrize("ternary", [True, False])
def test_bitserial_equals_integer_matmul(a_bits, shape, ternary):
    m, k, n = shape
    x, w = _random(m, k, n, a_bits, seed=a_bits * 31 + k, ternary=ternary)
    assert torch.equal(rb.bitserial_bt_matmul(x, w, a_bits), x @ w.T)


def test_bitserial_extremes():
    k = 33
    x = torch.full((2, k), 2**16 - 1)
    w = torch.ones(3, k, dtype=torch.int64)
    w[1] = -1
    w[2] = 0
    assert rb.bitserial_bt_matmul(x, w, 16).tolist() == [[k * 65535, -k * 65535, 0]] * 2
    assert rb.bitserial_bt_matmul(torch.zeros(0, 4, dtype=torch.int64), torch.ones(2, 4, dtype=torch.int64), 1).shape == (0, 2)


@pytest.mark.parametrize("seed", range(5))
def test_total_partial_identity(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-50, 50, (4, 27), generator=g)
    w = 2 * torch.randint(0, 2, (6, 27), generator=g) - 1
    assert torch.equal(rb.total_partial_sum(x, w), x @ w.T)


def test_accumulations_hand_computed():
    w = torch.tensor([[1, 1, -1, -1], [1, -1, -1, -1]])
    assert rb.accumulations(w, "dense") == 8
    assert rb.accumulations(w, "total-partial") == 4 + 3 + 2
    t = torch.tensor([[1, 0, -1, 0], [0, 0, 0, 1]])
    assert rb.accumulations(t, "zero-skip") == 3
    with pytest.raises(ValueError, match="total-partial"):
        rb.accumulations(t, "total-partial")
    with pytest.raises(ValueError, match="scheme"):
        rb.accumulations(w, "sparse")


def test_cost_model_uses_the_abstracts_numbers():
    assert rb.PAPER["peak_tops_per_w"] == {"BWN": 95.8, "TWN": 95.1, "BNN": 765.6}
    assert rb.tops_per_watt(1) == pytest.approx(765.6)
    assert rb.tops_per_watt(8) == pytest.approx(95.7)
    assert rb.energy_per_op_fj(1) == pytest.approx(1000 / 765.6)
    assert rb.layer_energy_nj(10**6, 4) == pytest.approx(2e6 * 4 / 765.6 / 1e3)
    assert rb.layer_cycles(1000, 4, 256) == 4 * 4
    assert [rb.layer_cycles(4096, b, 64) for b in rb.ACTIVATION_BITS] == [64 * b for b in rb.ACTIVATION_BITS]


def test_deployed_logits_equal_the_float_forward():
    torch.manual_seed(0)
    x = torch.rand(20, 64)
    for weights in ("binary", "ternary"):
        model = rb.bt_mlp(weights, 64, 16, 10)
        for b in rb.ACTIVATION_BITS:
            got = rb.deployed_logits(model, x, b)
            with torch.no_grad():
                a = quantize_activations(x.double(), b)
                w1, w2 = model[1].weight_quantizer(model[1].weight), model[3].weight_quantizer(model[3].weight)
                a = quantize_activations(a @ w1.double().T + model[1].bias.double(), b)
                ref = a @ w2.double().T + model[3].bias.double()
            assert torch.allclose(got, ref, atol=1e-9), (weights, b)


def test_layer_codes():
    model = rb.bt_mlp("ternary", 8, 4, 2)
    codes, alpha = rb.layer_codes(model[1])
    assert set(codes.unique().tolist()) <= {-1, 0, 1}
    assert torch.allclose(alpha * codes.float(), model[1].weight_quantizer(model[1].weight))
    with pytest.raises(TypeError, match="layer"):
        rb.layer_codes(torch.nn.Linear(2, 2))


def test_bad_inputs():
    x, w = _random(2, 4, 3, 4, seed=0)
    with pytest.raises(ValueError, match="a_bits"):
        rb.bitserial_bt_matmul(x, w, 3)
    with pytest.raises(ValueError, match="x must have values"):
        rb.bitserial_bt_matmul(x + 16, w, 4)
    with pytest.raises(TypeError, match="x must be an integer"):
        rb.bitserial_bt_matmul(x.float(), w, 4)
    with pytest.raises(ValueError, match="w must hold only"):
        rb.bitserial_bt_matmul(x, w * 2, 4)
    with pytest.raises(TypeError, match="w must be an integer"):
        rb.bitserial_bt_matmul(x, w.float(), 4)
    with pytest.raises(ValueError, match="same K"):
        rb.bitserial_bt_matmul(x, w[:, :3], 4)
    with pytest.raises(ValueError, match="w must be binary"):
        rb.total_partial_sum(x, torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="weights"):
        rb.bt_mlp("quaternary")
    with pytest.raises(ValueError, match="lanes"):
        rb.layer_cycles(10, 1, 0)
    with pytest.raises(ValueError, match="macs"):
        rb.layer_energy_nj(-1, 1)
