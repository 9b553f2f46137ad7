"""Tests of qteach.deploy: integer thresholds, bit-plane first layers, export and packed inference.

The specification is the float simulation: a packed network must return exactly the float model's scores (eval
mode), and every folded threshold must reproduce sign(batch_norm(s)) for every integer s in range.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qteach import bitops, data, deploy, train
from qteach import nn as qnn
from qteach.binary import sign


def gen(seed):
    return torch.Generator().manual_seed(seed)


def random_bn(channels, seed, kind=nn.BatchNorm1d, gamma_zero=0.1, scale=5.0):
    """A batch norm in eval mode with random statistics; about a third of the gammas negative, some zero."""
    g = gen(seed)
    bn = kind(channels)
    with torch.no_grad():
        bn.running_mean.copy_(scale * torch.randn(channels, generator=g))
        bn.running_var.copy_(scale * torch.rand(channels, generator=g) + 1e-3)
        gamma = torch.randn(channels, generator=g) + 0.3
        gamma[torch.rand(channels, generator=g) < gamma_zero] = 0.0
        bn.weight.copy_(gamma)
        bn.bias.copy_(2 * torch.randn(channels, generator=g))
    return bn.eval()


def bn_decision(bn, s, bias=None):
    """The float model's sign(bn(s + bias)) for integer s (M,) broadcast over the channels: +-1, (M, C)."""
    pre = s.to(torch.float32)[:, None].expand(-1, bn.num_features).contiguous()
    if bias is not None:
        pre = pre + bias
    if isinstance(bn, nn.BatchNorm2d):
        pre = pre[:, :, None, None]
    with torch.no_grad():
        return sign(bn(pre)).reshape(len(s), -1)


# ------------------------------------------------------------------------------------------ threshold folding


def test_fold_threshold_hand_computed():
    # sigma = sqrt(var + eps) = 2 for all channels; mu = 2.5.
    bn = nn.BatchNorm1d(4, eps=0.5).eval()
    with torch.no_grad():
        bn.running_mean.fill_(2.5)
        bn.running_var.fill_(3.5)
        bn.weight.copy_(torch.tensor([1.0, -1.0, 0.0, 0.0]))
        bn.bias.copy_(torch.tensor([0.5, 0.5, -1.0, 0.0]))
    th = deploy.fold_threshold(bn, low=-10, high=10)
    # ch 0: gamma > 0: s >= 2.5 - 0.5 * 2 / 1 = 1.5  ->  s >= ceil(1.5) = 2
    # ch 1: gamma < 0: s <= 2.5 - 0.5 * 2 / (-1) = 3.5  ->  -s >= ceil(-3.5) = -3
    # ch 2: gamma = 0, beta = -1 < 0: never +1 -> tau = high + 1 = 11
    # ch 3: gamma = 0, beta = 0: sign(0) = +1 always -> tau = low = -10
    assert th.flip.tolist() == [1, -1, 1, 1]
    assert th.tau.tolist() == [2, -3, 11, -10]
    assert th.corrections == 0  # the closed form alone is right here
    assert th.flip.dtype == torch.int8 and th.tau.dtype == torch.int64
    s = torch.tensor([[1, 3, 10, -10], [2, 4, -10, 10]])
    assert th.apply(s).tolist() == [[-1.0, 1.0, -1.0, 1.0], [1.0, -1.0, -1.0, 1.0]]
    assert th.nbytes == 4 * 4 + 1


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_fold_threshold_exact_for_every_integer_in_range(seed, kind):
    k = 97
    bn = random_bn(64, seed, kind=kind)
    assert (bn.weight < 0).any() and (bn.weight == 0).any() and (bn.weight > 0).any()
    th = deploy.fold_threshold(bn, -k, k)
    assert th.corrections == 0  # random parameters: no near ties, the closed-form ceil is already exact
    s = torch.arange(-k, k + 1)
    expected = bn_decision(bn, s)
    assert torch.equal(th.apply(s[:, None].expand(-1, 64)), expected)
    if kind is nn.BatchNorm2d:  # the same decisions in the (N, C, H, W) layout of a conv layer
        image = s.reshape(-1, 1, 1, 1).expand(-1, 64, 2, 3)
        with torch.no_grad():
            ref = sign(bn(image.to(torch.float32).contiguous()))
        assert torch.equal(th.apply(image), ref)


