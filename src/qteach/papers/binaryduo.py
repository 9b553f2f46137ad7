r"""BinaryDuo: train with ternary activations, then split each into two binary ones.

Kim, Kim, Kim and Kim (ICLR 2020) observe that binarizing the *activations* costs a binary network most of its
accuracy, and blame the gradient mismatch of the straight-through estimator (STE). They estimate that mismatch
with the gradient of a smoothed loss (their "coordinate discrete gradient", CDG), find that a ternary activation
suffers much less from it than a binary one, and propose BinaryDuo: train a network whose activations are
ternary, then *decouple* every ternary activation into two binary activations (the next layer's weight is
duplicated and halved) and fine-tune the resulting binary network. A ternary activation with levels
:math:`\{0, \tfrac12, 1\}` is the mean of two binary ones,

.. math:: t(y) = \tfrac12\big(b(y + \tfrac14) + b(y - \tfrac14)\big), \qquad
    W\,t(y) = \tfrac{W}{2}\,b(y + \tfrac14) + \tfrac{W}{2}\,b(y - \tfrac14),

so the decoupled network computes what the coupled one did, with twice as many binary activations. To keep the
cost of the binary network, the coupled network is made narrower (width :math:`\approx N/\sqrt2`).

**What could be read.** The abstract (OpenReview r1x0lxrFPS, arXiv 2002.06517), the introduction's Table 1 and the
caption of Figure 5 ("two weights highlighted in the decoupled model are half the value of the weight
highlighted in the coupled model") could be read for this book, not the method section: the equations are not
cited by number. The activation, the weight binarization and the decoupling are transcribed from the official
Torch-7 code (https://github.com/Hyungjun-K1m/BinaryDuo, commit d23ad76): ``newLayers/QuantizedNeurons.lua``
lines 4-41, ``newLayers/cudnnQuantSpatialConvolution.lua`` lines 35-39, ``models/init.lua`` lines 171-192 and
``models/tinyVGG7_decoupled.lua`` lines 29-33. The CDG below (a central difference along each weight) is *our
reconstruction* of "the gradient of a smoothed loss function"; the official repository has no code for it.

References:

- Kim, Kim, Kim, Kim, *BinaryDuo: Reducing Gradient Mismatch in Binary Activation Network by Coupling Binary
  Activations*, ICLR 2020.
"""

from __future__ import annotations

import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from qteach import binary, bitops, train
from qteach import nn as qnn
from qteach._validate import (
    require_binary_layer_bits,
    require_float_tensor,
    require_int,
    require_no_nan,
    require_positive_number,
)

#: The bias shift of the two copies of a decoupled batch norm (``models/init.lua`` lines 182-183).
SHIFT = 0.25

#: Activation levels: ``n`` steps above 0 in [0, 1] (``QuantizedNeurons.lua`` lines 6-12: 1 bit -> 1, the
#: ternary code ``bitA = 0.3`` -> 2, 2 bits -> 3).
LEVELS = {"binary": 1, "ternary": 2, "2-bit": 3}


def _require_levels(levels):
    if levels is not None:
        require_int(levels, "levels", 1)
    return levels


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """Round a non-negative tensor to the nearest integer, ties away from zero (C's ``roundf``, Torch-7's
    ``round``), exactly: ``floor(v + 0.5)`` would round ``0.5 - 2**-25`` up in float32."""
    require_float_tensor(v, "v")
    down = torch.floor(v)
    return down + (v - down >= 0.5).to(v.dtype)


def activation(x: torch.Tensor, levels: int | None = 2) -> torch.Tensor:
    r"""The activation of BinaryDuo's networks: a clipped ReLU quantized to ``levels`` steps, with the STE.

    .. math:: q_n(x) = \frac{\operatorname{round}\big(n \operatorname{clip}(x, 0, 1)\big)}{n}, \qquad
        \frac{\partial q_n}{\partial x} = 1_{0 \le x \le 1}

    :math:`n = 1` is binary :math:`\{0, 1\}`, :math:`n = 2` ternary :math:`\{0, \frac12, 1\}`, :math:`n = 3`
    2-bit; ``levels=None`` is the clipped ReLU itself. Official code: ``HardTanh(0, 1)`` then
    ``QuantizedNeurons.lua`` line 34 (``mul(n):round():div(n)``); its backward (lines 43-45) passes the gradient
    unchanged, so the clip's derivative is the only one.
    """
    require_float_tensor(x, "x")
    require_no_nan(x, "x")
    levels = _require_levels(levels)
    clipped = x.clamp(0.0, 1.0)
    if levels is None:
        return clipped
    with torch.no_grad():
        quantized = round_half_away(clipped * levels) / levels
    return binary.straight_through(clipped, quantized)


