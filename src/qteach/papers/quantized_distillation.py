r"""Quantized distillation: train a quantized student against a full-precision teacher.

Polino, Pascanu and Alistarh train a student whose weights are quantized to a few levels with a *distillation
loss* (Hinton et al.'s soft targets at temperature :math:`T`, mixed with the usual cross-entropy). The weights are
quantized with the paper's uniform quantization (Sec. 2.1): each bucket of :math:`d` consecutive weights is scaled
to :math:`[0, 1]` with its own minimum and range,

.. math::
    \operatorname{sc}(v)_i = \frac{v_i - \beta}{\alpha}, \qquad \alpha = \max_j v_j - \min_j v_j, \quad
    \beta = \min_j v_j,

rounded to the grid :math:`\{0, 1/s, \dots, 1\}`, deterministically or *stochastically*,

.. math::
    \hat{Q}(v, s)_i = \frac{\lfloor v_i s \rfloor}{s} + \frac{\xi_i}{s}, \qquad
    \xi_i \sim \operatorname{Bernoulli}(v_i s - \lfloor v_i s \rfloor),

and scaled back, :math:`Q(v) = \operatorname{sc}^{-1}(\hat{Q}(\operatorname{sc}(v)))`. The paper's :math:`s` is the
number of *steps*; a :math:`b`-bit grid has :math:`2^b` points, :math:`s = 2^b - 1` (the official code passes
:math:`2^b` points and subtracts one, ``quantization/quant_functions.py`` lines 172 and 209-211 of
``cnn_models/conv_forward_model.py``).

Training (the paper's quantized distillation; in the code ``cnn_models/conv_forward_model.py`` lines 282-318):
the forward and backward passes use the quantized weights, and the gradient updates the full-precision weights that
are kept alongside, i.e. a straight-through estimator (:class:`UniformQuantizer`).

The distillation loss as the official code writes it (``cnn_models/help_fun.py`` lines 95 and 124-139): weight
0.7 on :math:`T^2\,\mathrm{KL}(\operatorname{softmax}(z^T/T)\,\|\,\operatorname{softmax}(z^S/T))` and 0.3 on the
cross-entropy with the labels, ``nn.KLDivLoss()``'s default averaging over *all* N x C entries (PyTorch 0.3's
``size_average=True``), default :math:`T = 2`.

The paper's second method, *differentiable quantization* (learning the positions of the quantization points by
gradient descent), is not implemented here.

Reference: Antonio Polino, Razvan Pascanu, Dan Alistarh, *Model compression via distillation and quantization*,
ICLR 2018. https://arxiv.org/abs/1802.05668 ; code https://github.com/antspy/quantized_distillation
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach._validate import require_bits, require_float_input, require_int, require_module, require_positive_number
from qteach.data import Split
from qteach.train import History, fit_loss

__all__ = ["uniform_quantize", "distillation_loss", "UniformQuantizer", "OFFICIAL_TEACHER_WEIGHT", "train_student"]

OFFICIAL_TEACHER_WEIGHT = 0.7
"""The weight of the distillation term in the official code (``cnn_models/help_fun.py`` line 95)."""


def uniform_quantize(v: torch.Tensor, bits: int, bucket_size: int | None = None, stochastic: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The paper's uniform quantization (Sec. 2.1) with :math:`2^b` points per bucket: scale each bucket of
    ``bucket_size`` consecutive values (None: the whole tensor) to [0, 1] by its min and range, round to
    :math:`s = 2^b - 1` steps (``stochastic``: up with probability equal to the remainder), scale back.

    A bucket whose values are all equal keeps them (range 1, as in the official code). The last, shorter bucket is
    scaled by its own min and range (the code pads it with its last value, which changes neither).
    """
    require_float_input(v, "v")
    bits = require_bits(bits)
    if bucket_size is not None:
        bucket_size = require_int(bucket_size, "bucket_size", minimum=1)
    if not isinstance(stochastic, bool):
        raise TypeError(f"stochastic must be a bool, got {type(stochastic).__name__}")
    flat = v.reshape(-1)
    d = bucket_size or max(flat.numel(), 1)
    pad = (-flat.numel()) % d
    rows = torch.cat([flat, flat[-1:].expand(pad)]).reshape(-1, d)
    beta = rows.min(dim=1, keepdim=True).values
    alpha = rows.max(dim=1, keepdim=True).values - beta
    alpha = torch.where(alpha < 1e-10, torch.ones_like(alpha), alpha)
    s = 2**bits - 1
    scaled = (rows - beta) / alpha * s
    if stochastic:
        low = torch.floor(scaled)
        u = torch.rand(scaled.shape, generator=generator, device=scaled.device)
        q = low + (u <= scaled - low).to(scaled.dtype)
    else:
        q = torch.round(scaled)
    return (q / s * alpha + beta).reshape(-1)[:flat.numel()].reshape(v.shape)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 2.0, teacher_weight: float = OFFICIAL_TEACHER_WEIGHT) -> torch.Tensor:
    r"""The official code's loss: :math:`w\,T^2\,\mathrm{KL}_{\text{mean over N}\times\text{C}}
    (\operatorname{softmax}(z^T/T) \| \operatorname{softmax}(z^S/T)) + (1 - w)\,\mathcal{H}(y, z^S)`.

    ``teacher_logits`` are detached (the teacher is fixed); ``teacher_weight`` :math:`w \in [0, 1]`.
    """
    for z, name in ((student_logits, "student_logits"), (teacher_logits, "teacher_logits")):
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 2:
            raise TypeError(f"{name} must be a 2-d float tensor (N, C) of logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError("student_logits and teacher_logits must have the same shape")
    t = require_positive_number(temperature, "temperature")
    if isinstance(teacher_weight, bool) or not isinstance(teacher_weight, (int, float)) or not 0 <= teacher_weight <= 1:
        raise ValueError(f"teacher_weight must be a number in [0, 1], got {teacher_weight!r}")
    targets = F.softmax(teacher_logits.detach() / t, dim=1)
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), targets, reduction="sum") / student_logits.numel()
    return teacher_weight * t**2 * kl + (1 - teacher_weight) * F.cross_entropy(student_logits, labels)