def test_fold_threshold_with_bias_and_without_batch_norm():
    bias = torch.randn(64, generator=gen(3)) * 4
    bn = random_bn(64, seed=7)
    th = deploy.fold_threshold(bn, -50, 50, bias=bias)
    s = torch.arange(-50, 51)
    assert torch.equal(th.apply(s[:, None].expand(-1, 64)), bn_decision(bn, s, bias))
    # no batch norm: a bare sign of s + bias, sign(0) = +1
    th = deploy.fold_threshold(None, -5, 5, bias=torch.tensor([0.0, 0.5, -0.5]), channels=3)
    assert th.flip.tolist() == [1, 1, 1] and th.tau.tolist() == [0, 0, 1]


def test_fold_threshold_reconciles_float32_rounding():
    # beta chosen so that sign(bn(s0)) is a near tie at an integer s0: float32 rounding decides it, and the
    # closed-form float64 threshold is off by one for some channels; the result must still be exact.
    c = 2000
    g = gen(0)
    bn = nn.BatchNorm1d(c).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=g) * 5)
        bn.running_var.copy_(torch.rand(c, generator=g) * 10 + 0.01)
        bn.weight.copy_(torch.randn(c, generator=g))
        s0 = torch.randint(-20, 20, (c,), generator=g).double()
        sigma = torch.sqrt(bn.running_var.double() + bn.eps)
        bn.bias.copy_((-(s0 - bn.running_mean.double()) * bn.weight.double() / sigma).float())
    th = deploy.fold_threshold(bn, -30, 30)
    assert th.corrections > 0
    s = torch.arange(-30, 31)
    assert torch.equal(th.apply(s[:, None].expand(-1, c)), bn_decision(bn, s))


def test_fold_threshold_clamps_out_of_range_thresholds():
    bn = nn.BatchNorm1d(2).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1000.0, -1000.0]))
    th = deploy.fold_threshold(bn, -10, 10)
    # channel 0 needs s >= 1000: never in [-10, 10]; channel 1 needs s >= -1000: always
    assert th.tau.tolist() == [11, -10]
    assert th.apply(torch.tensor([[10, -10]])).tolist() == [[-1.0, 1.0]]


def test_threshold_is_a_popcount_threshold():
    # s = K - 2 popcount(xor) >= tau  <=>  popcount <= (K - tau) / 2: the FINN form, same decisions.
    k = 33
    bn = random_bn(16, seed=2, gamma_zero=0.0)
    with torch.no_grad():
        bn.weight.abs_()
    th = deploy.fold_threshold(bn, -k, k)
    a, w = torch.randn(40, k, generator=gen(1)), torch.randn(16, k, generator=gen(2))
    s = bitops.xnor_matmul(a, w)
    mismatches = (k - s) // 2
    assert torch.equal(th.apply(s) > 0, mismatches <= torch.div(k - th.tau, 2, rounding_mode="floor"))


# ------------------------------------------------------------------------------------ first layer, bit planes


def test_bit_planes_reconstruct_the_codes():
    q = torch.tensor([[0, 1, 2, 255], [128, 7, 64, 3]])
    planes = deploy.bit_planes(q, 8)
    assert planes.shape == (8, 2, 4)
    assert planes[:, 0, 3].tolist() == [1.0] * 8 and planes[:, 1, 0].tolist() == [0.0] * 7 + [1.0]
    weights = (2 ** torch.arange(8)).reshape(8, 1, 1)
    assert torch.equal((planes * weights).sum(0), q.float())


@pytest.mark.parametrize("k", [1, 7, 64, 65])
def test_bitplane_matmul_equals_integer_matmul(k):
    q = torch.randint(0, 256, (9, k), generator=gen(k))
    w = torch.randn(5, k, generator=gen(k + 1))
    expected = q.double() @ sign(w).double().T
    got = deploy.bitplane_matmul(q, w, bits=8)
    assert got.dtype == torch.int64 and torch.equal(got, expected.to(torch.int64))
    # 3-bit codes as floats holding integers
    q3 = torch.randint(0, 8, (4, k), generator=gen(0)).float()
    assert torch.equal(deploy.bitplane_matmul(q3, w, bits=3), (q3 @ sign(w).T).to(torch.int64))


