r"""RBNN: Rotated Binary Neural Network (Lin, Ji, Xu, Zhang, Wang, Wu, Huang and Lin, NeurIPS 2020).

A scaling factor :math:`\lambda` (XNOR-Net, IR-Net) closes the *norm* gap between a weight vector
:math:`\mathbf{w} \in \mathbb{R}^n` and its binary vector :math:`\mathbf{b} = \operatorname{sign}(\mathbf{w})`,

.. math:: \min_{\lambda, \mathbf{b}} \lVert \lambda \mathbf{b} - \mathbf{w} \rVert^2 \qquad (1)

but not the *angle* :math:`\theta` between them: the least-squares :math:`\lambda` leaves
:math:`\lVert\mathbf{w}\rVert^2 \sin^2\theta` (our one-line derivation from eq. 1). RBNN rotates each weight
vector towards its sign before binarizing. The rotation of an :math:`n`-vector is :math:`n \times n`; RBNN learns
two small ones instead (the *bi-rotation*): the vector is viewed as an :math:`n_1 \times n_2` matrix
:math:`X` and rotated to :math:`R_1^\top X R_2`, which is the rotation :math:`R_1 \otimes R_2` of the vector.
:math:`R_1, R_2` are found by alternating optimisation at the start of each epoch, the rotated vector is mixed
with the original by a learned :math:`|\sin\phi|` per output, and the sign back-propagates a training-aware
triangle whose width shrinks during training.

Only the abstract and the introduction (with eq. 1) of arXiv 2009.13055 could be read for this book; everything
below the introduction is transcribed from the official code, https://github.com/lmbxmu/RBNN,
``cifar/modules/binarized_modules.py`` and ``cifar/main.py`` (identical in ``imagenet/``), cited by line.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_module,
    require_ndim,
    require_positive_number,
)

#: The official defaults (cifar/utils/options.py): alternating iterations per update (binarized_modules.py
#: line 41), the range of t in the training-aware sign (--Tmin 1e-2, --Tmax 1e1).
ITERATIONS, T_MIN, T_MAX = 3, 1e-2, 10.0


def split_dims(n: int) -> tuple[int, int]:
    r"""The bi-rotation's shape :math:`n = n_1 n_2`: the largest divisor :math:`n_1 \le \sqrt{n}` of ``n``, and
    :math:`n_2 = n / n_1` (official ``get_ab``, binarized_modules.py lines 103-108). A prime ``n`` gives
    :math:`(1, n)`."""
    n = require_int(n, "n", minimum=1)
    a = max(i for i in range(1, math.isqrt(n) + 1) if n % i == 0)
    return a, n // a


def rotation_parameters(n: int) -> dict:
    r"""Entries of a full rotation of an :math:`n`-vector and of RBNN's bi-rotation, and the multiply-adds of
    rotating one vector with each:

    .. math:: \text{full: } n^2 \text{ entries, } n^2 \text{ MACs}; \qquad
        \text{bi: } n_1^2 + n_2^2 \text{ entries, } n_1 n_2 (n_1 + n_2) \text{ MACs}.
    """
    n = require_int(n, "n", minimum=1)
    a, b = split_dims(n)
    return {"n": n, "n1": a, "n2": b, "full_entries": n * n, "bi_entries": a * a + b * b,
            "full_macs": n * n, "bi_macs": a * b * (a + b)}


def angular_bias(w: torch.Tensor) -> torch.Tensor:
    r"""The angle :math:`\theta` (radians) between each row of ``w`` (out, n) and its sign:

    .. math:: \cos\theta = \frac{\mathbf{w}^\top \operatorname{sign}(\mathbf{w})}
        {\lVert\mathbf{w}\rVert_2 \lVert\operatorname{sign}(\mathbf{w})\rVert_2}
        = \frac{\lVert\mathbf{w}\rVert_1}{\sqrt{n}\,\lVert\mathbf{w}\rVert_2}

    (a 1-d ``w`` is one row)."""
    require_float_tensor(w, "w")
    rows = w.reshape(1, -1) if w.dim() == 1 else w.flatten(1)
    if rows.numel() == 0 or (rows.norm(dim=1) == 0).any():
        raise ValueError("w must have non-empty rows that are not all zero")
    cos = rows.abs().sum(1) / (math.sqrt(rows.shape[1]) * rows.norm(dim=1))
    return torch.arccos(cos.clamp(-1.0, 1.0))


def quantization_error(w: torch.Tensor) -> torch.Tensor:
    r"""Eq. (1) at its optimum, per row: :math:`\min_\lambda \lVert\lambda\operatorname{sign}(\mathbf{w}) -
    \mathbf{w}\rVert^2 = \lVert\mathbf{w}\rVert^2 \sin^2\theta`, with :math:`\lambda = \lVert\mathbf{w}\rVert_1 /
    n` (our derivation: the residual of a least-squares projection)."""
    require_float_tensor(w, "w")
    rows = w.reshape(1, -1) if w.dim() == 1 else w.flatten(1)
    return rows.pow(2).sum(1) * torch.sin(angular_bias(rows)).pow(2)


def bi_rotate(x: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    r"""The bi-rotation of every weight vector, viewed as an :math:`n_1 \times n_2` matrix :math:`X_i`:
    :math:`X_i \mapsto R_1^\top X_i R_2` (binarized_modules.py line 53). ``x`` is (out, n1, n2)."""
    require_float_tensor(x, "x")
    require_ndim(x, "x", 3)
    _require_rotations(x, r1, r2)
    return r1.t() @ x @ r2


def _require_rotations(x, r1, r2):
    require_float_tensor(r1, "r1")
    require_float_tensor(r2, "r2")
    if r1.shape != (x.shape[1], x.shape[1]):
        raise ValueError(f"r1 must be ({x.shape[1]}, {x.shape[1]}) for x of shape {tuple(x.shape)}, got "
                         f"{tuple(r1.shape)}")
    if r2.shape != (x.shape[2], x.shape[2]):
        raise ValueError(f"r2 must be ({x.shape[2]}, {x.shape[2]}) for x of shape {tuple(x.shape)}, got "
                         f"{tuple(r2.shape)}")


def update_rotation(x: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, iterations: int = ITERATIONS):
    r"""RBNN's alternating optimisation of :math:`\max_{B, R_1, R_2} \sum_i \operatorname{tr}(B_i^\top R_1^\top
    X_i R_2)` over signs :math:`B_i` and rotations (binarized_modules.py lines 41-52), ``iterations`` times:

    .. math:: B_i = \operatorname{sign}(R_1^\top X_i R_2), \quad
        R_1 = V_1 U_1^\top \text{ for } \textstyle\sum_i B_i R_2^\top X_i^\top = U_1 S_1 V_1^\top, \quad
        R_2 = U_2 V_2^\top \text{ for } \textstyle\sum_i X_i^\top R_1 B_i = U_2 S_2 V_2^\top .

    Each step is optimal given the others (orthogonal Procrustes), so :math:`\sum_i \lVert R_1^\top X_i R_2
    \rVert_1` never decreases. ``x`` (out, n1, n2) is not differentiated. Returns the new ``(r1, r2)``."""
    require_float_tensor(x, "x")
    require_ndim(x, "x", 3)
    _require_rotations(x, r1, r2)
    iterations = require_int(iterations, "iterations", minimum=0)
    x = x.detach()
    for _ in range(iterations):
        b = binary.sign(r1.t() @ x @ r2)
        u1, _, v1h = torch.linalg.svd((b @ r2.t() @ x.transpose(1, 2)).sum(0))
        r1 = v1h.t() @ u1.t()
        u2, _, v2h = torch.linalg.svd((x.transpose(1, 2) @ r1 @ b).sum(0))
        r2 = u2 @ v2h
    return r1, r2


def random_rotation(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""A random :math:`n \times n` orthogonal matrix, uniform (Haar) on :math:`O(n)`: QR of a Gaussian matrix
    with the signs of :math:`R`'s diagonal moved into :math:`Q`. The official code draws it with SciPy's
    ``ortho_group.rvs`` (binarized_modules.py lines 20-21), the same distribution."""
    n = require_int(n, "n", minimum=1)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator))
    return q * binary.sign(torch.diagonal(r))


def training_aware_derivative(x: torch.Tensor, k: float, t: float) -> torch.Tensor:
    r"""The derivative RBNN back-propagates through :math:`\operatorname{sign}` (binarized_modules.py lines
    80-82): a triangle of half-width :math:`\sqrt{2}/t`,

    .. math:: \frac{\partial F}{\partial x} = k \max\!\big(0,\ \sqrt{2}\,t - t^2 |x|\big),

    the derivative of :math:`F(x) = k\,(\sqrt{2}\,t\,x - \operatorname{sign}(x)\,t^2x^2/2)` on
    :math:`|x| < \sqrt{2}/t` and :math:`k\operatorname{sign}(x)` outside (our integration; :math:`F = \pm k` at the
    edges)."""
    require_float_tensor(x, "x")
    k, t = require_positive_number(k, "k"), require_positive_number(t, "t")
    return k * (math.sqrt(2.0) * t - t * t * x.abs()).clamp_min(0.0)


def schedule_tk(epoch: int, epochs: int, t_min: float = T_MIN, t_max: float = T_MAX) -> tuple[float, float]:
    r"""The official schedule of :math:`t` and :math:`k` (main.py ``cpt_tk``, lines 166-172): :math:`t` grows
    geometrically from ``t_min`` to ``t_max`` over the epochs, :math:`k = \max(1/t, 1)`,

    .. math:: t = 10^{\log_{10} T_{min} + (\log_{10} T_{max} - \log_{10} T_{min})\, e / E}.

    Activations use :math:`k = 1` and :math:`\max(t, 1)` (lines 96-97)."""
    epochs = require_int(epochs, "epochs", minimum=1)
    epoch = require_int(epoch, "epoch", minimum=0, maximum=epochs)
    t_min, t_max = require_positive_number(t_min, "t_min"), require_positive_number(t_max, "t_max")
    lo, hi = math.log10(t_min), math.log10(t_max)
    t = 10.0 ** (lo + (hi - lo) / epochs * epoch)
    return t, max(1.0 / t, 1.0)


def _standardize(v: torch.Tensor) -> torch.Tensor:
    centred = v - v.mean(dim=-1, keepdim=True)
    return centred / centred.std(dim=-1, keepdim=True)


class RotatedSignWeight(nn.Module):
    r"""RBNN's binary weight for a fully connected layer of ``out_features`` x ``in_features``
    (binarized_modules.py lines 31-68, with the conv weight's (C, kh, kw) flattened to ``in_features``):

    1. standardize each row :math:`\mathbf{w} \to (\mathbf{w} - \mu)/\sigma` (lines 34-35);
    2. rotate it, :math:`\tilde{\mathbf{w}} = (R_1 \otimes R_2)\,\mathbf{w}` with the rows viewed as
       :math:`n_1 \times n_2`; when :attr:`pending_update` is set, first update :math:`R_1, R_2` by
       :func:`update_rotation` (lines 40-53);
    3. mix: :math:`\mathbf{w}' = \mathbf{w} + |\sin\phi|\,(\operatorname{sg}(\tilde{\mathbf{w}}) - \mathbf{w})`,
       one learned :math:`\phi` per output starting at :math:`\pi/2` (lines 28, 54-55; sg: no gradient);
    4. :math:`\alpha \operatorname{sign}(\mathbf{w}')`, the sign back-propagating
       :func:`training_aware_derivative` with the buffers :attr:`k`, :attr:`t`, and :math:`\alpha` one learned
       factor per output, set to the row's mean :math:`|w|` on the first forward pass (lines 26-27, 58, 67).

    The official code scales the layer's output by :math:`\alpha`; scaling the rows of the weight is the same.
    ``precision = 1``.
    """

    precision = 1

    def __init__(self, out_features: int, in_features: int):
        super().__init__()
        o = require_int(out_features, "out_features", minimum=1)
        self.n1, self.n2 = split_dims(require_int(in_features, "in_features", minimum=2))
        self.register_buffer("r1", random_rotation(self.n1))
        self.register_buffer("r2", random_rotation(self.n2))
        self.register_buffer("k", torch.tensor(1.0 / T_MIN))
        self.register_buffer("t", torch.tensor(T_MIN))
        self.alpha = nn.Parameter(torch.ones(o, 1))
        self.phi = nn.Parameter(torch.full((o, 1), math.pi / 2))
        self.pending_update, self.initialised = False, False

    def rotated(self, w: torch.Tensor) -> torch.Tensor:
        """Steps 1-2: the standardized rows, and their bi-rotation (updating the rotation if pending)."""
        w2 = _standardize(w)
        x = w2.reshape(w.shape[0], self.n1, self.n2)
        if self.pending_update:
            self.r1, self.r2 = update_rotation(x, self.r1, self.r2)
            self.pending_update = False
        with torch.no_grad():  # the rotated weights carry no gradient (line 54: Rweight.detach())
            return w2, bi_rotate(x, self.r1, self.r2).reshape_as(w)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        require_float_tensor(w, "w")
        if w.shape != (self.alpha.shape[0], self.n1 * self.n2):
            raise ValueError(f"w must be ({self.alpha.shape[0]}, {self.n1 * self.n2}), got {tuple(w.shape)}")
        if not self.initialised:
            with torch.no_grad():
                self.alpha.copy_(w.abs().mean(dim=1, keepdim=True))
            self.initialised = True
        w2, w_rot = self.rotated(w)
        w3 = w2 + torch.sin(self.phi).abs() * (w_rot.detach() - w2)
        k, t = float(self.k), float(self.t)
        return self.alpha * binary.sign_with_surrogate(w3, lambda v: training_aware_derivative(v, k, t))


class RotatedSignInput(nn.Module):
    r"""RBNN's binary input (binarized_modules.py lines 36-37, 62, 86-100): standardize each example over its
    features, then :math:`\operatorname{sign}`, back-propagating :func:`training_aware_derivative` with
    :math:`k = 1` and :math:`\max(t, 1)`. ``t`` is a buffer set by :func:`set_schedule`. ``precision = 1``."""

    precision = 1

    def __init__(self):
        super().__init__()
        self.register_buffer("t", torch.tensor(T_MIN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        t = max(float(self.t), 1.0)
        return binary.sign_with_surrogate(_standardize(x), lambda v: training_aware_derivative(v, 1.0, t))


def set_schedule(model: nn.Module, epoch: int, epochs: int, update_rotation_now: bool = True) -> None:
    """Set :func:`schedule_tk`'s ``t``, ``k`` for ``epoch`` in every RBNN quantizer of ``model``, and mark the
    rotations for an update on the next forward pass (main.py lines 190-196: the update runs on the first batch
    of every epoch, ``--rotation_update 1``)."""
    require_module(model)
    t, k = schedule_tk(epoch, epochs)
    for module in model.modules():
        if isinstance(module, (RotatedSignWeight, RotatedSignInput)):
            module.t.fill_(t)
        if isinstance(module, RotatedSignWeight):
            module.k.fill_(k)
            module.pending_update = bool(update_rotation_now)


def comparison_layer(w_bits: int = 1, a_bits: int = 1, in_features: int = 128, out_features: int = 128):
    r"""``(weight_quantizer, input_quantizer, activation)`` of an RBNN layer for :class:`qteach.comparison.Method`:
    :class:`RotatedSignWeight`, :class:`RotatedSignInput`, no activation after the layer. The rotations are only
    updated (and ``t``, ``k`` only scheduled) by :func:`protocol_fit`. Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return RotatedSignWeight(out_features, in_features), RotatedSignInput(), nn.Identity()


