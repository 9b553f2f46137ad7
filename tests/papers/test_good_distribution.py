import math

import pytest
import torch

from qteach.papers import good_distribution as gd


def test_uniform_quantize_hand_values():
    # 2 bits, alpha = 1: levels -1, -1/3, 1/3, 1
    x = torch.tensor([-2.0, -0.5, -0.1, 0.2, 0.7, 5.0])
    q = gd.uniform_quantize(x, 1.0, 2)
    assert torch.allclose(q, torch.tensor([-1.0, -1 / 3, -1 / 3, 1 / 3, 1.0, 1.0]))


def test_levels_count():
    x = torch.linspace(-3, 3, 10001)
    assert gd.uniform_quantize(x, 1.5, 3).unique().numel() == 8


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_uniform_loss_matches_closed_form(bits):
    a = math.sqrt(3)
    for alpha in (0.6, 1.2, a * (2 ** bits - 1) / 2 ** bits):
        assert gd.quantized_loss("uniform", alpha, bits) == pytest.approx(gd.uniform_loss_closed_form(alpha, bits),
                                                                          rel=1e-5)
    alpha, loss = gd.optimal_clip("uniform", bits)
    assert alpha == pytest.approx(a * (2 ** bits - 1) / 2 ** bits, rel=1e-4)
    assert loss == pytest.approx(4.0 ** -bits, rel=1e-5)  # = 1 / 4^b at the optimum


def test_gaussian_2bit_known_optimum():
    # Max's optimum uniform 4-level quantizer of N(0, 1): step 0.9957, MSE 0.1188
    alpha, loss = gd.optimal_clip("gaussian", 2)
    assert alpha == pytest.approx(1.5 * 0.9957, rel=2e-3)
    assert loss == pytest.approx(0.1188, abs=2e-4)


def test_large_sample_agrees():
    g = torch.Generator().manual_seed(0)
    x = torch.distributions.Laplace(0.0, 1 / math.sqrt(2)).sample((400_000,)).double()
    mc = float(((x - gd.uniform_quantize(x, 1.6, 2)) ** 2).mean())
    assert mc == pytest.approx(gd.quantized_loss("laplace", 1.6, 2), rel=0.02)
    del g


@pytest.mark.parametrize("bits", [2, 4])
def test_paper_ordering(bits):
    losses = {n: gd.optimal_clip(n, bits)[1] for n in gd.DISTRIBUTIONS}
    assert losses["laplace"] > losses["gaussian"] > losses["uniform"]


def test_scale_clip_hand_values():
    w = torch.tensor([1.0, -2.0, 3.0, -6.0])  # mean |w| = 3
    assert gd.scale_clip(w, 1.0).tolist() == [1.0, -2.0, 3.0, -3.0]
    assert gd.scale_clip(w, 0.5).tolist() == [1.0, -1.5, 1.5, -1.5]


def test_group_quantize_hand_values_and_groups():
    w = torch.tensor([[1.0, -3.0], [0.1, -0.3]])  # group means 2 and 0.2
    q = gd.group_quantize(w, 2, 1.0, groups=2)
    assert torch.allclose(q, torch.tensor([[2 / 3, -2.0], [0.2 / 3, -0.2]]))
    one = gd.group_quantize(w, 2, 1.0, groups=1)  # mean |w| = 1.1 for the whole tensor
    assert torch.allclose(one, torch.tensor([[1.1, -1.1], [1.1 / 3, -1.1 / 3]]))
    mx = gd.group_quantize(w, 2, None, groups=2)
    assert torch.allclose(mx, torch.tensor([[1.0, -3.0], [0.1, -0.3]]))


def test_straight_through_gradient():
    w = torch.tensor([[0.5, -4.0, 1.0, 0.2]], requires_grad=True)  # t = 2 * 1.425
    gd.group_quantize(w, 2, 2.0, groups=1).sum().backward()
    assert w.grad.tolist() == [[1.0, 0.0, 1.0, 1.0]]


def test_modules_and_comparison_layer():
    torch.manual_seed(0)
    wq, iq, act = gd.comparison_layer(2, 2)
    assert iq is None and wq.precision == 2 and act.precision == 2
    w = torch.randn(128, 128)
    assert wq(w).reshape(4, -1).unique(dim=1).numel() > 0
    assert all(row.unique().numel() <= 4 for row in wq(w).reshape(4, -1))
    x = torch.randn(64, 16)
    y = act(x)
    assert y.min() >= 0 and y.unique().numel() <= 4
    act.eval()
    assert torch.equal(act(x), act(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match="name"):
        gd.quantized_loss("cauchy", 1.0, 2)
    with pytest.raises(ValueError, match="alpha"):
        gd.uniform_quantize(torch.ones(2), -1.0, 2)
    with pytest.raises(TypeError, match="x"):
        gd.uniform_quantize([1.0], 1.0, 2)
    with pytest.raises(ValueError, match="groups"):
        gd.group_quantize(torch.ones(3, 2), 2, 1.0, groups=2)
    with pytest.raises(ValueError, match="k"):
        gd.scale_clip(torch.ones(2), 0.0)
    with pytest.raises(ValueError, match="bits"):
        gd.comparison_layer(2, 1)
