"""Protocols to compare the book's quantization methods: the results pages.

Every method is trained and evaluated the same way, so that differences come from the quantizers alone. A
:class:`Protocol` fixes the data and the training budget; the architecture and the seeds are common to all:

- **data**: :data:`DIGITS`, scikit-learn's digits (64 features, stratified 75/25 split, seed 0), on which every
  method lands close to full precision; :data:`MNIST1D`, the locally generated MNIST-1D (40 features, 80/20 split,
  seed 0), built so that small models separate (an MLP stays far below a CNN, and quantization costs more);
- **architecture**: an MLP in → 128 → 128 → 128 → 10. The first and last layers stay in full precision (as in
  XNOR-Net, DoReFa-Net and most papers of the book); the two middle layers are quantized by the method, each
  followed by batch norm and the method's activation;
- **training**: Adam, the protocol's learning rate, batch size and epochs, the method's latent-weight clipping if
  it has one;
- **seeds**: each configuration is trained with several seeds (initialisation and batch order); the page reports
  the mean and standard deviation of the final test accuracy.

A method is a set of quantizers from its paper's module (:mod:`qteach.papers`) for given weight/activation bit
widths (W/A, 32 meaning full precision). Post-training methods (quantize a trained full-precision model, no
retraining) reuse the full-precision runs of the same seeds.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from qteach import data as qdata
from qteach import nn as qnn
from qteach import train
from qteach.seed import set_seed

HIDDEN = 128
FULL = 32


@dataclass(frozen=True)
class Protocol:
    """The data and training budget of one comparison: ``load()`` returns the split (flat features)."""

    name: str
    data_description: str
    load: Callable
    epochs: int
    lr: float
    batch_size: int


def _digits() -> qdata.Split:
    return qdata.digits(flatten=True, seed=0)


def _mnist1d() -> qdata.Split:
    signals = qdata.mnist1d(num_samples=5000, seed=0)
    return qdata.Split(signals.x_train.flatten(1), signals.y_train, signals.x_test.flatten(1), signals.y_test)


DIGITS = Protocol("digits", "scikit-learn's digits flattened to 64 features, stratified 75/25 split (seed 0)",
                  _digits, epochs=10, lr=3e-3, batch_size=128)
MNIST1D = Protocol("MNIST-1D", "MNIST-1D (generated locally: 5,000 signals of 40 samples), 80/20 split (seed 0)",
                   _mnist1d, epochs=10, lr=3e-3, batch_size=256)


@dataclass(frozen=True)
class Method:
    """A row group of the results table.

    ``layer(w_bits, a_bits)`` returns ``(weight_quantizer, input_quantizer, activation)`` for a quantized layer;
    ``prepare(model)``, if given, runs on the freshly built model before training (a paper's initialisation).
    ``post_training(model, w_bits, data, seed)``, if given, replaces training: it receives a trained
    full-precision protocol model (a copy) and returns the quantized model to evaluate, re-training it on
    ``data`` only if the paper does (INQ).
    """

    name: str
    paper: str  # catalog slug
    configs: tuple  # (w_bits, a_bits) pairs
    layer: Callable | None = None
    weight_clip: float | None = None
    prepare: Callable | None = None
    post_training: Callable | None = None
    note: str = ""


def protocol_mlp(method: Method, w_bits: int, a_bits: int, in_features: int = 64) -> nn.Sequential:
    """The protocol's MLP with the method's quantizers in the two middle layers."""
    if method.layer is None:
        raise ValueError(f"{method.name} is a post-training method: it has no layers of its own")
    layers: list[nn.Module] = [nn.Linear(in_features, HIDDEN), nn.BatchNorm1d(HIDDEN)]  # first: full precision
    _, _, activation = method.layer(w_bits, a_bits)
    layers.append(activation)
    for _ in range(2):  # the two middle layers: the method's quantizers
        weight_quantizer, input_quantizer, activation = method.layer(w_bits, a_bits)
        layers += [qnn.QuantLinear(HIDDEN, HIDDEN, weight_quantizer=weight_quantizer,
                                   input_quantizer=input_quantizer),
                   nn.BatchNorm1d(HIDDEN), activation]
    layers.append(nn.Linear(HIDDEN, 10))  # last layer: full precision
    return nn.Sequential(*layers)


def describe_protocol(seeds=(0, 1, 2), protocol: Protocol = DIGITS):
    """The protocol in a few markdown bullets, with the values this module actually uses."""
    from qteach.display import Markdown

    data = split(protocol)
    return Markdown("\n".join([
        f"- **data**: {protocol.data_description}: {len(data.x_train)} training and {len(data.x_test)} test "
        "examples;",
        f"- **architecture**: MLP {data.x_train.shape[1]} → {HIDDEN} → {HIDDEN} → {HIDDEN} → 10; first and last "
        "layers in full precision, the two middle layers quantized by the method, each followed by batch norm and "
        "the method's activation;",
        f"- **training**: Adam, learning rate {protocol.lr}, batch {protocol.batch_size}, {protocol.epochs} "
        "epochs, cross-entropy, the method's latent-weight clipping if it has one;",
        f"- **seeds**: {', '.join(map(str, seeds))} (initialisation and batch order); mean and standard deviation "
        "of the final test accuracy.",
    ]))


def split(protocol: Protocol = DIGITS) -> qdata.Split:
    return protocol.load()


def _train(model: nn.Module, data: qdata.Split, seed: int, weight_clip: float | None, protocol: Protocol) -> float:
    history = train.fit(model, data, epochs=protocol.epochs, lr=protocol.lr, batch_size=protocol.batch_size,
                        weight_clip=weight_clip, seed=seed, progress=False)
    return history.final_test_accuracy


@dataclass
class Result:
    method: str
    paper: str
    w_bits: int
    a_bits: int
    accuracies: list = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0


def run(methods: list[Method], seeds=(0, 1, 2), baseline: Method | None = None,
        protocol: Protocol = DIGITS) -> list[Result]:
    """Train every configuration of every method with every seed under ``protocol``."""
    data = split(protocol)
    in_features = data.x_train.shape[1]
    results = []
    trained_full: dict[int, nn.Module] = {}

    def full_precision(seed: int) -> nn.Module:
        if seed not in trained_full:
            set_seed(seed)
            model = protocol_mlp(baseline, FULL, FULL, in_features)
            _train(model, data, seed, None, protocol)
            trained_full[seed] = model
        return trained_full[seed]

    for method in methods:
        for w_bits, a_bits in method.configs:
            result = Result(method.name, method.paper, w_bits, a_bits)
            for seed in seeds:
                if method.post_training is not None:
                    if baseline is None:
                        raise ValueError("post-training methods need the full-precision baseline method")
                    set_seed(seed)
                    model = method.post_training(copy.deepcopy(full_precision(seed)), w_bits, data, seed)
                    result.accuracies.append(train.evaluate(model, data.x_test, data.y_test))
                else:
                    set_seed(seed)
                    model = protocol_mlp(method, w_bits, a_bits, in_features)
                    if method.prepare is not None:
                        method.prepare(model)
                    result.accuracies.append(_train(model, data, seed, method.weight_clip, protocol))
                    if method is baseline:
                        trained_full.setdefault(seed, model)
            results.append(result)
    return results


#: One colour and one marker per method of the figure, in the order of the methods (the baseline is a line):
#: every method keeps its own colour and marker, so that none is confused with another.
METHOD_STYLES = (
    ("#1f77b4", "circle"), ("#ff7f0e", "square"), ("#2ca02c", "diamond"), ("#d62728", "triangle-up"),
    ("#9467bd", "triangle-down"), ("#8c564b", "cross"), ("#e377c2", "x"), ("#17becf", "star"),
    ("#bcbd22", "pentagon"), ("#1a1a6e", "hexagon"), ("#000000", "triangle-left"), ("#e6ab02", "triangle-right"),
    ("#c51b7d", "star-diamond"),
)


def accuracy_figure(results: list[Result], baseline: Result | None = None,
                    title: str = "Test accuracy under one protocol"):
    """The results page's figure: test accuracy (mean ± standard deviation over the seeds) of every method at
    each of its W/A configurations, one colour and marker per method (:data:`METHOD_STYLES`), the points of one
    configuration side by side; ``baseline`` (one of ``results``) is drawn as a dashed line. Configurations are
    ordered by activation bits, then weight bits. More methods than styles raise ``ValueError``."""
    from plotly import graph_objects as go

    from qteach import viz

    shown = [r for r in results if r is not baseline]
    names = list(dict.fromkeys(r.method for r in shown))
    if not names:
        raise ValueError("results must hold at least one result besides the baseline")
    if len(names) > len(METHOD_STYLES):
        raise ValueError(f"at most {len(METHOD_STYLES)} methods have a style of their own, got {len(names)}")
    configs = sorted({(r.a_bits, r.w_bits) for r in shown})
    label = {config: f"W{config[1]}/A{config[0]}" for config in configs}
    fig = viz.figure(title, "bit widths (weights / activations), activation bits growing to the right",
                     "test accuracy (%)", height=640, scattermode="group", scattergap=0.15)
    for name, (colour, symbol) in zip(names, METHOD_STYLES):
        points = sorted((r for r in shown if r.method == name), key=lambda r: configs.index((r.a_bits, r.w_bits)))
        fig.add_trace(go.Scatter(
            x=[label[r.a_bits, r.w_bits] for r in points], y=[round(100 * r.mean, 2) for r in points],
            error_y=dict(array=[round(100 * r.std, 2) for r in points], thickness=1),
            mode="lines+markers", name=name, line=dict(color=colour, width=1),
            marker=dict(color=colour, symbol=symbol, size=10)))
    if baseline is not None:
        fig.add_hline(y=100 * baseline.mean, line=dict(dash="dash", color="grey"),
                      annotation_text=baseline.method, annotation_position="top left")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=[label[c] for c in configs])
    low = min(100 * (r.mean - r.std) for r in results)  # grouped points would otherwise pull the axis to 0
    high = max(100 * (r.mean + r.std) for r in results)
    fig.update_yaxes(range=[low - 0.05 * (high - low) - 0.1, high + 0.05 * (high - low) + 0.1])
    return fig


def _relu_layer(weight_quantizer_for):
    """A method that quantizes weights only: full-precision inputs and ReLU."""
    return lambda w_bits, a_bits: (weight_quantizer_for(w_bits), None, nn.ReLU())


def with_weight_quantizer(model: nn.Module, make_quantizer: Callable) -> nn.Module:
    """``model`` (a trained protocol model) with ``make_quantizer()`` as the weight quantizer of its quantized
    layers: post-training quantization, no retraining. Changes and returns ``model``."""
    for module in model.modules():
        if isinstance(module, qnn.QuantLinear):
            module.weight_quantizer = make_quantizer()
    return model


def methods() -> list[Method]:
    """The methods of the results page, in the book's order; the first is the full-precision baseline."""
    from qteach.papers import (abc_net, binaryconnect, dorefa_net, fine_grained_ternary, hwgq,
                               incremental_network_quantization, shiftcnn, ternary_weight_networks,
                               trained_ternary_quantization, wrpn, xnor_net)

    inq = incremental_network_quantization

    def inq_post_training(model, w_bits, data, seed):
        with_weight_quantizer(model, lambda: inq.INQQuantizer(bits=w_bits))
        inq.incremental_quantization(model, data, epochs=2, seed=seed, batch_size=128)
        return model

    def dorefa_layer(w_bits, a_bits):
        weight = None if w_bits == FULL else dorefa_net.WeightQuantizer(w_bits)
        return weight, None, dorefa_net.ActivationQuantizer(a_bits)

    return [
        Method("Full precision", "", ((FULL, FULL),), layer=lambda w, a: (None, None, nn.ReLU())),
        Method("BinaryConnect (deterministic)", "binaryconnect", ((1, FULL),),
               layer=_relu_layer(lambda w: binaryconnect.BinaryConnect(stochastic=False)), weight_clip=1.0),
        Method("BNN", "binarized_neural_networks", ((1, 1),),
               layer=lambda w, a: (qnn.SignQuantizer(), None, qnn.SignQuantizer()), weight_clip=1.0,
               note="sign weights and activations, Htanh straight-through estimator"),
        Method("BWN (XNOR-Net paper)", "xnor_net", ((1, FULL),),
               layer=_relu_layer(lambda w: xnor_net.BinaryWeight()), weight_clip=1.0),
        Method("XNOR-Net", "xnor_net", ((1, 1),),
               layer=lambda w, a: (xnor_net.BinaryWeight(), xnor_net.ScaledSignInput(), nn.Identity()),
               weight_clip=1.0, note="batch norm, then the scaled sign of the input (beta), binary weights (alpha)"),
        Method("TWN", "ternary_weight_networks", ((2, FULL),),
               layer=_relu_layer(lambda w: ternary_weight_networks.TernaryWeightQuantizer())),
        Method("DoReFa-Net", "dorefa_net", ((1, 1), (1, FULL), (2, FULL), (2, 2), (4, 4)), layer=dorefa_layer),
        Method("Fine-grained ternary (N=4), no retraining", "fine_grained_ternary", ((2, FULL),),
               post_training=lambda model, w, data, seed: with_weight_quantizer(
                   model, lambda: fine_grained_ternary.FineGrainedTernaryQuantizer(group_size=4)),
               note="one scale per group of 4 input weights, applied to the trained full-precision model"),
        Method("ShiftCNN (N=2, B=4), no retraining", "shiftcnn", ((8, FULL),),
               post_training=lambda model, w, data, seed: with_weight_quantizer(
                   model, lambda: shiftcnn.ShiftQuantizer(n_terms=2, bits=4)),
               note="each weight a sum of two signed powers of two, applied to the trained model"),
        Method("HWGQ", "hwgq", ((1, 2),),
               layer=lambda w, a: (xnor_net.BinaryWeight(), None, hwgq.HWGQ(bits=a)), weight_clip=1.0,
               note="binary weights (BWN), 2-bit half-wave Gaussian quantizer as the activation"),
        Method("INQ (from the trained model)", "incremental_network_quantization", ((4, FULL),),
               post_training=inq_post_training,
               note="50/75/87.5/100 % of the weights to powers of two, 2 epochs of re-training per step"),
        Method("TTQ", "trained_ternary_quantization", ((2, FULL),),
               layer=_relu_layer(lambda w: trained_ternary_quantization.TTQQuantizer()),
               prepare=trained_ternary_quantization.normalize_latent_weights_,
               note="learned positive and negative scales; latent weights normalised to [-1, 1] first"),
        Method("WRPN (width x1)", "wrpn", ((2, 2), (4, 4)),
               layer=lambda w, a: (wrpn.WRPNWeightQuantizer(w), None, wrpn.WRPNActivationQuantizer(a)),
               prepare=wrpn.init_latent_weights_, note="the protocol's width; the chapter widens the layers"),
        Method("ABC-Net (M = N = 3)", "abc_net", ((3, 3),),
               layer=lambda w, a: (abc_net.ABCWeightQuantizer(w), abc_net.ABCActivationQuantizer(a), nn.Identity()),
               note="3 binary bases for the weights, 3 shifted binary activations"),
    ]
