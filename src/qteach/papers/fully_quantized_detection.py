r"""FQN: a 4-bit detector fine-tuned without the instabilities of quantization-aware training.

Li, Wang, Liang, Qin, Yan and Fan (CVPR 2019) quantize *everything* of RetinaNet and Faster R-CNN to 4 bits,
the input and the last activations before the box regression included, and trace the failure of plain
quantization-aware fine-tuning (Jacob et al., CVPR 2018) at 4 bits to three instabilities. Their fixes:

1. **Frozen batch-norm statistics.** Detectors are fine-tuned with a few images per batch, so batch statistics
   are noisy; FQN folds batch norm into the convolution and normalises with the mean and variance of the
   trained full-precision model, which are not updated while fine-tuning (:class:`FrozenBatchNorm`,
   :func:`freeze_batch_norm`, :class:`FoldedLinearBN`). With :math:`\mu, \sigma^2` frozen the folded layer is

   .. math:: W_{fold} = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}\, W, \qquad
       b_{fold} = \beta - \frac{\gamma\, \mu}{\sqrt{\sigma^2 + \epsilon}}

   (the folding of Jacob et al. 2018, sec. 3.2), and the weights that are quantized are :math:`W_{fold}`, the
   ones the integer network will use.
2. **Percentile activation ranges.** Activations after batch norm have outliers; a min/max range spends the 16
   levels of 4 bits on them. FQN runs the model on :math:`n` random training batches and clamps each layer's
   activations to its :math:`[1-\gamma,\ \gamma]` percentiles, :math:`n = 20`, :math:`\gamma = 0.999`
   (:func:`percentile_range`, :class:`PercentileQuantizer`, :func:`calibrate`). Values and gradients outside
   the range are truncated (:func:`qteach.quant.fake_quantize`'s straight-through estimator).
3. **Channel-wise weight quantization.** After folding, output channels have very different ranges (each is
   scaled by its own :math:`\gamma / \sigma`), so each output channel gets its own scale and zero point
   (:func:`channel_wise_weight_quantizer`, i.e. ``qnn.MinMaxFakeQuantizer(axis=0)``).

The mapping is uniform and asymmetric (a zero point), as in :mod:`qteach.quant`.

**What could be read.** The abstract (CVPR 2019 open access, via paperswithcode) and a detailed secondary summary
of the method (GiantPandaCV, in Chinese), which gives the recipe above and :math:`n = 20, \gamma = 0.999`; the
paper's full text and its equation numbers could not be reached, so no equation is cited by number, and there is
no official code. Our choices, labelled as such: the percentiles are taken over all calibration activations of
a layer pooled together, the ranges stay fixed after calibration, the BN scale and shift (:math:`\gamma, \beta`)
stay trainable (only the statistics are frozen), and biases stay in float. The localisation task of the chapter
(:func:`localisation_data`, :class:`TinyDetector`) is ours, not the paper's.

References:

- R. Li, Y. Wang, F. Liang, H. Qin, J. Yan, R. Fan, *Fully Quantized Network for Object Detection*, CVPR 2019.
- B. Jacob et al., *Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference*, CVPR 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qteach import data as qdata
from qteach import nn as qnn
from qteach import quant, train
from qteach._validate import (
    require_bits,
    require_bool,
    require_float_tensor,
    require_int,
    require_module,
    require_no_nan,
    require_non_negative_number,
    require_not_empty,
    require_positive_number,
)

__all__ = [
    "FoldedLinearBN",
    "FrozenBatchNorm",
    "PercentileQuantizer",
    "TinyDetector",
    "box_iou",
    "calibrate",
    "channel_wise_weight_quantizer",
    "comparison_layer",
    "detection_loss",
    "detection_scores",
    "fit_detector",
    "freeze_batch_norm",
    "localisation_data",
    "percentile_range",
    "protocol_fit",
]

FULL = 32
GAMMA = 0.999  # the paper's percentile (secondary summary)
CALIBRATION_BATCHES = 20  # the paper's n (secondary summary)


def _require_gamma(gamma) -> float:
    gamma = require_positive_number(gamma, "gamma", maximum=1)
    if gamma <= 0.5:
        raise ValueError(f"gamma must be in (0.5, 1], got {gamma}")
    return gamma


def percentile_range(x: torch.Tensor, gamma: float = GAMMA) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The clipping range of FQN: the :math:`(1-\gamma)` and :math:`\gamma` quantiles of ``x``.

    .. math:: [\,l, u\,] = [\,P_{1-\gamma}(x),\; P_{\gamma}(x)\,], \qquad \tfrac12 < \gamma \le 1

    Quantiles interpolate linearly between order statistics (``torch.quantile``, NumPy's default);
    :math:`\gamma = 1` gives the min/max range. ``x`` is a non-empty float tensor without NaN of at most
    :math:`2^{24}` elements (``torch.quantile``'s limit). Returns two 0-d float32 tensors.
    """
    require_float_tensor(x, "x")
    require_not_empty(x, "x")
    require_no_nan(x, "x")
    if x.numel() > 2**24:
        raise ValueError(f"x must hold at most 2**24 values (torch.quantile's limit), got {x.numel()}")
    gamma = _require_gamma(gamma)
    flat = x.detach().flatten().to(torch.float64)
    q = torch.tensor([1.0 - gamma, gamma], dtype=torch.float64, device=x.device)
    lo, hi = torch.quantile(flat, q).to(torch.float32)
    return lo, hi


