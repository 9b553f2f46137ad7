r"""IR-Net: balanced, standardized binary weights (Libra-PB) and a sharpening tanh backward (EDE).

Qin, Gong, Liu, Shen, Wei, Yu and Song (CVPR 2020, arXiv 1909.10788) argue that a binary network loses
information twice: in the forward pass, when weights and activations collapse to two values, and in the backward
pass, when the derivative of the sign is replaced by an estimate. Their Information Retention Network changes both:

- **Libra Parameter Binarization (Libra-PB)**, forward: each output channel's weights are *balanced* (mean
  subtracted) and *standardized* (divided by their standard deviation) before the sign, so that about half of the
  binary weights are :math:`+1` (the entropy of a binary weight is largest, 1 bit, when the two values are equally
  likely), and the binary weights are multiplied by a power of two, a bit shift instead of XNOR-Net's real scale
  (:func:`libra_pb_forward`, :func:`power_of_two_scale`):

  .. math:: \hat w_{std} = \frac{w - \bar w}{\sigma(w)}, \qquad
      Q_w(w) = \operatorname{sign}(\hat w_{std}) \cdot 2^{s}, \qquad
      s = \operatorname{round}\Bigl(\log_2 \tfrac{1}{n}\lVert \hat w_{std} \rVert_1\Bigr)

- **Error Decay Estimator (EDE)**, backward: the sign's derivative is taken from
  :math:`g(x) = k \tanh(t x)`, with :math:`t` growing over training from :math:`T_{min}` to :math:`T_{max}`
  and :math:`k = \max(1/t, 1)` (:func:`ede_derivative`, :func:`ede_schedule`): at first the gradient is the
  identity's (every weight can move), at the end a narrow bump like the sign's own (accurate gradients):

  .. math:: g'(x) = k\,t\,\bigl(1 - \tanh^2(t x)\bigr), \qquad
      t = T_{min} \cdot 10^{\frac{i}{N} \log_{10} \frac{T_{max}}{T_{min}}}, \qquad k = \max(1/t, 1)

  for epoch :math:`i` of :math:`N`. EDE is applied to both the (standardized) weights and the activations.

**What could be read, and what the code says.** The abstract, the introduction (arXiv v4 text) and the official
code, https://github.com/htqin/IR-Net at commit ``f63a590``: ``CIFAR-10/ResNet20/1w1a/modules/ir_1w1a.py``
lines 16-25 (Libra-PB forward), ``.../modules/binaryfunction.py`` lines 7-16 (sign forward, EDE backward) and
``.../trainer.py`` lines 130-143 (the schedule, ``T_min, T_max = 1e-3, 1e1``). The method section with its
equation numbers could not be read, so no equation is cited by number; the formulas above are transcribed from the
code, and where the code and our reading of the paper could differ (the range of :math:`t`), the code's values are
used. The standard deviation is PyTorch's default (Bessel-corrected), as in the code; the scale :math:`2^s` is
detached from the gradient, as in the code (``.detach()``).

References:

- H. Qin, R. Gong, X. Liu, M. Shen, Z. Wei, F. Yu, J. Song, *Forward and Backward Information Retention for
  Accurate Binary Neural Networks*, CVPR 2020 (arXiv:1909.10788).
- Official code: https://github.com/htqin/IR-Net.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary
from qteach._validate import (
    require_binary_layer_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_no_nan,
    require_positive_number,
    require_weights,
)

__all__ = [
    "T_MAX",
    "T_MIN",
    "EDESign",
    "IRWeight",
    "binary_entropy_bits",
    "comparison_layer",
    "ede_derivative",
    "ede_schedule",
    "ede_sign",
    "libra_pb",
    "libra_pb_forward",
    "power_of_two_scale",
    "protocol_fit",
    "set_schedule",
    "standardize",
]

#: The schedule's range of t in the official code (``trainer.py`` line 130: ``T_min, T_max = 1e-3, 1e1``).
T_MIN, T_MAX = 1e-3, 10.0


def _require_rows(w: torch.Tensor) -> torch.Tensor:
    require_weights(w, "w")
    if w.dim() < 2 or w[0].numel() < 2:
        raise ValueError(f"w must have an output dimension and at least 2 weights per output, got shape "
                         f"{tuple(w.shape)}")
    return w


def standardize(w: torch.Tensor) -> torch.Tensor:
    r"""Balance and standardize each output channel (dim 0): :math:`\hat w_{std} = (w - \bar w) / \sigma(w)`.

    Mean and (Bessel-corrected) standard deviation are taken over each output's weights, as in the official code
    (``ir_1w1a.py`` lines 18-19). Differentiable: the gradient flows through the mean and the deviation. A row
    whose weights are all equal has no deviation and raises ``ValueError``."""
    _require_rows(w)
    if bool((w.reshape(w.shape[0], -1).std(-1) == 0).any()):
        raise ValueError("w must not have an output whose weights are all equal (its deviation is zero)")
    return _standardize(w)


def _standardize(w: torch.Tensor) -> torch.Tensor:
    shape = (-1,) + (1,) * (w.dim() - 1)
    centred = w - w.reshape(w.shape[0], -1).mean(-1).view(shape)
    return centred / centred.reshape(w.shape[0], -1).std(-1).view(shape)


def power_of_two_scale(w_std: torch.Tensor) -> torch.Tensor:
    r"""The bit-shift scale of each output: :math:`2^{s}`, :math:`s = \operatorname{round}(\log_2
    \frac{1}{n}\lVert \hat w_{std}\rVert_1)` (``ir_1w1a.py`` line 20), detached, shaped to broadcast against
    ``w_std``. XNOR-Net's :math:`\alpha = \frac{1}{n}\lVert w \rVert_1` rounded to a power of two in the log domain."""
    _require_rows(w_std)
    if bool((w_std.abs().reshape(w_std.shape[0], -1).amax(-1) == 0).any()):
        raise ValueError("w_std must not have an output whose weights are all zero")
    return _power_of_two_scale(w_std)