@pytest.mark.parametrize("k", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("n, bits", [(1, 8), (7, 3), (64, 1), (130, 8)])
def test_one_pass_bitplane_kernel_equals_the_readable_bit_plane_product(k, n, bits):
    """The deployed first layer (all planes in one pass, transposed weight words) = bitplane_matmul."""
    q = torch.randint(0, 2**bits, (11, k), generator=gen(k + n))
    q[0] = 0
    q[1] = 2**bits - 1
    w = torch.randn(n, k, generator=gen(k * n))
    layer = deploy._BinaryLinear(bitops.pack_bits(w), k, bits, deploy._row_sums(bitops.pack_bits(w), k))
    got = layer(q)
    assert got.dtype == torch.int32
    assert torch.equal(got.to(torch.int64), deploy.bitplane_matmul(q, w, bits=bits))


@pytest.mark.parametrize("n", [1, 63, 64, 65, 130])
def test_packing_threshold_equals_threshold_then_pack(n):
    """A threshold that packs its output for the next layer = Threshold.apply followed by pack_bits."""
    s = torch.randint(-40, 40, (9, n), generator=gen(n), dtype=torch.int32)
    flip = torch.where(torch.rand(n, generator=gen(n + 1)) < 0.5, 1, -1).to(torch.int8)
    tau = torch.randint(-20, 20, (n,), generator=gen(n + 2))
    threshold = deploy.Threshold(flip, tau)
    op = deploy._ThresholdOp(threshold)
    op.pack_output = True
    packed = op(s)
    assert packed.k == n
    assert (packed.words == bitops._bytes_to_words(bitops.pack_bits(threshold.apply(s)))).all()
    op.pack_output = False
    assert torch.equal(op(s), threshold.apply(s))


def test_export_packs_thresholds_only_before_fully_connected_layers():
    mlp = deploy.export(deploy.binary_mlp(37, (50, 29), 7))
    assert [op.pack_output for op in mlp.ops if isinstance(op, deploy._ThresholdOp)] == [True, True]
    cnn = deploy.export(deploy.binary_cnn(channels=(8, 16)))
    assert [op.pack_output for op in cnn.ops if isinstance(op, deploy._ThresholdOp)] == [False, False]


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1)])
def test_bitplane_conv2d_equals_integer_conv(stride, padding):
    q = torch.randint(0, 256, (2, 3, 7, 6), generator=gen(5))
    w = torch.randn(4, 3, 3, 3, generator=gen(6))
    expected = F.conv2d(q.double(), sign(w).double(), stride=stride, padding=padding)
    got = deploy.bitplane_conv2d(q, w, bits=8, stride=stride, padding=padding)
    assert torch.equal(got, expected.to(torch.int64))


def test_input_code():
    code = deploy.InputCode(8)
    assert code.precision == 8 and code.levels == 255
    x = torch.tensor([-0.5, 0.0, 0.5, 1 / 255, 1.0, 2.0])
    assert code(x).tolist() == [0.0, 0.0, 128.0, 1.0, 255.0, 255.0]  # round(127.5) = 128 (half to even)
    assert deploy.InputCode(1)(torch.tensor([0.49, 0.51])).tolist() == [0.0, 1.0]


# ---------------------------------------------------------------------------------------- export and inference


def randomize_bn(model, seed):
    """Give every batch norm random running statistics and affine parameters (untrained models)."""
    g = gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                scale = 3.0 * float(torch.rand((), generator=g) + 0.2)
                m.running_mean.copy_(scale * torch.randn(c, generator=g))
                m.running_var.copy_(scale**2 * torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.randn(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g))
    return model.eval()


