"""Loss-aware binarization (Hou, Yao, Kwok, ICLR 2017): the closed form against brute force and Adam's state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import nn as qnn
from qteach.binary import sign
from qteach.papers import loss_aware_binarization as lab
from qteach.papers import xnor_net


def test_closed_form_hand_computed():
    w = torch.tensor([0.5, -1.0, 2.0, 0.0])
    d = torch.tensor([1.0, 3.0, 0.5, 0.5])
    alpha, b = lab.lab_binarize(w, d)
    # ||d * w||_1 / ||d||_1 = (0.5 + 3 + 1 + 0) / 5 = 0.9; sign(0) = +1
    assert alpha.item() == pytest.approx(0.9)
    assert b.tolist() == [1.0, -1.0, 1.0, 1.0]


def test_closed_form_minimizes_the_weighted_distance():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(7, generator=g, dtype=torch.float64)
    d = torch.rand(7, generator=g, dtype=torch.float64) + 0.1
    alpha, b = lab.lab_binarize(w, d)
    best = lab.weighted_distance(w, alpha, b, d)
    # brute force over all 2^7 sign patterns and a fine grid of alpha
    grid = torch.linspace(0.01, 3, 3000, dtype=torch.float64)
    for code in range(2**7):
        bb = torch.tensor([1.0 if (code >> i) & 1 else -1.0 for i in range(7)], dtype=torch.float64)
        dist = (d * (w[None] - grid[:, None] * bb[None]) ** 2).sum(1).min()
        assert dist >= best - 1e-9


def test_unit_curvature_is_bwn():
    w = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    alpha, b = lab.lab_binarize(w)
    assert torch.isclose(alpha, w.abs().mean())
    bwn_alpha, bwn_b = xnor_net.binary_weight_approximation(w.reshape(1, -1))
    assert torch.isclose(alpha, bwn_alpha.reshape(())) and torch.equal(b.reshape(1, -1), bwn_b)


def test_adam_curvature_is_adams_denominator():
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(6))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    assert lab.adam_curvature(opt, p) is None
    v = torch.zeros(6)
    for t in range(1, 4):
        opt.zero_grad()
        (p**3).sum().backward()
        grad = p.grad.clone()
        v = 0.99 * v + 0.01 * grad**2
        opt.step()
        assert torch.allclose(lab.adam_curvature(opt, p), 1e-8 + (v / (1 - 0.99**t)).sqrt())


def test_quantizer_modes_and_curvature_update():
    torch.manual_seed(0)
    layer = qnn.QuantLinear(4, 3, weight_quantizer=lab.LABWeight("lab"))
    w = layer.weight.detach()
    assert torch.allclose(layer.quantized_weight(), w.abs().mean() * sign(w))  # d = 1 before any step
    model = nn.Sequential(layer)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(8, 4)).pow(2).sum().backward()
    opt.step()
    lab.update_curvature(model, opt)
    d = layer.weight_quantizer.d
    w = layer.weight.detach()
    assert d.shape == w.shape and torch.allclose(layer.quantized_weight(), ((d * w.abs()).sum() / d.sum()) * sign(w))
    bc = lab.LABWeight("binaryconnect")
    x = torch.randn(3, 2, requires_grad=True)
    y = bc(x)
    assert torch.equal(y, sign(x.detach()))
    y.backward(torch.ones(3, 2))
    assert torch.equal(x.grad, torch.ones(3, 2))  # straight through, unclipped


def test_bad_input():
    with pytest.raises(ValueError, match="d"):
        lab.lab_binarize(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="d"):
        lab.lab_binarize(torch.ones(3), torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(TypeError, match="w"):
        lab.lab_binarize(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="mode"):
        lab.LABWeight("xnor")
    with pytest.raises(TypeError, match="optimizer"):
        lab.adam_curvature(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=1), torch.ones(1))


def _official_binarization(W, Wacc):
    """Line-by-line numpy transcription of ``binarization(W, Wacc, "LAB")`` in the official code,
    houlu369/Loss-aware-Binarization ``FNN/lab.py`` lines 41-53 (Theano ``round`` of a value in [0, 1] is
    ``floor(x + 0.5)``: C's round, halves away from zero)."""
    import numpy as np

    L = np.sqrt(Wacc) + 1e-8                       # line 47
    Wb = np.clip((W + 1.0) / 2.0, 0, 1)            # line 48: hard_sigmoid (line 31)
    Wb = np.floor(Wb + 0.5)                        # line 49: round3
    Wb = np.where(Wb != 0, 1.0, -1.0)              # line 50: T.switch(Wb, 1., -1.)
    alpha = np.abs(L * W).sum() / L.sum()          # line 52
    return alpha * Wb                              # line 53


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_official_code(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 7, generator=g, dtype=torch.float64) * 0.3
    w[0, 0] = 0.0  # sign(0) = +1 in both
    acc = torch.rand(5, 7, generator=g, dtype=torch.float64) ** 4 * 1e-3
    alpha, b = lab.lab_binarize(w, acc.sqrt() + 1e-8)
    official = torch.from_numpy(_official_binarization(w.numpy(), acc.numpy()))
    assert torch.allclose(alpha * b, official, rtol=1e-12, atol=0)
    # the accumulator starts at zero (FNN/mnist.py: acc_W = zeros): the first alpha is BWN's mean |w|
    first = torch.from_numpy(_official_binarization(w.numpy(), 0 * acc.numpy()))
    assert torch.allclose(first, w.abs().mean() * sign(w), rtol=1e-12, atol=0)


def test_bias_correction_cancels_in_alpha():
    """The official accumulator has no bias correction (FNN/mnist.py lines 151-153); Adam's has. The factor
    1 / sqrt(1 - beta2^t) is common to all of d and cancels in alpha (up to the 1e-8)."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(40, generator=g, dtype=torch.float64)
    v = torch.rand(40, generator=g, dtype=torch.float64) * 1e-2
    for t in (1, 10, 1000):
        raw, _ = lab.lab_binarize(w, v.sqrt() + 1e-8)
        corrected, _ = lab.lab_binarize(w, (v / (1 - 0.999**t)).sqrt() + 1e-8)
        assert torch.isclose(raw, corrected, rtol=1e-5)


def test_batch_norm_cancels_the_scale():
    """After a batch-normalized layer (the official MNIST/CIFAR nets), the output does not depend on alpha."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(32, 6, generator=g, dtype=torch.float64)
    b = sign(torch.randn(5, 6, generator=g, dtype=torch.float64))
    bn = nn.BatchNorm1d(5, eps=1e-12).double().train()
    out1 = bn(x @ b.T)
    out2 = bn(x @ (0.037 * b).T)
    assert torch.allclose(out1, out2, atol=1e-6)
