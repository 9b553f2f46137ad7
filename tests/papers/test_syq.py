"""SYQ (Faraone et al., CVPR 2018): hand-computed values and a line-by-line transcription of the official code.

The official code is julianfaraone/SYQ at commit 10c2c95, file tensorpack/examples/SYQ-AlexNet/quantize.py
(TensorFlow 0.12); ``_official_fine_grained_quant`` below transcribes its lines 9-77 into PyTorch, with TF's
(kh, kw, in, out) conv layout and the gradient overrides written out by hand.
"""

from __future__ import annotations

import pytest
import torch

from qteach.papers import syq


def _official_fine_grained_quant(x, ws, eta, binary, conv):
    """quantize.py:9-77 in TF layout (kh, kw, in, out) for conv, (in, out) for fc; returns (w, masker, mask_z).

    The gradient is not transcribed by autograd here: the tests write it out from the overrides of line 44,
    {"Sign": "Identity", "Mul": "Add"}: d w / d x = masker (the Add-gradient of the Mul passes g unchanged to
    sign(x), whose gradient is the identity), d w / d ws = sum over the group of g * sign(x) * mask_z where selected.
    """
    eta_x = x.abs().max() * eta                                            # line 13
    if conv:
        kh, kw = x.shape[0], x.shape[1]
        masks = []
        for i in range(kh):                                                # lines 28-34
            for j in range(kw):
                s = ws[kw * i + j, 0]                                      # line 30
                mask = torch.ones(x.shape)                                 # line 31
                mask_p = torch.where(x[i, j] > eta_x, mask[i, j] * s, mask[i, j])      # line 32
                mask_np = torch.where(x[i, j] < -eta_x, mask[i, j] * s, mask_p)       # line 33
                masks.append(mask_np)
        masker = torch.stack(masks).reshape(x.shape)                       # lines 36-37
    else:
        mask = torch.ones(x.shape)                                         # line 60
        mask_p = torch.where(x > eta_x, torch.ones(x.shape) * ws, mask)    # line 61
        masker = torch.where(x < -eta_x, torch.ones(x.shape) * ws, mask_p)  # line 62
    if binary:
        mask_z = torch.ones(x.shape)                                       # lines 39-40 / 64-65
    else:
        mask_z = torch.where((x < eta_x) & (x > -eta_x), torch.zeros(x.shape), torch.ones(x.shape))  # line 42 / 67
    w = torch.sign(x) * mask_z                                             # line 45 / 70
    return w * masker, masker, mask_z                                      # line 47 / 72


def _tf_to_torch(x):
    return x.permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)


def test_threshold_is_eta_times_max():
    w = torch.tensor([[0.1, -0.5], [1.0, -2.0]])
    assert syq.syq_threshold(w).item() == pytest.approx(0.1)        # 0.05 * 2
    assert syq.syq_threshold(w, 0.3).item() == pytest.approx(0.6)
    assert syq.ETA == 0.05                                          # syq-alexnet.py:278


def test_hand_computed_ternary_linear():
    # max|W| = 2, eta = 0.05 -> eta_x = 0.1; 0.05 is below it (zero, masker 1), the rest get the one scale 1.5
    w = torch.tensor([[0.05, -0.5], [1.0, -2.0]], requires_grad=True)
    scales = torch.tensor([1.5], requires_grad=True)
    q = syq.syq_quantize(w, scales, granularity="layer")
    assert q.tolist() == [[0.0, -1.5], [1.5, -1.5]]
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    q.backward(g)
    assert w.grad.tolist() == [[1.0, 3.0], [4.5, 6.0]]             # g * masker: 1 on the zeroed weight
    assert scales.grad.item() == pytest.approx(-2 + 3 - 4)          # sum of g * sign over |W| > eta_x


def test_hand_computed_binary_keeps_scale_one_below_threshold():
    # binary mode with eta > 0 (the code's default binary=True with --eta 0.05): 0.05 -> sign 1, scale 1
    w = torch.tensor([[0.05, -0.5], [1.0, -2.0]], requires_grad=True)
    scales = torch.tensor([1.5], requires_grad=True)
    q = syq.syq_quantize(w, scales, ternary=False, granularity="layer")
    assert q.tolist() == [[1.0, -1.5], [1.5, -1.5]]
    q.sum().backward()
    assert scales.grad.item() == pytest.approx(-1 + 1 - 1)


def test_pixel_and_row_groups_layout():
    ids = syq.group_ids((2, 3, 3, 3), "pixel")
    assert ids[0, 0].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # scale kw * i + j (quantize.py:30)
    assert torch.equal(ids[1, 2], ids[0, 0])
    assert syq.group_ids((2, 3, 3, 3), "row")[1, 1].tolist() == [[0, 0, 0], [1, 1, 1], [2, 2, 2]]
    assert syq.num_groups((8, 4, 5, 3), "pixel") == 15 and syq.num_groups((8, 4, 5, 3), "row") == 5
    assert syq.num_groups((10, 64), "pixel") == 1                   # linear layers: one scale (quantize.py:50-62)