def _power_of_two_scale(w_std: torch.Tensor) -> torch.Tensor:
    mean_abs = w_std.detach().abs().reshape(w_std.shape[0], -1).mean(-1)
    return (2.0 ** torch.round(torch.log2(mean_abs))).view((-1,) + (1,) * (w_std.dim() - 1))


def ede_derivative(x: torch.Tensor, k: float, t: float) -> torch.Tensor:
    r"""EDE's derivative of :math:`g(x) = k\tanh(t x)`:

    .. math:: g'(x) = k\,t\,\bigl(1 - \tanh^2(t x)\bigr)

    (``binaryfunction.py`` line 15). Its peak is :math:`k t` at :math:`x = 0`; for :math:`t < 1` with
    :math:`k = 1/t` it is close to 1 over a wide range (the identity's gradient), for :math:`t \gg 1` a narrow bump
    of height :math:`t` (the sign's)."""
    require_float_tensor(x, "x")
    k = require_positive_number(k, "k")
    t = require_positive_number(t, "t")
    return k * t * (1 - torch.tanh(t * x) ** 2)


def ede_sign(x: torch.Tensor, k: float, t: float) -> torch.Tensor:
    r"""Sign forward, EDE backward: :math:`q(x) = \operatorname{sign}(x)`, :math:`\partial q / \partial x :=
    g'(x)` (:func:`ede_derivative`), as ``BinaryQuantize`` in ``binaryfunction.py`` lines 5-16 (with
    :func:`qteach.binary.sign`'s :math:`\operatorname{sign}(0) = +1`, where ``torch.sign`` gives 0)."""
    require_float_tensor(x, "x")
    return _ede_sign(x, require_positive_number(k, "k"), require_positive_number(t, "t"))


