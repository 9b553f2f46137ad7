"""SeerNet: the low-bit predictor, its error bound, the masks, the sparse convolution and the counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.papers import seernet as s


def _layer(seed, n=3, cin=4, cout=5, size=6, k=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, cin, size, size, generator=g)
    w = torch.randn(cout, cin, k, k, generator=g) * 0.3
    b = torch.randn(cout, generator=g) * 0.1
    return x, w, b


def test_quantize_weights_hand_values():
    w = torch.tensor([[0.3, -0.9, 0.0, 0.45]]).view(1, 1, 2, 2)
    codes, scale = s.quantize_weights(w, 3)  # qmax 3, s = 0.9 / 3 = 0.3
    assert scale.tolist() == pytest.approx([0.3])
    assert codes.flatten().tolist() == [1.0, -3.0, 0.0, 2.0]  # 0.45 / 0.3 = 1.5 -> 2 (half to even)
    codes, scale = s.quantize_weights(w, 1)  # sign, mean |w| = 1.65 / 4
    assert codes.flatten().tolist() == [1.0, -1.0, 1.0, 1.0]
    assert scale.tolist() == pytest.approx([0.4125])


def test_quantize_activations_hand_values_and_half_step():
    x = torch.tensor([0.0, 0.2, 0.5, 0.9]).view(1, 1, 2, 2)
    codes, scale = s.quantize_activations(x, 2)  # s = 0.9 / 3 = 0.3
    assert float(scale) == pytest.approx(0.3)
    assert codes.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert float((x.double() - scale * codes).abs().max()) <= float(scale) / 2 + 1e-12


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_predict_equals_float_conv_of_quantized_tensors(bits):
    x, w, b = _layer(bits)
    y_hat, _ = s.predict(x, w, b, bits, padding=1)
    qx, sx = s.quantize_activations(x, bits)
    qw, sw = s.quantize_weights(w, bits)
    reference = F.conv2d(sx * qx, sw.view(-1, 1, 1, 1) * qw, b.double(), padding=1)
    assert torch.allclose(y_hat, reference, atol=1e-12)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_holds(bits, seed):
    x, w, b = _layer(seed, size=7)
    y = F.conv2d(x.double(), w.double(), b.double(), padding=1)
    y_hat, bound = s.predict(x, w, b, bits, padding=1)
    assert bool(((y - y_hat).abs() <= bound).all())
    # the bound shrinks as bits grow (bits >= 2)
    if bits >= 3:
        assert bound.mean() < s.predict(x, w, b, bits - 1, padding=1)[1].mean()


def test_bound_hand_value():
    # one input channel, 1x1 kernel: B = s_x/2 |w| + eps |Qx| + slack
    x = torch.tensor([[[[0.0, 0.25, 1.0]]]])
    w = torch.tensor([[[[0.5]]]])
    y_hat, bound = s.predict(x, w, None, 2)  # s_x = 1/3, w exact at 2 bits (code 1, scale 0.5)
    assert y_hat.flatten().tolist() == pytest.approx([0.0, 0.5 / 3, 0.5])
    qx = torch.tensor([0.0, 1.0, 3.0]) / 3
    assert bound.flatten().tolist() == pytest.approx((1 / 6 * 0.5 + 0 * qx + s.FLOAT_SLACK).tolist())


def test_sparse_conv_equals_dense_where_computed_and_zero_elsewhere():
    x, w, b = _layer(3, size=5)
    dense = F.conv2d(x, w, b, padding=1)
    g = torch.Generator().manual_seed(9)
    mask = torch.rand(dense.shape, generator=g) > 0.6
    out = s.sparse_conv2d(x, w, b, mask, padding=1)
    assert torch.allclose(out[mask], dense[mask], atol=1e-5)
    assert bool((out[~mask] == 0).all())
    full = s.sparse_conv2d(x, w, None, torch.ones_like(mask), padding=0 + 1)
    assert torch.allclose(full, F.conv2d(x, w, padding=1), atol=1e-5)


def test_sparse_conv_awkward_shapes():
    g = torch.Generator().manual_seed(4)
    x, w = torch.rand(1, 3, 5, 7, generator=g), torch.randn(2, 3, 2, 3, generator=g)
    dense = F.conv2d(x, w)
    mask = torch.ones_like(dense, dtype=torch.bool)
    assert torch.allclose(s.sparse_conv2d(x, w, None, mask), dense, atol=1e-5)
    assert s.sparse_conv2d(x, w, None, torch.zeros_like(mask)).abs().sum() == 0


@pytest.mark.parametrize("bits", [1, 2, 4, 6])
def test_conservative_masks_cover_every_needed_output(bits):
    x, w, b = _layer(bits + 10, n=4, size=8)
    y = F.conv2d(x, w, b, padding=1)
    y_hat, bound = s.predict(x, w, b, bits, padding=1)
    for pool in (None, 2):
        mask = s.predicted_mask(y_hat, bound, pool, conservative=True)
        needed = s.needed_outputs(y, pool)
        assert bool((needed <= mask).all())
        out = F.relu(s.sparse_conv2d(x, w, b, mask, padding=1))
        dense = F.relu(y)
        if pool is None:
            assert torch.allclose(out, dense, atol=1e-5)
        else:
            assert torch.allclose(F.max_pool2d(out, 2), F.max_pool2d(dense, 2), atol=1e-5)


def test_masks_hand_example():
    y_hat = torch.tensor([[[[0.5, -0.1], [0.19, 0.4]]]], dtype=torch.float64)
    bound = torch.full_like(y_hat, 0.15)
    assert s.predicted_mask(y_hat, bound).flatten().tolist() == [True, False, True, True]
    assert s.predicted_mask(y_hat, bound, conservative=True).flatten().tolist() == [True, True, True, True]
    assert s.predicted_mask(y_hat, bound, pool=2).flatten().tolist() == [True, False, False, False]
    # could win: upper >= best lower 0.35 -> 0.5 and 0.4
    assert s.predicted_mask(y_hat, bound, 2, True).flatten().tolist() == [True, False, False, True]
    # the pool mask of the exact values: the window's positive winner only
    assert s.needed_outputs(-y_hat, 2).flatten().tolist() == [False, True, False, False]


def test_seer_forward_counts_and_exactness():
    model = s.seer_cnn(0).eval()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    dense = model(x)
    logits, stats = s.seer_forward(model, x, 4, conservative=True)
    assert torch.allclose(logits, dense, atol=1e-4)
    assert [st["total"] for st in stats] == [6 * 8 * 64, 6 * 16 * 16]
    for st, (cin, k) in zip(stats, ((1, 3), (8, 3))):
        assert st["needed_computed"] == st["needed"] <= st["computed"] <= st["total"]
        assert st["macs"] == st["computed"] * cin * k * k
    _, stats = s.seer_forward(model, x, 2, conservative=False)
    assert all(st["computed"] <= st["total"] // 4 for st in stats)  # at most one winner per 2x2 window


def test_bad_inputs():
    x, w, b = _layer(0)
    with pytest.raises(ValueError, match="non-negative"):
        s.quantize_activations(-x, 4)
    with pytest.raises(ValueError, match="bits"):
        s.predict(x, w, b, 0)
    with pytest.raises(TypeError, match="bits"):
        s.quantize_weights(w, 2.0)
    with pytest.raises(ValueError, match="channels"):
        s.predict(x[:, :2], w, b, 4)
    with pytest.raises(ValueError, match="b must"):
        s.predict(x, w, b[:2], 4)
    with pytest.raises(ValueError, match="mask"):
        s.sparse_conv2d(x, w, b, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="pool"):
        s.predicted_mask(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3), pool=2)
    with pytest.raises(TypeError, match="x"):
        s.predict(x.long(), w, b, 4)
    with pytest.raises(TypeError, match="model"):
        s.seer_forward(torch.nn.Linear(2, 2), x, 4)
