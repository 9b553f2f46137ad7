r"""Binarized Neural Networks (BNN): binary weights *and* activations, trained with a straight-through estimator.

Hubara, Courbariaux, Soudry, El-Yaniv and Bengio (NIPS 2016; arXiv 1602.02830) train networks whose weights and
activations are :math:`\pm 1` in the forward pass, at train time as at run time:

- **Binarization.** Deterministic, :math:`x^b = \operatorname{sign}(x)` (+1 for :math:`x \ge 0`), for weights
  and activations (a stochastic version with :math:`p = \operatorname{clip}((x + 1)/2, 0, 1)` is discussed; see
  :mod:`qteach.papers.binaryconnect`).
- **Gradients through sign.** With :math:`q = \operatorname{sign}(r)` and an estimate :math:`g_q` of
  :math:`\partial C / \partial q`, the straight-through estimator is :math:`g_r = g_q 1_{|r| \le 1}`: the
  gradient of :math:`\operatorname{Htanh}(r) = \operatorname{clip}(r, -1, 1)` (:func:`htanh`), which "cancels the
  gradient when :math:`r` is too large". This is :func:`qteach.binary.ste_sign` and
  :class:`qteach.nn.SignQuantizer`.
- **Latent weights** stay real-valued and are clipped to :math:`[-1, 1]` after each update
  (:func:`qteach.train.clip_latent_weights`), since beyond that range the STE gives them no gradient.
- **Shift-based batch norm and AdaMax** (:func:`shift_batch_norm`, :class:`ShiftBatchNorm`,
  :class:`ShiftAdaMax`) replace most multiplications of training by multiplications with powers of two, i.e.
  bit shifts, using the approximate power of two :math:`\operatorname{AP2}(x) = \operatorname{sign}(x)\,
  2^{\operatorname{round}(\log_2 |x|)}` (:func:`ap2`). The paper reports no accuracy loss from them.
- **The first layer** gets real (8-bit) pixels. Its dot product is computed on bit planes,
  :math:`s = \sum_{n=1}^{8} 2^{n-1} (x^n \cdot w^b)` (:func:`first_layer_dot`), so that it too is binary
  arithmetic; :func:`qteach.deploy.bitplane_matmul` computes it with XNOR and popcount.

Equation numbers of the NIPS version are not quoted in the docstrings: the arXiv versions number them differently
and the numbering could not be checked for this book. Where a detail comes from the official Torch code
(``itayhubara/BinaryNet``: ``SpatialBatchNormalizationShiftPow2.lua``; ``adaMax_binary_clip_shift.lua``, read in a
fork, ``kumasento/BinaryNet``) rather than the paper's pseudo-code, the docstring says so.

References:

- I. Hubara, M. Courbariaux, D. Soudry, R. El-Yaniv, Y. Bengio, *Binarized Neural Networks*, NIPS 2016.
- M. Courbariaux, I. Hubara, D. Soudry, R. El-Yaniv, Y. Bengio, *Binarized Neural Networks: Training Deep
  Neural Networks with Weights and Activations Constrained to +1 or -1*, arXiv:1602.02830, 2016.
- Official code: https://github.com/itayhubara/BinaryNet (Torch), https://github.com/MatthieuCourbariaux/BinaryNet
  (Theano).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, deploy
from qteach._validate import require_bits, require_float_tensor, require_int, require_no_nan, require_tensor

__all__ = [
    "htanh",
    "ap2",
    "shift_batch_norm",
    "ShiftBatchNorm",
    "ShiftAdaMax",
    "first_layer_dot",
    "bnn_mlp",
    "float_mlp",
]


def htanh(x: torch.Tensor) -> torch.Tensor:
    r"""The hard tanh, :math:`\operatorname{Htanh}(x) = \operatorname{clip}(x, -1, 1) = \max(-1, \min(1, x))`.

    Its derivative :math:`1_{|x| \le 1}` is the straight-through estimator BNN uses for the sign
    (:func:`qteach.binary.ste_sign` with ``clip=1``).
    """
    require_float_tensor(x, "x")
    return x.clamp(-1.0, 1.0)


def ap2(x: torch.Tensor) -> torch.Tensor:
    r"""The approximate power of two of BNN's shift-based algorithms.

    .. math:: \operatorname{AP2}(x) = \operatorname{sign}(x)\, 2^{\operatorname{round}(\log_2 |x|)}, \qquad
        \operatorname{AP2}(0) = 0

    Multiplying by :math:`\operatorname{AP2}(x)` is a bit shift (plus a sign flip) in fixed-point arithmetic. Since
    :math:`|\operatorname{round}(\log_2|x|) - \log_2|x|| \le \frac{1}{2}`, the ratio
    :math:`\operatorname{AP2}(x)/x` lies in :math:`[2^{-1/2}, 2^{1/2}]`: at most about 41 % too large or 29 % too
    small. ``round`` is ``torch.round`` (half to even); an implementation that rounds halves differently disagrees
    only where :math:`\log_2|x|` is exactly a half-integer.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    magnitude = torch.exp2(torch.round(torch.log2(x.abs())))
    return torch.where(x == 0, torch.zeros_like(x), binary.sign(x) * magnitude)


