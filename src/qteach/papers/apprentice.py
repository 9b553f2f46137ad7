r"""Apprentice: knowledge distillation from a full-precision teacher to a low-precision student.

Mishra and Marr train a low-precision network (the *apprentice* or student, ternary or 4-bit weights) with the
help of a full-precision *teacher*. The student minimizes a cross-entropy with the labels *and* a cross-entropy with
the teacher's soft targets; in their scheme A the teacher is trained at the same time, on the same loss. The loss
of the paper's Sec. 4 (eq. 1):

.. math::
    \mathcal{L}(x; W_T, W_A) = \alpha\, \mathcal{H}(y, p^T) + \beta\, \mathcal{H}(y, p^A)
        + \gamma\, \mathcal{H}(z^T, p^A)

:math:`W_T, W_A` are the teacher's and the apprentice's parameters, :math:`p^T = \operatorname{softmax}(z^T)` and
:math:`p^A = \operatorname{softmax}(z^A)` their class probabilities from the logits :math:`z^T, z^A`,
:math:`\mathcal{H}` a cross-entropy, and :math:`\alpha, \beta, \gamma` weights. The last term is the distillation
term: the cross-entropy of the student's probabilities against the teacher's *soft* targets,
:math:`\mathcal{H}(z^T, p^A) = -\sum_i \operatorname{softmax}(z^T/\tau)_i \log \operatorname{softmax}(z^A/\tau)_i`.
The defaults :math:`\alpha = 1, \beta = 0.5, \gamma = 0.5` and :math:`\tau = 1` are the values we recall from the
paper's Sec. 4 (its text could not be re-read for this book; the notebook says so).

The three schemes (paper Sec. 5, 6, 7), all in :func:`train_apprentice`:

- **A**: teacher and student trained *jointly* from scratch, one optimizer over both, on the whole loss;
- **B**: the teacher is trained first and frozen; the student learns from scratch with the loss (the
  :math:`\alpha` term is then a constant);
- **C**: the student starts from a trained (low-precision or float) student and is *fine-tuned* with the loss.

Without the teacher (:math:`\gamma = 0`) the loss is ordinary cross-entropy training of the low-precision student:
the baseline at equal bits.

Reference: Asit Mishra and Debbie Marr, *Apprentice: Using Knowledge Distillation Techniques To Improve
Low-Precision Network Accuracy*, ICLR 2018. https://arxiv.org/abs/1711.05852 (no official code was released).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach._validate import require_module, require_positive_number
from qteach.data import Split
from qteach.train import History, fit_loss

__all__ = ["PAPER_WEIGHTS", "soft_cross_entropy", "apprentice_loss", "train_apprentice"]

PAPER_WEIGHTS = {"alpha": 1.0, "beta": 0.5, "gamma": 0.5}
"""The loss weights used in the paper's experiments (recalled from Sec. 4, not re-read)."""

SCHEMES = ("A", "B", "C", "none")


def _require_logits(z, name: str) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"{name} must be a float tensor of logits, got {type(z).__name__}")
    if z.dim() != 2:
        raise ValueError(f"{name} must be (N, C) logits, got shape {tuple(z.shape)}")
    return z


def _require_weight(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def soft_cross_entropy(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                       temperature: float = 1.0) -> torch.Tensor:
    r"""The distillation term :math:`\mathcal{H}(z^T, p^A)`, averaged over the batch.

    .. math::
        \mathcal{H}(z^T, p^A) = -\frac{1}{N}\sum_{n}\sum_i \operatorname{softmax}(z^T_n/\tau)_i
            \log \operatorname{softmax}(z^A_n/\tau)_i

    Gradients flow into both arguments (detach ``teacher_logits`` to keep them out of the teacher).
    """
    _require_logits(teacher_logits, "teacher_logits")
    _require_logits(student_logits, "student_logits")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits {tuple(teacher_logits.shape)} and student_logits "
                         f"{tuple(student_logits.shape)} must have the same shape")
    tau = require_positive_number(temperature, "temperature")
    soft_targets = F.softmax(teacher_logits / tau, dim=1)
    return -(soft_targets * F.log_softmax(student_logits / tau, dim=1)).sum(dim=1).mean()


def apprentice_loss(teacher_logits: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor,
                    alpha: float = 1.0, beta: float = 0.5, gamma: float = 0.5,
                    temperature: float = 1.0) -> torch.Tensor:
    r"""The paper's eq. 1: :math:`\alpha\mathcal{H}(y, p^T) + \beta\mathcal{H}(y, p^A) + \gamma\mathcal{H}(z^T, p^A)`.

    ``teacher_logits`` and ``student_logits`` are (N, C), ``labels`` (N,) class indices; the weights are numbers
    >= 0 (defaults: the paper's 1, 0.5, 0.5) and ``temperature`` > 0 softens both softmaxes of the last term.
    Differentiated as written: in scheme A the teacher receives the gradients of the first and last terms.
    """
    _require_logits(teacher_logits, "teacher_logits")
    _require_logits(student_logits, "student_logits")
    alpha, beta, gamma = (_require_weight(v, n) for v, n in ((alpha, "alpha"), (beta, "beta"), (gamma, "gamma")))
    return (alpha * F.cross_entropy(teacher_logits, labels)
            + beta * F.cross_entropy(student_logits, labels)
            + gamma * soft_cross_entropy(teacher_logits, student_logits, temperature))


def train_apprentice(student: nn.Module, data: Split, teacher: nn.Module | None = None, scheme: str = "B",
                     epochs: int = 10, lr: float = 1e-2, batch_size: int = 64, seed: int = 0,
                     alpha: float = 1.0, beta: float = 0.5, gamma: float = 0.5,
                     temperature: float = 1.0) -> History:
    """Train ``student`` (in place) with the Apprentice loss under ``scheme`` "A", "B", "C" or "none".

    "A": ``teacher`` is trained together with the student (one Adam optimizer over both); "B" and "C": ``teacher``
    is frozen (eval mode, no gradient), "C" meaning the student was already trained (the loop is the same; the
    scheme names what the student starts from); "none": no teacher, the student minimizes ``beta`` times the
    cross-entropy with the labels (the baseline). Adam with learning rate ``lr``, mini-batches shuffled by a
    generator seeded with ``seed``. Returns the student's :class:`qteach.train.History`.
    """
    require_module(student, "student")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if (teacher is None) != (scheme == "none"):
        raise ValueError("teacher must be given for schemes A, B, C and left out for scheme 'none'")
    if teacher is not None:
        require_module(teacher, "teacher")
    params = list(student.parameters()) + (list(teacher.parameters()) if scheme == "A" else [])
    if teacher is not None:
        teacher.train(scheme == "A")
        teacher.requires_grad_(scheme == "A")

    def batch_loss(idx, xb, yb):
        z_a = student(xb)
        if scheme == "none":
            return beta * F.cross_entropy(z_a, yb)
        return apprentice_loss(teacher(xb), z_a, yb, alpha, beta, gamma, temperature)

    history = fit_loss(student, data, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                       params=params)
    if teacher is not None:
        teacher.requires_grad_(True)
        teacher.eval()
    return history