@pytest.mark.parametrize("binary", [True, False])
def test_forward_and_gradients_match_the_official_conv_code(binary):
    g = torch.Generator().manual_seed(0)
    x_tf = torch.randn(3, 3, 4, 5, generator=g)                    # (kh, kw, in, out)
    x_tf[0, 0, 0, 0] = 0.0                                          # tf.sign(0) = 0
    ws = torch.rand(9, 1, generator=g) + 0.5
    eta = 0.3                                                       # large, so that many weights are below eta_x
    ref, masker, mask_z = _official_fine_grained_quant(x_tf, ws, eta, binary, conv=True)

    w = _tf_to_torch(x_tf).clone().requires_grad_(True)
    scales = ws[:, 0].clone().requires_grad_(True)
    q = syq.syq_quantize(w, scales, eta, ternary=not binary, granularity="pixel")
    assert torch.equal(q, _tf_to_torch(ref))

    upstream = torch.randn(q.shape, generator=g)
    q.backward(upstream)
    g_tf = upstream.permute(2, 3, 1, 0)                             # back to (kh, kw, in, out)
    assert torch.allclose(w.grad, _tf_to_torch(g_tf * masker))      # "Sign": "Identity", "Mul": "Add"
    eta_x = x_tf.abs().max() * eta
    selected = ((x_tf > eta_x) | (x_tf < -eta_x)).float()           # where masker holds ws (lines 32-33)
    per_pixel = (g_tf * torch.sign(x_tf) * mask_z * selected).sum(dim=(2, 3)).flatten()
    assert torch.allclose(scales.grad, per_pixel, atol=1e-5)


@pytest.mark.parametrize("binary", [True, False])
def test_forward_matches_the_official_fc_code(binary):
    g = torch.Generator().manual_seed(1)
    x_tf = torch.randn(6, 4, generator=g)                           # TF dense: (in, out)
    ref, _, _ = _official_fine_grained_quant(x_tf, torch.tensor(0.7), 0.2, binary, conv=False)
    q = syq.syq_quantize(x_tf.T.contiguous(), torch.tensor([0.7]), 0.2, ternary=not binary, granularity="pixel")
    assert torch.equal(q, ref.T)


def test_optimal_group_scales_minimise_the_error():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 3, 3, 3, generator=g) * torch.linspace(0.2, 2.0, 9).view(1, 1, 3, 3)
    for granularity in syq.GRANULARITIES:
        best = syq.optimal_group_scales(w, granularity)
        err = ((w - syq.syq_quantize(w, best, granularity=granularity)) ** 2).sum()
        for delta in (-0.01, 0.01):
            worse = ((w - syq.syq_quantize(w, best + delta, granularity=granularity)) ** 2).sum()
            assert worse > err
    errs = [((w - syq.syq_quantize(w, syq.optimal_group_scales(w, gr), granularity=gr)) ** 2).sum()
            for gr in syq.GRANULARITIES]
    assert errs[0] > errs[1] > errs[2]                              # finer groups fit better


def test_binary_eta_zero_init_is_the_code_initial_mean_abs():
    # syq-alexnet.py:36-42: INITIAL scales = mean |W| over (in, out) for conv, over all for fc
    g = torch.Generator().manual_seed(3)
    w = torch.randn(5, 4, 3, 3, generator=g)
    init = syq.optimal_group_scales(w, "pixel", eta=0.0, ternary=False)
    assert torch.allclose(init, w.abs().mean(dim=(0, 1)).flatten())


def test_quantizer_module_trains_its_scales():
    quant = syq.SYQQuantizer((4, 2, 3, 3), "pixel")
    assert quant.scales.shape == (9,) and quant.precision == 2
    w = torch.randn(4, 2, 3, 3, requires_grad=True)
    quant(w).sum().backward()
    assert quant.scales.grad is not None and w.grad is not None
    assert syq.SYQQuantizer((10, 64), "row", ternary=False).precision == 1


def test_bad_input_raises():
    w = torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match="granularity"):
        syq.group_ids(w.shape, "channel")
    with pytest.raises(ValueError, match="eta"):
        syq.syq_threshold(w, 1.5)
    with pytest.raises(ValueError, match="scales"):
        syq.syq_quantize(w, torch.ones(3), granularity="pixel")
    with pytest.raises(TypeError, match="w"):
        syq.syq_threshold(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="w"):
        syq.syq_threshold(torch.ones(3))
    with pytest.raises(ValueError, match="shape"):
        syq.SYQQuantizer((4, 2, 3, 3))(torch.randn(4, 2, 3, 2))
    with pytest.raises(TypeError, match="ternary"):
        syq.syq_quantize(w, torch.ones(9), ternary=1)