class UniformQuantizer(nn.Module):
    """:func:`uniform_quantize` as a weight quantizer for ``qteach.nn`` layers, with the straight-through gradient
    of quantized distillation (the gradient at the quantized weights updates the float weights)."""

    def __init__(self, bits: int = 4, bucket_size: int | None = 256, stochastic: bool = False):
        super().__init__()
        self.precision = require_bits(bits)
        self.bucket_size = bucket_size
        self.stochastic = stochastic

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        q = uniform_quantize(w.detach(), self.precision, self.bucket_size, self.stochastic and self.training)
        return w + (q - w.detach())

    def extra_repr(self) -> str:
        return f"bits={self.precision}, bucket_size={self.bucket_size}, stochastic={self.stochastic}"


def train_student(student: nn.Module, data: Split, teacher: nn.Module | None = None, epochs: int = 8,
                  lr: float = 1e-2, batch_size: int = 128, seed: int = 0, temperature: float = 2.0,
                  teacher_weight: float = OFFICIAL_TEACHER_WEIGHT) -> History:
    """Train ``student`` (in place) with :func:`distillation_loss` against the frozen ``teacher``, or with plain
    cross-entropy when ``teacher`` is None (the baseline at equal bits). Quantized layers of the student use their
    quantized weights forward and backward and Adam (learning rate ``lr``) updates the float weights; mini-batches
    are shuffled by a generator seeded with ``seed``. The teacher is put in eval mode and its logits on the training
    set are computed once. Returns the student's :class:`qteach.train.History`.
    """
    require_module(student, "student")
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    if teacher is not None:
        require_module(teacher, "teacher")
    t = require_positive_number(temperature, "temperature")
    teacher_logits = None
    if teacher is not None:  # the teacher is frozen (eval mode): its logits are computed once
        teacher.eval()
        with torch.no_grad():
            teacher_logits = teacher(data.x_train)

    def batch_loss(idx, xb, yb):
        z = student(xb)
        if teacher_logits is None:
            return F.cross_entropy(z, yb)
        return distillation_loss(z, teacher_logits[idx], yb, t, teacher_weight)

    return fit_loss(student, data, batch_loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
