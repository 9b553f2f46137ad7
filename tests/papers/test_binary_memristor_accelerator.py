"""The binary-memristor BNN model (abstract-only paper, our reconstruction): hand-computed crossbar readings,
bit-exact equality with the XNOR-popcount product for ideal devices, the error model's limits, bad input."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops, comparison
from qteach.papers import binary_memristor_accelerator as bm


def _signs(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)


def test_program_crossbar_by_hand():
    g = bm.program_crossbar(torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]), on_off=10.0)
    assert g.dtype == torch.float64 and g.shape == (3, 2)
    assert g.tolist() == [[10.0, 1.0], [1.0, 1.0], [10.0, 10.0]]


def test_crossbar_dot_by_hand():
    # u = [1, 0, 1]; column 0 holds w = [+1, -1, +1] -> G = [10, 1, 10], I = 20; I_on = 20, I_off = 2
    # s = (2 * 20 - 20 - 2) / 9 = 2 = 1 + 1; column 1: w = [-1, -1, +1] -> I = 11, s = (22 - 22) / 9 = 0
    g = bm.program_crossbar(torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]))
    s = bm.crossbar_dot(torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64), g)
    assert s.tolist() == [[2.0, 0.0]]


@pytest.mark.parametrize("n, k, m", [(1, 1, 1), (3, 7, 2), (5, 64, 9), (2, 65, 1), (4, 130, 17), (1, 128, 128)])
@pytest.mark.parametrize("on_off", [10.0, 2.0, 100.0, 7.0])
def test_ideal_crossbar_is_bit_exact(n, k, m, on_off):
    x, w = _signs(n, k, seed=k), _signs(m, k, seed=k + 1)
    u = (x + 1) / 2
    s = bm.crossbar_dot(u.double(), bm.program_crossbar(w, on_off), on_off)
    if on_off in (10.0, 2.0):      # r - 1 a power of two or 9: all exact in float64
        assert torch.equal(s, (u @ w.T).double())
    assert torch.equal(torch.round(s), (u @ w.T).double()) and (s - torch.round(s)).abs().max() < 1e-9
    # the +-1 product of the BNN layer: 2 s - sum_k w, equal to XNOR-popcount
    assert torch.equal((2 * torch.round(s) - w.sum(1)).to(torch.int32), bitops.xnor_matmul(x, w))


def test_device_errors_limits():
    w = _signs(6, 40)
    g = bm.program_crossbar(w)
    assert torch.equal(bm.device_errors(g), g)                       # no errors: the programmed chip
    assert bool((bm.device_errors(g, stuck_on=1.0) == 10.0).all())
    assert bool((bm.device_errors(g, stuck_off=1.0) == 1.0).all())
    gen = torch.Generator().manual_seed(0)
    stuck = bm.device_errors(g, stuck_on=0.1, stuck_off=0.1, generator=gen)
    assert set(stuck.unique().tolist()) <= {1.0, 10.0}               # stuck cells stay binary
    big = torch.full((400, 500), 10.0, dtype=torch.float64)
    varied = bm.device_errors(big, sigma=0.3, generator=gen)
    assert abs(varied.mean().item() / 10.0 - 1) < 0.01               # mean-preserving log-normal
    assert abs(torch.log(varied / 10.0).std().item() - 0.3) < 0.01


def test_stuck_rates_flip_weights_as_expected():
    w = _signs(200, 200, seed=3)
    g = bm.device_errors(bm.program_crossbar(w), stuck_on=0.2, stuck_off=0.1,
                         generator=torch.Generator().manual_seed(1))
    read = torch.where(g.T > 5, 1.0, -1.0)
    flipped = (read != w).double().mean().item()
    plus = (w > 0).double().mean().item()
    assert abs(flipped - (plus * 0.1 + (1 - plus) * 0.2)) < 0.01


def test_input_voltages():
    u = (_signs(3, 9) + 1) / 2
    assert torch.equal(bm.input_voltages(u), u.double())
    assert bool((bm.input_voltages(u, salt=1.0) == 1).all())
    gen = torch.Generator().manual_seed(0)
    v = bm.input_voltages(torch.zeros(200, 500), swing=0.21, generator=gen)
    assert abs(v.std().item() - 0.21) < 0.005
    salted = bm.input_voltages(torch.zeros(200, 500), salt=0.07, generator=gen)
    assert abs(salted.mean().item() - 0.07) < 0.005


def test_memristor_forward_ideal_equals_model():
    bnn = next(m for m in comparison.methods() if m.paper == "binarized_neural_networks")
    torch.manual_seed(0)
    model = comparison.protocol_mlp(bnn, 1, 1, 20)
    x = torch.randn(33, 20)
    model.eval()
    with torch.no_grad():
        ref = model(x)
    got = bm.memristor_forward(model, x)
    assert torch.allclose(got, ref, atol=1e-5)
    noisy = bm.memristor_forward(model, x, stuck_on=0.3, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy, ref)
    y = ref.argmax(1)
    assert bm.accuracy_under_errors(model, x, y, draws=2).tolist() == [1.0, 1.0]
    a = bm.accuracy_under_errors(model, x, y, draws=3, seed=4, sigma=0.5, swing=0.2)
    assert torch.equal(a, bm.accuracy_under_errors(model, x, y, draws=3, seed=4, sigma=0.5, swing=0.2))


def test_cell_counts():
    assert bm.cell_counts(128, 128) == {"differential_pair": 32768, "reference_columns": 16640}
    assert bm.cell_counts(1, 1) == {"differential_pair": 2, "reference_columns": 3}


def test_paper_abstract_numbers():
    assert bm.PAPER_ABSTRACT == {"mnist_accuracy": 0.9831, "accuracy_floor": 0.90, "input_swing_std": 0.21,
                                 "salt_noise": 0.07}


def test_bad_input():
    w = _signs(2, 3)
    g = bm.program_crossbar(w)
    with pytest.raises(ValueError, match="w must hold"):
        bm.program_crossbar(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(TypeError, match="w must"):
        bm.program_crossbar(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="w must be"):
        bm.program_crossbar(torch.ones(3))
    with pytest.raises(ValueError, match="on_off"):
        bm.program_crossbar(w, on_off=1.0)
    with pytest.raises(TypeError, match="on_off"):
        bm.program_crossbar(w, on_off="10")
    with pytest.raises(ValueError, match="stuck_on"):
        bm.device_errors(g, stuck_on=1.5)
    with pytest.raises(ValueError, match="stuck_on \\+ stuck_off"):
        bm.device_errors(g, stuck_on=0.6, stuck_off=0.6)
    with pytest.raises(ValueError, match="sigma"):
        bm.device_errors(g, sigma=-0.1)
    with pytest.raises(TypeError, match="generator"):
        bm.device_errors(g, generator=0)
    with pytest.raises(ValueError, match="u must hold"):
        bm.input_voltages(torch.tensor([[0.5]]))
    with pytest.raises(ValueError, match="salt"):
        bm.input_voltages(torch.zeros(1, 2), salt=2.0)
    with pytest.raises(ValueError, match="v and g"):
        bm.crossbar_dot(torch.zeros(2, 4), g)
    with pytest.raises(TypeError, match="v must"):
        bm.crossbar_dot(torch.zeros(2, 3, dtype=torch.int64), g)
    with pytest.raises(ValueError, match="rows"):
        bm.cell_counts(0, 3)
    with pytest.raises(TypeError, match="model"):
        bm.memristor_forward("net", torch.zeros(1, 2))
    with pytest.raises(ValueError, match="draws"):
        bm.accuracy_under_errors(torch.nn.Sequential(), torch.zeros(1, 2), torch.zeros(1), draws=0)
