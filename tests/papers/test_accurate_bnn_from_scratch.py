"""BinaryDenseNet (Bethge, Yang, Bornstein, Meinel 2019): transitions, network shapes, quantizer swaps, checked
against a transcription of the official code (BMXNet-v2-examples, binary_models/basenet_dense.py) and PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import bitops
from qteach import nn as qnn
from qteach.papers import accurate_bnn_from_scratch as ab
from qteach.papers import competitive_bnn_from_scratch as cb
from qteach.papers import xnor_net


def official_transition_features(num_features, reduction_factor):
    """Transcription of basenet_dense.py lines 146-147, with the rate of get_basenet_constructor (line 216):
    ``reduction = [1 / x for x in reduction_factor]``, ``num_features // reduction``, rounded to 32."""
    reduction = 1 / reduction_factor
    num_out_features = num_features // reduction
    return int(round(num_out_features / 32)) * 32  # noqa: RUF046 (verbatim)


# densenet.py lines 42-47: block_config, reduction_factor; growth 64 and 64 initial features (basenet_dense.py
# line 208). Larq Zoo's BinaryDenseNet28/37/45 (a port of these models) end with 576, 640 and 800 features.
SPECS = {"28": ([6, 6, 6, 5], [1 / 2.7, 1 / 2.7, 1 / 2.2], 576),
         "37": ([6, 8, 12, 6], [1 / 3.3, 1 / 3.3, 1 / 4], 640),
         "45": ([6, 12, 14, 8], [1 / 2.7, 1 / 3.3, 1 / 4], 800)}


@pytest.mark.parametrize("name", SPECS)
def test_transition_features_reproduce_the_official_networks(name):
    block_config, factors, final = SPECS[name]
    ours = theirs = 64
    for i, blocks in enumerate(block_config):
        ours, theirs = ours + 64 * blocks, theirs + 64 * blocks
        if i < len(block_config) - 1:
            ours = ab.transition_features(ours, 1 / factors[i])
            theirs = official_transition_features(theirs, factors[i])
            assert ours == theirs and ours % 32 == 0
    assert ours == final


def test_transition_features_by_hand():
    assert ab.transition_features(448, 2.7) == 160  # 448 // 2.7 = 165 -> 5.16 -> 5 x 32
    assert ab.transition_features(960, 4) == 256  # 240 / 32 = 7.5 rounds to even: 8
    assert ab.transition_features(160, 2, multiple=8) == 80
    assert ab.transition_features(100, 3, multiple=1) == 33


def test_paper_transition_layers_and_shapes():
    block = ab.transition(160, 80)
    kinds = [type(m) for m in block]
    assert kinds == [nn.BatchNorm1d, nn.Unflatten, nn.MaxPool1d, nn.Flatten, nn.ReLU, qnn.QuantLinear]
    assert block.out_features == 80 and block[-1].in_features == 80  # max pooling halves the features first
    assert ab.binary_layers(block) == []  # fp_conv: full precision
    assert block(torch.randn(5, 160)).shape == (5, 80)


def test_max_pool_pairs_neighbouring_features():
    block = ab.transition(4, 2, "max_pool").eval()
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    assert block(x).tolist() == [[1.0, 3.0]]
    assert ab.transition(4, 2, "pool")(x).tolist() == [[-0.5, 1.75]]


def test_binary_transition_is_xnor_popcount():
    block = ab.transition(64, 32, "bn,q_conv").eval()
    (layer,) = ab.binary_layers(block)
    x = torch.randn(7, 64)
    out = block(x)
    a, w = torch.where(block[0](x) >= 0, 1.0, -1.0), torch.where(layer.weight >= 0, 1.0, -1.0)
    assert torch.equal(out, a @ w.T)
    assert torch.equal(out, bitops.xnor_matmul(a, w).to(out.dtype))


