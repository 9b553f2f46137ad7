"""Trained Ternary Quantization: threshold and ternary values by hand, the paper's gradients by hand and against
autograd, the authors' TensorFlow formulation, and training of W_p / W_n."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import data
from qteach import nn as qnn
from qteach.papers import trained_ternary_quantization as ttq

W = torch.tensor([0.1, -0.5, 1.0, -2.0])


def test_threshold_masks_and_values_by_hand():
    # Delta = 0.05 * max|w| = 0.05 * 2 = 0.1; 0.1 is not > 0.1, so it becomes 0
    assert ttq.ttq_threshold(W).item() == pytest.approx(0.1)
    pos, neg = ttq.ternary_masks(W)
    assert pos.tolist() == [False, False, True, False] and neg.tolist() == [False, True, False, True]
    assert ttq.ttq_ternarize(W, 1.5, 0.5).tolist() == [0.0, -0.5, 1.5, -0.5]
    # t = 0.3: Delta = 0.6, only 1.0 and -2.0 survive
    assert ttq.ttq_ternarize(W, 1.5, 0.5, t=0.3).tolist() == [0.0, 0.0, 1.5, -0.5]


def test_gradients_by_hand():
    g = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # latent: W_p * g on I_p, 1 * g on the zeros, W_n * g on I_n
    grad_w, grad_p, grad_n = ttq.ttq_gradients(g, W, 1.5, 0.5)
    assert grad_w.tolist() == [1.0, 1.0, 4.5, 2.0]
    # scales: sum of g over I_p = 3; minus the sum over I_n = -(2 + 4) = -6 (w_t = -W_n there)
    assert grad_p.item() == 3.0 and grad_n.item() == -6.0


def test_backward_pass_implements_the_rules():
    w = W.clone().requires_grad_(True)
    w_p = torch.tensor(1.5, requires_grad=True)
    w_n = torch.tensor(0.5, requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0])
    ttq.ttq_ternarize(w, w_p, w_n).backward(g)
    assert w.grad.tolist() == [1.0, 1.0, 4.5, 2.0]
    assert w_p.grad.item() == 3.0 and w_n.grad.item() == -6.0


@pytest.mark.parametrize("seed", range(3))
def test_scale_gradients_equal_autograd_of_the_forward(seed):
    # the ternary function is linear in W_p and W_n: its exact derivative is the paper's sum (with the minus sign)
    w = data.weight_samples((6, 5), "gaussian", seed=seed)
    g = data.weight_samples((6, 5), "gaussian", seed=seed + 10)
    w_p = torch.tensor(0.8, requires_grad=True)
    w_n = torch.tensor(1.3, requires_grad=True)
    ttq.ttq_ternarize(w, w_p, w_n).backward(g)
    ref_p = torch.tensor(0.8, requires_grad=True)
    ref_n = torch.tensor(1.3, requires_grad=True)
    pos, neg = ttq.ternary_masks(w)
    (ref_p * pos.float() - ref_n * neg.float()).backward(g)
    assert torch.allclose(w_p.grad, ref_p.grad) and torch.allclose(w_n.grad, ref_n.grad)
    assert w_n.grad.item() == pytest.approx(-(g * neg).sum().item())


def test_matches_the_authors_tensorflow_formulation():
    # czhu95/ternarynet tw_ternarize: w = sign(x) * stop_gradient(mask_z) with Sign -> Identity and Mul -> Add
    # gradient overrides (an identity gradient to x), then w * mask_np with mask_np = W_p, W_n or 1
    x = data.weight_samples((4, 7), "laplace", seed=3).requires_grad_(True)
    w_p = torch.tensor(1.2, requires_grad=True)
    w_n = torch.tensor(0.7, requires_grad=True)
    delta = 0.05 * x.detach().abs().max()
    mask_z = ((x > delta) | (x < -delta)).float()
    identity_through = x + (torch.sign(x) * mask_z - x).detach()
    mask_np = torch.where(x > delta, w_p, torch.where(x < -delta, w_n, torch.ones_like(x)))
    reference = identity_through * mask_np
    g = data.weight_samples((4, 7), "gaussian", seed=4)
    reference.backward(g)
    ref_grads = [t.grad.clone() for t in (x, w_p, w_n)]
    for t in (x, w_p, w_n):
        t.grad = None
    out = ttq.ttq_ternarize(x, w_p, w_n)
    assert torch.allclose(out, reference)
    out.backward(g)
    for mine, ref in zip((x.grad, w_p.grad, w_n.grad), ref_grads):
        assert torch.allclose(mine, ref)


def test_quantizer_trains_its_scales():
    torch.manual_seed(0)
    layer = qnn.QuantLinear(5, 3, bias=False, weight_quantizer=ttq.TTQQuantizer())
    names = dict(layer.named_parameters())
    assert {"weight", "weight_quantizer.w_p", "weight_quantizer.w_n"} <= set(names)
    assert layer.weight_quantizer.precision == 2
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(16, 5)
    loss = (layer(x) - 1.0).pow(2).mean()
    loss.backward()
    before = (layer.weight_quantizer.w_p.item(), layer.weight_quantizer.w_n.item())
    opt.step()
    after = (layer.weight_quantizer.w_p.item(), layer.weight_quantizer.w_n.item())
    assert before != after
    q = layer.quantized_weight().detach()
    allowed = torch.tensor([0.0, layer.weight_quantizer.w_p.item(), -layer.weight_quantizer.w_n.item()])
    assert bool(torch.isin(q, allowed).all())


def test_sparsity_and_normalization():
    q = ttq.TTQQuantizer(t=0.3)
    assert q.sparsity(W) == 0.5  # 0.1 and -0.5 are within 0.6
    model = nn.Sequential(qnn.QuantLinear(4, 2, weight_quantizer=ttq.TTQQuantizer()), nn.ReLU(),
                          qnn.QuantLinear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[4.0, -2.0, 1.0, 0.0], [0.5, 0.5, -8.0, 2.0]]))
    ttq.normalize_latent_weights_(model)
    assert model[0].weight.abs().max().item() == 1.0
    assert model[0].weight[0, 0].item() == 0.5  # divided by the layer's max, 8
    assert len(ttq.ttq_layers(model)) == 1


def test_bad_input():
    with pytest.raises(ValueError, match="t"):
        ttq.TTQQuantizer(t=1.5)
    with pytest.raises(TypeError, match="t"):
        ttq.ttq_threshold(W, t="0.05")
    with pytest.raises(ValueError, match="w_p"):
        ttq.TTQQuantizer(w_p=0.0)
    with pytest.raises(ValueError, match="w_n"):
        ttq.TTQQuantizer(w_n=True)
    q = ttq.TTQQuantizer(w_p=2, w_n=0.5)  # checks come first; the scales become float32 parameters
    assert q.w_p.dtype == torch.float32 and q.w_p.item() == 2.0 and q.w_n.item() == 0.5
    with pytest.raises(TypeError, match="w"):
        ttq.ttq_threshold([0.1, 0.2])
    with pytest.raises(ValueError, match="w"):
        ttq.ttq_ternarize(torch.tensor([float("nan")]), 1.0, 1.0)
    with pytest.raises(ValueError, match="w_n"):
        ttq.ttq_ternarize(W, 1.0, torch.ones(2))
    with pytest.raises(ValueError, match="grad"):
        ttq.ttq_gradients(torch.ones(3), W, 1.0, 1.0)
    with pytest.raises(ValueError, match="TTQQuantizer"):
        ttq.normalize_latent_weights_(nn.Linear(2, 2))