class Activation(nn.Module):
    """:func:`activation` as a module (``levels`` steps; ``precision`` = its bits, 1 for binary)."""

    def __init__(self, levels: int | None = 2):
        super().__init__()
        self.levels = _require_levels(levels)
        self.precision = 32 if levels is None else math.ceil(math.log2(levels + 1))

    def forward(self, x):
        return activation(x, self.levels)

    def extra_repr(self):
        return f"levels={self.levels}"


class LayerScaledSign(nn.Module):
    r"""The official binary weight: :math:`\alpha \operatorname{sign}(W)` with one :math:`\alpha = \operatorname{mean}
    |W|` per layer (``cudnnQuantSpatialConvolution.lua`` lines 35-39: ``sign():add(0.1):sign():mul(absE)``, so
    :math:`\operatorname{sign}(0) = +1`), the gradient passed straight through to the latent weight."""

    precision = 1

    def forward(self, w):
        require_float_tensor(w, "w")
        with torch.no_grad():
            quantized = binary.sign(w) * w.abs().mean()
        return binary.straight_through(w, quantized)


# --- decoupling ---------------------------------------------------------------------------------------------------


def ternary_codes(y: torch.Tensor) -> torch.Tensor:
    r"""The integer code :math:`c = 2\,t(y) \in \{0, 1, 2\}` of the ternary activation (int64)."""
    require_float_tensor(y, "y")
    require_no_nan(y, "y")
    return round_half_away(2 * y.clamp(0.0, 1.0)).long()


def duo_bits(y: torch.Tensor) -> torch.Tensor:
    r"""The two binary activations of a decoupled ternary one, side by side (first the copy with bias
    :math:`-\frac14`, then the one with :math:`+\frac14`, as ``models/init.lua`` lines 182-183), as thresholds:

    .. math:: b(y - \tfrac14) = 1_{y \ge 3/4}, \qquad b(y + \tfrac14) = 1_{y \ge 1/4} .

    ``(..., K)`` -> ``(..., 2K)`` of 0/1 floats. Comparing :math:`y` itself (not :math:`y \pm \frac14`, which
    float32 may round onto the threshold) makes their sum equal :func:`ternary_codes` for every float.
    """
    require_float_tensor(y, "y")
    require_no_nan(y, "y")
    return torch.cat([(y >= 0.75), (y >= 0.25)], dim=-1).to(y.dtype)


def decouple_weight(w: torch.Tensor) -> torch.Tensor:
    r"""The next layer's weight after decoupling: :math:`[\frac{W}{2}, \frac{W}{2}]` along the input dimension
    (dim 1; ``models/init.lua`` lines 186-190, ``weight/2`` copied to both halves)."""
    require_float_tensor(w, "w")
    if w.dim() < 2:
        raise ValueError(f"w must have an input dimension (dim 1), got shape {tuple(w.shape)}")
    return torch.cat([w / 2, w / 2], dim=1)


