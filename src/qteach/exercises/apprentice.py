"""Self-checks of the Apprentice chapter (notebooks/2018/apprentice.ipynb).

Each check calls the student's function on fixed logits, compares with :mod:`qteach.papers.apprentice` (or with
autograd of it), and either prints the success line or raises ``AssertionError`` with a hint that names the likely
mistake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import apprentice

_SLUG = "apprentice"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _logits(seed: int, n: int = 6, c: int = 5, spread: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    return spread * torch.randn(n, c, generator=g), spread * torch.randn(n, c, generator=g)


def _close(a, b) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.detach().double(), b.double(),
                                                                                  rtol=1e-4, atol=1e-6)


def _number(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.detach().reshape(()).double()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


# --- exercise 1: the distillation term at temperature tau ----------------------------------------------------


@self_check
def check_1(distillation_term) -> str:
    """Check ``distillation_term(teacher_logits, student_logits, tau)`` -> the batch mean of H(z^T, p^A) at tau."""
    label = _label(1)
    expect(callable(distillation_term), label, "pass your function itself, e.g. check_1(distillation_term)")
    for seed, tau in ((0, 1.0), (1, 4.0), (2, 0.5)):
        z_t, z_a = _logits(seed)
        got = _number(distillation_term(z_t.clone(), z_a.clone(), tau))
        expect(got is not None, label, "return one number (a float or a 0-d tensor): the mean over the batch")
        ref = apprentice.soft_cross_entropy(z_t, z_a, tau).double()
        if torch.isclose(got, ref, rtol=1e-4):
            continue
        t, a = z_t / tau, z_a / tau
        if torch.isclose(got, apprentice.soft_cross_entropy(z_a, z_t, tau).double(), rtol=1e-4):
            fail(label, "the arguments are swapped: the targets are the teacher's softmax, the log-probabilities the "
                        "student's.")
        if torch.isclose(got, -(F.softmax(t, 1) * F.log_softmax(z_a, 1)).sum(1).mean().double(), rtol=1e-4):
            fail(label, "divide the student's logits by tau as well, not only the teacher's.")
        if torch.isclose(got, -(F.softmax(z_t, 1) * F.log_softmax(a, 1)).sum(1).mean().double(), rtol=1e-4):
            fail(label, "divide the teacher's logits by tau as well: the soft targets are softmax(z^T / tau).")
        if torch.isclose(got, -(F.softmax(t, 1) * F.log_softmax(a, 1)).sum().double(), rtol=1e-4):
            fail(label, "that is the sum over the batch: take the mean over the N samples (sum over classes only).")
        if torch.isclose(got, -(F.softmax(t, 1) * F.log_softmax(a, 1)).mean().double(), rtol=1e-4):
            fail(label, "that is the mean over every entry (N x C): sum over the classes, then average over the "
                        "samples.")
        if torch.isclose(got, F.kl_div(F.log_softmax(a, 1), F.softmax(t, 1), reduction="batchmean").double(),
                         rtol=1e-4):
            fail(label, "that is the KL divergence: the paper's term is the cross-entropy, which adds the teacher's "
                        "entropy (the same gradient for the student, another value).")
        fail(label, f"at tau = {tau} expected {ref.item():.5f}, got {got.item():.5f}: "
                    "-(softmax(z^T/tau) * log_softmax(z^A/tau)).sum(dim=1).mean().")
    return passed(label, "H(z^T, p^A) matches the library at tau = 1, 4 and 0.5")


# --- exercise 2: the gradient with respect to the student's logits -------------------------------------------


@self_check
def check_2(student_logit_gradient) -> str:
    """Check ``student_logit_gradient(teacher_logits, student_logits, labels, beta, gamma, tau)`` -> dL/dz^A."""
    label = _label(2)
    expect(callable(student_logit_gradient), label,
           "pass your function itself, e.g. check_2(student_logit_gradient)")
    for seed, beta, gamma, tau in ((3, 0.5, 0.5, 1.0), (4, 0.3, 0.7, 4.0), (5, 1.0, 2.0, 2.0)):
        z_t, z_a = _logits(seed)
        labels = torch.arange(6) % 5
        leaf = z_a.clone().requires_grad_(True)
        apprentice.apprentice_loss(z_t, leaf, labels, 1.0, beta, gamma, tau).backward()
        ref = leaf.grad
        got = student_logit_gradient(z_t.clone(), z_a.clone(), labels.clone(), beta, gamma, tau)
        expect_type(got, torch.Tensor, label, "the gradient")
        expect(got.shape == ref.shape, label, f"return a tensor of the logits' shape {tuple(ref.shape)}")
        if _close(got, ref):
            continue
        n = z_a.shape[0]
        one_hot = F.one_hot(labels, 5).float()
        label_part = beta * (F.softmax(z_a, 1) - one_hot) / n
        soft_part = (F.softmax(z_a / tau, 1) - F.softmax(z_t / tau, 1)) / n
        if _close(got, ref * n):
            fail(label, "divide by N: apprentice_loss takes the mean over the batch.")
        if _close(got, label_part + gamma * soft_part):
            fail(label, "the distillation term's gradient carries a factor 1/tau (the chain rule through z^A / tau).")
        if _close(got, label_part + gamma * tau * soft_part):
            fail(label, "the factor is 1/tau, not tau (the chain rule through z^A / tau).")
        if _close(got, label_part):
            fail(label, "add the distillation term's gradient, (gamma / tau) (softmax(z^A/tau) - softmax(z^T/tau)).")
        if _close(got, gamma / tau * soft_part):
            fail(label, "add the student's label term, beta (softmax(z^A) - onehot(y)).")
        if _close(got, label_part - gamma / tau * soft_part):
            fail(label, "the sign of the distillation gradient: it is p^A - p^T (student minus teacher).")
        fail(label, "compare with autograd of apprentice_loss; the teacher's label term does not depend on z^A.")
    return passed(label, "dL/dz^A equals autograd of the Apprentice loss for three (beta, gamma, tau)")