def float_scores(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def test_export_round_trip_of_weights_and_thresholds():
    model = randomize_bn(deploy.binary_mlp(64, (32,), 10, seed=3), seed=3)
    packed = deploy.export(model)
    layers = packed.binary_layers
    assert len(layers) == 2 and len(packed.thresholds) == 1
    for op, layer in zip(layers, [model[0], model[2]]):
        assert op.weight_bits.dtype == torch.uint8
        assert op.weight_bits.shape == (layer.out_features, math.ceil(layer.in_features / 8))
        assert torch.equal(op.unpacked_weight(), sign(layer.weight.detach()))
    assert torch.equal(packed.thresholds[0].tau, deploy.fold_threshold(model[1], -255 * 64, 255 * 64).tau)
    # conv layers keep their filter shape
    cnn = randomize_bn(deploy.binary_cnn(channels=(4, 6), seed=1), seed=1)
    conv = deploy.export(cnn).binary_layers[1]
    assert torch.equal(conv.unpacked_weight(), sign(cnn[2].weight.detach()))


def test_memory_hand_computed():
    model = deploy.binary_mlp(64, (32,), 10)
    packed = deploy.export(model)
    # layer 1: 32 rows x 8 bytes + 32 int32 row sums; threshold: 32 int32 + 4 bytes of flip bits;
    # layer 2: 10 rows x 4 bytes; final batch norm: 4 float32 vectors of 10
    assert packed.nbytes == 32 * 8 + 32 * 4 + (32 * 4 + 4) + 10 * 4 + 4 * 4 * 10 == 716
    # float: 64*32 + 32*10 weights, batch norms 4 x (32 + 10) float32 (num_batches_tracked is not float)
    assert deploy.float_nbytes(model) == 4 * (64 * 32 + 32 * 10) + 4 * 4 * (32 + 10) == 10144


@pytest.mark.parametrize("seed", range(3))
def test_packed_mlp_equals_float_simulation_on_random_inputs(seed):
    model = randomize_bn(deploy.binary_mlp(37, (50, 29), 7, seed=seed), seed=seed)
    x = torch.rand(64, 37, generator=gen(seed))
    x[:5] = 0.0  # all-zero codes
    packed = deploy.export(model)
    assert torch.equal(packed(x), float_scores(model, x))
    assert torch.equal(packed.predict(x), float_scores(model, x).argmax(1))


@pytest.mark.parametrize("seed", range(2))
def test_packed_cnn_equals_float_simulation_on_random_inputs(seed):
    model = randomize_bn(deploy.binary_cnn(channels=(8, 16, 8), seed=seed), seed=seed)
    x = torch.rand(32, 1, 8, 8, generator=gen(seed))
    assert torch.equal(deploy.export(model)(x), float_scores(model, x))


def test_packed_equals_float_for_other_accepted_layouts():
    sq = qnn.SignQuantizer
    # sign input first layer, biases, explicit sign modules, pooling of +-1 values, stride 2, odd channel counts,
    # flatten of the raw input, dropout/identity, no final batch norm (integer scores)
    model = nn.Sequential(
        qnn.QuantConv2d(3, 5, 3, stride=2, padding=1, weight_quantizer=sq(), input_quantizer=sq()),
        nn.BatchNorm2d(5), sq(), nn.MaxPool2d(2),
        qnn.QuantConv2d(5, 7, 3, padding=1, weight_quantizer=sq(), input_quantizer=sq()),
        nn.Dropout(0.5), nn.BatchNorm2d(7), nn.Flatten(),
        qnn.QuantLinear(7 * 2 * 2, 9, weight_quantizer=sq(), input_quantizer=sq()),
        nn.Identity(),
    )
    randomize_bn(model, seed=4)
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None and isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d)):
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen(9)) * 3)
    x = torch.randn(16, 3, 9, 9, generator=gen(5))
    x[:, :, 0, :] = 0.0  # sign(0) = +1
    packed = deploy.export(model, input_shape=(3, 9, 9))
    assert torch.equal(packed(x), float_scores(model, x))

    mlp = randomize_bn(nn.Sequential(nn.Flatten(), *deploy.binary_mlp(64, (16,), 4, seed=2)), seed=2)
    x = torch.rand(8, 1, 8, 8, generator=gen(2))
    assert torch.equal(deploy.export(mlp)(x), float_scores(mlp, x))


def small(split, n):
    """The first ``n`` training samples and the whole test set (fast training, full evaluation)."""
    return data.Split(split.x_train[:n], split.y_train[:n], split.x_test, split.y_test)


