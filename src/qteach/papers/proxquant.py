r"""ProxQuant: binary weights by prox-gradient steps on a W-shaped regularizer, not by the straight-through gradient.

Bai, Wang and Liberty (ICLR 2019) observe that the straight-through gradient method (BinaryConnect) evaluates the
gradient at the *quantized* weights and applies it to the real ones: a "lazy projection" (in the paper, Nesterov's
dual averaging on the quantization-constrained problem). They propose instead to treat quantization as a
regularizer and to minimise

.. math:: L(\theta) + \lambda_t R(\theta), \qquad R_{\rm bin}(\theta) = \sum_j \min\big(|\theta_j - 1|,
    |\theta_j + 1|\big) = \lVert \theta - \operatorname{sign}(\theta) \rVert_1

(the "W-shaped" regularizer, zero exactly on :math:`\{-1, +1\}`) by the prox-gradient method: a gradient step at
the *real* weights, then the prox operator of :math:`\eta_t \lambda_t R`,

.. math:: \theta_{t+1} = \operatorname{prox}_{\eta_t \lambda_t R}\big(\theta_t - \eta_t \nabla L(\theta_t)\big),

whose closed form for :math:`R_{\rm bin}` is a soft-thresholding of each weight toward its sign: a weight moves
by :math:`\eta_t \lambda_t` toward the nearer of :math:`\pm 1` and stops there (:func:`prox_binary`). The strength
:math:`\lambda_t` grows linearly during training (a homotopy: :func:`reg_strength`), so the weights start free and
end binary; a hard quantization (sign, then frozen) finishes the job (:func:`hard_quantize`).

**What could be read.** The abstract, the start of the introduction and the caption of Figure 1 (the two-function
toy problem of :func:`toy_trajectory`), plus the official code (github.com/allenbai01/ProxQuant, ``reg.py`` and
``main_binary_reg.py``), which fixes every detail used here: the prox (``reg.py`` lines 279-281), the clip to
[-1, 1] after it (lines 382, 428 of ``main_binary_reg.py``), the strength ``lr * reg_rate * epoch``
(``main_binary_reg.py`` lines 250 and 423) and the freeze at 2/3 of training (``--freeze_epoch 200`` of 300
epochs in the README). Equation numbers of the paper could not be read and are not cited.

References:

- Y. Bai, Y.-X. Wang, E. Liberty, *ProxQuant: Quantized Neural Networks via Proximal Operators*, ICLR 2019.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qteach import binary, train
from qteach._validate import (
    require_float_tensor,
    require_int,
    require_module,
    require_no_nan,
    require_non_negative_number,
    require_positive_number,
    require_str,
)
from qteach.data import Split

__all__ = [
    "BinarizeAtEval",
    "EpochRecorder",
    "binary_fraction",
    "binary_regularizer",
    "comparison_layer",
    "fit_proxquant",
    "hard_quantize",
    "protocol_fit",
    "prox_binary",
    "prox_step",
    "quantized_weights",
    "reg_strength",
    "toy_trajectory",
]

TOY_METHODS = ("lazy", "proxquant")


def binary_regularizer(theta: torch.Tensor) -> torch.Tensor:
    r"""The W-shaped binary regularizer :math:`R_{\rm bin}(\theta) = \sum_j \min(|\theta_j - 1|, |\theta_j + 1|)`.

    Zero exactly when every entry is :math:`\pm 1`, slope :math:`\pm 1` everywhere else (a "W"). The official code
    (``reg.py`` line 23, ``binary_reg``) uses the mean per layer instead of the sum, a rescaling of :math:`\lambda`.
    """
    require_no_nan(require_float_tensor(theta, "theta"), "theta")
    return torch.minimum((theta - 1).abs(), (theta + 1).abs()).sum()


def prox_binary(theta: torch.Tensor, strength: float) -> torch.Tensor:
    r"""The prox operator of ``strength`` :math:`\cdot R_{\rm bin}`: each weight soft-thresholded toward its sign.

    .. math:: \operatorname{prox}_{s R_{\rm bin}}(\theta) = \arg\min_x\, s R_{\rm bin}(x) + \tfrac12 \lVert x -
        \theta\rVert^2 = \operatorname{sign}(\theta) + \operatorname{sign}(\theta - \operatorname{sign}\theta)
        \,\big[\,|\theta - \operatorname{sign}\theta| - s\,\big]_+

    A weight moves by ``strength`` toward the nearer of :math:`\pm 1` and does not overshoot it; at
    ``strength = 0`` nothing moves. (At exactly 0 both signs are minimisers; :func:`qteach.binary.sign` picks
    +1, the official code leaves 0 in place.)
    """
    require_no_nan(require_float_tensor(theta, "theta"), "theta")
    strength = require_non_negative_number(strength, "strength")
    target = binary.sign(theta)
    residual = theta - target
    return target + residual.sign() * (residual.abs() - strength).clamp(min=0)


def reg_strength(epoch: int, reg_rate: float) -> float:
    r"""The paper's increasing regularization :math:`\lambda_t = \lambda \cdot t` (``t`` the epoch, from 0), as in
    the official ``br = args.reg_rate * epoch`` (``main_binary_reg.py`` line 250)."""
    epoch = require_int(epoch, "epoch", minimum=0)
    reg_rate = require_non_negative_number(reg_rate, "reg_rate")
    return reg_rate * epoch


class BinarizeAtEval(nn.Module):
    r"""Weight quantizer of a ProxQuant layer: the real weights in training (the gradient is taken at
    :math:`\theta`, not at :math:`\operatorname{sign}\theta`), :math:`\operatorname{sign}(\theta)` in eval mode
    (the official code's evaluation of the "binarized model", ``quantize('deterministic')``)."""

    precision = 1

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w if self.training else binary.sign(w)


def quantized_weights(model: nn.Module) -> list:
    """The latent weights that ProxQuant binarizes: those of every layer with a ``weight_quantizer``."""
    require_module(model)
    return [m.weight for m in model.modules() if getattr(m, "weight_quantizer", None) is not None]


def prox_step(model: nn.Module, strength: float) -> None:
    r"""Apply :func:`prox_binary` with ``strength`` :math:`= \eta_t\lambda_t` to every quantized weight, then clip to
    [-1, 1], as the official loop does after each optimizer step (``main_binary_reg.py`` lines 420-428)."""
    require_module(model)
    strength = require_non_negative_number(strength, "strength")
    with torch.no_grad():
        for w in quantized_weights(model):
            w.copy_(prox_binary(w, strength).clamp(-1, 1))


def hard_quantize(model: nn.Module, freeze: bool = True) -> None:
    r"""The final hard quantization: every quantized weight set to its sign and, with ``freeze``, no longer
    trained (the official ``quantize(mode='binary_freeze')``, ``reg.py`` lines 317-321)."""
    require_module(model)
    if not isinstance(freeze, bool):
        raise TypeError(f"freeze must be a bool, got {type(freeze).__name__}")
    with torch.no_grad():
        for w in quantized_weights(model):
            w.copy_(binary.sign(w))
            w.requires_grad_(not freeze)


def binary_fraction(model: nn.Module) -> float:
    """The fraction of quantized weights that are exactly +1 or -1."""
    weights = torch.cat([w.detach().flatten() for w in quantized_weights(model)])
    return (weights.abs() == 1).float().mean().item()


class EpochRecorder:
    r"""An ``after_step`` callback that, every ``steps_per_epoch`` calls, records the fraction of quantized weights
    at exactly :math:`\pm 1` (``binary``), their mean distance to :math:`\pm 1` (``level``, the official
    ``binary_levels``, ``reg.py`` lines 402-405) and the fraction whose sign changed since the last record
    (``flips``)."""

    def __init__(self, steps_per_epoch: int):
        self.steps_per_epoch = require_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        self.calls, self.binary, self.level, self.flips, self._signs = 0, [], [], [], None

    def __call__(self, model: nn.Module) -> None:
        self.calls += 1
        if self.calls % self.steps_per_epoch:
            return
        weights = torch.cat([w.detach().flatten() for w in quantized_weights(model)])
        signs = binary.sign(weights)
        if self._signs is not None:
            self.flips.append((signs != self._signs).float().mean().item())
        self._signs = signs
        self.binary.append((weights.abs() == 1).float().mean().item())
        self.level.append(binary_regularizer(weights).item() / len(weights))


def fit_proxquant(model: nn.Module, data, epochs: int = 10, lr: float = 3e-3, batch_size: int = 128,
                  reg_rate: float = 3.0, freeze_epoch: int | None = None, seed: int = 0,
                  recorder: EpochRecorder | None = None) -> train.History:
    r"""ProxQuant training with Adam: after each step, :func:`prox_step` with :math:`\eta\lambda_t`,
    :math:`\lambda_t =` :func:`reg_strength` (epoch, ``reg_rate``); at ``freeze_epoch`` (default: 2/3 of
    ``epochs``, rounded, as the official 200 of 300) :func:`hard_quantize`, then the other parameters train on.
    ``recorder`` (an :class:`EpochRecorder`) runs after each step. Returns the :class:`qteach.train.History`."""
    require_module(model)
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    epochs = require_int(epochs, "epochs", minimum=1)
    lr = require_positive_number(lr, "lr")
    batch_size = require_int(batch_size, "batch_size", minimum=1)
    reg_rate = require_non_negative_number(reg_rate, "reg_rate")
    freeze_epoch = round(2 * epochs / 3) if freeze_epoch is None else freeze_epoch
    freeze_epoch = require_int(freeze_epoch, "freeze_epoch", minimum=1, maximum=epochs)
    steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
    step = [0]

    def after_step(m):
        prox_step(m, lr * reg_strength(step[0] // steps_per_epoch, reg_rate))
        step[0] += 1
        if recorder is not None:
            recorder(m)

    history = train.fit(model, data, epochs=freeze_epoch, lr=lr, batch_size=batch_size, seed=seed,
                        progress=False, after_step=after_step)
    hard_quantize(model, freeze=True)
    if freeze_epoch < epochs:
        rest = train.fit(model, data, epochs=epochs - freeze_epoch, lr=lr, batch_size=batch_size, seed=seed + 1,
                         progress=False, after_step=recorder)
        for name in ("train_loss", "train_accuracy", "test_accuracy"):
            getattr(history, name).extend(getattr(rest, name))
    return history


def comparison_layer(w_bits: int = 1, a_bits: int = 32):
    r"""``(weight_quantizer, input_quantizer, activation)`` for :class:`qteach.comparison.Method`: real weights in
    training and their sign in evaluation (:class:`BinarizeAtEval`), real inputs, ReLU. Train with
    :func:`protocol_fit`, which adds the prox steps and the final freeze. Only ``w_bits = 1, a_bits = 32``."""
    if require_int(w_bits, "w_bits", minimum=1) != 1 or require_int(a_bits, "a_bits", minimum=1) != 32:
        raise ValueError(f"w_bits must be 1 and a_bits 32 (binary weights, real activations), got {w_bits} and "
                         f"{a_bits}")
    return BinarizeAtEval(), None, nn.ReLU()


def protocol_fit(model: nn.Module, data, seed: int, protocol, reg_rate: float = 3.0) -> train.History:
    """The ``fit`` of a :class:`qteach.comparison.Method`: :func:`fit_proxquant` with the protocol's epochs,
    learning rate and batch size, the freeze at 2/3 of the epochs."""
    return fit_proxquant(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                         reg_rate=reg_rate, seed=seed)


def toy_trajectory(method: str, s: int, x0: float = 0.2, lr: float = 0.05, steps: int = 60,
                   reg_rate: float = 0.1) -> list:
    r"""The paper's toy problem (Figure 1b): minimise :math:`f_s(x) = |x + s/2| - 1/2` over :math:`x \in \{\pm1\}`,
    :math:`s = \pm 1` (minimiser :math:`-s`). ``"lazy"`` is BinaryConnect, :math:`x \leftarrow \operatorname{clip}
    (x - \eta f_s'(\operatorname{sign} x))`; ``"proxquant"`` is :math:`x \leftarrow \operatorname{clip}(
    \operatorname{prox}_{\eta\lambda_t R}(x - \eta f_s'(x)))` with :math:`\lambda_t =` ``reg_rate`` :math:`\cdot t`
    (``t`` the step). Returns the iterates :math:`x_0, \dots, x_{\rm steps}` (float64, rounded to 12 decimals)."""
    if require_str(method, "method") not in TOY_METHODS:
        raise ValueError(f"method must be one of {TOY_METHODS}, got {method!r}")
    if s not in (1, -1) or isinstance(s, bool):
        raise ValueError(f"s must be 1 or -1, got {s!r}")
    if isinstance(x0, bool) or not isinstance(x0, (int, float)) or not math.isfinite(x0):
        raise TypeError(f"x0 must be a finite number, got {x0!r}")
    lr = require_positive_number(lr, "lr")
    steps = require_int(steps, "steps", minimum=0)
    reg_rate = require_non_negative_number(reg_rate, "reg_rate")
    x = torch.tensor([float(x0)], dtype=torch.float64).clamp(-1, 1)
    path = [round(x.item(), 12)]
    for t in range(steps):
        if method == "lazy":
            x = (x - lr * torch.sign(binary.sign(x) + s / 2)).clamp(-1, 1)
        else:
            x = prox_binary(x - lr * torch.sign(x + s / 2), lr * reg_rate * t).clamp(-1, 1)
        path.append(round(x.item(), 12))
    return path