def test_binary_densenet_mlp_shapes_and_counts():
    model = ab.binary_densenet_mlp(64, init_features=64, growth=32, stages=(3, 3), reduction=2.0)
    # 64 + 3 * 32 = 160 -> transition 80 -> 80 + 3 * 32 = 176 into the classifier
    assert model[4].out_features == 80 and model[-1].in_features == 176
    assert len(ab.binary_layers(model)) == 6
    assert cb.binary_macs(model) == 32 * (64 + 96 + 128) + 32 * (80 + 112 + 144)
    assert model(torch.randn(9, 64)).shape == (9, 10)
    plain = ab.binary_densenet_mlp(64, shortcut="none", stages=(2, 2))
    assert plain[-1].in_features == 64 and len(ab.binary_layers(plain)) == 4
    binary_t = ab.binary_densenet_mlp(64, downsample="bn,q_conv")
    assert len(ab.binary_layers(binary_t)) == 7


def test_seed_fixes_the_initialisation():
    a, b = ab.binary_densenet_mlp(64, seed=3), ab.binary_densenet_mlp(64, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_swap_quantizers():
    model = ab.binary_densenet_mlp(64, seed=0)
    ab.swap_quantizers(model, xnor_net.BinaryWeight, xnor_net.ScaledSignInput)
    layers = ab.binary_layers(model)
    assert len(layers) == 6
    assert all(isinstance(m.weight_quantizer, xnor_net.BinaryWeight) for m in layers)
    assert all(isinstance(m.input_quantizer, xnor_net.ScaledSignInput) for m in layers)
    assert len({id(m.input_quantizer) for m in layers}) == 6  # one new quantizer per layer
    ab.swap_quantizers(model, input_quantizer=ab.ApproxSignQuantizer)
    assert all(isinstance(m.weight_quantizer, xnor_net.BinaryWeight) for m in ab.binary_layers(model))


def test_approx_sign_gradient_by_hand():
    x = torch.tensor([-1.5, -0.5, 0.0, 0.25, 1.0], requires_grad=True)
    y = ab.ApproxSignQuantizer()(x)
    y.sum().backward()
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 1.5, 0.0]  # 2 - 2|x| inside [-1, 1]


def test_scaling_cancels_in_batch_norm_for_the_weights_not_for_the_inputs():
    torch.manual_seed(0)
    x = torch.randn(128, 32)
    layer = qnn.QuantLinear(32, 16, bias=False, weight_quantizer=cb.BinaryWeightQuantizer(),
                            input_quantizer=qnn.SignQuantizer())
    bn = nn.BatchNorm1d(16, affine=False)
    base = bn(layer(x))
    layer.weight_quantizer = xnor_net.BinaryWeight()
    assert torch.allclose(bn(layer(x)), base, atol=1e-3)  # alpha per output: absorbed by batch norm
    layer.input_quantizer = xnor_net.ScaledSignInput()
    assert not torch.allclose(bn(layer(x)), base, atol=1e-2)  # beta per sample: not absorbed


@pytest.mark.parametrize("call,error,name", [
    (lambda: ab.transition_features(0, 2), ValueError, "num_features"),
    (lambda: ab.transition_features(10, 0), ValueError, "reduction"),
    (lambda: ab.transition_features(10, 2.0, multiple=0), ValueError, "multiple"),
    (lambda: ab.transition_features(10, 4.0), ValueError, "rounds to 0"),
    (lambda: ab.transition(0, 4), ValueError, "in_features"),
    (lambda: ab.transition(4, 4, "bn,conv"), ValueError, "structure"),
    (lambda: ab.transition(4, 4, 3), TypeError, "structure"),
    (lambda: ab.transition(4, 4, threshold=-1.0), ValueError, "threshold"),
    (lambda: ab.binary_densenet_mlp(64, stages=()), TypeError, "stages"),
    (lambda: ab.binary_densenet_mlp(64, stages=(2, 0)), ValueError, "stages"),
    (lambda: ab.binary_densenet_mlp(64, growth=0), ValueError, "growth"),
    (lambda: ab.binary_densenet_mlp(64, shortcut="skip"), ValueError, "shortcut"),
    (lambda: ab.ApproxSignQuantizer()(torch.tensor([1, 2])), TypeError, "x"),
    (lambda: ab.binary_layers("model"), TypeError, "model"),
    (lambda: ab.swap_quantizers(nn.Linear(2, 2), weight_quantizer=3), TypeError, "weight_quantizer"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