def test_packed_equals_float_on_trained_tiny_models():
    torch.manual_seed(0)
    split = data.digits(flatten=True)
    mlp = deploy.binary_mlp(64, (48,), 10, seed=0)
    history = train.fit(mlp, small(split, 600), epochs=3, lr=1e-2, weight_clip=1.0, progress=False)
    assert history.final_test_accuracy > 0.5  # it learned something
    packed = deploy.export(mlp)
    assert torch.equal(packed.predict(split.x_test), float_scores(mlp, split.x_test).argmax(1))
    assert torch.equal(packed(split.x_test), float_scores(mlp, split.x_test))

    split = data.digits()
    cnn = deploy.binary_cnn(channels=(8, 8), seed=0)
    train.fit(cnn, small(split, 400), epochs=1, lr=1e-2, weight_clip=1.0, progress=False)
    assert torch.equal(deploy.export(cnn)(split.x_test), float_scores(cnn, split.x_test))


def test_export_does_not_change_the_model():
    model = randomize_bn(deploy.binary_mlp(64, (16,), 10), seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    deploy.export(model, input_shape=(64,))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_repr_lists_the_steps():
    text = repr(deploy.export(deploy.binary_cnn(channels=(4, 4))))
    assert "8 bit planes" in text and "XNOR-popcount" in text and "threshold" in text and "bytes" in text


# ----------------------------------------------------------------------------------------------- bad input


class ScaledSign(nn.Module):
    """alpha * sign(W) (XNOR-Net's BWN): precision 1 but not +-1."""

    precision = 1

    def forward(self, w):
        return w.abs().mean() * sign(w)


def test_export_rejects_non_sequential():
    with pytest.raises(TypeError, match="model"):
        deploy.export(qnn.QuantLinear(4, 4, weight_quantizer=qnn.SignQuantizer()))


@pytest.mark.parametrize("model,match", [
    (nn.Sequential(qnn.QuantLinear(8, 4, input_quantizer=deploy.InputCode()), nn.BatchNorm1d(4)),
     r"model\[0\].*weight_quantizer"),
    (nn.Sequential(nn.Linear(8, 4)), r"model\[0\].*unsupported layer Linear"),
    (nn.Sequential(qnn.QuantLinear(8, 4, weight_quantizer=ScaledSign(), input_quantizer=deploy.InputCode())),
     r"model\[0\]\.weight_quantizer.*\+-1"),
    (nn.Sequential(qnn.QuantLinear(8, 4, weight_quantizer=qnn.SignQuantizer())),
     r"model\[0\].*first layer's input_quantizer"),
    (nn.Sequential(qnn.QuantLinear(8, 4, weight_quantizer=qnn.SignQuantizer(), input_quantizer=deploy.InputCode()),
                   nn.BatchNorm1d(4), nn.ReLU(),
                   qnn.QuantLinear(4, 2, weight_quantizer=qnn.SignQuantizer(), input_quantizer=qnn.SignQuantizer())),
     r"model\[2\].*ReLU"),
    (nn.Sequential(qnn.QuantLinear(8, 4, weight_quantizer=qnn.SignQuantizer(), input_quantizer=deploy.InputCode()),
                   nn.BatchNorm1d(4),
                   qnn.QuantLinear(4, 2, weight_quantizer=qnn.SignQuantizer())),
     r"model\[2\].*binarized"),
    (nn.Sequential(qnn.QuantConv2d(1, 4, 3, weight_quantizer=qnn.SignQuantizer(), input_quantizer=deploy.InputCode()),
                   nn.BatchNorm2d(4), nn.MaxPool2d(2)),
     r"model\[2\].*negative gamma"),
    (nn.Sequential(qnn.QuantLinear(8, 4, weight_quantizer=qnn.SignQuantizer(), input_quantizer=deploy.InputCode()),
                   qnn.SignQuantizer()),
     "must end with a binary layer"),
])
def test_export_rejects_what_it_cannot_pack(model, match):
    with pytest.raises(ValueError, match=match):
        deploy.export(model)


def test_bn_sign_threshold_is_the_closed_form_of_fold_threshold():
    # the parameters of test_fold_threshold_hand_computed, given as tensors: same flips and thresholds
    t = torch.tensor
    th = deploy.bn_sign_threshold(t([1.0, -1.0, 0.0, 0.0]), t([0.5, 0.5, -1.0, 0.0]), t([2.5] * 4), t([3.5] * 4),
                                  eps=0.5, low=-10, high=10)
    assert th.flip.tolist() == [1, -1, 1, 1] and th.tau.tolist() == [2, -3, 11, -10] and th.corrections == 0
    assert th.flip.dtype == torch.int8 and th.tau.dtype == torch.int64
    bn = random_bn(64, seed=5)
    gamma, beta, mean, var = deploy.bn_parameters(bn)
    closed = deploy.bn_sign_threshold(gamma, beta, mean, var, bn.eps, -40, 40)
    folded = deploy.fold_threshold(bn, -40, 40)
    assert folded.corrections == 0 and torch.equal(closed.tau, folded.tau) and torch.equal(closed.flip, folded.flip)


def test_bn_sign_threshold_scale_and_no_range():
    t = torch.tensor
    # y = (s / 16 - 0.5) / 1 >= 0  <=>  s >= 8; gamma < 0: s <= 8  <=>  -s >= -8
    th = deploy.bn_sign_threshold(t([1.0, -1.0]), t([0.0, 0.0]), t([0.5, 0.5]), t([0.0, 0.0]), eps=1.0,
                                  scale=1 / 16)
    assert th.flip.tolist() == [1, -1] and th.tau.tolist() == [8, -8]
    # no range: the threshold is not clamped, and a constant output (gamma = 0) cannot be written
    th = deploy.bn_sign_threshold(t([1.0]), t([0.0]), t([1000.0]), t([0.0]), eps=1.0)
    assert th.tau.tolist() == [1000]
    with pytest.raises(ValueError, match="low"):
        deploy.bn_sign_threshold(t([0.0]), t([1.0]), t([0.0]), t([1.0]))


@pytest.mark.parametrize("scale", [1 / 16, 0.3])
def test_fold_threshold_with_an_input_scale_is_exact(scale):
    bn = random_bn(64, seed=11)
    th = deploy.fold_threshold(bn, -60, 60, scale=scale)
    s = torch.arange(-60, 61)
    pre = (s.to(torch.float32) * scale)[:, None].expand(-1, 64).contiguous()
    with torch.no_grad():
        assert torch.equal(th.apply(s[:, None].expand(-1, 64)), sign(bn(pre)))


def test_bn_parameters():
    bn = random_bn(6, seed=1)
    gamma, beta, mean, var = deploy.bn_parameters(bn)
    assert torch.equal(gamma, bn.weight) and torch.equal(beta, bn.bias)
    assert torch.equal(mean, bn.running_mean) and torch.equal(var, bn.running_var) and not gamma.requires_grad
    gamma, beta, _, _ = deploy.bn_parameters(nn.BatchNorm2d(3, affine=False))
    assert gamma.tolist() == [1.0] * 3 and beta.tolist() == [0.0] * 3
    with pytest.raises(TypeError, match="layer"):
        deploy.bn_parameters(nn.Linear(2, 2), "layer")
    with pytest.raises(ValueError, match="running"):
        deploy.bn_parameters(nn.BatchNorm1d(3, track_running_stats=False))


def test_bn_sign_threshold_bad_input():
    t = torch.tensor
    ok = t([1.0, 2.0])
    with pytest.raises(TypeError, match="gamma"):
        deploy.bn_sign_threshold(t([1, 2]), ok, ok, ok)
    with pytest.raises(ValueError, match="same shape"):
        deploy.bn_sign_threshold(ok, t([0.0]), ok, ok)
    with pytest.raises(ValueError, match="var"):
        deploy.bn_sign_threshold(ok, ok, ok, t([1.0, -1.0]))
    with pytest.raises(ValueError, match="mean"):
        deploy.bn_sign_threshold(ok, ok, t([0.0, float("inf")]), ok)
    with pytest.raises(ValueError, match="eps"):
        deploy.bn_sign_threshold(ok, ok, ok, ok, eps=-1.0)
    with pytest.raises(TypeError, match="eps"):
        deploy.bn_sign_threshold(ok, ok, ok, ok, eps="1e-5")
    with pytest.raises(ValueError, match="scale"):
        deploy.bn_sign_threshold(ok, ok, ok, ok, scale=0.0)
    with pytest.raises(ValueError, match="low and high"):
        deploy.bn_sign_threshold(ok, ok, ok, ok, low=-3)
    with pytest.raises(ValueError, match="low"):
        deploy.bn_sign_threshold(ok, ok, ok, ok, low=3, high=-3)
    with pytest.raises(ValueError, match="scale"):
        deploy.fold_threshold(nn.BatchNorm1d(2), -3, 3, scale=-1.0)


def test_export_rejects_batch_norm_without_running_statistics():
    model = deploy.binary_mlp(8, (4,), 2)
    model[1] = nn.BatchNorm1d(4, track_running_stats=False)
    with pytest.raises(ValueError, match=r"model\[1\].*running"):
        deploy.export(model)


def test_fold_threshold_bad_input():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="low"):
        deploy.fold_threshold(bn, 5, -5)
    with pytest.raises(TypeError, match="bn"):
        deploy.fold_threshold(nn.Linear(3, 3), -5, 5)
    with pytest.raises(ValueError, match="running"):
        deploy.fold_threshold(nn.BatchNorm1d(3, track_running_stats=False), -5, 5)
    with pytest.raises(ValueError, match="bias"):
        deploy.fold_threshold(bn, -5, 5, bias=torch.zeros(4))
    with pytest.raises(TypeError, match="channels"):
        deploy.fold_threshold(None, -5, 5)
    with pytest.raises(ValueError, match="2\\*\\*24"):
        deploy.fold_threshold(bn, -(2**25), 2**25)
    with pytest.raises(TypeError, match="low"):
        deploy.fold_threshold(bn, 0.5, 5)
    bad = nn.BatchNorm1d(2)
    with torch.no_grad():
        bad.running_mean[0] = float("nan")
    with pytest.raises(ValueError, match="running_mean"):
        deploy.fold_threshold(bad, -5, 5)


