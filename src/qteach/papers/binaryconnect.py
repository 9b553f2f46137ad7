r"""BinaryConnect: training with binary weights during the forward and backward propagations.

Courbariaux, Bengio and David (NIPS 2015) keep a real-valued copy :math:`w` of every weight, *binarize* it to
:math:`w_b \in \{-1, +1\}` for the forward and backward passes, and apply the gradient with respect to
:math:`w_b` to the real-valued :math:`w`, which is then clipped to :math:`[-1, 1]` (their Algorithm 1). The
binarization is deterministic (eq. 1) or stochastic (eq. 2-3). Because the stochastic version injects noise whose
mean is the clipped real weight, the paper presents BinaryConnect as a regularizer in the family of
Dropout/DropConnect.

Test time (paper sec. 2.6) offers three choices: the binary weights :math:`w_b`, the real-valued weights
:math:`w`, or an ensemble of sampled binary networks. The paper uses the binary weights for deterministic
BinaryConnect and the real-valued weights for stochastic BinaryConnect; the official code
(``binary_connect.py``: ``if not self.binary or (deterministic and self.stochastic): T.dot(input, self.W)``) does
the same. :class:`BinaryConnect` follows that default and exposes all three.

References:

- M. Courbariaux, Y. Bengio, J.-P. David, *BinaryConnect: Training Deep Neural Networks with binary weights during
  propagations*, NIPS 2015. https://arxiv.org/abs/1511.00363
- Official code: https://github.com/MatthieuCourbariaux/BinaryConnect
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import binary
from qteach.nn import QuantLinear
from qteach._validate import require_float_tensor, require_int, require_no_nan, require_tensor

__all__ = [
    "hard_sigmoid",
    "binarize_deterministic",
    "binarize_stochastic",
    "expected_binary_weight",
    "binaryconnect_update",
    "BinaryConnect",
    "binaryconnect_mlp",
    "ensemble_logits",
]

MODES = ("float", "deterministic", "stochastic")
TEST_TIME = ("binary", "real", "sample")


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    r"""The "hard sigmoid" of BinaryConnect (eq. 3).

    .. math:: \sigma(x) = \operatorname{clip}\!\left(\frac{x + 1}{2}, 0, 1\right) = \max\!\left(0, \min\!\left(1,
        \frac{x + 1}{2}\right)\right)

    A piecewise-linear stand-in for the logistic sigmoid, far cheaper to compute in software and in hardware
    (sec. 2.2). It is the probability that stochastic binarization (eq. 2) returns :math:`+1`; the official code
    computes it as ``T.clip((x+1.)/2.,0,1)``.
    """
    require_float_tensor(x, "x")
    return torch.clamp((x + 1) / 2, 0, 1)


def binarize_deterministic(w: torch.Tensor) -> torch.Tensor:
    r"""Deterministic binarization (eq. 1), with the straight-through gradient of Algorithm 1.

    .. math::
        w_b = \begin{cases} +1 & w \ge 0 \\ -1 & \text{otherwise} \end{cases}, \qquad
        \frac{\partial C}{\partial w} := \frac{\partial C}{\partial w_b}

    Algorithm 1 applies :math:`\partial C / \partial w_b` to the real-valued weight directly, so the backward pass
    is the identity (``qteach.binary.ste_sign`` with ``clip=None``); the clipping of :math:`w` to
    :math:`[-1, 1]` after each update plays the role that a clipped estimator plays elsewhere.
    """
    require_float_tensor(w, "w")
    return binary.ste_sign(w, clip=None)


def binarize_stochastic(w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Stochastic binarization (eq. 2), with the straight-through gradient of Algorithm 1.

    .. math::
        w_b = \begin{cases} +1 & \text{with probability } p = \sigma(w) \\ -1 & \text{with probability } 1 - p
        \end{cases}, \qquad \sigma(w) = \operatorname{clip}\!\left(\frac{w + 1}{2}, 0, 1\right)

    Implemented as :math:`w_b = +1` where :math:`u < p` for :math:`u \sim U[0, 1)`, so :math:`P(w_b = +1) = p`
    exactly. In expectation :math:`\mathbb{E}[w_b] = 2p - 1 = \operatorname{clip}(w, -1, 1)`
    (:func:`expected_binary_weight`): the binary weight is an unbiased, noisy version of the clipped real weight.
    ``generator`` (a ``torch.Generator``) makes the draw reproducible.
    """
    require_float_tensor(w, "w")
    require_no_nan(w, "w")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    with torch.no_grad():
        p = hard_sigmoid(w)
        device = generator.device if generator is not None else w.device
        u = torch.rand(w.shape, generator=generator, dtype=w.dtype, device=device).to(w.device)
        one = torch.ones((), dtype=w.dtype, device=w.device)
        w_b = torch.where(u < p, one, -one)
    return binary.straight_through(w, w_b)


def expected_binary_weight(w: torch.Tensor) -> torch.Tensor:
    r"""The mean of stochastic binarization: :math:`\mathbb{E}[w_b] = 2\sigma(w) - 1 = \operatorname{clip}(w, -1, 1)`.

    (Derived from eq. 2-3: :math:`(+1)\,p + (-1)(1 - p) = 2p - 1`.) Inside :math:`[-1, 1]` the expected binary
    weight *is* the real weight, which is why clipping :math:`w` to that interval loses nothing.
    """
    return 2 * hard_sigmoid(w) - 1


