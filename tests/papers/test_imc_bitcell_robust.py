"""The IMC bit-cell model (Saha et al., 2020, our reconstruction from the abstract): XNOR truth table, charge
fraction, cell gains, count step, bit-exact ideal mode against qteach.bitops.xnor_matmul, the BNN forward."""

from __future__ import annotations

import math

import pytest
import torch

from qteach import bitops, comparison
from qteach.papers import imc_bitcell_robust as paper


def test_bitcell_truth_table():
    x = torch.tensor([False, False, True, True])
    q = torch.tensor([False, True, False, True])
    assert paper.bitcell_xnor(x, q).tolist() == [True, False, False, True]


def test_bitcell_xnor_is_the_product_of_signs():
    g = torch.Generator().manual_seed(0)
    x, q = torch.rand(50, generator=g) > 0.5, torch.rand(50, generator=g) > 0.5
    sx, sq = 2 * x.double() - 1, 2 * q.double() - 1
    assert torch.equal(paper.bitcell_xnor(x, q), sx * sq > 0)


def test_charge_fraction_hand_values():
    assert float(paper.charge_fraction(1.0, 1.0)) == pytest.approx(1 - math.exp(-1))
    assert float(paper.charge_fraction(2.0, 1.0)) == pytest.approx(1 - math.exp(-2))
    assert float(paper.charge_fraction(2.0, 2.0)) == pytest.approx(1 - math.exp(-1))
    # a longer pulse saturates: the relative spread for the same tau spread shrinks
    tau = torch.tensor([0.8, 1.25], dtype=torch.float64)
    spread = [float(paper.charge_fraction(p, tau).max() / paper.charge_fraction(p, tau).min()) for p in (1, 2, 4)]
    assert spread[0] > spread[1] > spread[2] > 1


def test_cell_gains_ideal_and_statistics():
    assert torch.equal(paper.cell_gains((4, 5), 0.0, sigma_cap=0.0), torch.ones(4, 5, dtype=torch.float64))
    g = paper.cell_gains((200, 200), 0.2, pulse=2.0, sigma_cap=0.0, generator=torch.Generator().manual_seed(0))
    # first order: std of g = sigma * T e^{-T} / (1 - e^{-T})
    expected = 0.2 * 2 * math.exp(-2) / (1 - math.exp(-2))
    assert float(g.std()) == pytest.approx(expected, rel=0.1)
    long = paper.cell_gains((200, 200), 0.2, pulse=4.0, sigma_cap=0.0, generator=torch.Generator().manual_seed(0))
    assert float(long.std()) < float(g.std()) / 3


def test_corner_and_tuning():
    def draw(**kw):
        return paper.cell_gains((30, 40), 0.2, generator=torch.Generator().manual_seed(1), **kw)
    nominal = draw()
    slow = draw(corner=0.3)
    assert float(slow.mean()) < float(nominal.mean()) - 0.05  # a slow corner charges less
    assert float(draw(corner=-0.3).mean()) > float(nominal.mean())
    # tuning the pulse by e^c gives exactly the nominal chip back
    assert torch.allclose(draw(corner=0.3, tune=True), nominal, rtol=1e-12, atol=1e-12)


def test_count_step_volts():
    # VDD (1 - e^{-T}) / (N (1 + c))
    assert paper.count_step_volts(128, pulse=2.0, vdd=1.0, bitline_per_row=0.5) == pytest.approx(
        (1 - math.exp(-2)) / (128 * 1.5))
    assert paper.count_step_volts(256) == pytest.approx(paper.count_step_volts(128) / 2)


@pytest.mark.parametrize("b, n, k", [(1, 1, 1), (7, 5, 63), (16, 9, 64), (3, 4, 65), (20, 13, 200)])
def test_ideal_mode_bit_exact(b, n, k):
    g = torch.Generator().manual_seed(k)
    a, w = torch.randn(b, k, generator=g), torch.randn(n, k, generator=g)
    a[0, 0] = 0.0  # sign(0) = +1 in both
    matches = paper.column_matches(a, w)
    assert matches.dtype == torch.int64
    assert torch.equal(2 * matches - k, bitops.xnor_matmul(a, w).to(torch.int64))
    # unit gains in the analog path give the same counts
    analog = paper.column_matches(a, w, torch.ones(n, k, dtype=torch.float64))
    assert torch.equal(analog, matches.double())


