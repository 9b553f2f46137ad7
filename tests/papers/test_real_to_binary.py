"""Real-to-Binary Net (Martinez et al., ICLR 2020): attention maps, the attention loss, the channel gate, the block.

The official repository holds a README only; it links larq zoo's re-implementation, transcribed line by line below
(larq/zoo at commit 77c5853): ``larq_zoo/training/knowledge_distillation/knowledge_distillation.py`` and
``larq_zoo/literature/real_to_bin_nets.py``.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from qteach import comparison
from qteach import nn as qnn
from qteach.papers import real_to_binary as r2b


def larq_normalized_attention_vector(a):
    """knowledge_distillation.py lines 51-57, NHWC in larq, NCHW here:
    attention_area = tf.reduce_mean(tf.math.square(activation_volume), axis=-1)
    attention_vector = tf.reshape(attention_area, (batch_size, -1))
    return attention_vector / tf.reduce_max(attention_vector, axis=-1, keepdims=True)"""
    nhwc = a.permute(0, 2, 3, 1)
    area = torch.mean(torch.square(nhwc), dim=-1)
    vector = area.reshape(a.shape[0], -1)
    return vector / torch.amax(vector, dim=-1, keepdim=True)


def larq_attention_loss(students, teachers):
    """knowledge_distillation.py line 81 (per layer: tf.reduce_mean(tf.math.square(qs - qt), axis=-1)), line 149
    (loss_weight * tf.reduce_mean(tf.stack(layer_losses, axis=-1)), loss_weight 1 here): a mean over examples and
    layers."""
    layers = [torch.mean(torch.square(larq_normalized_attention_vector(s) - larq_normalized_attention_vector(t)),
                         dim=-1) for s, t in zip(students, teachers)]
    return torch.mean(torch.stack(layers, dim=-1))


def test_attention_map_by_hand():
    # one example, 2 channels, 1 x 2 positions: squares (1, 4) and (9, 0) -> means (5, 2) -> / 5
    a = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    assert torch.allclose(r2b.attention_map(a), torch.tensor([[1.0, 0.4]]))
    l2 = r2b.attention_map(a, normalise="l2")
    assert torch.allclose(l2, torch.tensor([[5.0, 2.0]]) / 29 ** 0.5)


def test_attention_map_matches_larq_and_is_invariant():
    torch.manual_seed(0)
    a = torch.randn(4, 6, 3, 5)
    assert torch.allclose(r2b.attention_map(a), larq_normalized_attention_vector(a))
    # the normalisation removes a positive scale and the sign of the activations
    assert torch.allclose(r2b.attention_map(-3.0 * a), r2b.attention_map(a))
    assert r2b.attention_map(a).max(dim=1).values.allclose(torch.ones(4))
    assert torch.equal(r2b.attention_map(torch.zeros(2, 3, 1, 4)), torch.zeros(2, 4))


def test_attention_loss_matches_larq():
    torch.manual_seed(1)
    s = [torch.randn(3, 4, 1, 10), torch.randn(3, 4, 1, 5)]
    t = [torch.randn(3, 8, 1, 10), torch.randn(3, 2, 1, 5)]  # channels may differ: the maps are spatial
    assert torch.allclose(r2b.attention_loss(s, t), larq_attention_loss(s, t))
    assert r2b.attention_loss(s, [x * 2 for x in s]).item() == pytest.approx(0.0, abs=1e-7)


def test_attention_loss_by_hand_and_no_teacher_gradient():
    s = torch.tensor([[[[1.0, 2.0]]]], requires_grad=True)  # map (1, 4) / 4 = (0.25, 1)
    t = torch.tensor([[[[2.0, 2.0]]]], requires_grad=True)  # map (1, 1)
    loss = r2b.attention_loss([s], [t])
    assert loss.item() == pytest.approx(0.75 ** 2 / 2)
    loss.backward()
    assert t.grad is None and s.grad is not None


def test_channel_gate_is_larq_formula():
    torch.manual_seed(2)
    gate = r2b.ChannelGate(16, 12, ratio=8)
    assert gate.reduce.weight.shape == (2, 16) and gate.expand.weight.shape == (12, 2)
    x, y = torch.randn(5, 16, 1, 7), torch.randn(5, 12, 1, 7)
    # real_to_bin_nets.py lines 281-305: global pool, Dense(relu, no bias), Dense(sigmoid, no bias), multiply
    z = x.mean(dim=(2, 3))
    scales = torch.sigmoid(F.relu(z @ gate.reduce.weight.T) @ gate.expand.weight.T)
    assert torch.allclose(gate(x, y), y * scales[:, :, None, None])
    factors = gate.factors(x)
    assert ((factors > 0) & (factors < 1)).all()
    assert r2b.ChannelGate(4, 4, ratio=8).reduce.weight.shape == (1, 4)  # at least one unit


def test_gate_depends_on_the_input_static_scale_does_not():
    torch.manual_seed(3)
    gate = r2b.ChannelGate(8, 8)
    a, b = torch.randn(1, 8, 1, 6), torch.randn(1, 8, 1, 6) + 1.0
    assert not torch.allclose(gate.factors(a), gate.factors(b))


@pytest.mark.parametrize("scaling", r2b.SCALINGS)
@pytest.mark.parametrize("shortcut", [True, False])
def test_block_shape_and_binary_convolution(scaling, shortcut):
    torch.manual_seed(4)
    block = r2b.RealToBinaryBlock(6, (1, 5), scaling=scaling, shortcut=shortcut).eval()
    x = torch.randn(3, 6, 1, 9)
    out = block(x)
    assert out.shape == x.shape
    x_hat = block.bn(x)
    y = F.conv2d(torch.sign(x_hat), torch.sign(block.conv.weight), padding=(0, 2))
    assert torch.equal(y, torch.round(y))  # the convolution is binary: integer sums
    if scaling == "learned":
        y = y * block.scale
    if scaling == "gate":
        y = block.gate(x_hat, y)
    expected = block.act(y) + (x if shortcut else 0)
    assert torch.allclose(out, expected, atol=1e-6)


def test_comparison_conv_block_in_the_protocol():
    block = r2b.comparison_conv_block(1, 1, 16, 16, (1, 5))
    assert isinstance(block, r2b.RealToBinaryBlock) and block.scaling == "gate" and block.shortcut
    assert isinstance(block.conv.weight_quantizer, qnn.SignQuantizer)
    model = comparison.protocol_cnn(r2b.student_method(), 1, 1, 40)
    logits, maps = r2b.forward_with_blocks(model, torch.randn(4, 40))
    assert logits.shape == (4, 10) and [m.shape for m in maps] == [(4, 16, 1, 20), (4, 16, 1, 10)]
    assert not model[4]._forward_hooks  # the hooks are removed


def test_post_training_trains_a_gated_student():
    data = comparison.split(comparison.MNIST1D_CNN)
    small = type(data)(data.x_train[:300], data.y_train[:300], data.x_test[:100], data.y_test[:100])
    protocol = comparison.dataclasses.replace(comparison.MNIST1D_CNN, epochs=1)
    fp = comparison.methods()[0]
    teacher = comparison.protocol_cnn(fp, 32, 32, 40)
    before = copy.deepcopy(teacher.state_dict())
    student = r2b.protocol_post_training(teacher, 1, small, 0, protocol)
    assert isinstance(student[4], r2b.RealToBinaryBlock) and student[4].gate is not None
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # the teacher is frozen
    assert all(w.abs().max() <= 1.0 for w in (student[4].conv.weight, student[6].conv.weight))


def test_bad_inputs():
    with pytest.raises(ValueError, match="normalise"):
        r2b.attention_map(torch.ones(1, 1, 1, 2), normalise="l1")
    with pytest.raises(ValueError, match="a must"):
        r2b.attention_map(torch.ones(2, 3))
    with pytest.raises(TypeError, match="student and teacher"):
        r2b.attention_loss(torch.ones(1, 1, 1, 1), [torch.ones(1, 1, 1, 1)])
    with pytest.raises(ValueError, match="as many"):
        r2b.attention_loss([torch.ones(1, 1, 1, 1)], [])
    with pytest.raises(ValueError, match="ratio"):
        r2b.ChannelGate(4, 4, ratio=0)
    with pytest.raises(ValueError, match="scaling"):
        r2b.RealToBinaryBlock(4, 3, scaling="xnor")
    with pytest.raises(TypeError, match="shortcut"):
        r2b.RealToBinaryBlock(4, 3, shortcut=1)
    with pytest.raises(ValueError, match="w_bits"):
        r2b.comparison_conv_block(2, 1, 4, 4, 3)
    with pytest.raises(ValueError, match="in_channels and out_channels"):
        r2b.comparison_conv_block(1, 1, 4, 8, 3)
    with pytest.raises(ValueError, match="protocol_cnn"):
        r2b.protocol_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="beta"):
        r2b.train_attention_matched(comparison.protocol_cnn(r2b.student_method(), 1, 1, 40),
                                    comparison.split(comparison.MNIST1D_CNN), beta=-1.0)
    with pytest.raises(TypeError, match="data"):
        r2b.train_attention_matched(comparison.protocol_cnn(r2b.student_method(), 1, 1, 40), None)
