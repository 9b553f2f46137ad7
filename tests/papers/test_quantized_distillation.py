"""Tests of qteach.papers.quantized_distillation against hand-computed values of the paper's uniform quantization
(Polino et al., 2018, Sec. 2.1) and line-by-line transcriptions of the official code
(https://github.com/antspy/quantized_distillation, commit bb500b7)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.papers import quantized_distillation as qd


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- transcriptions of the official code ----------------------------------------------------------------------


def official_create_bucket_tensor(tensor, bucket_size):
    # quantization/help_functions.py lines 67-94 (fill_values='last')
    if bucket_size is None:
        return tensor
    tensor = tensor.view(-1)
    fill_values = tensor[-1]
    total_length = tensor.numel()
    multiple, rest = divmod(total_length, bucket_size)
    if multiple != 0 and rest != 0:
        values_to_add = torch.ones(bucket_size - rest) * fill_values
        tensor = torch.cat([tensor, values_to_add])
    if multiple == 0:
        tensor = tensor.view(1, total_length)
    else:
        tensor = tensor.view(-1, bucket_size)
    return tensor


def official_uniform_quantization(tensor, s, bucket_size=None):
    # quantization/quant_functions.py lines 155-194 with type_of_scaling='linear', stochastic_rounding=False,
    # max_element=False, subtract_mean=False; the linear ScalingFunction of lines 56-107 and 131-152
    tensor = tensor.clone()
    original_size, original_length = tensor.size(), tensor.numel()
    tensor = official_create_bucket_tensor(tensor, bucket_size)
    if bucket_size is None:
        tensor = tensor.view(-1)
        min_rows, _ = tensor.min(dim=0, keepdim=True)
        max_rows, _ = tensor.max(dim=0, keepdim=True)
    else:
        min_rows, _ = tensor.min(dim=1, keepdim=True)
        max_rows, _ = tensor.max(dim=1, keepdim=True)
    alpha = max_rows - min_rows
    beta = min_rows
    alpha[alpha < 1e-10] = 1
    tensor = (tensor - beta.expand_as(tensor)) / alpha.expand_as(tensor)
    s = s - 1                                        # line 172
    tensor = torch.round(tensor * s) / s             # lines 189-191
    tensor = tensor * alpha.expand_as(tensor) + beta.expand_as(tensor)   # lines 142-143
    return tensor.view(-1)[0:original_length].view(original_size)         # lines 149-150


def official_distillation_loss(outputs, outputs_teacher, labels, temperature):
    # cnn_models/help_fun.py lines 95, 124 and 135-139 ('always' strategy); nn.KLDivLoss() of PyTorch 0.3 averaged
    # over all elements (size_average=True), which reduction='mean' reproduces
    weight_teacher_loss = 0.7
    kl = torch.nn.KLDivLoss(reduction="mean")
    loss = weight_teacher_loss * temperature**2 * kl(F.log_softmax(outputs / temperature, dim=1),
                                                     F.softmax(outputs_teacher / temperature, dim=1))
    return loss + (1 - weight_teacher_loss) * F.cross_entropy(outputs, labels)


# --- tests ---------------------------------------------------------------------------------------------------------


def test_hand_computed_two_bits():
    # min 0, max 3: alpha = 3, s = 2^2 - 1 = 3 steps of 1; 1.4 -> 1, 1.6 -> 2, 2.5 -> 2 (half to even)
    v = torch.tensor([0.0, 1.4, 1.6, 2.5, 3.0])
    assert qd.uniform_quantize(v, 2).tolist() == [0.0, 1.0, 2.0, 2.0, 3.0]


def test_hand_computed_buckets():
    # buckets of 2: [-1, 1] and [10, 14]; 1 bit: each value goes to its bucket's min or max
    v = torch.tensor([-1.0, 1.0, 10.0, 11.0, 14.0, 14.0])
    out = qd.uniform_quantize(v, 1, bucket_size=2)
    assert out.tolist() == [-1.0, 1.0, 10.0, 11.0, 14.0, 14.0]
    out = qd.uniform_quantize(torch.tensor([0.0, 0.2, 0.9, 1.0]), 1, bucket_size=4)
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("bits,bucket", [(1, None), (2, None), (3, 7), (4, 64), (8, 10)])
def test_equals_the_official_code(bits, bucket):
    w = randn(13, 9, seed=bits)
    ours = qd.uniform_quantize(w, bits, bucket_size=bucket)
    theirs = official_uniform_quantization(w, 2**bits, bucket)   # conv_forward_model.py line 210: s = 2 ** numBits
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_levels_per_bucket():
    w = randn(1000, seed=3)
    out = qd.uniform_quantize(w, 3, bucket_size=100)
    for row in out.reshape(10, 100):
        assert len(torch.unique(row)) <= 8


def test_stochastic_rounding_is_unbiased_and_on_the_grid():
    v = torch.tensor([0.0, 0.3, 0.55, 1.0])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([qd.uniform_quantize(v, 2, stochastic=True, generator=g) for _ in range(4000)])
    assert torch.allclose(draws.mean(0), v, atol=0.02)
    grid = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    assert torch.all((draws.unsqueeze(-1) - grid).abs().min(-1).values < 1e-6)
    # 0.3 * 3 = 0.9: rounds up to 1/3 with probability 0.9
    assert (draws[:, 1] > 0.3).float().mean().item() == pytest.approx(0.9, abs=0.03)


def test_constant_bucket_is_kept():
    assert qd.uniform_quantize(torch.full((4,), 2.5), 2).tolist() == [2.5] * 4


@pytest.mark.filterwarnings("ignore:reduction")
def test_distillation_loss_equals_the_official_code():
    z_s, z_t = randn(6, 10, seed=4), randn(6, 10, seed=5)
    y = torch.arange(6)
    for t in (1.0, 2.0, 5.0):
        assert torch.allclose(qd.distillation_loss(z_s, z_t, y, temperature=t),
                              official_distillation_loss(z_s, z_t, y, t), atol=1e-6)


def test_distillation_loss_hand_computed():
    # student = teacher: the KL term is 0, only 0.3 * CE remains; CE of (0, ln 3) with label 1 is -ln(3/4)
    z = torch.tensor([[0.0, torch.log(torch.tensor(3.0)).item()]])
    loss = qd.distillation_loss(z, z, torch.tensor([1]))
    assert loss.item() == pytest.approx(0.3 * -torch.log(torch.tensor(0.75)).item(), rel=1e-5)


def test_quantizer_forward_and_straight_through_gradient():
    w = randn(5, 4, seed=6).requires_grad_(True)
    q = qd.UniformQuantizer(bits=2, bucket_size=None)
    out = q(w)
    assert torch.equal(out.detach(), qd.uniform_quantize(w.detach(), 2))
    out.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_bad_arguments():
    with pytest.raises(TypeError):
        qd.uniform_quantize([1.0, 2.0], 2)
    with pytest.raises(ValueError):
        qd.uniform_quantize(torch.ones(3), 0)
    with pytest.raises(ValueError, match="bucket_size"):
        qd.uniform_quantize(torch.ones(3), 2, bucket_size=0)
    with pytest.raises(TypeError, match="stochastic"):
        qd.uniform_quantize(torch.ones(3), 2, stochastic=1)
    with pytest.raises(ValueError, match="teacher_weight"):
        qd.distillation_loss(torch.ones(2, 3), torch.ones(2, 3), torch.tensor([0, 1]), teacher_weight=2)
    with pytest.raises(ValueError, match="same shape"):
        qd.distillation_loss(torch.ones(2, 3), torch.ones(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature"):
        qd.distillation_loss(torch.ones(2, 3), torch.ones(2, 3), torch.tensor([0, 1]), temperature=0)


def _tiny_split():
    from qteach.data import Split
    g = torch.Generator().manual_seed(7)
    x = torch.randn(40, 5, generator=g)
    y = (x[:, 0] > 0).long()
    return Split(x[:30], y[:30], x[30:], y[30:])


def test_train_student_with_and_without_teacher():
    from qteach import nn as qnn
    data = _tiny_split()
    teacher = torch.nn.Linear(5, 2)
    for t in (None, teacher):
        torch.manual_seed(0)
        student = torch.nn.Sequential(qnn.QuantLinear(5, 2, weight_quantizer=qd.UniformQuantizer(2, bucket_size=4)))
        before = student[0].weight.detach().clone()
        history = qd.train_student(student, data, teacher=t, epochs=2, batch_size=8)
        assert len(history.test_accuracy) == 2 and len(history.train_loss) == 2
        assert not torch.equal(before, student[0].weight.detach())     # the float weights were updated
    assert all(p.grad is None for p in teacher.parameters())            # the teacher is frozen
    assert not teacher.training


def test_train_student_first_step_uses_the_official_loss():
    # one full batch, plain SGD-equivalent check: the first loss recorded equals distillation_loss at the start
    data = _tiny_split()
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(5, 2), torch.nn.Linear(5, 2)
    expected = qd.distillation_loss(student(data.x_train), teacher(data.x_train), data.y_train).item()
    history = qd.train_student(student, data, teacher=teacher, epochs=1, batch_size=30, lr=1e-12)
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-5)


def test_train_student_bad_arguments():
    data = _tiny_split()
    with pytest.raises(TypeError, match="student"):
        qd.train_student("net", data)
    with pytest.raises(TypeError, match="data"):
        qd.train_student(torch.nn.Linear(5, 2), (data.x_train, data.y_train))
    with pytest.raises(TypeError, match="teacher"):
        qd.train_student(torch.nn.Linear(5, 2), data, teacher="t")
    with pytest.raises(ValueError, match="epochs"):
        qd.train_student(torch.nn.Linear(5, 2), data, epochs=0)
    with pytest.raises(ValueError, match="temperature"):
        qd.train_student(torch.nn.Linear(5, 2), data, temperature=-1)