def _ede_sign(x: torch.Tensor, k: float, t: float) -> torch.Tensor:
    return binary.sign_with_surrogate(x, lambda v: k * t * (1 - torch.tanh(t * v) ** 2))


def ede_schedule(epoch: int, epochs: int, t_min: float = T_MIN, t_max: float = T_MAX) -> tuple[float, float]:
    r"""``(t, k)`` at ``epoch`` (0-based) of ``epochs``, as ``Log_UP`` in ``trainer.py`` lines 132-143:

    .. math:: t = 10^{\log_{10} T_{min} + (\log_{10} T_{max} - \log_{10} T_{min})\, i / N}, \qquad
        k = \max(1/t, 1)

    The last epoch's :math:`t` is :math:`T_{max}^{(N-1)/N} T_{min}^{1/N}`, just below :math:`T_{max}`."""
    epochs = require_int(epochs, "epochs", minimum=1)
    epoch = require_int(epoch, "epoch", minimum=0, maximum=epochs - 1)
    t_min = require_positive_number(t_min, "t_min")
    t_max = require_positive_number(t_max, "t_max")
    if t_max < t_min:
        raise ValueError(f"t_max must be at least t_min, got {t_max} < {t_min}")
    low, high = math.log10(t_min), math.log10(t_max)
    t = 10 ** (low + (high - low) / epochs * epoch)
    return t, (1 / t if t < 1 else 1.0)


def libra_pb_forward(w: torch.Tensor) -> torch.Tensor:
    r"""Libra-PB's binary weights, forward only: :math:`Q_w(w) = \operatorname{sign}(\hat w_{std}) \cdot 2^s`
    (:func:`standardize`, :func:`power_of_two_scale`)."""
    _require_rows(w)
    w_std = standardize(w)
    return binary.sign(w_std) * power_of_two_scale(w_std)


def libra_pb(w: torch.Tensor, k: float, t: float) -> torch.Tensor:
    r"""Libra-PB with EDE's backward, as ``IRConv2d.forward`` (``ir_1w1a.py`` lines 16-23):
    :math:`\operatorname{sign}(\hat w_{std}) \cdot 2^s`, the gradient reaching :math:`w` through
    :math:`g'(\hat w_{std})` and the standardization."""
    _require_rows(w)
    k = require_positive_number(k, "k")
    t = require_positive_number(t, "t")
    w_std = standardize(w)
    return ede_sign(w_std, k, t) * power_of_two_scale(w_std)


def binary_entropy_bits(b: torch.Tensor) -> float:
    r"""The entropy (bits) of the empirical distribution of the binary values ``b`` (:math:`\pm` anything, split
    at zero): :math:`H = -p\log_2 p - (1 - p)\log_2(1 - p)`, :math:`p` the fraction of non-negative entries,
    computed from exact counts. 1 bit when balanced, 0 when all equal."""
    require_float_tensor(b, "b")
    require_no_nan(b, "b")
    if b.numel() == 0:
        raise ValueError("b must not be empty")
    p = int((b >= 0).sum()) / b.numel()
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


class IRWeight(nn.Module):
    r"""IR-Net's weight quantizer, with switches for the ablation.

    ``balance=True``: Libra-PB (:func:`standardize`, sign, :func:`power_of_two_scale`); ``False``: the plain
    sign of :math:`w`. ``ede=True``: EDE's backward with the module's ``k`` and ``t`` (set by
    :func:`set_schedule`); ``False``: BNN's Htanh estimator :math:`1_{|x| \le 1}`. ``IRWeight(False, False)`` is
    BNN's weight quantizer. ``precision = 1``."""

    precision = 1

    def __init__(self, balance: bool = True, ede: bool = True):
        super().__init__()
        self.balance = require_bool(balance, "balance")
        self.ede = require_bool(ede, "ede")
        self.k, self.t = 1.0 / T_MIN, T_MIN

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        _require_rows(w)
        x = _standardize(w) if self.balance else w  # a constant row gives NaN, which the sign then refuses
        b = _ede_sign(x, self.k, self.t) if self.ede else binary.ste_sign(x)
        return b * _power_of_two_scale(x) if self.balance else b

    def extra_repr(self) -> str:
        return f"balance={self.balance}, ede={self.ede}, k={self.k:.4g}, t={self.t:.4g}"


