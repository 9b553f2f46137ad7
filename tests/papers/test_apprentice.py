"""Tests of qteach.papers.apprentice against hand-computed values of the paper's eq. 1 (Mishra and Marr, 2018)
and against PyTorch's own cross-entropy with probability targets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qteach.data import Split
from qteach.papers import apprentice as ap


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_hand_computed_loss():
    # both networks give logits (0, ln 3): probabilities (1/4, 3/4); label 1
    z = torch.tensor([[0.0, math.log(3.0)]])
    y = torch.tensor([1])
    ce = -math.log(0.75)                                   # 0.28768
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.56233
    assert ap.soft_cross_entropy(z, z).item() == pytest.approx(entropy, rel=1e-6)
    assert ap.apprentice_loss(z, z, y).item() == pytest.approx(1 * ce + 0.5 * ce + 0.5 * entropy, rel=1e-6)
    assert ap.apprentice_loss(z, z, y, alpha=0, beta=1, gamma=0).item() == pytest.approx(ce, rel=1e-6)


def test_hand_computed_temperature():
    # teacher (0, 2 ln 3) at tau = 2 is (0, ln 3): targets (1/4, 3/4); student (0, 0): log(1/2) for both
    z_t = torch.tensor([[0.0, 2 * math.log(3.0)]])
    z_a = torch.zeros(1, 2)
    assert ap.soft_cross_entropy(z_t, z_a, temperature=2.0).item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_soft_term_equals_pytorch_cross_entropy_with_probability_targets():
    z_t, z_a = randn(8, 5, seed=1), randn(8, 5, seed=2)
    for tau in (1.0, 3.0):
        ref = F.cross_entropy(z_a / tau, F.softmax(z_t / tau, dim=1))
        assert torch.allclose(ap.soft_cross_entropy(z_t, z_a, tau), ref, atol=1e-6)


def test_soft_term_is_minimal_at_the_teacher_and_equals_kl_plus_entropy():
    z_t, z_a = randn(4, 6, seed=3), randn(4, 6, seed=4)
    p_t = F.softmax(z_t, 1)
    entropy = -(p_t * F.log_softmax(z_t, 1)).sum(1).mean()
    kl = F.kl_div(F.log_softmax(z_a, 1), p_t, reduction="batchmean")
    assert torch.allclose(ap.soft_cross_entropy(z_t, z_a), kl + entropy, atol=1e-5)
    assert torch.allclose(ap.soft_cross_entropy(z_t, z_t), entropy, atol=1e-6)


def test_gradient_wrt_student_logits_matches_closed_form():
    z_t, z_a = randn(5, 4, seed=5), randn(5, 4, seed=6).requires_grad_(True)
    y = torch.tensor([0, 1, 2, 3, 0])
    beta, gamma, tau = 0.5, 0.5, 2.0
    ap.apprentice_loss(z_t, z_a, y, 1.0, beta, gamma, tau).backward()
    p_a = F.softmax(z_a.detach(), 1)
    expected = (beta * (p_a - F.one_hot(y, 4)) + gamma / tau * (F.softmax(z_a.detach() / tau, 1)
                                                                 - F.softmax(z_t / tau, 1))) / 5
    assert torch.allclose(z_a.grad, expected, atol=1e-6)


def test_teacher_receives_alpha_and_gamma_gradients_as_written():
    z_t, z_a = randn(3, 4, seed=7).requires_grad_(True), randn(3, 4, seed=8)
    y = torch.tensor([1, 2, 3])
    ap.apprentice_loss(z_t, z_a, y, alpha=0.0, beta=0.5, gamma=0.0).backward()
    assert torch.count_nonzero(z_t.grad) == 0          # neither term touches the teacher
    z_t.grad = None
    ap.apprentice_loss(z_t, z_a, y, alpha=0.0, beta=0.5, gamma=0.5).backward()
    assert torch.count_nonzero(z_t.grad) > 0           # the soft term does, as the equation is written


def _tiny():
    x = randn(40, 3, seed=9)
    y = (x[:, 0] > 0).long()
    return Split(x[:30], y[:30], x[30:], y[30:])


def test_scheme_b_freezes_the_teacher_and_scheme_a_trains_it():
    data = _tiny()
    for scheme, changes in (("B", False), ("C", False), ("A", True)):
        torch.manual_seed(0)
        teacher, student = nn.Linear(3, 2), nn.Linear(3, 2)
        before = teacher.weight.detach().clone()
        history = ap.train_apprentice(student, data, teacher=teacher, scheme=scheme, epochs=2, batch_size=8)
        assert len(history.test_accuracy) == 2
        assert (not torch.equal(teacher.weight, before)) == changes
        assert teacher.weight.requires_grad  # restored


def test_no_teacher_baseline_runs_and_is_seeded():
    data = _tiny()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        student = nn.Linear(3, 2)
        runs.append(ap.train_apprentice(student, data, scheme="none", epochs=2, seed=3).train_loss)
    assert runs[0] == runs[1]


def test_bad_arguments():
    z = randn(2, 3)
    y = torch.tensor([0, 1])
    with pytest.raises(TypeError, match="teacher_logits"):
        ap.soft_cross_entropy([[0.0]], z)
    with pytest.raises(ValueError, match="same shape"):
        ap.soft_cross_entropy(z, randn(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        ap.soft_cross_entropy(z, z, temperature=0)
    with pytest.raises(ValueError, match="gamma"):
        ap.apprentice_loss(z, z, y, gamma=-1)
    with pytest.raises(ValueError, match="student_logits"):
        ap.apprentice_loss(z, z[0], y)
    data = _tiny()
    with pytest.raises(ValueError, match="scheme"):
        ap.train_apprentice(nn.Linear(3, 2), data, teacher=nn.Linear(3, 2), scheme="D")
    with pytest.raises(ValueError, match="teacher"):
        ap.train_apprentice(nn.Linear(3, 2), data, scheme="B")
    with pytest.raises(ValueError, match="teacher"):
        ap.train_apprentice(nn.Linear(3, 2), data, teacher=nn.Linear(3, 2), scheme="none")
    with pytest.raises(TypeError, match="student"):
        ap.train_apprentice("net", data, scheme="none")
