r"""Binary Ensemble Neural Network (BENN): bagging and boosting of several BNNs instead of one multi-bit network.

Zhu, Dong and Su (CVPR 2019; arXiv 1806.07550) argue that the error of a binary network comes mostly from its
instability (training lands in very different minima) and non-robustness, not from a lack of representation
power, and that ensembles, which reduce variance, are therefore a natural fit: :math:`K` one-bit networks
instead of one :math:`K`-bit network, "more networks per bit" instead of "more bits per network". This changes
neither the gradient through sign nor the scaling factors: the **architecture** is changed, a committee of
BNNs.

Only the abstract and the introduction of the paper could be read for this book; the formulas below are
transcribed from the official code, https://github.com/XinDongol/BENN-PyTorch (commit ``e57f017``), cited by
file and line:

**Bagging** (``cifar/SB/bagging/main_bagging_SB.py`` line 307): each member is trained on a bootstrap sample, as
many indices drawn uniformly with replacement as there are training examples. :func:`bootstrap_indices`.

**Boosting** (``cifar/SB/boosting/main_boostA_SB_seq.py`` lines 241-257, "Boost A", AdaBoost): after member
:math:`k` is trained, with :math:`m_i = 1` where it misclassifies training example :math:`i`,

.. math::
    \epsilon_k = \frac{\sum_i w_i m_i}{\sum_i w_i}, \qquad
    \alpha_k = \tfrac{1}{2} \log\frac{1 - \epsilon_k}{\epsilon_k}, \qquad
    w_i \leftarrow w_i\, e^{\alpha_k (2 m_i - 1)},

and the next member is trained on examples drawn with probabilities proportional to :math:`w_i`
(``WeightedRandomSampler``, line 98). "Boost D" (``main_boostD_SB_seq.py``) uses
:math:`\alpha_k = 0.1\,(\log\frac{1-\epsilon_k}{\epsilon_k} + \log 9)` for 10 classes, the multi-class SAMME
weight :math:`\log(C-1)` scaled by 0.1. :func:`boost_alpha`, :func:`boost_update`.

**Voting** (lines 313-330 of the same file): a *hard* vote, :math:`\arg\max_c \sum_k \alpha_k [\hat y_k = c]`,
and a *soft* vote, :math:`\arg\max_c \sum_k \alpha_k z_{k,c}`, with :math:`z_k` the member's output scores (the
network's last layer, no softmax). Bagging votes with :math:`\alpha_k = 1`. :func:`hard_vote`, :func:`soft_vote`.

References:

- S. Zhu, X. Dong, H. Su, *Binary Ensemble Neural Network: More Bits per Network or More Networks per Bit?*,
  CVPR 2019 (arXiv:1806.07550).
- Official code: https://github.com/XinDongol/BENN-PyTorch.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from qteach import comparison, hw, train
from qteach._validate import (
    require_bool,
    require_float_tensor,
    require_int,
    require_integer_tensor,
    require_module,
    require_ndim,
    require_tensor,
)
from qteach.data import Split

__all__ = [
    "EPS",
    "boost_alpha",
    "boost_update",
    "bootstrap_indices",
    "ensemble_accuracy",
    "equal_bit_costs",
    "hard_vote",
    "member",
    "member_outputs",
    "model_macs",
    "soft_vote",
    "train_ensemble",
]

EPS = 1e-6  # the error rate is kept in [EPS, 1 - EPS] so that alpha stays finite (the official code divides by 0)


def bootstrap_indices(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""A bootstrap sample for bagging: ``n`` indices drawn uniformly from ``0..n-1`` *with replacement*.

    .. math:: i_1, \dots, i_n \sim \mathcal{U}\{0, \dots, n-1\}

    On average a fraction :math:`1 - (1 - 1/n)^n \approx 1 - 1/e \approx 63\,\%` of the examples appear at least
    once (``main_bagging_SB.py`` line 307: ``np.random.choice(50000, size=50000)``).
    """
    n = require_int(n, "n", minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return torch.randint(0, n, (n,), generator=generator)


def boost_alpha(error: float, num_classes: int = 2, scale: float = 0.5) -> float:
    r"""The vote weight of a boosted member with weighted training error :math:`\epsilon`.

    .. math:: \alpha = s \left(\log\frac{1 - \epsilon}{\epsilon} + \log(C - 1)\right)

    :math:`s = \tfrac12, C = 2` is AdaBoost ("Boost A", ``main_boostA_SB_seq.py`` line 251); :math:`s = 0.1,
    C = 10` is "Boost D" (``main_boostD_SB_seq.py``). :math:`\epsilon` is clamped to :math:`[10^{-6},
    1 - 10^{-6}]` (``EPS``) so that a perfect member gets a large, finite weight.
    """
    if isinstance(error, bool) or not isinstance(error, (int, float)) or not 0 <= error <= 1:
        raise ValueError(f"error must be a number in [0, 1], got {error!r}")
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 or math.isinf(scale):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    e = min(max(float(error), EPS), 1 - EPS)
    return scale * (math.log((1 - e) / e) + math.log(num_classes - 1))


def boost_update(weights: torch.Tensor, miss: torch.Tensor, num_classes: int = 2, scale: float = 0.5):
    r"""One boosting round: the member's weighted error, its vote weight, and the new example weights.

    .. math::
        \epsilon = \frac{\sum_i w_i m_i}{\sum_i w_i}, \qquad \alpha = \texttt{boost\_alpha}(\epsilon), \qquad
        w_i' \propto w_i\, e^{\alpha (2 m_i - 1)}

    ``weights`` are the current example weights (non-negative, not all zero), ``miss`` a bool tensor, True where
    the member misclassifies the example. Misclassified examples gain weight :math:`e^{\alpha}`, the others lose
    :math:`e^{-\alpha}`. The new weights are normalised to sum to 1 (the official code leaves them unnormalised;
    its sampler normalises). Returns ``(new_weights, alpha, error)``.
    """
    require_float_tensor(weights, "weights")
    require_tensor(miss, "miss")
    if miss.dtype != torch.bool:
        raise TypeError(f"miss must be a bool tensor, got {miss.dtype}")
    require_ndim(weights, "weights", 1)
    if miss.shape != weights.shape:
        raise ValueError(f"miss must have the shape of weights {tuple(weights.shape)}, got {tuple(miss.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or not weights.sum() > 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    error = float((weights * miss).sum() / weights.sum())
    alpha = boost_alpha(error, num_classes, scale)
    new = weights * torch.exp(alpha * (2 * miss.to(weights.dtype) - 1))
    return new / new.sum(), alpha, error


def _alphas(alphas, k: int) -> torch.Tensor:
    if alphas is None:
        return torch.ones(k)
    alphas = torch.as_tensor(alphas, dtype=torch.float64)
    if alphas.shape != (k,) or not bool(torch.isfinite(alphas).all()):
        raise ValueError(f"alphas must be {k} finite numbers (one per member), got shape {tuple(alphas.shape)}")
    return alphas


def hard_vote(labels: torch.Tensor, num_classes: int, alphas=None) -> torch.Tensor:
    r"""Weighted majority vote of :math:`K` members' predicted labels, ``labels`` of shape (K, N).

    .. math:: \hat y = \arg\max_c \sum_{k=1}^{K} \alpha_k\, [\hat y_k = c]

    ``alphas=None`` gives every member one vote (bagging). A tie goes to the smallest class index, as in the
    official ``most_common_element`` (strict ``>``) and ``np.bincount(...).argmax()``.
    """
    require_integer_tensor(labels, "labels")
    require_ndim(labels, "labels", 2)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    if bool((labels < 0).any()) or bool((labels >= num_classes).any()):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}]")
    alphas = _alphas(alphas, labels.shape[0])
    one_hot = nn.functional.one_hot(labels, num_classes).to(alphas.dtype)  # (K, N, C)
    return torch.einsum("k,knc->nc", alphas, one_hot).argmax(dim=1)


