"""FQN (Li et al., CVPR 2019): percentile ranges, calibration, channel-wise weights, frozen and folded BN.

The paper's full text could not be read; the recipe (percentiles [1 - gamma, gamma], n = 20, gamma = 0.999,
frozen BN statistics, channel-wise weights, asymmetric mapping) is from the abstract and a secondary summary.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qteach import nn as qnn
from qteach import quant
from qteach.papers import fully_quantized_detection as fqn


def test_percentile_range_hand_computed_and_numpy():
    x = torch.arange(11, dtype=torch.float32)  # 0..10
    lo, hi = fqn.percentile_range(x, 0.9)  # 10 % and 90 % quantiles: 1 and 9
    assert (lo.item(), hi.item()) == pytest.approx((1.0, 9.0))
    lo, hi = fqn.percentile_range(x, 1.0)  # gamma = 1 is min/max
    assert (lo.item(), hi.item()) == (0.0, 10.0)
    g = torch.Generator().manual_seed(0)
    y = torch.randn(5000, generator=g) ** 3
    lo, hi = fqn.percentile_range(y, 0.999)
    ref = np.percentile(y.double().numpy(), [0.1, 99.9])
    assert lo.item() == pytest.approx(ref[0], rel=1e-6) and hi.item() == pytest.approx(ref[1], rel=1e-6)


def test_percentile_clips_an_outlier_that_min_max_keeps():
    x = torch.cat([torch.linspace(0, 1, 9999), torch.tensor([50.0])])
    lo, hi = fqn.percentile_range(x, 0.999)
    assert hi.item() < 1.0 + 1e-6  # the outlier is above the 99.9th percentile
    s_pct, _ = quant.qparams(lo, hi, 4)
    s_mm, _ = quant.qparams(x.min(), x.max(), 4)
    assert s_mm.item() / s_pct.item() > 40  # min/max's step is 50x coarser


def test_quantizer_states_and_calibration():
    q = fqn.PercentileQuantizer(4, gamma=0.9)
    with pytest.raises(RuntimeError, match="not calibrated"):
        q(torch.ones(3))
    model = nn.Sequential(nn.Identity(), q)
    batches = [torch.arange(0, 6, dtype=torch.float32), torch.arange(6, 11, dtype=torch.float32)]
    assert fqn.calibrate(model, batches) == 1
    assert (q.lo.item(), q.hi.item()) == pytest.approx((1.0, 9.0))  # pooled over both batches
    # 4 bits on [0, 9] (zero included): step 9 / 15 = 0.6; 10 clips to 9
    out = q(torch.tensor([0.0, 0.65, 10.0]))
    assert out.tolist() == pytest.approx([0.0, 0.6, 9.0], abs=1e-6)
    x = torch.tensor([0.5, 20.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0]  # gradient truncated outside the range
    q.bypass = True
    assert torch.equal(q(torch.tensor([20.0])), torch.tensor([20.0]))


def test_channel_wise_weights_use_one_range_per_output_row():
    w = torch.tensor([[0.01, -0.02, 0.03], [1.0, -2.0, 3.0]])
    per_channel = fqn.channel_wise_weight_quantizer(4)(w)
    per_tensor = fqn.channel_wise_weight_quantizer(4, channel_wise=False)(w)
    assert torch.allclose(per_channel, w, atol=0.2 / 15 + 1e-7 + 5 / 30)
    assert torch.allclose(per_channel[0], w[0], atol=0.05 / 30 + 1e-7)  # small row keeps its detail
    assert torch.count_nonzero(per_tensor[0]) <= 1  # one scale of 5 / 15: the small row is (almost) all 0
    scale, zp = quant.qparams(w.amin(1), w.amax(1), 4, signed=True)
    assert torch.equal(per_channel, quant.fake_quantize(w, scale, zp, 4, signed=True, axis=0))


def test_folded_linear_equals_linear_then_bn_in_train_and_eval():
    torch.manual_seed(0)
    layer = fqn.FoldedLinearBN(3, 5)
    with torch.no_grad():
        layer.bn.weight.uniform_(0.5, 2)
        layer.bn.bias.uniform_(-1, 1)
    ref_bn = nn.BatchNorm1d(5)
    ref_bn.load_state_dict(layer.bn.state_dict())
    x = torch.randn(9, 3)
    y = layer(x)
    y_ref = ref_bn(nn.functional.linear(x, layer.linear.weight))
    assert torch.allclose(y, y_ref, atol=1e-5)
    assert torch.allclose(layer.bn.running_mean, ref_bn.running_mean, atol=1e-6)
    assert torch.allclose(layer.bn.running_var, ref_bn.running_var, atol=1e-5)
    layer.eval(), ref_bn.eval()
    assert torch.allclose(layer(x), ref_bn(nn.functional.linear(x, layer.linear.weight)), atol=1e-5)
    # eval mode equals qteach.nn.fold_batch_norm (Jacob et al. 2018, sec. 3.2)
    w_fold, b_fold = qnn.fold_batch_norm(layer.linear.weight, None, layer.bn)
    assert torch.allclose(layer(x), x @ w_fold.T + b_fold, atol=1e-5)


def test_quantized_folded_layer_uses_the_quantized_folded_weight():
    torch.manual_seed(3)
    layer = fqn.FoldedLinearBN(4, 3, fqn.channel_wise_weight_quantizer(4)).eval()
    with torch.no_grad():
        layer.bn.running_var.uniform_(0.1, 4)
    w_fold, b_fold = qnn.fold_batch_norm(layer.linear.weight, None, layer.bn)
    x = torch.randn(5, 4)
    expected = x @ fqn.channel_wise_weight_quantizer(4)(w_fold).T + b_fold
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_frozen_batch_norm_ignores_the_batch_and_keeps_its_statistics():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model(torch.randn(16, 4))  # some running statistics
    stats = model[1].running_mean.clone()
    fqn.freeze_batch_norm(model)
    assert isinstance(model[1], fqn.FrozenBatchNorm)
    model.train()
    assert not model[1].training
    x = torch.randn(8, 4)
    out_batch, out_single = model(x), model(x[:1])
    assert torch.allclose(out_batch[:1], out_single, atol=1e-6)  # no batch dependence
    assert torch.equal(model[1].running_mean, stats)
    assert model[1].weight.requires_grad


def test_folded_layer_with_frozen_bn_uses_running_statistics():
    torch.manual_seed(2)
    net = nn.Sequential(fqn.FoldedLinearBN(4, 2))
    net(torch.randn(8, 4))
    fqn.freeze_batch_norm(net)
    net.train()
    stats = net[0].bn.running_var.clone()
    x = torch.randn(3, 4)
    assert torch.allclose(net(x)[:1], net(x[:1]), atol=1e-6)
    assert torch.equal(net[0].bn.running_var, stats)


def test_localisation_data_boxes_hold_the_digit_and_hot_pixels_are_outliers():
    d = fqn.localisation_data(size=12, seed=0, hot_fraction=0.5, copies=1)
    images, labels, boxes = d["train"]
    assert images.shape[1:] == (1, 12, 12) and len(labels) == len(boxes) == len(images)
    assert len(d["test"][0]) + len(images) == 1797
    digits = fqn.qdata.digits(seed=0)
    for i in (0, 7, 100):
        cx, cy = (boxes[i, :2] * 12).round().int().tolist()
        crop = images[i, 0, cy - 4:cy + 4, cx - 4:cx + 4].clamp(max=1)
        inside = digits.x_train[i, 0]
        assert torch.equal(crop[inside > 0] >= inside[inside > 0], torch.ones_like(inside[inside > 0], dtype=bool))
    assert torch.allclose(boxes[:, 2:], torch.full_like(boxes[:, 2:], 8 / 12))
    hot = (images.flatten(1) > 1).any(1).float().mean().item()
    assert 0.4 < hot < 0.6 and images.max() <= 6
    again = fqn.localisation_data(size=12, seed=0, hot_fraction=0.5, copies=1)
    assert torch.equal(again["train"][0], images)


def test_tiny_detector_quantizes_everything_and_trains():
    model = fqn.TinyDetector(weight_quantizer=fqn.channel_wise_weight_quantizer,
                             activation_quantizer=fqn.PercentileQuantizer)
    assert sum(isinstance(m, fqn.PercentileQuantizer) for m in model.modules()) == 3  # input + 2 activations
    assert model.head.weight_quantizer is not None
    d = fqn.localisation_data(copies=1)
    torch.manual_seed(0)
    x = d["train"][0][:64]
    assert fqn.calibrate(model, [x]) == 3
    before = fqn.detection_loss(model(x), d["train"][1][:64], d["train"][2][:64]).item()
    fqn.fit_detector(model, tuple(t[:256] for t in d["train"]), epochs=3, lr=3e-3, batch_size=32)
    model.train()
    after = fqn.detection_loss(model(x), d["train"][1][:64], d["train"][2][:64]).item()
    assert after < before


def test_box_iou_hand_computed():
    a = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    b = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.6, 0.5, 0.2, 0.2]])  # shifted by half a width: 1 / 3
    assert fqn.box_iou(a, b).tolist() == pytest.approx([1.0, 1 / 3])


def test_comparison_layer():
    w, i, act = fqn.comparison_layer(4, 4)
    assert w.axis == 0 and w.precision == 4 and i is None
    assert isinstance(act[1], fqn.PercentileQuantizer) and act[1].gamma == fqn.GAMMA
    w, _, act = fqn.comparison_layer(32, 32)
    assert w is None and isinstance(act, nn.ReLU)


def test_bad_input():
    with pytest.raises(ValueError, match="gamma"):
        fqn.percentile_range(torch.ones(3), 0.4)
    with pytest.raises(TypeError, match="x"):
        fqn.percentile_range(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="x"):
        fqn.percentile_range(torch.tensor([]))
    with pytest.raises(ValueError, match="bits"):
        fqn.PercentileQuantizer(0)
    with pytest.raises(ValueError, match="batches"):
        fqn.calibrate(nn.Identity(), [])
    with pytest.raises(TypeError, match="model"):
        fqn.freeze_batch_norm("net")
    with pytest.raises(ValueError, match="size"):
        fqn.TinyDetector(size=4)
    with pytest.raises(ValueError, match="hot_fraction"):
        fqn.localisation_data(hot_fraction=1.5)
    with pytest.raises(ValueError, match="epochs"):
        fqn.fit_detector(nn.Linear(2, 14), (torch.ones(2, 2), torch.zeros(2), torch.ones(2, 4)), epochs=0)
    with pytest.raises(ValueError, match="a and b"):
        fqn.box_iou(torch.ones(2, 4), torch.ones(3, 4))