class PercentileQuantizer(nn.Module):
    r"""``bits``-bit activation fake quantization on a range calibrated by :func:`percentile_range`.

    Three states: ``observing`` (set by :func:`calibrate`) returns ``x`` unchanged and keeps it; once
    calibrated, ``forward`` is :func:`qteach.quant.fake_quantize` on the frozen range (asymmetric, unsigned,
    zero widened into the range as :func:`qteach.quant.qparams` does), with the gradient truncated outside it.
    Before calibration, ``forward`` raises ``RuntimeError``: a range is never guessed.
    """

    def __init__(self, bits: int = 4, gamma: float = GAMMA):
        super().__init__()
        self.precision = require_bits(bits)
        self.gamma = _require_gamma(gamma)
        self.observing = False
        self.bypass = False  # float activations (a training phase before calibration)
        self._seen: list[torch.Tensor] = []
        self.register_buffer("lo", torch.tensor([]))
        self.register_buffer("hi", torch.tensor([]))

    def set_range(self, lo, hi) -> None:
        """Fix the range (two numbers or 0-d tensors, ``lo <= hi``)."""
        lo, hi = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
        if lo.numel() != 1 or hi.numel() != 1 or not bool(torch.isfinite(lo) & torch.isfinite(hi)) or lo > hi:
            raise ValueError(f"lo and hi must be finite numbers with lo <= hi, got {lo} and {hi}")
        self.lo, self.hi = lo.reshape(()).to(self.lo.device), hi.reshape(()).to(self.hi.device)

    def finish_calibration(self) -> None:
        """Set the range from the values seen while observing, and stop observing."""
        if not self._seen:
            raise RuntimeError("no activations were observed: run the model with observing = True first")
        self.set_range(*percentile_range(torch.cat(self._seen), self.gamma))
        self._seen, self.observing = [], False

    def forward(self, x):
        require_float_tensor(x, "x")
        if self.bypass:
            return x
        if self.observing:
            self._seen.append(x.detach().flatten())
            return x
        if self.lo.numel() == 0:
            raise RuntimeError("PercentileQuantizer is not calibrated: call calibrate(model, batches) first")
        scale, zero_point = quant.qparams(self.lo, self.hi, self.precision)
        return quant.fake_quantize(x, scale, zero_point, self.precision)

    def extra_repr(self):
        return f"bits={self.precision}, gamma={self.gamma}"