def soft_vote(outputs: torch.Tensor, alphas=None) -> torch.Tensor:
    r"""Weighted sum of :math:`K` members' output scores, ``outputs`` of shape (K, N, C); returns (N, C).

    .. math:: s_{n,c} = \sum_{k=1}^{K} \alpha_k\, z_{k,n,c}, \qquad \hat y_n = \arg\max_c s_{n,c}

    As in the official code (``combine_softmax_output``), the scores are the networks' outputs, not
    probabilities. ``alphas=None`` weighs every member 1 (bagging).
    """
    require_float_tensor(outputs, "outputs")
    require_ndim(outputs, "outputs", 3)
    alphas = _alphas(alphas, outputs.shape[0]).to(outputs.dtype)
    return torch.einsum("k,knc->nc", alphas, outputs)


def _method(slug: str) -> comparison.Method:
    return next(m for m in comparison.methods() if m.paper == slug)


def member(bits: int = 1, seed: int = 0, in_features: int = 64) -> nn.Sequential:
    """One network of the results pages' protocol (:func:`qteach.comparison.protocol_mlp`): the BNN layer
    (sign weights and activations, chapter ``binarized_neural_networks``) for ``bits = 1``, DoReFa-Net's
    ``bits``-bit weights and activations for ``bits`` in 2..8, ReLU and float for ``bits = 32``."""
    bits = require_int(bits, "bits", minimum=1)
    if not (bits <= 8 or bits == 32):
        raise ValueError(f"bits must be 1..8 or 32, got {bits}")
    slug = {1: "binarized_neural_networks", 32: ""}.get(bits, "dorefa_net")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(require_int(seed, "seed", minimum=0))
        return comparison.protocol_mlp(_method(slug), bits, bits, require_int(in_features, "in_features", 1))


def member_outputs(models, x: torch.Tensor) -> torch.Tensor:
    """The members' outputs on ``x`` in eval mode, stacked to (K, N, C)."""
    if isinstance(models, nn.Module) or not models or not all(isinstance(m, nn.Module) for m in models):
        raise TypeError("models must be a non-empty list of torch.nn.Module")
    require_float_tensor(x, "x")
    with torch.no_grad():
        return torch.stack([m.eval()(x) for m in models])