class EDESign(nn.Module):
    r"""IR-Net's activation: sign forward, EDE backward (``ede=True``) or BNN's Htanh estimator (``False``).
    ``k`` and ``t`` are set by :func:`set_schedule`. ``precision = 1``."""

    precision = 1

    def __init__(self, ede: bool = True):
        super().__init__()
        self.ede = require_bool(ede, "ede")
        self.k, self.t = 1.0 / T_MIN, T_MIN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        require_float_tensor(x, "x")
        return _ede_sign(x, self.k, self.t) if self.ede else binary.ste_sign(x)

    def extra_repr(self) -> str:
        return f"ede={self.ede}, k={self.k:.4g}, t={self.t:.4g}"


def set_schedule(model: nn.Module, t: float, k: float) -> int:
    """Set ``t`` and ``k`` on every :class:`IRWeight` and :class:`EDESign` of ``model``; returns how many."""
    require_module(model)
    t = require_positive_number(t, "t")
    k = require_positive_number(k, "k")
    found = [m for m in model.modules() if isinstance(m, (IRWeight, EDESign))]
    for module in found:
        module.t, module.k = t, k
    return len(found)


def comparison_layer(w_bits: int = 1, a_bits: int = 1, balance: bool = True, ede: bool = True):
    r"""``(weight_quantizer, input_quantizer, activation)`` of an IR-Net layer for
    :class:`qteach.comparison.Method`: :class:`IRWeight`, no input quantizer, :class:`EDESign` as the activation
    (as BNN's entry uses the Htanh sign). Train it with :func:`protocol_fit`, which schedules ``t`` and ``k``.
    ``balance``/``ede`` switch the two parts off for the ablation. Only ``w_bits = a_bits = 1`` exist."""
    require_binary_layer_bits(w_bits, a_bits)
    return IRWeight(balance, ede), None, EDESign(ede)


def protocol_fit(model: nn.Module, data, seed: int, protocol, t_min: float = T_MIN, t_max: float = T_MAX,
                 weight_clip: float | None = None):
    r"""Train ``model`` with the protocol's Adam loop, setting EDE's ``(t, k)`` from :func:`ede_schedule` at the
    start of every epoch (counted in steps), as the official trainer does per epoch. No latent-weight clipping by
    default (the official code has none: Libra-PB's standardization makes the weights' scale irrelevant). The
    ``fit`` of a :class:`qteach.comparison.Method`; returns :class:`qteach.train.History` with the ``t`` of each
    epoch in its attribute ``t``."""
    from qteach import train

    require_module(model)
    epochs = require_int(protocol.epochs, "protocol.epochs", minimum=1)
    ede_schedule(0, epochs, t_min, t_max)  # checks t_min and t_max
    steps = math.ceil(len(data.x_train) / protocol.batch_size)
    schedule = [ede_schedule(epoch, epochs, t_min, t_max) for epoch in range(epochs)]
    set_schedule(model, *schedule[0])
    done = {"steps": 0}

    def after_step(m):
        done["steps"] += 1
        if done["steps"] % steps == 0 and done["steps"] // steps < epochs:
            set_schedule(m, *schedule[done["steps"] // steps])

    history = train.fit(model, data, epochs=epochs, lr=protocol.lr, batch_size=protocol.batch_size, seed=seed,
                        progress=False, weight_clip=weight_clip, after_step=after_step)
    history.t = [t for t, _ in schedule]
    return history