@torch.no_grad()
def calibrate(model: nn.Module, batches) -> int:
    r"""FQN's calibration: run ``model`` (in eval mode) on ``batches`` (an iterable of input tensors, the paper
    samples :math:`n = 20` training batches) with every :class:`PercentileQuantizer` observing, then fix each
    one's range to the :math:`[1-\gamma, \gamma]` percentiles of what it saw. Returns the number of quantizers
    calibrated; the model's train/eval mode is restored."""
    require_module(model)
    quantizers = [m for m in model.modules() if isinstance(m, PercentileQuantizer)]
    was_training = model.training
    model.eval()
    for q in quantizers:
        q.observing, q._seen = True, []
    count = 0
    for x in batches:
        model(require_float_tensor(x, "batches[i]"))
        count += 1
    if count == 0:
        raise ValueError("batches must hold at least one batch")
    for q in quantizers:
        q.finish_calibration()
    model.train(was_training)
    return len(quantizers)


def channel_wise_weight_quantizer(bits: int = 4, channel_wise: bool = True) -> qnn.MinMaxFakeQuantizer:
    r"""FQN's weight quantizer: asymmetric min/max per output channel (dim 0),

    .. math:: s_c = \frac{\max_j W_{cj} - \min_j W_{cj}}{2^b - 1}

    (range widened to contain 0); ``channel_wise=False`` gives the per-tensor baseline, one scale for all."""
    require_bool(channel_wise, "channel_wise")
    return qnn.MinMaxFakeQuantizer(require_bits(bits), signed=True, axis=0 if channel_wise else None)


class FrozenBatchNorm(nn.modules.batchnorm._BatchNorm):
    r"""A batch norm that always normalises with its running statistics: ``model.train()`` leaves it in eval
    mode, so neither the output nor :math:`\mu, \sigma^2` depend on the batch. :math:`\gamma, \beta` stay
    trainable. Build it with :func:`freeze_batch_norm`."""

    def _check_input_dim(self, input):
        if input.dim() not in (2, 3, 4, 5):
            raise ValueError(f"expected 2D to 5D input (got {input.dim()}D input)")

    def train(self, mode: bool = True):
        return super().train(False)