def test_bit_plane_bad_input():
    with pytest.raises(ValueError, match="q"):
        deploy.bitplane_matmul(torch.tensor([[256, 0]]), torch.ones(2, 2))
    with pytest.raises(ValueError, match="q"):
        deploy.bitplane_matmul(torch.tensor([[0.5, 0.0]]), torch.ones(2, 2))
    with pytest.raises(ValueError, match="q and w"):
        deploy.bitplane_matmul(torch.tensor([[1, 0]]), torch.ones(2, 3))
    with pytest.raises(ValueError, match="bits"):
        deploy.bit_planes(torch.tensor([1]), bits=0)
    with pytest.raises(ValueError, match="4-D"):
        deploy.bitplane_conv2d(torch.zeros(2, 2, dtype=torch.int64), torch.ones(1, 1, 1, 1))
    with pytest.raises(TypeError, match="x"):
        deploy.InputCode()(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="x"):
        deploy.export(deploy.binary_mlp(8, (4,), 2))(torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]))


def test_builders_bad_input():
    with pytest.raises(TypeError, match="hidden"):
        deploy.binary_mlp(hidden=64)
    with pytest.raises(ValueError, match="image_size"):
        deploy.binary_cnn(channels=(4, 4, 4, 4), image_size=4)
    with pytest.raises(ValueError, match="input_bits"):
        deploy.binary_mlp(input_bits=0)
    with pytest.raises(TypeError, match="model"):
        deploy.float_nbytes("model")