def _ap2_ste(x: torch.Tensor) -> torch.Tensor:
    """AP2 in the forward pass, identity in the backward pass (straight-through)."""
    return binary.straight_through(x, ap2(x.detach()))


def _check_batch(x: torch.Tensor) -> None:
    """``x`` must be a batch (N, C), (N, C, L) or (N, C, H, W)."""
    if x.dim() not in (2, 3, 4):
        raise ValueError(f"x must be (N, C), (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")


def _reduce_dims(x: torch.Tensor) -> tuple:
    _check_batch(x)
    return (0,) + tuple(range(2, x.dim()))


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(1, -1, *([1] * (x.dim() - 2)))


def shift_batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5):
    r"""Shift-based batch normalization of one mini-batch (BNN's Algorithm for SBN), per channel.

    .. math::
        \mu_B = \frac{1}{m}\sum_i x_i, \quad C(x_i) = x_i - \mu_B, \quad
        \sigma_B^2 \approx \frac{1}{m}\sum_i C(x_i) \ll\!\gg \operatorname{AP2}(C(x_i)),

    .. math::
        \hat{x}_i = C(x_i) \ll\!\gg \operatorname{AP2}\Big(\frac{1}{\sqrt{\sigma_B^2 + \epsilon}}\Big), \qquad
        y_i = \operatorname{AP2}(\gamma) \ll\!\gg \hat{x}_i + \beta,

    where :math:`\ll\!\gg` is a left or right shift, i.e. multiplication by a power of two: the squares of the
    variance become :math:`C(x_i)\,\operatorname{AP2}(C(x_i))`, the division by the standard deviation and the
    multiplication by :math:`\gamma` become shifts. Only the mean and the adds remain exact. The final
    :math:`+\beta` follows the official Torch code (``SpatialBatchNormalizationShiftPow2.lua``: "multiply with
    gamma and add beta").

    ``x`` is (N, C) or (N, C, H, W) (statistics over all dims but 1). For training, the backward pass treats every
    AP2 as the identity (a straight-through estimator), so the gradients are those of ordinary batch norm at the
    shifted values, as in the Torch code. Returns ``(y, mean, approximate variance)``.
    """
    require_float_tensor(x, "x")
    _check_batch(x)
    require_tensor(gamma, "gamma")
    require_tensor(beta, "beta")
    if gamma.shape != (x.shape[1],) or beta.shape != (x.shape[1],):
        raise ValueError(f"gamma and beta must have shape ({x.shape[1]},), got {tuple(gamma.shape)} and "
                         f"{tuple(beta.shape)}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    dims = _reduce_dims(x)
    mean = x.mean(dim=dims)
    centered = x - _per_channel(mean, x)
    var = (centered * _ap2_ste(centered)).mean(dim=dims)
    inv_std = _ap2_ste(torch.rsqrt(var + eps))
    y = _per_channel(_ap2_ste(gamma), x) * (centered * _per_channel(inv_std, x)) + _per_channel(beta, x)
    return y, mean, var


class ShiftBatchNorm(nn.Module):
    r"""Shift-based batch norm as a layer (:func:`shift_batch_norm` in training mode).

    Running estimates of the mean and of the (approximate) variance are kept with ``momentum`` like
    ``nn.BatchNorm``; in eval mode

    .. math:: y = \operatorname{AP2}(\gamma)\,(x - \mu)\,\operatorname{AP2}\Big(\frac{1}{\sqrt{\sigma^2 + \epsilon}}
        \Big) + \beta ,

    a subtraction, two shifts and an add per value. (The Torch code keeps a running average of the inverse
    standard deviation instead; the two agree up to the AP2 rounding.) Works for (N, C) and (N, C, H, W) inputs.
    At inference it is monotone in :math:`x` per channel, like batch norm, so it folds into a threshold as well.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features = require_int(num_features, "num_features", minimum=1)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not (isinstance(momentum, float) and 0 < momentum <= 1):
            raise ValueError(f"momentum must be a float in (0, 1], got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have {self.num_features} channels in dim 1, got shape {tuple(x.shape)}")
        if self.training:
            y, mean, var = shift_batch_norm(x, self.weight, self.bias, self.eps)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
            return y
        _reduce_dims(x)
        inv_std = ap2(torch.rsqrt(self.running_var + self.eps))
        scale = _ap2_ste(self.weight) * inv_std
        return _per_channel(scale, x) * (x - _per_channel(self.running_mean, x)) + _per_channel(self.bias, x)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class ShiftAdaMax(torch.optim.Optimizer):
    r"""Shift-based AdaMax: AdaMax (Kingma & Ba, 2015) with its two real multiplications made powers of two.

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad v_t = \max(\beta_2 v_{t-1}, |g_t|),

    .. math::
        \theta_t = \theta_{t-1} - \operatorname{AP2}\Big(\frac{\eta}{1 - \beta_1^t}\Big)\,
        \frac{m_t}{\operatorname{AP2}(v_t) + \epsilon} .

    Dividing by :math:`\operatorname{AP2}(v_t)` and multiplying by the rounded step size are shifts; with
    :math:`\beta_1, \beta_2` of the form :math:`1 - 2^{-k}` the moment updates are shifts and adds too. As in the
    Torch code (``adaMax_binary_clip_shift.lua``), :math:`\operatorname{AP2}(v_t) + \epsilon` is what is stored
    as :math:`v_t` for the next step, and the defaults are ``lr=0.002``, ``betas=(0.9, 0.999)``,
    ``eps=2**-27``. ``shift=False`` gives plain AdaMax with the same bookkeeping (``torch.optim.Adamax`` up to
    where :math:`\epsilon` enters). Train with it through :func:`qteach.train.fit`,
    ``optimizer=lambda params: ShiftAdaMax(params, lr=...)``; weight clipping is left to its ``weight_clip``, or to
    :func:`qteach.train.clip_latent_weights`.
    """

    def __init__(self, params, lr: float = 0.002, betas=(0.9, 0.999), eps: float = 2**-27, shift: bool = True):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not isinstance(shift, bool):
            raise TypeError(f"shift must be a bool, got {type(shift).__name__}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, shift=shift))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                m, v, g = state["m"], state["v"], p.grad
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                torch.maximum(v.mul_(beta2), g.abs(), out=v)
                step_size = group["lr"] / (1 - beta1 ** state["step"])
                if group["shift"]:
                    step_size = 2.0 ** round(math.log2(step_size))
                    v.copy_(ap2(v) + group["eps"])
                    p.add_(m / v, alpha=-step_size)
                else:
                    p.add_(m / (v + group["eps"]), alpha=-step_size)
        return loss


def _check_first_layer_operands(q: torch.Tensor, w: torch.Tensor, bits: int) -> None:
    """``q`` must hold ``bits``-bit codes (M, K) and ``w`` be a float tensor (N, K)."""
    deploy.bit_planes(q, bits)  # validates q
    require_float_tensor(w, "w")
    if q.dim() != 2 or w.dim() != 2 or q.shape[1] != w.shape[1]:
        raise ValueError(f"q and w must be (M, K) and (N, K), got {tuple(q.shape)} and {tuple(w.shape)}")


def first_layer_dot(q: torch.Tensor, w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    r"""The first layer's dot products on bit planes, written as in the paper ("First layer").

    .. math:: s = x \cdot w^b = \sum_{n=1}^{b} 2^{n-1} \,(x^n \cdot w^b)

    with :math:`x^n \in \{0, 1\}` the :math:`n`-th bit of each ``bits``-bit input (:func:`qteach.deploy.bit_planes`)
    and :math:`w^b = \operatorname{sign}(w)`. ``q`` is (M, K) with integer codes in :math:`[0, 2^b)`, ``w`` is
    (N, K); returns (M, N) float64 (exact integers). Each plane product :math:`x^n \cdot w^b` is a sum of
    :math:`\pm 1` over the positions where the bit is set: binary arithmetic (computed here with a float matrix
    product for readability; :func:`qteach.deploy.bitplane_matmul` does it with XNOR and popcount).
    """
    bits = require_bits(bits)
    _check_first_layer_operands(q, w, bits)
    planes = deploy.bit_planes(q, bits).to(torch.float64)
    w_b = binary.sign(w).to(torch.float64)
    return sum(2 ** (n - 1) * (planes[n - 1] @ w_b.T) for n in range(1, bits + 1))


def bnn_mlp(in_features: int = 64, hidden: tuple = (256, 256), num_classes: int = 10, norm: str = "bn",
            input_bits: int = 8, seed: int = 0) -> nn.Sequential:
    r"""A BNN multilayer perceptron: binary weights everywhere, binary hidden activations, 8-bit input.

    ``norm="bn"`` uses ``nn.BatchNorm1d`` and is exactly :func:`qteach.deploy.binary_mlp` (deployable with
    :func:`qteach.deploy.export`); ``norm="shift"`` uses :class:`ShiftBatchNorm` in the same places. Layout per
    layer: ``QuantLinear`` (sign weights; sign input from the second layer on, :class:`qteach.deploy.InputCode`
    for the first) → normalization. No biases.
    """
    if norm not in ("bn", "shift"):
        raise ValueError(f"norm must be 'bn' or 'shift', got {norm!r}")
    model = deploy.binary_mlp(in_features, hidden, num_classes, input_bits=input_bits, seed=seed)
    if norm == "shift":
        for i, m in enumerate(model):
            if isinstance(m, nn.BatchNorm1d):
                model[i] = ShiftBatchNorm(m.num_features)
    return model


def float_mlp(in_features: int = 64, hidden: tuple = (256, 256), num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    r"""The full-precision baseline with the layout of :func:`bnn_mlp`: Linear → BatchNorm1d → ReLU per hidden
    layer, Linear → BatchNorm1d at the end, inputs in :math:`[0, 1]`."""
    in_features = require_int(in_features, "in_features", minimum=1)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths, got {type(hidden).__name__}")
    widths = [in_features, *(require_int(h, "hidden", minimum=1) for h in hidden),
              require_int(num_classes, "num_classes", minimum=2)]
    layers: list = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.Linear(fan_in, fan_out, bias=False), nn.BatchNorm1d(fan_out)]
            if index < len(widths) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)
