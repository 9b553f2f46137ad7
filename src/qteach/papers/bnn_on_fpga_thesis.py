r"""BNN inference as an FPGA pipeline: popcount thresholds and a cycle/resource model (Redkar, WPI thesis, 2017).

*What is known about the source.* "Deep Learning Binary Neural Network on an FPGA" is an M.S. thesis by Shrutika
Redkar, Worcester Polytechnic Institute, May 2017 (advisor Xinming Huang). Only its metadata and the opening of its
abstract could be read; its architecture, data sets and results were not. This module therefore implements the
standard FPGA realisation of a binarized network that such a design builds on, and says so: it is *not* a
reconstruction of the thesis' circuit.

*The mechanism.* With weights and activations in :math:`\{-1, +1\}` stored as bits (1 for :math:`+1`), a neuron's
dot product is a count of agreeing bits:

.. math:: x = \sum_{i=1}^{K} w_i a_i = 2\,p - K, \qquad p = \operatorname{popcount}\big(\operatorname{XNOR}(w, a)\big).

Batch normalization and the sign after it compare :math:`x` with a constant, so they fold into a threshold on the
popcount itself:

.. math:: \operatorname{sign}\!\Big(\gamma\,\frac{x-\mu}{\sqrt{\sigma^2+\epsilon}}+\beta\Big) = +1
    \iff \begin{cases} p \ge \tau, & \gamma > 0 \\ p < \tau, & \gamma < 0 \end{cases} \qquad
    \tau = \Big\lceil \frac{K + t}{2} \Big\rceil \;(\gamma>0), \quad
    \tau = \Big\lfloor \frac{K + t}{2} \Big\rfloor + 1 \;(\gamma<0), \qquad
    t = \mu - \frac{\beta\sqrt{\sigma^2+\epsilon}}{\gamma}.

A neuron is then XNOR gates, a popcount, one comparator and one stored integer (plus an inversion bit). The
classifier at the end takes the arg-max of the last layer's popcounts. Layers run as a pipeline; with :math:`P` PEs of
:math:`S` lanes each (FINN's "folding"), a layer of :math:`K` inputs and :math:`N` outputs takes
:math:`\lceil N/P \rceil \lceil K/S \rceil` cycles per image, and the slowest layer sets the pipeline's rate.

References:

- S. Redkar, *Deep Learning Binary Neural Network on an FPGA*, M.S. thesis, Worcester Polytechnic Institute, 2017.
- Y. Umuroglu et al., *FINN: A Framework for Fast, Scalable Binarized Neural Network Inference*, FPGA 2017
  (thresholds on popcounts, PE/SIMD folding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from qteach import binary, bitops, deploy
from qteach import nn as qnn
from qteach._validate import require_bn_parameters, require_int, require_positive_number, require_tensor

__all__ = [
    "popcount_threshold",
    "fold_thresholds",
    "threshold_neuron",
    "binary_input_mlp",
    "ThresholdPipeline",
    "LayerFold",
    "layer_cycles",
    "pipeline_timing",
    "layer_resources",
    "fold_for_target",
]


def _on_popcount(threshold: deploy.Threshold, gamma: torch.Tensor, beta: torch.Tensor, fan_in: int):
    r"""The core's threshold on :math:`x` (``flip * x >= tau_x``) as a threshold on :math:`p = (x + K)/2`.

    :math:`x \ge \tau_x \iff p \ge \lceil (K + \tau_x)/2 \rceil`; :math:`-x \ge \tau_x \iff p \le
    \lfloor (K - \tau_x)/2 \rfloor`, the negation of :math:`p \ge \lfloor (K - \tau_x)/2 \rfloor + 1`. Integer
    arithmetic, so exact. :math:`\gamma = 0` is written as :math:`\tau = 0`, inverted when :math:`\beta < 0`."""
    flip, tau_x = threshold.flip.to(torch.int64), threshold.tau
    up = torch.div(fan_in + tau_x + 1, 2, rounding_mode="floor")
    down = torch.div(fan_in - tau_x, 2, rounding_mode="floor") + 1
    zero = gamma == 0
    tau = torch.where(zero, torch.zeros_like(tau_x), torch.where(flip > 0, up, down))
    invert = torch.where(zero, beta < 0, flip < 0)
    return tau, invert


def popcount_threshold(gamma: torch.Tensor, beta: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                       fan_in: int, eps: float = 1e-5):
    r"""Fold BN and sign into a popcount threshold: the neuron outputs :math:`+1` iff
    :math:`(p \ge \tau) \oplus \text{invert}`, where :math:`p` counts the agreeing bits of :math:`K` = ``fan_in``.

    .. math:: t = \mu - \frac{\beta\sqrt{\sigma^2+\epsilon}}{\gamma}, \qquad
        \tau = \Big\lceil \frac{K+t}{2} \Big\rceil \text{ if } \gamma > 0, \qquad
        \tau = \Big\lfloor \frac{K+t}{2} \Big\rfloor + 1,\ \text{invert} \text{ if } \gamma < 0.

    For :math:`\gamma > 0` BN is increasing in :math:`x = 2p - K`, so :math:`y \ge 0 \iff x \ge t \iff p \ge (K+t)/2`;
    :math:`p` is an integer, hence the ceiling. For :math:`\gamma < 0`, :math:`y \ge 0 \iff p \le (K+t)/2`, the
    negation of :math:`p \ge \lfloor (K+t)/2 \rfloor + 1`. For :math:`\gamma = 0` the output is
    :math:`\operatorname{sign}(\beta)`: :math:`\tau = 0` (always true), inverted when :math:`\beta < 0`.
    :math:`\tau` is clamped to :math:`[0, K+1]` (0: always fires; :math:`K+1`: never), which changes no output.

    The folding is the core's, :func:`qteach.deploy.bn_sign_threshold` on :math:`x \in [-K, K]` (float64); only
    the change of variable :math:`x = 2p - K` is done here, in integers: for :math:`\gamma > 0`,
    :math:`\tau = \lceil (K + \lceil t \rceil)/2 \rceil`, which equals :math:`\lceil (K + t)/2 \rceil` since
    :math:`2p - K` is an integer (likewise for :math:`\gamma < 0`).
    Returns ``(tau, invert)``: int64 and bool tensors of shape (C,).
    """
    require_bn_parameters(gamma, beta, mean, var)
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    require_positive_number(eps, "eps")
    threshold = deploy.bn_sign_threshold(gamma, beta, mean, var, eps, low=-fan_in, high=fan_in)
    return _on_popcount(threshold, gamma, beta, fan_in)


def fold_thresholds(bn: nn.BatchNorm1d, fan_in: int):
    """:func:`popcount_threshold` with the parameters and running statistics of an eval-mode ``BatchNorm1d``.

    The threshold comes from :func:`qteach.deploy.fold_threshold`, which also checks it against the module's own
    float32 arithmetic, so the pipeline equals the float model exactly, near ties included."""
    if not isinstance(bn, nn.BatchNorm1d):
        raise TypeError(f"bn must be a BatchNorm1d, got {type(bn).__name__}")
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    gamma, beta, _, _ = deploy.bn_parameters(bn, "bn")
    return _on_popcount(deploy.fold_threshold(bn, -fan_in, fan_in), gamma, beta, fan_in)


def threshold_neuron(popcount: torch.Tensor, tau: torch.Tensor, invert: torch.Tensor) -> torch.Tensor:
    r"""The folded neuron, a comparator and an XOR: bool :math:`(p \ge \tau) \oplus \text{invert}` (True = +1).

    ``popcount`` (N, C) integer, ``tau`` (C,) integer, ``invert`` (C,) bool."""
    require_tensor(popcount, "popcount")
    require_tensor(tau, "tau")
    require_tensor(invert, "invert")
    if popcount.is_floating_point() or tau.is_floating_point():
        raise TypeError("popcount and tau must be integer tensors")
    if invert.dtype != torch.bool:
        raise TypeError(f"invert must be a bool tensor, got {invert.dtype}")
    if popcount.dim() != 2 or tau.shape != (popcount.shape[1],) or invert.shape != tau.shape:
        raise ValueError(f"popcount must be (N, C) with tau and invert (C,), got {tuple(popcount.shape)}, "
                         f"{tuple(tau.shape)}, {tuple(invert.shape)}")
    return (popcount >= tau) ^ invert


def binary_input_mlp(in_features: int, hidden: int, num_classes: int, layers: int = 2) -> nn.Sequential:
    """A BNN MLP whose every layer, the first included, has binary weights *and* binary inputs: ``layers`` blocks of
    [QuantLinear(sign weights, sign inputs), BatchNorm1d, sign] and a binary output layer (integer scores)."""
    in_features = require_int(in_features, "in_features", minimum=1)
    hidden = require_int(hidden, "hidden", minimum=1)
    num_classes = require_int(num_classes, "num_classes", minimum=2)
    layers = require_int(layers, "layers", minimum=1)
    modules, width = [], in_features
    for _ in range(layers):
        modules += [qnn.QuantLinear(width, hidden, bias=False, weight_quantizer=qnn.SignQuantizer(),
                                    input_quantizer=qnn.SignQuantizer()),
                    nn.BatchNorm1d(hidden), qnn.SignQuantizer()]
        width = hidden
    modules.append(qnn.QuantLinear(width, num_classes, bias=False, weight_quantizer=qnn.SignQuantizer(),
                                   input_quantizer=qnn.SignQuantizer()))
    return nn.Sequential(*modules)


class ThresholdPipeline:
    r"""The hardware view of a trained :func:`binary_input_mlp`: packed weight bits, and per neuron a threshold
    :math:`\tau` and an inversion bit. :meth:`forward` runs XNOR-popcount (via :func:`qteach.bitops.xnor_matmul`:
    :math:`p = (x + K)/2`), :func:`threshold_neuron`, and an arg-max over the last layer's popcounts."""

    def __init__(self, layers: list, output_weight: torch.Tensor):
        self.layers = layers                  # list of (sign weights (N, K) float, tau (N,), invert (N,))
        self.output_weight = output_weight    # (classes, K) float of +-1

    @classmethod
    def from_sequential(cls, model: nn.Sequential) -> "ThresholdPipeline":
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential from binary_input_mlp, got {type(model).__name__}")
        mods = list(model)
        if len(mods) < 4 or (len(mods) - 1) % 3:
            raise ValueError("model must be [QuantLinear, BatchNorm1d, SignQuantizer] * n + [QuantLinear]")
        layers = []
        with torch.no_grad():
            for i in range(0, len(mods) - 1, 3):
                lin, bn, act = mods[i:i + 3]
                if not (isinstance(lin, qnn.QuantLinear) and isinstance(bn, nn.BatchNorm1d)
                        and isinstance(act, qnn.SignQuantizer)):
                    raise ValueError(f"block {i // 3} must be QuantLinear, BatchNorm1d, SignQuantizer")
                tau, invert = fold_thresholds(bn, lin.in_features)
                layers.append((binary.sign(lin.weight).clone(), tau, invert))
            if not isinstance(mods[-1], qnn.QuantLinear):
                raise ValueError("the last module must be a QuantLinear")
            output_weight = binary.sign(mods[-1].weight).clone()
        return cls(layers, output_weight)

    @staticmethod
    def popcounts(activations: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        r"""Agreeing bits :math:`p = (x + K) / 2` of every (input, neuron) pair, int64, from the XNOR product."""
        k = weight.shape[1]
        return (bitops.xnor_matmul(activations, weight).to(torch.int64) + k) // 2

    def forward(self, x: torch.Tensor):
        """Class indices (N,), the output popcounts (N, classes) and the hidden activations (bool, True = +1) for
        inputs ``x`` (N, K) whose signs are the input bits."""
        require_tensor(x, "x")
        if x.dim() != 2 or x.shape[1] != self.layers[0][0].shape[1]:
            raise ValueError(f"x must be (N, {self.layers[0][0].shape[1]}), got {tuple(x.shape)}")
        h = binary.sign(x.float())
        activations = []
        for weight, tau, invert in self.layers:
            fired = threshold_neuron(self.popcounts(h, weight), tau, invert)
            activations.append(fired)
            h = fired.float() * 2 - 1
        scores = self.popcounts(h, self.output_weight)
        return scores.argmax(dim=1), scores, activations

    __call__ = forward


# --------------------------------------------------------------------------------------------------------------
# Cycle and resource model
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerFold:
    """One pipeline stage: a binarized fully connected layer of ``fan_in`` x ``fan_out`` on ``pes`` processing
    elements, each consuming ``simd`` input bits per cycle (FINN's PE and SIMD)."""

    fan_in: int
    fan_out: int
    pes: int
    simd: int

    def __post_init__(self):
        require_int(self.fan_in, "fan_in", minimum=1)
        require_int(self.fan_out, "fan_out", minimum=1)
        require_int(self.pes, "pes", minimum=1)
        require_int(self.simd, "simd", minimum=1)
        if self.pes > self.fan_out or self.simd > self.fan_in:
            raise ValueError(f"pes must be <= fan_out and simd <= fan_in, got pes={self.pes} (fan_out "
                             f"{self.fan_out}), simd={self.simd} (fan_in {self.fan_in})")


def layer_cycles(fold: LayerFold) -> int:
    r"""Cycles per image of one stage: :math:`\lceil N/P \rceil \cdot \lceil K/S \rceil`."""
    if not isinstance(fold, LayerFold):
        raise TypeError(f"fold must be a LayerFold, got {type(fold).__name__}")
    return -(-fold.fan_out // fold.pes) * -(-fold.fan_in // fold.simd)


def pipeline_timing(folds: list, clock_hz: float) -> dict:
    r"""Rate and latency of a layer pipeline.

    .. math:: II = \max_\ell T_\ell, \qquad \text{images/s} = f / II, \qquad \text{latency} = \sum_\ell T_\ell / f

    The stages work on different images at once, so a new image enters every :math:`II` cycles; one image still
    passes through every stage (pipeline fill and register stages are ignored). Returns ``cycles`` (per stage),
    ``ii``, ``images_per_s``, ``latency_cycles``, ``latency_s`` and ``bottleneck`` (index of the slowest stage).
    """
    if not isinstance(folds, (list, tuple)) or not folds:
        raise ValueError("folds must be a non-empty list of LayerFold")
    clock_hz = require_positive_number(clock_hz, "clock_hz")
    cycles = [layer_cycles(f) for f in folds]
    ii = max(cycles)
    return {"cycles": cycles, "ii": ii, "images_per_s": clock_hz / ii, "latency_cycles": sum(cycles),
            "latency_s": sum(cycles) / clock_hz, "bottleneck": cycles.index(ii)}


def layer_resources(fold: LayerFold) -> dict:
    r"""What one stage instantiates, counted in primitive units (no device-specific LUT numbers):

    - ``xnor``: :math:`P S` XNOR gates; ``popcount_inputs``: :math:`P` popcounts of :math:`S` inputs;
    - ``accumulator_bits``: :math:`P \lceil \log_2(K+1) \rceil` (a running popcount per PE);
    - ``comparators``: :math:`P`; ``weight_bits``: :math:`K N`; ``threshold_bits``:
      :math:`N (\lceil \log_2(K+2) \rceil + 1)` (:math:`\tau \in [0, K+1]` plus the inversion bit).
    """
    if not isinstance(fold, LayerFold):
        raise TypeError(f"fold must be a LayerFold, got {type(fold).__name__}")
    acc_bits = fold.fan_in.bit_length()
    tau_bits = (fold.fan_in + 1).bit_length()
    return {"xnor": fold.pes * fold.simd, "popcount_inputs": fold.pes * fold.simd,
            "accumulator_bits": fold.pes * acc_bits, "comparators": fold.pes,
            "weight_bits": fold.fan_in * fold.fan_out, "threshold_bits": fold.fan_out * (tau_bits + 1)}


def fold_for_target(fan_in: int, fan_out: int, target_cycles: int) -> LayerFold:
    r"""The cheapest folding (fewest XNOR lanes :math:`P S`, then fewest PEs) with
    :math:`\lceil N/P \rceil \lceil K/S \rceil \le` ``target_cycles``, searching every :math:`P \le N` and the
    smallest :math:`S` that meets the target for it. A target of one cycle gives the fully parallel stage
    :math:`P = N, S = K`."""
    fan_in = require_int(fan_in, "fan_in", minimum=1)
    fan_out = require_int(fan_out, "fan_out", minimum=1)
    target_cycles = require_int(target_cycles, "target_cycles", minimum=1)
    best = None
    for pes in range(1, fan_out + 1):
        rounds = -(-fan_out // pes)
        if rounds > target_cycles:
            continue
        words = target_cycles // rounds                  # cycles available per neuron
        simd = -(-fan_in // words)
        if simd > fan_in:
            continue
        key = (pes * simd, pes)
        if best is None or key < best[0]:
            best = (key, LayerFold(fan_in, fan_out, pes, simd))
    return best[1]