def test_bit_plane_products_reject_nan_weights_and_channel_mismatch():
    with pytest.raises(ValueError, match=r"\bw\b.*NaN"):
        deploy.bitplane_matmul(torch.tensor([[1, 0]]), torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"\bw\b.*NaN"):
        deploy.bitplane_conv2d(torch.ones(1, 1, 3, 3), torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="same C"):
        deploy.bitplane_conv2d(torch.ones(1, 2, 4, 4), torch.ones(1, 3, 3, 3))
    with pytest.raises(ValueError, match="stride"):
        deploy.bitplane_conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3), stride=0)
    with pytest.raises(ValueError, match="q"):
        deploy.bit_planes(torch.tensor([float("inf")]))


def test_input_code_rejects_nan_and_saturates_infinity():
    with pytest.raises(ValueError, match=r"\bx\b.*NaN"):
        deploy.InputCode()(torch.tensor([0.5, float("nan")]))
    assert deploy.InputCode()(torch.tensor([float("inf"), -float("inf")])).tolist() == [255.0, 0.0]


@pytest.mark.parametrize("flip, tau, error, name", [
    ([1], torch.tensor([0]), TypeError, "flip"),
    (torch.tensor([1, 0]), torch.tensor([0, 0]), ValueError, "flip"),
    (torch.tensor([1, -1]), torch.tensor([0]), ValueError, "flip and tau"),
    (torch.tensor([[1]]), torch.tensor([[0]]), ValueError, "flip"),
    (torch.tensor([1]), torch.tensor([0.5]), ValueError, "tau"),
    (torch.tensor([1]), torch.tensor([float("nan")]), ValueError, "tau"),
])
def test_threshold_bad_input(flip, tau, error, name):
    with pytest.raises(error, match=name):
        deploy.Threshold(flip=flip, tau=tau)


