"""PACT (Choi et al. 2018, arXiv 1805.06085): eq. 1-3 against hand-computed values and autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach.papers import pact


def test_eq1_is_a_clip_to_zero_alpha():
    x = torch.tensor([-2.0, -0.1, 0.0, 0.4, 1.3, 2.0, 5.0])
    # 0.5 (|x| - |x - a| + a) with a = 2: -2 -> 0.5 (2 - 4 + 2) = 0; 1.3 -> 0.5 (1.3 - 0.7 + 2) = 1.3; 5 -> 2
    assert pact.pact_clip(x, 2.0).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.4, 1.3, 2.0, 2.0], abs=1e-6)
    # written with absolute values, float32 leaves a rounding residue (-0.1 gives 6e-8, not 0): equal to clamp
    # up to one unit in the last place of alpha
    assert torch.allclose(pact.pact_clip(x, 2.0), torch.clamp(x, 0.0, 2.0), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    big = 3 * torch.randn(1000, generator=g)
    assert torch.allclose(pact.pact_clip(big, torch.tensor(1.7)), torch.clamp(big, 0, 1.7), atol=1e-6)


def test_eq1_autograd_gives_eq3_away_from_the_kinks():
    x = torch.tensor([-1.0, 0.3, 0.9, 1.5, 4.0], requires_grad=True)
    alpha = torch.tensor(1.2, requires_grad=True)
    pact.pact_clip(x, alpha).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert alpha.grad.item() == 2.0  # two inputs above alpha


def test_eq2_forward_hand_computed():
    # alpha = 3, 2 bits: levels 0, 1, 2, 3; 1.4 -> round(1.4) = 1; 2.6 -> 3; 7 clips to 3; -1 -> 0
    x = torch.tensor([-1.0, 0.4, 0.6, 1.4, 2.6, 7.0])
    assert pact.pact_quantize(x, 3.0, 2).tolist() == [0.0, 0.0, 1.0, 1.0, 3.0, 3.0]
    # 4 bits, alpha = 1.5: step 0.1; 0.74 -> 0.7, 1.06 -> 1.1
    y = pact.pact_quantize(torch.tensor([0.74, 1.06, 2.0]), 1.5, 4)
    assert y.tolist() == pytest.approx([0.7, 1.1, 1.5], abs=1e-6)
    # the formula round(y (2^k - 1) / a) a / (2^k - 1) written out for random inputs
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(500, generator=g)
    for bits, a in ((1, 0.8), (2, 1.3), (3, 2.0), (8, 5.0)):
        n = 2**bits - 1
        y = torch.clamp(x, 0, a)
        assert torch.allclose(pact.pact_quantize(x, a, bits), torch.round(y * n / a) * a / n)
        assert len(torch.unique(pact.pact_quantize(x, a, bits))) <= 2**bits


def test_eq3_gradients_of_the_quantizer():
    x = torch.tensor([-1.0, 0.2, 0.7, 1.1, 1.9, 3.0], requires_grad=True)
    alpha = nn.Parameter(torch.tensor(1.5))
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    pact.pact_quantize(x, alpha, 2).backward(g)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0, 0.0]  # 1[0 <= x < alpha]
    assert alpha.grad.item() == 11.0 == pact.alpha_gradient_rule(x.detach(), alpha, g).item()  # 5 + 6
    assert alpha.grad.shape == alpha.shape


def test_autograd_version_differs_by_the_rounding_error_term():
    g = torch.Generator().manual_seed(2)
    x = (2 * torch.randn(2000, generator=g)).requires_grad_()
    a1 = torch.tensor(1.3, requires_grad=True)
    a2 = torch.tensor(1.3, requires_grad=True)
    y1 = pact.pact_quantize(x, a1, 2)
    y1.sum().backward()
    x1 = x.grad.clone()
    x.grad = None
    y2 = pact.pact_quantize_autograd(x, a2, 2)
    y2.sum().backward()
    assert torch.allclose(y1, y2)
    assert torch.allclose(x1, x.grad)  # same input gradient: 1[0 <= x < alpha]
    xd = x.detach()
    inside = (xd >= 0) & (xd < 1.3)
    extra = ((y1.detach() - xd) / 1.3 * inside).sum()
    assert torch.isclose(a2.grad, a1.grad + extra, atol=1e-3)
    assert a1.grad.item() == (xd >= 1.3).sum().item()


def test_module_learns_alpha_and_fixed_baseline_does_not():
    layer = pact.PACT(bits=2, alpha=6.0)
    assert isinstance(layer.alpha, nn.Parameter) and [p for p in layer.parameters()] == [layer.alpha]
    fixed = pact.PACT(bits=2, alpha=6.0, learn_alpha=False)
    assert list(fixed.parameters()) == [] and fixed.alpha.item() == 6.0
    x = torch.tensor([-1.0, 1.0, 2.9, 7.0])
    assert layer(x).tolist() == [0.0, 0.0, 2.0, 6.0]
    assert pact.PACT(bits=None, alpha=2.0)(x).tolist() == [0.0, 1.0, 2.0, 2.0]
    model = nn.Sequential(nn.Linear(3, 3), pact.PACT(2, 2.0), nn.Linear(3, 2), pact.PACT(2, 3.0), fixed)
    assert len(pact.pact_modules(model)) == 3
    assert pact.alpha_l2(model, 0.5).item() == pytest.approx(0.5 * (4 + 9))
    assert pact.alpha_l2(nn.Linear(2, 2), 0.1).item() == 0.0
    assert "learn_alpha=True" in repr(layer)


def test_l2_pulls_alpha_down_and_clipped_gradient_pushes_it_up():
    layer = pact.PACT(bits=2, alpha=1.0)
    x = torch.tensor([0.5, 2.0, 3.0])
    (-layer(x).sum()).backward()  # the loss falls when outputs grow: the clipped inputs ask for a larger alpha
    assert layer.alpha.grad.item() == -2.0
    layer.alpha.grad = None
    pact.alpha_l2(nn.Sequential(layer), 0.1).backward()
    assert layer.alpha.grad.item() == pytest.approx(0.2)  # 2 lambda alpha


def test_bad_input():
    with pytest.raises(TypeError, match="x"):
        pact.pact_clip(torch.ones(3, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        pact.pact_clip(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="alpha"):
        pact.pact_quantize(torch.ones(3), torch.tensor(-1.0), 2)
    with pytest.raises(ValueError, match="alpha"):
        pact.pact_quantize(torch.ones(3), torch.ones(2), 2)
    with pytest.raises(TypeError, match="alpha"):
        pact.pact_quantize(torch.ones(3), "1", 2)
    with pytest.raises(ValueError, match="bits"):
        pact.pact_quantize(torch.ones(3), 1.0, 0)
    with pytest.raises(ValueError, match="bits"):
        pact.PACT(bits=40)
    with pytest.raises(ValueError, match="alpha"):
        pact.PACT(bits=2, alpha=-1.0)
    with pytest.raises(TypeError, match="learn_alpha"):
        pact.PACT(bits=2, learn_alpha=1)
    with pytest.raises(ValueError, match="lam"):
        pact.alpha_l2(nn.Linear(2, 2), -1.0)
    with pytest.raises(TypeError, match="model"):
        pact.pact_modules("model")


def test_shown_functions_check_their_arguments_first():
    from qteach import display

    shown = display.show_source(pact.pact_clip, pact.pact_quantize, pact.pact_quantize_autograd).text
    shown = shown.split("<details>")[0]
    assert "raise" not in shown and "require_" not in shown