def protocol_fit(model: nn.Module, data, seed: int, protocol):
    """Train ``model`` with the protocol's Adam loop, epochs and batch size, no weight clipping (the rows are
    standardized), calling :func:`set_schedule` at the start of every epoch: one rotation update (3 alternating
    iterations) per layer and epoch. The ``fit`` of a :class:`qteach.comparison.Method`; returns
    :class:`qteach.train.History`."""
    from qteach import train

    require_module(model)
    steps_per_epoch = math.ceil(len(data.x_train) / protocol.batch_size)
    step = [0]

    def after_step(m):
        step[0] += 1
        if step[0] % steps_per_epoch == 0 and step[0] // steps_per_epoch < protocol.epochs:
            set_schedule(m, step[0] // steps_per_epoch, protocol.epochs)

    set_schedule(model, 0, protocol.epochs)
    return train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                     seed=seed, progress=False, after_step=after_step)


__all__ = [
    "ITERATIONS",
    "T_MAX",
    "T_MIN",
    "RotatedSignInput",
    "RotatedSignWeight",
    "angular_bias",
    "bi_rotate",
    "comparison_layer",
    "protocol_fit",
    "quantization_error",
    "random_rotation",
    "rotation_parameters",
    "schedule_tk",
    "set_schedule",
    "split_dims",
    "training_aware_derivative",
    "update_rotation",
]