def test_weighted_counts_by_hand():
    a = torch.tensor([[1.0, -1.0, 1.0]])
    w = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    gains = torch.tensor([[0.5, 2.0, 1.5], [1.0, 3.0, 0.25]], dtype=torch.float64)
    # row 0 matches cells 0 and 2: 0.5 + 1.5; row 1 matches cells 1 and 2: 3 + 0.25
    assert paper.column_matches(a, w, gains).tolist() == [[2.0, 3.25]]


@pytest.fixture(scope="module")
def bnn():
    torch.manual_seed(0)
    method = next(m for m in comparison.methods() if m.paper == "binarized_neural_networks")
    model = comparison.protocol_mlp(method, 1, 1, 20)
    for module in model.modules():          # non-trivial batch-norm statistics without training
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-3, 3)
            module.running_var.uniform_(0.5, 4)
    return model.eval()


def test_forward_ideal_equals_model(bnn):
    x = torch.randn(64, 20, generator=torch.Generator().manual_seed(3))
    assert len(paper.binary_layers(bnn)) == 2
    with torch.no_grad():
        assert torch.equal(paper.imc_forward(bnn, x), bnn(x))
        assert torch.equal(paper.imc_forward(bnn, x, rows=512), bnn(x))


def test_forward_noisy_is_reproducible_and_tuning_cancels_corner(bnn):
    x = torch.randn(32, 20, generator=torch.Generator().manual_seed(4))

    def run(**kw):
        return paper.imc_forward(bnn, x, generator=torch.Generator().manual_seed(9), **kw)
    assert torch.equal(run(sigma=0.3, offset_mv=2.0), run(sigma=0.3, offset_mv=2.0))
    assert not torch.equal(run(sigma=0.3), bnn(x).detach())
    assert torch.allclose(run(sigma=0.2, corner=0.3, tune=True), run(sigma=0.2), atol=1e-5)
    # a tiny offset changes nothing in the ideal counts unless the column is very long
    small = run(offset_mv=1e-6)
    assert torch.equal(small.argmax(1), bnn(x).argmax(1))


def test_relative_throughput_and_paper_rates():
    assert paper.relative_throughput(2.0) == 1.0
    assert paper.relative_throughput(4.0, reference=2.0, overhead=1.0) == pytest.approx(3 / 5)
    rates = paper.paper_rates(2193)
    assert rates["energy_pj"] == pytest.approx(1.0)          # 2193 ops at 2193 TOPS/W: 1 pJ
    assert rates["fj_per_op"] == pytest.approx(1000 / 2193)
    assert rates["power_mw"] == pytest.approx(22857e9 / 2193e12 * 1e3)
    assert paper.paper_rates(22857)["time_ns"] == pytest.approx(1.0)


def test_bad_inputs(bnn):
    with pytest.raises(TypeError, match="x must be a bool"):
        paper.bitcell_xnor(torch.ones(2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="tau"):
        paper.charge_fraction(1.0, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="pulse"):
        paper.charge_fraction(0.0, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        paper.cell_gains((2, 2), -0.1)
    with pytest.raises(TypeError, match="corner"):
        paper.cell_gains((2, 2), 0.1, corner="slow")
    with pytest.raises(TypeError, match="tune"):
        paper.cell_gains((2, 2), 0.1, tune=1)
    with pytest.raises(TypeError, match="generator"):
        paper.cell_gains((2, 2), 0.1, generator=0)
    with pytest.raises(ValueError, match="rows"):
        paper.count_step_volts(0)
    with pytest.raises(ValueError, match="a and w"):
        paper.column_matches(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="gains"):
        paper.column_matches(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="a must"):
        paper.column_matches(torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3))
    with pytest.raises(ValueError, match="rows"):
        paper.imc_forward(bnn, torch.ones(2, 20), rows=64)
    with pytest.raises(TypeError, match="model"):
        paper.imc_forward(torch.nn.Linear(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="offset_mv"):
        paper.imc_forward(bnn, torch.ones(2, 20), offset_mv=-1.0)
    with pytest.raises(ValueError, match="ops"):
        paper.paper_rates(0)
    with pytest.raises(ValueError, match="overhead"):
        paper.relative_throughput(1.0, overhead=-1)