def test_threshold_rejects_bad_corrections():
    with pytest.raises(ValueError, match="corrections"):
        deploy.Threshold(torch.tensor([1]), torch.tensor([0]), corrections=-1)


@pytest.mark.parametrize("s, error", [
    ([[1, 2]], TypeError),
    (torch.ones(3, 3, dtype=torch.int64), ValueError),          # 3 channels, the threshold has 2
    (torch.ones(2, dtype=torch.int64), ValueError),             # 1-D
    (torch.tensor([[0.5, 1.0]]), ValueError),                   # not integers
    (torch.tensor([[float("nan"), 1.0]]), ValueError),
])
def test_threshold_apply_bad_s(s, error):
    threshold = deploy.Threshold(torch.tensor([1, -1], dtype=torch.int8), torch.tensor([0, 0]))
    with pytest.raises(error, match=r"\bs\b"):
        threshold.apply(s)


def test_fold_threshold_rejects_non_finite_bias_and_channel_mismatch():
    with pytest.raises(ValueError, match="bias"):
        deploy.fold_threshold(None, -3, 3, bias=torch.tensor([float("nan")]), channels=1)
    with pytest.raises(ValueError, match="bias"):
        deploy.fold_threshold(nn.BatchNorm1d(1).eval(), -3, 3, bias=torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match="channels"):
        deploy.fold_threshold(nn.BatchNorm1d(2).eval(), -3, 3, channels=3)


@pytest.fixture(scope="module")
def packed_mlp():
    return deploy.export(deploy.binary_mlp(16, (8,), 3).eval())


@pytest.fixture(scope="module")
def packed_cnn():
    return deploy.export(deploy.binary_cnn(channels=(4, 8)).eval())


@pytest.mark.parametrize("x, error", [
    ([[0.5] * 16], TypeError),
    (torch.ones(2, 16, dtype=torch.int64), TypeError),
    (torch.tensor([[float("nan")] + [0.5] * 15]), ValueError),
    (torch.ones(16), ValueError),                  # one sample without the batch dimension
    (torch.ones(2, 15), ValueError),               # wrong number of features
    (torch.ones(2, 1, 4, 4), ValueError),          # an image for a linear first layer
])
def test_packed_mlp_bad_input(packed_mlp, x, error):
    with pytest.raises(error, match=r"\bx\b"):
        packed_mlp(x)
    with pytest.raises(error, match=r"\bx\b"):
        packed_mlp.predict(x)


@pytest.mark.parametrize("x", [torch.ones(2, 2, 8, 8), torch.ones(2, 64), torch.ones(2, 1, 2, 2),
                               torch.full((1, 1, 8, 8), float("nan"))])
def test_packed_cnn_bad_input(packed_cnn, x):
    with pytest.raises(ValueError, match=r"\bx\b"):
        packed_cnn(x)


def test_packed_network_accepts_infinite_pixels_like_the_float_model(packed_mlp):
    x = torch.rand(4, 16, generator=gen(0))
    x[0, 0], x[1, 1] = float("inf"), -float("inf")
    saturated = x.clamp(0, 1)
    assert torch.equal(packed_mlp(x), packed_mlp(saturated))


@pytest.mark.parametrize("ops", [[], ["linear"], None])
def test_packed_network_bad_ops(ops):
    with pytest.raises(TypeError, match="ops"):
        deploy.PackedNetwork(ops)


@pytest.mark.parametrize("input_shape", [16, (0,), (16.0,), (15,), (1, 16)])
def test_export_bad_input_shape(input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        deploy.export(deploy.binary_mlp(16, (8,), 3), input_shape=input_shape)