def freeze_batch_norm(model: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d`` of ``model`` (in place) by a :class:`FrozenBatchNorm` with the same
    parameters and statistics: FQN's fine-tuning with the full-precision model's statistics. Returns ``model``."""
    require_module(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and not isinstance(child, FrozenBatchNorm):
                frozen = FrozenBatchNorm(child.num_features, child.eps, child.momentum, child.affine)
                frozen.load_state_dict(child.state_dict())
                setattr(parent, name, frozen.to(child.running_mean.device).eval())
    return model


class FoldedLinearBN(nn.Module):
    r"""A linear layer with its batch norm folded in, the weight quantized *after* folding.

    .. math:: y = Q\big(\tfrac{\gamma}{\sqrt{\sigma^2+\epsilon}} W\big)\, x
        + \beta - \tfrac{\gamma\,\mu}{\sqrt{\sigma^2+\epsilon}}

    While ``self.bn`` trains, :math:`\mu, \sigma^2` are the batch's (from the float product, as in Jacob et
    al. 2018, sec. 3.2) and the running statistics are updated; otherwise (eval, or a :class:`FrozenBatchNorm`)
    they are the running ones. Without a quantizer it equals ``bn(linear(x))`` in both modes. (FQN folds
    convolutions; a linear layer is the same folding with one pixel.)
    """

    def __init__(self, in_features: int, out_features: int, weight_quantizer=None):
        super().__init__()
        self.linear = nn.Linear(require_int(in_features, "in_features", 1),
                                require_int(out_features, "out_features", 1), bias=False)
        self.bn = nn.BatchNorm1d(out_features)
        self.weight_quantizer = weight_quantizer

    def forward(self, x):
        require_float_tensor(x, "x")
        bn, w = self.bn, self.linear.weight
        if bn.training:  # batch statistics of the float product, running ones updated
            y = F.linear(x, w)
            mean, var = y.mean(0), y.var(0, unbiased=False)
            with torch.no_grad():
                n = y.shape[0]
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var * n / max(n - 1, 1), bn.momentum)
        else:
            mean, var = bn.running_mean, bn.running_var
        factor = bn.weight / torch.sqrt(var + bn.eps)
        w_fold = w * factor[:, None]
        if self.weight_quantizer is not None:
            w_fold = self.weight_quantizer(w_fold)
        return F.linear(x, w_fold, bn.bias - mean * factor)


class TinyDetector(nn.Module):
    r"""Our single-object detector, an MLP on the flattened canvas: two folded linear-BN-ReLU blocks, then a
    linear head giving 10 class scores and 4 box numbers :math:`(c_x, c_y, w, h)` relative to the canvas.

    ``weight_quantizer()`` and ``activation_quantizer()`` are factories (``None`` for float); with them every
    layer, the head included, uses quantized weights, and the input and every activation are quantized (FQN
    quantizes everything, down to the head's input).
    """

    def __init__(self, size: int = 12, hidden=(128, 64), weight_quantizer=None, activation_quantizer=None):
        super().__init__()
        size = require_int(size, "size", 8)

        def act():
            return nn.Identity() if activation_quantizer is None else activation_quantizer()

        def wq():
            return None if weight_quantizer is None else weight_quantizer()

        layers, width = [nn.Flatten(), act()], size * size
        for h in hidden:
            layers += [FoldedLinearBN(width, require_int(h, "hidden", 1), wq()), nn.ReLU(), act()]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = qnn.QuantLinear(width, 14, weight_quantizer=wq())

    def forward(self, x):
        return self.head(self.features(x))


def localisation_data(size: int = 12, seed: int = 0, test_fraction: float = 0.25, hot_fraction: float = 0.1,
                      copies: int = 2):
    r"""Our localisation task: each scikit-learn digit (8x8) is pasted ``copies`` times at random places of a
    blank ``size`` x ``size`` canvas; a fraction ``hot_fraction`` of the images gets one hot pixel (intensity 2
    to 6; the digit's ink is at most 1), the outliers. Returns ``{"train": (images, labels, boxes), "test":
    (...)}``; boxes are :math:`(c_x, c_y, w, h)` divided by ``size``. Vectorised: no loop over images."""
    size = require_int(size, "size", 8)
    hot_fraction = require_non_negative_number(hot_fraction, "hot_fraction")
    if hot_fraction > 1:
        raise ValueError(f"hot_fraction must be in [0, 1], got {hot_fraction}")
    copies = require_int(copies, "copies", 1)
    split = qdata.digits(test_fraction=test_fraction, seed=require_int(seed, "seed", 0))
    g = torch.Generator().manual_seed(seed)
    out = {}
    for part, (x, y) in (("train", (split.x_train, split.y_train)), ("test", (split.x_test, split.y_test))):
        x, y, n = x[:, 0].repeat(copies, 1, 1), y.repeat(copies), copies * len(x)
        r, c = torch.randint(0, size - 7, (2, n), generator=g)
        rows = (r[:, None] + torch.arange(8))[:, :, None]
        cols = (c[:, None] + torch.arange(8))[:, None, :]
        canvas = torch.zeros(n, size, size)
        canvas[torch.arange(n)[:, None, None], rows, cols] = x
        spot = torch.randint(0, size * size, (n, 1), generator=g)
        hot = (torch.rand(n, 1, generator=g) < hot_fraction) * (2 + 4 * torch.rand(n, 1, generator=g))
        canvas.view(n, -1).scatter_(1, spot, torch.maximum(canvas.view(n, -1).gather(1, spot), hot))
        boxes = torch.stack([c + 4, r + 4, torch.full_like(c, 8), torch.full_like(r, 8)], 1) / size
        out[part] = (canvas[:, None], y, boxes.float())
    return out


def detection_loss(out: torch.Tensor, labels: torch.Tensor, boxes: torch.Tensor, box_weight: float = 10.0):
    r"""Our loss: cross-entropy on the 10 class scores plus ``box_weight`` times the smooth-L1 box error
    (:math:`\beta = 0.05`), the usual pair of a one-stage detector's head."""
    return (F.cross_entropy(out[:, :10], labels)
            + box_weight * F.smooth_l1_loss(out[:, 10:], boxes, beta=0.05))


def fit_detector(model: nn.Module, split, epochs: int = 1, lr: float = 1e-3, batch_size: int = 16,
                 seed: int = 0) -> nn.Module:
    """Train ``model`` on ``split = (images, labels, boxes)`` with Adam and :func:`detection_loss`, batches
    shuffled by a generator seeded with ``seed``. Returns ``model``."""
    require_module(model)
    epochs, batch_size = require_int(epochs, "epochs", 1), require_int(batch_size, "batch_size", 1)
    images, labels, boxes = split
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=require_positive_number(lr, "lr"))
    g = torch.Generator().manual_seed(require_int(seed, "seed", 0))
    model.train()
    for _ in range(epochs):
        for idx in train.minibatches(len(images), batch_size, g):
            loss = detection_loss(model(images[idx]), labels[idx], boxes[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Intersection over union of boxes given as :math:`(c_x, c_y, w, h)` rows (``(N, 4)`` each)."""
    require_float_tensor(a, "a")
    require_float_tensor(b, "b")
    if a.shape != b.shape or a.dim() != 2 or a.shape[1] != 4:
        raise ValueError(f"a and b must both be (N, 4), got {tuple(a.shape)} and {tuple(b.shape)}")
    lo = torch.maximum(a[:, :2] - a[:, 2:] / 2, b[:, :2] - b[:, 2:] / 2)
    hi = torch.minimum(a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2)
    inter = (hi - lo).clamp(min=0).prod(dim=1)
    union = a[:, 2:].clamp(min=0).prod(dim=1) + b[:, 2:].clamp(min=0).prod(dim=1) - inter
    return inter / union.clamp(min=1e-12)


@torch.no_grad()
def detection_scores(model: nn.Module, images, labels, boxes) -> dict:
    """``{"accuracy", "mean_iou", "detected"}`` of ``model`` (in eval mode) on a split: class accuracy, mean box
    IoU, and the fraction of images whose class is right *and* box IoU >= 0.5 (a one-object AP50 stand-in)."""
    require_module(model)
    was_training = model.training
    model.eval()
    out = model(images)
    model.train(was_training)
    right = out[:, :10].argmax(1) == labels
    iou = box_iou(out[:, 10:], boxes)
    return {"accuracy": right.float().mean().item(), "mean_iou": iou.mean().item(),
            "detected": (right & (iou >= 0.5)).float().mean().item()}


def comparison_layer(w_bits: int = 4, a_bits: int = 4, gamma: float = GAMMA):
    r"""``(weight_quantizer, input_quantizer, activation)`` of an FQN layer for the results pages' MLP:
    channel-wise asymmetric weights, ReLU then a :class:`PercentileQuantizer` (calibrated by
    :func:`protocol_fit`). 32 bits leave the weights in float, or make the activation a plain ReLU."""
    w_bits, a_bits = require_bits(w_bits, "w_bits"), require_bits(a_bits, "a_bits")
    weight = None if w_bits == FULL else channel_wise_weight_quantizer(w_bits)
    activation = nn.ReLU() if a_bits == FULL else nn.Sequential(nn.ReLU(), PercentileQuantizer(a_bits, gamma))
    return weight, None, activation


def protocol_fit(model: nn.Module, data, seed: int, protocol) -> None:
    """FQN's recipe inside the protocol's budget: the first half of the epochs with float activations (weights
    already quantized), calibration on 20 training batches, then the second half with quantized activations
    and frozen batch norm. Same optimizer (Adam), learning rate and batch size as the protocol."""

    require_module(model)
    quantizers = [m for m in model.modules() if isinstance(m, PercentileQuantizer)]
    first = max(1, protocol.epochs // 2)
    for q in quantizers:  # float activations until calibrated
        q.bypass = True
    train.fit(model, data, epochs=first, lr=protocol.lr, batch_size=protocol.batch_size, seed=seed,
              progress=False)
    for q in quantizers:
        q.bypass = False
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.x_train), generator=generator)
    batches = [data.x_train[order[i * protocol.batch_size:(i + 1) * protocol.batch_size]]
               for i in range(CALIBRATION_BATCHES) if i * protocol.batch_size < len(order)]
    calibrate(model, batches)
    freeze_batch_norm(model)
    train.fit(model, data, epochs=max(1, protocol.epochs - first), lr=protocol.lr, batch_size=protocol.batch_size,
              seed=seed + 1, progress=False)
