"""IMAC (Ali et al., 2020), our reconstruction: bit-exact when ideal, ADC and variation errors, cost counts."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops, comparison
from qteach.papers import dorefa_net
from qteach.papers import imac_sram as m


def _codes(shape, bits, seed):
    return torch.randint(0, 2**bits, shape, generator=torch.Generator().manual_seed(seed))


def test_bitline_sums_by_hand():
    # x = (3, 1), weights 2 = 0b10 and 3 = 0b11: column 0 sees only the second cell, column 1 both.
    x, w = torch.tensor([[3, 1]]), torch.tensor([[2, 3]])
    sums = m.bitline_sums(x, w, a_bits=2, w_bits=2)
    assert sums.shape == (1, 1, 1, 2)
    assert sums.flatten().tolist() == [1.0, 4.0]          # S_0 = 1 * 1, S_1 = 3 + 1
    assert m.imac_matmul(x, w, 2, 2).item() == 3 * 2 + 1 * 3   # 1 + 2 * 4 = 9


@pytest.mark.parametrize("b, k, n, a_bits, w_bits, rows", [
    (5, 130, 7, 4, 4, 64), (1, 1, 1, 1, 1, None), (3, 17, 2, 2, 3, 5), (4, 64, 9, 8, 2, 64), (2, 33, 3, 3, 4, 1)])
def test_ideal_array_is_bit_exact(b, k, n, a_bits, w_bits, rows):
    x, w = _codes((b, k), a_bits, 1), _codes((n, k), w_bits, 2)
    exact = bitops.bitserial_matmul(x, w, a_bits, w_bits)
    assert torch.equal(exact, x @ w.T)
    assert torch.equal(m.imac_matmul(x, w, a_bits, w_bits, rows=rows), exact.double())
    r = k if rows is None else rows
    bits = m.min_adc_bits(r, a_bits)
    assert torch.equal(m.imac_matmul(x, w, a_bits, w_bits, rows=rows, adc_bits=bits), exact.double())


def test_min_adc_bits_is_tight():
    assert m.min_adc_bits(64, 4) == 10                       # 64 * 15 = 960 < 1024
    assert m.min_adc_bits(1, 1) == 1
    counts = torch.arange(0, 64 * 15 + 1, dtype=torch.float64)
    assert torch.equal(m.adc_read(counts, 960, 10), counts)
    assert not torch.equal(m.adc_read(counts, 960, 9), counts)   # pigeonhole: 512 codes for 961 sums


def test_adc_read_by_hand_and_clipping():
    s = torch.tensor([0.0, 1.0, 2.0, 3.0, 5.0, -2.0])
    # 1-bit ADC over [0, 3]: codes 0, 0, 1, 1, 1 (clipped), 0 (clipped) decode to 0 or 3.
    assert m.adc_read(s, 3, 1).tolist() == [0.0, 0.0, 3.0, 3.0, 3.0, 0.0]
    assert torch.equal(m.adc_read(s, 3, None), s)


def test_adc_error_shrinks_with_bits_and_variation_adds_error():
    x, w = _codes((8, 64), 4, 3), _codes((16, 64), 4, 4)
    exact = (x @ w.T).double()
    errors = [(m.imac_matmul(x, w, 4, 4, rows=64, adc_bits=b) - exact).abs().mean().item() for b in (4, 6, 8, 10)]
    assert errors[0] > errors[1] > errors[2] > errors[3] == 0.0
    noisy = [(m.imac_matmul(x, w, 4, 4, sigma=s, generator=torch.Generator().manual_seed(0)) - exact).abs().mean()
             for s in (0.05, 0.2)]
    assert 0 < noisy[0] < noisy[1]


def test_variation_is_seeded_and_unbiased():
    x, w = _codes((4, 64), 4, 5), _codes((6, 64), 4, 6)
    a = m.imac_matmul(x, w, 4, 4, sigma=0.1, generator=torch.Generator().manual_seed(7))
    b = m.imac_matmul(x, w, 4, 4, sigma=0.1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    draws = torch.stack([m.imac_matmul(x, w, 4, 4, sigma=0.1, generator=torch.Generator().manual_seed(s))
                         for s in range(40)])
    rel = (draws.mean(0) - (x @ w.T).double()).abs() / (x @ w.T).double()
    assert rel.max() < 0.05


def test_imac_forward_ideal_matches_model_and_bitplane_linear():
    torch.manual_seed(0)
    method = next(x for x in comparison.methods() if x.paper == "dorefa_net")
    model = comparison.protocol_mlp(method, 4, 4, 20).eval()
    x = torch.randn(30, 20)
    ideal = m.imac_forward(model, x, rows=64)
    assert torch.allclose(ideal, model(x), atol=1e-4)
    assert torch.allclose(m.imac_forward(model, x, rows=64, adc_bits=10), ideal, atol=1e-5)
    # the integer path is DoReFa's eq. 3 path
    a_q = dorefa_net.quantize_activations(torch.rand(5, 128), 4)
    w_q = dorefa_net.quantize_weights(torch.randn(7, 128), 4)
    codes = dorefa_net.activation_codes(a_q, 4)
    w_int, low, step = dorefa_net.weight_codes(w_q, 4)
    y = (step * m.imac_matmul(codes, w_int, 4, 4, rows=64) + low * codes.sum(1, keepdim=True)) / 15
    assert torch.allclose(y, dorefa_net.bitplane_linear(a_q, w_q, 4, 4), atol=1e-9)


def test_array_cost_counts():
    cost = m.array_cost(batch=2, k=130, n=128, rows=64, w_bits=4)
    assert cost == {"reads": 6, "conversions": 2 * 128 * 4 * 3, "macs": 2 * 130 * 128}


def test_paper_constants():
    assert m.PAPER == {"mnist_lenet5_pct": 99.0, "cifar10_vgg_pct": 88.8, "energy_gain": 6.24, "delay_gain": 9.42}


@pytest.mark.parametrize("call, match", [
    (lambda: m.imac_matmul(torch.tensor([[16]]), torch.tensor([[1]]), 4, 4), "x must have values"),
    (lambda: m.imac_matmul(torch.tensor([[1.5]]), torch.tensor([[1]]), 4, 4), "x must hold integer"),
    (lambda: m.imac_matmul(torch.tensor([1]), torch.tensor([[1]]), 4, 4), "x must be 2-D"),
    (lambda: m.imac_matmul(torch.tensor([[1, 2]]), torch.tensor([[1]]), 4, 4), "same K"),
    (lambda: m.imac_matmul(torch.tensor([[1]]), torch.tensor([[1]]), 4, 4, rows=0), "rows"),
    (lambda: m.imac_matmul(torch.tensor([[1]]), torch.tensor([[1]]), 4, 4, sigma=-1.0), "sigma"),
    (lambda: m.imac_matmul(torch.tensor([[1]]), torch.tensor([[1]]), 0, 4), "a_bits"),
    (lambda: m.adc_read(torch.tensor([1.0]), 0, 4), "full_scale"),
    (lambda: m.adc_read(torch.tensor([1.0]), 3, 0), "bits"),
    (lambda: m.min_adc_bits(0, 4), "rows"),
    (lambda: m.array_cost(0, 1, 1, 1, 1), "batch"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: m.imac_matmul([[1]], torch.tensor([[1]]), 4, 4), "x"),
    (lambda: m.imac_matmul(torch.tensor([[1]]), torch.tensor([[1]]), 4, 4, sigma=0.1, generator=3), "generator"),
    (lambda: m.adc_read([1.0], 3, 4), "s"),
    (lambda: m.imac_forward("model", torch.zeros(1, 2)), "model"),
])
def test_bad_type_raises_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