def train_ensemble(data: Split, k: int, scheme: str = "bagging", seed: int = 0, warm_start: bool = False,
                   epochs: int = comparison.DIGITS.epochs, lr: float = comparison.DIGITS.lr,
                   batch_size: int = comparison.DIGITS.batch_size):
    r"""Train ``k`` BNN members by ``scheme`` ``"bagging"`` or ``"boosting"`` (Boost A); returns
    ``(models, alphas)``.

    Bagging: member :math:`j` sees a bootstrap sample, :math:`\alpha_j = 1`. Boosting: member :math:`j` sees
    ``n`` examples drawn with replacement with probabilities :math:`w_i` (drawn once per member; the official
    sampler redraws every epoch), the first member the whole training set (its weights are uniform), then
    :func:`boost_update` on the whole training set. The first boosted member is thus a plain BNN. ``warm_start`` starts
    each member from the previous one (the official "Seq" scripts) instead of a fresh initialisation ("Indp").
    Training as the results pages: Adam, latent weights clipped to [-1, 1].
    """
    if not isinstance(data, Split):
        raise TypeError(f"data must be a qteach.data.Split, got {type(data).__name__}")
    k = require_int(k, "k", minimum=1)
    if scheme not in ("bagging", "boosting"):
        raise ValueError(f"scheme must be 'bagging' or 'boosting', got {scheme!r}")
    seed, warm_start = require_int(seed, "seed", minimum=0), require_bool(warm_start, "warm_start")
    generator = torch.Generator().manual_seed(seed)
    n = len(data.x_train)
    weights = torch.full((n,), 1.0 / n, dtype=torch.float64)
    models, alphas = [], []
    for j in range(k):
        if scheme == "bagging":
            idx = bootstrap_indices(n, generator)
        elif j == 0:  # uniform weights: the whole training set (the official sampler redraws it every epoch)
            idx = torch.arange(n)
        else:
            idx = torch.multinomial(weights, n, replacement=True, generator=generator)
        model = copy.deepcopy(models[-1]) if warm_start and models else member(1, seed * 1000 + j,
                                                                               data.x_train.shape[1])
        sample = Split(data.x_train[idx], data.y_train[idx], data.x_test, data.y_test)
        train.fit(model, sample, epochs=epochs, lr=lr, batch_size=batch_size, weight_clip=1.0,
                  seed=seed * 1000 + j, progress=False)
        models.append(model)
        if scheme == "bagging":
            alphas.append(1.0)
        else:
            miss = member_outputs([model], data.x_train)[0].argmax(1) != data.y_train
            weights, alpha, _ = boost_update(weights, miss)
            alphas.append(alpha)
    return models, alphas


def ensemble_accuracy(models, alphas, x: torch.Tensor, y: torch.Tensor, vote: str = "soft") -> float:
    """Test accuracy of the first ``len(models)`` members voting ``"soft"`` or ``"hard"``."""
    if vote not in ("soft", "hard"):
        raise ValueError(f"vote must be 'soft' or 'hard', got {vote!r}")
    require_integer_tensor(y, "y")
    outputs = member_outputs(models, x)
    if len(alphas) != len(models):
        raise ValueError(f"alphas must have one weight per model ({len(models)}), got {len(alphas)}")
    if vote == "soft":
        pred = soft_vote(outputs, alphas).argmax(1)
    else:
        pred = hard_vote(outputs.argmax(2), outputs.shape[2], alphas)
    return float((pred == y).float().mean())


def equal_bit_costs(k: int, quantized_macs: int, float_macs: int = 0) -> dict:
    r"""Per-sample cost of :math:`K` BNNs and of one :math:`K`-bit network with the same layers (our count).

    Weight bits of the quantized layers are equal (:math:`K \cdot 1 = 1 \cdot K` per weight); bit operations are
    :math:`K \cdot \text{MACs}` for the ensemble and :math:`K^2 \cdot \text{MACs}` for the :math:`K`-bit network
    computed on bit planes (:func:`qteach.hw.bops`); the float first and last layers are paid :math:`K` times by
    the ensemble. Returns ``{name: {"weight_bits", "bit_ops", "float_macs"}}``.
    """
    k = require_int(k, "k", minimum=1, maximum=32)
    quantized_macs = require_int(quantized_macs, "quantized_macs", minimum=0)
    float_macs = require_int(float_macs, "float_macs", minimum=0)
    return {
        f"{k} BNNs (BENN)": {"weight_bits": k * quantized_macs, "bit_ops": k * hw.bops(quantized_macs, 1, 1),
                             "float_macs": k * float_macs},
        f"one {k}-bit network": {"weight_bits": k * quantized_macs, "bit_ops": hw.bops(quantized_macs, k, k),
                                 "float_macs": float_macs},
    }


def model_macs(model: nn.Module) -> tuple[int, int]:
    """``(quantized MACs, float MACs)`` of the linear layers of ``model`` for one sample."""
    require_module(model)
    q = f = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            macs = hw.linear_macs(m.in_features, m.out_features)
            if getattr(m, "weight_quantizer", None) is not None:
                q += macs
            else:
                f += macs
    return q, f
