"""Distillation-guided residual learning (our reconstruction from the abstract of arXiv 2007.05223)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qteach import comparison
from qteach import nn as qnn
from qteach.data import Split
from qteach.papers import distillation_guided_residual as dgr


def _student(branch=False, in_features=10):
    torch.manual_seed(0)
    return dgr.build_student(in_features, branch=branch)


def test_block_distillation_loss_by_hand():
    s = [torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[3.0]])]
    t = [torch.tensor([[0.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0]])]
    # block 1: (1 + 4 + 0 + 4) / 4 = 2.25; block 2: 4 / 1 = 4
    assert dgr.block_distillation_loss(s, t).item() == pytest.approx(6.25)


def test_block_distillation_loss_is_zero_on_equal_features_and_detaches_teacher():
    s = [torch.randn(4, 3, requires_grad=True)]
    t = [torch.randn(4, 3, requires_grad=True)]
    assert dgr.block_distillation_loss(s, [s[0].detach().clone()]).item() == 0.0
    dgr.block_distillation_loss(s, t).backward()
    assert s[0].grad is not None and t[0].grad is None


def test_block_distillation_loss_bad_input():
    with pytest.raises(ValueError, match="teacher_features"):
        dgr.block_distillation_loss([torch.zeros(2, 3)], [torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="number of blocks"):
        dgr.block_distillation_loss([torch.zeros(2, 3)], [])
    with pytest.raises(TypeError, match="lists"):
        dgr.block_distillation_loss(torch.zeros(2, 3), [torch.zeros(2, 3)])


def test_taps_are_the_batch_norms_after_the_middle_layers():
    model = _student()
    assert dgr.block_taps(model) == [4, 7]
    assert dgr.block_taps(dgr.add_si_branches(model, 3)) == [4, 7]
    with pytest.raises(TypeError, match="model"):
        dgr.block_taps(nn.Linear(2, 2))


def test_forward_blocks_equals_the_model_and_returns_bn_outputs():
    model = _student(branch=True).eval()
    x = torch.randn(5, 10)
    logits, features = dgr.forward_blocks(model, x)
    assert torch.equal(logits, model(x))
    assert [f.shape for f in features] == [(5, 128), (5, 128)]
    assert torch.equal(features[0], model[:5](x))


def test_branch_starts_at_zero_so_the_block_equals_the_binary_block():
    plain, wrapped = _student(), dgr.add_si_branches(_student(), 6)
    x = torch.randn(7, 10)
    plain.eval(), wrapped.eval()
    assert torch.equal(plain(x), wrapped(x))
    assert isinstance(wrapped[3], dgr.BinaryBlockWithBranch)


def test_si_branch_is_the_formula():
    torch.manual_seed(1)
    si = dgr.SIBranch(8, 2)
    nn.init.normal_(si.interact.weight)
    x = torch.randn(3, 8)
    expected = torch.relu(x @ si.squeeze.weight.T) @ si.interact.weight.T
    assert torch.allclose(si(x), expected)
    assert sum(p.numel() for p in si.parameters()) == 2 * 2 * 8
    with pytest.raises(ValueError, match="k"):
        dgr.SIBranch(8, 9)
    with pytest.raises(TypeError, match="channels"):
        dgr.SIBranch(8.0, 2)


def test_branch_width_and_overhead_exact():
    assert dgr.branch_width(128) == 6 and dgr.branch_width(10) == 1 and dgr.branch_width(128, 0.5) == 32
    o = dgr.overhead(128, 6)
    assert o["binary_params"] == 2 * 128 * 128 and o["branch_params"] == 2 * 2 * 6 * 128
    assert o["branch_params"] / o["binary_params"] == pytest.approx(0.09375)
    assert o["branch_bits"] == 32 * o["branch_params"]
    assert o["binary_bops"] == 2 * 128 * 128
    assert o["branch_bops"] == 2 * (768 * 32 + 768 * 32 * 32)
    model = dgr.build_student(64, branch=True)
    counted = sum(p.numel() for m in model.modules() if isinstance(m, dgr.SIBranch) for p in m.parameters())
    assert counted == o["branch_params"]
    with pytest.raises(ValueError, match="fraction"):
        dgr.branch_width(128, 1.5)


def test_comparison_layer_is_binary_only():
    w, a, act = dgr.comparison_layer(1, 1)
    assert isinstance(w, qnn.SignQuantizer) and a is None and isinstance(act, qnn.SignQuantizer)
    with pytest.raises(ValueError, match="w_bits"):
        dgr.comparison_layer(2, 1)


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=g)
    y = (x[:, 0] > 0).long()
    return Split(x, y, x[:32], y[:32])


def test_train_distilled_runs_and_clips_binary_weights_only():
    data = _tiny_data()
    teacher = comparison.protocol_mlp(comparison.methods()[0], 32, 32, 10)
    student = _student(branch=True)
    history = dgr.train_distilled(student, data, teacher=teacher, lam=1.0, epochs=2, lr=0.05, batch_size=16)
    assert len(history.test_accuracy) == 2
    assert student[3].binary.weight.abs().max() <= 1.0
    assert all(not p.requires_grad for p in teacher.parameters())
    with pytest.raises(ValueError, match="lam"):
        dgr.train_distilled(student, data, teacher=teacher, lam=-1.0)
    with pytest.raises(ValueError, match="blocks"):
        dgr.train_distilled(student, data, teacher=nn.Sequential(nn.Linear(10, 10)))


def test_distillation_lowers_the_residual():
    data = _tiny_data()
    torch.manual_seed(0)
    teacher = comparison.protocol_mlp(comparison.methods()[0], 32, 32, 10)
    residuals = {}
    for lam in (0.0, 10.0):
        student = _student(branch=True)
        dgr.train_distilled(student, data, teacher=teacher, lam=lam, epochs=5, lr=0.01, batch_size=16, seed=0)
        student.eval()
        teacher.eval()
        with torch.no_grad():
            residuals[lam] = dgr.block_distillation_loss(dgr.forward_blocks(student, data.x_train)[1],
                                                         dgr.forward_blocks(teacher, data.x_train)[1]).item()
    assert residuals[10.0] < residuals[0.0]


def test_protocol_post_training_returns_a_binary_student():
    data = _tiny_data()
    protocol = comparison.Protocol("tiny", "tiny", "", lambda: data, epochs=1, lr=1e-2, batch_size=32)
    teacher = comparison.protocol_mlp(comparison.methods()[0], 32, 32, 10)
    student = dgr.protocol_post_training(teacher, 1, data, 0, protocol)
    assert isinstance(student[3], dgr.BinaryBlockWithBranch)
    with pytest.raises(ValueError, match="w_bits"):
        dgr.protocol_post_training(teacher, 2, data, 0, protocol)