def binaryconnect_update(w: torch.Tensor, grad_wb: torch.Tensor, lr: float) -> torch.Tensor:
    r"""One parameter update of Algorithm 1 (plain SGD), returning the new real-valued weight.

    .. math:: w_t = \operatorname{clip}\!\left(w_{t-1} - \eta\,\frac{\partial C}{\partial w_b},\; -1,\; 1\right)

    The gradient is the one computed with the *binary* weights; the update goes to the *real* weights, which
    accumulate small steps that would be lost if the weights were binary. The clip keeps :math:`w` where
    :math:`w_b` can still change: beyond :math:`\pm 1` a weight would stop influencing eq. 1-2 (sec. 2.4).
    """
    require_float_tensor(w, "w")
    require_tensor(grad_wb, "grad_wb")
    if grad_wb.shape != w.shape:
        raise ValueError(f"grad_wb must have the shape of w {tuple(w.shape)}, got {tuple(grad_wb.shape)}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    return torch.clamp(w - lr * grad_wb, -1.0, 1.0)


class BinaryConnect(nn.Module):
    r"""Weight quantizer for :class:`qteach.nn.QuantLinear`: eq. 1 or eq. 2 in training, sec. 2.6 at test time.

    ``stochastic`` selects eq. 2 (else eq. 1). ``test_time`` says what the layer uses in eval mode:

    - ``"binary"``: :math:`\operatorname{sign}(w)` (the default for deterministic BinaryConnect; for a
      stochastically trained net this is the most probable binary network);
    - ``"real"``: the real-valued :math:`w` (the paper's choice for stochastic BinaryConnect, as in Dropout
      where the noise is removed at test time);
    - ``"sample"``: a fresh stochastic draw at every call (average several calls with :func:`ensemble_logits`).

    ``seed`` seeds the layer's own generator, so a model's draws are reproducible. ``precision = 1``.
    """

    precision = 1

    def __init__(self, stochastic: bool = False, test_time: str | None = None, seed: int = 0):
        if not isinstance(stochastic, bool):
            raise TypeError(f"stochastic must be a bool, got {type(stochastic).__name__}")
        if test_time is not None and test_time not in TEST_TIME:
            raise ValueError(f"test_time must be one of {TEST_TIME}, got {test_time!r}")
        seed = require_int(seed, "seed", minimum=0)
        super().__init__()
        self.stochastic = stochastic
        self.test_time = test_time if test_time is not None else ("real" if stochastic else "binary")
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.training and self.test_time == "real":
            return w
        if self.stochastic and (self.training or self.test_time == "sample"):
            return binarize_stochastic(w, self.generator)
        return binarize_deterministic(w)

    def extra_repr(self) -> str:
        return f"stochastic={self.stochastic}, test_time={self.test_time!r}"


def binaryconnect_mlp(in_features: int = 64, hidden: tuple = (256, 256), num_classes: int = 10,
                      mode: str = "deterministic", seed: int = 0, init_range: float | None = 1.0) -> nn.Sequential:
    r"""An MLP in the layout of the official MNIST script: (Linear → BatchNorm → ReLU) per hidden layer, then
    Linear → BatchNorm.

    ``mode`` is ``"float"`` (plain real weights, the baseline), ``"deterministic"`` or ``"stochastic"``
    (:class:`BinaryConnect` weight quantizers; layer ``i`` seeded with ``seed + i``). Batch normalization is one of
    the paper's "few more tricks" (sec. 2.5): it makes the scale of :math:`\pm 1` weights irrelevant. For the binary
    modes the latent weights are initialised uniformly in ``[-init_range, init_range]`` (the official code draws
    them uniformly over the whole clipping interval); ``init_range=None`` keeps PyTorch's default init. Biases
    stay real-valued, as in the paper.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    in_features = require_int(in_features, "in_features", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    if not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple of layer widths, got {type(hidden).__name__}")
    widths = [in_features, *(require_int(h, "hidden", minimum=1) for h in hidden), num_classes]
    if init_range is not None and not (isinstance(init_range, (int, float)) and 0 < init_range <= 1):
        raise ValueError(f"init_range must be in (0, 1] or None, got {init_range!r}")
    seed = require_int(seed, "seed", minimum=0)
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's random state
        torch.manual_seed(seed)
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            quantizer = None if mode == "float" else BinaryConnect(stochastic=mode == "stochastic",
                                                                   seed=seed + index)
            linear = QuantLinear(fan_in, fan_out, weight_quantizer=quantizer)
            if quantizer is not None and init_range is not None:
                nn.init.uniform_(linear.weight, -init_range, init_range)
            layers += [linear, nn.BatchNorm1d(fan_out)]
            if index < len(widths) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@torch.no_grad()
def ensemble_logits(model: nn.Module, x: torch.Tensor, samples: int = 8) -> torch.Tensor:
    r"""Test-time option 3 of sec. 2.6: average the softmax outputs of ``samples`` sampled binary networks.

    Every :class:`BinaryConnect` quantizer of ``model`` is switched to ``test_time="sample"`` for the call (and
    restored), the model runs in eval mode, and the mean of the ``samples`` probability vectors is returned (its
    log, so that ``argmax`` and ``qteach.train.accuracy`` apply as to logits).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    require_float_tensor(x, "x")
    samples = require_int(samples, "samples", minimum=1)
    quantizers = [m for m in model.modules() if isinstance(m, BinaryConnect)]
    if not quantizers:
        raise ValueError("model has no BinaryConnect weight quantizer to sample")
    saved = [(q, q.test_time) for q in quantizers]
    was_training = model.training
    model.eval()
    try:
        for q in quantizers:
            q.test_time = "sample"
        probs = torch.stack([torch.softmax(model(x), dim=1) for _ in range(samples)]).mean(dim=0)
    finally:
        for q, test_time in saved:
            q.test_time = test_time
        model.train(was_training)
    return probs.log()