def coupled_accumulator(y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""The integer accumulator of a binary-weight layer on ternary inputs, :math:`\operatorname{sign}(W)\,c(y)`
    with :math:`c = 2t`: ``y`` (N, K) pre-activations, ``w`` (M, K) latent weights -> int64 (N, M)."""
    require_float_tensor(w, "w")
    if y.dim() != 2 or w.dim() != 2 or y.shape[1] != w.shape[1]:
        raise ValueError(f"y (N, K) and w (M, K) must share K, got {tuple(y.shape)} and {tuple(w.shape)}")
    return ternary_codes(y) @ binary.sign(w).long().T


def decoupled_accumulator(y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""The same accumulator computed by the decoupled *binary* layer with XNOR and popcount: inputs
    :math:`b \in \{0, 1\}^{2K}` (:func:`duo_bits`), weights :math:`\operatorname{sign}([\frac W2, \frac W2])`,

    .. math:: \operatorname{sign}(W')\,b = \tfrac12\big(\operatorname{sign}(W')(2b - 1) + \textstyle\sum_k
        \operatorname{sign}(W')_k\big),

    the first term by :func:`qteach.bitops.xnor_matmul`. int64 (N, M), equal to :func:`coupled_accumulator`."""
    require_float_tensor(w, "w")
    if y.dim() != 2 or w.dim() != 2 or y.shape[1] != w.shape[1]:
        raise ValueError(f"y (N, K) and w (M, K) must share K, got {tuple(y.shape)} and {tuple(w.shape)}")
    bits, signs = duo_bits(y), binary.sign(decouple_weight(w))
    xnor = bitops.xnor_matmul(2 * bits - 1, signs).long()
    return (xnor + signs.sum(dim=1).long()) // 2


class Duplicate(nn.Module):
    """``x`` -> ``[x, x]`` along dim 1 (``nn.Replicate(2, 1, 3)`` + ``nn.Reshape`` in the decoupled models)."""

    def forward(self, x):
        return torch.cat([x, x], dim=1)


def decouple_batch_norm(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> nn.Sequential:
    r"""``Duplicate`` then a batch norm of twice the channels: statistics and :math:`\gamma` copied, bias
    :math:`\beta - \frac14` on the first copy and :math:`\beta + \frac14` on the second (``models/init.lua``
    lines 174-184)."""
    if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)) or not bn.affine or bn.running_mean is None:
        raise TypeError(f"bn must be an affine BatchNorm1d/2d with running statistics, got {bn!r}")
    new = type(bn)(2 * bn.num_features, eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        for name in ("running_mean", "running_var", "weight"):
            getattr(new, name).copy_(getattr(bn, name).repeat(2))
        new.bias.copy_(torch.cat([bn.bias - SHIFT, bn.bias + SHIFT]))
    return nn.Sequential(Duplicate(), new.train(bn.training))


def _widened(layer: nn.Module) -> nn.Module:
    """The layer after a decoupled activation: twice the inputs, weight :func:`decouple_weight`, same bias."""
    new = copy.deepcopy(layer)
    with torch.no_grad():
        new.weight = nn.Parameter(decouple_weight(layer.weight.detach()))
    if isinstance(new, nn.Linear):
        new.in_features *= 2
    else:
        new.in_channels *= 2
    return new


def decouple(model: nn.Sequential) -> nn.Sequential:
    """The decoupled binary network of a coupled ``model``: every ``BatchNorm, Activation(2), Linear/Conv2d``
    becomes ``decouple_batch_norm(BatchNorm), Activation(1), widened layer``. Same function, twice as many
    binary activations (a copy; ``model`` is unchanged)."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    layers, widen = [], False
    modules = list(model)
    for i, module in enumerate(modules):
        ternary_next = i + 1 < len(modules) and isinstance(modules[i + 1], Activation) and modules[i + 1].levels == 2
        if widen and isinstance(module, (nn.Linear, nn.Conv2d)):
            layers.append(_widened(module))
            widen = False
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and ternary_next:
            layers.append(decouple_batch_norm(module))
        elif isinstance(module, Activation) and module.levels == 2:
            layers.append(Activation(1))
            widen = True
        else:
            layers.append(copy.deepcopy(module))
    if widen:
        raise ValueError("model must have a Linear or Conv2d layer after each ternary activation")
    return nn.Sequential(*layers)


# --- the equal-cost networks and the results-page protocol -------------------------------------------------------


def equal_cost_width(width: int) -> int:
    r"""The coupled width :math:`h` whose decoupled layers (:math:`2h` binary inputs, :math:`h` outputs) cost at
    most a baseline layer of ``width``: :math:`2h^2 \le N^2`, :math:`h = \lfloor N/\sqrt2 \rfloor` (the official
    tiny VGG-7: 64 -> 45, ``models/tinyVGG7_coupled.lua`` line 29)."""
    width = require_int(width, "width", 2)
    return math.isqrt(width * width // 2)


def binary_mlp(in_features: int, width: int, levels: int = 1, classes: int = 10, middle: int = 2) -> nn.Sequential:
    """The results page's MLP with BinaryDuo's layers: a float first and last layer, ``middle`` binary-weight
    layers (:class:`LayerScaledSign`), each layer followed by batch norm and :class:`Activation` (``levels``)."""
    for value, name in ((in_features, "in_features"), (width, "width"), (classes, "classes")):
        require_int(value, name, 1)
    require_int(middle, "middle", 0)
    layers: list[nn.Module] = [nn.Linear(in_features, width), nn.BatchNorm1d(width), Activation(levels)]
    for _ in range(middle):
        layers += [qnn.QuantLinear(width, width, weight_quantizer=LayerScaledSign()), nn.BatchNorm1d(width),
                   Activation(levels)]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def comparison_layer(w_bits: int = 1, a_bits: int = 1):
    """``(weight_quantizer, input_quantizer, activation)`` of a decoupled BinaryDuo layer for
    :class:`qteach.comparison.Method`: :class:`LayerScaledSign` weights, binary {0, 1} activations. Only
    ``w_bits = a_bits = 1`` exist (the coupled stage lives in :func:`protocol_fit`)."""
    require_binary_layer_bits(w_bits, a_bits)
    return LayerScaledSign(), None, Activation(1)


def protocol_fit(model: nn.Sequential, data, seed: int, protocol, coupled_fraction: float = 0.7,
                 weight_clip: float = 1.0, record: dict | None = None) -> nn.Sequential:
    """BinaryDuo within a protocol's budget: a coupled ternary MLP of :func:`equal_cost_width` trained for
    ``coupled_fraction`` of the epochs (ours: the paper's schedule was not read), decoupled, the binary network
    fine-tuned for the rest. ``model`` (the protocol's MLP) gives the sizes and is replaced, in place, by the
    decoupled network; returned too. A ``record`` dict receives the test accuracy of the coupled network and
    of the decoupled one before fine-tuning."""
    if not isinstance(model, nn.Sequential) or not isinstance(model[0], nn.Linear):
        raise TypeError("model must be the protocol's nn.Sequential MLP (a Linear first)")
    require_positive_number(coupled_fraction, "coupled_fraction", maximum=1.0)
    if record is not None and not isinstance(record, dict):
        raise TypeError(f"record must be a dict or None, got {type(record).__name__}")
    middle = sum(isinstance(m, qnn.QuantLinear) for m in model)
    width = equal_cost_width(model[0].out_features)
    coupled = binary_mlp(model[0].in_features, width, 2, model[-1].out_features, middle)
    first = max(1, round(coupled_fraction * protocol.epochs))
    settings = {"lr": protocol.lr, "batch_size": protocol.batch_size, "progress": False, "weight_clip": weight_clip}
    train.fit(coupled, data, epochs=first, seed=seed, **settings)
    decoupled = decouple(coupled)
    if record is not None:
        record["coupled"] = train.evaluate(coupled, data.x_test, data.y_test)
        record["decoupled"] = train.evaluate(decoupled, data.x_test, data.y_test)
    if protocol.epochs > first:
        train.fit(decoupled, data, epochs=protocol.epochs - first, seed=seed + 1, **settings)
    for name in list(model._modules):
        del model._modules[name]
    for i, module in enumerate(decoupled):
        model.add_module(str(i), module)
    return model


# --- gradient mismatch --------------------------------------------------------------------------------------------


def coordinate_discrete_gradient(loss, w: torch.Tensor, eps: float, index: torch.Tensor) -> torch.Tensor:
    r"""Our reconstruction of the CDG: along each coordinate :math:`i` of ``index`` (into ``w.flatten()``),

    .. math:: \mathrm{CDG}_i = \frac{L(w + \epsilon e_i) - L(w - \epsilon e_i)}{2\epsilon}
        = \frac{\partial}{\partial w_i}\,\frac{1}{2\epsilon}\int_{-\epsilon}^{\epsilon} L(w + s e_i)\,ds ,

    the exact derivative of the loss averaged over a window of width :math:`2\epsilon` along the coordinate,
    defined even where the loss is a staircase. ``loss(w)`` returns a scalar tensor."""
    require_float_tensor(w, "w")
    eps = require_positive_number(eps, "eps")
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    if index.dtype != torch.long or index.dim() != 1:
        raise TypeError("index must be a 1-D int64 tensor of flat positions in w")
    flat, out = w.detach().flatten(), []
    with torch.no_grad():
        for i in index.tolist():
            up, down = flat.clone(), flat.clone()
            up[i] += eps
            down[i] -= eps
            out.append((loss(up.view_as(w)) - loss(down.view_as(w))) / (2 * eps))
    return torch.stack(out)


def probe_loss(w1: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w2: torch.Tensor, levels: int | None):
    r"""The loss of the two-layer probe of the gradient-mismatch experiment (ours):
    :math:`L = \mathrm{CE}\big(q_n(x W_1^\top + \frac12)\,W_2^\top, y\big)`, ``levels`` as :func:`activation`."""
    require_float_tensor(w1, "w1")
    return F.cross_entropy(activation(x @ w1.T + 0.5, levels) @ w2.T, y)


def probe_cdg(w1, x, y, w2, levels: int | None, eps: float) -> torch.Tensor:
    r""":func:`coordinate_discrete_gradient` of :func:`probe_loss` for *every* entry of ``w1`` at once: moving
    :math:`W_{1,ij}` by :math:`\pm\epsilon` moves only hidden unit :math:`i`'s pre-activation, by
    :math:`\pm\epsilon x_j`, so each perturbed loss is the base logits plus one unit's change. (H, D)."""
    require_float_tensor(w1, "w1")
    eps = require_positive_number(eps, "eps")
    with torch.no_grad():
        z = x @ w1.T + 0.5  # (N, H)
        base_act = activation(z, levels)
        logits = base_act @ w2.T  # (N, C)
        base = F.cross_entropy(logits, y, reduction="none")  # (N,)
        losses = []
        for sign in (1.0, -1.0):
            moved = activation(z[:, :, None] + sign * eps * x[:, None, :], levels) - base_act[:, :, None]
            n, h, d = moved.nonzero(as_tuple=True)  # a quantized unit moves for few (example, weight) pairs
            new = logits[n] + moved[n, h, d, None] * w2.T[h]
            change = torch.zeros(moved.shape[1:], dtype=x.dtype)
            change.index_put_((h, d), F.cross_entropy(new, y[n], reduction="none") - base[n], accumulate=True)
            losses.append(base.mean() + change / x.shape[0])
        return (losses[0] - losses[1]) / (2 * eps)


@functools.lru_cache(maxsize=4)
def _standardized_digits(samples: int):
    from qteach import data as qdata

    split = qdata.digits(seed=0, flatten=True)
    x, y = split.x_train[:samples], split.y_train[:samples]
    return (x - x.mean(0)) / (x.std(0) + 1e-6), y


def probe(seed: int = 0, samples: int = 256, hidden: int = 16):
    """The random two-layer probe (ours): ``(w1, x, y, w2)`` with ``samples`` standardized digits."""
    for value, name in ((seed, "seed"), (samples, "samples"), (hidden, "hidden")):
        require_int(value, name, 0 if name == "seed" else 1)
    x, y = _standardized_digits(samples)
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(hidden, x.shape[1], generator=g) / (2 * math.sqrt(x.shape[1]))
    w2 = torch.randn(10, hidden, generator=g) * 2 / math.sqrt(hidden)
    return w1, x, y, w2


def probe_gradients(levels: int | None, eps: float, seed: int = 0, samples: int = 256, hidden: int = 16):
    """The STE gradient (autograd through :func:`activation`) and the CDG (:func:`probe_cdg`) of the
    :func:`probe` network's first layer, both flattened: the two estimates of the same gradient."""
    w1, x, y, w2 = probe(seed, samples, hidden)
    w = w1.clone().requires_grad_(True)
    probe_loss(w, x, y, w2, levels).backward()
    return w.grad.flatten(), probe_cdg(w1, x, y, w2, levels, eps).flatten()


def gradient_cosine(levels: int | None, eps: float, seed: int = 0, samples: int = 256, hidden: int = 16) -> float:
    """Cosine similarity of :func:`probe_gradients`' STE gradient and CDG: 1 means no gradient mismatch."""
    ste, cdg = probe_gradients(levels, eps, seed, samples, hidden)
    return float(F.cosine_similarity(ste, cdg, dim=0))
